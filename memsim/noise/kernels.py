"""Numba kernels of the CPU bit-flip engine: sparse geometric skipping and dense bit slicing.

Kernels take 1-D NumPy arrays of unsigned integer words (the stored bit patterns) and an
explicit PRNG state, never NumPy's or Numba's global random state, so a result depends only on
the seed, not on thread count or on what ran before. The PRNG is xoshiro256** seeded through
splitmix64 (Blackman & Vigna); it is fast, has 256 bits of state and passes BigCrush.

The glue that turns tensors into word arrays and picks kernels lives in
:mod:`memsim.noise.numba_engine`.
"""

from __future__ import annotations

import numba
import numpy as np

from memsim.jit import jit
from memsim.rng import splitmix64

_MASK64 = (1 << 64) - 1
_INV_2_53 = 1.0 / 9007199254740992.0


def seed_state(seed: int) -> np.ndarray:
    """A xoshiro256** state (4 uint64 words) from a non-negative integer seed via splitmix64."""
    out = [splitmix64(int(seed) & _MASK64, n) for n in (1, 2, 3, 4)]
    if not any(out):  # the all-zero state is the one xoshiro must avoid
        out[0] = 1
    return np.array(out, dtype=np.uint64)


@jit(inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@jit(inline="always")
def _next(s0, s1, s2, s3):
    """One xoshiro256** step: (random uint64, new state words)."""
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, s0, s1, s2, s3


@jit(inline="always")
def _setup(npos, p01, p10):
    """Candidate rate constants: 1/log(1 - pmax), acceptance per stored value, index shift."""
    pmax = max(p01, p10)
    # pmax = 1: log1p(-1) = -inf, so every gap is 0 and every bit is a candidate.
    inv_logq = 1.0 / np.log1p(-pmax)
    # PERF: a power-of-two group (e.g. every position of the word) avoids an integer division.
    pshift = -1
    if npos & (npos - 1) == 0:
        pshift = 0
        while (1 << pshift) < npos:
            pshift += 1
    return inv_logq, p01 / pmax, p10 / pmax, pshift


@jit(inline="always")
def _skip(fi, inv_logq, s0, s1, s2, s3):
    """Advance the candidate index by 1 + Geometric gap: floor(log(u) / log(1 - pmax))."""
    r, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
    u = ((r >> np.uint64(11)) + np.uint64(1)) * _INV_2_53  # 53-bit uniform in (0, 1]
    # PERF: the index is a float64 (exact below 2**53): a huge gap needs no overflow check.
    return fi + np.floor(np.log(u) * inv_logq) + 1.0, s0, s1, s2, s3


@jit(inline="always")
def _locate(i, npos, pshift):
    """(word index, position index in the group) of candidate ``i`` (element-major)."""
    if pshift >= 0:
        w = i >> pshift
        return w, i - (w << pshift)
    w = i // npos
    return w, i - w * npos


@jit(inline="always")
def _thin(word, s, a01, a10, s0, s1, s2, s3):
    """Accept a candidate with a01 if its stored bit is 0, a10 if it is 1."""
    bit = (np.uint64(word) >> s) & np.uint64(1)
    r, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
    u = (r >> np.uint64(11)) * _INV_2_53  # in [0, 1): u < 1 always accepts
    return u < (a10 if bit else a01), s0, s1, s2, s3


#: Candidates located before their words are touched (see flip_group).
_BATCH = 32


@jit
def flip_group(words, shifts, p01, p10, state):
    """Flip one group's eligible bits in place; cost proportional to the flips.

    The index space is ``words.size * shifts.size`` (element-major). Candidates arrive at rate
    ``pmax = max(p01, p10)`` (geometric gaps from 53-bit uniforms: exactly Geometric(pmax) up
    to the resolution of the uniform). A candidate is accepted with ``p01 / pmax`` if the stored
    bit is 0 and ``p10 / pmax`` if it is 1, so each bit flips with exactly its own direction's
    probability. Each bit is visited at most once, so XOR in place is exact. ``state`` (a
    xoshiro256** state) is advanced.
    """
    npos = shifts.size
    total = float(words.size * npos)
    if total == 0 or max(p01, p10) <= 0.0:
        return
    inv_logq, a01, a10, pshift = _setup(npos, p01, p10)
    thin = a01 < 1.0 or a10 < 1.0
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    # PERF: locate a batch of candidates first, then touch their words: the loads of a batch are
    # independent, so cache misses on large tensors overlap instead of queueing (2-3x at 16M).
    at_word = np.empty(_BATCH, dtype=np.int64)
    at_shift = np.empty(_BATCH, dtype=np.uint64)
    fi = -1.0
    more = True
    while more:
        m = 0
        while m < _BATCH:
            fi, s0, s1, s2, s3 = _skip(fi, inv_logq, s0, s1, s2, s3)
            if not fi < total:  # also ends on NaN (0 * inf for subnormal p)
                more = False
                break
            w, j = _locate(np.int64(fi), npos, pshift)
            at_word[m] = w
            at_shift[m] = shifts[j]
            m += 1
        for q in range(m):
            w, s = at_word[q], at_shift[q]
            if thin:
                ok, s0, s1, s2, s3 = _thin(words[w], s, a01, a10, s0, s1, s2, s3)
                if not ok:
                    continue
            words[w] ^= np.uint64(1) << s
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


@jit(inline="always")
def _level(nx, x, t01_i, t10_i, r, undecided, flips):
    """One level of the bit-sliced ``u < p`` comparison: lanes whose random bit ``r`` is 0 under
    a threshold bit 1 flip, lanes whose bits differ are decided; returns (undecided, flips)."""
    t = (nx & t01_i) | (x & t10_i)
    return undecided & ~(t ^ r), flips | (undecided & t & ~r)


@jit
def dense_flip(words, t01, t10, e01, e10, f01, f10, state):
    """Flip every lane of every word with its own probability, 64 lanes at a time.

    Bit-sliced comparison ``u < p`` of a uniform's binary expansion with ``p``'s, one binary
    digit per level: level ``i`` draws one random bit per lane and compares it with bit ``i``
    (after the binary point) of the lane's threshold, ``t01[i]`` for lanes storing 0 and
    ``t10[i]`` for lanes storing 1; a lane is decided at the first level where the bits differ
    (random 0 under threshold 1: flip). With 64-bit fixed-point thresholds this is exactly
    Bernoulli(floor(p * 2**64) / 2**64), i.e. exact for every float64 p >= 2**-11 and within
    2**-64 below. A word is done once all its lanes are decided (about 8 levels for 64 lanes,
    whatever p).

    ``e01``/``e10`` mark lanes with 0 < p < 1 per direction, ``f01``/``f10`` lanes with p = 1.
    ``words`` may be any unsigned width; the masks must not set bits beyond it.
    """
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    nlev = t01.size
    for k in range(words.size):
        x = np.uint64(words[k])
        nx = ~x
        undecided = (nx & e01) | (x & e10)
        flips = (nx & f01) | (x & f10)
        i = 0
        while undecided != 0 and i < nlev:
            r, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
            undecided, flips = _level(nx, x, t01[i], t10[i], r, undecided, flips)
            i += 1
        if flips != 0:
            words[k] ^= flips
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


_GAMMA = np.uint64(0x9E3779B97F4A7C15)


@jit(inline="always")
def _mix64(z):
    """SplitMix64's output function: element ``n`` of its stream is ``_mix64(key + n * gamma)``."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


#: Words per parallel chunk of :func:`dense_keyed` (a fixed size: chunks never depend on threads).
KEYED_CHUNK = 1 << 14
#: Levels every word of :func:`dense_keyed` draws from its chunk's stream, decided or not. Most
#: words (64 lanes) are decided within 9 levels; the rest go on with keyed hashes. ``benchmarks/
#: bitflip.py``-style timing, 1M float32 at p = 0.1, one thread: 8.9 ms against 9.4 with 8
#: levels, 9.6 with 10, 11.6 with 6, 17.2 with hashes only, and 10.1 for :func:`dense_flip`.
KEYED_LEVELS = 9


@jit(parallel=True)
def dense_keyed(words, t01, t10, e01, e10, f01, f10, states, key, mask, key0):
    """:func:`dense_flip` with one uniform per lane that does not depend on the thresholds.

    Word ``k`` of chunk ``c`` (``KEYED_CHUNK`` words each) takes its first ``KEYED_LEVELS``
    levels from chunk ``c``'s xoshiro256** stream ``states[c]``, always that many whether its
    lanes are decided or not, and any further level ``i`` from element ``(key0 + k) * 64 + i``
    of the SplitMix64 stream keyed by ``key`` (Steele, Lea & Flood 2014). So a lane's uniform
    ``u`` (its binary expansion read level by level) is the same whatever the thresholds: with
    the same streams, the lanes that flip at a threshold ``q`` are a subset of those that flip
    at any ``q' >= q`` (common random numbers), and each lane flips with exactly its own ``q``
    as in :func:`dense_flip`. Chunks run in parallel; results never depend on the thread count.

    ``mask`` (same size as ``words``, or empty) holds bits that flip anyway: a union with the
    draws, judged on the original bits.
    """
    nlev = t01.size
    n = words.size
    nchunks = (n + KEYED_CHUNK - 1) // KEYED_CHUNK
    has_mask = mask.size > 0
    fixed = min(KEYED_LEVELS, nlev)
    for c in numba.prange(nchunks):
        lo = c * KEYED_CHUNK
        hi = min(n, lo + KEYED_CHUNK)
        s0, s1, s2, s3 = states[c, 0], states[c, 1], states[c, 2], states[c, 3]
        for k in range(lo, hi):
            x = np.uint64(words[k])
            nx = ~x
            union = np.uint64(mask[k]) if has_mask else np.uint64(0)
            undecided = ((nx & e01) | (x & e10)) & ~union
            flips = (nx & f01) | (x & f10) | union
            # PERF: a fixed number of levels without a branch on the data (branches on whether
            # a word is decided were mispredicted once a word).
            for i in range(fixed):
                r, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
                undecided, flips = _level(nx, x, t01[i], t10[i], r, undecided, flips)
            i = fixed
            ctr = key + ((np.uint64(key0 + k) << np.uint64(6)) + np.uint64(i)) * _GAMMA
            while undecided != 0 and i < nlev:
                r = _mix64(ctr)
                ctr += _GAMMA
                undecided, flips = _level(nx, x, t01[i], t10[i], r, undecided, flips)
                i += 1
            if flips != 0:
                words[k] ^= flips
