"""Coupled sampling (one hidden uniform per bit) in the numba engine: nested and exact.

(The checks that do not reach into numba's kernels run for the torch engine too, parametrized
here; the rest of the torch engine's coupled checks are in test_noise_coupled_torch.py.)

Below a ladder's split, entries are drawn sparsely in superblocks (Poisson hits per level, the
union of levels ``0..k``, thinning by a keyed uniform of each bit's first hit); above it, the split entry's flips are
united with one keyed dense pass. Checked here, at every entry of each ladder: the flips are
nested in those of every larger entry (exactly, same seed), each entry is Binomial per position
and direction, lanes of a word are independent, and neither thread count nor call history
changes a result. Cases cover symmetric, asymmetric and per-position ladders (columns equal at
low entries and different at high ones), masked bits, several formats, int4 codes packed in
bytes, tensors smaller than a word group and tensors spanning many superblocks.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch
from helpers import binomial_counts_pvalue, poisson_counts_pvalue
from scipy import stats
from test_noise_stats import ALPHA, assert_binomial_per_position, bit_matrix, random_words

from memsim.formats import get_format, resolve_bits
from memsim.noise import BitFlip, flip
from memsim.noise import numba_engine as ne
from memsim.noise.binomial import binomials
from memsim.noise.blocks import block_trials
from memsim.noise.kernels import seed_state
from memsim.noise.ladder import ladder_counts, ladder_group
from memsim.noise.rates import ladder_layers

pytestmark = pytest.mark.statistical

GRID = [float(p) for p in np.logspace(-8, -1, 22)]
WIDE = [float(p) for p in np.logspace(-8, np.log10(0.5), 24)]
HIGH = [*GRID, 0.2, 0.5]  # its top entries take the dense pass on large tensors
LOW = np.linspace(1e-3, 4e-3, 16)
# Per-position bfloat16 ladder: every column equal at entries 0 and 1, different at entry 2.
PER_POSITION = [1e-3, 0.01, (np.linspace(0.02, 0.2, 16), np.linspace(0.05, 0.1, 16))]


def entry_flips(x, ladder, seed, bits=None, entries=None, engine="numba"):
    """Changed-bit matrices (elements, width) at the ladder entries (all by default)."""
    before = bit_matrix(x.cpu())
    out = []
    for k in range(len(ladder)) if entries is None else entries:
        e = ladder[k]
        p01, p10 = e if isinstance(e, tuple) else (e, e)
        y = flip(x, p01, p10, bits=bits, engine=engine, seed=seed, ladder=ladder)
        out.append(before != bit_matrix(y.cpu()))
    return before, out


def rates_of(fmt, e, bits):
    width = get_format(fmt).width
    p01, p10 = e if isinstance(e, tuple) else (e, e)
    mask = resolve_bits(fmt, bits)
    return np.broadcast_to(p01, width) * mask, np.broadcast_to(p10, width) * mask


def check_nested_and_binomial(
    fmt, ladder, n, seeds, bits=None, entries=None, engine="numba", device="cpu"
):
    """Nesting per seed; flips per position and direction summed over seeds are Binomial."""
    entries = list(range(len(ladder))) if entries is None else entries
    flips = {k: [np.zeros(get_format(fmt).width, np.int64) for _ in range(2)] for k in entries}
    trials = [np.zeros(get_format(fmt).width, np.int64) for _ in range(2)]
    for seed in seeds:
        x = random_words(fmt, n, seed=seed + 1000)
        before, changed = entry_flips(x.to(device), ladder, seed, bits, entries, engine)
        for small, large in zip(changed, changed[1:]):
            assert not (small & ~large).any(), (
                "a flip at a smaller entry is missing at a larger one"
            )
        for value in (0, 1):
            is_value = before == value
            trials[value] += is_value.sum(axis=0)
            for k, c in zip(entries, changed):
                flips[k][value] += (c & is_value).sum(axis=0)
    for k in entries:
        p01, p10 = rates_of(fmt, ladder[k], bits)
        for value, p in ((0, p01), (1, p10)):
            assert_binomial_per_position(flips[k][value], trials[value], p)


#: Ladders of every kind: (format, ladder, bits).
CASES = [
    ("float32", HIGH[-6:], None),
    ("float16", [(p, p / 2) for p in GRID[-8:]] + [(0.3, 0.2)], None),
    ("bfloat16", [LOW, 3 * LOW, (6 * LOW, 4 * LOW)], None),
    ("bfloat16", PER_POSITION, None),
    ("float32", WIDE[-7:], "first_noisy:7"),
    ("uint8", [1e-3, 0.02, (0.05, 0.2), (0.4, 0.25)], None),
    # p10 = p01 / 10: a level is thinned at about three entries, not one (its uniforms must
    # be the same draws at each).
    ("float16", [(p, p / 10) for p in GRID[-8:]], None),
]
IDS = [
    "symmetric", "asymmetric", "per_position", "columns_split_late", "masked", "uint8",
    "thinned_at_several_entries",
]  # fmt: skip
ENGINES = pytest.mark.parametrize("engine", ["numba", "torch"])


@ENGINES
@pytest.mark.parametrize("fmt,ladder,bits", CASES, ids=IDS)
def test_entries_are_nested_and_binomial_per_position_and_direction(fmt, ladder, bits, engine):
    check_nested_and_binomial(fmt, ladder, 40_001, seeds=[3], bits=bits, engine=engine)


@ENGINES
@pytest.mark.parametrize(
    "ladder",
    [[1e-3, 0.01, 0.1, 0.5], [(0.01, 0.001), (0.05, 0.2), (0.6, 0.9)], PER_POSITION],
    ids=["symmetric", "asymmetric", "per_position"],
)
def test_tensors_smaller_than_a_word_group(ladder, engine):
    fmt = "bfloat16" if ladder is PER_POSITION else "float16"
    # The torch engine pays ~0.2 ms of host time a group and write: fewer calls.
    seeds = range(1500 if engine == "numba" else 500)
    check_nested_and_binomial(fmt, ladder, 3, seeds=seeds, engine=engine)


def test_small_tensors_are_sparse_up_to_a_high_rate_and_still_exact():
    """Below DENSE_MIN_BYTES every entry up to COUPLED_SPARSE_MAX is drawn sparsely."""
    ladder = [0.05, 0.3, 0.6, 0.85]
    fmt = get_format("float16")
    ones = np.ones(16)
    layers = ladder_layers(fmt, ones * 0.85, ones * 0.85, ones, ladder, seed=0)
    assert ne._split(layers.ladder, 4000 * 2) == len(ladder) - 1
    check_nested_and_binomial("float16", ladder, 4000, seeds=range(4))


def test_spanning_many_superblocks():
    n = 400_003  # float32: 32 slots a word, 2**20 a superblock: 13 superblocks, a partial last
    assert block_trials(n, 32, ne.superblock_log2(n, 32)).size >= 12
    check_nested_and_binomial("float32", [(2e-4, 1e-4), (2e-3, 3e-3), 0.01], n, seeds=[5])


def test_int4_codes_packed_in_bytes():
    ladder = (1e-3, 0.01, 0.05, 0.3)
    n = 50_000
    x = torch.from_numpy(np.random.default_rng(4).integers(0, 256, n, dtype=np.uint8))
    before = bit_matrix(x)
    changed = [
        before != bit_matrix(BitFlip("int4", p, ladder=ladder).apply_(x.clone(), 9)) for p in ladder
    ]
    for small, large in zip(changed, changed[1:]):
        assert not (small & ~large).any()
    for p, c in zip(ladder, changed):
        assert_binomial_per_position(c.sum(axis=0), np.full(8, n), np.full(8, p))


@ENGINES
def test_lower_entries_take_a_prefix_of_the_same_draws(engine):
    """Each entry is a subset of the next, and the new flips of each step are not empty."""
    x = torch.randn(100_000)
    _, changed = entry_flips(x, GRID, seed=8, engine=engine)
    counts = [int(c.sum()) for c in changed]
    for small, large in zip(changed, changed[1:]):
        assert not (small & ~large).any()
    assert counts[-1] > counts[-4] > counts[-8] > counts[-12] > 0


def split_of(ladder, p, nbytes=1 << 22):
    fmt = get_format("float32")
    ones = np.ones(32)
    return ne._split(ladder_layers(fmt, ones * p, ones * p, ones, ladder, seed=0).ladder, nbytes)


def test_a_ladder_up_to_one_half_splits_below_its_top_entries():
    splits = {split_of(HIGH, p) for p in HIGH}
    assert len(splits) == 1  # the split is a property of the ladder, not of the entry
    (split,) = splits
    assert 0 < split < HIGH.index(0.2)


@ENGINES
@pytest.mark.parametrize("p", [GRID[15], GRID[-1], 0.2, 0.5])
def test_lanes_of_a_word_are_independent(p, engine):
    x = torch.zeros(60_000)
    y = flip(x, p, engine=engine, seed=5, ladder=HIGH)
    counts = (bit_matrix(x) != bit_matrix(y)).sum(axis=1)
    assert binomial_counts_pvalue(counts, 32, p) > ALPHA


def test_level_counts_per_superblock_are_poisson():
    """Each level's hits per superblock are Poisson(bits * mu); the last, shorter superblock
    and means above the multiplication method's range (PTRS) included."""
    trials = np.full(4001, 4096, dtype=np.int64)
    trials[-1] = 1000
    mus = -np.log1p(-np.array([0.001, 0.02, 0.3]))
    counts = ladder_counts(trials, mus, seed_state(12))
    for level, mu in enumerate(mus):
        assert poisson_counts_pvalue(counts[level, :-1], 4096 * mu) > ALPHA
    # The short superblock's counts over many draws.
    last = [ladder_counts(trials[-1:], mus, seed_state(s))[2, 0] for s in range(3000)]
    assert abs(np.mean(last) - 1000 * mus[2]) < 5 * np.sqrt(1000 * mus[2] / 3000)


