"""Logistic fits of accuracy against bit-flip probability (DESIGN §7).

Sits between the sweep (a points table: ``p``, ``repeat``, ``accuracy``) and the report (one
summary row per workload × format × policy). The model is

    F(x) = 2·δa / (1 + exp((x - μ)/σ)) + a_min,   a_min = 1/K,   δa = (a_max - a_min)/2,

with ``a_max`` the noise-free accuracy. ``x`` is either ``log10(p)`` (``scale="log10p"``, the
default: the drop spans decades) or ``p`` itself (``scale="p"``); every result says which.
``μ`` is always reported as a probability (``10**μ_x`` in log scale); ``σ`` stays in units of
``x`` (decades in log scale).

A fit that cannot be made is reported as such, never as a made-up number: when the mean
accuracy never crosses the midpoint level inside the swept range, ``mu`` is NaN, ``status`` is
``above_range`` / ``below_range`` and ``note`` reads e.g. ``"mu > 1e-01"``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

SCALES = ("log10p", "p")

#: Fraction of a_max that defines the "99 %-noise level" p99.
KEEP_FRACTION = 0.99


@dataclass(frozen=True)
class FitResult:
    """Outcome of one logistic fit.

    Attributes
    ----------
    scale : str
        ``"log10p"`` or ``"p"``: the x axis the fit used.
    a_max, a_min : float
        Noise-free accuracy and chance level (fixed, not fitted).
    mu : float
        Midpoint noise level as a probability; NaN unless ``status == "ok"``.
    sigma : float
        Width of the drop in units of ``x`` (decades for ``log10p``); NaN unless ok.
    p99 : float
        Largest p whose fitted accuracy keeps 99 % of ``a_max``; NaN when undefined.
    r2, rmse : float
        Fit quality on the per-p mean accuracies.
    mu_ci_low, mu_ci_high : float
        Bootstrap confidence interval of ``mu`` over repeats (NaN where it cannot be made).
    status : str
        ``ok``, ``above_range`` (no drop inside the range), ``below_range`` (already dropped at
        the smallest p), ``no_signal`` (``a_max`` at chance level) or ``failed``.
    note : str
        Human-readable reason for a non-ok status, e.g. ``"mu > 1e-01"``.
    n_points : int
        Distinct p values used.
    n_boot : int
        Bootstrap resamples used for the CI (0: no CI).
    """

    scale: str
    a_max: float
    a_min: float
    mu: float = math.nan
    sigma: float = math.nan
    p99: float = math.nan
    r2: float = math.nan
    rmse: float = math.nan
    mu_ci_low: float = math.nan
    mu_ci_high: float = math.nan
    status: str = "ok"
    note: str = ""
    n_points: int = 0
    n_boot: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def logistic(x: np.ndarray, mu: float, sigma: float, a_max: float, a_min: float) -> np.ndarray:
    """``F(x) = 2·δa/(1 + exp((x - μ)/σ)) + a_min`` with ``δa = (a_max - a_min)/2``."""
    delta = (a_max - a_min) / 2
    # Clip the exponent: far from the midpoint the curve is flat and exp would overflow.
    z = np.clip((np.asarray(x, dtype=float) - mu) / sigma, -700.0, 700.0)
    return 2 * delta / (1 + np.exp(z)) + a_min


def to_x(p: np.ndarray | float, scale: str) -> np.ndarray:
    """The fit's x coordinate for probabilities ``p``."""
    _check_scale(scale)
    p = np.asarray(p, dtype=float)
    return np.log10(p) if scale == "log10p" else p


def from_x(x: np.ndarray | float, scale: str) -> np.ndarray:
    """Probabilities for x coordinates (inverse of :func:`to_x`)."""
    _check_scale(scale)
    x = np.asarray(x, dtype=float)
    return np.power(10.0, x) if scale == "log10p" else x


