"""The (72,64) Hsiao SECDED code and its exact, sparse codeword channel."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, chi2_contingency, chisquare

from memsim.noise.bits import StoredBits
from memsim.noise.sampling import bernoulli_positions
from policies import BinaryChannel, SECDEDChannel, get_policy, secded
from policies.channels import stream_words


def random_data(n: int, seed: int = 0, ones: float = 0.5) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 64)) < ones).astype(np.uint8)


def test_hsiao_matrix_is_odd_weight_and_balanced():
    cols = secded.COLUMN_SYNDROMES
    weights = np.array([bin(int(c)).count("1") for c in cols])
    assert len(set(cols.tolist())) == 72
    assert np.all(weights % 2 == 1)
    assert sorted(weights[:64].tolist()) == [3] * 56 + [5] * 8
    assert np.all(weights[64:] == 1)
    assert secded.H_DATA.sum(axis=0).tolist() == [26] * 8


def test_codewords_have_zero_syndrome():
    words = secded.encode(random_data(200))
    assert not secded.syndromes(words).any()
    data, status = secded.decode(words)
    assert np.array_equal(data, words[:, :64]) and not status.any()


def test_one_error_per_word_changes_no_data_bit():
    """Every one of the 72 positions, flipped alone, is corrected (check bits: data untouched)."""
    data = random_data(72, seed=1)
    received = secded.encode(data)
    received[np.arange(72), np.arange(72)] ^= 1
    decoded, status = secded.decode(received)
    assert np.array_equal(decoded, data)
    assert np.all(status == secded.CORRECTED)


def test_two_errors_are_detected_and_left_as_stored():
    pairs = np.array(list(combinations(range(72), 2)))
    data = random_data(len(pairs), seed=2)
    received = secded.encode(data)
    rows = np.arange(len(pairs))
    received[rows, pairs[:, 0]] ^= 1
    received[rows, pairs[:, 1]] ^= 1
    decoded, status = secded.decode(received)
    assert np.all(status == secded.DETECTED)
    assert np.array_equal(decoded, received[:, :64])


def test_three_errors_can_be_miscorrected():
    """Heavier errors are not detected reliably: some triples decode as a (wrong) correction."""
    rng = np.random.default_rng(3)
    data = random_data(2000, seed=3)
    received = secded.encode(data)
    for row in range(len(received)):
        received[row, rng.choice(72, 3, replace=False)] ^= 1
    decoded, status = secded.decode(received)
    assert (status == secded.CORRECTED).any()  # miscorrections: a fourth bit flipped
    wrong = (decoded != data).sum(axis=1)
    assert wrong.max() >= 3


def dense_reference(data: np.ndarray, p01: float, p10: float, rng) -> np.ndarray:
    """Flip all 72 bits of every codeword (dense Bernoulli masks), decode every word."""
    stored = secded.encode(data)
    u = rng.random(stored.shape)
    flips = np.where(stored == 1, u < p10, u < p01)
    decoded, _ = secded.decode(stored ^ flips.astype(np.uint8))
    return decoded


def changed_histogram(changed_per_word: np.ndarray) -> np.ndarray:
    return np.bincount(np.minimum(changed_per_word, 4), minlength=5)


@pytest.mark.parametrize(("p01", "p10", "ones"), [(0.02, 0.02, 0.5), (0.03, 0.005, 0.2)])
def test_sparse_channel_matches_dense_simulation(p01, p10, ones):
    """Per-word counts of wrong data bits and per-position error rates: same law (chi-square)."""
    n_words = 4000
    data = random_data(n_words, seed=4, ones=ones)
    flat = data.reshape(-1)
    dense_counts = np.zeros(5, dtype=np.int64)
    sparse_counts = np.zeros(5, dtype=np.int64)
    dense_pos = np.zeros(64)
    sparse_pos = np.zeros(64)
    for rep in range(3):
        decoded = dense_reference(data, p01, p10, np.random.default_rng(100 + rep))
        wrong = decoded != data
        dense_counts += changed_histogram(wrong.sum(axis=1))
        dense_pos += wrong.sum(axis=0)
        changed = secded.corrupt_stream(flat, p01, p10, np.random.default_rng(200 + rep))
        per_word = np.bincount(changed // 64, minlength=n_words)
        sparse_counts += changed_histogram(per_word)
        sparse_pos += np.bincount(changed % 64, minlength=64)
    keep = (dense_counts + sparse_counts) > 0
    _, pvalue, _, _ = chi2_contingency(np.stack([dense_counts[keep], sparse_counts[keep]]))
    assert pvalue > 1e-3
    assert dense_counts[2:].sum() > 100  # the test does exercise multi-bit errors
    _, pvalue_pos, _, _ = chi2_contingency(np.stack([dense_pos, sparse_pos]))
    assert pvalue_pos > 1e-3


def test_stream_padding_is_never_reported():
    data = np.ones(70, dtype=np.uint8)  # one full word, one word with 6 bits + padding
    changed = secded.corrupt_stream(data, 0.3, 0.3, np.random.default_rng(0))
    assert changed.size and changed.max() < 70
    assert len(np.unique(changed)) == changed.size


@pytest.mark.parametrize("fmt", ["float32", "float16", "bfloat16", "int8", "float64"])
def test_stored_bits_view_reads_msb_first(fmt):
    x = torch.zeros(3, dtype={"int8": torch.int8}.get(fmt, getattr(torch, fmt)))
    view = StoredBits(x, fmt)
    view.flip(np.array([1, 1]), np.array([0, 2]))  # sign bit and bit 2 of element 1
    bits = view.read(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 2]))
    assert bits.tolist() == [0, 1, 0, 1]
    assert x[0] == 0 and x[2] == 0 and x[1] != 0


def test_channel_matches_dense_on_a_tensor():
    """The tensor channel (int8 codes, 8 per word) vs dense codewords built from the same bits."""
    x = torch.randint(
        -128, 128, (8 * 3000,), generator=torch.Generator().manual_seed(0), dtype=torch.int8
    )
    bits = np.unpackbits(x.numpy().view(np.uint8)).reshape(-1, 64)  # MSB-first stream
    p = 0.02
    dense = np.zeros(5, dtype=np.int64)
    sparse = np.zeros(5, dtype=np.int64)
    for rep in range(2):
        decoded = dense_reference(bits, p, p, np.random.default_rng(rep))
        dense += changed_histogram((decoded != bits).sum(axis=1))
        y = x.clone()
        SECDEDChannel("int8", p).apply_(y, seed=rep)
        after = np.unpackbits(y.numpy().view(np.uint8)).reshape(-1, 64)
        sparse += changed_histogram((after != bits).sum(axis=1))
    _, pvalue, _, _ = chi2_contingency(np.stack([dense, sparse]))
    assert pvalue > 1e-3


def test_channel_is_reproducible_and_fresh_per_seed():
    x = torch.randn(5000)
    a, b, c = x.clone(), x.clone(), x.clone()
    channel = get_policy("ecc_secded").channel("float32", 1e-2)
    channel.apply_(a, seed=7)
    channel.apply_(b, seed=7)
    channel.apply_(c, seed=8)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))  # bits: NaN != NaN
    assert not torch.equal(a.view(torch.int32), c.view(torch.int32))


def test_channel_rejects_position_dependent_probabilities():
    p = np.full(32, 1e-3)
    p[5] = 2e-3
    with pytest.raises(ValueError, match="ecc_secded needs one p01"):
        get_policy("ecc_secded").channel("float32", p)


@pytest.mark.parametrize("p", [1e-3, 0.05, 0.6])
def test_bernoulli_positions_are_exact(p):
    """Hit counts are Binomial(n, p) and every position is equally likely."""
    n, reps = 500, 400
    rng = np.random.default_rng(11)
    counts = np.zeros(n)
    totals = []
    for _ in range(reps):
        hits = bernoulli_positions(rng, n, p)
        assert np.all(np.diff(hits) > 0) and (hits.size == 0 or (hits[0] >= 0 and hits[-1] < n))
        counts[hits] += 1
        totals.append(hits.size)
    total = int(np.sum(totals))
    assert binomtest(total, n * reps, p).pvalue > 1e-3
    if p > 0.01:
        assert chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("fmt", ["float32", "float16", "bfloat16", "int8", "float64", "binary"])
@pytest.mark.parametrize("bits", [None, "first_noisy:1"])
def test_every_way_of_reading_hit_words_agrees(fmt, bits):
    """Sparse gathers (whole elements, single bits) and the dense unpack give the same words."""
    from memsim.formats import resolve_bits

    n = 1001  # not a whole number of words
    if fmt == "binary":
        x = torch.where(torch.rand(n, generator=torch.Generator().manual_seed(1)) < 0.5, -1.0, 1.0)
        if bits is not None:
            pytest.skip("binary has a single bit position")
    elif fmt == "int8":
        x = torch.randint(
            -128, 128, (n,), generator=torch.Generator().manual_seed(1), dtype=torch.int8
        )
    else:
        x = torch.randn(n, generator=torch.Generator().manual_seed(1)).to(getattr(torch, fmt))
    view = StoredBits(x, fmt)
    positions = np.flatnonzero(resolve_bits(fmt, bits))
    stream = view.bit_matrix(positions).reshape(-1)
    n_words = -(-stream.size // 64)
    few = np.array([0, 3, n_words - 1])  # sparse paths (the last word is partial)
    assert np.array_equal(stream_words(view, positions, few), secded.stream_words(stream, few))
    every = np.arange(n_words)  # dense path
    assert np.array_equal(stream_words(view, positions, every), secded.stream_words(stream, every))


def test_channels_work_in_place_on_non_contiguous_tensors():
    x = torch.randn(64, 48).t()  # a transposed view: not contiguous
    y = x.clone()
    assert not y.is_contiguous()
    SECDEDChannel("float32", 0.05).apply_(y, seed=1)
    assert (y.view(torch.int32) != x.view(torch.int32)).any()
    signs = torch.where(torch.randn(300) < 0, -1.0, 1.0).to(torch.bfloat16)[::2]
    flipped = signs.clone()
    BinaryChannel(0.5, 0.5).apply_(flipped, seed=2)
    assert flipped.dtype == torch.bfloat16 and set(flipped.unique().tolist()) <= {-1.0, 1.0}
    assert (flipped != signs).any()
