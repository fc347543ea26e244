"""Data-dependent write energy: which cells a write changes, and what pulsing them costs.

Given the old and new contents of RRAM words (unsigned-integer views of the stored tensor),
count the 0→1 (SET) and 1→0 (RESET) transitions and the unchanged cells, then price a write
under one of the schemes of sources §6:

* ``"plain"``: every cell is pulsed towards its new value,
  E = (n01 + n11)·E_SET + (n10 + n00)·E_RESET;
* ``"dcw"`` (data-comparison write): the old word is read first and only changed cells are
  pulsed, E = n01·E_SET + n10·E_RESET + n·E_read;
* ``"2t2r"``: two complementary devices per bit with data comparison; a changed bit costs one
  SET and one RESET, E = (n01 + n10)·(E_SET + E_RESET) + n·2·E_read (the pre-read senses
  both devices of each pair);
* ``"2t2r_plain"``: 2T2R pulsing every pair, E = n·(E_SET + E_RESET).

Logic 1 is the LRS (see ``cell.py``): a 0→1 change is a SET.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from memsim.config import check_choice
from memsim.device.conditions import ProgrammingCondition

SCHEMES = ("plain", "dcw", "2t2r", "2t2r_plain")


class TransitionCounts(NamedTuple):
    """Cell counts of one write: 0→1, 1→0, 0→0 and 1→1 (ints, or arrays per word)."""

    n01: int | np.ndarray
    n10: int | np.ndarray
    n00: int | np.ndarray
    n11: int | np.ndarray

    @property
    def n_cells(self) -> int | np.ndarray:
        return self.n01 + self.n10 + self.n00 + self.n11

    @property
    def n_changed(self) -> int | np.ndarray:
        return self.n01 + self.n10


def _as_uint(x: np.ndarray | object, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind != "u":
        raise TypeError(
            f"The '{name}' parameter of count_transitions must be an unsigned-integer array. Got dtype {arr.dtype}."
        )
    return arr


def count_transitions(
    old: np.ndarray,
    new: np.ndarray,
    *,
    mask: int | None = None,
    per_word: bool = False,
) -> TransitionCounts:
    """Count cell transitions between two arrays of stored words.

    Parameters
    ----------
    old, new : ndarray of unsigned integers
        Stored contents before and after the write (same dtype, broadcastable shapes).
    mask : int, optional
        Only bits set in ``mask`` are RRAM cells (e.g. the mantissa when sign and exponent
        live in SRAM); default all bits of the dtype.
    per_word : bool
        Return arrays of counts per word instead of totals.

    Returns
    -------
    TransitionCounts
    """
    o, w = _as_uint(old, "old"), _as_uint(new, "new")
    if o.dtype != w.dtype:
        raise TypeError(
            f"count_transitions needs old and new of one dtype. Got {o.dtype} and {w.dtype}."
        )
    full = np.iinfo(o.dtype).max
    m = o.dtype.type(full if mask is None else mask)
    if mask is not None and not 0 <= mask <= full:
        raise ValueError(
            f"The 'mask' parameter of count_transitions must fit in {o.dtype}. Got {mask}."
        )
    counts = [
        np.bitwise_count(bits).astype(np.int64)
        for bits in (~o & w & m, o & ~w & m, ~o & ~w & m, o & w & m)
    ]
    if per_word:
        return TransitionCounts(*counts)
    return TransitionCounts(*(int(c.sum()) for c in counts))


def write_energy_breakdown(
    counts: TransitionCounts,
    condition: ProgrammingCondition,
    scheme: str = "plain",
) -> dict[str, float | np.ndarray]:
    """Write energy split into the memory model's categories.

    Returns
    -------
    dict
        ``{"rram_set": ..., "rram_reset": ..., "pre_read": ...}`` in pJ (arrays when the
        counts are per word). Keys match :data:`memsim.timing.plan.ENERGY_CATEGORIES`.
    """
    check_choice("write_energy_pj", "scheme", scheme, SCHEMES)
    c = condition
    n = counts.n_cells
    n_set: int | np.ndarray
    n_reset: int | np.ndarray
    reads: int | np.ndarray
    if scheme == "plain":
        n_set, n_reset, reads = counts.n01 + counts.n11, counts.n10 + counts.n00, 0
    elif scheme == "dcw":
        n_set, n_reset, reads = counts.n01, counts.n10, n
    elif scheme == "2t2r":
        n_set = n_reset = counts.n_changed
        reads = 2 * n
    else:  # 2t2r_plain
        n_set = n_reset = n
        reads = 0
    return {
        "rram_set": n_set * c.e_set_pj,
        "rram_reset": n_reset * c.e_reset_pj,
        "pre_read": reads * c.e_read_pj_per_bit,
    }


def write_energy_pj(
    counts: TransitionCounts,
    condition: ProgrammingCondition,
    scheme: str = "plain",
) -> float | np.ndarray:
    """Total single-pulse write energy for ``counts`` under ``scheme`` (see module notes)."""
    parts = write_energy_breakdown(counts, condition, scheme)
    return parts["rram_set"] + parts["rram_reset"] + parts["pre_read"]
