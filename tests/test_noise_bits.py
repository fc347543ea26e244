"""Bit views: MSB-first positions agree between unpacking, single-bit reads and flips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memsim.formats import get_format
from memsim.noise.bits import (
    StoredBits,
    position_masks,
    read_bits,
    signed_numpy_dtype,
    uint_words,
    unpack_bits,
)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_unpack_read_and_masks_agree(dtype):
    rng = np.random.default_rng(0)
    width = np.dtype(dtype).itemsize * 8
    words = rng.integers(0, 2**width, size=(5, 3), dtype=dtype)
    bits = unpack_bits(words)
    assert bits.shape == (5, 3, width)
    # position 0 is the most significant bit
    assert np.array_equal(bits[..., 0], (words >> dtype(width - 1)).astype(np.uint8))
    flat, pos = words.reshape(-1), rng.integers(0, width, size=15)
    assert np.array_equal(read_bits(flat, pos), bits.reshape(15, width)[np.arange(15), pos])
    masks = position_masks(pos, np.dtype(dtype))
    assert np.array_equal(unpack_bits(masks).sum(axis=1), np.ones(15))
    assert np.array_equal(unpack_bits(masks)[np.arange(15), pos], np.ones(15))


def test_uint_words_share_memory_with_the_tensor():
    x = torch.tensor([1.0, -2.0], dtype=torch.float32)
    words = uint_words(x, get_format("float32"))
    assert words.dtype == np.uint32 and words[0] == 0x3F800000
    words[1] ^= np.uint32(1 << 31)  # the sign bit
    assert x[1] == 2.0
    assert signed_numpy_dtype(get_format("float16")) == np.int16
    assert signed_numpy_dtype(get_format("uint8")) == np.uint8


@pytest.mark.parametrize("fmt", ["float32", "bfloat16", "int8", "binary"])
def test_flipping_twice_is_the_identity(fmt):
    gen = torch.Generator().manual_seed(3)
    if fmt == "int8":
        x = torch.randint(-128, 128, (64,), generator=gen, dtype=torch.int8)
    elif fmt == "binary":
        x = torch.where(torch.randn(64, generator=gen) < 0, -1.0, 1.0)
    else:
        x = torch.randn(64, generator=gen).to(getattr(torch, fmt))
    x = x[::2]  # not contiguous: goes through the copy that flip writes back
    before = x.clone()
    stored = StoredBits(x, fmt)
    width = get_format(fmt).width
    elem, pos = np.arange(32), np.arange(32) % width
    old = stored.read(elem, pos)
    stored.flip(elem, pos)
    assert np.array_equal(StoredBits(x, fmt).read(elem, pos), 1 - old)
    StoredBits(x, fmt).flip(elem, pos)
    int_view = get_format(fmt).int_view
    if int_view is None:
        assert torch.equal(x, before)
    else:
        assert torch.equal(x.view(int_view), before.view(int_view))
