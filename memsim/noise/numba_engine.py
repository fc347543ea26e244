"""The CPU engine: glue between torch word tensors and the Numba kernels.

Three exact kernels, picked by the density of candidate flips (all thresholds measured with
``benchmarks/bitflip.py``):

* geometric skipping (:func:`~memsim.noise.kernels.flip_group`): one ``log`` per candidate
  (~15-20 ns per flip); used below ``BLOCK_FROM`` where there are few flips and the per-call
  cost is what matters;
* blocks (:func:`~memsim.noise.blocks.block_flips`): exact Binomial counts per block of slots,
  uniform distinct positions inside each block, prefetched words (~4-6 ns per flip, ~7-10 with
  thinning); used from ``BLOCK_FROM`` and ``BLOCK_MIN_CANDIDATES`` up;
* dense (:func:`~memsim.noise.kernels.dense_flip`): bit-sliced Bernoulli comparisons, 64 bits
  at a time, whose cost does not depend on p; faster once a few percent of bits are candidates
  (``DENSE_FROM``).

Blocks beyond ``CHUNK_BLOCKS`` run in parallel chunks, each seeded from the layer's stream, so
a result never depends on the Numba thread count. Ladders (coupled sampling) record the events
of their low layers and draw the layers above a union rate of ``COUPLED_DENSE_FROM`` in one
keyed dense pass (:func:`~memsim.noise.kernels.dense_keyed`: one uniform per bit shared by
every ladder entry), so a high-p coupled draw costs about one dense pass, not millions of
recorded events.

All kernels thin candidates by the stored bit for ``p01 != p10``; every choice depends only on the
layer's own rates and the tensor size, so ladder layers are sampled the same way at every entry.

Words are modified in place through a NumPy view of the tensor's storage; no per-bit memory is
allocated.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Literal, overload

import numpy as np
import torch

from memsim.formats import StorageFormat
from memsim.noise.bits import uint_words
from memsim.noise.blocks import (
    CHUNK_BLOCKS,
    block_flips,
    block_flips_chunked,
    block_trials,
    choose_block_log2,
    chunk_states,
)
from memsim.noise.engine import ENGINES, Engine
from memsim.noise.kernels import (
    collect_group,
    dense_flip,
    dense_keyed,
    flip_group,
    seed_state,
    xor_events,
)
from memsim.noise.rates import Group, Layer

#: Mean candidate rate per bit from which the dense kernel is faster. ``benchmarks/bitflip.py
#: --crossover`` (1M float32, one core): dense ~9.4 ms whatever p; blocks 3.0 ms at 0.02,
#: 4.0 ms at 0.03, 7.8 ms at 0.05 (symmetric; thinning for p01 != p10 costs ~1.7x), 24 ms at 0.1.
DENSE_FROM = 0.05
#: Candidate rates of a group sampled in blocks; outside, geometric skipping. Below ~5e-5 a
#: block would need a bitmap beyond L2 and the flips are too few to matter; above 0.25 drawing
#: distinct positions turns into a coupon collector (only reached with the dense path off).
BLOCK_FROM = 5e-5
BLOCK_TO = 0.25
#: Coupled sampling (ladders): once the union of the lower layers reaches this mean candidate
#: rate per bit, the layers above it are drawn together by one keyed dense pass, whose cost does
#: not depend on p, instead of recording and merging millions of events. ``benchmarks/bitflip.py
#: --coupled`` (1M float32, one thread, CPU ms): recording every layer costs 21 at p = 1e-2, 198
#: at 0.1; the keyed pass ~17 plus merging the events below the split.
COUPLED_DENSE_FROM = 0.012
#: Fewer expected candidates than this in a group: geometric skipping, whose set-up is ~14 us
#: cheaper (no count generator, no Binomial draws) and is worth ~1000 flips at ~14 ns saved each.
BLOCK_MIN_CANDIDATES = 1000
#: Below this many bytes the sparse kernel always wins (dense set-up costs tens of microseconds).
DENSE_MIN_BYTES = 1 << 15
# Dense lanes pack several narrow words into one uint64: that needs little-endian storage.
_LITTLE_ENDIAN = sys.byteorder == "little"


class NumbaEngine(Engine):
    """Geometric skipping, block sampling or dense bit-sliced sampling; CPU only."""

    name = "numba"
    devices = ("cpu",)

    def apply_(self, words: torch.Tensor, fmt: StorageFormat, layers: Sequence[Layer]) -> None:
        arr = uint_words(words, fmt)
        if len(layers) == 1 and not layers[0].coupled:
            layer = layers[0]
            if _use_dense(layer, arr.nbytes):
                _dense(arr, layer)
                return
            sampler = _Sparse(layer.seed)
            for g in layer.groups:
                sampler.group(arr, g, record=False)
            return
        # Ladder layers are judged against the original bits (record, then flip once), so a
        # layer's events are the same at every ladder entry.
        m = _sparse_prefix(layers, arr.nbytes)
        events: list[np.ndarray] = []
        for layer in layers[:m]:
            sampler = _Sparse(layer.seed)
            events.extend(sampler.group(arr, g, record=True) for g in layer.groups)
        if m < len(layers):
            # PERF: each group's events are sorted already: a stable sort (timsort) only merges runs.
            merged = np.sort(np.concatenate(events), kind="stable") if events else _NO_EVENTS
            _dense_rest(arr, layers[m:], merged)
        elif events:
            xor_events(arr, np.concatenate(events))


#: Seeds the Binomial block counts apart from the xoshiro stream of the same seed.
_COUNTS_STREAM = 0x636F756E7473
#: Keys the per-chunk streams of parallel block sampling apart from the layer's own stream.
_CHUNKS_STREAM = np.uint64(0x6368756E6B73)


class _Sparse:
    """One layer's sparse sampler: a xoshiro256** state and, if needed, a count generator."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.state = seed_state(seed)
        self._counts: np.random.Generator | None = None

    @overload
    def group(self, arr: np.ndarray, g: Group, record: Literal[True]) -> np.ndarray: ...

    @overload
    def group(self, arr: np.ndarray, g: Group, record: Literal[False]) -> None: ...

    def group(self, arr: np.ndarray, g: Group, record: bool) -> np.ndarray | None:
        """Flip one group's bits (``record=False``) or return them as ``word * 64 + shift``."""
        pmax = max(g.p01, g.p10)
        npos = g.shifts.size
        if BLOCK_FROM <= pmax <= BLOCK_TO and arr.size * npos * pmax >= BLOCK_MIN_CANDIDATES:
            if self._counts is None:  # PERF: created only when a group needs it (~10 us)
                self._counts = np.random.default_rng([self.seed, _COUNTS_STREAM])
            m = choose_block_log2(arr.size, npos, pmax)
            counts = self._counts.binomial(block_trials(arr.size, npos, m), pmax)
            out = np.empty(int(counts.sum()) if record else 0, dtype=np.int64)
            if counts.size <= CHUNK_BLOCKS:
                n = block_flips(arr, g.shifts, g.p01, g.p10, counts, m, self.state, out, record)
            else:
                # Chunks of blocks in parallel; chunk c >= 1 is seeded from this layer's stream,
                # so the result depends on the seed only, never on the thread count.
                nchunks = -(-counts.size // CHUNK_BLOCKS)
                states = chunk_states(np.uint64(self.state[0] ^ _CHUNKS_STREAM), nchunks)
                n = block_flips_chunked(
                    arr, g.shifts, g.p01, g.p10, counts, m, self.state, states, out, record
                )
            return out[:n] if record else None
        if record:
            events, n = collect_group(
                arr, g.shifts, g.p01, g.p10, self.state, np.empty(64, dtype=np.int64), 0
            )
            return events[:n]
        flip_group(arr, g.shifts, g.p01, g.p10, self.state)
        return None


_NO_EVENTS = np.empty(0, dtype=np.int64)


def _sparse_prefix(layers: Sequence[Layer], nbytes: int) -> int:
    """How many leading ladder layers are sampled sparsely; the rest share one dense draw.

    Layers stay sparse while the union of the layers so far has a mean candidate rate below
    ``COUPLED_DENSE_FROM``. The count depends only on the layers up to that point, which every
    ladder entry above it shares, so all entries split the ladder at the same layer.
    """
    if not _LITTLE_ENDIAN or nbytes < DENSE_MIN_BYTES:
        return len(layers)
    keep01 = keep10 = None  # probability that no layer so far selected the position
    for j, layer in enumerate(layers):
        keep01 = (1 - layer.p01) if keep01 is None else keep01 * (1 - layer.p01)
        keep10 = (1 - layer.p10) if keep10 is None else keep10 * (1 - layer.p10)
        if float(np.maximum(1 - keep01, 1 - keep10).mean()) >= COUPLED_DENSE_FROM:
            return j
    return len(layers)


def _dense_rest(arr: np.ndarray, rest: Sequence[Layer], events: np.ndarray) -> None:
    """Flip the union of ``rest`` (one keyed dense draw) and of ``events``, judged on the
    original bits.

    The union of the layers ``rest`` has rates ``q = 1 - prod(1 - r)``; one uniform per bit,
    keyed by the first of them (the same layer at every ladder entry above the split), flips a
    bit when it falls below ``q``, so a higher entry's flips contain a lower one's (docs/design.md §3).
    """
    keep01 = np.prod([1 - layer.p01 for layer in rest], axis=0)
    keep10 = np.prod([1 - layer.p10 for layer in rest], axis=0)
    q01 = np.where(keep01 <= 0, 1.0, 1 - keep01)
    q10 = np.where(keep10 <= 0, 1.0, 1 - keep10)
    width = arr.itemsize * 8
    t01, e01, f01 = _planes(q01, width)
    t10, e10, f10 = _planes(q10, width)
    key = np.uint64(int(seed_state(rest[0].seed)[0]))
    per64 = 64 // width
    n_main = arr.size - arr.size % per64
    main = arr[:n_main].view(np.uint64)
    dense_keyed(
        main, t01, t10, np.uint64(e01), np.uint64(e10), np.uint64(f01), np.uint64(f10),
        key, events, per64, width, 0, 0,
    )  # fmt: skip
    if n_main < arr.size:  # the last few words, one per draw, in their own width
        low = (1 << width) - 1
        dense_keyed(
            arr[n_main:], t01 & np.uint64(low), t10 & np.uint64(low),
            np.uint64(e01 & low), np.uint64(e10 & low), np.uint64(f01 & low), np.uint64(f10 & low),
            key, events, 1, width, n_main, main.size,
        )  # fmt: skip


def _use_dense(layer: Layer, nbytes: int) -> bool:
    if not _LITTLE_ENDIAN or nbytes < DENSE_MIN_BYTES:
        return False
    # PERF: from the (usually one) groups in plain floats: NumPy calls on tiny arrays cost ~20 us
    # each right after a large layer has evicted the interpreter's working set.
    rate_sum = sum(max(g.p01, g.p10) * g.shifts.size for g in layer.groups)
    return rate_sum / layer.width >= DENSE_FROM


def _fixed(p: float) -> int:
    """floor(p * 2**64): exact for every float64 p in [0, 1)."""
    return int(math.ldexp(p, 64))


def _planes(p: np.ndarray, width: int) -> tuple[np.ndarray, int, int]:
    """Threshold bit-planes (64 levels), mask of lanes with 0 < p < 1, mask of lanes with p = 1.

    Lane ``width - 1 - pos`` of a word holds position ``pos``; the per-word pattern repeats
    ``64 // width`` times to fill a uint64.
    """
    planes = [0] * 64
    partial = forced = 0
    for pos in range(width):
        lane = 1 << (width - 1 - pos)
        if p[pos] >= 1.0:
            forced |= lane
        elif p[pos] > 0.0:
            partial |= lane
            fx = _fixed(float(p[pos]))
            for i in range(64):
                if (fx >> (63 - i)) & 1:
                    planes[i] |= lane

    def fill(v: int) -> int:
        return sum(v << (r * width) for r in range(64 // width))

    return np.array([fill(v) for v in planes], dtype=np.uint64), fill(partial), fill(forced)


def _dense(arr: np.ndarray, layer: Layer) -> None:
    width = arr.itemsize * 8
    t01, e01, f01 = _planes(layer.p01, width)
    t10, e10, f10 = _planes(layer.p10, width)
    state = seed_state(layer.seed)
    per64 = 64 // width
    n_main = arr.size - arr.size % per64
    main = arr[:n_main].view(np.uint64)  # whole 64-bit groups of words
    dense_flip(
        main, t01, t10, np.uint64(e01), np.uint64(e10), np.uint64(f01), np.uint64(f10), state
    )
    if n_main < arr.size:  # the last few words, in their own width (masks fit below it)
        low = (1 << width) - 1
        dense_flip(
            arr[n_main:], t01 & np.uint64(low), t10 & np.uint64(low),
            np.uint64(e01 & low), np.uint64(e10 & low), np.uint64(f01 & low), np.uint64(f10 & low),
            state,
        )  # fmt: skip


ENGINES.register("numba", NumbaEngine())
