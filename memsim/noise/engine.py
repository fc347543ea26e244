"""Bit-flip engines: the interface and the registry that implementations register into.

An engine receives the stored words of a tensor as a 1-D contiguous torch integer tensor of the
format's width (a view of the caller's storage, so writes land in place) and a list of
:class:`~memsim.noise.rates.Layer`. It flips every bit independently with the layer's
per-position ``p01``/``p10`` (chosen by the bit's stored value); with several layers a bit
flips when *any* layer selects it (union, not XOR), each layer judged against the original
stored bit. A ladder call passes a :class:`~memsim.noise.rates.LadderLayers`: its layers are
built when accessed, and its ``ladder`` (the whole table) lets an engine sample the entry in
one pass instead (nested Poisson hits per level), with the same law and the same nesting.

Call order: ``ENGINES.get(name)`` → ``check_device(device)`` → ``apply_(words, fmt, layers)``.
Third-party engines register under the entry-point group ``memsim.noise_engines``;
:mod:`memsim.noise.engines` imports the built-in ones and resolves names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch

from memsim.formats import StorageFormat
from memsim.noise.rates import Layer
from memsim.registry import Registry

#: Device types with float64 tensors, which the built-in engines' exact draws need (MPS has none).
FLOAT64_DEVICES = ("cpu", "cuda")


class Engine(ABC):
    """A way to apply independent bit flips to a word tensor in place."""

    name: str = ""
    #: Device types the engine runs on (``None`` = any).
    devices: tuple[str, ...] | None = None

    def check_device(self, device: torch.device) -> None:
        """Raise ``ValueError`` if the engine cannot run on ``device``."""
        if self.devices is not None and device.type not in self.devices:
            hint = (
                " Use engine='auto' or engine='torch'."
                if device.type in FLOAT64_DEVICES
                else f" No engine draws on {device.type}: it has no float64 (compute on cpu or "
                "cuda)."
            )
            raise ValueError(
                f"engine '{self.name}' runs on {', '.join(self.devices)} tensors only; x is on "
                f"{device}.{hint}"
            )

    @abstractmethod
    def apply_(self, words: torch.Tensor, fmt: StorageFormat, layers: Sequence[Layer]) -> None:
        """Flip bits of ``words`` (1-D, contiguous, integer view of ``fmt``) in place."""


ENGINES: Registry[Engine] = Registry("bit-flip engine", entry_point_group="memsim.noise_engines")
