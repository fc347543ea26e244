"""The ``two_t_two_r`` policy: differential cells, two complementary devices per bit.

Fills the ``cell`` slot of a storage spec (:mod:`policies.stage`). A bit is read by comparing
its two devices (sources §3.3): it errs when the device meant to be in LRS shows a
higher resistance than its HRS twin, p = Φ(−(μ_H − μ_L) / sqrt(σ_L² + σ_H² + σ_SA²)).

Accuracy side: the swept single-ended ``p`` (equal-error threshold, p = Φ(−Δμ/(σ_L + σ_H)))
is mapped to the differential error on the same devices,
``p_2t2r = Φ(−κ·Φ⁻¹(1 − p))`` with ``κ = (σ_L + σ_H) / sqrt(σ_L² + σ_H² + σ_SA²)``, using the
log-sigmas of the programming condition (the composed ``low_energy`` one, else
``condition``). At the condition's own ``p_bf`` this is exactly ``RRAMCell.p_2t2r``.

Cost side (:mod:`policies.costs`): two devices per bit; every pulsed bit programs one SET and
one RESET device (E = E_SET + E_RESET per bit, sources §3.3, §6); reads sense both devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import norm

from memsim.config import check_range
from policies.costs import VerifyTerms, WriteCost
from policies.impl.low_energy import cached_condition
from policies.stage import Stage, register

if TYPE_CHECKING:
    from memsim.device import WriteVerify as VerifyModel
    from policies.stage import ConditionStage


@register("two_t_two_r")
@dataclass(frozen=True)
class TwoTTwoR(Stage):
    """Differential 2T2R cells.

    Parameters
    ----------
    condition : str
        Programming condition whose log-sigmas map the swept ``p`` (a composed ``low_energy``
        stage takes precedence).
    sigma_sa_ln : float or None
        Sense-amplifier offset in ln-R units; ``None``: 0 on the accuracy side, the device
        bundle's ``read.sigma_sa_ln`` on the cost side.
    """

    condition: str = "nominal"
    sigma_sa_ln: float | None = None

    slot = "cell"

    def __post_init__(self) -> None:
        if self.sigma_sa_ln is not None:
            check_range(
                "two_t_two_r",
                "sigma_sa_ln",
                self.sigma_sa_ln,
                low=0.0,
                high=math.inf,
                high_open=True,
            )
        cached_condition(self.condition)

    def cost_terms(self, cost: WriteCost) -> WriteCost:
        """Two devices per bit, the differential read error per pulse."""
        sigma_sa = cost.device.read.sigma_sa_ln if self.sigma_sa_ln is None else self.sigma_sa_ln
        return cost.replace(cell=DifferentialCell(cost.condition.p_2t2r(sigma_sa)))

    def gain(self, condition_stage: ConditionStage | None = None) -> float:
        """κ of the module notes for the devices in use."""
        cond = (
            condition_stage.load()
            if condition_stage is not None
            else cached_condition(self.condition)
        )
        s_l, s_h = cond.cell.lrs.sigma_ln, cond.cell.hrs.sigma_ln
        return (s_l + s_h) / math.sqrt(s_l**2 + s_h**2 + (self.sigma_sa_ln or 0.0) ** 2)

    def error_probs(
        self, q01: np.ndarray, q10: np.ndarray, condition_stage: ConditionStage | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Differential read error for single-ended errors ``q01``/``q10`` (module notes)."""
        k = self.gain(condition_stage)
        return norm.sf(k * norm.isf(q01)), norm.sf(k * norm.isf(q10))


@dataclass(frozen=True)
class DifferentialCell:
    """2T2R on the cost side: a pulsed bit programs one SET and one RESET device.

    Parameters
    ----------
    p_error : float
        Per-pulse error of the differential read (both directions).
    """

    p_error: float

    devices_per_bit = 2

    def pulsed_devices(self, set_bits: float, reset_bits: float) -> tuple[float, float]:
        pulsed = set_bits + reset_bits
        return pulsed, pulsed

    def verify_terms(
        self, cost: WriteCost, model: VerifyModel, n_set_unit: int, n_reset_unit: int
    ) -> VerifyTerms:
        pulses = model.expected_pulses(self.p_error)
        reads = model.expected_verify_reads(self.p_error)
        rounds = model.rounds_pmf(self.p_error, n_set_unit + n_reset_unit)
        return VerifyTerms(
            pulses=(pulses, pulses),
            reads=(reads, reads),
            rounds_pmf=tuple(float(x) for x in rounds),
            verifies=model.verifies,
        )
