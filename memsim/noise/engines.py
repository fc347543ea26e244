"""Bit-flip engines: the interface, the registry and ``auto`` dispatch.

An engine receives the stored words of a tensor as a 1-D contiguous torch integer tensor of the
format's width (a view of the caller's storage, so writes land in place) and a list of
:class:`~memsim.noise.rates.Layer`. It flips every bit independently with the layer's
per-position ``p01``/``p10`` (chosen by the bit's stored value); with several layers a bit
flips when *any* layer selects it (union, not XOR), each layer judged against the original
stored bit.

Call order: ``ENGINES.get(name)`` → ``check_device(device)`` → ``apply_(words, fmt, layers)``.
Third-party engines register under the entry-point group ``memsim.noise_engines``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from memsim.formats import StorageFormat
from memsim.noise.rates import Layer
from memsim.registry import Registry


class Engine(ABC):
    """A way to apply independent bit flips to a word tensor in place."""

    name: str = ""
    #: Device types the engine runs on (``None`` = any).
    devices: tuple[str, ...] | None = None

    def check_device(self, device: torch.device) -> None:
        """Raise ``ValueError`` if the engine cannot run on ``device``."""
        if self.devices is not None and device.type not in self.devices:
            raise ValueError(
                f"engine '{self.name}' runs on {', '.join(self.devices)} tensors only; x is on "
                f"{device}. Use engine='auto' or engine='torch'."
            )

    @abstractmethod
    def apply_(self, words: torch.Tensor, fmt: StorageFormat, layers: Sequence[Layer]) -> None:
        """Flip bits of ``words`` (1-D, contiguous, integer view of ``fmt``) in place."""


ENGINES: Registry[Engine] = Registry("bit-flip engine", entry_point_group="memsim.noise_engines")


class AutoEngine(Engine):
    """Numba on CPU, the sparse torch engine elsewhere (CUDA)."""

    name = "auto"

    def select(self, device: torch.device) -> Engine:
        return ENGINES.get("numba" if device.type == "cpu" else "torch")

    def check_device(self, device: torch.device) -> None:
        self.select(device).check_device(device)

    def apply_(self, words: torch.Tensor, fmt: StorageFormat, layers: Sequence[Layer]) -> None:
        self.select(words.device).apply_(words, fmt, layers)


ENGINES.register("auto", AutoEngine())


def engine_by_name(name: str) -> Engine:
    """The engine registered as ``name`` (built-ins and entry points).

    Raises
    ------
    TypeError
        When ``name`` is not a string.
    ValueError
        For an unknown name (the known names are listed).
    """
    if not isinstance(name, str):
        raise TypeError(f"engine must be a name such as 'auto'. Got {name!r}.")
    _load_builtin()
    try:
        return ENGINES.get(name)
    except ValueError as exc:
        raise ValueError(f"engine: {exc}") from None


def get_engine(name: str, device: torch.device) -> Engine:
    """The engine called ``name``, checked to run on ``device`` (``auto`` resolved).

    Raises
    ------
    TypeError
        When ``name`` is not a string.
    ValueError
        For an unknown name (known names are listed) or an engine that cannot run on ``device``.
    """
    engine = engine_by_name(name)
    engine.check_device(device)
    if isinstance(engine, AutoEngine):
        return engine.select(device)
    return engine


_builtin_loaded = False


def _load_builtin() -> None:
    # Imported lazily: the engines register themselves, and Numba loads only when needed.
    global _builtin_loaded
    if not _builtin_loaded:
        from memsim.noise import numba_engine, reference, torch_engine  # noqa: F401

        _builtin_loaded = True
