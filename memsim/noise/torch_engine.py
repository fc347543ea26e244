"""The sparse engine in native torch ops, for CUDA tensors (it runs on CPU too).

Per group of positions with equal rates, and per block of ``M`` eligible bits, it draws the
number of candidate bits exactly, ``K ~ Binomial(M, pmax)`` (NumPy's float64 binomial on the
host: one scalar per block, no data leaves the device; we do not rely on ``torch.binomial``'s
precision at p ~ 1e-8), picks ``K`` distinct positions uniformly, and thins each candidate by its
stored bit's value (accept with ``p01 / pmax`` for a 0 and ``p10 / pmax`` for a 1). Where
``pmax`` is large a dense float64 draw is cheaper and is used instead; both are exactly
Bernoulli per bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from memsim.formats import StorageFormat
from memsim.noise.engine import ENGINES, FLOAT64_DEVICES, Engine
from memsim.noise.rates import Group, Layer

#: Above this candidate rate, drawing one uniform per bit beats sampling distinct positions.
DENSE_ABOVE = 0.25
#: Bits per dense chunk (bounded memory).
CHUNK_BITS = 1 << 22
#: Bits per sparse block: at most a quarter of them are candidates (a few 10 MiB of indices).
SPARSE_BLOCK_BITS = 1 << 24


def sample_distinct(m: int, k: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """``k`` distinct integers drawn uniformly from ``range(m)`` (sorted), without an O(m) permutation.

    Draw with replacement, drop duplicates, and draw only the shortfall again until ``k`` are
    distinct. The procedure is symmetric under relabelling of ``range(m)``, so the final set is
    uniform over all ``k``-subsets. Above ``k = m / 2`` it picks the ``m - k`` left out instead,
    so the top-up rounds stay few.
    """
    if 2 * k > m:
        keep = torch.ones(m, dtype=torch.bool, device=device)
        keep[sample_distinct(m, m - k, gen, device)] = False
        return keep.nonzero().squeeze(1)
    picked = torch.unique(torch.randint(m, (k,), generator=gen, device=device))
    chunks = [picked]
    have = picked.numel()
    while have < k:
        # PERF: top-up rounds are small; test them against the sorted chunks instead of re-sorting.
        extra = torch.unique(torch.randint(m, (k - have,), generator=gen, device=device))
        for chunk in chunks:
            if chunk.numel() == 0:
                continue
            at = torch.searchsorted(chunk, extra).clamp_(max=chunk.numel() - 1)
            extra = extra[chunk[at] != extra]
        chunks.append(extra)
        have += extra.numel()
    return torch.sort(torch.cat(chunks)).values if len(chunks) > 1 else picked


def xor_sorted_(words: torch.Tensor, events: torch.Tensor) -> None:
    """Flip the distinct bits ``events`` (``word * 64 + shift``, sorted by word) of ``words``."""
    word_idx, inverse = torch.unique_consecutive(events >> 6, return_inverse=True)
    masks = torch.zeros(word_idx.numel(), dtype=torch.int64, device=words.device)
    # Distinct bits of one word: the sum of their powers of two is their OR.
    masks.index_add_(0, inverse, torch.ones_like(events) << (events & 63))
    words[word_idx] ^= masks.to(words.dtype)  # int64 -> narrower keeps the low bits


def rate_by_bit(bit: torch.Tensor, one: float, zero: float) -> torch.Tensor:
    """``one`` where ``bit`` is 1, else ``zero``, in float64 on ``bit``'s device (Python floats in
    ``torch.where`` would make float32: a rate rounded by up to 6e-8 of itself)."""
    return torch.tensor([zero, one], dtype=torch.float64, device=bit.device)[bit]


class TorchEngine(Engine):
    """Exact sparse sampling with torch ops on the tensor's own device."""

    name = "torch"
    devices = FLOAT64_DEVICES  # float64 uniforms and rates

    def apply_(self, words: torch.Tensor, fmt: StorageFormat, layers: Sequence[Layer]) -> None:
        device = words.device
        n = words.numel()
        events = []  # word * 64 + shift, each judged against the original words
        for layer in layers:
            if layer.is_noiseless or n == 0:
                continue
            gen = torch.Generator(device=device)
            gen.manual_seed(layer.seed)
            counts = np.random.default_rng(layer.seed)
            for g in layer.groups:
                found = self._group_events(words, g, gen, counts)
                if len(layers) == 1:  # groups hold disjoint positions: flip at once
                    xor_sorted_(words, found)
                else:
                    events.append(found)
        if events:  # a bit chosen by two layers flips once
            xor_sorted_(words, torch.unique(torch.cat(events)))

    @staticmethod
    def _group_events(
        words: torch.Tensor, g: Group, gen: torch.Generator, counts: np.random.Generator
    ) -> torch.Tensor:
        device = words.device
        n = words.numel()
        npos = g.shifts.size
        shifts = torch.as_tensor(g.shifts, device=device)
        pmax = max(g.p01, g.p10)
        if pmax > DENSE_ABOVE:
            found = []
            rows = max(1, CHUNK_BITS // npos)
            for start in range(0, n, rows):
                x = words[start : start + rows].to(torch.int64)
                u = torch.rand((x.numel(), npos), dtype=torch.float64, generator=gen, device=device)
                bit = (x[:, None] >> shifts) & 1
                w, j = (u < rate_by_bit(bit, g.p10, g.p01)).nonzero(as_tuple=True)
                found.append((w + start) * 64 + shifts[j])
            return torch.cat(found)
        found = []
        rows = max(1, SPARSE_BLOCK_BITS // npos)
        # Disjoint blocks with their own Binomial counts: exact, and memory stays bounded.
        for start in range(0, n, rows):
            m = min(rows, n - start) * npos
            k = int(counts.binomial(m, pmax))
            idx = sample_distinct(m, k, gen, device)
            w = idx // npos + start
            s = shifts[idx % npos]
            if g.p01 != g.p10:
                bit = (words[w].to(torch.int64) >> s) & 1
                accept = rate_by_bit(bit, g.p10 / pmax, g.p01 / pmax)
                keep = torch.rand(k, dtype=torch.float64, generator=gen, device=device) < accept
                w, s = w[keep], s[keep]
            found.append(w * 64 + s)
        return torch.cat(found)


ENGINES.register("torch", TorchEngine())
