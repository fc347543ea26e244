"""Noisy inference: a network whose every write goes through a noise channel.

Where it sits (docs/design.md §2): a workload's trained model comes in, a policy's
:class:`memsim.noise.channel.Channel` says what a write does to stored bits, and
:class:`NoisyNetwork` runs the model with forward hooks (:mod:`memsim.inference.taps`) that, at every
write point, (1) put the output in its storage format (float64/32/16, bfloat16 or int8
codes), (2) let the channel corrupt the stored bits in place, (3) hand the stored value
back to the computation. :meth:`NoisyNetwork.evaluate` returns accuracy points for sweeps.

Randomness: write ``w`` of batch ``b`` draws its flips from
``child_seed(seed, "write", b, w)``, so a seed gives identical results however batches are
scheduled, and every write (even two writes of the same values) gets fresh flips. Nothing
caches a flip pattern. On a CPU a batch runs through the network in tiles of :data:`TILE`
images (the activations of a tile stay in cache, where the flips are cheap, and torch's CPU
kernels run faster on them too): tile ``t`` of a write draws from :func:`tile_seed` of the
write's seed (tile 0 from the write's seed itself, so batches of up to ``TILE`` images are
flipped as if untiled). Other devices run whole batches, one draw per write.

Programming-time weight noise is drawn once when the network is built (``child_seed(weight_seed,
"weight", i)``): a persistent fault map for that load; binarized networks take a drawn
:class:`~memsim.inference.faults.FaultMap` of their sign bits instead.

Compute: floats compute in the storage format by default. With another ``compute_dtype`` each
write is cast to the storage format, flipped there and cast back, so rounding to the storage
format happens at every write even without noise. If torch on this machine cannot run some
layer in the storage format, the network falls back to float32 compute with that rounding
(weights keep their storage-format values; a ``RuntimeWarning`` says so, and
:attr:`NoisyNetwork.compute_dtype` / ``compute_fallback`` show it). Speed note: torch's CPU
float16 convolutions run about 25× slower than float32 (bfloat16 is fast); for long float16
sweeps on a CPU, ``compute_dtype="float32"`` (every write still rounded to float16) is the
quick alternative. ``flush_denormals=True`` computes as a processor that flushes subnormal
floats to zero (:mod:`memsim.inference.denormals`; CPU only): flips of a stored zero's low bits
make subnormals, which slowed noisy inference on an Intel processor 1.7-2.8×. int8 and int4
compute in float32 on fake-quantized values; stored
activations are real int8 codes, or int4 codes packed two per byte (:mod:`memsim.inference.int8`). FP8 (``float8_e4m3``, ``float8_e5m2``) computes
in float32 and every write is rounded to FP8 with torch's conversion (E4M3 saturates at ±448,
E5M2 overflows to ±inf); the flips hit the stored byte, and a byte read back as E4M3's NaN
pattern (S.1111.111) is NaN. Weights stay in the compute dtype unless a weight channel stores
them.

Which tensors are writes is the ``granularity``: ``module`` (each leaf module call; functional
operations such as a residual add are computed in the compute dtype and are not writes, see
:mod:`memsim.inference.taps`), ``op`` (every operation producing a new tensor, from the
captured graph: :mod:`memsim.inference.graph`) or ``fused`` (the ``op`` writes with conv/linear → norm →
activation chains written once).
"""

from __future__ import annotations

import copy
import difflib
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from memsim.compute import exact_float32, resolve_device
from memsim.formats import ACTIVATION_FORMATS, FORMATS, StorageFormat
from memsim.inference.denormals import check_flush_device, denormals_flushed
from memsim.inference.faults import FaultMap
from memsim.inference.graph import GraphTaps, check_granularity, make_taps
from memsim.inference.int8 import (
    INT_FORMATS,
    Int8Storage,
    calibrate,
    dequantize_into_,
    quantize,
    quantize_parameters_,
)
from memsim.inference.taps import Taps, WritePoint, parameter_points
from memsim.noise.api import check_seed
from memsim.noise.channel import Channel
from memsim.rng import child_seed, splitmix64

