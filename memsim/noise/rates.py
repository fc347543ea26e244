"""Flip probabilities per bit position, ladder layers and groups of equal rates.

This sits between the public :func:`memsim.noise.flip` call and the engines: it validates
``p01``/``p10`` (scalar or per position, MSB-first), applies the noisy-bit mask, resolves a
common-random-numbers ladder into independent *layers*, and groups bit positions of equal
rates so that sparse engines can skip over one homogeneous index space per group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from memsim.checks import check_probabilities, probability_message
from memsim.formats import StorageFormat
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
) -> list[Layer]:
    """Independent layers whose union is exactly Bernoulli(``p01``/``p10``) per bit.

    ``ladder`` is a non-decreasing sequence of settings; ``(p01, p10)`` (already masked) must be
    one of them, entry ``k``. Layer ``j`` has rate ``(P_j - P_{j-1}) / (1 - P_{j-1})`` per
    position and direction and seed ``child_seed(seed, "layer", j)``, so with the same seed the
    union of layers ``1..k`` grows with ``k``.

    Raises
    ------
    ValueError
        For a ladder that is empty, decreases somewhere, or does not contain ``(p01, p10)``.
    """
    if isinstance(ladder, str) or not isinstance(ladder, Sequence | np.ndarray) or len(ladder) == 0:
        raise ValueError(
            f"ladder must be a non-empty sequence of probability settings. Got {ladder!r}."
        )
    entries = [_entry(fmt, e, mask, k) for k, e in enumerate(ladder)]
    for k in range(1, len(entries)):
        if (entries[k][0] < entries[k - 1][0]).any() or (entries[k][1] < entries[k - 1][1]).any():
            raise ValueError(
                f"ladder must be non-decreasing (elementwise, on the noisy bits): entry {k} "
                f"({ladder[k]!r}) is below entry {k - 1} ({ladder[k - 1]!r})."
            )
    matches = [
        k
        for k, (e01, e10) in enumerate(entries)
        if np.array_equal(e01, p01) and np.array_equal(e10, p10)
    ]
    if not matches:
        raise ValueError(
            "With a ladder, (p01, p10) must equal one of its entries (on the noisy bits). "
            f"Got p01={_short(p01)}, p10={_short(p10)}; ladder={list(ladder)!r}."
        )
    k = matches[0]
    layers = []
    prev01 = np.zeros_like(p01)
    prev10 = np.zeros_like(p10)
    for j in range(k + 1):
        cur01, cur10 = entries[j]
        layers.append(
            Layer(
                _increment(prev01, cur01),
                _increment(prev10, cur10),
                child_seed(seed, "layer", j + 1),
                coupled=True,
            )
        )
        prev01, prev10 = cur01, cur10
    return layers


def _increment(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
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
