"""Binary layers: sign with a straight-through gradient, ±1-weight linear and conv layers.

The building blocks of the binarized networks in :mod:`workloads.bnn`; one bit per RRAM cell,
bit 1 = +1, bit 0 = −1. The layer classes register with :mod:`memsim.inference.binary`, so the
engine's fault maps (:mod:`memsim.inference.faults`) find them without importing this module;
the training hooks at the end (:class:`ClipLatentWeights`, :class:`ErrorAwareFlips`) plug them
into the one training loop (:mod:`workloads.train`).

Layers (Courbariaux et al. 2016, Hirtzlin et al. 2019):

* latent real weights are kept for training; the forward pass uses ``sign(w)`` with
  ``sign(0) = +1``; the gradient is the straight-through estimator clipped like a hardtanh
  (it passes where ``|w| <= 1``; :class:`ClipLatentWeights` clips the latent weights to
  [-1, 1] after every training step);
* activations are ``sign(x)`` with the same clipped straight-through gradient;
* a :class:`BinaryLinear`/:class:`BinaryConv2d` layer's weight signs can be flipped by a
  persistent fault map (``fault_mask``, set by :mod:`memsim.inference.faults`) and, during
  error-aware training, by fresh random flips on every forward call (``train_flips``);
* binary convolutions pad with −1 (bit 0), so with ±1 inputs everything they compute is an
  XNOR-popcount: ``out = 2·popcount(xnor(a, w)) − n`` (:func:`xnor_popcount` is that oracle).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memsim.inference.binary import (
    binary_weight_layers,
    register_binary_activation,
    register_binary_weights,
)
from memsim.rng import child_seed, torch_generator


def sign(x: torch.Tensor) -> torch.Tensor:
    """±1 with ``sign(0) = +1`` (bit 1 = +1 = ``x >= 0``)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def binarize(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` forward; hardtanh-clipped straight-through gradient (1 where ``|x| <= 1``)."""
    clipped = x.clamp(-1.0, 1.0)
    return clipped + (sign(x) - clipped).detach()


@register_binary_activation
class SignActivation(nn.Module):
    """Binary activation: the ±1 tensor a binarized layer writes (a write point)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return binarize(x)


class _BinaryWeights:
    """Mixin: binary weights, a persistent fault map and error-aware training flips.

    ``fault_mask`` (bool, weight-shaped, or None) flips the signs of faulty cells on every
    forward call; ``train_flips`` = ``(p01, p10, generator)`` draws fresh flips on every
    forward call in training mode (a stored −1 flips with ``p01``, a stored +1 with ``p10``).
    """

    weight: torch.Tensor
    training: bool
    fault_mask: torch.Tensor | None
    train_flips: tuple[float, float, torch.Generator] | None

    def _init_flags(self) -> None:
        self.fault_mask = None
        self.train_flips = None

    def stored_bits(self) -> torch.Tensor:
        """The bits programmed into the weight memory (uint8, 1 = +1), fault-free."""
        return (self.weight.detach() >= 0).to(torch.uint8)

    def binary_weight(self) -> torch.Tensor:
        """``sign(w)`` as read from the (possibly faulty) memory, differentiable by STE."""
        wb = binarize(self.weight)
        flips = self.fault_mask
        if self.training and self.train_flips is not None:
            p01, p10, gen = self.train_flips
            # Drawn on the generator's device (the same draws whatever the weights' device),
            # compared on the weights'.
            u = torch.rand(wb.shape, generator=gen, dtype=torch.float64, device=gen.device)
            p = torch.where(wb.detach() >= 0, p10, p01).to(torch.float64)
            fresh = u.to(wb.device) < p
            flips = fresh if flips is None else flips.to(wb.device) ^ fresh
        if flips is None:
            return wb
        return wb * (1.0 - 2.0 * flips.to(wb.device, wb.dtype))


@register_binary_weights
class BinaryLinear(nn.Linear, _BinaryWeights):
    """Linear layer with ±1 weights and no bias (the following batch norm supplies it)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)
        self._init_flags()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.binary_weight())


@register_binary_weights
class BinaryConv2d(nn.Conv2d, _BinaryWeights):
    """3×3-style convolution with ±1 weights, no bias, padded with −1 (bit 0)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=0, bias=False)
        self.pad = int(padding)
        self._init_flags()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            # −1 padding keeps a ±1 input binary, so the layer stays an XNOR-popcount.
            x = F.pad(x, (self.pad,) * 4, value=-1.0)
        return F.conv2d(x, self.binary_weight())


BINARY_LAYERS = (BinaryLinear, BinaryConv2d)


def xnor_popcount(a_bits: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
    """Integer oracle of a binary dot product: ``2·popcount(xnor(a, w)) − n``.

    Parameters
    ----------
    a_bits : array of {0, 1}, shape (batch, n)
        Input bits (1 = +1).
    w_bits : array of {0, 1}, shape (out, n)
        Weight bits (1 = +1).

    Returns
    -------
    numpy.ndarray of int64, shape (batch, out)
    """
    a = np.packbits(np.asarray(a_bits, dtype=np.uint8), axis=1)
    w = np.packbits(np.asarray(w_bits, dtype=np.uint8), axis=1)
    n = np.asarray(a_bits).shape[1]
    # packbits pads the last byte with zeros in both operands; XNOR turns them into 1s.
    pad = a.shape[1] * 8 - n
    same = np.bitwise_count(~(a[:, None, :] ^ w[None, :, :])).sum(axis=2, dtype=np.int64) - pad
    return 2 * same - n


def binary_layers(model: nn.Module) -> list[tuple[str, BinaryLinear | BinaryConv2d]]:
    """The layers whose weights are binary (stored in the RRAM weight memory), in order."""
    return binary_weight_layers(model)  # type: ignore[return-value]


def clip_latent_weights_(model: nn.Module) -> None:
    """Clip latent binary weights to [-1, 1] (outside, the STE gradient is zero anyway)."""
    with torch.no_grad():
        for _, layer in binary_layers(model):
            layer.weight.clamp_(-1.0, 1.0)


# --------------------------------------------------------------------------- training hooks


class ClipLatentWeights:
    """Training hook: latent binary weights clipped to [-1, 1] after every optimizer step."""

    @contextlib.contextmanager
    def training(self, model: nn.Module, config) -> Iterator[None]:
        yield

    def after_step(self, model: nn.Module) -> None:
        clip_latent_weights_(model)


class ErrorAwareFlips:
    """Training hook: fresh weight-sign flips on every training forward pass (error-aware training).

    A stored −1 flips with ``config.weight_noise_p``, a stored +1 with ``weight_noise_p10``
    (Hirtzlin et al. 2019); the gradient flows through the flipped weights (what the network
    computed). Each layer draws from its own generator seeded by ``(seed, "flips")`` and its
    name, so the flips of one batch are independent of any other batch's and layer's.
    """

    @contextlib.contextmanager
    def training(self, model: nn.Module, config) -> Iterator[None]:
        p01, p10 = config.weight_noise_rates
        with error_aware(model, p01, p10, child_seed(config.seed, "flips")):
            yield

    def after_step(self, model: nn.Module) -> None:
        pass


@contextlib.contextmanager
def error_aware(model: nn.Module, p01: float, p10: float, seed: int) -> Iterator[None]:
    """Fresh weight-sign flips on every training forward pass of every binary layer."""
    layers = binary_layers(model)
    for name, layer in layers:
        layer.train_flips = (float(p01), float(p10), torch_generator(seed, "error-aware", name))
    try:
        yield
    finally:
        for _, layer in layers:
            layer.train_flips = None


def bnn_train_hooks(config) -> list:
    """The hooks of binarized training: clipping always, sign flips when error-aware."""
    return [ClipLatentWeights(), *([ErrorAwareFlips()] if config.weight_noisy else [])]