#: Storage formats noisy inference supports: every activation format but 1-bit binary (binarized
#: networks binarize inside their own layers).
INFERENCE_FORMATS = tuple(f for f in ACTIVATION_FORMATS if f != "binary")
#: Float dtypes a network can compute in.
_FLOAT_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
#: Float storage formats: the compute dtypes plus FP8, which torch cannot compute in (FP8
#: storage computes in float32 and rounds every write to FP8).
_STORAGE_DTYPES = {
    **_FLOAT_DTYPES,
    "float8_e4m3": torch.float8_e4m3fn,
    "float8_e5m2": torch.float8_e5m2,
}

ChannelSpec = Channel | Callable[[WritePoint], Channel | None] | None

#: Images per tile of CPU inference (a fixed number, so results never depend on the machine).
#: ``benchmarks/noisy_inference.py`` (VGG-A float32, 2 threads): clean inference takes
#: 1.6-1.8 ms per image in tiles of 32 against 2.2 ms in one batch of 256, and the flips of a
#: tile find its activations in cache.
TILE = 32
_MASK63 = (1 << 63) - 1


def tile_seed(seed: int, tile: int) -> int:
    """The seed of tile ``tile`` of a write seeded ``seed`` (``seed`` itself for tile 0):
    :func:`memsim.rng.splitmix64` of the two, cheap enough for every tile and write."""
    return seed if tile == 0 else splitmix64(seed, tile) & _MASK63


#: ``observer(point, stored)``: sees every stored tensor (do not modify it).
Observer = Callable[[WritePoint, torch.Tensor], None]


