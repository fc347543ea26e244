"""The CPU engine: glue between torch word tensors and the Numba kernels.

Three exact kernels, picked by the density of candidate flips (all thresholds measured with
``benchmarks/bitflip.py``):

* geometric skipping (:func:`~memsim.noise.kernels.flip_group`): one ``log`` per candidate
  (~15-20 ns per flip); used below ``BLOCK_FROM`` where there are few flips and the per-call
  cost is what matters;
* blocks (:func:`~memsim.noise.blocks.block_flips_seeded`): per block of slots, symmetric
  rates draw Poisson hits with repetition and flip each hit, so a bit flips iff its hits are odd
  (~2 ns per flip, ~4 in a tensor out of cache); other rates draw exact Binomial counts and
  uniform distinct positions with a bitmap, prefetching words (~4-6 ns per flip, ~7-10 with
  thinning); used from ``BLOCK_FROM`` and ``BLOCK_MIN_CANDIDATES`` up;
* dense (:func:`~memsim.noise.kernels.dense_flip`): bit-sliced Bernoulli comparisons, 64 bits
  at a time, whose cost does not depend on p; faster once a few percent of bits are candidates
  (``DENSE_FROM``, ``PARITY_DENSE_FROM`` for parity).

Blocks come in chunks of ``CHUNK_BLOCKS``, each with its own stream keyed by the layer's seed
(:func:`~memsim.noise.blocks.block_flips_seeded` draws the Binomial counts and the candidates of
a whole group in one call, chunks in parallel), so a result never depends on the Numba thread
count. All kernels thin candidates by the stored bit for ``p01 != p10``.

Ladders (coupled sampling, docs/design.md §3) are never sampled layer by layer. Up to the
ladder's split (:func:`_split`, a function of the ladder and the tensor size only) an entry is
the union of nested Poisson hits per level, drawn in superblocks that do not depend on p
(:mod:`memsim.noise.ladder`), in place; it costs about what an independent draw costs from
p ~ 0.02 up (1.0-1.3x) and 1.3-2.0x below (``benchmarks/bitflip.py --coupled``). Above the
split, the split entry's flips go into a mask and one keyed dense pass
(:func:`~memsim.noise.kernels.dense_keyed`, uniforms that do not depend on the rates) adds the
rest, ``(P_k - P_split) / (1 - P_split)``.

Writes are prepared once per (rates, tensor size): :func:`layer_writer` and
:func:`ladder_writer` pick the kernels and pack their plan into one int64 array, and a write is
then one compiled call (:mod:`memsim.noise.writes`) on the words' address, which is how
:class:`~memsim.noise.channel.BitFlip` flips a CPU tensor (its ``data_ptr``: no NumPy view, no
array argument to dispatch). Words are modified in place; no per-bit memory is allocated.
"""

from __future__ import annotations

import ctypes
import math
import sys
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache

import numba
import numpy as np
import torch

from memsim.formats import StorageFormat
from memsim.noise import blocks as blocks_module
from memsim.noise.bits import uint_words
from memsim.noise.blocks import (
    PARITY_MAX,
    block_trials,
    choose_block_log2,
    chunk_states,
    slot_bits,
)
from memsim.noise.engine import ENGINES, Engine
from memsim.noise.kernels import KEYED_CHUNK, dense_flip, dense_keyed, seed_state
from memsim.noise.ladder import UNION_WORDS_PER_HIT
from memsim.noise.rates import Group, Ladder, LadderGroup, LadderLayers, Layer, increment
from memsim.noise.writes import (
    COUPLED_FLIPS,
    LADDER_HEAD,
    LADDER_ROW,
    LAYER_FLIPS,
    LAYER_HEAD,
    LAYER_ROW,
)

