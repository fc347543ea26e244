"""Mixed storage: a write point stored as int8 codes inside a float network.

A per-layer policy (``policies.impl.per_layer``) may store one layer's activations as int8
while the rest of the network stays float. :class:`Int8Write` is the channel of such a write:
it quantizes the float tensor to int8 codes with the point's calibrated affine parameters
(:func:`memsim.inference.int8.calibrate`), lets the layer's own int8 channel corrupt the codes,
and writes the dequantized values back in place. It is never skipped, since quantization
changes values even without noise. Weights are not quantized (only the activation write is
stored as int8), unlike the whole-network int8 mode of :class:`~memsim.inference.network.NoisyNetwork`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from memsim.inference.graph import make_taps
from memsim.inference.int8 import QParams, calibrate, dequantize_into_, quantize
from memsim.noise.channel import Channel


@dataclass(frozen=True, eq=False)
class Int8Write(Channel):
    """Quantize → corrupt the codes with ``inner`` (None: exact) → dequantize, in place."""

    q: QParams
    inner: Channel | None = None

    def apply_(self, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        codes = quantize(x, self.q)
        if self.inner is not None:
            self.inner.apply_(codes, seed)
        return dequantize_into_(x, codes, self.q)


def int8_point_qparams(
    model: nn.Module,
    example: torch.Tensor,
    calibration: torch.Tensor,
    *,
    granularity: str = "module",
    noisy_input: bool = False,
) -> dict[int, QParams]:
    """Affine int8 parameters of every write point (by index, at ``granularity``), calibrated
    on a float32 copy."""
    float_model = copy.deepcopy(model).float().eval()
    taps = make_taps(
        float_model, example[:2].float(), granularity, noisy_input=noisy_input, fmt="int8"
    )
    cal = calibrate(float_model, taps, calibration)
    out = dict(cal.activations)
    for wp in taps.points:
        if wp.role == "input":
            out[wp.index] = cal.network_input
    return out
