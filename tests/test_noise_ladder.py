"""Coupled sampling (common random numbers): nested flip patterns, each marginally exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from memsim.noise import BitFlip, engines, flip, flip_coupled

# Every registered engine but ``auto``, which only dispatches to one of them.
ENGINES = sorted(n for n in engines.ENGINES.names() if n != "auto")
ALPHA = 1e-6


def bits_flipped(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Flat boolean array: which stored bits differ."""
    as_bytes = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]
    a = x.contiguous().view(as_bytes).numpy().view(np.uint8)
    b = y.contiguous().view(as_bytes).numpy().view(np.uint8)
    return np.unpackbits(a ^ b).astype(bool)


@pytest.mark.parametrize("engine", ENGINES)
def test_flip_coupled_patterns_are_nested(engine):
    x = torch.randn(20_000).to(torch.float16)
    ps = [1e-2, 1e-4, 0.3, 1e-3]  # any order
    ys = flip_coupled(x, ps, seed=5, engine=engine)
    flipped = {p: bits_flipped(x, y) for p, y in zip(ps, ys)}
    ordered = sorted(ps)
    for small, large in zip(ordered, ordered[1:]):
        assert not (flipped[small] & ~flipped[large]).any(), f"{small} not inside {large}"
    assert flipped[1e-4].sum() < flipped[1e-3].sum() < flipped[1e-2].sum() < flipped[0.3].sum()


@pytest.mark.parametrize("engine", ENGINES)
def test_ladder_entries_are_marginally_exact_per_direction(engine):
    """Each entry's 0→1 and 1→0 counts are Binomial at that entry's own rates."""
    ladder = [(1e-3, 4e-3), (0.02, 0.05), (0.1, 0.2)]
    zeros, ones = (
        torch.zeros(10_000),
        torch.full((10_000,), -1, dtype=torch.int32).view(torch.float32),
    )
    for p01, p10 in ladder:
        n = 0
        k01 = k10 = 0
        for seed in range(2):
            k01 += bits_flipped(
                zeros, flip(zeros, p01, p10, ladder=ladder, seed=seed, engine=engine)
            ).sum()
            k10 += bits_flipped(
                ones, flip(ones, p01, p10, ladder=ladder, seed=seed, engine=engine)
            ).sum()
            n += zeros.numel() * 32
        for k, p in ((k01, p01), (k10, p10)):
            assert stats.binom.ppf(ALPHA, n, p) <= k <= stats.binom.isf(ALPHA, n, p), (p01, p10, k)


@pytest.mark.parametrize("engine", ENGINES)
def test_ladder_with_per_position_vectors_and_masks(engine):
    width = 32
    low = np.linspace(1e-3, 1e-2, width)
    ladder = [low, 3 * low]
    x = torch.randn(10_000)
    a = flip(x, low, bits="mantissa", ladder=ladder, seed=2, engine=engine)
    b = flip(x, 3 * low, bits="mantissa", ladder=ladder, seed=2, engine=engine)
    fa, fb = bits_flipped(x, a), bits_flipped(x, b)
    assert fa.any() and not (fa & ~fb).any()
    # bytes are little-endian: positions 0-8 (sign, exponent) live in the top 9 bits of each word
    words = np.packbits(fb).view(np.uint32)
    assert not (words & np.uint32(0xFF800000)).any()


def test_setting_outside_the_ladder_is_an_error():
    with pytest.raises(ValueError, match="ladder"):
        flip(torch.zeros(10), 0.5, ladder=[0.1, 0.2])


def test_decreasing_ladder_is_an_error():
    with pytest.raises(ValueError, match="non-decreasing"):
        flip(torch.zeros(10), 0.1, ladder=[0.2, 0.1])


def test_flip_coupled_without_seed_still_nests():
    x = torch.zeros(5000)
    lo, hi = flip_coupled(x, [0.01, 0.05])
    assert not (bits_flipped(x, lo) & ~bits_flipped(x, hi)).any()


def test_bitflip_channel_with_ladder_and_protected_bits():
    ladder = (1e-3, 1e-2)
    small = BitFlip("float32", 1e-3, bits="mantissa", ladder=ladder)
    large = BitFlip("float32", 1e-2, bits="mantissa", ladder=ladder)
    x = torch.randn(20_000)
    a, b = small.apply_(x.clone(), 4), large.apply_(x.clone(), 4)
    fa, fb = bits_flipped(x, a), bits_flipped(x, b)
    assert fa.any() and not (fa & ~fb).any()
