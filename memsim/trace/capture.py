"""Tracing: the write trace of one inference, measured on real data.

Where it sits (docs/design.md §2): a workload's model and a batch of its data come in, a
:class:`memsim.trace.records.Trace` goes out to the memory model. Writes are the write points of
:mod:`memsim.inference.taps` / :mod:`memsim.inference.graph` (same ``granularity`` /
``noisy_input`` options as noisy inference), stored in
the format of :class:`memsim.inference.network.NoisyNetwork`; bit statistics (fraction of ones per bit
position, MSB first, and the fraction of all-zero words) are measured on the *stored* words
of the whole batch ``x``: float bit patterns, or int8 codes for ``int8``. Sizes are per
image.
"""

from __future__ import annotations

import torch
from torch import nn

from memsim.formats import get_format
from memsim.inference.int8 import INT_FORMATS
from memsim.inference.network import NoisyNetwork
from memsim.inference.taps import WritePoint
from memsim.noise.bits import bit_statistics as word_bit_statistics
from memsim.trace.records import Trace, WriteRecord, make_trace


def bit_statistics(stored: torch.Tensor, fmt: str | None = None) -> tuple[tuple[float, ...], float]:
    """Fraction of ones per bit position (MSB first) and fraction of all-zero words.

    Parameters
    ----------
    stored : Tensor
        Stored words: a float tensor (its bit pattern is read) or integer codes.
    fmt : str, optional
        The storage format when it is packed (``int4``: uint8 bytes of two codes); the
        statistics are then per code position (a padding code counts as a zero word).
    """
    if fmt is not None and get_format(fmt).packed:
        packed = get_format(fmt)
        ones, zero = bit_statistics(stored.to(torch.uint8))
        per = 8 // packed.width
        by_pos = [
            sum(ones[j * packed.width + k] for j in range(per)) / per for k in range(packed.width)
        ]
        codes = stored.reshape(-1).to(torch.int16)
        nibbles = torch.stack([(codes >> (packed.width * j)) & 0xF for j in range(per)])
        return tuple(by_pos), float((nibbles == 0).float().mean()) if codes.numel() else 0.0
    return word_bit_statistics(stored)


def _record(wp: WritePoint, stats: tuple[tuple[float, ...], float] | None, fmt: str) -> WriteRecord:
    ones, zero = stats if stats is not None else ((), 0.0)
    return WriteRecord(
        index=wp.index,
        name=wp.name,
        module_type=wp.module_type,
        role=wp.role,
        shape=tuple(wp.shape),
        numel=wp.numel,
        format=fmt,
        bits=get_format(fmt).width,
        ops=wp.ops,
        ones_fraction=ones,
        zero_fraction=zero,
    )


def trace_model(
    model: nn.Module | NoisyNetwork,
    x: torch.Tensor,
    fmt: str = "float32",
    *,
    workload_name: str,
    fused: bool = False,
    granularity: str | None = None,
    noisy_input: bool = False,
    include_weights: bool = False,
    calibration: torch.Tensor | None = None,
) -> Trace:
    """Trace the writes of ``model`` on the batch ``x`` stored in ``fmt``.

    Parameters
    ----------
    model : nn.Module or NoisyNetwork
        The network (a NoisyNetwork is traced as built; then ``fmt``, ``granularity``,
        ``noisy_input`` and ``calibration`` are taken from it).
    x : Tensor
        A batch of real inputs; bit statistics are averaged over it.
    fmt : str
        Storage format (see :data:`memsim.inference.network.INFERENCE_FORMATS`).
    workload_name : str
        Recorded in the trace.
    fused, noisy_input : bool
        Write-point options (see :mod:`memsim.inference.taps`).
    granularity : {"module", "op", "fused"}, optional
        Which tensors are writes (see :mod:`memsim.inference.graph`); ``fused=True`` is
        ``"fused"``.
    include_weights : bool
        Add one record per weight and bias (role ``weight``/``bias``; written once at
        programming time, listed before the activations).
    calibration : Tensor, optional
        int8 calibration inputs; defaults to ``x``.

    Returns
    -------
    Trace
        Records in execution order, sizes per image, ``images_measured = len(x)``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or len(x) == 0:
        raise ValueError("x must be a non-empty batch of inputs.")
    if isinstance(model, NoisyNetwork):
        net = model
    else:
        if fmt in INT_FORMATS and calibration is None:
            calibration = x
        net = NoisyNetwork(
            model,
            fmt,
            fused=fused,
            granularity=granularity,
            noisy_input=noisy_input,
            calibration=calibration,
        )
    points = net.write_points(x)
    stats: dict[int, tuple[tuple[float, ...], float]] = {}

    def observe(wp: WritePoint, stored: torch.Tensor) -> None:
        stats[wp.index] = bit_statistics(stored, net.fmt)

    net.observe(x, observe)

    records: list[WriteRecord] = []
    if include_weights:
        params = dict(net.model.named_parameters())
        for wp in net.weight_points:
            stored_fmt = wp.format or net.fmt
            stored = net.weight_codes.get(wp.name)
            if stored is None:
                stored = params[wp.name].detach().to(get_format(stored_fmt).torch_dtype)
            records.append(_record(wp, bit_statistics(stored, stored_fmt), stored_fmt))
    records += [_record(wp, stats.get(wp.index), net.fmt) for wp in points]
    meta = {
        "fused": net.fused,
        "granularity": net.granularity,
        "granularity_fallback": net.fallback,
        "noisy_input": net.noisy_input,
        "compute_dtype": str(net.compute_dtype).replace("torch.", ""),
        "weights_included": bool(include_weights),
    }
    return make_trace(workload_name, net.fmt, records, images_measured=len(x), meta=meta)
