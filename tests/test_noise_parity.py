"""Symmetric block sampling by parity: Poisson hits per bit, a bit flips iff its hits are odd.

The law behind it: with ``mu = -log1p(-2p) / 2`` hits per bit, ``P(odd) = p`` exactly, and a
Poisson number of hits spread uniformly with repetition over a block gives every bit an
independent Poisson count. So the checks are those of any exact engine (per-position Binomial
counts, Binomial(width, p) flips per word, block borders, masks), plus the Poisson sampler
itself against its law in both of its branches.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import torch
from helpers import binomial_counts_pvalue, poisson_counts_pvalue
from scipy import stats
from test_noise_stats import ALPHA, assert_binomial_per_position, bit_matrix, random_words

from memsim.noise import flip
from memsim.noise.binomial import poissons
from memsim.noise.blocks import (
    CHUNK_BLOCKS,
    PARITY_MAX,
    block_flips_seeded,
    choose_block_log2,
    slot_bits,
)
from memsim.noise.kernels import seed_state

pytestmark = pytest.mark.statistical


@pytest.fixture(autouse=True)
def sparse(monkeypatch):
    """The block path for every rate up to ``BLOCK_TO`` (no dense switch, no geometric)."""
    from memsim.noise import numba_engine

    monkeypatch.setattr(numba_engine, "DENSE_FROM", 2.0)
    monkeypatch.setattr(numba_engine, "BLOCK_FROM", 0.0)
    monkeypatch.setattr(numba_engine, "BLOCK_MIN_CANDIDATES", 0)


@pytest.mark.parametrize("lam", [0.3, 3.0, 9.99, 10.0, 40.0, 131.0, 1500.0])
def test_poisson_draws_follow_the_poisson_law(lam):
    draws = poissons(lam, 200_000, seed_state(int(lam * 100)))
    assert poisson_counts_pvalue(draws, lam) > ALPHA
    assert draws.min() >= 0


def test_odd_hits_have_probability_p():
    for p in (1e-9, 1e-4, 0.01, 0.1, PARITY_MAX):
        mu = -math.log1p(-2 * p) / 2
        assert (1 - math.exp(-2 * mu)) / 2 == pytest.approx(p, rel=1e-12)


@pytest.mark.parametrize("p", [2e-3, 0.02, 0.1, PARITY_MAX])
def test_each_position_and_each_word_is_binomial(p):
    x = random_words("float32", 60_000, seed=3)
    changed = bit_matrix(x) != bit_matrix(flip(x, p, engine="numba", seed=17))
    assert_binomial_per_position(changed.sum(axis=0), np.full(32, changed.shape[0]), np.full(32, p))
    assert binomial_counts_pvalue(changed.sum(axis=1), 32, p) > ALPHA


def test_the_engine_flips_symmetric_rates_by_parity():
    from memsim.noise.writes import BLOCKS_STREAM
    from memsim.rng import splitmix64

    p = 0.05
    x = random_words("float32", 30_000, seed=4)
    words = x.view(torch.int32).numpy().view(np.uint32).copy()
    shifts = np.arange(31, -1, -1, dtype=np.int64)
    key = np.uint64(splitmix64(8 ^ BLOCKS_STREAM, 1))  # the layer's first group's key
    block_flips_seeded(words, shifts, p, p, choose_block_log2(words.size, 32, p), key, True)
    y = flip(x, p, engine="numba", seed=8)
    assert np.array_equal(y.view(torch.int32).numpy().view(np.uint32), words)
    assert not np.array_equal(words, x.view(torch.int32).numpy().view(np.uint32))


def test_pairs_of_positions_flip_independently():
    p = 0.05
    x = torch.zeros(200_000)
    changed = bit_matrix(x) != bit_matrix(flip(x, p, engine="numba", seed=23))
    n = changed.shape[0]
    for a, b in ((0, 1), (30, 31), (7, 19)):
        both = int((changed[:, a] & changed[:, b]).sum())
        assert stats.binom.ppf(ALPHA / 2, n, p * p) <= both <= stats.binom.isf(ALPHA / 2, n, p * p)


@pytest.mark.parametrize("nwords", [1, 37, 5000, 70_001])
@pytest.mark.parametrize("bits", ["all", "mantissa"])
@pytest.mark.parametrize("p", [2e-3, 0.03], ids=["pipelined", "direct"])
def test_block_borders_masks_and_sizes(nwords, bits, p):
    """Last blocks that are partial and positions that are not bits (23 of 32 slots) are
    rejected, never flipped; the rest stays Binomial per position. At 2e-3 blocks of 16 KiB of
    words (from 5000 words on) take the pipelined path, at 0.03 each hit flips as drawn."""
    trials = 0
    flips = np.zeros(32, dtype=np.int64)
    for seed in range(max(1, 40_000 // nwords)):
        x = random_words("float32", nwords, seed=seed)
        changed = bit_matrix(x) != bit_matrix(flip(x, p, bits=bits, engine="numba", seed=seed))
        flips += changed.sum(axis=0)
        trials += nwords
    rates = np.full(32, p)
    if bits == "mantissa":
        rates[:9] = 0.0
        assert flips[:9].sum() == 0
    assert_binomial_per_position(flips, np.full(32, trials), rates)


def test_kernel_result_depends_on_the_key_only():
    p = 0.01
    npos = 32
    words = np.random.default_rng(1).integers(0, 2**32, size=1 << 20, dtype=np.uint32)
    m = choose_block_log2(words.size, npos, p)
    assert words.size > CHUNK_BLOCKS << (m - slot_bits(npos))  # several chunks: in parallel
    shifts = np.arange(npos - 1, -1, -1, dtype=np.int64)
    saved = numba.get_num_threads()
    outs = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            out = words.copy()
            block_flips_seeded(out, shifts, p, p, m, np.uint64(99), True)
            outs.append(out)
    finally:
        numba.set_num_threads(saved)
    serial = words.copy()
    block_flips_seeded(serial, shifts, p, p, m, np.uint64(99), False)  # chunks on this thread
    assert not np.array_equal(outs[0], words)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[1], outs[2])
    assert np.array_equal(serial, outs[0])
    other = words.copy()
    block_flips_seeded(other, shifts, p, p, m, np.uint64(100), True)
    assert not np.array_equal(other, outs[0])
