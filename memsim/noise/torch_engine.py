"""The sparse engine in native torch ops, for CUDA tensors (it runs on CPU too).

Independent draws: per group of positions with equal rates, and per block of ``M`` eligible bits,
it draws the number of candidate bits exactly, ``K ~ Binomial(M, pmax)`` (NumPy's float64
binomial on the host: one scalar per block, no data leaves the device; we do not rely on
``torch.binomial``'s precision at p ~ 1e-8), picks ``K`` distinct positions uniformly, and thins
each candidate by its stored bit's value (accept with ``p01 / pmax`` for a 0 and ``p10 / pmax``
for a 1). Blocks are as large as :data:`CANDIDATES_PER_BLOCK` expected candidates allow, so a
low-p write is one block: every block costs a few kernel launches and a device sync. Where
``pmax`` is large a dense float64 draw is cheaper and is used instead, XORed in chunk by chunk as
a mask of each word's flips; both are exactly Bernoulli per bit.

Coupled (ladder) draws sample the union of the ladder's levels directly, as the numba engine does
(docs/design.md §3), in one pass instead of one independent draw per level: level ``j`` is a
Poisson process of hits with ``mu_j = -log(1 - r_j)`` hits per bit, its count per chunk drawn on
the host (level by level, so entry ``k`` draws the same counts of levels ``0..k`` as any entry
above) and its positions uniform on the chunk's bits from the chunk's own generator, level after
level. A bit is a candidate at entry ``k`` iff it has a hit at a level ``<= k``, with probability
``Pmax_k``; its first hit (lowest level, then first drawn) at level ``L`` gives it the uniform
``U = Pmax_{L-1} + V (Pmax_L - Pmax_{L-1})`` (``V`` a uniform per hit, from a second generator),
and it flips iff ``U`` is below its stored bit's rate at entry ``k``. Above the ladder's split
(candidate rates above :data:`COUPLED_SPARSE_MAX`), bits without a hit up to the split take a
uniform ``U = Pmax_split + W (1 - Pmax_split)`` from a dense pass, united with the hits' flips.
Chunks depend on the ladder and the tensor only, never on the entry, so the flips of an entry
are nested in those of every larger one with the same seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from memsim.formats import StorageFormat
from memsim.noise.engine import ENGINES, FLOAT64_DEVICES, Engine
from memsim.noise.rates import Group, Ladder, LadderGroup, LadderLayers, Layer, increment
from memsim.rng import seeded_torch_generator, splitmix64

#: Above this candidate rate, drawing one uniform per bit beats sampling distinct positions.
DENSE_ABOVE = 0.25
#: Bits per dense chunk (bounded memory: a float64 uniform, an int64 bit and a float64 rate
#: per bit). On a CPU small chunks stay in cache; on a GPU every chunk costs kernel launches.
CHUNK_BITS = {"cpu": 1 << 22}
CHUNK_BITS_ELSEWHERE = 1 << 25
#: Expected candidates per sparse block (int64 indices and their sort: ~100 MiB at most). A
#: block costs a few launches and a device sync, so a low-p write is one block.
CANDIDATES_PER_BLOCK = 1 << 23
#: Coupled draws: ladder entries whose candidate rate is at most this are Poisson hits alone;
#: above, the hits up to the split and a dense pass.
COUPLED_SPARSE_MAX = DENSE_ABOVE
#: Expected hits per chunk of a coupled draw, up to the split (bounded memory).
HITS_PER_CHUNK = 1 << 23
_MASK63 = (1 << 63) - 1


def chunk_bits(device: torch.device) -> int:
    """Bits per dense chunk on ``device``."""
    return CHUNK_BITS.get(device.type, CHUNK_BITS_ELSEWHERE)


def uniform_below(m: int, k: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    """``k`` independent integers uniform on ``range(m)`` (int64, on ``device``).

    ``torch.randint(m)`` reduces a 32-bit random number modulo ``m`` when ``m < 2**32`` (on CPU
    and CUDA alike): values below ``2**32 % m`` come ``(q + 1) / q`` times as often, ``q =
    2**32 // m``, 6 % at ``m = 2.6e8`` (a write of 8M float32). A 62-bit draw, which torch
    makes from 64 random bits without skew, reduced modulo ``m`` skews by ``m / 2**62`` at most.
    """
    return torch.randint(1 << 62, (k,), generator=gen, device=device) % m


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
    picked = torch.unique(uniform_below(m, k, gen, device))
    chunks = [picked]
    have = picked.numel()
    while have < k:
        # PERF: top-up rounds are small; test them against the sorted chunks instead of re-sorting.
        extra = torch.unique(uniform_below(m, k - have, gen, device))
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
    return _pair(float(zero), float(one), bit.device)[bit]


# PERF: a write's constants stay on the device; a fresh tensor from host memory is a
# synchronous host-to-device copy on CUDA, per write and per group.
@lru_cache(maxsize=1024)
def _pair(zero: float, one: float, device: torch.device) -> torch.Tensor:
    return torch.tensor([zero, one], dtype=torch.float64, device=device)


@lru_cache(maxsize=256)
def _shifts(key: bytes, device: torch.device) -> torch.Tensor:
    return torch.frombuffer(bytearray(key), dtype=torch.int64).to(device)


def shifts_on(shifts: np.ndarray, device: torch.device) -> torch.Tensor:
    """A group's bit indices (int64) as a tensor on ``device``, kept between writes."""
    return _shifts(np.ascontiguousarray(shifts, dtype=np.int64).tobytes(), device)