#: Mean candidate rate per bit from which the dense kernel is faster. ``benchmarks/bitflip.py
#: --crossover`` (1M float32, one core): dense ~9.4 ms whatever p; blocks 3.0 ms at 0.02,
#: 4.0 ms at 0.03, 7.8 ms at 0.05 (symmetric; thinning for p01 != p10 costs ~1.7x), 24 ms at 0.1.
DENSE_FROM = 0.05
#: The same for layers whose groups all have symmetric rates, sampled by parity (no
#: de-duplication). 1M float32, one thread, CPU ms: dense 10.4 whatever p; parity 1.75 at
#: 0.03, 2.9 at 0.05, 5.9 at 0.1, 9.6 at 0.15, 13.1 at 0.2.
PARITY_DENSE_FROM = 0.15
#: Candidate rates of a group sampled in blocks; outside, geometric skipping. Below ~5e-5 a
#: block would need a bitmap beyond L2 and the flips are too few to matter; above 0.25 drawing
#: distinct positions turns into a coupon collector (only reached with the dense path off).
BLOCK_FROM = 5e-5
BLOCK_TO = 0.25
#: Small tensors (below ``DENSE_MIN_BYTES``) draw ladder entries sparsely up to this candidate
#: rate; above it the expected draws per distinct bit (1 / (1 - rate)) grow without bound.
COUPLED_SPARSE_MAX = 0.9
#: Fewer expected candidates than this in a group: geometric skipping, whose set-up is ~14 us
#: cheaper (no count generator, no Binomial draws) and is worth ~1000 flips at ~14 ns saved each.
BLOCK_MIN_CANDIDATES = 1000
#: Expected candidates of a group's write from which its chunks of blocks run on all Numba
#: threads; fewer run in order on the calling thread (same flips). ~16K hits are ~30 us of
#: work on one thread, several times what waking the others costs. VGG-A in tiles of 32 (2 torch
#: and 2 Numba threads), noisy/clean wall time, three runs: never parallel 1.044-1.051 at
#: p = 1e-3 and 1.23-1.28 at 1e-2; always (multi-chunk writes) 1.009-1.077 and 1.14-1.19; from
#: 2**14 1.025-1.063 and 1.15-1.23 (the machine's noise: thresholds of 0 to 2**16 not resolved).
PARALLEL_FROM = 1 << 14
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
        ladder = layers.ladder if isinstance(layers, LadderLayers) else None
        if ladder is not None:
            _coupled(arr, ladder, ladder.seed)
            return
        if len(layers) == 1:
            _independent(arr, layers[0], layers[0].seed)
            return
        # Several plain layers: a union, each judged against the original bits.
        flips = np.zeros_like(arr)
        for layer in layers:
            work = arr.copy()
            _independent(work, layer, layer.seed)
            flips |= work ^ arr
        arr ^= flips


#: A prepared write: ``write(address, nwords, seed)`` flips the ``nwords`` contiguous words at
#: ``address`` in place (the caller keeps them alive), ``seed`` an int64 (the low 64 bits)
#: (:func:`layer_writer`, :func:`ladder_writer`).
Writer = Callable[[int, int, int], None]


def _independent(arr: np.ndarray, layer: Layer, seed: int) -> None:
    """Flip ``arr`` in place with one layer's rates (dense or sparse, by density) from ``seed``."""
    _run(layer_writer(layer, arr.size), arr, seed)


def _coupled(arr: np.ndarray, ladder: Ladder, seed: int) -> None:
    """Flip ``arr`` at ``ladder.entry``, nested in every larger entry (docs/design.md §3)."""
    _run(ladder_writer(ladder, arr.size), arr, seed)


def _run(write: Writer, arr: np.ndarray, seed: int) -> None:
    """``write`` on an array of words (1-D and contiguous: what the engine receives)."""
    if not arr.flags.c_contiguous or arr.ndim != 1:
        raise ValueError(f"the Numba engine flips 1-D contiguous words; got shape {arr.shape}")
    if arr.size:
        write(arr.ctypes.data, arr.size, _int64(seed))


def _int64(seed: int) -> int:
    """A seed's low 64 bits as a signed int64 (kernels read them back as uint64): one compiled
    signature for every seed."""
    low = int(seed) & 0xFFFFFFFFFFFFFFFF
    return low - (1 << 64) if low >> 63 else low


def _array_at(address: int, nwords: int, dtype: np.dtype) -> np.ndarray:
    """The ``nwords`` words of ``dtype`` at ``address`` as a writable NumPy array (no copy)."""
    buffer = (ctypes.c_char * (nwords * dtype.itemsize)).from_address(address)
    return np.frombuffer(memoryview(buffer).cast("B"), dtype=dtype)


def _thresholds() -> tuple[object, ...]:
    """Every module setting a write plan depends on (tests change them)."""
    return (
        DENSE_FROM, PARITY_DENSE_FROM, BLOCK_FROM, BLOCK_TO, BLOCK_MIN_CANDIDATES,
        blocks_module.MAX_BLOCK_LOG2, DENSE_MIN_BYTES, COUPLED_SPARSE_MAX, UNION_WORDS_PER_HIT,
        PARALLEL_FROM,
    )  # fmt: skip


