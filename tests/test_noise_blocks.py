"""The numba engine's block sampler: exact Bernoulli flips whatever the block geometry.

Block borders are where a block sampler can go wrong (a bit counted in two blocks or in none, a
last block of the wrong size, slots that are not bits), so most tests force tiny blocks and
tensors that are not a multiple of the block. Counts are compared with their exact Binomial laws
at fixed seeds (deterministic).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch
from scipy import stats

from memsim.noise import flip, flip_coupled
from memsim.noise.blocks import (
    block_flips,
    block_trials,
    choose_block_log2,
    slot_bits,
)
from memsim.noise.kernels import seed_state

ALPHA = 1e-6


@pytest.fixture
def blocks(monkeypatch):
    """Force the block kernel for every rate, with blocks of at most ``2**max_log2`` slots."""
    from memsim.noise import blocks as blocks_module
    from memsim.noise import numba_engine

    def force(max_log2: int = 20) -> None:
        monkeypatch.setattr(numba_engine, "DENSE_FROM", 2.0)
        monkeypatch.setattr(numba_engine, "BLOCK_FROM", 0.0)
        monkeypatch.setattr(numba_engine, "BLOCK_TO", 1.0)
        monkeypatch.setattr(numba_engine, "BLOCK_MIN_CANDIDATES", 0)
        monkeypatch.setattr(blocks_module, "MAX_BLOCK_LOG2", max_log2)

    return force


def flipped_bits(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(words, width) 0/1 matrix of flipped bits, MSB-first, for unsigned word arrays."""
    width = x.dtype.itemsize * 8
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    diff = (x ^ y).astype(np.uint64)
    return ((diff[:, None] >> shifts) & np.uint64(1)).astype(np.int64)


def binomial_ok(k: int, n: int, p: float) -> bool:
    return stats.binom.ppf(ALPHA / 2, n, p) <= k <= stats.binom.isf(ALPHA / 2, n, p)


def chi2_ok(observed: np.ndarray, trials: np.ndarray, p: float) -> bool:
    expected = trials * p
    chi2 = (((observed - expected) ** 2) / (expected * (1 - p))).sum()
    return stats.chi2.sf(chi2, observed.size) > ALPHA


@pytest.mark.parametrize("nwords,npos,log2", [(1, 32, 6), (7, 32, 8), (1000, 23, 10), (5, 1, 6)])
def test_block_trials_cover_every_bit_once(nwords, npos, log2):
    trials = block_trials(nwords, npos, log2)
    per_block = 1 << (log2 - slot_bits(npos))
    assert trials.sum() == nwords * npos
    assert (trials[:-1] == per_block * npos).all() and 0 < trials[-1] <= per_block * npos


@pytest.mark.parametrize("pmax", [1e-5, 1e-3, 0.02, 0.25, 1.0])
@pytest.mark.parametrize("nwords,npos", [(1, 32), (100, 23), (1 << 22, 32), (1 << 20, 1)])
def test_block_size_is_bounded(pmax, nwords, npos):
    from memsim.noise.blocks import MAX_BLOCK_LOG2

    m = choose_block_log2(nwords, npos, pmax)
    jbits = slot_bits(npos)
    assert max(6, jbits) <= m <= max(MAX_BLOCK_LOG2, 6, jbits)
    assert (1 << (m - jbits)) < 2 * max(nwords, 64)  # never far more slots than the tensor has


def test_candidates_are_a_uniform_subset_of_the_bits():
    """One block of 2 words x 3 positions (4 slots a word, so 1 slot in 4 is not a bit), k = 2:
    the 15 pairs of bits are equally likely; slots that are not bits never come out."""
    words = np.zeros(2, dtype=np.uint8)
    shifts = np.array([7, 4, 0], dtype=np.int64)
    state = seed_state(3)
    out = np.empty(2, dtype=np.int64)
    bits = [w * 64 + s for w in range(2) for s in (7, 4, 0)]
    pairs = {frozenset(c): 0 for c in combinations(bits, 2)}
    draws = 6000
    for _ in range(draws):
        n = block_flips(words, shifts, 0.5, 0.5, np.array([2]), 6, state, out, True)
        assert n == 2
        pairs[frozenset(out.tolist())] += 1  # KeyError for a slot that is not a bit
    assert (words == 0).all()  # recording only reads
    assert stats.chisquare(list(pairs.values())).pvalue > ALPHA


