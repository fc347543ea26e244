"""Numba entry kernels of the CPU engine: one compiled call per write, on raw tensor memory.

A write in a network comes right after a layer has flushed the caches, where every Python step
costs microseconds: VGG-A in tiles of 32 makes 240 writes per batch of 256, and a NumPy view of
the tensor (``Tensor.numpy``, ~45 us there) plus a call with seven array arguments (~20 us) cost
more than the flips at p = 1e-3. So the engine prepares each write's plan once per (rates,
tensor size) (:mod:`memsim.noise.numba_engine`) as one int64 array, and these kernels take only
integers: the words' address and count, the seed, and the plan's address and length. They
rebuild the arrays with ``numba.carray``, derive every stream key, and run the group kernels.

Keys are the same as ever (:func:`memsim.rng.splitmix64`, :func:`memsim.noise.kernels.seed_state`,
:func:`memsim.noise.blocks.chunk_states`): a result depends on the seed and the plan only
(tested against the golden run and the Python key functions).

Plans (int64; a float is stored as its bits and read through a float64 view of the plan):

* layer (:func:`layer_flips`): ``[G, G rows of (first shift, end shift, block_log2, p01, p10,
  parallel), shifts...]``; ``block_log2 = 0`` samples the group by geometric skipping, and
  ``parallel = 1`` runs its blocks' chunks on all Numba threads;
* ladder entry (:func:`coupled_flips`): ``[groups, planned, levels, union_words, mask rows,
  mask row size, float start, planned rows of (group, first shift, end shift, first trial,
  end trial, block_log2, p01, p10), shifts..., trials..., lo, hi, mus]`` with ``lo``/``hi``/
  ``mus`` ``planned x levels`` row-major from ``float start``.

One entry per word width (``LAYER_FLIPS[bits]``, ``COUPLED_FLIPS[bits]``) compiles only the
widths a run uses.
"""

from __future__ import annotations

import numba
import numpy as np

from memsim.jit import as_pointer, jit
from memsim.noise.blocks import block_flips_seeded, chunk_states
from memsim.noise.kernels import _mix64, flip_group
from memsim.noise.ladder import ladder_group

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
#: Keys the block sampler's streams apart from the geometric stream of the same seed.
BLOCKS_STREAM = 0x626C6F636B73
#: Keys of the coupled sampler's group streams.
LADDER_GROUPS = 0x6C6164646572
_BLOCKS = np.uint64(BLOCKS_STREAM)
_GROUPS = np.uint64(LADDER_GROUPS)
#: Layer plan: header length and row length.
LAYER_HEAD, LAYER_ROW = 1, 6
#: Ladder-entry plan: header length and row length.
LADDER_HEAD, LADDER_ROW = 7, 8


@jit
def layer_flips(words, seed, plan):
    """Flip ``words`` (1-D unsigned) in place with one layer's sparse plan, drawn from ``seed``.

    Group ``i`` samples in blocks from the key ``splitmix64(seed ^ BLOCKS_STREAM, i + 1)``, or
    (``block_log2 = 0``) by geometric skipping from one xoshiro256** stream seeded with
    ``splitmix64(seed, 1..4)``, shared by those groups in order.
    """
    floats = plan.view(np.float64)
    s = np.uint64(seed)
    state = np.zeros(4, dtype=np.uint64)
    seeded = False
    for i in range(plan[0]):
        row = LAYER_HEAD + LAYER_ROW * i
        positions = plan[plan[row] : plan[row + 1]]
        block_log2 = plan[row + 2]
        p01, p10 = floats[row + 3], floats[row + 4]
        if block_log2 > 0:
            key = _mix64((s ^ _BLOCKS) + np.uint64(i + 1) * _GAMMA)
            block_flips_seeded(words, positions, p01, p10, block_log2, key, plan[row + 5] > 0)
            continue
        if not seeded:
            for n in range(4):
                state[n] = _mix64(s + np.uint64(n + 1) * _GAMMA)
            if state[0] == 0 and state[1] == 0 and state[2] == 0 and state[3] == 0:
                state[0] = 1
            seeded = True
        flip_group(words, positions, p01, p10, state)


