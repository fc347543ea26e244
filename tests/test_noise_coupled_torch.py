"""Coupled sampling in the torch engine (the engine of CUDA tensors), run here on CPU tensors.

The torch engine samples a ladder entry as the union of Poisson hits per level, in chunks that
depend on the ladder and the tensor only, thinning each bit by a uniform of its first hit, and
above the ladder's split unites the split's hits with one dense pass (memsim/noise/
torch_engine.py). The checks are those of the numba engine's coupled draws: nested flips at
every entry with one seed, Binomial per position and direction at every entry, independent
lanes, chunk borders that neither skip nor repeat a bit, and one seed one result. The same
checks run on CUDA in tests/test_gpu.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_noise_coupled import CASES, GRID, HIGH, IDS, check_nested_and_binomial
from test_noise_stats import ALPHA

from memsim.formats import get_format
from memsim.noise import flip
from memsim.noise import torch_engine as te
from memsim.noise.rates import ladder_layers

pytestmark = pytest.mark.statistical


@pytest.mark.parametrize("fmt,ladder,bits", CASES[:2] + CASES[4:5], ids=IDS[:2] + IDS[4:5])
def test_many_chunks_and_dense_sub_chunks(monkeypatch, fmt, ladder, bits):
    """Small chunks: chunk and sub-chunk borders neither skip nor repeat a bit."""
    monkeypatch.setattr(te, "HITS_PER_CHUNK", 500)
    monkeypatch.setattr(te, "CHUNK_BITS", {"cpu": 5000})
    width = get_format(fmt).width
    g = ladder_layers(
        get_format(fmt), np.full(width, 0.01), np.full(width, 0.01), np.ones(width),
        [0.01, 0.5], 0,
    ).ladder.groups[0]  # fmt: skip
    assert te.coupled_chunk_rows(g, 40_001) < 40_001 // 10  # many chunks
    check_nested_and_binomial(fmt, ladder, 40_001, seeds=[4], bits=bits, engine="torch")


def test_grid_entries_are_nested_and_binomial():
    """The sweep grid's entries from 1e-4 up (10 or more expected flips per position), all
    drawn as hits (no dense pass below 0.25)."""
    check_nested_and_binomial("float32", GRID, 100_000, [8], entries=range(12, 22), engine="torch")


def test_chunks_depend_on_the_ladder_not_the_entry():
    fmt = get_format("float32")
    ones = np.ones(32)
    rows = {
        te.coupled_chunk_rows(ladder_layers(fmt, ones * p, ones * p, ones, HIGH, 0).ladder.groups[0], 10**7)
        for p in HIGH
    }  # fmt: skip
    assert len(rows) == 1 and rows.pop() < 10**7


@pytest.mark.parametrize("p", [GRID[11], (0.05, 0.02), 0.5], ids=["sparse", "thinned", "dense"])
def test_same_seed_same_flips_other_seed_other_flips(p):
    p01, p10 = p if isinstance(p, tuple) else (p, p)
    ladder = [*GRID[:12], (0.05, 0.02), (0.1, 0.1), (0.5, 0.5)]
    x = torch.randn(100_000)
    a = flip(x, p01, p10, engine="torch", seed=6, ladder=ladder)
    flip(torch.randn(5000), 0.3, engine="torch", seed=1, ladder=[0.3])  # history must not matter
    b = flip(x, p01, p10, engine="torch", seed=6, ladder=ladder)
    c = flip(x, p01, p10, engine="torch", seed=7, ladder=ladder)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    assert not torch.equal(a.view(torch.int32), c.view(torch.int32))


@pytest.mark.parametrize("draw", ["uniform_below", "sample_distinct"])
def test_positions_are_uniform_over_a_range_of_hundreds_of_millions(draw):
    """``torch.randint(m)`` reduces 32 random bits modulo ``m``: at m = 2.6e8 (a write of 8M
    float32 words, one block since blocks are sized by rate) the values below 2**32 % m came
    6 % more often (0.534 of 2M picks against 0.519)."""
    from scipy import stats

    m, k = 260_000_000, 2_000_000
    low = (1 << 32) % m  # the values a 32-bit draw would favour
    gen = torch.Generator().manual_seed(3)
    picks = getattr(te, draw)(m, k, gen, torch.device("cpu"))
    assert picks.numel() == k and int(picks.min()) >= 0 and int(picks.max()) < m
    below = int((picks < low).sum())
    assert stats.binomtest(below, k, low / m).pvalue > ALPHA
