"""Write-verify (write-check-correct): residual errors, pulses and rounds per write unit.

Sits between the cell model (``cell.py``, per-pulse failure probabilities) and the policies
and memory-system model: a policy asks how often a verified write still leaves a wrong bit
(the noise it injects), how many pulses a cell draws on average (energy) and how many rounds
a write unit of n cells needs (the SimPy model samples per-unit latency from ``rounds_pmf``).

Model (sources §4.1-4.2, derived again here with a verify margin and misreads):

* Each attempt pulses a cell; the new resistance is an independent draw. With probability
  ``p`` it lands beyond the read threshold (a wrong bit); with probability ``q >= p`` it lands
  outside the stricter verify window (``q`` counts the wrong bits and the marginal ones).
* After each pulse the still-active cells are read back. A cell outside the window is
  re-pulsed, except that the verify read misses it with probability ``misread_prob``
  (the cell then stops, and stays wrong if it was beyond the read threshold). A passing
  cell is taken to be read correctly (a spurious re-pulse is not modelled).
* At most ``1 + max_extra_rounds`` pulses. All cells of a unit are pulsed together, passed
  cells are inhibited: a unit needs as many rounds as its slowest cell (a max), while its
  energy is a sum over cells.

With ``a = q (1 - misread_prob)`` the per-cell pulse count P satisfies P(P > r) = a^r for
r < N = 1 + max_extra_rounds, and the residual error is
``p·ε·(1 − a^(N−1)) / (1 − a) + p·a^(N−1)``, which tends to the floor ``p·ε / (1 − a)``
as rounds grow. ``max_extra_rounds = 0`` is a plain single-pulse write with no verify read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from memsim.checks import check_non_negative, check_probability
from memsim.config import check_range
from memsim.device.cell import RRAMCell

Direction = Literal["set", "reset"]
#: An RRAMCell, or an object carrying one as ``.cell`` (a ProgrammingCondition).
CellLike = Any


def _cell_of(obj: CellLike) -> RRAMCell:
    cell = getattr(obj, "cell", obj)
    if not isinstance(cell, RRAMCell):
        raise TypeError(f"WriteVerify needs an RRAMCell or a ProgrammingCondition. Got {obj!r}.")
    return cell


@dataclass(frozen=True)
class AttemptProbs:
    """Per-pulse outcome probabilities of one write direction.

    Attributes
    ----------
    p_wrong : float
        The pulse leaves the cell beyond the read threshold (a bit error if not retried).
    q_verify : float
        The pulse leaves the cell outside the verify window (``>= p_wrong``).
    """

    p_wrong: float
    q_verify: float


@dataclass(frozen=True)
class WriteVerify:
    """Write, read back, re-pulse failed cells, up to ``max_extra_rounds`` times.

    Parameters
    ----------
    max_extra_rounds : int
        Extra pulse rounds after the first one (0 = single pulse, no verify).
    verify_margin_ln : float
        Verify window margin in ln-R units: a SET must land below R_th·exp(−margin) and a
        RESET above R_th·exp(+margin). Only used with a cell (``attempt_probs``).
    misread_prob : float
        Probability that the verify read takes a failed cell for a passed one.
    """

    max_extra_rounds: int
    verify_margin_ln: float = 0.0
    misread_prob: float = 0.0

    def __post_init__(self) -> None:
        check_range(
            "WriteVerify", "max_extra_rounds", self.max_extra_rounds, kind=int, low=0, high=64
        )
        check_non_negative("WriteVerify", "verify_margin_ln", self.verify_margin_ln)
        check_probability("misread_prob", self.misread_prob, owner="WriteVerify")

    @property
    def max_pulses(self) -> int:
        """Largest number of pulses a cell can get."""
        return 1 + self.max_extra_rounds

    @property
    def verifies(self) -> bool:
        """Whether a verify read follows each pulse."""
        return self.max_extra_rounds > 0

    # --- from a cell: the two directions ----------------------------------------------------

    def attempt_probs(self, cell: CellLike, direction: Direction) -> AttemptProbs:
        """Per-pulse probabilities of a SET (target LRS, logic 1) or a RESET (target HRS, 0).

        ``cell`` is an :class:`RRAMCell` or anything with a ``cell`` attribute (a
        :class:`~memsim.device.ProgrammingCondition`).
        """
        cell = _cell_of(cell)
        r_th = cell.read_threshold_ohm
        if direction == "set":
            return AttemptProbs(
                cell.p10, float(cell.lrs.sf(r_th * math.exp(-self.verify_margin_ln)))
            )
        if direction == "reset":
            return AttemptProbs(
                cell.p01, float(cell.hrs.cdf(r_th * math.exp(self.verify_margin_ln)))
            )
        raise ValueError(
            f"The 'direction' parameter of WriteVerify must be one of ['set', 'reset']. Got {direction!r}."
        )

    def residual_p01_p10(self, cell: CellLike) -> tuple[float, float]:
        """Error probabilities after write-verify, in channel terms (p01 from RESETs, p10 from SETs)."""
        reset = self.attempt_probs(cell, "reset")
        set_ = self.attempt_probs(cell, "set")
        return (
            self.residual_error(reset.p_wrong, reset.q_verify),
            self.residual_error(set_.p_wrong, set_.q_verify),
        )

    # --- per cell -----------------------------------------------------------------------------

    def _retry(self, p: float, q_verify: float | None) -> tuple[float, float]:
        check_probability("p", p, owner="WriteVerify")
        q = p if q_verify is None else q_verify
        check_probability("q_verify", q, owner="WriteVerify")
        if q < p:
            raise ValueError(
                f"The 'q_verify' parameter of WriteVerify must be at least p ({p}): the verify "
                f"window lies inside the read window. Got {q}."
            )
        return p, q * (1.0 - self.misread_prob)

    def retry_prob(self, p: float, q_verify: float | None = None) -> float:
        """Probability that a pulsed cell is pulsed again (``a`` in the module notes)."""
        return self._retry(p, q_verify)[1]

    def residual_error(self, p: float, q_verify: float | None = None) -> float:
        """Probability that a cell is wrong after the last round.

        Parameters
        ----------
        p : float
            Per-pulse probability of landing beyond the read threshold.
        q_verify : float, optional
            Per-pulse probability of landing outside the verify window; defaults to ``p``.
        """
        p, a = self._retry(p, q_verify)
        n = self.max_pulses
        if not self.verifies:
            return p
        eps = self.misread_prob
        missed = p * eps * (n - 1) if a == 1.0 else p * eps * (1.0 - a ** (n - 1)) / (1.0 - a)
        return float(min(1.0, missed + p * a ** (n - 1)))

    def expected_pulses(self, p: float, q_verify: float | None = None) -> float:
        """Mean pulses per cell, (1 − a^N) / (1 − a)."""
        _, a = self._retry(p, q_verify)
        return float(np.sum(a ** np.arange(self.max_pulses)))

    def expected_verify_reads(self, p: float, q_verify: float | None = None) -> float:
        """Mean verify reads per cell: one after each pulse, none without verify."""
        return self.expected_pulses(p, q_verify) if self.verifies else 0.0

    # --- per write unit -----------------------------------------------------------------------

    def rounds_cdf(self, groups: list[tuple[float, int]]) -> np.ndarray:
        """P(unit done within r rounds) for r = 1..N, for cells in groups of (retry prob, count)."""
        r = np.arange(1, self.max_pulses + 1)
        cdf = np.ones(self.max_pulses)
        for a, n in groups:
            check_range("WriteVerify", "unit_cells", n, kind=int, low=0)
            cdf *= (1.0 - a**r) ** n
        cdf[-1] = 1.0  # the last round ends every write, failed or not
        return cdf

    def rounds_pmf(self, p: float, unit_cells: int, q_verify: float | None = None) -> np.ndarray:
        """``pmf[r]`` = P(a unit of ``unit_cells`` cells pulsed together needs r + 1 rounds)."""
        return np.diff(self.rounds_cdf([(self.retry_prob(p, q_verify), unit_cells)]), prepend=0.0)

    def expected_rounds(self, p: float, unit_cells: int, q_verify: float | None = None) -> float:
        """Mean rounds per unit, Σ_{r=0}^{N−1} [1 − (1 − a^r)^n] (sources §4.2)."""
        pmf = self.rounds_pmf(p, unit_cells, q_verify)
        return float(np.dot(np.arange(1, len(pmf) + 1), pmf))

    def rounds_pmf_mixed(self, cell: CellLike, n_set: int, n_reset: int) -> np.ndarray:
        """Rounds pmf of a unit with ``n_set`` SET cells and ``n_reset`` RESET cells."""
        groups = [
            (self.retry_prob(pr.p_wrong, pr.q_verify), n)
            for pr, n in (
                (self.attempt_probs(cell, "set"), n_set),
                (self.attempt_probs(cell, "reset"), n_reset),
            )
        ]
        return np.diff(self.rounds_cdf(groups), prepend=0.0)

    def unit_energy_pj(
        self,
        p: float,
        unit_cells: int,
        e_pulse_pj: float,
        e_verify_pj_per_bit: float = 0.0,
        q_verify: float | None = None,
    ) -> float:
        """Mean energy of a unit: a sum over its cells of pulses and verify reads."""
        check_range("WriteVerify", "unit_cells", unit_cells, kind=int, low=0)
        pulses = self.expected_pulses(p, q_verify)
        reads = self.expected_verify_reads(p, q_verify)
        return float(unit_cells * (pulses * e_pulse_pj + reads * e_verify_pj_per_bit))

    def unit_latency_ns(
        self,
        p: float,
        unit_cells: int,
        t_pulse_ns: float,
        t_verify_ns: float = 0.0,
        q_verify: float | None = None,
    ) -> float:
        """Mean latency of a unit: its slowest cell's rounds × (pulse + verify read)."""
        t_round = t_pulse_ns + (t_verify_ns if self.verifies else 0.0)
        return self.expected_rounds(p, unit_cells, q_verify) * t_round
