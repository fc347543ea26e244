"""Numba kernels of coupled sampling: nested flips drawn as Poisson hits, sparsely and in place.

Where this sits: :mod:`memsim.noise.numba_engine` calls these for ladder (common-random-numbers)
writes below its dense split (docs/design.md §3). With the group's candidate rates
``Pmax_0 <= Pmax_1 <= ...`` per entry, level ``j`` is an independent Poisson process of hits on
the group's bits with ``mu_j = -log(1 - r_j)`` hits per bit, ``r_j = (Pmax_j - Pmax_{j-1}) /
(1 - Pmax_{j-1})``. Entry ``k`` is the union of levels ``0..k``: a bit is a candidate iff it has
at least one hit, with probability ``1 - prod(1 - r_j) = Pmax_k``, independently bit by bit (a
Poisson process cut into bits gives independent counts). Its *level* is that of its first hit,
``P(level = j) = Pmax_j - Pmax_{j-1}``, as for one hidden uniform ``U`` per bit with
``Pmax_{j-1} <= U < Pmax_j``.

1. Counts: a group's bits are cut into superblocks of ``2**block_log2`` slots (``(word <<
   jbits) | j``) that do not depend on p; level ``j`` has ``Poisson(bits * mu_j)`` hits in a
   superblock (:func:`ladder_counts`), drawn level by level from one stream, so an entry ``j``
   draws the same counts of levels ``0..j`` as any entry above.
2. Positions: a per-superblock xoshiro256** stream draws each hit's slot uniformly over the
   bits (rejecting slots that are not bits), level 0's hits first, then level 1's, ...; the
   hits of levels ``0..j`` are the same for every entry from ``j`` up. Repeats are allowed:
   that is what makes a level's hits a Poisson process, and lets counts, positions and levels
   nest without a random order to cut.
3. Union: a bit flips once however many hits it has. Where every level's rates lie below the
   entry's (symmetric rates: always) each candidate flips, so the hits are ORed into a mask
   (no test, no branch) that is XORed into the words: the whole superblock's where hits are
   dense, else only the hit words, each XORed once and its mask cleared. Other superblocks
   (thinning, or flips collected into a separate mask) *set* each hit's bit to the value its
   own decision gives, reading every original bit before writing any and writing the last hit
   first, so a bit hit several times ends as its first hit decides.
4. Thinning (asymmetric rates): a bit's first hit, hit ``q`` of its superblock at level ``L``,
   sets ``U = Pmax_{L-1} + V_q (Pmax_L - Pmax_{L-1})`` with ``V_q`` element ``q`` of a
   counter-based SplitMix64 stream (it depends on ``q`` only), and the bit flips iff ``U < P_k``
   of its original value. Levels are drawn in order, so the first hit is the one of lowest level,
   at every entry.

Each superblock has its own streams, so superblocks run in parallel with results independent
of the thread count. Counts are NumPy's Poisson algorithms (:mod:`memsim.noise.binomial`) on
the kernel's own xoshiro256** stream.
"""

from __future__ import annotations

import numba
import numpy as np

from memsim.jit import jit, prefetch_write
from memsim.noise.binomial import (  # inlined: the cache sees this file
    _poisson,
    _poisson_constants,
    _poisson_of,
)
from memsim.noise.blocks import _bit_slot, _jbits, chunk_state  # inlined: the cache sees this
from memsim.noise.kernels import _INV_2_53, _mix64

_GAMMA = np.uint64(0x9E3779B97F4A7C15)


#: A superblock of a coupled draw whose levels all flip unconditionally ORs its hits into a
#: mask of its words; with at least one hit per ``UNION_WORDS_PER_HIT`` words the mask is XORed
#: into the whole superblock, sparser ones (in place) visit only the hit words. Both give the
#: same flips. 1M float32, one thread, through channels, least of 300, ms, with the whole
#: superblock's pass vectorized (one hit per 31 / 16 / 10 / 6 words): at p = 1e-3 whole 0.30,
#: hit words 0.19; at 2e-3 0.40 / 0.37; at 3e-3 0.47 / 0.57; at 5e-3 0.60 / 0.96.
UNION_WORDS_PER_HIT = 12
#: Draws with fewer hits than this run on the calling thread (:func:`ladder_flips_serial`; the
#: same flips). 1M float32, two threads, wall us: at p = 1e-4 (3.3K hits) 19 parallel against
#: 24 serial; at 1e-5 (350 hits) 7.5 serial against 9-12 parallel.
PARALLEL_HITS = 1 << 10


