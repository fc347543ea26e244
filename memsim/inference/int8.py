"""int8 and int4 static post-training quantization, simulated so that flips hit real codes.

int4 is the same recipe with 4-bit codes (activations in [-8, 7], weights in [-7, 7]), stored
two codes per byte (:func:`pack_int4`: the first element in the high nibble), and the channel
flips the packed bytes (:class:`memsim.noise.channel.BitFlip` on ``int4``). Everything below
that says int8 holds for int4 with those ranges; biases are int32 codes in both.

Where it sits: :class:`memsim.inference.network.NoisyNetwork` uses this module for ``fmt="int8"``
(docs/design.md §3). The network computes in float32 (fake quantization); what is *stored* is int8:

* **Activations**: per-tensor affine int8 (scale, zero point over [-128, 127]) per write
  point, calibrated on a calibration subset by observing each write point's range on the
  float32 network: ``minmax`` (default; the range always includes 0 so that 0 is exact) or
  ``percentile`` (the ``percentile``-th / ``100-percentile``-th value per calibration batch,
  averaged over batches; clips rare outliers). At every write the output is quantized to its
  int8 codes, the channel flips the *codes*, and the codes are dequantized
  (:class:`Int8Storage`).
* **The network input** is always stored as int8 (its own calibrated affine parameters); it
  is a noisy write only with ``noisy_input=True``.
* **Weights** of convolution and linear layers: per-output-channel symmetric int8 (codes in
  [-127, 127], scale = max|w| / 127). **Biases** of those layers: int32 codes with scale
  ``input_scale × weight_scale[c]`` (the input scale is calibrated on the layer's input).
  Weights and biases are replaced by their dequantized values once (fake quantization);
  programming-time noise flips the codes (int8 for weights, int32 for biases) before that.
* Other parameters (batch-norm affine, PReLU) stay float32: in a deployed int8 network batch
  norm folds into the preceding convolution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from memsim.inference.taps import WEIGHTED_LAYERS, Taps, WritePoint, parameter_points
from memsim.noise.channel import Channel
from memsim.rng import child_seed

if TYPE_CHECKING:
    from memsim.inference.graph import GraphTaps

QMIN, QMAX = -128, 127
CALIBRATION_METHODS = ("minmax", "percentile")
#: Integer storage formats and their code width in bits.
INT_FORMATS = {"int8": 8, "int4": 4}


def code_range(bits: int) -> tuple[int, int]:
    """Smallest and largest two's-complement code of ``bits`` bits."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def pack_int4(codes: torch.Tensor) -> torch.Tensor:
    """int4 codes (an integer tensor with values in [-8, 7]) → uint8 bytes, two per byte.

    The first element of each pair goes in the high nibble; an odd count is padded with 0.
    """
    flat = codes.reshape(-1).to(torch.int16) & 0xF
    if flat.numel() % 2:
        flat = torch.cat([flat, flat.new_zeros(1)])
    return ((flat[0::2] << 4) | flat[1::2]).to(torch.uint8)