def test_recording_and_flipping_make_the_same_choices():
    """With thinning both modes draw the same randoms: the events are the in-place flips."""
    rng = np.random.default_rng(0)
    words = rng.integers(0, 1 << 32, 3001, dtype=np.uint32)
    shifts = np.arange(31, -1, -1, dtype=np.int64)
    m = 9
    counts = np.random.default_rng(1).binomial(block_trials(words.size, 32, m), 0.05)
    out = np.empty(int(counts.sum()), dtype=np.int64)
    n = block_flips(words, shifts, 0.05, 0.02, counts, m, seed_state(7), out, True)
    flipped = words.copy()
    block_flips(flipped, shifts, 0.05, 0.02, counts, m, seed_state(7), out[:0], False)
    expected = words.copy()
    for e in out[:n]:
        expected[e >> 6] ^= np.uint32(1 << int(e & 63))
    assert n > 0 and np.array_equal(flipped, expected)


@pytest.mark.parametrize("npos_bits", [None, "mantissa"], ids=["all32", "mantissa23"])
def test_uniform_over_words_and_positions_across_block_borders(blocks, npos_bits):
    """Blocks of 2**8 slots (8 float32 words), 1003 words (a partial last block): the flips per
    word index and per bit position are Binomial, with nothing lost or doubled at the borders."""
    blocks(max_log2=8)
    p = 0.02
    x = torch.zeros(1003)
    calls = 60
    per_word = np.zeros(x.numel(), dtype=np.int64)
    per_pos = np.zeros(32, dtype=np.int64)
    for seed in range(calls):
        bits = flipped_bits(
            x.numpy().view(np.uint32),
            flip(x, p, bits=npos_bits, engine="numba", seed=seed).numpy().view(np.uint32),
        )
        per_word += bits.sum(axis=1)
        per_pos += bits.sum(axis=0)
    eligible = 32 if npos_bits is None else 23
    assert chi2_ok(per_word, np.full(x.numel(), calls * eligible), p)
    noisy = np.arange(32) >= 32 - eligible
    assert (per_pos[~noisy] == 0).all()
    for k in per_pos[noisy]:
        assert binomial_ok(int(k), calls * x.numel(), p)
    assert chi2_ok(per_pos[noisy], np.full(eligible, calls * x.numel()), p)


@pytest.mark.parametrize("nwords", [1, 3, 7])
def test_tensors_smaller_than_a_block(blocks, nwords):
    """A few words, many seeds: every bit flips with its own direction's probability."""
    blocks()
    p01, p10 = 0.1, 0.03
    x = torch.from_numpy(np.array([0x0F0F0F0F, 0xFFFF0000, 0, 0x12345678][:nwords] * 2)[:nwords])
    x = x.to(torch.int32)
    before = flipped_bits(np.zeros(nwords, np.uint32), x.numpy().view(np.uint32))
    calls = 3000
    changed = np.zeros_like(before)
    for seed in range(calls):
        y = flip(x, p01, p10, engine="numba", seed=seed)
        changed += flipped_bits(x.numpy().view(np.uint32), y.numpy().view(np.uint32))
    for value, p in ((0, p01), (1, p10)):
        is_value = before == value
        k, n = int(changed[is_value].sum()), int(is_value.sum()) * calls
        assert binomial_ok(k, n, p), (value, k, n)
        for bit in np.argwhere(is_value)[:8]:  # a few single bits too
            assert binomial_ok(int(changed[tuple(bit)]), calls, p)


@pytest.mark.parametrize("ones", [False, True], ids=["all_zeros", "all_ones"])
def test_each_direction_with_small_blocks(blocks, ones):
    blocks(max_log2=10)
    p01, p10 = 0.004, 0.02
    n = 50_001
    x = torch.full((n,), -1 if ones else 0, dtype=torch.int32)
    y = flip(x, p01, p10, engine="numba", seed=8)
    bits = flipped_bits(x.numpy().view(np.uint32), y.numpy().view(np.uint32))
    p = p10 if ones else p01
    for k in bits.sum(axis=0):
        assert binomial_ok(int(k), n, p)
    counts = np.bincount(bits.sum(axis=1), minlength=33)[:4]  # flips per word: Binomial(32, p)
    expected = stats.binom.pmf(np.arange(4), 32, p) * n
    obs = np.append(counts, n - counts.sum())
    exp = np.append(expected, n - expected.sum())
    assert stats.chisquare(obs, exp).pvalue > ALPHA


