"""Parallel block sampling: chunks of blocks with their own seeds, exact and thread independent.

Tensors here are large enough for several chunks of ``CHUNK_BLOCKS`` blocks (checked), so the
parallel kernel is what runs; the statistical checks are those of ``test_noise_stats``.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch
from helpers import binomial_counts_pvalue
from test_noise_stats import ALPHA, assert_binomial_per_position, bit_matrix, random_words

from memsim.noise import flip
from memsim.noise.blocks import CHUNK_BLOCKS, block_trials, choose_block_log2

pytestmark = pytest.mark.statistical


def n_chunks(nwords: int, npos: int, pmax: float) -> int:
    return -(
        -block_trials(nwords, npos, choose_block_log2(nwords, npos, pmax)).size // CHUNK_BLOCKS
    )


def test_sizes_used_here_take_the_parallel_path():
    assert n_chunks(200_000, 32, 0.01) >= 4
    assert n_chunks(1 << 20, 32, 1e-3) >= 4


def test_mixed_bits_are_binomial_per_position_and_direction():
    p01, p10 = 0.01, 0.004
    x = random_words("float32", 200_000, seed=8)
    before = bit_matrix(x)
    changed = before != bit_matrix(flip(x, p01, p10, engine="numba", seed=21))
    for value, p in ((0, p01), (1, p10)):
        is_value = before == value
        assert_binomial_per_position(
            (changed & is_value).sum(axis=0), is_value.sum(axis=0), np.full(32, p)
        )


def test_flips_per_word_are_independent():
    p = 0.02
    x = torch.zeros(200_000)
    counts = (bit_matrix(x) != bit_matrix(flip(x, p, engine="numba", seed=6))).sum(axis=1)
    assert binomial_counts_pvalue(counts, 32, p) > ALPHA


@pytest.mark.parametrize("ladder", [None, [1e-4, 1e-3]], ids=["independent", "coupled"])
def test_result_does_not_depend_on_the_numba_thread_count(ladder):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread here")
    x = torch.randn(1 << 20)
    saved = numba.get_num_threads()
    outs = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            outs.append(flip(x, 1e-3, engine="numba", seed=13, ladder=ladder))
    finally:
        numba.set_num_threads(saved)
    assert (bit_matrix(outs[0]) != bit_matrix(x)).any()
    assert torch.equal(outs[1].view(torch.int32), outs[0].view(torch.int32))