@jit
def coupled_flips(words, out, seed, plan, masks, in_place):
    """The sparse part of one coupled write: :func:`~memsim.noise.ladder.ladder_group` for each
    planned group, flips into ``out`` (``words`` itself when ``in_place``, or a zeroed mask).

    Group ``g`` of the ladder draws from row ``g`` of ``chunk_states(seed ^ LADDER_GROUPS,
    groups)``; ``masks`` are the superblock scratch rows (zeroed, left zeroed).
    """
    floats = plan.view(np.float64)
    nlev = plan[2]
    keys = chunk_states(np.uint64(seed) ^ _GROUPS, plan[0])
    for i in range(plan[1]):
        row = LADDER_HEAD + LADDER_ROW * i
        level = plan[6] + nlev * i
        hi = level + plan[1] * nlev
        mu = hi + plan[1] * nlev
        ladder_group(
            words,
            out,
            plan[plan[row + 1] : plan[row + 2]],
            floats[level : level + nlev],
            floats[hi : hi + nlev],
            floats[row + 6],
            floats[row + 7],
            floats[mu : mu + nlev],
            plan[plan[row + 3] : plan[row + 4]],
            plan[row + 5],
            keys[plan[row]],
            masks,
            in_place,
            plan[3],
        )


@jit(inline="always")
def _plan_at(address, size):
    return numba.carray(as_pointer(address), size, np.int64)


@jit(inline="always")
def _layer_at(address, nwords, seed, plan, size, dtype):
    """:func:`layer_flips` on ``nwords`` words of ``dtype`` at ``address``, the plan of ``size``
    int64 at ``plan``."""
    words = numba.carray(as_pointer(address), nwords, dtype)
    layer_flips(words, seed, _plan_at(plan, size))


@jit(inline="always")
def _coupled_at(address, out, nwords, seed, plan, size, masks, dtype):
    """:func:`coupled_flips` on ``nwords`` words of ``dtype`` at ``address`` into those at
    ``out`` (in place when it is ``address``), scratch rows at ``masks``."""
    words = numba.carray(as_pointer(address), nwords, dtype)
    target = numba.carray(as_pointer(out), nwords, dtype)
    p = _plan_at(plan, size)
    mask_rows = numba.carray(as_pointer(masks), (p[4], p[5]), dtype)
    coupled_flips(words, target, seed, p, mask_rows, out == address)


# One entry per word width over raw memory: (words, count, seed, plan, plan length) for a layer;
# (words, out, count, seed, plan, plan length, masks) for a ladder entry.


@jit
def layer_flips8(address, nwords, seed, plan, size):
    _layer_at(address, nwords, seed, plan, size, np.uint8)


@jit
def layer_flips16(address, nwords, seed, plan, size):
    _layer_at(address, nwords, seed, plan, size, np.uint16)


@jit
def layer_flips32(address, nwords, seed, plan, size):
    _layer_at(address, nwords, seed, plan, size, np.uint32)


@jit
def layer_flips64(address, nwords, seed, plan, size):
    _layer_at(address, nwords, seed, plan, size, np.uint64)


@jit
def coupled_flips8(address, out, nwords, seed, plan, size, masks):
    _coupled_at(address, out, nwords, seed, plan, size, masks, np.uint8)


@jit
def coupled_flips16(address, out, nwords, seed, plan, size, masks):
    _coupled_at(address, out, nwords, seed, plan, size, masks, np.uint16)


@jit
def coupled_flips32(address, out, nwords, seed, plan, size, masks):
    _coupled_at(address, out, nwords, seed, plan, size, masks, np.uint32)


@jit
def coupled_flips64(address, out, nwords, seed, plan, size, masks):
    _coupled_at(address, out, nwords, seed, plan, size, masks, np.uint64)


#: The entries by word width in bits.
LAYER_FLIPS = {8: layer_flips8, 16: layer_flips16, 32: layer_flips32, 64: layer_flips64}
COUPLED_FLIPS = {8: coupled_flips8, 16: coupled_flips16, 32: coupled_flips32, 64: coupled_flips64}
