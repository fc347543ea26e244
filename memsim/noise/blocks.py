"""Numba kernels of the CPU engine's block sampler: a few nanoseconds per flip, cache friendly.

The sparse problem (docs/design.md §3): in a group's index space of ``words.size * npos`` eligible bits
(element-major: bit ``j`` of the group in word ``w``), every bit is a *candidate* independently
with probability ``pmax = max(p01, p10)``; a candidate storing 0 flips with ``p01 / pmax`` and
one storing 1 with ``p10 / pmax`` (thinning), so each bit flips with exactly its direction's
probability. Geometric skipping (:func:`memsim.noise.kernels.flip_group`) walks from candidate
to candidate with one ``log`` per step; this module samples the same law block by block:

1. The index space is cut into blocks of ``2**block_log2`` *slots*: a block holds
   ``2**(block_log2 - jbits)`` whole words, ``2**jbits`` slots per word (``jbits`` =
   ``ceil(log2(npos))``), slot ``(w << jbits) | j``; slots with ``j >= npos``, and in the last
   block words past the end, are not bits.
2. The candidate count of block ``b`` is ``counts[b] ~ Binomial(bits in block b, pmax)``, drawn
   independently per block: by :func:`block_flips_seeded` from its chunk's own stream
   (:mod:`memsim.noise.binomial`, NumPy's algorithms), or given by the caller.
3. Given its count ``k``, the candidates of a block are a uniform ``k``-subset of its bits:
   draw slots uniformly (``block_log2`` random bits each, several per 64-bit draw), reject the
   slots that are not bits and the ones already taken (a bitmap of the block), until ``k``
   distinct remain. Rejection and de-duplication are symmetric under relabelling of the bits,
   so every ``k``-subset is equally likely.

Independent Binomial counts per block plus uniform subsets are exactly independent
Bernoulli(``pmax``) candidates, bit by bit, and thinning is then as in the geometric kernel.
Draws come from the caller's xoshiro256** state (:mod:`memsim.noise.kernels`), so a result
depends only on the seed, never on the thread count.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from memsim.jit import jit, prefetch_write
from memsim.noise.binomial import (  # inlined: Numba's cache sees this file
    _binomial,
    _inversion,
    _poisson_constants,
    _poisson_usual,
)
from memsim.noise.kernels import _INV_2_53, _mix64, _next

#: Expected candidates per block. ``benchmarks/bitflip.py`` / tuning on float32, one core: 128
#: (p = 1e-3: 16 KiB of words, the tensor in cache or not) beats 32, 64 and 256; with far fewer
#: the per-block Binomial draw (~70 ns) dominates, with far more the prefetched words spill
#: out of L1 before they are modified.
PER_BLOCK = 128
#: Largest block: 2**20 slots (a 128 KiB bitmap, in L2); lower rates use geometric skipping.
MAX_BLOCK_LOG2 = 20
#: Blocks ahead whose pages are touched early (one prefetch per 4 KiB page), see block_flips.
PAGES_AHEAD = 3


def choose_block_log2(nwords: int, npos: int, pmax: float) -> int:
    """Slots per block (log2) for ``PER_BLOCK`` expected candidates, within the tensor's size."""
    jbits = slot_bits(npos)
    per_slot = pmax * npos / (1 << jbits)
    m = math.ceil(math.log2(PER_BLOCK / per_slot)) if per_slot > 0 else MAX_BLOCK_LOG2
    # Never more slots than the whole tensor needs: a tiny tensor gets a tiny bitmap and few
    # rejected slots. At least 64 slots, so that shifts by 64 - block_log2 stay defined.
    whole = jbits + max(0, nwords - 1).bit_length()
    return max(min(m, MAX_BLOCK_LOG2, whole), jbits, 6)


@jit(inline="always")
def _jbits(npos):
    """:func:`slot_bits` inside kernels."""
    jbits = 0
    while (1 << jbits) < npos:
        jbits += 1
    return jbits


def slot_bits(npos: int) -> int:
    """``jbits``: slots per word are ``2**jbits``, the smallest power of two >= ``npos``."""
    return max(0, int(npos - 1).bit_length())


