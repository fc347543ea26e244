"""The ``data_comparison_write`` policy: only cells whose value changes are pulsed.

Fills the ``comparison`` slot of a storage spec (:mod:`policies.stage`).

Cost side, per trace record (:mod:`policies.costs`): the previous content of the tensor's
addresses is assumed to be the same layer's output for an earlier input (activation buffers
are reused per layer), with the same per-bit statistics and independent of the new content,
so position ``i`` changes 0→1 with probability ``(1 − f_i)·f_i`` and 1→0 with ``f_i·(1 − f_i)``
(``f_i`` = the record's ``ones_fraction``). Only those cells are pulsed; with ``pre_read`` the
old words are read first (``pre_read`` energy, every cell); without it, a shadow copy of what
is stored tells the controller what changed at no cost. For known old and new contents,
:func:`exact_energy_pj` counts the transitions exactly.

Accuracy side: unchanged (see :mod:`policies.accuracy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memsim.device import ProgrammingCondition, count_transitions, write_energy_breakdown
from policies.costs import WriteCost, unchanged_unit_prob
from policies.stage import Stage, register


@register("data_comparison_write")
@dataclass(frozen=True)
class DataComparisonWrite(Stage):
    """Pulse only the cells that change.

    Parameters
    ----------
    pre_read : bool
        Read the old word before writing (costs ``e_read_pj_per_bit`` per cell); ``False``
        models a controller that keeps a shadow copy of what is stored.
    """

    pre_read: bool = True

    slot = "comparison"

    def cost_terms(self, cost: WriteCost) -> WriteCost:
        """Only the changed cells are pulsed (a unit with none takes no round); with
        ``pre_read`` every device is read first."""
        return cost.replace(
            pulsed=(cost.n01, cost.n01),
            unchanged_units=unchanged_unit_prob(cost),
            pre_read=self.pre_read,
            logic=(*cost.logic, "write_compare"),
            shadow_bits=0 if self.pre_read else cost.rram_bits,  # check bits too
        )


def exact_energy_pj(
    old: np.ndarray,
    new: np.ndarray,
    condition: ProgrammingCondition,
    *,
    scheme: str = "dcw",
    mask: int | None = None,
) -> dict[str, float]:
    """Single-pulse write energy by category for known old and new stored words.

    Parameters
    ----------
    old, new : ndarray of unsigned integers
        Stored words before and after the write (same dtype).
    condition : ProgrammingCondition
        Pulse and read energies.
    scheme : str
        ``"dcw"`` (changed cells only, plus the pre-read of every cell), ``"plain"``,
        ``"2t2r"`` or ``"2t2r_plain"`` (see :mod:`memsim.device.transitions`).
    mask : int, optional
        RRAM bits of each word (e.g. the mantissa under ``sram_exponent``).

    Returns
    -------
    dict
        ``rram_set``, ``rram_reset`` and ``pre_read`` energies in pJ.
    """
    counts = count_transitions(old, new, mask=mask)
    return {k: float(v) for k, v in write_energy_breakdown(counts, condition, scheme).items()}
