"""The CPU engine: glue between torch word tensors and the Numba kernels.

Two exact kernels, picked per call by the density of candidate flips:

* sparse (:func:`~memsim.noise.kernels.flip_group`): geometric skipping with thinning by the
  stored bit; cost proportional to the number of flips plus a few microseconds per call;
* dense (:func:`~memsim.noise.kernels.dense_flip`): bit-sliced Bernoulli comparisons, 64 bits
  at a time, whose cost does not depend on p; faster once a few percent of bits are candidates
  (``DENSE_FROM``, measured with ``benchmarks/bitflip.py``).

Words are modified in place through a NumPy view of the tensor's storage; no per-bit memory is
allocated.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np
import torch

from memsim.formats import StorageFormat
from memsim.noise.engines import ENGINES, Engine
from memsim.noise.kernels import collect_group, dense_flip, flip_group, seed_state, xor_events
from memsim.noise.rates import Layer

#: Mean candidate rate per bit from which the dense kernel is faster. ``benchmarks/bitflip.py
#: --crossover`` (1M float32, one core): dense ~9.4 ms whatever p; sparse 4.7 ms at 0.02,
#: 7.0 ms at 0.03, 12 ms at 0.05. On tensors larger than the caches sparse slows down more.
DENSE_FROM = 0.03
#: Below this many bytes the sparse kernel always wins (dense set-up costs tens of microseconds).
DENSE_MIN_BYTES = 1 << 15
# Dense lanes pack several narrow words into one uint64: that needs little-endian storage.
_LITTLE_ENDIAN = sys.byteorder == "little"


class NumbaEngine(Engine):
    """Sparse geometric skipping or dense bit-sliced sampling; CPU only."""

    name = "numba"
    devices = ("cpu",)

    def apply_(self, words: torch.Tensor, fmt: StorageFormat, layers: Sequence[Layer]) -> None:
        arr = words.numpy().view(fmt.np_uint)
        if len(layers) == 1 and not layers[0].coupled:
            layer = layers[0]
            if _use_dense(layer, arr.nbytes):
                _dense(arr, layer)
                return
            state = seed_state(layer.seed)
            for g in layer.groups:
                flip_group(arr, g.shifts, g.p01, g.p10, state)
            return
        # Ladder layers are judged against the original bits (record, then flip once) and always
        # sampled sparsely, so a layer's events are the same at every ladder entry.
        events = np.empty(64, dtype=np.int64)
        n = 0
        for layer in layers:
            state = seed_state(layer.seed)
            for g in layer.groups:
                events, n = collect_group(arr, g.shifts, g.p01, g.p10, state, events, n)
        xor_events(arr, events[:n])


def _use_dense(layer: Layer, nbytes: int) -> bool:
    if not _LITTLE_ENDIAN or nbytes < DENSE_MIN_BYTES:
        return False
    return float(np.maximum(layer.p01, layer.p10).mean()) >= DENSE_FROM


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