class ActivationStorage(Protocol):
    """How a write is stored: ``store`` → (channel on the stored tensor) → ``load``.

    ``store(point, x)`` returns the stored tensor (in the storage format, may share ``x``'s
    memory); ``load(point, stored, out)`` writes the value read back into ``out`` and returns
    the tensor the network continues with. ``always_round_trip`` says whether storing changes
    values even without noise (a clean write can then not be skipped).
    """

    fmt: str

    @property
    def always_round_trip(self) -> bool: ...

    def store(self, wp: WritePoint, x: torch.Tensor) -> torch.Tensor: ...

    def load(self, wp: WritePoint, stored: torch.Tensor, out: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class EvalResult:
    """One accuracy point.

    Attributes
    ----------
    accuracy : float
        Fraction of correctly classified images.
    n_images : int
        Images evaluated.
    nonfinite_fraction : float
        Fraction of images with at least one non-finite logit (their prediction is still
        ``argmax`` with PyTorch semantics, where NaN counts as the maximum).
    correct : int
        Correctly classified images.
    per_image : Tensor of bool, optional
        Whether each image was classified correctly (only with ``evaluate(per_image=True)``;
        paired comparisons between two evaluations of the same images need it).
    """

    accuracy: float
    n_images: int
    nonfinite_fraction: float
    correct: int
    per_image: torch.Tensor | None = None


class _Run:
    """One forward's channels, observer and write seeds (per tile; see the module docstring)."""

    def __init__(
        self, channels: list[Channel | None], seed: int, batch: int, observer: Observer | None
    ) -> None:
        self.channels = channels
        self.seed = seed
        self.batch = batch
        self.observer = observer
        self.tile = 0
        self._seeds: dict[int, int] = {}  # write index -> child_seed(seed, "write", batch, w)

    def write_seed(self, index: int) -> int:
        """The seed of write ``index`` in the current tile."""
        base = self._seeds.get(index)
        if base is None:
            base = self._seeds[index] = child_seed(self.seed, "write", self.batch, index)
        return tile_seed(base, self.tile)


class FloatStorage:
    """Activations stored as a float format, computed in ``compute_dtype``."""

    def __init__(self, fmt: str, compute_dtype: torch.dtype) -> None:
        self.fmt = fmt
        self.dtype = _STORAGE_DTYPES[fmt]
        self.compute_dtype = compute_dtype

    @property
    def always_round_trip(self) -> bool:
        """Casting to a different storage format changes values even without noise."""
        return self.dtype != self.compute_dtype

    def store(self, wp: WritePoint, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == self.dtype:
            return x.contiguous()  # in place on the output itself when it is contiguous
        return x.to(self.dtype)

    def load(self, wp: WritePoint, stored: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if stored is not out:
            out.copy_(stored)
        return out


def resolve_channels(channel: ChannelSpec, points: tuple[WritePoint, ...]) -> list[Channel | None]:
    """One channel (or None to skip) per write point.

    Raises
    ------
    TypeError
        ``channel`` is neither a Channel, a callable returning one, nor None.
    ValueError
        A channel built for another storage format than the write's.
    """
    if channel is None:
        return [None] * len(points)
    per_point: list[Channel | None]
    if isinstance(channel, Channel):
        per_point = [channel] * len(points)
    elif callable(channel):
        per_point = [channel(wp) for wp in points]
    else:
        raise TypeError(
            "channel must be a memsim.noise.channel.Channel, a callable (WritePoint) -> Channel, "
            f"or None. Got {type(channel).__name__}."
        )
    resolved: list[Channel | None] = []
    for wp, ch in zip(points, per_point):
        if ch is None:
            resolved.append(None)
            continue
        if not isinstance(ch, Channel):
            raise TypeError(
                f"The channel for write '{wp.name}' must be a Channel or None. Got {type(ch).__name__}."
            )
        ch_fmt = getattr(ch, "fmt", None)
        ch_fmt = ch_fmt.name if isinstance(ch_fmt, StorageFormat) else ch_fmt
        if isinstance(ch_fmt, str) and ch_fmt in FORMATS and wp.format and ch_fmt != wp.format:
            raise ValueError(
                f"The channel for write '{wp.name}' is built for {ch_fmt}, but the write is stored as {wp.format}."
            )
        resolved.append(None if ch.is_noiseless else ch)
    return resolved


def _as_float_dtype(value: object, name: str) -> torch.dtype:
    if isinstance(value, torch.dtype) and value in _FLOAT_DTYPES.values():
        return value
    elif isinstance(value, str) and value in _FLOAT_DTYPES:
        return _FLOAT_DTYPES[value]
    raise ValueError(f"{name} must be one of {', '.join(_FLOAT_DTYPES)}. Got {value!r}.")


def _check_format(fmt: str) -> str:
    if fmt in INFERENCE_FORMATS:
        return fmt
    if fmt in FORMATS:
        raise ValueError(
            f"Noisy inference does not support storage format '{fmt}'. "
            f"Supported: {', '.join(INFERENCE_FORMATS)}."
        )
    close = difflib.get_close_matches(fmt, INFERENCE_FORMATS, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ValueError(
        f"Unknown storage format '{fmt}'.{hint} Known formats: {', '.join(INFERENCE_FORMATS)}."
    )


class NoisyNetwork:
    """A copy of ``model`` whose writes are stored in ``fmt`` through a noise channel.

    Parameters
    ----------
    model : nn.Module
        The trained network (float32 typically); it is copied, never modified.
    fmt : str
        Storage format of activations: one of :data:`INFERENCE_FORMATS`.
    fused : bool
        One write per conv→bn→activation chain (see :mod:`memsim.inference.taps`); the same as
        ``granularity="fused"``.
    granularity : {"module", "op", "fused"}, optional
        Which tensors are writes (see :mod:`memsim.inference.graph`); default ``module``, or
        ``fused`` when ``fused=True``. A model torch.fx cannot capture falls back to module
        hooks (``op`` → ``module``, ``fused`` → module-hook chain fusion) with a warning; :attr:`granularity` and :attr:`fallback` say so.
    noisy_input : bool
        The network input is written too (write 0).
    compute_dtype : str or torch.dtype, optional
        Float dtype to compute in; defaults to the storage format (float32 for int8 and FP8).
    flush_denormals : bool
        Compute with subnormal floats flushed to zero, inputs and results, as a processor
        without subnormals does (:mod:`memsim.inference.denormals`): far faster on Intel CPUs
        under noise. CPU only; off by default (IEEE arithmetic, subnormals kept).
    calibration : Tensor, optional
        Calibration inputs; required for ``int8`` and ``int4``, ignored otherwise.
    weight_channel : Channel or callable, optional
        Programming-time noise on weights and biases (one draw, at construction). For int8
        it receives weight codes (int8) and, from a callable, bias codes (int32; a single
        Channel is applied to int8 weight codes only).
    weight_seed : int, optional
        Seed of the weight fault map; None draws fresh entropy.
    calibration_method : {"minmax", "percentile"}
        int8 activation range estimate (:func:`memsim.inference.int8.calibrate`).
    fault_map : FaultMap, optional
        Persistent sign faults of binary weights (:class:`memsim.inference.faults.FaultMap`),
        installed on this network's copy of the model for its lifetime: one draw per load.
    tile : int or None
        Images per tile on a CPU (default :data:`TILE`); None runs whole batches. The tile
        decides which flips an image gets (as the batch size does), never their statistics.
    """

    def __init__(
        self,
        model: nn.Module,
        fmt: str = "float32",
        *,
        fused: bool = False,
        granularity: str | None = None,
        noisy_input: bool = False,
        compute_dtype: str | torch.dtype | None = None,
        flush_denormals: bool = False,
        calibration: torch.Tensor | None = None,
        weight_channel: ChannelSpec = None,
        weight_seed: int | None = None,
        calibration_method: str = "minmax",
        fault_map: FaultMap | None = None,
        tile: int | None = TILE,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module. Got {type(model).__name__}.")
        if not isinstance(fmt, str):
            raise TypeError(f"fmt must be a storage format name. Got {fmt!r}.")
        name = _check_format(fmt)
        self.fmt = name
        if granularity is None:
            granularity = "fused" if fused else "module"
        check_granularity(granularity)
        if fused and granularity != "fused":
            raise ValueError(
                f"fused=True asks for granularity 'fused', but granularity={granularity!r} was given."
            )
        if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
            raise ValueError(f"tile must be a positive int or None. Got {tile!r}.")
        self.tile = tile
        self.granularity = granularity
        self.fallback = ""  # why op granularity fell back to module hooks, if it did
        self.fused = granularity == "fused"
        self.noisy_input = bool(noisy_input)
        default = _FLOAT_DTYPES.get(name, torch.float32)  # int8, int4 and FP8: float32
        self.compute_dtype = (
            default if compute_dtype is None else _as_float_dtype(compute_dtype, "compute_dtype")
        )
        self.compute_fallback = False
        if not isinstance(flush_denormals, bool):
            raise TypeError(f"flush_denormals must be a bool. Got {flush_denormals!r}.")
        self.flush_denormals = flush_denormals
        self._model = copy.deepcopy(model).eval().cpu()  # evaluate(device=...) moves it
        self._model.requires_grad_(False)
        if fault_map is not None:
            if not isinstance(fault_map, FaultMap):
                raise TypeError(
                    f"fault_map must be a memsim.inference.faults.FaultMap. Got {type(fault_map).__name__}."
                )
            fault_map.install(self._model)
        self.fault_map = fault_map
        self._device = torch.device("cpu")
        self._taps: Taps | GraphTaps | None = None
        self._storage: ActivationStorage
        # During a forward: channels, observer and the seed of each write of the current tile.
        self._run: _Run | None = None
        self.weight_points: list[WritePoint] = []
        self.weight_codes: dict[str, torch.Tensor] = {}  # int8: stored integer codes by name
        if name in INT_FORMATS:
            self._init_int8(calibration, weight_channel, weight_seed, calibration_method)
        else:
            self._model.to(self.compute_dtype)
            self._storage = FloatStorage(name, self.compute_dtype)
            self._init_float_weights(weight_channel, weight_seed)

    # ----------------------------------------------------------------- construction
    def _init_int8(self, calibration, weight_channel, weight_seed, method) -> None:
        if calibration is None:
            raise ValueError(
                f"{self.fmt} needs calibration inputs: pass calibration=<tensor of inputs>, for example "
                "workload.dataset('train', limit=512)[0]."
            )
        if (
            not isinstance(calibration, torch.Tensor)
            or calibration.dim() == 0
            or len(calibration) == 0
        ):
            raise ValueError("calibration must be a non-empty tensor of calibration inputs.")
        self._model.float()
        self._taps = self._make_taps(calibration[:2].float())
        bits = 4 if self.fmt == "int4" else 8
        cal = calibrate(self._model, self._taps, calibration, method=method, bits=bits)
        self._storage = Int8Storage(cal, self.fmt)
        weight_for = None
        if weight_channel is not None:
            single = isinstance(weight_channel, Channel)

            def weight_for(wp: WritePoint) -> Channel | None:
                if single:
                    return weight_channel if wp.format == self.fmt else None
                return resolve_channels(weight_channel, (wp,))[0]

        stored = quantize_parameters_(self._model, cal, weight_for, weight_seed, fmt=self.fmt)
        self.weight_points = [wp for wp, _ in stored]
        self.weight_codes = {wp.name: codes for wp, codes in stored}

    def _init_float_weights(self, weight_channel, weight_seed) -> None:
        points = parameter_points(self._model, self.fmt)
        self.weight_points = [wp for wp, _ in points]
        if weight_channel is None:
            return
        channels = resolve_channels(weight_channel, tuple(self.weight_points))
        base = child_seed(None) if weight_seed is None else weight_seed
        with torch.no_grad():
            for (wp, param), ch in zip(points, channels):
                if ch is None:
                    continue
                stored = param.data.to(_STORAGE_DTYPES[self.fmt], copy=True)
                ch.apply_(stored, child_seed(base, "weight", wp.index))
                param.data.copy_(stored)

    def _make_taps(self, example: torch.Tensor) -> Taps | GraphTaps:
        taps = make_taps(
            self._model,
            example,
            self.granularity,
            noisy_input=self.noisy_input,
            fmt=self.fmt,
        )
        if taps.fallback:
            self.granularity, self.fallback = taps.granularity, taps.fallback
            self.fused = taps.granularity == "fused"
        return taps

    def _ensure_taps(self, example: torch.Tensor) -> Taps | GraphTaps:
        if self._taps is not None:
            return self._taps
        example = example[:2]
        try:
            self._taps = self._make_taps(example.to(self.compute_dtype))
        except (RuntimeError, NotImplementedError) as exc:
            if (
                self.compute_dtype in (torch.float32, torch.float64)
                or "not implemented" not in str(exc).lower()
            ):
                raise
            warnings.warn(
                f"torch cannot compute this network in {self.compute_dtype} on {self._device} ({exc}); "
                f"computing in float32 and rounding every write to {self.fmt}.",
                RuntimeWarning,
                stacklevel=3,
            )
            self.compute_fallback = True
            self.compute_dtype = torch.float32
            self._model.to(torch.float32)
            self._storage = FloatStorage(self.fmt, torch.float32)
            self._taps = self._make_taps(example.to(torch.float32))
        return self._taps

    # ----------------------------------------------------------------- forward
    def write_points(self, example: torch.Tensor | None = None) -> tuple[WritePoint, ...]:
        """The activation write points (discovered on ``example`` if not yet known)."""
        taps = self._taps
        if taps is None:
            if example is None:
                raise ValueError(
                    "Write points are found on an example input: pass example=<input batch>."
                )
            taps = self._ensure_taps(example.to(self._device))
        return taps.points

    @property
    def model(self) -> nn.Module:
        """The network copy that runs (cast, fake-quantized, with weight noise)."""
        return self._model

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        xb = x.to(self._device, self.compute_dtype)
        # Writes are corrupted in place; an in-place first layer or the input write must never
        # reach the caller's tensor.
        return xb.clone() if xb is x else xb

    def _on_write(self, wp: WritePoint, out: torch.Tensor) -> torch.Tensor:
        run = self._run
        if run is None:
            raise RuntimeError(f"Write '{wp.name}' happened outside a NoisyNetwork forward pass.")
        ch = run.channels[wp.index]
        storage = self._storage
        if ch is None and run.observer is None and not storage.always_round_trip:
            return out  # PERF: clean writes in the compute format cost nothing
        stored = storage.store(wp, out)
        if ch is not None:
            ch.apply_(stored, run.write_seed(wp.index))
        if run.observer is not None:
            run.observer(wp, stored)
        return storage.load(wp, stored, out)

    def _forward(
        self,
        xb: torch.Tensor,
        channels: list[Channel | None],
        seed: int,
        batch: int,
        observer: Observer | None = None,
    ) -> torch.Tensor:
        taps = self._ensure_taps(xb)
        if isinstance(self._storage, Int8Storage) and not self.noisy_input:  # int8 and int4
            q = self._storage.cal.network_input
            dequantize_into_(xb, quantize(xb, q, self._storage.bits), q)
        run = self._run = _Run(channels, seed, batch, observer)
        # Tiles on a CPU only; observers (tracing, calibration) see whole batches.
        tile = self.tile if xb.device.type == "cpu" and observer is None else None
        try:
            with (
                torch.no_grad(),
                taps.hooked(self._on_write),
                denormals_flushed(self.flush_denormals),
            ):
                if tile is None or tile >= len(xb):
                    return self._model(xb)
                outs = []
                for t, start in enumerate(range(0, len(xb), tile)):
                    run.tile = t
                    outs.append(self._model(xb[start : start + tile]))
                return torch.cat(outs)
        finally:
            self._run = None

    def _set_device(self, device: str | torch.device) -> None:
        device = resolve_device(device)  # auto: CUDA where present; refuses one this lacks
        if self.flush_denormals:
            check_flush_device(device, "flush_denormals")
        if device.type == "cuda":
            exact_float32()  # no TF32 convolutions: float32 is float32, as on the CPU
        if device != self._device:
            self._model.to(device)
            self._device = device

    def observe(
        self, x: torch.Tensor, observer: Callable[[WritePoint, torch.Tensor], None]
    ) -> torch.Tensor:
        """Clean forward of ``x`` calling ``observer(point, stored)`` at every write; returns logits.

        ``stored`` is the tensor as stored (float storage or int8 codes); do not modify it.
        """
        points = self.write_points(x)
        return self._forward(self._to_device(x), [None] * len(points), 0, 0, observer=observer)

    def logits(
        self,
        x: torch.Tensor,
        channel: ChannelSpec = None,
        seed: int | None = 0,
        *,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """Logits of one batch ``x`` (batch index 0 for seeding)."""
        self._set_device(device)
        channels = resolve_channels(channel, self.write_points(x))
        xb = self._to_device(x)  # after discovery: a compute fallback may change the dtype
        base = secrets.randbits(63) if seed is None else seed
        return self._forward(xb, channels, base, 0)

    def evaluate(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        channel: ChannelSpec,
        *,
        seed: int | None,
        batch_size: int = 256,
        device: str | torch.device = "cpu",
        limit: int | None = None,
        progress: bool = False,
        per_image: bool = False,
    ) -> EvalResult:
        """Classification accuracy under ``channel`` on inputs ``x`` with labels ``y``.

        Parameters
        ----------
        x, y : Tensor
            Inputs (preprocessed) and integer labels, same length.
        channel : Channel, callable (WritePoint) -> Channel, or None
            The noise at every write (None: clean).
        seed : int or None
            Run seed; None draws fresh entropy.
        batch_size : int
            Images per forward pass (changes which flips an image gets, not their statistics).
        device : str
            Torch device to run on.
        limit : int, optional
            Evaluate only the first ``limit`` images.
        progress : bool
            Show a progress bar.
        per_image : bool
            Also return which images were classified correctly (:attr:`EvalResult.per_image`).
        """
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            raise TypeError("x and y must be tensors (inputs and integer labels).")
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length. Got {len(x)} and {len(y)}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"The 'batch_size' parameter must be a positive int. Got {batch_size!r}."
            )
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(
                    f"The 'limit' parameter must be a positive int or None. Got {limit!r}."
                )
            if limit > len(x):
                raise ValueError(
                    f"The 'limit' parameter asks for {limit} images; x holds {len(x)}."
                )
            x, y = x[:limit], y[:limit]
        n = len(x)
        if n == 0:
            raise ValueError("Cannot evaluate on an empty data set.")
        # Checked even for a noiseless run: a seed that could not drive noise is an error.
        base = secrets.randbits(63) if seed is None else check_seed(seed)
        self._set_device(device)
        channels = resolve_channels(channel, self.write_points(x[:2]))
        starts = range(0, n, batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=f"eval {self.fmt}", unit="batch")
        correct = nonfinite = 0
        hits: list[torch.Tensor] = []
        for batch, start in enumerate(starts):
            xb = self._to_device(x[start : start + batch_size])
            logits = self._forward(xb, channels, base, batch)
            labels = y[start : start + batch_size].to(logits.device)
            hit = logits.argmax(dim=1) == labels
            correct += int(hit.sum())
            if per_image:
                hits.append(hit.cpu())
            nonfinite += int((~torch.isfinite(logits).all(dim=1)).sum())
        return EvalResult(
            accuracy=correct / n,
            n_images=n,
            nonfinite_fraction=nonfinite / n,
            correct=correct,
            per_image=torch.cat(hits) if per_image else None,
        )
