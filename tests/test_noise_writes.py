"""Prepared writes (memsim.noise.writes): one compiled call per write on the tensor's memory gives
the flips of the checked path, with the stream keys the Python glue defines."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from memsim.formats import get_format
from memsim.noise import BitFlip
from memsim.noise.blocks import block_flips_seeded, choose_block_log2
from memsim.noise.kernels import flip_group, seed_state
from memsim.noise.numba_engine import layer_writer
from memsim.noise.rates import Layer
from memsim.noise.writes import BLOCKS_STREAM
from memsim.rng import splitmix64

GRID = tuple(np.logspace(-8, -1, 22).tolist())


def words_of(x: torch.Tensor) -> np.ndarray:
    fmt = get_format({torch.bfloat16: "bfloat16"}.get(x.dtype, str(x.dtype).split(".")[-1]))
    return x.contiguous().view(fmt.int_view).numpy().view(fmt.np_uint).copy()


def random_tensor(fmt: str, n: int) -> torch.Tensor:
    if fmt == "int8":
        return torch.randint(
            -128, 128, (n,), dtype=torch.int8, generator=torch.Generator().manual_seed(1)
        )
    return torch.randn(n, generator=torch.Generator().manual_seed(1)).to(
        get_format(fmt).torch_dtype
    )


@pytest.mark.parametrize("fmt", ["float32", "bfloat16", "float16", "int8"])
@pytest.mark.parametrize("coupled", [False, True])
@pytest.mark.parametrize("p", [1e-6, 1e-3, 0.1])
def test_a_prepared_write_flips_what_the_checked_path_flips(fmt, coupled, p):
    """A contiguous CPU tensor takes the prepared write; a strided view of the same values takes
    the checked path (flip_ on a contiguous copy): same seed, same flips."""
    ladder = tuple(sorted({*GRID, p})) if coupled else None
    ch = BitFlip(fmt, p, ladder=ladder)
    n = 200_000
    x = random_tensor(fmt, n)
    fast = x.clone()
    assert fast.is_contiguous()
    ch.apply_(fast, 11)
    strided = torch.empty((x.numel(), 2), dtype=x.dtype)[:, 0]
    strided.copy_(x)
    assert not strided.is_contiguous()
    ch.apply_(strided, 11)
    assert np.array_equal(words_of(fast), words_of(strided))
    if n * get_format(fmt).width * p >= 10:  # P(no flip) below e**-10
        assert np.count_nonzero(words_of(fast) != words_of(x)) > 0


def test_large_seeds_key_the_streams_by_their_low_64_bits():
    """Seeds the prepared write cannot take as int64 (up to 2**64 - 1) go the checked way and draw from the same
    keys: ``seed_state(seed)`` for geometric skipping, ``splitmix64(seed ^ BLOCKS_STREAM, 1)``
    for a layer's first group in blocks."""
    width = 32
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    words = np.random.default_rng(2).integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32)
    for seed in (7, 2**63 + 7, 2**64 - 1):
        for p in (1e-6, 1e-3):  # geometric skipping, then blocks
            layer = Layer(np.full(width, p), np.full(width, p), 0)
            got = words.copy()
            x = torch.from_numpy(got.view(np.float32))
            BitFlip("float32", p).apply_(x, seed)
            want = words.copy()
            if p < 1e-4:
                flip_group(want, shifts, p, p, seed_state(seed & (2**64 - 1)))
            else:
                key = np.uint64(splitmix64((seed & (2**64 - 1)) ^ BLOCKS_STREAM, 1))
                block_flips_seeded(
                    want, shifts, p, p, choose_block_log2(want.size, width, p), key, True
                )
            assert np.array_equal(got, want), (seed, p)
            assert layer_writer(layer, words.size) is layer_writer(layer, words.size)
    # Above 64 bits a seed is refused (it drew the flips of its low 64 bits, a silent alias).
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*64 - 1\]"):
        BitFlip("float32", 1e-3).apply_(torch.from_numpy(words.view(np.float32)), 2**64 + 7)


def test_a_channel_that_has_written_pickles_and_writes_the_same():
    ch = BitFlip("float32", 1e-3, ladder=GRID[:20])
    x = torch.randn(20_000)
    a = x.clone()
    ch.apply_(a, 3)
    copy = pickle.loads(pickle.dumps(ch))
    b = x.clone()
    copy.apply_(b, 3)
    assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    assert not torch.equal(a.view(torch.int32), x.view(torch.int32))