_WRITERS: dict[tuple, tuple[object, Writer]] = {}


def _remembered(key: tuple, anchor: object, build: Callable[[], Writer]) -> Writer:
    """The writer stored under ``key`` (whose first part is ``id(anchor)``), built if absent.

    PERF: a sweep writes the same tensor sizes with the same rates thousands of times.
    """
    hit = _WRITERS.get(key)
    if hit is not None and hit[0] is anchor:
        return hit[1]
    writer = build()
    if len(_WRITERS) > 4096:
        _WRITERS.clear()
    _WRITERS[key] = (anchor, writer)  # the anchor stays alive while its id is a key
    return writer


def _no_flips(address: int, nwords: int, seed: int) -> None:
    """The writer of a layer or entry without noisy bits."""


def layer_writer(layer: Layer, nwords: int) -> Writer:
    """The prepared write of ``layer``'s rates on ``nwords`` words: geometric skipping, blocks
    (each group's key from the seed, chunks in parallel) or the dense kernel, by density; sparse
    plans run as one compiled call (:func:`~memsim.noise.writes.layer_flips`)."""
    groups = layer.groups
    key = (id(groups), "layer", layer.width, nwords, _thresholds())
    return _remembered(key, groups, lambda: _build_layer_writer(layer, nwords))


def _build_layer_writer(layer: Layer, nwords: int) -> Writer:
    groups = layer.groups
    if not groups:
        return _no_flips
    dtype = np.dtype(f"uint{layer.width}")
    plan = _plan(groups, layer.width, nwords)
    if plan is None:
        p01, p10 = layer.p01, layer.p10

        def dense(address: int, nwords: int, seed: int) -> None:
            _dense(_array_at(address, nwords, dtype), p01, p10, seed)

        return dense
    head = np.zeros(LAYER_HEAD + LAYER_ROW * len(plan), dtype=np.int64)
    head[0] = len(plan)
    rows = head[LAYER_HEAD:].reshape(len(plan), LAYER_ROW)
    shifts, starts = _packed([g.shifts for _, g, _ in plan], head.size)
    rows[:, 0], rows[:, 1] = starts[:-1], starts[1:]
    rows[:, 2] = [block_log2 for _, _, block_log2 in plan]
    rows[:, 3] = _bits([g.p01 for _, g, _ in plan])
    rows[:, 4] = _bits([g.p10 for _, g, _ in plan])
    rows[:, 5] = [nwords * g.shifts.size * max(g.p01, g.p10) >= PARALLEL_FROM for _, g, _ in plan]
    packed = np.concatenate([head, shifts])
    entry = LAYER_FLIPS[layer.width]
    address, size = packed.ctypes.data, packed.size

    def sparse(words: int, nwords: int, seed: int, _keep: np.ndarray = packed) -> None:
        entry(words, nwords, seed, address, size)

    return sparse