def test_ladder_with_blocks_is_nested_and_exact(blocks):
    blocks(max_log2=10)
    ladder = [(1e-3, 4e-3), (0.01, 0.03), (0.05, 0.1)]
    n = 20_001
    zeros = torch.zeros(n, dtype=torch.int32)
    ones = torch.full((n,), -1, dtype=torch.int32)
    for x, direction in ((zeros, 0), (ones, 1)):
        ys = flip_coupled(x, [e[0] for e in ladder], [e[1] for e in ladder], seed=4)
        bits = [
            flipped_bits(x.numpy().view(np.uint32), y.numpy().view(np.uint32)).astype(bool)
            for y in ys
        ]
        for small, large in zip(bits, bits[1:]):
            assert not (small & ~large).any()
        for b, entry in zip(bits, ladder):
            assert binomial_ok(int(b.sum()), n * 32, entry[direction])


def test_same_seed_same_flips_any_thread_count():
    import numba

    x = torch.randn(200_000)  # p = 1e-3: the block kernel with default settings
    before = numba.get_num_threads()
    try:
        a = flip(x, 1e-3, 2e-3, engine="numba", seed=9)
        numba.set_num_threads(1)
        b = flip(x, 1e-3, 2e-3, engine="numba", seed=9)
    finally:
        numba.set_num_threads(before)
    c = flip(x, 1e-3, 2e-3, engine="numba", seed=10)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    assert not torch.equal(a.view(torch.int32), c.view(torch.int32))


def test_multiply_shift_accepts_each_position_equally_often():
    """``_below`` over every ``POS_BITS``-bit input, for every position count that is not a
    power of two: each position accepted exactly floor(2**POS_BITS / n) times."""
    from memsim.noise.blocks import POS_BITS, _below

    inputs = 1 << POS_BITS
    for n in (n for n in range(3, 65) if n & (n - 1)):
        accepted = np.zeros(n, dtype=np.int64)
        for x in range(inputs):
            value, ok = _below(np.uint64(x), n)
            assert value == (x * n) >> POS_BITS
            accepted[value] += ok
        assert (accepted == inputs // n).all(), n


def test_slot_draws_keep_the_multiply_shift_rejection():
    """10^8 slots of 23 positions: the rejection in ``_bit_slot`` matters. Without it 2 of the
    23 positions come up 0.56 % too often (4096 = 23 · 178 + 2); the chi-square's
    non-centrality is then about 270 against a critical value near 100 (45 cells, ALPHA),
    where the loop test below (200 draws a cell) could not see it."""
    import numba

    from memsim.noise.blocks import _bit_slot

    @numba.njit
    def counts(draws, nwords, npos, jbits, block_log2, s0, s1, s2, s3):
        cells = np.zeros(nwords << jbits, dtype=np.int64)
        r, left = np.uint64(0), np.int64(0)
        for _ in range(draws):
            slot, r, left, s0, s1, s2, s3 = _bit_slot(
                r, left, nwords, npos, jbits, block_log2, s0, s1, s2, s3
            )
            cells[slot] += 1
        return cells

    npos, nwords = 23, 2
    jbits = slot_bits(npos)  # 5: 2 words of 32 slots fill a block of 2**6
    cells = counts(10**8, nwords, npos, jbits, jbits + 1, *seed_state(23))
    cells = cells.reshape(nwords, 1 << jbits)
    assert cells[:, npos:].sum() == 0  # never a slot that is not a bit
    assert cells.sum() == 10**8
    assert stats.chisquare(cells[:, :npos].ravel()).pvalue > ALPHA


@pytest.mark.parametrize("npos,nwords", [(25, 37), (24, 64), (7, 5)])
def test_slots_are_uniform_when_positions_are_not_a_power_of_two(npos, nwords):
    """Positions that are not a power of two take the multiply-shift draw: every (word, position)
    of the block equally likely, nothing outside it."""
    from memsim.noise.blocks import _bit_slot

    jbits = slot_bits(npos)
    s = tuple(seed_state(npos * 1000 + nwords))
    r, left = np.uint64(0), np.int64(0)
    geometry = (np.int64(nwords), np.int64(npos), np.int64(jbits), np.int64(20))
    cells = np.zeros((nwords, npos), dtype=np.int64)
    draws = 200 * npos * nwords
    for _ in range(draws):
        slot, r, left, *rest = _bit_slot(r, left, *geometry, *s)
        # Numba hands back Python ints: keep the kernel's types for the next call.
        r, left, s = np.uint64(r), np.int64(left), tuple(np.uint64(v) for v in rest)
        cells[slot >> jbits, slot & ((1 << jbits) - 1)] += 1  # IndexError if outside
    assert cells.sum() == draws
    assert stats.chisquare(cells.ravel()).pvalue > ALPHA
