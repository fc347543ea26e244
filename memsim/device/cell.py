"""RRAM cell statistics: lognormal resistance states, a read threshold, bit-flip probabilities.

This is the bottom of the data flow: a programming condition (``conditions.py``) fixes the two
resistance distributions of a cell, this module turns them into the probabilities the noise
channel injects (``p01``, ``p10``) and into the error rate of a 2T2R differential read.

Conventions (used everywhere in memsim, see sources §6):

* logic 1 is the low-resistance state (LRS), logic 0 the high-resistance state (HRS);
* a 0→1 write is a SET (HRS → LRS), a 1→0 write is a RESET (LRS → HRS);
* a single-ended read returns 1 when ``R < R_th`` and 0 when ``R >= R_th``;
* ``p01`` is the probability that a stored 0 (HRS) reads as 1, ``CDF_HRS(R_th)``; ``p10`` is
  the probability that a stored 1 (LRS) reads as 0, ``1 - CDF_LRS(R_th)``.

All resistances are in ohms; log-sigmas are standard deviations of the natural log of R.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from memsim.checks import check_non_negative, check_positive, check_probability
from memsim.config import check_range


@dataclass(frozen=True)
class LognormalState:
    """One resistance state after a write: ``ln R ~ Normal(ln median_ohm, sigma_ln**2)``.

    Parameters
    ----------
    median_ohm : float
        Median resistance (> 0), ohms.
    sigma_ln : float
        Standard deviation of ``ln R`` (> 0).
    """

    median_ohm: float
    sigma_ln: float

    def __post_init__(self) -> None:
        check_positive("LognormalState", "median_ohm", self.median_ohm)
        check_positive("LognormalState", "sigma_ln", self.sigma_ln)

    @property
    def mu_ln(self) -> float:
        """Mean of ``ln R``."""
        return math.log(self.median_ohm)

    def _z(self, r_ohm: float | np.ndarray) -> np.ndarray:
        """Standard score of ``ln r_ohm``; −inf for non-positive ``r_ohm``."""
        r = np.asarray(r_ohm, dtype=float)
        with np.errstate(divide="ignore"):
            return (np.log(np.where(r > 0, r, 0.0)) - self.mu_ln) / self.sigma_ln

    def cdf(self, r_ohm: float | np.ndarray) -> float | np.ndarray:
        """P(R <= r_ohm); 0 for non-positive ``r_ohm``."""
        out = norm.cdf(self._z(r_ohm))
        return float(out) if out.ndim == 0 else out

    def sf(self, r_ohm: float | np.ndarray) -> float | np.ndarray:
        """P(R > r_ohm), computed without cancellation in the far tail."""
        out = norm.sf(self._z(r_ohm))
        return float(out) if out.ndim == 0 else out

    def pdf(self, r_ohm: float | np.ndarray) -> float | np.ndarray:
        """Density of R per ohm (0 for non-positive ``r_ohm``)."""
        r = np.asarray(r_ohm, dtype=float)
        safe = np.where(r > 0, r, 1.0)
        out = np.where(
            r > 0,
            norm.pdf((np.log(safe) - self.mu_ln) / self.sigma_ln) / (self.sigma_ln * safe),
            0.0,
        )
        return float(out) if out.ndim == 0 else out

    def ppf(self, q: float) -> float:
        """Resistance below which a fraction ``q`` of cells lies."""
        check_probability("q", q, owner="LognormalState.ppf", low_open=True, high_open=True)
        return float(math.exp(self.mu_ln + self.sigma_ln * norm.ppf(q)))

    def sample(self, n: int, rng: np.random.Generator | int) -> np.ndarray:
        """``n`` resistances drawn with ``rng`` (a Generator, or an int seed)."""
        check_range("LognormalState.sample", "n", n, kind=int, low=0)
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return np.exp(gen.normal(self.mu_ln, self.sigma_ln, size=n))


@dataclass(frozen=True)
class RRAMCell:
    """A 1-bit RRAM cell: its LRS (logic 1) and HRS (logic 0) distributions and read threshold.

    Parameters
    ----------
    lrs, hrs : LognormalState
        Resistance after a SET and after a RESET. The HRS median must exceed the LRS median.
    threshold_ohm : float or None
        Read threshold. ``None`` uses the symmetric (equal-error) threshold, where
        ``p01 == p10 == p_bf``. An explicit threshold must lie strictly between the two
        medians (outside, one state would be misread more often than not).
    """

    lrs: LognormalState
    hrs: LognormalState
    threshold_ohm: float | None = None

    def __post_init__(self) -> None:
        for name in ("lrs", "hrs"):
            if not isinstance(getattr(self, name), LognormalState):
                raise TypeError(
                    f"The '{name}' parameter of RRAMCell must be a LognormalState. Got {getattr(self, name)!r}."
                )
        if not self.hrs.median_ohm > self.lrs.median_ohm:
            raise ValueError(
                "The 'hrs.median_ohm' parameter of RRAMCell must be above 'lrs.median_ohm' "
                f"({self.lrs.median_ohm}). Got {self.hrs.median_ohm}."
            )
        if self.threshold_ohm is not None:
            check_range(
                "RRAMCell",
                "threshold_ohm",
                self.threshold_ohm,
                low=self.lrs.median_ohm,
                high=self.hrs.median_ohm,
                low_open=True,
                high_open=True,
            )

    @property
    def ratio(self) -> float:
        """Median resistance ratio R_HRS / R_LRS (> 1)."""
        return self.hrs.median_ohm / self.lrs.median_ohm

    @property
    def symmetric_threshold_ohm(self) -> float:
        """The equal-error threshold: ln R_th = (σ_H μ_L + σ_L μ_H) / (σ_L + σ_H) (sources §3.1)."""
        s_l, s_h = self.lrs.sigma_ln, self.hrs.sigma_ln
        return math.exp((s_h * self.lrs.mu_ln + s_l * self.hrs.mu_ln) / (s_l + s_h))

    @property
    def read_threshold_ohm(self) -> float:
        """The threshold in use: the explicit one, or the symmetric one."""
        return self.symmetric_threshold_ohm if self.threshold_ohm is None else self.threshold_ohm

    @property
    def p01(self) -> float:
        """P(stored 0 / HRS reads as 1) = CDF_HRS(R_th)."""
        return float(self.hrs.cdf(self.read_threshold_ohm))

    @property
    def p10(self) -> float:
        """P(stored 1 / LRS reads as 0) = 1 - CDF_LRS(R_th)."""
        return float(self.lrs.sf(self.read_threshold_ohm))

    @property
    def p_bf(self) -> float:
        """Bit-flip probability of a single-ended read.

        With the symmetric threshold this is the closed form Φ(−ln(R_H/R_L) / (σ_L + σ_H))
        (sources §3.1); with an explicit threshold it is the mean of ``p01`` and ``p10`` (the
        error rate for data with as many 0s as 1s).
        """
        if self.threshold_ohm is None:
            return float(norm.cdf(-math.log(self.ratio) / (self.lrs.sigma_ln + self.hrs.sigma_ln)))
        return 0.5 * (self.p01 + self.p10)

    def p_2t2r(self, sigma_sa_ln: float = 0.0) -> float:
        """Error probability of a 2T2R differential read (sources §3.3).

        The two devices of a bit are independent; the read fails when the device meant to
        be in LRS shows a higher resistance than its HRS twin, plus a sense-amplifier offset
        ``sigma_sa_ln`` in ln-R units: Φ(−(μ_H − μ_L) / sqrt(σ_L² + σ_H² + σ_SA²)).
        """
        check_non_negative("RRAMCell.p_2t2r", "sigma_sa_ln", sigma_sa_ln)
        spread = math.sqrt(self.lrs.sigma_ln**2 + self.hrs.sigma_ln**2 + sigma_sa_ln**2)
        return float(norm.cdf(-math.log(self.ratio) / spread))

    def with_threshold(self, threshold_ohm: float | None) -> RRAMCell:
        """The same devices read with another threshold."""
        return RRAMCell(self.lrs, self.hrs, threshold_ohm)


# --- calibration: from a target p_bf back to device statistics -------------------------------


def _z_for(p_bf: float, owner: str) -> float:
    check_probability("p_bf", p_bf, owner=owner, low_open=True, high=0.5, high_open=True)
    return float(norm.isf(p_bf))


def sigma_sum_for_pbf(p_bf: float, ratio: float) -> float:
    """σ_L + σ_H giving a symmetric bit-flip probability ``p_bf`` at median ratio ``ratio``.

    Inverse of :attr:`RRAMCell.p_bf`: σ_L + σ_H = ln(ratio) / Φ⁻¹(1 − p_bf) (sources §3.1).

    Parameters
    ----------
    p_bf : float
        Target probability in (0, 0.5).
    ratio : float
        R_HRS / R_LRS median ratio, > 1.
    """
    check_range(
        "sigma_sum_for_pbf", "ratio", ratio, low=1.0, low_open=True, high=math.inf, high_open=True
    )
    return math.log(ratio) / _z_for(p_bf, "sigma_sum_for_pbf")


def ratio_for_pbf(p_bf: float, sigma_lrs_ln: float, sigma_hrs_ln: float) -> float:
    """Median ratio R_HRS / R_LRS giving ``p_bf`` with the given log-sigmas."""
    for name, value in (("sigma_lrs_ln", sigma_lrs_ln), ("sigma_hrs_ln", sigma_hrs_ln)):
        check_positive("ratio_for_pbf", name, value)
    return math.exp(_z_for(p_bf, "ratio_for_pbf") * (sigma_lrs_ln + sigma_hrs_ln))


def cell_for_pbf(p_bf: float, r_lrs_ohm: float, ratio: float, sigma_split: float = 0.3) -> RRAMCell:
    """A cell with symmetric bit-flip probability ``p_bf``.

    Parameters
    ----------
    p_bf : float
        Target probability in (0, 0.5).
    r_lrs_ohm : float
        LRS median, ohms.
    ratio : float
        HRS/LRS median ratio, > 1.
    sigma_split : float
        Share of the sigma sum given to the LRS, σ_L / (σ_L + σ_H), in (0, 1). The default
        0.3 follows the nominal calibration 0.15 / 0.33 (HRS spreads more than LRS).
    """
    check_range(
        "cell_for_pbf", "sigma_split", sigma_split, low=0.0, high=1.0, low_open=True, high_open=True
    )
    check_positive("cell_for_pbf", "r_lrs_ohm", r_lrs_ohm)
    total = sigma_sum_for_pbf(p_bf, ratio)
    return RRAMCell(
        LognormalState(r_lrs_ohm, sigma_split * total),
        LognormalState(r_lrs_ohm * ratio, (1.0 - sigma_split) * total),
    )