def _plan(
    groups: tuple[Group, ...], width: int, nwords: int
) -> tuple[tuple[int, Group, int], ...] | None:
    """How a layer with these groups flips a tensor of ``nwords`` words: None for the dense
    kernel, else per group its index (from 1), the group and its block size (log2; 0 for
    geometric skipping)."""
    if _use_dense(groups, width, nwords * width // 8):
        return None
    steps = []
    for index, g in enumerate(groups, start=1):
        pmax = max(g.p01, g.p10)
        npos = g.shifts.size
        block = BLOCK_FROM <= pmax <= BLOCK_TO and nwords * npos * pmax >= BLOCK_MIN_CANDIDATES
        steps.append((index, g, choose_block_log2(nwords, npos, pmax) if block else 0))
    return tuple(steps)


def _packed(parts: Sequence[np.ndarray], start: int) -> tuple[np.ndarray, np.ndarray]:
    """``parts`` end to end as int64, and where each starts (then the end) when placed at
    ``start`` of a plan."""
    sizes = [part.size for part in parts]
    bounds = start + np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return np.concatenate([np.asarray(p, dtype=np.int64) for p in parts]), bounds


def _bits(values: object) -> np.ndarray:
    """float64 values stored as their int64 bits (plans hold floats this way)."""
    return np.asarray(values, dtype=np.float64).reshape(-1).view(np.int64)


#: Keys the coupled sampler's dense pass apart from its group streams.
_LADDER_DENSE = np.uint64(0x6B65796564)


def ladder_writer(ladder: Ladder, nwords: int) -> Writer:
    """The prepared write of ``ladder.entry`` on ``nwords`` words (docs/design.md §3).

    Entries up to the ladder's split are drawn sparsely (:mod:`memsim.noise.ladder`), in
    place, as one compiled call (:func:`~memsim.noise.writes.coupled_flips`). Above it, the
    flips of the split entry go into a mask and the rest, at rates
    ``(P_k - P_split) / (1 - P_split)``, come from one keyed dense pass united with it; the split
    depends on the ladder and the tensor size only, so every entry agrees on it.
    """
    groups = ladder.groups
    key = (id(groups), "ladder", ladder.entry, ladder.p01.shape, nwords, _thresholds())
    return _remembered(key, groups, lambda: _build_ladder_writer(ladder, nwords))


def _build_ladder_writer(ladder: Ladder, nwords: int) -> Writer:
    k = ladder.entry
    width = ladder.p01.shape[1]
    dtype = np.dtype(f"uint{width}")
    split = _split(ladder, nwords * width // 8)
    top = min(k, split)
    sparse = _sparse_coupled(ladder.groups, top, nwords, width) if top >= 0 else None
    if k <= split:
        if sparse is None:
            return _no_flips
        draw = sparse

        def in_place(address: int, nwords: int, seed: int) -> None:
            draw(address, address, nwords, seed)

        return in_place
    p01 = ladder.p01[split] if split >= 0 else np.zeros(width)
    p10 = ladder.p10[split] if split >= 0 else np.zeros(width)
    q01 = increment(p01, ladder.p01[k])
    q10 = increment(p10, ladder.p10[k])

    def united(address: int, nwords: int, seed: int) -> None:
        words = _array_at(address, nwords, dtype)
        mask = np.zeros_like(words) if split >= 0 else None
        if sparse is not None and mask is not None:
            sparse(address, mask.ctypes.data, nwords, seed)
        _dense_keyed(words, q01, q10, mask, seed)

    return united


def _sparse_coupled(
    groups: tuple[LadderGroup, ...], top: int, nwords: int, width: int
) -> Callable[[int, int, int, int], None] | None:
    """Entry ``top``'s sparse draw of every group with flips: ``draw(address, out, nwords,
    seed)`` into the words at ``out`` (``address`` itself, or a zeroed mask); None when no group
    flips."""
    planned = []
    for gi, g in enumerate(groups):
        plan = _group_plan(g, top, nwords)
        if plan is not None:
            planned.append((gi, g, plan))
    if not planned:
        return None
    n, nlev = len(planned), top + 1
    # One scratch row per possible worker (results never depend on how many run), as wide as
    # the widest superblock's words.
    threads = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]
    size = max(1 << (plan[6] - slot_bits(g.shifts.size)) for _, g, plan in planned)
    head = np.zeros(LADDER_HEAD + LADDER_ROW * n, dtype=np.int64)
    rows = head[LADDER_HEAD:].reshape(n, LADDER_ROW)
    shifts, shift_at = _packed([g.shifts for _, g, _ in planned], head.size)
    trials, trial_at = _packed([plan[5] for _, _, plan in planned], head.size + shifts.size)
    levels = _bits([[plan[i] for _, _, plan in planned] for i in (0, 1, 4)])
    head[:LADDER_HEAD] = [len(groups), n, nlev, UNION_WORDS_PER_HIT, threads, size, 0]
    head[6] = head.size + shifts.size + trials.size
    rows[:, 0] = [gi for gi, _, _ in planned]
    rows[:, 1], rows[:, 2] = shift_at[:-1], shift_at[1:]
    rows[:, 3], rows[:, 4] = trial_at[:-1], trial_at[1:]
    rows[:, 5] = [plan[6] for _, _, plan in planned]
    rows[:, 6] = _bits([plan[2] for _, _, plan in planned])
    rows[:, 7] = _bits([plan[3] for _, _, plan in planned])
    packed = np.concatenate([head, shifts, trials, levels])
    entry = COUPLED_FLIPS[width]
    address, plan_size = packed.ctypes.data, packed.size
    scratch = (threads, size, np.dtype(f"uint{width}"))

    def draw(words: int, out: int, nwords: int, seed: int, _keep: np.ndarray = packed) -> None:
        entry(words, out, nwords, seed, address, plan_size, _scratch_address(scratch))

    return draw


_SCRATCH = threading.local()


def _scratch_address(key: tuple[int, int, np.dtype]) -> int:
    """The address of zeroed per-worker rows (superblock masks) of ``key = (threads, size,
    dtype)``, kept per Python thread; the coupled kernels leave them zeroed.

    PERF: allocating 128 KiB per worker and call cost ~10 us of page faults, more than the
    flips at low p.
    """
    cache = getattr(_SCRATCH, "rows", None)
    if cache is None:
        cache = _SCRATCH.rows = {}
    hit = cache.get(key)
    if hit is None:
        threads, size, dtype = key
        rows = np.zeros((threads, max(1, size)), dtype=dtype)
        hit = cache[key] = (rows, rows.ctypes.data)  # the rows stay alive with their address
    return hit[1]


def _group_plan(
    g: LadderGroup, top: int, nwords: int
) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray, np.ndarray, int] | None:
    """Level bounds, the entry's rates, level hits per bit, bits per superblock and the
    superblock size (log2) (None: no flips). Called once per prepared write.
    """
    hi = g.pmax[: top + 1]
    if hi[-1] <= 0:
        return None
    lo = np.concatenate([[0.0], hi[:-1]])
    rates = increment(lo, hi)
    if rates.max() >= 1.0:
        # A level of rate 1 needs infinitely many hits; _split keeps such entries dense.
        raise ValueError(f"coupled sparse draw up to a candidate rate of 1 (entry {top})")
    block_log2 = superblock_log2(nwords, g.shifts.size)
    trials = block_trials(nwords, g.shifts.size, block_log2)
    mus = -np.log1p(-rates)
    return lo, hi, float(g.p01[top]), float(g.p10[top]), mus, trials, block_log2