class TorchEngine(Engine):
    """Exact sparse sampling with torch ops on the tensor's own device."""

    name = "torch"
    devices = FLOAT64_DEVICES  # float64 uniforms and rates

    def apply_(self, words: torch.Tensor, fmt: StorageFormat, layers: Sequence[Layer]) -> None:
        if isinstance(layers, LadderLayers):
            _coupled_(words, layers.ladder)
            return
        device = words.device
        n = words.numel()
        events = []  # word * 64 + shift, each judged against the original words
        single = len(layers) == 1
        for layer in layers:
            if layer.is_noiseless or n == 0:
                continue
            gen = seeded_torch_generator(layer.seed, device)
            counts = np.random.default_rng(layer.seed)
            for g in layer.groups:
                if max(g.p01, g.p10) > DENSE_ABOVE and single:
                    # Groups hold disjoint positions: each XORs its own flips in at once.
                    _dense_(words, g.shifts, g.p01, g.p10, gen)
                    continue
                for found in _group_events(words, g, gen, counts):
                    if single:  # blocks hold disjoint words: XOR each as it is drawn
                        xor_sorted_(words, found)
                    else:
                        events.append(found)
        if events:  # a bit chosen by two layers flips once
            xor_sorted_(words, torch.unique(torch.cat(events)))