@jit
def ladder_counts(trials, mus, state):
    """Hit counts ``C[j, b]`` of level ``j`` in superblock ``b``: Poisson(``trials[b] * mus[j]``).

    ``trials[b]`` bits per superblock, ``mus[j]`` the level's hits per bit. Drawn level by level
    (all superblocks of level 0, then of level 1, ...) from ``state``: the counts of levels
    ``0..j`` do not depend on how many levels follow.
    """
    nlev = mus.size
    nb = trials.size
    counts = np.empty((nlev, nb), dtype=np.int64)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for j in range(nlev):
        # PERF: all superblocks but the last have the same bits: their mean's exp(-lam) or
        # PTRS's constants once per level.
        usual = _poisson_constants(trials[0] * mus[j])
        for b in range(nb):
            if trials[b] == trials[0]:
                x, s0, s1, s2, s3 = _poisson_of(usual, s0, s1, s2, s3)
            else:
                x, s0, s1, s2, s3 = _poisson(trials[b] * mus[j], s0, s1, s2, s3)
            counts[j, b] = x
    return counts


@jit
def ladder_group(
    words,
    out,
    shifts,
    lo,
    hi,
    p01,
    p10,
    mus,
    trials,
    block_log2,
    key,
    masks,
    in_place,
    union_words,
):
    """One group's draw at an entry: :func:`ladder_counts`, then :func:`ladder_flips`.

    ``key`` (4 uint64) seeds the counts (``key[0]``), the superblocks' slot streams
    (``key[1]``) and the thinning uniforms (``key[2]``). PERF: one call instead of four saves
    ~8 us a write, as much as the flips cost at low p.
    """
    counts = ladder_counts(trials, mus, chunk_state(key[0], 0))
    hits = counts.sum()
    if hits == 0:
        return
    args = (words, out, shifts, lo, hi, p01, p10, counts, block_log2, key[1], key[2], masks)
    if hits >= PARALLEL_HITS:
        ladder_flips(*args, in_place, union_words)
    else:
        ladder_flips_serial(*args, in_place, union_words)


@jit(parallel=True)
def ladder_flips(
    words,
    out,
    shifts,
    lo,
    hi,
    p01,
    p10,
    counts,
    block_log2,
    skey,
    vkey,
    masks,
    in_place,
    union_words,
):
    """Flip the union of each superblock's hits of levels ``0..`` (see module doc).

    ``words`` are read (original stored bits) and the flips are XORed into ``out``: ``out`` is
    ``words`` itself (``in_place``), or a zeroed array of the same shape to collect a mask.
    ``lo[j]``/``hi[j]`` bound the hidden uniform of level ``j`` (``Pmax_{j-1}``, ``Pmax_j``);
    ``p01``/``p10`` are the entry's rates; superblock ``b``'s slot stream is row ``b`` of
    ``chunk_states(skey, ...)`` and ``vkey`` keys the thinning uniforms. Superblocks are split
    evenly between workers, each with a row of ``masks`` (a superblock's words), zeroed and left
    zeroed; each superblock depends only on its own streams, so the result never depends on the
    number of workers. Superblocks with a hit per ``union_words`` words or more take the mask
    when every level flips unconditionally (``UNION_WORDS_PER_HIT``; 0: never).
    """
    nblocks = counts.shape[1]
    nthreads = max(1, min(masks.shape[0], nblocks))
    for t in numba.prange(nthreads):
        _superblocks(
            words, out, shifts, lo, hi, p01, p10, counts, block_log2, skey, vkey, masks[t],
            in_place, union_words, t * nblocks // nthreads, (t + 1) * nblocks // nthreads,
        )  # fmt: skip


@jit
def ladder_flips_serial(
    words,
    out,
    shifts,
    lo,
    hi,
    p01,
    p10,
    counts,
    block_log2,
    skey,
    vkey,
    masks,
    in_place,
    union_words,
):
    """:func:`ladder_flips` on this thread, superblock after superblock: the same flips.

    PERF: a parallel region costs microseconds to start, as much as the flips at low p.
    """
    _superblocks(
        words, out, shifts, lo, hi, p01, p10, counts, block_log2, skey, vkey, masks[0],
        in_place, union_words, 0, counts.shape[1],
    )  # fmt: skip


#: Sparse superblocks with fewer hits than this hand their flipped words on in a list that is
#: XORed in once it holds ``FLUSH_WORDS`` words, or at the end. 1M float32, one thread, through
#: channels, us: 5.6-6.5 -> 4.5-4.7 at p = 1e-6 (a hit in about every superblock); deferring
#: every sparse superblock (~100 hits each at 1e-4, ~1000 at 1e-3) lost 5-20 % there instead.
DEFER_BELOW = 32
FLUSH_WORDS = 256