def unpack_int4(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """The first ``numel`` int4 codes (int8 tensor, values in [-8, 7]) of packed bytes."""
    b = packed.to(torch.int16)
    nibbles = torch.stack([b >> 4, b & 0xF], dim=1).reshape(-1)[:numel]
    return ((nibbles ^ 8) - 8).to(torch.int8)


@dataclass(frozen=True)
class QParams:
    """Per-tensor affine int8 parameters: ``value = (code - zero_point) * scale``."""

    scale: float
    zero_point: int


def affine_qparams(lo: float, hi: float, bits: int = 8) -> QParams:
    """Affine ``bits``-bit parameters covering ``[lo, hi]`` (extended to include 0)."""
    qmin, qmax = code_range(bits)
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / (qmax - qmin)
    if not scale > 0 or not torch.isfinite(torch.tensor(scale)):
        return QParams(1.0, 0)
    zero_point = int(round(qmin - lo / scale))
    return QParams(scale, max(qmin, min(qmax, zero_point)))


def quantize(x: torch.Tensor, q: QParams, bits: int = 8) -> torch.Tensor:
    """``bits``-bit codes of ``x`` as int8 (round half to even, saturating)."""
    qmin, qmax = code_range(bits)
    codes = torch.round(x * (1.0 / q.scale))
    codes.add_(q.zero_point).clamp_(qmin, qmax)
    return codes.to(torch.int8)


def dequantize_into_(out: torch.Tensor, codes: torch.Tensor, q: QParams) -> torch.Tensor:
    """Write the values of ``codes`` into ``out`` (in place) and return ``out``."""
    out.copy_(codes)
    out.sub_(q.zero_point).mul_(q.scale)
    return out


class _RangeObserver:
    def __init__(self, method: str, percentile: float, bits: int = 8) -> None:
        self.method, self.percentile, self.bits = method, percentile, bits
        self.lo: dict[object, list[float]] = {}
        self.hi: dict[object, list[float]] = {}

    def observe(self, key: object, x: torch.Tensor) -> None:
        flat = x.detach().reshape(-1).float()
        if self.method == "minmax":
            lo, hi = flat.min().item(), flat.max().item()
            self.lo[key] = [min(self.lo.get(key, [lo])[0], lo)]
            self.hi[key] = [max(self.hi.get(key, [hi])[0], hi)]
            return
        k_lo = max(1, int(round(flat.numel() * (100.0 - self.percentile) / 100.0)))
        k_hi = max(1, flat.numel() - k_lo + 1)
        self.lo.setdefault(key, []).append(flat.kthvalue(k_lo).values.item())
        self.hi.setdefault(key, []).append(flat.kthvalue(k_hi).values.item())

    def qparams(self, key: object) -> QParams:
        lo, hi = self.lo[key], self.hi[key]
        return affine_qparams(sum(lo) / len(lo), sum(hi) / len(hi), self.bits)


@dataclass
class Calibration:
    """Calibrated int8 parameters of one network."""

    activations: dict[int, QParams]  # by write-point index
    network_input: QParams
    layer_inputs: dict[str, QParams]  # by module name, for bias scales


def calibrate(
    model: nn.Module,
    taps: Taps | GraphTaps,
    calibration: torch.Tensor,
    *,
    method: str = "minmax",
    percentile: float = 99.99,
    batch_size: int = 256,
    bits: int = 8,
) -> Calibration:
    """Observe every write point's range on ``calibration`` inputs (float32 model).

    Parameters
    ----------
    model : nn.Module
        The float32 network that ``taps`` was built on.
    taps : Taps
        Its write points.
    calibration : Tensor
        Calibration inputs (a training subset, typically a few hundred images).
    method : {"minmax", "percentile"}
        Range estimate (see the module docstring).
    percentile : float
        Upper percentile for ``method="percentile"``, in (50, 100].
    batch_size : int
        Images per calibration forward pass.
    bits : int
        Code width of the activations (8 for int8, 4 for int4).
    """
    if not isinstance(calibration, torch.Tensor) or calibration.dim() == 0 or len(calibration) == 0:
        raise ValueError("calibration must be a non-empty tensor of calibration inputs.")
    if method not in CALIBRATION_METHODS:
        raise ValueError(
            f"Unknown calibration method '{method}'. Known methods: {', '.join(CALIBRATION_METHODS)}."
        )
    if not 50.0 < percentile <= 100.0:
        raise ValueError(
            f"The 'percentile' parameter must be a float in (50, 100]. Got {percentile}."
        )
    obs = _RangeObserver(method, percentile, bits)

    def on_write(wp: WritePoint, x: torch.Tensor) -> torch.Tensor:
        if wp.role == "activation":
            obs.observe(wp.index, x)
        return x

    def layer_input(name: str):
        def pre(module: nn.Module, args: tuple) -> None:
            obs.observe(name, args[0])

        return pre

    handles = [
        m.register_forward_pre_hook(layer_input(n))
        for n, m in model.named_modules()
        if isinstance(m, WEIGHTED_LAYERS)
    ]
    try:
        with torch.no_grad(), taps.hooked(on_write):
            for start in range(0, len(calibration), batch_size):
                batch = calibration[start : start + batch_size].float()
                obs.observe("input", batch)
                model(batch)
    finally:
        for h in handles:
            h.remove()
    return Calibration(
        activations={
            wp.index: obs.qparams(wp.index) for wp in taps.points if wp.role == "activation"
        },
        network_input=obs.qparams("input"),
        layer_inputs={k: obs.qparams(k) for k in obs.lo if isinstance(k, str) and k != "input"},
    )


#: The channel that corrupts a parameter's stored codes, or None for a noiseless one.
ChannelFor = Callable[[WritePoint], Channel | None]


def quantize_parameters_(
    model: nn.Module,
    cal: Calibration,
    weight_channel: ChannelFor | None = None,
    weight_seed: int | None = None,
    fmt: str = "int8",
) -> list[tuple[WritePoint, torch.Tensor]]:
    """Replace conv/linear weights and biases by their int8/int32 fake-quantized values.

    ``weight_channel(point)`` (a resolved per-parameter channel, or None) corrupts the stored
    codes once, with seed ``child_seed(weight_seed, "weight", point.index)``. Returns the
    parameter write points (weights ``fmt``: ``int8``, or ``int4`` packed two per byte;
    biases ``int32``) with their stored codes.
    """
    qmax = code_range(INT_FORMATS[fmt])[1]
    points: list[tuple[WritePoint, torch.Tensor]] = []
    modules = dict(model.named_modules())
    base = child_seed(None) if weight_seed is None else weight_seed
    with torch.no_grad():
        for wp, param in parameter_points(model, fmt):
            owner_name = wp.name.rpartition(".")[0]
            owner = modules.get(owner_name)
            if not isinstance(owner, WEIGHTED_LAYERS) or wp.name.rpartition(".")[2] not in (
                "weight",
                "bias",
            ):
                continue
            if wp.role == "weight":
                w = param.detach().float()
                # ConvTranspose stores output channels on dim 1; others on dim 0.
                ch_dim = (
                    1
                    if isinstance(
                        owner, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d
                    )
                    else 0
                )
                amax = w.abs().amax(dim=[d for d in range(w.dim()) if d != ch_dim], keepdim=True)
                scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
                codes = torch.round(w / scale).clamp_(-qmax, qmax).to(torch.int8)
                owner._memsim_weight_scale = scale.reshape(-1)  # for the bias scale below
                wp = _with_format(wp, fmt, len(points))
            else:
                w_scale = getattr(owner, "_memsim_weight_scale", None)
                in_q = cal.layer_inputs.get(owner_name)
                if w_scale is None or in_q is None:
                    continue
                scale = (w_scale * in_q.scale).double()
                codes = (
                    torch.round(param.detach().double() / scale)
                    .clamp_(-(2**31), 2**31 - 1)
                    .to(torch.int32)
                )
                wp = _with_format(wp, "int32", len(points))
            stored = pack_int4(codes) if wp.format == "int4" else codes
            points.append((wp, stored))
            channel = weight_channel(wp) if weight_channel is not None else None
            if channel is not None and not channel.is_noiseless:
                channel.apply_(stored, child_seed(base, "weight", wp.index))
            if wp.format == "int4":
                codes = unpack_int4(stored, codes.numel()).reshape(codes.shape)
            param.copy_((codes.double() * scale.double()).to(param.dtype))
        for m in modules.values():
            if hasattr(m, "_memsim_weight_scale"):
                del m._memsim_weight_scale
    return points


def _with_format(wp: WritePoint, fmt: str, index: int) -> WritePoint:
    return WritePoint(index, wp.name, wp.module_type, wp.role, wp.shape, 0, fmt, wp.members)


class Int8Storage:
    """Stores activations as integer codes: quantize → (channel on codes) → dequantize.

    ``fmt="int4"`` stores 4-bit codes packed two per byte (uint8), and the channel flips the
    packed bytes.
    """

    def __init__(self, cal: Calibration, fmt: str = "int8") -> None:
        self.cal = cal
        self.fmt = fmt
        self.bits = INT_FORMATS[fmt]

    def qparams(self, wp: WritePoint) -> QParams:
        return self.cal.network_input if wp.role == "input" else self.cal.activations[wp.index]

    def store(self, wp: WritePoint, x: torch.Tensor) -> torch.Tensor:
        codes = quantize(x, self.qparams(wp), self.bits)
        return pack_int4(codes) if self.bits == 4 else codes

    def load(self, wp: WritePoint, stored: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.bits == 4:
            stored = unpack_int4(stored, out.numel()).reshape(out.shape)
        return dequantize_into_(out, stored, self.qparams(wp))

    @property
    def always_round_trip(self) -> bool:
        """Quantization changes values even without noise, so it is never skipped."""
        return True
