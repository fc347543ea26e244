"""Coupled sampling at high p: the keyed dense pass above the ladder's split.

Above a union rate of ``COUPLED_DENSE_FROM`` the numba engine draws the upper ladder layers in
one keyed dense pass (one uniform per bit, shared by every entry) merged with the sparse events
below the split. Checked here: the split really happens, flips stay nested along the ladder,
every entry is Binomial per position and direction, lanes of a word are independent, tail words
are covered, and the result does not depend on the number of Numba threads.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch
from helpers import binomial_counts_pvalue
from test_noise_stats import ALPHA, assert_binomial_per_position, bit_matrix, random_words

from memsim.formats import get_format
from memsim.noise import flip
from memsim.noise import numba_engine as ne
from memsim.noise.rates import ladder_layers

pytestmark = pytest.mark.statistical

GRID = [float(p) for p in np.logspace(-8, -1, 22)]


def test_the_standard_grid_splits_below_its_top_entries():
    fmt = get_format("float32")
    ones = np.ones(32)
    layers = ladder_layers(fmt, ones * GRID[-1], ones * GRID[-1], ones, GRID, seed=0)
    m = ne._sparse_prefix(layers, nbytes=1 << 22)
    assert 0 < m < len(layers)  # sparse below the split, one dense pass above
    # The split is a property of the ladder: every entry above it splits at the same layer.
    for k in range(m + 1, len(GRID)):
        entry = ladder_layers(fmt, ones * GRID[k], ones * GRID[k], ones, GRID, seed=0)
        assert ne._sparse_prefix(entry, nbytes=1 << 22) == m


def test_high_p_ladder_is_nested_and_binomial_per_direction():
    ladder = [(p, p / 2) for p in GRID[-8:]] + [(0.3, 0.2)]
    x = random_words("float16", 50_001, seed=3)  # odd: a tail word outside the packed words
    before = bit_matrix(x)
    changed = [
        before != bit_matrix(flip(x, a, b, engine="numba", seed=7, ladder=ladder))
        for a, b in ladder
    ]
    for small, large in zip(changed, changed[1:]):
        assert not (small & ~large).any(), "a flip at a smaller p is missing at a larger one"
    assert changed[-1][-1].any()  # the tail word is flipped too
    for (p01, p10), c in zip(ladder, changed):
        for value, p in ((0, p01), (1, p10)):
            is_value = before == value
            assert_binomial_per_position(
                (c & is_value).sum(axis=0), is_value.sum(axis=0), np.full(16, p)
            )


@pytest.mark.parametrize("p", [GRID[-1], 0.5])
def test_lanes_of_a_word_are_independent_above_the_split(p):
    ladder = [*GRID, 0.5]
    x = torch.zeros(40_000)
    counts = (bit_matrix(x) != bit_matrix(flip(x, p, engine="numba", seed=5, ladder=ladder))).sum(1)
    assert binomial_counts_pvalue(counts, 32, p) > ALPHA


def test_protected_bits_stay_clean_at_p_one_half():
    ladder = [float(p) for p in np.logspace(-8, np.log10(0.5), 24)]
    x = torch.randn(30_000)
    y = flip(x, 0.5, bits="first_noisy:7", engine="numba", seed=1, ladder=ladder)
    changed = bit_matrix(x) != bit_matrix(y)
    assert not changed[:, :7].any()
    assert_binomial_per_position(changed[:, 7:].sum(0), np.full(25, x.numel()), np.full(25, 0.5))


def test_result_does_not_depend_on_the_numba_thread_count():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread here")
    x = torch.randn(300_000)  # several parallel chunks
    saved = numba.get_num_threads()
    try:
        outs = []
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            outs.append(flip(x, GRID[-1], engine="numba", seed=4, ladder=GRID))
    finally:
        numba.set_num_threads(saved)
    assert (bit_matrix(outs[0]) != bit_matrix(x)).any()
    for other in outs[1:]:
        assert torch.equal(other.view(torch.int32), outs[0].view(torch.int32))
