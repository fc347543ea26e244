"""Channels the generic bit-flip channel cannot express: SECDED codewords and ±1 binary values.

Both are :class:`memsim.noise.channel.Channel` implementations built by the policies'
accuracy side (:mod:`policies.accuracy`) and called by noisy inference at every write:

* :class:`SECDEDChannel` stores the RRAM bits of a tensor as (72,64) codewords and simulates
  each codeword exactly (flips on data and check bits, then the decoder);
* :class:`BinaryChannel` stores one bit per element of a ±1 tensor (bit 1 = +1) and flips
  signs.

Draws are sparse (cost proportional to the number of flips, not of bits) and come from
``memsim.rng.generator(seed, ...)``; with zero flip probability nothing is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from memsim.checks import check_probability
from memsim.formats import resolve_bits
from memsim.noise.bits import StoredBits, unpack_bits
from memsim.noise.channel import Channel
from memsim.noise.sampling import bernoulli_positions
from memsim.rng import generator
from policies import secded

# PERF: reading single bits costs ~30x more per bit than unpacking the whole tensor, so the
# hit words are gathered only when they hold less than 1/16 of the stream.
_SPARSE_READ_FACTOR = 16


def stream_words(stored: StoredBits, positions: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Data words ``words`` of the stream of ``stored``'s bits at ``positions``, shape (n, 64).

    The stream is every element's bits at ``positions``, element after element. Three
    ways to read it, chosen by how many words are needed.
    """
    m = positions.size
    n_stream = stored.numel * m
    if words.size * secded.DATA_BITS * _SPARSE_READ_FACTOR >= n_stream:
        # many words hit: unpack everything once (a few vectorised passes)
        return secded.stream_words(stored.bit_matrix(positions).reshape(-1), words)
    fmt = stored.fmt
    if not stored.binary and m == fmt.width and secded.DATA_BITS % m == 0:
        # whole words of k consecutive elements: gather the elements, unpack them
        k = secded.DATA_BITS // m
        elems = words[:, None] * k + np.arange(k)
        inside = elems < stored.numel
        picked = np.zeros(elems.shape, dtype=fmt.np_uint)
        picked[inside] = stored.words[elems[inside]]
        return unpack_bits(picked).reshape(words.size, secded.DATA_BITS)
    # general stream (e.g. mantissa bits only): gather bit by bit
    stream = words[:, None] * secded.DATA_BITS + np.arange(secded.DATA_BITS)
    inside = stream < n_stream
    out = np.zeros(stream.shape, dtype=np.uint8)
    out[inside] = stored.read(stream[inside] // m, positions[stream[inside] % m])
    return out


@dataclass(frozen=True, eq=False)
class SECDEDChannel(Channel):
    """Flips on (72,64) SECDED codewords holding a tensor's RRAM bits, then decoding.

    The bits at the noisy positions ``bits`` of every element, in element order and MSB
    first, form one stream that is cut into 64-bit data words (the last one zero-padded),
    each stored with its 8 check bits. Every cell of every codeword flips independently
    (a stored 0 with ``p01``, a stored 1 with ``p10``); the decoder corrects single errors,
    leaves detected double errors as stored and may miscorrect heavier ones.

    Parameters
    ----------
    fmt : str
        Storage format of the tensors (``binary`` for ±1 tensors).
    p01, p10 : float
        Per-cell flip probabilities (after write-verify, if any).
    bits : optional
        Positions stored in ECC-protected RRAM (others are noiseless, e.g. kept in SRAM).
    """

    fmt: str
    p01: float
    p10: float | None = None
    bits: object = None
    # Derived in __post_init__: the RRAM positions, MSB first.
    _positions: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "p01", check_probability("p01", self.p01, owner="SECDEDChannel"))
        p10 = self.p01 if self.p10 is None else self.p10
        object.__setattr__(self, "p10", check_probability("p10", p10, owner="SECDEDChannel"))
        object.__setattr__(self, "_positions", np.flatnonzero(resolve_bits(self.fmt, self.bits)))

    @property
    def rates(self) -> tuple[float, float]:
        """``(p01, p10)``, checked (``p10=None`` was resolved to ``p01``)."""
        return self.p01, self.p01 if self.p10 is None else self.p10

    @property
    def is_noiseless(self) -> bool:
        return (self.p01 == 0 and self.p10 == 0) or self._positions.size == 0

    def apply_(self, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        if self.is_noiseless or x.numel() == 0:
            return x
        stored = StoredBits(x, self.fmt)
        m = self._positions.size
        rng = generator(seed, "secded_channel")
        changed = secded.corrupt_words(
            stored.numel * m,
            lambda words: stream_words(stored, self._positions, words),
            *self.rates,
            rng,
        )
        stored.flip(changed // m, self._positions[changed % m])
        return x


@dataclass(frozen=True, eq=False)
class BinaryChannel(Channel):
    """Sign flips of ±1 tensors stored one bit per element (bit 1 = +1, i.e. value >= 0).

    A stored +1 reads as -1 with ``p10``, a stored -1 reads as +1 with ``p01``; elements that
    do not flip are left untouched (bit for bit).
    """

    p01: float
    p10: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "p01", check_probability("p01", self.p01, owner="BinaryChannel"))
        p10 = self.p01 if self.p10 is None else self.p10
        object.__setattr__(self, "p10", check_probability("p10", p10, owner="BinaryChannel"))

    @property
    def rates(self) -> tuple[float, float]:
        """``(p01, p10)``, checked (``p10=None`` was resolved to ``p01``)."""
        return self.p01, self.p01 if self.p10 is None else self.p10

    @property
    def is_noiseless(self) -> bool:
        return self.p01 == 0 and self.p10 == 0

    def apply_(self, x: torch.Tensor, seed: int | None) -> torch.Tensor:
        if self.is_noiseless or x.numel() == 0:
            return x
        if not x.is_floating_point():
            raise TypeError(f"BinaryChannel needs a floating-point ±1 tensor. Got {x.dtype}.")
        stored = StoredBits(x, "binary")
        rng = generator(seed, "binary_channel")
        p01, p10 = self.rates
        p_max = max(p01, p10)
        # Candidates at rate p_max, thinned by the stored bit: exact per-direction Bernoulli.
        candidates = bernoulli_positions(rng, stored.numel, p_max)
        bit = stored.read(candidates, np.zeros_like(candidates))
        keep = rng.random(candidates.size) < np.where(bit == 1, p10, p01) / p_max
        stored.flip(candidates[keep], np.zeros(int(keep.sum()), dtype=np.int64))
        return x