def fit_curve(
    p: np.ndarray,
    accuracy: np.ndarray,
    *,
    a_max: float,
    a_min: float,
    scale: str = "log10p",
    counts: np.ndarray | None = None,
) -> FitResult:
    """Fit μ and σ to mean accuracies at distinct ``p`` (no confidence interval).

    Parameters
    ----------
    p : array of float
        Distinct bit-flip probabilities in (0, 1].
    accuracy : array of float
        Mean accuracy at each ``p``.
    a_max, a_min : float
        Noise-free and chance accuracy.
    scale : {"log10p", "p"}
        x axis of the fit.
    counts : array of int, optional
        Repeats behind each mean; weights the least squares (uniform when omitted).
    """
    _check_scale(scale)
    p = np.asarray(p, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    if p.shape != acc.shape or p.ndim != 1:
        raise ValueError(
            f"p and accuracy must be 1-D arrays of one length. Got {p.shape} and {acc.shape}."
        )
    if p.size and ((p <= 0) | (p > 1)).any():
        raise ValueError("p values for a fit must lie in (0, 1]; the noise-free point is a_max.")
    order = np.argsort(p)
    p, acc = p[order], acc[order]
    counts = np.ones_like(p) if counts is None else np.asarray(counts, dtype=float)[order]
    base = FitResult(scale=scale, a_max=float(a_max), a_min=float(a_min), n_points=int(p.size))
    censored = _censoring(p, acc, a_max, a_min)
    if censored is not None:
        return replace(base, status=censored[0], note=censored[1])

    x = to_x(p, scale)
    span = float(x[-1] - x[0])
    mu0 = _crossing(x, acc, a_min + (a_max - a_min) / 2)
    sigma0 = span / 20

    def model(xx, mu, sigma):
        return logistic(xx, mu, sigma, a_max, a_min)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            (mu_x, sigma), _ = curve_fit(
                model,
                x,
                acc,
                p0=[mu0, sigma0],
                sigma=1 / np.sqrt(counts),
                bounds=([x[0] - span, span * 1e-6], [x[-1] + span, span * 10]),
                maxfev=5000,
            )
    except (RuntimeError, ValueError) as exc:
        return replace(base, status="failed", note=f"fit failed: {exc}")
    if scale == "p" and mu_x <= 0:
        return replace(base, status="failed", note="fitted midpoint is not a positive probability")
    fitted = model(x, mu_x, sigma)
    ss_res = float(np.sum((acc - fitted) ** 2))
    ss_tot = float(np.sum((acc - acc.mean()) ** 2))
    return replace(
        base,
        mu=float(from_x(mu_x, scale)),
        sigma=float(sigma),
        p99=p_keep(mu_x, sigma, a_max, a_min, scale),
        r2=1 - ss_res / ss_tot if ss_tot > 0 else math.nan,
        rmse=math.sqrt(ss_res / p.size),
    )


def p_keep(
    mu_x: float, sigma: float, a_max: float, a_min: float, scale: str, keep: float = KEEP_FRACTION
) -> float:
    """Largest p where the fitted curve keeps ``keep · a_max`` (NaN when it never does)."""
    target = keep * a_max
    if not target > a_min:
        return math.nan
    # Solve F(x) = target: 1 + exp(z) = (a_max - a_min)/(target - a_min).
    ratio = (a_max - a_min) / (target - a_min) - 1
    x_keep = mu_x + sigma * math.log(ratio)
    if scale == "p" and x_keep <= 0:
        return math.nan
    return float(from_x(x_keep, scale))


def fit_points(
    p: np.ndarray,
    accuracy: np.ndarray,
    repeat: np.ndarray,
    *,
    a_max: float,
    num_classes: int,
    scale: str = "log10p",
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> FitResult:
    """Fit a sweep's points and add a bootstrap CI of μ over repeats.

    The bootstrap resamples whole repeats (with replacement): a repeat is the unit of
    independent randomness, and with coupled sampling the points of one repeat along p are
    correlated, so resampling points one p at a time would understate the interval.

    Parameters
    ----------
    p, accuracy, repeat : arrays of one length
        One entry per evaluated point (p > 0).
    a_max : float
        Noise-free accuracy.
    num_classes : int
        K; the chance level is ``1/K``.
    scale : {"log10p", "p"}
        x axis of the fit.
    n_boot : int
        Bootstrap resamples (0 disables the CI).
    confidence : float
        Two-sided confidence level of the interval.
    seed : int
        Seed of the bootstrap (fixed: the CI is reproducible).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2. Got {num_classes}.")
    p = np.asarray(p, dtype=float)
    acc = np.asarray(accuracy, dtype=float)
    rep = np.asarray(repeat)
    a_min = 1.0 / num_classes
    ps, inverse = np.unique(p, return_inverse=True)
    means, counts = _means(acc, inverse, ps.size)
    result = fit_curve(ps, means, a_max=a_max, a_min=a_min, scale=scale, counts=counts)
    repeats = np.unique(rep)
    if not result.ok or n_boot <= 0 or repeats.size < 2:
        return result
    rng = np.random.default_rng(seed)
    rows_of = [np.flatnonzero(rep == r) for r in repeats]
    mus = np.empty(n_boot)
    for b in range(n_boot):
        pick = np.concatenate([rows_of[i] for i in rng.integers(0, repeats.size, repeats.size)])
        m, c = _means(acc[pick], inverse[pick], ps.size)
        keep = c > 0
        r = fit_curve(ps[keep], m[keep], a_max=a_max, a_min=a_min, scale=scale, counts=c[keep])
        # A resample whose midpoint leaves the range is censored: it sits beyond that end.
        mus[b] = (
            r.mu if r.ok else {"above_range": np.inf, "below_range": -np.inf}.get(r.status, np.nan)
        )
    mus = mus[~np.isnan(mus)]
    if mus.size == 0:
        return replace(result, n_boot=n_boot)
    alpha = (1 - confidence) / 2
    # "inverted_cdf" keeps ±inf (censored resamples) from turning into NaN by interpolation.
    low, high = np.quantile(mus, [alpha, 1 - alpha], method="inverted_cdf")
    note = result.note
    if not np.isfinite(low) or not np.isfinite(high):
        note = "CI reaches beyond the swept range"
    return replace(
        result,
        mu_ci_low=float(low) if np.isfinite(low) else math.nan,
        mu_ci_high=float(high) if np.isfinite(high) else math.nan,
        n_boot=n_boot,
        note=note,
    )


def _means(acc: np.ndarray, inverse: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(inverse, minlength=n).astype(float)
    sums = np.bincount(inverse, weights=acc, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts, counts


def _censoring(
    p: np.ndarray, acc: np.ndarray, a_max: float, a_min: float
) -> tuple[str, str] | None:
    """Why no midpoint can be fitted, or None when the data cross the midpoint level."""
    if p.size < 3:
        return "failed", f"need at least 3 distinct p values to fit; got {p.size}"
    # Less than 5 % of the possible range above chance: nothing to drop from.
    if not a_max - a_min > 0.05 * (1 - a_min):
        return "no_signal", f"a_max={a_max:.3g} is at chance level {a_min:.3g}"
    mid = a_min + (a_max - a_min) / 2
    if (acc > mid).all():
        return "above_range", f"mu > {p[-1]:.0e}"
    if (acc < mid).all():
        return "below_range", f"mu < {p[0]:.0e}"
    return None


def _crossing(x: np.ndarray, acc: np.ndarray, level: float) -> float:
    """x where the piecewise-linear mean curve first falls below ``level`` (a start value)."""
    below = np.flatnonzero(acc < level)
    i = int(below[0])
    if i == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[i - 1], x[i], acc[i - 1], acc[i]
    return float(x0 + (y0 - level) * (x1 - x0) / (y0 - y1)) if y0 != y1 else float(x0)


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(
            f"The 'scale' parameter of the fit must be one of {list(SCALES)}. Got {scale!r}."
        )
