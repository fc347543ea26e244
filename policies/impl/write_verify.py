"""The ``write_verify`` policy: write, read back, re-pulse the failed cells (write-check-correct).

Fills the ``verify`` slot of a storage spec (:mod:`policies.stage`). The model itself is the
device's (:class:`memsim.device.verify.WriteVerify`, sources §4):

* accuracy side: each direction's per-pulse error ``p`` becomes the residual error after
  ``1 + max_extra_rounds`` pulses (``p^(k+1)`` without misreads);
* cost side: expected pulses and verify reads per cell for energy, the distribution of
  rounds of a write unit (a max over its cells) for latency, ``t_verify_ns`` = read time.

The verify margin and misread probability come from the device bundle on the cost side; the
accuracy side has only the swept ``p`` and uses no margin and ``misread_prob`` (default 0).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from memsim.checks import check_probability
from memsim.config import check_range
from memsim.device import WriteVerify as VerifyModel
from policies.costs import WriteCost
from policies.stage import Stage, register

if TYPE_CHECKING:
    from memsim.device.params import DeviceParams


@register("write_verify")
@dataclass(frozen=True)
class WriteVerify(Stage):
    """Write-verify with up to ``max_extra_rounds`` extra pulse rounds.

    Parameters
    ----------
    max_extra_rounds : int
        Extra rounds after the first pulse, in [0, 64] (the default 7 gives the 8 pulses of
        sources §1 row 23; 0 is a single pulse without verify reads).
    misread_prob : float or None
        Probability that a verify read passes a failed cell. ``None``: 0 on the accuracy side,
        the device bundle's value on the cost side.
    """

    max_extra_rounds: int = 7
    misread_prob: float | None = None

    slot = "verify"

    def __post_init__(self) -> None:
        check_range(
            "write_verify", "max_extra_rounds", self.max_extra_rounds, kind=int, low=0, high=64
        )
        if self.misread_prob is not None:
            check_probability("misread_prob", self.misread_prob, owner="write_verify")

    def scheme(self, device: DeviceParams | None = None) -> VerifyModel:
        """The device-level model: the bundle's margin and misreads, or none without a device."""
        if device is None:
            return VerifyModel(self.max_extra_rounds, 0.0, self.misread_prob or 0.0)
        model = device.write_verify(self.max_extra_rounds)
        return (
            model if self.misread_prob is None else replace(model, misread_prob=self.misread_prob)
        )

    def cost_terms(self, cost: WriteCost) -> WriteCost:
        """Expected pulses and verify reads of the cell model, rounds of a write unit."""
        model = self.scheme(cost.device)
        set_bits, reset_bits = cost.pulsed_bits
        rram = cost.rram_bits
        # Per unit that changes: a comparison write leaves the others unpulsed.
        changed = rram * (1.0 - cost.unchanged_units)
        frac = (set_bits / changed, reset_bits / changed) if changed > 0 else (0.0, 0.0)
        n_set, n_reset = (int(round(cost.unit_bits * x)) for x in frac)
        terms = cost.cell.verify_terms(cost, model, n_set, n_reset)
        logic = (*cost.logic, "verify_compare") if terms.verifies else cost.logic
        return cost.replace(verify=terms, logic=logic)

    def error_probs(self, q01: np.ndarray, q10: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual error per position and direction after the last round."""
        model = self.scheme()
        residual = np.vectorize(model.residual_error, otypes=[float])
        return residual(q01), residual(q10)