@pytest.mark.parametrize(
    "n,p", [(1000, 0.003), (10**6, 1e-4), (1 << 16, 0.3), (60, 0.9), (10**5, 0.7)]
)
def test_binomial_sampler_matches_its_law(n, p):
    """Inversion (mean <= 30), BTPE (above) and the mirrored p > 1/2 case."""
    draws = binomials(n, p, 20_000, seed_state(n))
    assert binomial_counts_pvalue(draws, n, p) > ALPHA
    assert abs(draws.mean() - n * p) < 6 * np.sqrt(n * p * (1 - p) / draws.size)
    assert stats.binom.ppf(ALPHA, n, p) <= draws.min()


@ENGINES
def test_protected_bits_stay_clean_at_one_half(engine):
    x = torch.randn(30_000)
    y = flip(x, 0.5, bits="first_noisy:7", engine=engine, seed=1, ladder=WIDE)
    changed = bit_matrix(x) != bit_matrix(y)
    assert not changed[:, :7].any()
    assert_binomial_per_position(changed[:, 7:].sum(0), np.full(25, x.numel()), np.full(25, 0.5))


@pytest.mark.parametrize("p", [GRID[15], 0.2], ids=["sparse", "dense"])
def test_result_does_not_depend_on_the_numba_thread_count(p):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba has a single thread here")
    x = torch.randn(300_000)  # several superblocks and dense chunks
    assert (HIGH.index(p) > split_of(HIGH, p)) == (p == 0.2)
    saved = numba.get_num_threads()
    try:
        outs = []
        for threads in (1, 2, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            outs.append(flip(x, p, engine="numba", seed=4, ladder=HIGH))
    finally:
        numba.set_num_threads(saved)
    assert (bit_matrix(outs[0]) != bit_matrix(x)).any()
    for other in outs[1:]:
        assert torch.equal(other.view(torch.int32), outs[0].view(torch.int32))


@pytest.mark.parametrize("p", [GRID[12], 0.2], ids=["sparse", "dense"])
def test_same_seed_same_flips_other_seed_other_flips(p):
    x = torch.randn(100_000)
    a = flip(x, p, engine="numba", seed=6, ladder=HIGH)
    flip(torch.randn(5000), 0.3, engine="numba", seed=1, ladder=[0.3])  # history must not matter
    b = flip(x, p, engine="numba", seed=6, ladder=HIGH)
    c = flip(x, p, engine="numba", seed=7, ladder=HIGH)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    assert not torch.equal(a.view(torch.int32), c.view(torch.int32))


@pytest.mark.parametrize("p", [GRID[15], GRID[19], GRID[21]])
def test_mask_and_hit_by_hit_unions_give_the_same_flips(p):
    """A superblock whose levels all flip may OR its hits into a mask XORed into the whole
    superblock (``union_words`` huge), into a mask XORed into the hit words only (0, in place),
    or set them hit by hit (0, collected into a mask): same flips whichever the density."""
    n = 300_000  # float32: several superblocks, the last one short
    ones = np.ones(32)
    layers = ladder_layers(get_format("float32"), ones * p, ones * p, ones, GRID, seed=0)
    (g,) = layers.ladder.groups
    k = GRID.index(p)
    lo, hi, p01, p10, mus, trials, block_log2 = ne._group_plan(g, k, n)
    key = seed_state(77)
    words = np.random.default_rng(3).integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    results = []
    for union_words in (0, 1 << 40):
        for in_place in (True, False):
            masks = np.zeros((2, 1 << (block_log2 - 5)), np.uint32)
            arr = words.copy()
            out = arr if in_place else np.zeros_like(arr)
            args = (g.shifts, lo, hi, p01, p10, mus, trials, block_log2, key)
            ladder_group(arr, out, *args, masks, in_place, union_words)
            results.append(arr ^ words if in_place else out)
            assert not masks.any()  # scratch is left zeroed
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)
    rate = np.unpackbits(results[0].view(np.uint8)).mean()
    assert abs(rate - p) < 6 * np.sqrt(p / (32 * n))