def superblock_log2(nwords: int, npos: int) -> int:
    """Slots per superblock (log2) of coupled sampling: ``MAX_BLOCK_LOG2``, or the whole tensor."""
    return choose_block_log2(nwords, npos, 0.0)


def _split(ladder: Ladder, nbytes: int) -> int:
    """The last ladder entry drawn sparsely (-1: none); entries above it take the dense pass.

    An entry above the split costs the sparse draw of the split entry plus a dense pass, so the
    split is chosen per ladder to keep its worst ratio to independent draws smallest, in the
    cost model of ``SPLIT_COSTS``. It depends on the ladder and the tensor size only, so every
    entry of a ladder agrees on it. Tensors below ``DENSE_MIN_BYTES`` stay sparse while every
    candidate rate is at most ``COUPLED_SPARSE_MAX``.
    """
    small = nbytes < DENSE_MIN_BYTES
    dense_from = (DENSE_FROM, PARITY_DENSE_FROM)
    return _split_of(ladder.groups, ladder.p01.shape, small, COUPLED_SPARSE_MAX, dense_from)


@lru_cache(maxsize=256)
def _split_of(
    groups: tuple[LadderGroup, ...],
    shape: tuple[int, int],
    small: bool,
    sparse_max: float,
    dense_from: tuple[float, float],
) -> int:
    if not groups:
        return shape[0] - 1
    top = np.max([g.pmax for g in groups], axis=0)
    if small:
        return int(np.count_nonzero(top <= sparse_max)) - 1
    # Independent draws of symmetric rates (parity) stay sparse up to a higher rate.
    symmetric = all(np.array_equal(g.p01, g.p10) for g in groups)
    rate = np.sum([g.pmax * g.shifts.size for g in groups], axis=0) / shape[1]
    # Hits per bit (-log(1 - Pmax), repeats included) and rejected slots (positions that are not
    # bits of a group) cost draws too.
    hits = [-np.log1p(-np.minimum(g.pmax, 1 - 1e-12)) for g in groups]
    sparse = np.sum([h * (1 << slot_bits(g.shifts.size)) for h, g in zip(hits, groups)], axis=0)
    return _best_split(
        tuple(rate.tolist()), tuple((sparse / shape[1]).tolist()), dense_from[symmetric]
    )