def _group_events(
    words: torch.Tensor, g: Group, gen: torch.Generator, counts: np.random.Generator
) -> Iterator[torch.Tensor]:
    """One group's flips as events ``word * 64 + shift``, block by block (disjoint word
    ranges, in order), each sorted by word. A block's draw reads only its own words."""
    device = words.device
    n = words.numel()
    npos = g.shifts.size
    shifts = shifts_on(g.shifts, device)
    pmax = max(g.p01, g.p10)  # > 0: a layer's groups hold only noisy positions
    if pmax > DENSE_ABOVE:
        rows = max(1, chunk_bits(device) // npos)
        for start in range(0, n, rows):
            flips = _dense_flips(words[start : start + rows], shifts, g.p01, g.p10, gen)
            w, j = flips.nonzero(as_tuple=True)
            yield (w + start) * 64 + shifts[j]
        return
    rows = max(1, min(n, int(CANDIDATES_PER_BLOCK / (npos * pmax))))
    # Disjoint blocks with their own Binomial counts: exact, and memory stays bounded.
    for start in range(0, n, rows):
        m = min(rows, n - start) * npos
        k = int(counts.binomial(m, pmax))
        if k == 0:
            continue
        idx = sample_distinct(m, k, gen, device)
        w = idx // npos + start
        s = shifts[idx % npos]
        if g.p01 != g.p10:
            bit = (words[w].to(torch.int64) >> s) & 1
            accept = rate_by_bit(bit, g.p10 / pmax, g.p01 / pmax)
            keep = torch.rand(k, dtype=torch.float64, generator=gen, device=device) < accept
            w, s = w[keep], s[keep]
        yield w * 64 + s


def _dense_flips(
    words: torch.Tensor, shifts: torch.Tensor, p01: float, p10: float, gen: torch.Generator
) -> torch.Tensor:
    """Bernoulli(``p01``/``p10`` of the stored bit) per word and position: a bool matrix."""
    x = words.to(torch.int64)
    u = torch.rand((x.numel(), shifts.numel()), dtype=torch.float64, generator=gen, device=x.device)
    bit = (x[:, None] >> shifts) & 1
    return u < rate_by_bit(bit, p10, p01)


def word_masks(flips: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Each row's flips (a bool matrix over ``shifts``) as one int64 mask per word."""
    # Distinct bits of one word: the sum of their powers of two is their OR.
    return (flips.to(torch.int64) << shifts).sum(dim=1)


def _dense_(
    words: torch.Tensor, shifts_np: np.ndarray, p01: float, p10: float, gen: torch.Generator
) -> None:
    """Flip one group densely in place, chunk by chunk, with masks (no event lists, no sync)."""
    shifts = shifts_on(shifts_np, words.device)
    rows = max(1, chunk_bits(words.device) // shifts.numel())
    for start in range(0, words.numel(), rows):
        chunk = words[start : start + rows]
        chunk ^= word_masks(_dense_flips(chunk, shifts, p01, p10, gen), shifts).to(words.dtype)


# --------------------------------------------------------------------------- coupled draws


def _coupled_(words: torch.Tensor, ladder: Ladder) -> None:
    """Flip ``words`` in place at ``ladder.entry``, nested in every larger entry (module doc)."""
    n = words.numel()
    k = ladder.entry
    for index, g in enumerate(ladder.groups):
        if n == 0 or g.pmax[k] == 0:
            continue
        _coupled_group_(words, g, k, splitmix64(ladder.seed & 0xFFFFFFFFFFFFFFFF, index + 1))


def coupled_split(pmax: np.ndarray) -> int:
    """The last entry whose candidate rate is at most :data:`COUPLED_SPARSE_MAX` (-1: none)."""
    return int(np.searchsorted(pmax, COUPLED_SPARSE_MAX, side="right")) - 1


def coupled_chunk_rows(g: LadderGroup, n: int) -> int:
    """Words per chunk of a coupled draw: a function of the group's ladder and ``n`` only."""
    split = coupled_split(g.pmax)
    hits_per_bit = -np.log1p(-g.pmax[split]) if split >= 0 else 0.0
    if hits_per_bit == 0:
        return n
    return max(1, min(n, int(HITS_PER_CHUNK / (g.shifts.size * hits_per_bit))))


@dataclass(frozen=True)
class _CoupledPlan:
    """What a coupled write of one group needs besides its seed (module doc), built once per
    group, tensor size, entry and device: a sweep writes the same few thousand times."""

    shifts: torch.Tensor  # the group's bit indices, on the device
    rows: int  # words per chunk
    lam: np.ndarray  # (levels 0..top, chunks): expected hits, Poisson means
    sure: int  # levels 0..sure-1 flip without a uniform at this entry
    bounds: torch.Tensor  # (2, levels): Pmax_{j-1} and Pmax_j, on the device
    rates: tuple[float, float]  # (p01, p10) of the entry
    dense: tuple[float, float] | None  # above the split: rates of bits without a hit


@lru_cache(maxsize=1024)
def _coupled_plan(g: LadderGroup, n: int, k: int, device: torch.device) -> _CoupledPlan:
    pmax = g.pmax
    split = coupled_split(pmax)
    top = min(k, split)
    lo = np.concatenate([[0.0], pmax[:-1]])
    # Level j: hits per bit -log(1 - r_j), r_j = (Pmax_j - Pmax_{j-1}) / (1 - Pmax_{j-1}).
    mus = -np.log1p(-increment(lo[: top + 1], pmax[: top + 1]))
    rows = coupled_chunk_rows(g, n)
    bits = np.array([min(rows, n - s) * g.shifts.size for s in range(0, n, rows)], np.float64)
    dense = None
    if k > split:
        lo_d = np.asarray(pmax[split] if split >= 0 else 0.0)
        dense = (float(increment(lo_d, g.p01[k])), float(increment(lo_d, g.p10[k])))
    return _CoupledPlan(
        shifts=shifts_on(g.shifts, device),
        rows=rows,
        lam=np.outer(mus, bits),
        # Levels whose whole interval lies below both rates of entry k flip without a uniform.
        sure=int(np.searchsorted(pmax[: top + 1], min(g.p01[k], g.p10[k]), side="right")),
        bounds=torch.as_tensor(np.stack([lo[: top + 1], pmax[: top + 1]]), device=device),
        rates=(float(g.p01[k]), float(g.p10[k])),
        dense=dense,
    )


def _coupled_group_(words: torch.Tensor, g: LadderGroup, k: int, key: int) -> None:
    plan = _coupled_plan(g, words.numel(), k, words.device)
    npos = plan.shifts.numel()
    # Level-major: the counts of levels 0..j do not depend on how many levels follow.
    counts = np.random.default_rng(key & _MASK63).poisson(plan.lam)
    for c, start in enumerate(range(0, words.numel(), plan.rows)):
        chunk = words[start : start + plan.rows]
        ckey = splitmix64(key, 2 * c + 2)
        slots, flips = _chunk_hits(chunk, plan, counts[:, c], ckey)
        if plan.dense is None:
            w = slots // npos
            xor_sorted_(chunk, (w * 64 + plan.shifts[slots - w * npos])[flips])
            continue
        _dense_united_(chunk, plan.shifts, slots, flips, plan.dense, splitmix64(key, 2 * c + 3))


def _chunk_hits(
    chunk: torch.Tensor, plan: _CoupledPlan, counts: np.ndarray, key: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct hit slots (``word * npos + position``, sorted) of levels ``0..top`` in one
    chunk, and whether each flips at entry ``k``."""
    device = chunk.device
    shifts = plan.shifts
    m = chunk.numel() * shifts.numel()
    gen = seeded_torch_generator(key & _MASK63, device)
    # Level after level from one generator: levels 0..j draw the same whatever follows.
    parts = [uniform_below(m, int(c), gen, device) for c in counts if c]
    if not parts:
        empty = torch.empty(0, dtype=torch.int64, device=device)
        return empty, empty.bool()
    hits = torch.cat(parts)
    if plan.sure == counts.size:  # every level flips: the union of the hits
        slots = torch.unique(hits)
        return slots, torch.ones_like(slots, dtype=torch.bool)
    # A bit's first hit (lowest level, then first drawn) decides: a stable sort keeps it first.
    ordered, order = torch.sort(hits, stable=True)
    first = torch.ones_like(ordered, dtype=torch.bool)
    first[1:] = ordered[1:] != ordered[:-1]
    q = order[first]
    slots = ordered[first]
    total = int(counts.sum())
    levels = torch.repeat_interleave(
        torch.arange(counts.size, device=device),
        torch.as_tensor(counts, device=device),
        output_size=total,
    )[q]
    vgen = seeded_torch_generator(splitmix64(key, 1) & _MASK63, device)
    # One call per level, as for the positions: no call's size depends on the entry.
    v = torch.cat(
        [torch.rand(int(c), dtype=torch.float64, generator=vgen, device=device) for c in counts]
    )[q]
    lo, hi = plan.bounds[0, levels], plan.bounds[1, levels]
    u = lo + v * (hi - lo)
    npos = shifts.numel()
    w = slots // npos
    bit = (chunk[w].to(torch.int64) >> shifts[slots - w * npos]) & 1
    return slots, u < rate_by_bit(bit, plan.rates[1], plan.rates[0])


def _dense_united_(
    chunk: torch.Tensor,
    shifts: torch.Tensor,
    slots: torch.Tensor,
    flips: torch.Tensor,
    rates: tuple[float, float],
    key: int,
) -> None:
    """Above the split: bits without a hit flip at ``rates`` (p01, p10, given no hit) from a
    dense pass; hit bits as their first hit decided. XORed into ``chunk`` sub-chunk by sub-chunk."""
    npos = shifts.numel()
    gen = seeded_torch_generator(key & _MASK63, chunk.device)
    rows = max(1, chunk_bits(chunk.device) // npos)
    p01, p10 = rates
    starts = list(range(0, chunk.numel(), rows))
    # Where each sub-chunk's hits begin and end among the sorted slots (one sync per chunk).
    edges = torch.tensor([*starts, chunk.numel()], device=slots.device) * npos
    at = torch.searchsorted(slots, edges).tolist()
    for i, start in enumerate(starts):
        sub = chunk[start : start + rows]
        dense = _dense_flips(sub, shifts, p01, p10, gen)
        a, b = at[i], at[i + 1]
        dense.view(-1)[slots[a:b] - start * npos] = flips[a:b]
        sub ^= word_masks(dense, shifts).to(chunk.dtype)


ENGINES.register("torch", TorchEngine())
