"""Every bit-flip engine is statistically identical to the dense reference operator (docs/design.md §3).

Counts are compared with their exact Binomial laws at fixed seeds, so the tests are
deterministic: per bit position (two-sided binomial bounds), across positions (chi-square),
per word (flip count histogram: catches correlated lanes), each direction on its own (all-zeros
and all-ones inputs, p01 != p10), every format, and all three numba kernels (geometric
skipping, blocks, dense) forced one at a time.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import binomial_counts_pvalue
from scipy import stats

from memsim.formats import get_format
from memsim.noise import engines, flip

# Every registered engine but ``auto``, which only dispatches to one of them.
ENGINES = sorted(n for n in engines.ENGINES.names() if n != "auto")
# Engine variants with their internal sparse/dense switch forced, so every kernel is tested.
VARIANTS = [
    "reference",
    "numba_geometric",
    "numba_blocks",
    "numba_dense",
    "torch_sparse",
    "torch_dense",
]
ALPHA = 1e-6  # per check; with fixed seeds a pass is a pass every time
TORCH_FORMATS = [
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3",
    "float8_e5m2",
    "int8",
    "uint8",
    "int16",
    "int32",
    "int64",
]


def bit_matrix(x: torch.Tensor) -> np.ndarray:
    """(elements, width) 0/1 matrix of stored bits, MSB-first."""
    fmt = get_format(x.dtype)
    words = x.contiguous().view(fmt.int_view).numpy().reshape(-1).view(fmt.np_uint)
    shifts = np.arange(fmt.width - 1, -1, -1, dtype=np.uint64)
    return ((words[:, None].astype(np.uint64) >> shifts) & np.uint64(1)).astype(np.int64)


def filled(fmt_name: str, n: int, ones: bool) -> torch.Tensor:
    fmt = get_format(fmt_name)
    return torch.full((n,), -1 if ones else 0, dtype=fmt.int_view).view(fmt.torch_dtype)


def random_words(fmt_name: str, n: int, seed: int) -> torch.Tensor:
    fmt = get_format(fmt_name)
    raw = np.random.default_rng(seed).integers(0, 256, size=n * fmt.width // 8, dtype=np.uint8)
    return torch.from_numpy(raw.copy()).view(fmt.int_view).view(fmt.torch_dtype)


@pytest.fixture
def use(monkeypatch):
    """Turn a variant name into an engine name, forcing the engine's dense/sparse switch."""
    from memsim.noise import numba_engine, torch_engine

    def pick(variant: str) -> str:
        engine, _, path = variant.partition("_")
        if engine == "numba":
            monkeypatch.setattr(numba_engine, "DENSE_MIN_BYTES", 0)
            monkeypatch.setattr(numba_engine, "DENSE_FROM", 0.0 if path == "dense" else 2.0)
            monkeypatch.setattr(numba_engine, "BLOCK_FROM", 0.0 if path == "blocks" else 2.0)
            monkeypatch.setattr(numba_engine, "BLOCK_TO", 1.0)
            monkeypatch.setattr(numba_engine, "BLOCK_MIN_CANDIDATES", 0)
        if engine == "torch":
            monkeypatch.setattr(torch_engine, "DENSE_ABOVE", 0.0 if path == "dense" else 2.0)
        return engine

    return pick


def assert_binomial_per_position(flips: np.ndarray, trials: np.ndarray, p: np.ndarray) -> None:
    """Flip counts per position within two-sided binomial bounds, and a chi-square across them."""
    for pos, (k, n, q) in enumerate(zip(flips, trials, p)):
        lo, hi = stats.binom.ppf(ALPHA / 2, n, q), stats.binom.isf(ALPHA / 2, n, q)
        assert lo <= k <= hi, f"position {pos}: {k} flips of {n} bits at p={q} (bounds {lo}..{hi})"
    live = (p > 0) & (p < 1) & (trials > 0)
    expected = trials[live] * p[live]
    chi2 = (((flips[live] - expected) ** 2) / (expected * (1 - p[live]))).sum()
    assert stats.chi2.sf(chi2, live.sum()) > ALPHA, (
        f"chi-square {chi2:.1f} on {live.sum()} positions"
    )


# (engine, p01, p10): small rates exercise the sparse kernels, large ones the dense paths.
CASES = [(v, p01, p10) for v in VARIANTS for p01, p10 in ((0.01, 0.004), (0.2, 0.07))]


