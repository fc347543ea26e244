"""Flip probabilities per bit position, ladder layers and groups of equal rates.

This sits between the public :func:`memsim.noise.flip` call and the engines: it validates
``p01``/``p10`` (scalar or per position, MSB-first), applies the noisy-bit mask, resolves a
common-random-numbers ladder into independent *layers*, and groups bit positions of equal
rates so that sparse engines can skip over one homogeneous index space per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from typing import overload

import numpy as np

from memsim.checks import check_probabilities, probability_message
from memsim.formats import StorageFormat, get_format
from memsim.rng import child_seed

#: A flip probability: one for every bit position, or one per position (MSB first).
Rates = float | Sequence[float] | np.ndarray


def rate_vector(fmt: StorageFormat, value: object, name: str) -> np.ndarray:
    """``value`` (scalar or one probability per position) as a float64 vector of length width.

    Raises
    ------
    TypeError
        When ``value`` is not numeric.
    ValueError
        When it has the wrong length, or a value is NaN or outside [0, 1].
    """
    if isinstance(value, bool | np.bool_):
        raise TypeError(probability_message(name, value))
    try:
        arr = np.asarray(value.cpu() if hasattr(value, "cpu") else value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"The '{name}' parameter must be a probability or a sequence of {fmt.width} "
            f"probabilities (one per bit position of {fmt.name}). Got {value!r}."
        ) from None
    if arr.ndim != 0 and arr.shape != (fmt.width,):
        raise ValueError(
            f"The '{name}' parameter given per bit position must have length {fmt.width} "
            f"for {fmt.name}. Got shape {arr.shape}."
        )
    arr = check_probabilities(name, arr)
    return np.full(fmt.width, float(arr)) if arr.ndim == 0 else arr


@dataclass(frozen=True)
class Group:
    """Bit positions sharing one ``(p01, p10)`` pair; ``shifts`` are integer bit indices (LSB 0)."""

    shifts: np.ndarray  # int64, ascending position order
    p01: float
    p10: float


@dataclass(frozen=True, eq=False)  # hashed by identity: groups are shared through a cache
class LadderGroup:
    """Bit positions whose rates agree at every ladder entry; ``p01``/``p10`` per entry."""

    shifts: np.ndarray  # int64 bit indices (LSB 0), ascending position order
    p01: np.ndarray  # float64, one per ladder entry, non-decreasing
    p10: np.ndarray

    @cached_property
    def pmax(self) -> np.ndarray:
        """Candidate rate per entry, ``max(p01, p10)`` (non-decreasing; computed once, as the
        group is shared through a cache and read on every write; read-only)."""
        pmax = np.maximum(self.p01, self.p10)
        pmax.flags.writeable = False
        return pmax


@dataclass(frozen=True, eq=False)
class Ladder:
    """The whole masked ladder of a coupled call, the entry being drawn and the call's seed.

    ``p01``/``p10`` have shape ``(entries, width)`` (MSB-first, already masked); every entry of
    one ladder sees the same table and seed, and differs only in ``entry``.
    """

    p01: np.ndarray
    p10: np.ndarray
    entry: int
    seed: int

    @cached_property
    def groups(self) -> tuple[LadderGroup, ...]:
        """Positions with a non-zero rate somewhere, grouped by equal columns of the table."""
        return _ladder_groups(self.p01.tobytes(), self.p10.tobytes(), self.p01.shape)

    def tiled(self, per: int) -> Ladder:
        """The ladder of ``per`` codes packed side by side in one word (rates repeated)."""
        return Ladder(
            np.tile(self.p01, (1, per)), np.tile(self.p10, (1, per)), self.entry, self.seed
        )


@lru_cache(maxsize=64)
def _ladder_groups(
    p01_bytes: bytes, p10_bytes: bytes, shape: tuple[int, int]
) -> tuple[LadderGroup, ...]:
    """:attr:`Ladder.groups` of this table (shared between calls: never modify the arrays)."""
    p01 = np.frombuffer(p01_bytes, dtype=np.float64).reshape(shape)
    p10 = np.frombuffer(p10_bytes, dtype=np.float64).reshape(shape)
    columns = np.concatenate([p01, p10]).T  # one row per position: its rates at every entry
    active = np.flatnonzero(columns.any(axis=1))
    if active.size == 0:
        return ()
    width = shape[1]
    uniq, which = np.unique(columns[active], axis=0, return_inverse=True)
    which = which.reshape(-1)
    entries = shape[0]
    return tuple(
        LadderGroup(
            (width - 1 - active[which == g]).astype(np.int64),
            np.ascontiguousarray(col[:entries]),
            np.ascontiguousarray(col[entries:]),
        )
        for g, col in enumerate(uniq)
    )


@dataclass(frozen=True, eq=False)
class Layer:
    """One independent draw: per-position rates (MSB-first) and the seed it is sampled from."""

    p01: np.ndarray
    p10: np.ndarray
    seed: int
    #: Part of a ladder: engines must sample it the same way whatever the other layers are.
    coupled: bool = False

    @property
    def width(self) -> int:
        return self.p01.shape[0]

    @cached_property
    def groups(self) -> tuple[Group, ...]:
        """Positions with a non-zero rate, grouped by equal ``(p01, p10)`` (sorted by rates)."""
        # PERF: a channel writes with the same rates thousands of times; grouping them once saves
        # tens of microseconds per write (most of them cache misses right after a big layer).
        return _groups(self.p01.tobytes(), self.p10.tobytes())

    @property
    def is_noiseless(self) -> bool:
        return not self.groups

    def with_seed(self, seed: int) -> Layer:
        """The same rates drawn with another seed, carrying the cached ``groups`` (PERF: no
        hashing of the rates again on every write)."""
        other = replace(self, seed=seed)
        if "groups" in self.__dict__:  # cached_property's slot
            other.__dict__["groups"] = self.__dict__["groups"]
        return other


@lru_cache(maxsize=256)
def _groups(p01_bytes: bytes, p10_bytes: bytes) -> tuple[Group, ...]:
    """:attr:`Layer.groups` of these rates; shared between layers, so never modify the arrays."""
    p01 = np.frombuffer(p01_bytes, dtype=np.float64)
    p10 = np.frombuffer(p10_bytes, dtype=np.float64)
    active = np.flatnonzero((p01 > 0) | (p10 > 0))
    if active.size == 0:
        return ()
    a01, a10 = p01[active], p10[active]
    shifts = (p01.size - 1 - active).astype(np.int64)
    if (a01 == a01[0]).all() and (a10 == a10[0]).all():
        return (Group(shifts, float(a01[0]), float(a10[0])),)
    pairs, which = np.unique(np.stack([a01, a10], axis=1), axis=0, return_inverse=True)
    which = which.reshape(-1)
    return tuple(
        Group(shifts[which == g], float(r01), float(r10)) for g, (r01, r10) in enumerate(pairs)
    )


def _entry(
    fmt: StorageFormat, entry: object, mask: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """A ladder entry (scalar p, per-position vector, or a (p01, p10) pair) as masked vectors."""
    # No format is 2 bits wide, so a length-2 entry is always a (p01, p10) pair.
    if isinstance(entry, tuple | list | np.ndarray) and len(entry) == 2:
        p01, p10 = entry
    else:
        p01 = p10 = entry
    return (
        rate_vector(fmt, p01, f"ladder[{k}] (p01)") * mask,
        rate_vector(fmt, p10, f"ladder[{k}] (p10)") * mask,
    )


def ladder_layers(
    fmt: StorageFormat,
    p01: np.ndarray,
    p10: np.ndarray,
    mask: np.ndarray,
    ladder: Sequence[object],
    seed: int,
) -> LadderLayers:
    """Independent layers whose union is exactly Bernoulli(``p01``/``p10``) per bit.

    ``ladder`` is a non-decreasing sequence of settings; ``(p01, p10)`` (already masked) must be
    one of them, entry ``k``. Layer ``j`` has rate ``(P_j - P_{j-1}) / (1 - P_{j-1})`` per
    position and direction and seed ``child_seed(seed, "layer", j)``, so with the same seed the
    union of layers ``1..k`` grows with ``k``. The layers are built on first access; the result
    also carries the whole table (:attr:`LadderLayers.ladder`) for engines that sample the
    ladder directly.

    Raises
    ------
    ValueError
        For a ladder that is empty, decreases somewhere, or does not contain ``(p01, p10)``.
    """
    if isinstance(ladder, str) or not isinstance(ladder, Sequence | np.ndarray) or len(ladder) == 0:
        raise ValueError(
            f"ladder must be a non-empty sequence of probability settings. Got {ladder!r}."
        )
    frozen = _frozen(ladder)
    if frozen is None:
        t01, t10 = _ladder_table(fmt, mask, ladder)
        index = _entry_index(t01, t10)
    else:
        # PERF: a sweep writes with the same ladder thousands of times; checking its 22 entries
        # costs ~0.4 ms a write, more than the flips at low p.
        try:
            t01, t10, index = _cached_table(
                fmt.name, np.asarray(mask, dtype=np.float64).tobytes(), frozen
            )
        except (TypeError, ValueError):
            _ladder_table(fmt, mask, ladder)  # raises the same error, naming the entries as given
            raise
    k = index.get(_row_key(p01, p10))
    if k is None:
        raise ValueError(
            "With a ladder, (p01, p10) must equal one of its entries (on the noisy bits). "
            f"Got p01={_short(p01)}, p10={_short(p10)}; ladder={list(ladder)!r}."
        )
    return LadderLayers(Ladder(t01, t10, k, seed))


class LadderLayers(Sequence[Layer]):
    """The independent layers ``1..k`` of a ladder entry, built on first access.

    :attr:`ladder` is the whole masked table with the entry and the base seed: the CPU engine
    samples it in one pass (nested Poisson hits per level) and never builds the layers.
    """

    def __init__(self, ladder: Ladder) -> None:
        self.ladder = ladder

    def __len__(self) -> int:
        return self.ladder.entry + 1

    @overload
    def __getitem__(self, i: int) -> Layer: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Layer]: ...

    def __getitem__(self, i: int | slice) -> Layer | Sequence[Layer]:
        return self._layers[i]

    @property
    def is_noiseless(self) -> bool:
        k = self.ladder.entry
        return not (self.ladder.p01[k].any() or self.ladder.p10[k].any())

    def tiled(self, per: int) -> LadderLayers:
        """The layers of ``per`` codes packed side by side in one word (rates repeated)."""
        return LadderLayers(self.ladder.tiled(per))

    @cached_property
    def _layers(self) -> list[Layer]:
        t01, t10, seed = self.ladder.p01, self.ladder.p10, self.ladder.seed
        layers = []
        for j in range(self.ladder.entry + 1):
            prev01 = t01[j - 1] if j else np.zeros_like(t01[0])
            prev10 = t10[j - 1] if j else np.zeros_like(t10[0])
            layers.append(
                Layer(
                    increment(prev01, t01[j]),
                    increment(prev10, t10[j]),
                    child_seed(seed, "layer", j + 1),
                    coupled=True,
                )
            )
        return layers


def _frozen(ladder: Sequence[object]) -> tuple[object, ...] | None:
    """``ladder`` as nested tuples of floats (a cache key), or None if it holds anything else."""
    if all(type(e) is float for e in ladder):
        return tuple(ladder)
    try:
        return tuple(_freeze(e) for e in ladder)
    except (TypeError, ValueError):
        return None


def _freeze(e: object) -> object:
    if isinstance(e, bool | np.bool_):
        raise TypeError(e)
    if isinstance(e, int | float | np.integer | np.floating):
        return float(e)
    if isinstance(e, tuple | list) or (isinstance(e, np.ndarray) and e.ndim == 1):
        return tuple(_freeze(x) for x in e)
    raise TypeError(e)


@lru_cache(maxsize=64)
def _cached_table(
    fmt: str, mask_bytes: bytes, ladder: tuple[object, ...]
) -> tuple[np.ndarray, np.ndarray, dict[tuple[bytes, bytes], int]]:
    t01, t10 = _ladder_table(get_format(fmt), np.frombuffer(mask_bytes, dtype=np.float64), ladder)
    t01.flags.writeable = t10.flags.writeable = False  # shared between calls
    return t01, t10, _entry_index(t01, t10)


def _entry_index(t01: np.ndarray, t10: np.ndarray) -> dict[tuple[bytes, bytes], int]:
    """The first entry of each distinct (p01, p10) row pair, keyed by the rows' bytes."""
    index: dict[tuple[bytes, bytes], int] = {}
    for k in range(t01.shape[0]):
        index.setdefault(_row_key(t01[k], t10[k]), k)
    return index