#: The split's cost model, in units where a coupled sparse draw costs its hits per slot drawn
#: (``-log(1 - Pmax)`` per bit, times the slots drawn per bit): the keyed dense pass with its
#: mask, and independent draws, sparse (relative to a coupled sparse draw) and dense.
#: ``benchmarks/bitflip.py --coupled``-style timing (1M float32, one thread, CPU ms, ~50 per
#: unit at p >= 0.05, ~110 at 0.01): sparse coupled 2.85 at p = 0.046, 5.6 at 0.1, 11.2 at 0.2,
#: 17.5 at 0.3, 33 at 0.5; above the split, 9.7 more than the split entry's sparse draw;
#: independent 2.9 at 0.046, 6.5 at 0.1 (parity) and 10.45 dense. On the 22-point grid topped
#: with 0.2, 0.3 and 0.5 this splits at 0.1 (worst measured ratio 1.47, at 0.2 and above).
SPLIT_COSTS = {"coupled_dense": 0.19, "indep_sparse": 1.0, "indep_dense": 0.21}


@lru_cache(maxsize=256)
def _best_split(rates: tuple[float, ...], sparse: tuple[float, ...], dense_from: float) -> int:
    """:func:`_split`'s choice for mean candidate rates ``rates`` (non-decreasing) whose sparse
    draws cost ``sparse``; independent draws switch to dense at ``dense_from``."""
    costs = SPLIT_COSTS
    best, best_worst = len(rates) - 1, math.inf
    for split in range(-1, len(rates)):
        below = sparse[split] if split >= 0 else 0.0
        worst = 1.0
        for k, r in enumerate(rates):
            if r <= 0:
                continue
            # Independent block sampling draws slots and repeats as the coupled one does.
            indep = costs["indep_sparse"] * sparse[k] if r < dense_from else costs["indep_dense"]
            coupled = sparse[k] if k <= split else below + costs["coupled_dense"]
            worst = max(worst, coupled / indep)
        if worst < best_worst - 1e-12:
            best, best_worst = split, worst
    return best


def _dense_keyed(
    arr: np.ndarray, q01: np.ndarray, q10: np.ndarray, mask: np.ndarray | None, seed: int
) -> None:
    """Flip every bit with ``q01``/``q10`` by one keyed dense pass, united with ``mask``.

    The uniforms depend only on ``seed`` and the bit, so the flips at smaller ``q`` are a subset
    of those at larger ``q`` (see :func:`~memsim.noise.kernels.dense_keyed`).
    """
    width = arr.itemsize * 8
    t01, e01, f01 = _planes(q01, width)
    t10, e10, f10 = _planes(q10, width)
    keys = chunk_states(
        np.uint64(seed) ^ _LADDER_DENSE, 2
    )  # hash key and stream key of the main words, then the tail's
    per64 = 64 // width if _LITTLE_ENDIAN else 1
    n_main = arr.size - arr.size % per64 if per64 > 1 else 0
    no_mask = np.empty(0, dtype=np.uint64)
    if n_main:
        main = arr[:n_main].view(np.uint64)
        m = no_mask if mask is None else mask[:n_main].view(np.uint64)
        dense_keyed(
            main, t01, t10, np.uint64(e01), np.uint64(e10), np.uint64(f01), np.uint64(f10),
            chunk_states(keys[0, 1], -(-main.size // KEYED_CHUNK)), keys[0, 0], m, 0,
        )  # fmt: skip
    if n_main < arr.size:  # the last few words (all of them on big-endian machines), one per draw
        low = (1 << width) - 1
        tail = arr[n_main:]
        m = no_mask if mask is None else mask[n_main:]
        dense_keyed(
            tail, t01 & np.uint64(low), t10 & np.uint64(low),
            np.uint64(e01 & low), np.uint64(e10 & low), np.uint64(f01 & low), np.uint64(f10 & low),
            chunk_states(keys[1, 1], -(-tail.size // KEYED_CHUNK)), keys[1, 0], m, 0,
        )  # fmt: skip


def _use_dense(groups: tuple[Group, ...], width: int, nbytes: int) -> bool:
    if not _LITTLE_ENDIAN or nbytes < DENSE_MIN_BYTES:
        return False
    rate_sum = sum(max(g.p01, g.p10) * g.shifts.size for g in groups)
    symmetric = all(g.p01 == g.p10 <= PARITY_MAX for g in groups)
    return rate_sum / width >= (PARITY_DENSE_FROM if symmetric else DENSE_FROM)


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


def _dense(arr: np.ndarray, p01: np.ndarray, p10: np.ndarray, seed: int) -> None:
    """Flip every bit of ``arr`` with its position's ``p01``/``p10`` by bit-sliced comparisons."""
    width = arr.itemsize * 8
    t01, e01, f01 = _planes(p01, width)
    t10, e10, f10 = _planes(p10, width)
    state = seed_state(seed)
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
