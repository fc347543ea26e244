"""Write channels: what happens to a tensor's stored bits when it is written to memory.

This is the interface between policies (which decide how a tensor is stored) and noisy
inference (which calls the channel at every write point). A channel receives the *stored*
tensor (float storage, or int8 codes for quantized formats) and corrupts it in place with
fresh randomness drawn from ``seed``.

Call order: a policy builds one channel per (format, device error rate); noisy inference calls
``apply_(x, seed)`` once per write with a new child seed each time; ``is_noiseless`` lets the
caller skip work entirely.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

import numpy as np
import torch

from memsim.formats import StorageFormat, get_format, resolve_bits
from memsim.noise.rates import Ladder, Layer, Rates, rate_vector

if TYPE_CHECKING:
    from memsim.noise.engines import Engine
    from memsim.noise.numba_engine import Writer


class ChannelOptions(TypedDict, total=False):
    """Options a policy passes on to :class:`BitFlip` (see there)."""

    engine: str
    ladder: Sequence[object] | None


class Channel(ABC):
    """Corrupts a stored tensor in place. Implementations are immutable and hold no random state."""

    @abstractmethod
    def apply_(self, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        """Corrupt ``x`` (its stored bits) in place with fresh draws from ``seed``; return ``x``."""

    @property
    def is_noiseless(self) -> bool:
        """True when ``apply_`` can never change a bit (callers may skip it)."""
        return False


class Noiseless(Channel):
    """Stores bits exactly."""

    def apply_(self, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        return x

    @property
    def is_noiseless(self) -> bool:
        return True


def per_position(fmt: str, value: object, name: str) -> np.ndarray:
    """A probability given as a scalar or per bit position, as a float64 vector of length width.

    ``value`` is checked (:func:`memsim.noise.rates.rate_vector`): this is where user input
    such as ladder entries becomes a :data:`~memsim.noise.rates.Rates` vector.
    """
    return rate_vector(get_format(fmt), value, name)


@dataclass(frozen=True, eq=False)
class BitFlip(Channel):
    """Independent per-bit flips (docs/design.md §3), optionally only at noisy positions.

    Parameters
    ----------
    fmt : str
        Storage format of the tensors this channel receives.
    p01, p10 : float or sequence of float
        0→1 and 1→0 flip probabilities, scalar or per bit position (MSB-first).
    bits : optional
        Noisy positions, anything :func:`memsim.formats.resolve_bits` accepts.
    engine : str
        Bit-flip engine name (``auto``, ``numba``, ``torch``, ``reference``).
    ladder : sequence, optional
        Common-random-numbers grid (see :mod:`memsim.noise`): entries are scalar p or
        ``(p01, p10)`` pairs; ``(p01, p10)`` must be one of them. With the same seed, flips at
        a smaller grid value are a subset of those at a larger one.
    """

    fmt: str
    p01: Rates
    p10: Rates | None = None
    bits: object = None
    engine: str = "auto"
    ladder: tuple[object, ...] | None = None
    # Derived in __post_init__ (checked rates with the mask applied, and the format).
    _mask: np.ndarray = field(init=False, repr=False)
    _p01: np.ndarray = field(init=False, repr=False)
    _p10: np.ndarray = field(init=False, repr=False)
    _noiseless: bool = field(init=False, repr=False)
    _format: StorageFormat = field(init=False, repr=False)
    _layer: Layer = field(init=False, repr=False)  # the rates at seed 0, groups built
    _writers: dict[int, Writer] | None = field(init=False, repr=False)  # per tensor size

    def __post_init__(self) -> None:
        from memsim.noise.engines import engine_by_name

        engine_by_name(self.engine)  # an unknown engine is an error now, not at the first write
        p10 = self.p01 if self.p10 is None else self.p10
        mask = resolve_bits(self.fmt, self.bits)
        object.__setattr__(self, "_mask", mask)
        object.__setattr__(self, "_p01", per_position(self.fmt, self.p01, "p01") * mask)
        object.__setattr__(self, "_p10", per_position(self.fmt, p10, "p10") * mask)
        object.__setattr__(self, "_noiseless", not (self._p01.any() or self._p10.any()))
        object.__setattr__(self, "_format", get_format(self.fmt))
        layer = Layer(self._p01, self._p10, 0)
        layer.groups  # noqa: B018 (built now, not at the first write)
        object.__setattr__(self, "_layer", layer)
        object.__setattr__(self, "_writers", self._fast_writes())

    @property
    def p01_vector(self) -> np.ndarray:
        return self._p01

    @property
    def p10_vector(self) -> np.ndarray:
        return self._p10

    @property
    def is_noiseless(self) -> bool:
        return self._noiseless

    def apply_(self, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        if self._noiseless:
            return x
        writers = self._writers
        if (
            writers is not None
            and type(seed) is int
            and 0 <= seed < _SEED_LIMIT
            and type(x) is torch.Tensor
            and x.dtype is self._format.torch_dtype
            and x.is_cpu
            and not x.requires_grad
            and x.is_contiguous()
        ):
            # PERF: a write in a network (240 per VGG-A batch of 256 in tiles, each right after
            # a layer has flushed the caches, where every Python step costs microseconds) only
            # needs its seed: rates, mask and engine were checked when the channel was built,
            # and its plan for this size is prepared once, so the write is one compiled call.
            n = x.numel()
            write = writers.get(n)
            if write is None:
                write = writers[n] = self._writer(n)
            if n:
                write(x.data_ptr(), n, seed)
            return x
        return self._apply_checked_(x, seed)

    def _writer(self, nwords: int) -> Writer:
        """The prepared Numba write of this channel on ``nwords`` words."""
        from memsim.noise import numba_engine

        if self.ladder is None:
            return numba_engine.layer_writer(self._layer, nwords)
        return numba_engine.ladder_writer(self._ladder_table(), nwords)

    def _apply_checked_(self, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        """:meth:`apply_` for every tensor, engine and seed (checked as :func:`flip_` does)."""
        from memsim.noise.api import apply_layers_, check_seed, flip_

        fmt = self._format
        if fmt.packed:
            return self._apply_packed_(x, seed)
        if seed is not None and getattr(x, "dtype", None) == fmt.torch_dtype:
            seed = check_seed(seed)
            if self.ladder is None:
                layer = self._layer.with_seed(seed)
                return apply_layers_(x, fmt, _engine(self.engine, x.device), [layer])
        # The mask goes along so that ladder entries are compared on the noisy bits only.
        return flip_(
            x,
            self._p01,
            self._p10,
            bits=self._mask,
            engine=self.engine,
            seed=seed,
            ladder=self.ladder,
        )

    def __getstate__(self) -> dict[str, object]:
        # Prepared writes are closures over this process's Numba kernels: rebuilt where unpickled.
        return {k: v for k, v in self.__dict__.items() if k != "_writers"}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        object.__setattr__(self, "_writers", self._fast_writes())

    def _fast_writes(self) -> dict[int, Writer] | None:
        """An empty store of prepared writes per tensor size, or None where writes take the
        checked path (another engine, packed codes, elements of another width)."""
        fmt = self._format
        direct = fmt.torch_dtype is not None and not fmt.packed
        if direct and torch.empty(0, dtype=fmt.torch_dtype).element_size() * 8 != fmt.width:
            direct = False  # words of another width than the tensor's elements
        return {} if self.engine in _CPU_ENGINES and direct else None

    def _ladder_table(self) -> Ladder:
        """The checked, masked ladder table of this channel with its entry, built once (its seed,
        0, is not read: each write passes its own)."""
        table = self.__dict__.get("_table")
        if table is None:
            from memsim.noise.rates import ladder_layers

            assert self.ladder is not None
            layers = ladder_layers(self._format, self._p01, self._p10, self._mask, self.ladder, 0)
            table = layers.ladder
            table.groups  # noqa: B018 (built now, not at the first write)
            object.__setattr__(self, "_table", table)
        return table

    def _apply_packed_(self, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        """Flip sub-byte codes packed into uint8 bytes (int4: two codes per byte).

        Bit ``k`` of every code in a byte gets the rates of position ``k``: the byte is flipped
        as uint8 with the per-position rates repeated once per code, which is the same
        independent per-bit operator on each code.
        """
        from memsim.noise.api import _layers, apply_layers_, check_seed
        from memsim.noise.rates import LadderLayers, Layer

        fmt = self._format
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8:
            raise TypeError(
                f"A {fmt.name} channel flips packed uint8 bytes ({8 // fmt.width} codes each). "
                f"Got {getattr(x, 'dtype', type(x).__name__)}."
            )
        seed = check_seed(seed) if seed is not None else None
        layers = _layers(fmt, self._p01, self._p10, self._mask, seed, self.ladder)
        per = 8 // fmt.width
        tiled: Sequence[Layer]
        if isinstance(layers, LadderLayers):
            tiled = layers.tiled(per)
        else:
            tiled = [
                Layer(np.tile(layer.p01, per), np.tile(layer.p10, per), layer.seed, layer.coupled)
                for layer in layers
            ]
        return apply_layers_(x, get_format("uint8"), _engine(self.engine, x.device), tiled)


_ENGINES: dict[tuple[str, str], Engine] = {}
#: Engine names that run on the Numba engine for a CPU tensor.
_CPU_ENGINES = ("auto", "numba")
#: Seeds the prepared writes take as they are (Numba's int64); larger ones go the checked way.
_SEED_LIMIT = 1 << 63


def _engine(name: str, device: torch.device) -> Engine:
    """:func:`memsim.noise.engines.get_engine`, remembered per (name, device type)."""
    key = (name, device.type)
    if key not in _ENGINES:
        from memsim.noise.engines import get_engine

        _ENGINES[key] = get_engine(name, device)
    return _ENGINES[key]