def _row_key(p01: np.ndarray, p10: np.ndarray) -> tuple[bytes, bytes]:
    # + 0.0 turns -0.0 into 0.0: equal rates must have equal bytes.
    return (np.asarray(p01, np.float64) + 0.0).tobytes(), (
        np.asarray(p10, np.float64) + 0.0
    ).tobytes()


def _ladder_table(
    fmt: StorageFormat, mask: np.ndarray, ladder: Sequence[object]
) -> tuple[np.ndarray, np.ndarray]:
    """The checked, masked ladder as two ``(entries, width)`` tables (p01, p10)."""
    entries = [_entry(fmt, e, mask, k) for k, e in enumerate(ladder)]
    for k in range(1, len(entries)):
        if (entries[k][0] < entries[k - 1][0]).any() or (entries[k][1] < entries[k - 1][1]).any():
            raise ValueError(
                f"ladder must be non-decreasing (elementwise, on the noisy bits): entry {k} "
                f"({ladder[k]!r}) is below entry {k - 1} ({ladder[k - 1]!r})."
            )
    return np.stack([e[0] for e in entries]), np.stack([e[1] for e in entries])


def increment(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Rate r with 1 - (1 - prev)(1 - r) = cur; zero where prev is already 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(prev < 1, (cur - prev) / (1 - prev), 0.0)
    return np.clip(r, 0.0, 1.0)


def _short(v: np.ndarray) -> str:
    return (
        repr(float(v[v > 0][0]))
        if (v > 0).any() and np.all(v[v > 0] == v[v > 0][0])
        else repr(v.tolist())
    )