@pytest.mark.parametrize("ones", [False, True], ids=["all_zeros", "all_ones"])
@pytest.mark.parametrize("engine,p01,p10", CASES)
def test_each_direction_per_position_is_binomial(use, engine, p01, p10, ones):
    engine = use(engine)
    n = 30_000
    x = filled("float32", n, ones)
    y = flip(x, p01, p10, engine=engine, seed=11)
    flips = (bit_matrix(x) != bit_matrix(y)).sum(axis=0)
    p = np.full(32, p10 if ones else p01)
    assert_binomial_per_position(flips, np.full(32, n), p)


@pytest.mark.parametrize("fmt_name", TORCH_FORMATS)
@pytest.mark.parametrize("engine", VARIANTS)
def test_mixed_bits_every_format(use, engine, fmt_name):
    p01, p10 = 0.05, 0.02
    engine = use(engine)
    n = 8192 * 64 // get_format(fmt_name).width  # same number of bits for every width
    x = random_words(fmt_name, n, seed=5)
    before = bit_matrix(x)
    changed = before != bit_matrix(flip(x, p01, p10, engine=engine, seed=12))
    for value, p in ((0, p01), (1, p10)):
        is_value = before == value
        flips = (changed & is_value).sum(axis=0)
        assert_binomial_per_position(flips, is_value.sum(axis=0), np.full(before.shape[1], p))


@pytest.mark.parametrize("engine,p", [(v, p) for v in VARIANTS for p in (0.02, 0.3)])
def test_flips_per_word_are_independent(use, engine, p):
    """The number of flips in a word is Binomial(width, p): lanes are not correlated."""
    engine = use(engine)
    x = torch.zeros(40_000)
    counts = (bit_matrix(x) != bit_matrix(flip(x, p, engine=engine, seed=3))).sum(axis=1)
    assert binomial_counts_pvalue(counts, 32, p) > ALPHA


@pytest.mark.parametrize("engine", VARIANTS)
def test_per_position_rates(use, engine):
    """p01/p10 given per bit position are honoured position by position."""
    engine = use(engine)
    p01 = np.linspace(0.0, 0.05, 16)
    p10 = p01[::-1].copy()
    x = random_words("float16", 60_000, seed=9)
    before = bit_matrix(x)
    changed = before != bit_matrix(flip(x, p01, p10, engine=engine, seed=4))
    for value, p in ((0, p01), (1, p10)):
        is_value = before == value
        assert_binomial_per_position((changed & is_value).sum(axis=0), is_value.sum(axis=0), p)


@pytest.mark.parametrize("engine", ENGINES)
def test_small_tensor_low_p_gets_a_binomial_total(engine):
    """100 elements at p = 1e-4: flips happen (no int(p * N) = 0) and their total is Binomial."""
    x = torch.zeros(100)
    calls = 1000
    total = sum(int((flip(x, 1e-4, engine=engine, seed=s) != 0).sum()) for s in range(calls))
    # A float32 zero with one flipped bit is non-zero; two flips in one word are ~1e-4 rarer.
    n_bits = calls * 100 * 32
    lo, hi = stats.binom.ppf(ALPHA, n_bits, 1e-4), stats.binom.isf(ALPHA, n_bits, 1e-4)
    assert lo <= total <= hi


@pytest.mark.parametrize("engine", ["numba", "torch"])
def test_very_low_p_is_exact(engine):
    """p = 1e-7 (below the float32 resolution of torch.rand): the total count is Binomial."""
    x = torch.zeros(1 << 20)
    calls = 15
    total = sum(
        int(np.unpackbits(flip(x, 1e-7, engine=engine, seed=s).numpy().view(np.uint8)).sum())
        for s in range(calls)
    )
    n_bits = calls * x.numel() * 32
    assert stats.binom.ppf(ALPHA, n_bits, 1e-7) <= total <= stats.binom.isf(ALPHA, n_bits, 1e-7)


