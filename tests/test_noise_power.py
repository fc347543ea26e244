"""Statistical tests sized to catch specific, small biases in the noise engines' samplers.

Each test names the bias it is there to detect and shows, by its sample size against the
effect size, that it has the power to: the chi-square statistic's non-centrality under the
bias is far above the critical value at ``ALPHA``, while at fixed seeds the exact sampler
passes. Large samples come from the kernels' own compiled loops, so each test takes seconds.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from helpers import binomial_counts_pvalue
from scipy import stats

from memsim.noise.binomial import binomials
from memsim.noise.blocks import block_flips
from memsim.noise.kernels import flip_group, seed_state

pytestmark = pytest.mark.statistical

ALPHA = 1e-6


@pytest.mark.parametrize("n,p", [(1000, 0.003), (60, 0.9)])
def test_binomial_inversion_keeps_its_upper_tail(n, p):
    """Inversion (mean <= 30) must restart only past NumPy's bound ``mean + 10 sd``.

    A bound at ``mean + 3 sd`` (9 draws and up at n = 1000, p = 0.003; 14 and up of the
    failures at n = 60, p = 0.9) silently cuts a tail of probability ``t`` = 0.0037 (0.0020)
    and renormalises. With 10^6 draws the chi-square's non-centrality is about
    ``N t (1 + t)`` = 3700 (2000), against a critical value near 60 (about 15 cells at
    ALPHA); test_noise_coupled's 20 000 draws (~75 expected tail draws, spread over pooled
    cells) have far less margin. The count of draws in the cut tail is checked on its own too.
    """
    size = 10**6
    draws = binomials(n, p, size, seed_state(n + 1))
    assert binomial_counts_pvalue(draws, n, p) > ALPHA
    low = min(p, 1 - p)
    tail_from = int(n * low + 3 * np.sqrt(n * low * (1 - low) + 1)) + 1  # a 3 sd bound's cut
    failures = draws if p < 0.5 else n - draws
    k = int((failures >= tail_from).sum())
    t = stats.binom.sf(tail_from - 1, n, low)
    assert stats.binom.ppf(ALPHA / 2, size, t) <= k <= stats.binom.isf(ALPHA / 2, size, t)


@numba.njit
def _geometric_bit_counts(calls, nwords, shifts, p01, p10, state):
    """Flips of each (word, position) over ``calls`` runs of the geometric kernel on zeros."""
    counts = np.zeros((nwords, shifts.size), dtype=np.int64)
    words = np.zeros(nwords, dtype=np.uint32)
    for _ in range(calls):
        words[:] = 0
        flip_group(words, shifts, p01, p10, state)
        for w in range(nwords):
            for j in range(shifts.size):
                counts[w, j] += (words[w] >> np.uint32(shifts[j])) & np.uint32(1)
    return counts


def test_geometric_skipping_can_flip_the_first_bit():
    """Geometric skipping starts *before* index 0 (``fi = -1``), so the first gap can land on
    the group's first bit. Starting at 0 makes bit 0 of word 0 (one bit of the whole tensor)
    never flip; the stats tests, counting per position over 30 000 words, cannot see one bit.

    Here 2 words x 32 positions, 2 * 10^5 runs at p = 0.05: every bit expects 10^4 flips, so a
    bit that never flips is 100 sd off (its binomial bounds at ALPHA are about 10^4 +- 500), and
    the chi-square's non-centrality is ``N p / (1 - p)`` = 10 500 against a critical value
    near 133 (64 cells). Rejections, thinning and the other bits follow the same law.
    """
    p = 0.05
    calls = 200_000
    shifts = np.arange(31, -1, -1, dtype=np.int64)
    counts = _geometric_bit_counts(calls, 2, shifts, p, p, seed_state(17)).ravel()
    lo, hi = stats.binom.ppf(ALPHA / 2, calls, p), stats.binom.isf(ALPHA / 2, calls, p)
    assert ((lo <= counts) & (counts <= hi)).all(), np.flatnonzero((counts < lo) | (counts > hi))
    expected = calls * p
    chi2 = (((counts - expected) ** 2) / (expected * (1 - p))).sum()
    assert stats.chi2.sf(chi2, counts.size) > ALPHA


@numba.njit
def _overlaps(draws, state):
    """Bits picked in both blocks (same slot) of a 2-block draw, ``draws`` times: 16 uint8
    words, 8 positions, blocks of 2**6 slots (8 words), 32 candidates in each block."""
    words = np.zeros(16, dtype=np.uint8)
    shifts = np.arange(7, -1, -1).astype(np.int64)
    counts = np.array([32, 32], dtype=np.int64)
    out = np.empty(64, dtype=np.int64)
    overlap = np.zeros(draws, dtype=np.int64)
    for d in range(draws):
        block_flips(words, shifts, 0.5, 0.5, counts, 6, state, out, True)
        first = np.zeros(64, dtype=np.bool_)
        for e in out[:32]:
            first[((e >> 6) << 3) | (e & 63)] = True
        for e in out[32:]:
            overlap[d] += first[(((e >> 6) - 8) << 3) | (e & 63)]
    return overlap


def test_each_block_picks_its_candidates_afresh():
    """The bitmap that keeps a block's candidates distinct must be clean again for the next
    block: a bit of block 0 says nothing about the same slot of block 1. Left dirty, block 1
    can only take the slots block 0 left free (and a later block with more candidates than free
    slots never ends).

    Two blocks of 64 bits with 32 candidates each: the slots they share are hypergeometric
    (64, 32, 32), mean 16, sd 2.0; a dirty bitmap makes it 0 every time. 20 000 draws: the
    mean alone would be 8 sd per draw off, a chi-square non-centrality above 10^5 against a
    critical value near 56 (16 cells at ALPHA).
    """
    draws = 20_000
    overlap = _overlaps(draws, seed_state(29))
    law = stats.hypergeom(64, 32, 32)
    cells = np.arange(law.ppf(1e-4), law.isf(1e-4) + 1).astype(np.int64)
    observed = np.array([(overlap == c).sum() for c in cells])
    expected = law.pmf(cells) * draws
    observed = np.append(observed, draws - observed.sum())
    expected = np.append(expected, draws - expected.sum())
    assert stats.chisquare(observed, expected).pvalue > ALPHA
