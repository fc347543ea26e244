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
from memsim.noise.blocks import (  # inlined: the cache sees this file
    _draw_block,
    _jbits,
    chunk_states,
)
from memsim.noise.kernels import _INV_2_53, _mix64, _next  # inlined: the cache sees this file

_GAMMA = np.uint64(0x9E3779B97F4A7C15)


@jit(inline="always")
def _uniform(s0, s1, s2, s3):
    """A uniform double in [0, 1) (53 bits) and the new state."""
    r, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
    return (r >> np.uint64(11)) * _INV_2_53, s0, s1, s2, s3


@jit
def _inversion(n, p, qn, s0, s1, s2, s3):
    """Binomial(n, p) by inversion (NumPy's ``random_binomial_inversion``), ``p <= 0.5``.

    ``qn`` is ``(1 - p)**n`` (callers drawing many counts of one ``n`` compute it once).
    """
    q = 1.0 - p
    mean = n * p
    bound = np.int64(min(float(n), mean + 10.0 * math.sqrt(mean * q + 1.0)))
    x = np.int64(0)
    px = qn
    u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
    while u > px:
        x += 1
        if x > bound:
            x = 0
            px = qn
            u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        else:
            u -= px
            px = ((n - x + 1) * p * px) / (x * q)
    return x, s0, s1, s2, s3


@jit(inline="always")
def _stirling(v):
    v2 = v * v
    return (13680.0 - (462.0 - (132.0 - (99.0 - 140.0 / v2) / v2) / v2) / v2) / v / 166320.0


@jit
def _btpe(n, p, s0, s1, s2, s3):
    """Binomial(n, p) by BTPE (Kachitvichyanukul & Schmeiser 1988; NumPy's port), ``p <= 0.5``."""
    r = p
    q = 1.0 - r
    fm = n * r + r
    m = np.int64(math.floor(fm))
    p1 = math.floor(2.195 * math.sqrt(n * r * q) - 4.6 * q) + 0.5
    xm = m + 0.5
    xl = xm - p1
    xr = xm + p1
    c = 0.134 + 20.5 / (15.3 + m)
    a = (fm - xl) / (fm - xl * r)
    laml = a * (1.0 + a / 2.0)
    a = (xr - fm) / (xr * q)
    lamr = a * (1.0 + a / 2.0)
    p2 = p1 * (1.0 + 2.0 * c)
    p3 = p2 + c / laml
    p4 = p3 + c / lamr
    nrq = n * r * q
    y = np.int64(0)
    while True:
        u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        u *= p4
        v, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        if u <= p1:  # triangular centre: accepted at once
            y = np.int64(math.floor(xm - p1 * v + u))
            break
        if u <= p2:  # parallelograms
            x = xl + (u - p1) / c
            v = v * c + 1.0 - abs(m - x + 0.5) / p1
            if v > 1.0:
                continue
            y = np.int64(math.floor(x))
        elif u <= p3:  # left exponential tail
            if v == 0.0:
                continue
            fy = math.floor(xl + math.log(v) / laml)
            if fy < 0:
                continue
            y = np.int64(fy)
            v = v * (u - p2) * laml
        else:  # right exponential tail
            if v == 0.0:
                continue
            fy = math.floor(xr - math.log(v) / lamr)
            if fy > n:
                continue
            y = np.int64(fy)
            v = v * (u - p3) * lamr
        k = abs(y - m)
        if not (k > 20 and k < nrq / 2.0 - 1):
            # Explicit ratio of probabilities from the mode.
            s = r / q
            aa = s * (n + 1)
            f = 1.0
            if m < y:
                for i in range(m + 1, y + 1):
                    f *= aa / i - s
            elif m > y:
                for i in range(y + 1, m + 1):
                    f /= aa / i - s
            if v > f:
                continue
            break
        # Squeeze with a normal approximation, then the Stirling bound.
        rho = (k / nrq) * ((k * (k / 3.0 + 0.625) + 0.16666666666666666) / nrq + 0.5)
        t = -k * k / (2 * nrq)
        big_a = math.log(v) if v > 0.0 else -math.inf
        if big_a < t - rho:
            break
        if big_a > t + rho:
            continue
        x1 = float(y + 1)
        f1 = float(m + 1)
        z = float(n + 1 - m)
        w = float(n - y + 1)
        bound = (
            xm * math.log(f1 / x1)
            + (n - m + 0.5) * math.log(z / w)
            + (y - m) * math.log(w * r / (x1 * q))
            + _stirling(f1)
            + _stirling(z)
            + _stirling(x1)
            + _stirling(w)
        )
        if big_a > bound:
            continue
        break
    return y, s0, s1, s2, s3


@jit
def _binomial(n, p, s0, s1, s2, s3):
    """Binomial(n, p) as NumPy draws it (inversion for a mean <= 30, else BTPE)."""
    if n <= 0 or p <= 0.0:
        return np.int64(0), s0, s1, s2, s3
    if p >= 1.0:
        return np.int64(n), s0, s1, s2, s3
    low = min(p, 1.0 - p)
    if low * n <= 30.0:
        qn = math.exp(n * math.log1p(-low))
        x, s0, s1, s2, s3 = _inversion(n, low, qn, s0, s1, s2, s3)
    else:
        x, s0, s1, s2, s3 = _btpe(n, low, s0, s1, s2, s3)
    return (np.int64(n) - x if p > 0.5 else x), s0, s1, s2, s3


@jit
def binomials(n, p, size, state):
    """``size`` Binomial(``n``, ``p``) draws from a xoshiro256** ``state`` (advanced); for tests."""
    out = np.empty(size, dtype=np.int64)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for i in range(size):
        out[i], s0, s1, s2, s3 = _binomial(n, p, s0, s1, s2, s3)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return out


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