def test_numba_dense_kernel_on_tail_words_and_mixed_lanes(use):
    """The dense kernel's leftover words (fewer than 64 bits) and lanes with p = 0, 1 and 0 < p < 1."""
    engine = use("numba_dense")
    p01 = np.array([0.0, 1.0, 0.3, 0.3, 0.0, 1.0, 0.5, 0.1])
    p10 = np.array([1.0, 0.0, 0.2, 0.6, 0.0, 1.0, 0.5, 0.9])
    n, calls = 7, 400  # 7 int8 words: all of them are tail words
    x = random_words("int8", n, seed=1)
    before = bit_matrix(x)
    changed = sum(
        bit_matrix(flip(x, p01, p10, engine=engine, seed=s)) != before for s in range(calls)
    )
    for value, p in ((0, p01), (1, p10)):
        is_value = before == value
        flips = (changed * is_value).sum(axis=0)
        assert_binomial_per_position(flips, is_value.sum(axis=0) * calls, p)


@pytest.mark.parametrize("variant", ["reference", "torch_dense", "torch_sparse"])
def test_chunked_paths_cover_every_word(use, monkeypatch, variant):
    """Engines work chunk by chunk; chunk borders must neither skip nor repeat words."""
    from memsim.noise import reference, torch_engine

    monkeypatch.setattr(reference, "CHUNK_BITS", 1000)  # not a multiple of the width
    monkeypatch.setattr(torch_engine, "CHUNK_BITS", {"cpu": 1000})
    monkeypatch.setattr(torch_engine, "CANDIDATES_PER_BLOCK", 300)  # 18-62 words a block
    engine = use(variant)
    x = random_words("float16", 5001, seed=2)
    assert (bit_matrix(flip(x, 1.0, 1.0, engine=engine, seed=0)) != bit_matrix(x)).all()
    before = bit_matrix(x)
    changed = before != bit_matrix(flip(x, 0.3, 0.1, engine=engine, seed=1))
    for value, p in ((0, 0.3), (1, 0.1)):
        is_value = before == value
        flips = (changed & is_value).sum(axis=0)
        assert_binomial_per_position(flips, is_value.sum(axis=0), np.full(16, p))


@pytest.mark.parametrize("m,k", [(6, 2), (6, 4), (6, 0), (6, 6)])
def test_sample_distinct_is_uniform_over_subsets(m, k):
    """The torch engine's positions: k distinct values, every k-subset equally likely."""
    from itertools import combinations

    from memsim.noise.torch_engine import sample_distinct

    gen = torch.Generator().manual_seed(0)
    subsets = {c: 0 for c in combinations(range(m), k)}
    draws = 3000
    for _ in range(draws):
        picked = tuple(sample_distinct(m, k, gen, torch.device("cpu")).tolist())
        assert picked in subsets  # sorted, distinct, in range
        subsets[picked] += 1
    if len(subsets) > 1:
        expected = np.full(len(subsets), draws / len(subsets))
        assert stats.chisquare(list(subsets.values()), expected).pvalue > ALPHA


def test_engine_list_is_the_registry():
    assert {"reference", "numba", "torch"} <= set(ENGINES)


@pytest.mark.parametrize("engine", VARIANTS)
def test_int4_packed_codes_flip_per_code_position(use, engine):
    """int4: two codes per byte; each code position has its own rates, in both nibbles."""
    from memsim.noise.channel import BitFlip

    engine = use(engine)
    n = 40_000
    x = torch.from_numpy(np.random.default_rng(8).integers(0, 256, size=n, dtype=np.uint8))
    p01 = np.array([0.05, 0.0, 0.02, 0.3])
    p10 = np.array([0.01, 0.0, 0.2, 0.1])
    y = x.clone()
    BitFlip("int4", list(p01), list(p10), engine=engine).apply_(y, 21)
    before = bit_matrix(x)
    changed = before != bit_matrix(y)
    for value, p in ((0, p01), (1, p10)):
        is_value = before == value
        flips = (changed & is_value).sum(axis=0)
        # Byte positions 0-3 are the first code's positions 0-3, 4-7 the second code's.
        assert_binomial_per_position(flips, is_value.sum(axis=0), np.tile(p, 2))


def test_the_torch_engine_compares_uniforms_with_float64_rates():
    """Not float32 (what torch.where makes of Python floats): p = 0.3 would be 0.30000001."""
    from memsim.noise.torch_engine import rate_by_bit

    p10, p01 = 1e-7 + 3e-16, 0.3
    rates = rate_by_bit(torch.tensor([0, 1, 1, 0]), p10, p01)
    assert rates.dtype == torch.float64
    assert rates.tolist() == [p01, p10, p10, p01]