@pytest.mark.parametrize(
    "p,n", [(GRID[10], 1 << 22), (GRID[15], 300_000)], ids=["few_hits", "many_hits"]
)
def test_superblocks_on_one_thread_or_many_give_the_same_flips(p, n):
    """Below ``PARALLEL_HITS`` a draw runs its superblocks on the calling thread, and sparse
    superblocks with under ``DEFER_BELOW`` hits list their words, XORed in batches of
    ``FLUSH_WORDS`` (``few_hits``: ~22 hits in each of 128 superblocks, a few with more): the
    same flips as the parallel kernel's and as setting every hit's bit one by one."""
    from memsim.noise import ladder as ladder_kernels

    ones = np.ones(32)
    layers = ladder_layers(get_format("float32"), ones * p, ones * p, ones, GRID, seed=0)
    (g,) = layers.ladder.groups
    lo, hi, p01, p10, mus, trials, block_log2 = ne._group_plan(g, GRID.index(p), n)
    key = seed_state(5)
    counts = ladder_counts(trials, mus, key.copy())
    per_block = counts.sum(axis=0)
    deferred = per_block < ladder_kernels.DEFER_BELOW
    if p == GRID[10]:  # the case the test is for: deferred superblocks, several batches, mixed
        assert per_block[deferred].sum() > 4 * ladder_kernels.FLUSH_WORDS
        assert not deferred.all()
    else:
        assert per_block.min() >= ladder_kernels.DEFER_BELOW
    words = np.random.default_rng(4).integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    results = []
    for kernel, in_place, union_words in (
        (ladder_kernels.ladder_flips_serial, True, ladder_kernels.UNION_WORDS_PER_HIT),
        (ladder_kernels.ladder_flips, True, ladder_kernels.UNION_WORDS_PER_HIT),
        (ladder_kernels.ladder_flips_serial, False, 0),  # hit by hit, into a mask
    ):
        masks = np.zeros((2, 1 << (block_log2 - 5)), np.uint32)
        arr = words.copy()
        out = arr if in_place else np.zeros_like(arr)
        kernel(arr, out, g.shifts, lo, hi, p01, p10, counts, block_log2, key[1], key[2], masks,
               in_place, union_words)  # fmt: skip
        results.append(arr ^ words if in_place else out)
        assert not masks.any()  # scratch is left zeroed
    flipped = int(np.unpackbits(results[0].view(np.uint8)).sum())
    assert flipped > 0.99 * per_block.sum()  # nearly every hit is a distinct bit at these rates
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)