@jit(inline="always")
def _superblocks(
    words,
    out,
    shifts,
    lo,
    hi,
    p01,
    p10,
    counts,
    block_log2,
    skey,
    vkey,
    scratch,
    in_place,
    union_words,
    b0,
    b1,
):
    """Superblocks ``b0 .. b1 - 1`` of :func:`ladder_flips`, ``scratch`` a zeroed mask row.

    PERF: a sparse superblock's flipped words are prefetched as its hits are drawn and XORed
    in once ``FLUSH_WORDS`` are listed: at low p, with a hit or two per superblock, modifying
    each word right after asking for it stalled on every one.
    """
    nlev = counts.shape[0]
    sure_lev = _sure_levels(hi, p01, p10)
    wbits = block_log2 - _jbits(shifts.size)
    totals = np.zeros(b1 - b0, dtype=np.int64)
    most = np.int64(0)  # the most hits of a sparse superblock
    for b in range(b0, b1):
        for j in range(nlev):
            totals[b - b0] += counts[j, b]
        if totals[b - b0] * union_words < min(
            np.int64(1) << wbits, words.size - (np.int64(b) << wbits)
        ):
            most = max(most, totals[b - b0])
    # Before a superblock at most FLUSH_WORDS - 1 are pending; it adds at most ``most``.
    room = most + FLUSH_WORDS if most > 0 else 0
    pending_words = np.empty(room, dtype=np.int64)
    pending_masks = np.empty(room, dtype=scratch.dtype)
    n = 0
    for b in range(b0, b1):
        total = totals[b - b0]
        if total == 0:
            continue
        base = np.int64(b) << wbits
        nwb = min(np.int64(1) << wbits, words.size - base)
        st = chunk_state(skey, b)  # the superblock's slot stream
        if sure_lev == nlev - 1 and total * union_words >= nwb:
            _union_block(
                words, out, shifts, counts, b, base, nwb, block_log2, st, scratch, in_place
            )
        elif sure_lev == nlev - 1 and in_place:
            n = _sparse_union_block(
                words, shifts, counts, b, base, nwb, block_log2, st, scratch, pending_words,
                pending_masks, n, total < DEFER_BELOW,
            )  # fmt: skip
            if n >= FLUSH_WORDS:
                n = _xor_pending(words, pending_words, pending_masks, n)
        else:
            bkey = _mix64(vkey + np.uint64(b + 1) * _GAMMA)  # this superblock's uniforms
            _set_block(
                words, out, shifts, lo, hi, p01, p10, counts, b, base, nwb, block_log2, st,
                bkey, sure_lev, total, in_place,
            )  # fmt: skip
    _xor_pending(words, pending_words, pending_masks, n)


@jit(inline="always")
def _xor_pending(words, pending_words, pending_masks, n):
    """XOR the ``n`` listed masks into their words; returns the new, empty, list length."""
    for i in range(n):
        words[pending_words[i]] ^= pending_masks[i]
    return 0


@jit(inline="always")
def _sure_levels(hi, p01, p10):
    """The last level whose whole interval is below both rates (they flip without a uniform)."""
    sure_lev = -1
    while sure_lev + 1 < hi.size and hi[sure_lev + 1] <= min(p01, p10):
        sure_lev += 1
    return sure_lev


@jit(inline="always")
def _union_block(words, out, shifts, counts, b, base, nwb, block_log2, st, scratch, in_place):
    """Every hit of superblock ``b`` flips: OR them into a mask, then XOR it into the words.

    The mask is ``out`` itself when it collects a mask, else ``scratch`` (zeroed, left zeroed).
    """
    npos = shifts.size
    jbits = _jbits(npos)
    jmask = (np.int64(1) << jbits) - 1
    one = np.uint64(1)
    s0, s1, s2, s3 = st
    mask = scratch[:nwb] if in_place else out[base : base + nwb]
    for j in range(counts.shape[0]):
        r = np.uint64(0)
        left = 0
        for _ in range(counts[j, b]):
            slot, r, left, s0, s1, s2, s3 = _bit_slot(
                r, left, nwb, npos, jbits, block_log2, s0, s1, s2, s3
            )
            mask[slot >> jbits] |= one << np.uint64(shifts[slot & jmask])
    if in_place:
        # PERF: on a slice of its own the pass vectorizes; indexed as words[base + i] it did
        # not (1M float32 at p = 1e-2, one thread: 1.32 -> 0.90 ms a write, 0.83 independent).
        ws = words[base : base + nwb]
        for i in range(nwb):
            ws[i] ^= mask[i]
        mask[:] = 0


