"""Bit-flip engines by name: the built-in engines, ``auto`` dispatch and name resolution.

The interface and the registry are in :mod:`memsim.noise.engine`; importing this module
registers the built-in engines (``reference``, ``numba``, ``torch``) and ``auto``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from memsim.formats import StorageFormat
from memsim.noise import numba_engine, reference, torch_engine  # noqa: F401  (registration)
from memsim.noise.engine import ENGINES, Engine
from memsim.noise.rates import Layer

__all__ = ["ENGINES", "AutoEngine", "Engine", "engine_by_name", "get_engine"]


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
