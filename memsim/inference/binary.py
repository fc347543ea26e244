"""The binary-layer interface: how the engine finds ±1 weights and binary activations.

Binarized networks live in workloads (:mod:`workloads.bnn_layers`); the engine (fault maps in
:mod:`memsim.inference.faults`, the noisy network) must not import them. Instead a workload
registers its layer classes here, and the engine asks this module which modules of a model
store binary weights and which write binary activations.

A binary-weight layer (:class:`BinaryWeightLayer`) keeps latent real weights whose signs are
the stored bits (bit 1 = +1), reports them with ``stored_bits()``, and reads its weights
through ``fault_mask`` (a bool tensor of the weight's shape, True = the cell reads the wrong
sign, or None). Call order for a user: :func:`register_binary_weights` /
:func:`register_binary_activation` once per class (as a class decorator), then
:func:`binary_weight_layers` / :func:`binary_activations` on a model.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

import torch
from torch import nn

T = TypeVar("T", bound=type)


@runtime_checkable
class BinaryWeightLayer(Protocol):
    """A module whose weights are stored one bit per cell (their signs)."""

    weight: torch.Tensor
    fault_mask: torch.Tensor | None

    def stored_bits(self) -> torch.Tensor:
        """The programmed bits (uint8, 1 = +1), fault-free, weight-shaped."""
        ...


_WEIGHT_TYPES: list[type] = []
_ACTIVATION_TYPES: list[type[nn.Module]] = []


def register_binary_weights(cls: T) -> T:
    """Class decorator: instances of ``cls`` store binary weights (see :class:`BinaryWeightLayer`)."""
    for name in ("stored_bits", "forward"):
        if not callable(getattr(cls, name, None)):
            raise TypeError(f"{cls.__name__} cannot be a binary-weight layer: it has no {name}().")
    if cls not in _WEIGHT_TYPES:
        _WEIGHT_TYPES.append(cls)
    return cls


def register_binary_activation(cls: T) -> T:
    """Class decorator: every call of a ``cls`` module writes a ±1 activation tensor."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"A binary activation must be an nn.Module class. Got {cls!r}.")
    if cls not in _ACTIVATION_TYPES:
        _ACTIVATION_TYPES.append(cls)
    return cls


def binary_weight_layers(model: nn.Module) -> list[tuple[str, BinaryWeightLayer]]:
    """The modules of ``model`` with binary weights (in the RRAM weight memory), in order."""
    kinds = tuple(_WEIGHT_TYPES)
    return [(n, m) for n, m in model.named_modules() if kinds and isinstance(m, kinds)]  # type: ignore[misc]


def binary_activations(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules of ``model`` that write binary activations, in order."""
    kinds = tuple(_ACTIVATION_TYPES)
    return [(n, m) for n, m in model.named_modules() if kinds and isinstance(m, kinds)]