@jit(inline="always")
def _sparse_union_block(
    words,
    shifts,
    counts,
    b,
    base,
    nwb,
    block_log2,
    st,
    scratch,
    pending_words,
    pending_masks,
    n,
    defer,
):
    """Every hit of superblock ``b`` flips, few hits: OR them into the words' ``scratch`` mask,
    then visit each hit word once: XOR its mask in, or with ``defer`` append the word and its
    mask to ``pending_words``/``pending_masks`` from ``n`` on, for the caller to XOR in later;
    clear its mask either way. Returns the new length of the list. Hit words are prefetched as
    they are drawn; ``pending_words`` from ``n`` on also holds the hits meanwhile.

    PERF: a word hit twice is visited once (its mask is cleared at the first visit), without
    reading original bits first or a pass over the whole superblock. Its draw loop is
    :func:`_union_block`'s plus the recorded hit words: one function with a flag in that loop
    made dense superblocks 4-5 % slower (1M float32 at 1e-2 and 0.022, one thread). Nor does it
    share :func:`_set_block`'s draw loop (slots first, ORed in a pass of their own): that cost
    4 % at p = 4.6e-3 (0.72 against 0.69 ms, 1M float32, one thread, alternated), none at 1e-3.
    """
    npos = shifts.size
    jbits = _jbits(npos)
    jmask = (np.int64(1) << jbits) - 1
    one = np.uint64(1)
    s0, s1, s2, s3 = st
    q = n
    for j in range(counts.shape[0]):
        r = np.uint64(0)
        left = 0
        for _ in range(counts[j, b]):
            slot, r, left, s0, s1, s2, s3 = _bit_slot(
                r, left, nwb, npos, jbits, block_log2, s0, s1, s2, s3
            )
            w = slot >> jbits
            scratch[w] |= one << np.uint64(shifts[slot & jmask])
            pending_words[q] = w
            q += 1
            prefetch_write(words, base + w)
    if not defer:
        for i in range(n, q):
            w = pending_words[i]
            m = scratch[w]
            if m:
                words[base + w] ^= m
                scratch[w] = 0
        return n
    k = n
    for i in range(n, q):
        w = pending_words[i]
        m = scratch[w]
        if m:
            pending_words[k] = base + w
            pending_masks[k] = m
            k += 1
            scratch[w] = 0
    return k


@jit(inline="always")
def _set_block(
    words,
    out,
    shifts,
    lo,
    hi,
    p01,
    p10,
    counts,
    b,
    base,
    nwb,
    block_log2,
    st,
    bkey,
    sure_lev,
    total,
    in_place,
):
    """Superblock ``b`` hit by hit: every hit's bit is *set* to the value its own decision
    gives, all read before any is written and written last hit first, so a bit hit several
    times ends as its first hit decides (no bitmap of hit bits is needed).

    PERF: all hits are drawn (and their words prefetched) before any is read, so the cache
    misses of a superblock overlap instead of stalling one by one.
    """
    npos = shifts.size
    jbits = _jbits(npos)
    jmask = (np.int64(1) << jbits) - 1
    one = np.uint64(1)
    s0, s1, s2, s3 = st
    slots = np.empty(total, dtype=np.int64)
    q = 0
    for level in range(counts.shape[0]):
        r = np.uint64(0)
        left = 0
        for _ in range(counts[level, b]):
            slot, r, left, s0, s1, s2, s3 = _bit_slot(
                r, left, nwb, npos, jbits, block_log2, s0, s1, s2, s3
            )
            slots[q] = slot
            q += 1
            prefetch_write(out, base + (slot >> jbits))
    # The value each hit sets its bit to: original XOR its decision (read before any write).
    value = np.empty(total, dtype=np.uint8)
    sure = np.int64(0)
    for level in range(sure_lev + 1):
        sure += counts[level, b]
    level = sure_lev + 1
    cum = sure + (counts[level, b] if level < counts.shape[0] else 0)
    for i in range(total):
        slot = slots[i]
        w = base + (slot >> jbits)
        s = np.uint64(shifts[slot & jmask])
        orig = (np.uint64(words[w]) >> s) & one
        if i < sure:
            flip = one
        else:
            while i >= cum:
                level += 1
                cum += counts[level, b]
            v = (_mix64(bkey + np.uint64(i + 1) * _GAMMA) >> np.uint64(11)) * _INV_2_53
            u = lo[level] + v * (hi[level] - lo[level])
            flip = np.uint64(u < (p10 if orig else p01))
        value[i] = np.uint8(orig ^ flip) if in_place else np.uint8(flip)
    for i in range(total - 1, -1, -1):
        slot = slots[i]
        w = base + (slot >> jbits)
        s = np.uint64(shifts[slot & jmask])
        out[w] = (out[w] & ~(one << s)) | (np.uint64(value[i]) << s)
