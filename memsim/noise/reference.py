"""The dense reference operator: the oracle and the speed baseline of every bit-flip engine.

For each word it draws one float64 uniform per noisy bit for the 0→1 mask ``f1`` and one for
the 1→0 mask ``f2`` and applies ``y = (x | f1) ^ (x & f2)`` exactly as docs/design.md §3 writes it.
float64 uniforms keep probabilities down to 1e-12 exact (float32 would stop near 6e-8). It runs
on any torch device with float64 (CPU, CUDA; not MPS) and works through the tensor in chunks so
memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from memsim.formats import StorageFormat
from memsim.noise.engine import ENGINES, FLOAT64_DEVICES, Engine
from memsim.noise.rates import Layer
from memsim.rng import seeded_torch_generator

#: Bits per chunk: 2**22 float64 uniforms are 32 MiB, plus a few same-sized temporaries.
CHUNK_BITS = 1 << 22


def _bernoulli_mask(
    n: int, p: list[float], shifts: list[int], gen: torch.Generator
) -> torch.Tensor:
    """int64 words whose bit ``shifts[j]`` is set with probability ``p[j]`` (float64 uniforms)."""
    device = gen.device
    u = torch.rand((len(p), n), dtype=torch.float64, generator=gen, device=device)
    mask = torch.zeros(n, dtype=torch.int64, device=device)
    for j, (pj, sj) in enumerate(zip(p, shifts)):  # one row per position: cheaper than a reduction
        mask |= (u[j] < pj).to(torch.int64) << sj
    return mask


class ReferenceEngine(Engine):
    """Dense per-bit Bernoulli masks; any device."""

    name = "reference"
    devices = FLOAT64_DEVICES  # float64 uniforms

    def apply_(self, words: torch.Tensor, fmt: StorageFormat, layers: Sequence[Layer]) -> None:
        device = words.device
        width = fmt.width
        plans = []
        for layer in layers:
            noisy = [pos for pos in range(width) if layer.p01[pos] > 0 or layer.p10[pos] > 0]
            if not noisy:
                continue
            gen = seeded_torch_generator(layer.seed, device)
            plans.append(
                (
                    [float(layer.p01[pos]) for pos in noisy],
                    [float(layer.p10[pos]) for pos in noisy],
                    [width - 1 - pos for pos in noisy],
                    gen,
                )
            )
        if not plans:
            return
        chunk = max(1, CHUNK_BITS // width)
        for start in range(0, words.numel(), chunk):
            x = words[start : start + chunk]
            n = x.numel()
            f1 = torch.zeros(n, dtype=torch.int64, device=device)
            f2 = torch.zeros(n, dtype=torch.int64, device=device)
            for p01, p10, shifts, gen in plans:  # several layers: a union of events
                f1 |= _bernoulli_mask(n, p01, shifts, gen)
                f2 |= _bernoulli_mask(n, p10, shifts, gen)
            # int64 -> narrower integer keeps the low bits (two's-complement wrap-around).
            x.copy_((x | f1.to(x.dtype)) ^ (x & f2.to(x.dtype)))


ENGINES.register("reference", ReferenceEngine())
