"""Numba kernels of coupled sampling: one hidden uniform per bit, drawn sparsely and in place.

Where this sits: :mod:`memsim.noise.numba_engine` calls these for ladder (common-random-numbers)
writes below its dense split (docs/design.md §3). Every bit has a hidden uniform ``U``; at
ladder entry ``k`` it flips iff ``U < P_k`` of its stored value, so the flips at an entry are
nested in those of every larger one and each entry is exactly Bernoulli. Only the bits with
``U < Pmax_k`` (the *candidates*) are ever drawn, in a group's element-major index space of
slots ``(word << jbits) | j`` cut into superblocks of ``2**block_log2`` slots that do not
depend on p:

1. Levels: with the group's candidate rates ``Pmax_0 <= Pmax_1 <= ...`` per entry, a bit's
   level is the first entry ``j`` with ``U < Pmax_j``. Per superblock, the numbers of bits of
   level ``<= j`` are ``N_j = N_{j-1} + Binomial(bits - N_{j-1}, r_j)`` with
   ``r_j = (Pmax_j - Pmax_{j-1}) / (1 - Pmax_{j-1})`` (:func:`ladder_counts`), drawn level by
   level from one stream, so an entry ``j`` draws the same ``N_0 .. N_j`` as any entry above.
2. Order: a per-superblock xoshiro256** stream draws distinct bit slots (rejecting non-bits and
   repeats with a bitmap, as :mod:`memsim.noise.blocks` does); the first ``N_j`` of this random
   order are the bits of level ``<= j``. A uniform order cut by exact counts gives every bit its
   level independently, with ``P(level <= j) = Pmax_j``.
3. Thinning: pick ``i`` of level ``L`` has ``U = Pmax_{L-1} + V_i (Pmax_L - Pmax_{L-1})`` with
   ``V_i`` element ``i`` of a counter-based SplitMix64 stream (it depends on ``i`` only, never
   on which other picks needed one), and flips iff ``U < P_k`` of the bit's original value.

Each superblock has its own streams, so superblocks run in parallel with results independent
of the thread count. Binomials are NumPy's algorithms (inversion below a mean of 30, BTPE
above) on the kernel's own xoshiro256** stream: one call draws every count of a group at a few
tens of nanoseconds each, with 256 bits of state.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from memsim.jit import jit
from memsim.noise.binomial import _binomial, _inversion  # inlined: the cache sees this file
from memsim.noise.blocks import (  # inlined: the cache sees this file
    _draw_block,
    _jbits,
    chunk_states,
)
from memsim.noise.kernels import _INV_2_53, _mix64

_GAMMA = np.uint64(0x9E3779B97F4A7C15)


@jit
def ladder_counts(trials, increments, state):
    """Cumulative candidate counts ``N[j, b]`` of levels ``0..j`` in superblock ``b``.

    ``trials[b]`` bits per superblock, ``increments[j]`` the level rates ``r_j``. Drawn level by
    level (all superblocks of level 0, then of level 1, ...) from ``state``: the counts of
    levels ``0..j`` do not depend on how many levels follow.
    """
    nlev = increments.size
    nb = trials.size
    counts = np.empty((nlev, nb), dtype=np.int64)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for j in range(nlev):
        p = increments[j]
        # PERF: most superblocks of a level have the same number of bits left (all of them, at
        # low p): (1 - p)**n is computed once for them, not once per draw (~20 ns each).
        common = trials[0] - (counts[j - 1, 0] if j > 0 else 0)
        qn = math.exp(common * math.log1p(-p)) if 0.0 < p <= 0.5 else 0.0
        for b in range(nb):
            prev = counts[j - 1, b] if j > 0 else np.int64(0)
            n = trials[b] - prev
            if n == common and 0.0 < p <= 0.5 and p * n <= 30.0:
                x, s0, s1, s2, s3 = _inversion(n, p, qn, s0, s1, s2, s3)
            else:
                x, s0, s1, s2, s3 = _binomial(n, p, s0, s1, s2, s3)
            counts[j, b] = prev + x
    return counts


@jit
def ladder_group(
    words, out, shifts, lo, hi, p01, p10, increments, trials, block_log2, key, bitmaps
):
    """One group's draw at an entry: :func:`ladder_counts`, then :func:`ladder_flips`.

    ``key`` (4 uint64) seeds the counts (``key[0]``), the superblocks' slot streams
    (``key[1]``) and the thinning uniforms (``key[2]``). PERF: one call instead of four saves
    ~8 us a write, as much as the flips cost at low p.
    """
    counts = ladder_counts(trials, increments, chunk_states(key[0], 1)[0])
    if counts[-1].sum() == 0:
        return
    states = chunk_states(key[1], trials.size)
    ladder_flips(words, out, shifts, lo, hi, p01, p10, counts, block_log2, states, key[2], bitmaps)


@jit(parallel=True)
def ladder_flips(words, out, shifts, lo, hi, p01, p10, counts, block_log2, states, vkey, bitmaps):
    """Flip the first ``counts[-1, b]`` bits of each superblock's random order (see module doc).

    ``words`` are read (original stored bits) and the flips are XORed into ``out``: ``out`` is
    ``words`` itself to flip in place, or a zeroed array of the same shape to collect a mask.
    ``lo[j]``/``hi[j]`` bound the hidden uniform of level ``j`` (``Pmax_{j-1}``, ``Pmax_j``);
    ``p01``/``p10`` are the entry's rates; ``states[b]`` the superblock's slot stream and
    ``vkey`` keys the thinning uniforms. Superblocks are split evenly between workers, one per
    row of ``bitmaps`` (zeroed, ``2**block_log2`` bits a row, left zeroed); each superblock
    depends only on its own streams, so the result never depends on the number of workers.
    """
    npos = shifts.size
    jbits = _jbits(npos)
    jmask = (np.int64(1) << jbits) - 1
    wbits = block_log2 - jbits
    nblocks = counts.shape[1]
    nlev = counts.shape[0]
    # Picks of levels whose whole interval is below both rates flip without a uniform.
    sure_lev = -1
    while sure_lev + 1 < nlev and hi[sure_lev + 1] <= min(p01, p10):
        sure_lev += 1
    nthreads = max(1, min(bitmaps.shape[0], nblocks))
    for t in numba.prange(nthreads):
        b0 = t * nblocks // nthreads
        b1 = (t + 1) * nblocks // nthreads
        kcap = 1
        for b in range(b0, b1):
            kcap = max(kcap, counts[nlev - 1, b])
        picks = np.empty(kcap, dtype=np.int64)
        bitmap = bitmaps[t]
        for b in range(b0, b1):
            k = counts[nlev - 1, b]
            if k == 0:
                continue
            base = np.int64(b) << wbits
            nwords_block = min(np.int64(1) << wbits, words.size - base)
            st = (states[b, 0], states[b, 1], states[b, 2], states[b, 3])
            _draw_block(k, base, nwords_block, npos, jbits, block_log2, bitmap, picks, 0, out, st)
            sure = counts[sure_lev, b] if sure_lev >= 0 else np.int64(0)
            one = np.uint64(1)
            for q in range(sure):
                slot = picks[q]
                out[base + (slot >> jbits)] ^= one << np.uint64(shifts[slot & jmask])
            if sure == k:
                continue
            level = sure_lev + 1
            bkey = _mix64(vkey + np.uint64(b + 1) * _GAMMA)  # this superblock's uniforms
            for q in range(sure, k):
                while q >= counts[level, b]:
                    level += 1
                slot = picks[q]
                w = base + (slot >> jbits)
                s = np.uint64(shifts[slot & jmask])
                v = (_mix64(bkey + np.uint64(q + 1) * _GAMMA) >> np.uint64(11)) * _INV_2_53
                u = lo[level] + v * (hi[level] - lo[level])
                bit = (np.uint64(words[w]) >> s) & one
                flip = np.uint64(u < (p10 if bit else p01))
                out[w] ^= flip << s