def block_trials(nwords: int, npos: int, block_log2: int) -> np.ndarray:
    """Number of eligible bits in each block (all blocks full but the last), as int64."""
    per_block = 1 << (block_log2 - slot_bits(npos))  # words per block
    nblocks = -(-nwords // per_block)
    trials = np.full(nblocks, per_block * npos, dtype=np.int64)
    if nblocks:
        trials[-1] = (nwords - (nblocks - 1) * per_block) * npos
    return trials


#: ``64 // n`` for the slot widths of :func:`_bit_slot` (a division there is not hoisted out
#: of its callers' loops and cost ~0.5 ns a hit).
_PER_DRAW = np.array([64 // max(n, 1) for n in range(65)], dtype=np.int64)


#: Random bits per position drawn by multiply-shift: rejections (below ``npos / 2**POS_BITS``,
#: under 1 % for 32 positions) stay rare enough to be predicted.
POS_BITS = 12


@jit(inline="always")
def _below(x, n):
    """``x * n >> POS_BITS`` for a uniform ``POS_BITS``-bit ``x``: uniform on ``[0, n)`` when
    ``accepted`` (Lemire's multiply-shift; rejects with probability below ``n / 2**POS_BITS``)."""
    m = x * np.uint64(n)
    low = m & np.uint64((1 << POS_BITS) - 1)
    accepted = True
    if low < np.uint64(n):  # rare: only then can the result be biased
        accepted = low >= (np.uint64(1 << POS_BITS) - np.uint64(n)) % np.uint64(n)
    return np.int64(m >> np.uint64(POS_BITS)), accepted


@jit(inline="always")
def _bit_slot(r, left, nwords_block, npos, jbits, block_log2, s0, s1, s2, s3):
    """The next slot of a block that is a bit: from the ``left`` unused slots of ``r``, then
    from fresh draws; returns it with ``r``, ``left`` and the new state.

    PERF: one 64-bit draw yields ``64 // block_log2`` independent slots (its top bits, then the
    next). Slots that are not bits (position ``>= npos``, word past the block) are rejected, so
    the kept ones stay uniform over the bits. A caller starts each block with ``left = 0``.
    When ``npos`` is not a power of two, rejecting positions is a branch the CPU mispredicts
    about once in ``2**jbits / (2**jbits - npos)`` draws (~2x the cost of a hit at 25 of 32
    positions): there each slot takes the word from ``block_log2 - jbits`` bits and the position
    from ``POS_BITS`` more by multiply-shift (:func:`_below`), whose rare rejections are
    predictable.
    """
    jmask = (np.int64(1) << jbits) - 1
    if npos != jmask + 1:
        wbits = block_log2 - jbits
        width = wbits + POS_BITS
        while True:
            if left == 0:
                r, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
                left = _PER_DRAW[width]
            chunk = r >> np.uint64(64 - width)
            r <<= np.uint64(width)
            left -= 1
            word = np.int64(chunk >> np.uint64(POS_BITS))
            pos, ok = _below(chunk & np.uint64((1 << POS_BITS) - 1), npos)
            if ok and word < nwords_block:
                return (word << jbits) | pos, r, left, s0, s1, s2, s3
    while True:
        if left == 0:
            r, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
            left = _PER_DRAW[block_log2]
        slot = np.int64(r >> np.uint64(64 - block_log2))
        r <<= np.uint64(block_log2)
        left -= 1
        if (slot >> jbits) < nwords_block and (slot & jmask) < npos:
            return slot, r, left, s0, s1, s2, s3


@jit(inline="always")
def _draw_block(k, base, nwords_block, npos, jbits, block_log2, bitmap, picks, off, words, st):
    """Put ``k`` distinct bit slots of a block into ``picks[off:off + k]`` (uniform subset).

    Afterwards the bitmap is clean again and the words of the picks are prefetched.
    """
    s0, s1, s2, s3 = st
    one = np.uint64(1)
    r = np.uint64(0)
    left = 0
    n = 0
    while n < k:
        slot, r, left, s0, s1, s2, s3 = _bit_slot(
            r, left, nwords_block, npos, jbits, block_log2, s0, s1, s2, s3
        )
        at = slot >> 6
        bit = one << np.uint64(slot & 63)
        seen = bitmap[at]
        if seen & bit:
            continue  # drawn before: a subset has distinct members
        bitmap[at] = seen | bit
        picks[off + n] = slot
        n += 1
    for q in range(off, off + k):
        slot = picks[q]
        bitmap[slot >> 6] = 0  # only picked slots were set: clearing their words cleans it all
        # PERF: ask for the word now, modify it one block later: the misses of a whole block
        # overlap with the work on the previous one instead of stalling it.
        prefetch_write(words, base + (slot >> jbits))
    return s0, s1, s2, s3


@jit(inline="always")
def _next_block(counts, b):
    """The first block at or after ``b`` with candidates (``counts.size`` if none)."""
    while b < counts.size and counts[b] == 0:
        b += 1
    return b


@jit
def block_flips(words, shifts, p01, p10, counts, block_log2, state, out, record):
    """Sample one group's flips block by block; flip ``words`` in place or record events.

    ``counts[b]`` is the candidate count of block ``b`` (see :func:`block_trials`), with
    ``slot_bits(shifts.size) <= block_log2 <= 32`` (see :func:`choose_block_log2`). Without ``record`` the accepted
    bits are flipped in place (each bit is visited at most once, so XOR is exact) and ``out`` is
    unused; with it, ``out`` (size >= ``counts.sum()``) receives ``word_index * 64 + shift`` per
    accepted bit in ascending order, the words are only read, and the number of events is
    returned. ``state``
    (xoshiro256**) is advanced.
    """
    npos = shifts.size
    jbits = _jbits(npos)
    jmask = (np.int64(1) << jbits) - 1
    wbits = block_log2 - jbits
    nwords = words.size
    pmax = max(p01, p10)
    a01 = p01 / pmax
    a10 = p10 / pmax
    thin = a01 < 1.0 or a10 < 1.0
    one = np.uint64(1)
    kcap = 1
    for b in range(counts.size):
        kcap = max(kcap, counts[b])
    # Two halves: the picks of the block being modified and those of the next (prefetched).
    picks = np.empty(2 * kcap, dtype=np.int64)
    bitmap = np.zeros(max(1, (1 << block_log2) >> 6), dtype=np.uint64)
    st = (state[0], state[1], state[2], state[3])
    n_out = 0
    b = _next_block(counts, 0)
    if b < counts.size:
        base = np.int64(b) << wbits
        st = _draw_block(
            counts[b], base, min(np.int64(1) << wbits, nwords - base), npos, jbits, block_log2,
            bitmap, picks, 0, words, st,
        )  # fmt: skip
    half = 0
    page_words = max(1, 4096 // words.itemsize)
    while b < counts.size:
        # PERF: torch's large tensors sit on 4 KiB pages; a prefetch that misses the TLB is slow
        # to start, so each page of a block a few blocks ahead is touched once first (~1.5 % of
        # the lines): 8.6 -> 5.5 ns per flip at p = 1e-3 on a 64 MiB tensor.
        ahead = (np.int64(b) + PAGES_AHEAD) << wbits
        for w in range(ahead, min(ahead + (np.int64(1) << wbits), nwords), page_words):
            prefetch_write(words, w)
        nb = _next_block(counts, b + 1)
        if nb < counts.size:
            nbase = np.int64(nb) << wbits
            st = _draw_block(
                counts[nb], nbase, min(np.int64(1) << wbits, nwords - nbase), npos, jbits,
                block_log2, bitmap, picks, (1 - half) * kcap, words, st,
            )  # fmt: skip
        base = np.int64(b) << wbits
        lo = half * kcap
        hi = lo + counts[b]
        # PERF: the common case (symmetric rates, in place) gets a loop of its own with nothing
        # but the XOR; the other one decides without a branch on random data (accept/reject
        # branches were mispredicted a quarter of the time, ~4 ns each).
        if not thin and not record:
            for q in range(lo, hi):
                slot = picks[q]
                words[base + (slot >> jbits)] ^= one << np.uint64(shifts[slot & jmask])
        else:
            s0, s1, s2, s3 = st
            first = n_out
            for q in range(lo, hi):
                slot = picks[q]
                w = base + (slot >> jbits)
                s = np.uint64(shifts[slot & jmask])
                word = np.uint64(words[w])
                r, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
                u = (r >> np.uint64(11)) * _INV_2_53  # in [0, 1): u < 1 always accepts
                # Accept with a01 for a stored 0, a10 for a stored 1.
                accept = np.uint64(u < (a10 if (word >> s) & one else a01))
                if record:
                    out[n_out] = w * 64 + np.int64(s)
                    n_out += np.int64(accept)  # a rejected event is overwritten by the next
                else:
                    words[w] = word ^ (accept << s)
            if record:
                # PERF: recorded events come out sorted block by block (blocks are in order), so
                # merging layers is a merge of sorted runs, not a full sort (coupled sampling).
                out[first:n_out].sort()
            st = (s0, s1, s2, s3)
        b = nb
        half = 1 - half
    state[0], state[1], state[2], state[3] = st
    return n_out


#: Blocks per parallel chunk (a fixed size, so chunks, and results, never depend on threads):
#: 64 blocks of ~128 candidates, ~40 us of work, amortise a thread hand-off many times over.
CHUNK_BLOCKS = 64


@jit
def chunk_states(key, nchunks):
    """``nchunks`` xoshiro256** states, one per row, each seeded with four consecutive SplitMix64
    outputs of ``key`` (the generator's recommended seeding): row ``c`` is
    :func:`chunk_state` ``(key, c)``."""
    out = np.empty((nchunks, 4), dtype=np.uint64)
    for c in range(nchunks):
        out[c, 0], out[c, 1], out[c, 2], out[c, 3] = chunk_state(key, c)
    return out


@jit(inline="always")
def chunk_state(key, c):
    """Row ``c`` of :func:`chunk_states` ``(key, ...)``, alone: SplitMix64 outputs ``4c + 1``
    to ``4c + 4`` of ``key`` (a zero state becomes ``(1, 0, 0, 0)``).

    PERF: a draw whose chunks mostly have nothing to do seeds only the ones that have.
    """
    gamma = np.uint64(0x9E3779B97F4A7C15)
    z = np.uint64(key) + np.uint64(4 * c) * gamma
    s0 = _mix64(z + gamma)
    s1 = _mix64(z + np.uint64(2) * gamma)
    s2 = _mix64(z + np.uint64(3) * gamma)
    s3 = _mix64(z + np.uint64(4) * gamma)
    if s0 == 0 and s1 == 0 and s2 == 0 and s3 == 0:
        s0 = np.uint64(1)
    return s0, s1, s2, s3


@jit(inline="always")
def _chunk_span(nwords, npos, block_log2, c):
    """Words per block, blocks of the tensor, and the blocks ``b0 .. b1 - 1`` of chunk ``c``."""
    per_block = np.int64(1) << (block_log2 - _jbits(npos))
    nblocks = (nwords + per_block - 1) // per_block
    b0 = np.int64(c) * CHUNK_BLOCKS
    return per_block, nblocks, b0, min(nblocks, b0 + CHUNK_BLOCKS)


@jit
def _seeded_chunk(words, shifts, p01, p10, block_log2, state, c):
    """Chunk ``c`` of :func:`block_flips_seeded`: its blocks' counts, then their flips, from
    ``state`` (the chunk's own xoshiro256** state, advanced)."""
    npos = shifts.size
    nwords = words.size
    per_block, nblocks, b0, b1 = _chunk_span(nwords, npos, block_log2, c)
    pmax = max(p01, p10)
    full = per_block * npos
    # PERF: every block but the tensor's last has the same bits: (1 - p)**n once per chunk.
    small = pmax <= 0.5 and pmax * full <= 30.0
    qn = math.exp(full * math.log1p(-pmax)) if small else 0.0
    counts = np.empty(b1 - b0, dtype=np.int64)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for b in range(b0, b1):
        n = full if b < nblocks - 1 else (nwords - b * per_block) * npos
        if small and n == full:
            x, s0, s1, s2, s3 = _inversion(n, pmax, qn, s0, s1, s2, s3)
        else:
            x, s0, s1, s2, s3 = _binomial(n, pmax, s0, s1, s2, s3)
        counts[b - b0] = x
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    w0 = b0 * per_block
    w1 = min(nwords, b1 * per_block)
    block_flips(
        words[w0:w1], shifts, p01, p10, counts, block_log2, state, np.empty(0, np.int64), False
    )


#: Blocks of parity sampling from this many bytes of words are pipelined (drawn and prefetched
#: a block ahead). VGG-A in tiles of 32, 2 threads, time in the flips per batch of 256: at
#: p = 1e-3 (16 KiB blocks) 29 -> 21-25 ms pipelined; at 1e-2 (2 KiB) 57 -> 67 ms, so not there.
PIPELINE_FROM_BYTES = 8192
#: Largest symmetric rate sampled by parity (:func:`_parity_chunk`): hits per bit
#: ``mu = -log1p(-2p) / 2`` grow without bound as ``p`` nears 1/2 (at 0.25, 1.39 hits per flip).
PARITY_MAX = 0.25


@jit
def _parity_chunk(words, shifts, p, block_log2, state, c):
    """Chunk ``c`` of :func:`block_flips_seeded` for a symmetric rate ``p``, by parity.

    Every bit of the chunk gets a Poisson(``mu``) number of hits, ``mu = -log1p(-2p) / 2``, and
    flips iff that number is odd: ``P(odd) = (1 - exp(-2 mu)) / 2 = p`` exactly, independently
    bit by bit (a Poisson process cut into bits gives independent Poisson counts). Per block
    the hits are ``Poisson(bits * mu)`` slots drawn uniformly over its bits *with* repetition,
    each XORed into its word: no bitmap, no de-duplication, no second pass.
    """
    npos = shifts.size
    jbits = _jbits(npos)
    jmask = (np.int64(1) << jbits) - 1
    nwords = words.size
    per_block, _, b0, b1 = _chunk_span(nwords, npos, block_log2, c)
    mu = -math.log1p(-2.0 * p) / 2.0
    one = np.uint64(1)
    # PERF: every block but the tensor's last has the same mean: its constants once.
    usual = _poisson_constants(per_block * npos * mu)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    if per_block * words.itemsize < PIPELINE_FROM_BYTES:
        # Small blocks (high rates) stay in L1 once touched: flip each hit as it is drawn.
        for b in range(b0, b1):
            base = b * per_block
            nwb = min(per_block, nwords - base)
            k, s0, s1, s2, s3 = _poisson_usual(nwb * npos * mu, usual, s0, s1, s2, s3)
            r = np.uint64(0)
            left = 0
            for _ in range(k):
                slot, r, left, s0, s1, s2, s3 = _bit_slot(
                    r, left, nwb, npos, jbits, block_log2, s0, s1, s2, s3
                )
                words[base + (slot >> jbits)] ^= one << np.uint64(shifts[slot & jmask])
        state[0], state[1], state[2], state[3] = s0, s1, s2, s3
        return
    # PERF: large blocks (low rates) spread their hits over more than L1: a block's word
    # indices and bits are drawn (and their words prefetched) one block before they are
    # flipped, so its cache misses overlap the previous block's work. Same hits, same result.
    cap = 64
    idx = np.empty((2, cap), dtype=np.int64)
    msk = np.empty((2, cap), dtype=np.uint64)
    nprev = 0
    half = 0
    for b in range(b0, b1 + 1):
        nk = 0
        if b < b1:
            base = b * per_block
            nwb = min(per_block, nwords - base)
            k, s0, s1, s2, s3 = _poisson_usual(nwb * npos * mu, usual, s0, s1, s2, s3)
            if k > cap:
                cap = 2 * k
                grown_i = np.empty((2, cap), dtype=np.int64)
                grown_m = np.empty((2, cap), dtype=np.uint64)
                grown_i[1 - half, :nprev] = idx[1 - half, :nprev]
                grown_m[1 - half, :nprev] = msk[1 - half, :nprev]
                idx, msk = grown_i, grown_m
            r = np.uint64(0)
            left = 0
            for q in range(k):
                slot, r, left, s0, s1, s2, s3 = _bit_slot(
                    r, left, nwb, npos, jbits, block_log2, s0, s1, s2, s3
                )
                w = base + (slot >> jbits)
                idx[half, q] = w
                msk[half, q] = one << np.uint64(shifts[slot & jmask])
                prefetch_write(words, w)
            nk = k
        for q in range(nprev):
            words[idx[1 - half, q]] ^= msk[1 - half, q]
        nprev = nk
        half = 1 - half
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3


@jit
def _chunk(words, shifts, p01, p10, block_log2, state, c):
    """Chunk ``c`` of :func:`block_flips_seeded`: by parity for a symmetric rate, else counts."""
    if p01 == p10 and p01 <= PARITY_MAX:
        _parity_chunk(words, shifts, p01, block_log2, state, c)
    else:
        _seeded_chunk(words, shifts, p01, p10, block_log2, state, c)


@jit
def block_flips_seeded(words, shifts, p01, p10, block_log2, key, parallel):
    """Flip one group's bits of ``words`` in place, block by block, drawn from ``key`` alone.

    Blocks as in :func:`block_flips`, in chunks of ``CHUNK_BLOCKS``; chunk ``c`` has its own
    xoshiro256** stream (row ``c`` of :func:`chunk_states` of ``key``) from which it draws its
    blocks' Binomial counts (:mod:`memsim.noise.binomial`) and then their candidates. No state
    leaves the kernel, so one call per write costs one dispatch. With ``parallel``, tensors of
    more than one chunk go to :func:`_seeded_parallel`, else the chunks run in order on this
    thread: the result is the same (chunks never depend on threads).
    """
    per_block = np.int64(1) << (block_log2 - _jbits(shifts.size))
    nchunks = (words.size + per_block * CHUNK_BLOCKS - 1) // (per_block * CHUNK_BLOCKS)
    states = chunk_states(key, max(nchunks, 1))
    if parallel and nchunks > 1:
        _seeded_parallel(words, shifts, p01, p10, block_log2, states)
    else:
        for c in range(nchunks):
            _chunk(words, shifts, p01, p10, block_log2, states[c], c)


@jit(parallel=True)
def _seeded_parallel(words, shifts, p01, p10, block_log2, states):
    """The chunks of :func:`block_flips_seeded` in parallel."""
    for c in numba.prange(states.shape[0]):
        _chunk(words, shifts, p01, p10, block_log2, states[c], c)
