"""Logistic fits of accuracy against bit-flip probability (docs/design.md §7).

Sits between the sweep (a points table: ``p``, ``repeat``, ``accuracy``) and the report (one
summary row per workload × format × policy). The model is

    F(x) = 2·δa / (1 + exp((x - μ)/σ)) + a_min,   a_min = 1/K,   δa = (a_max - a_min)/2,

with ``a_max`` the noise-free accuracy. ``x`` is either ``log10(p)`` (``scale="log10p"``, the
default: the drop spans decades) or ``p`` itself (``scale="p"``); every result says which.
``μ`` is always reported as a probability (``10**μ_x`` in log scale); ``σ`` stays in units of
``x`` (decades in log scale).

A fit that cannot be made is reported as such, never as a made-up number: when the mean
accuracy never crosses the midpoint level inside the swept range, ``mu`` is NaN, ``status`` is
``above_range`` / ``below_range`` and ``note`` reads e.g. ``"mu > 1e-01"``. A fit whose
drop is resolved by fewer than :data:`MIN_DROP_POINTS` grid points (``unresolved_drop``) or
whose bootstrap interval collapses onto μ (``ci_collapsed``) keeps its μ but says so, with
``advice`` naming the grid that would resolve it.

The 99 %-noise level is also read from the measured points (``p99_data``: interpolated in
log10 p between the grid points that bracket 0.99·a_max), since the logistic's tail need not
follow the data. Its interval is the bootstrap over repeats **widened to the bracket**: the
interpolation is an assumption, the data only place the crossing between the two bracketing
grid points, so the interval is never narrower than ``[p_bracket_low, p_bracket_high]`` (a
drop of one image at the same grid point in every repeat gives every resample the same value,
and a bootstrap alone would call that exact).

A bootstrap bound that reaches beyond the swept range (resamples whose midpoint or p99 leaves
it) is *open*: its column is NaN and ``mu_ci_open``/``p99_data_ci_open`` say which side
(``"low"``: below ``p_min``, ``"high"``: above ``p_max``, ``"both"``), so a reader can tell an
open bound from one that was never computed (no bootstrap). :func:`wilson_interval` gives
each accuracy point its own binomial interval; :func:`shared_images_interval` and
:func:`shared_images_se` bound a mean over repeats that classify the same images.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

SCALES = ("log10p", "p")

#: Widest gap (decades of p) between the two measured points that bracket p99 across which
#: ``p99_data`` is interpolated; wider, the data only say p99 lies in the gap. A grid of one
#: point a decade (steps of up to 1.25 decades once rounded to whole points) still
#: interpolates; an adaptive sweep's jump from p_min to the drop does not.
MAX_P99_GAP_DECADES = 1.5
#: Fraction of a_max that defines the "99 %-noise level" p99.
KEEP_FRACTION = 0.99

#: A drop is resolved when at least this many distinct p have a mean accuracy inside its
#: central band (:data:`DROP_BAND` of the way from a_max to a_min, either side excluded).
MIN_DROP_POINTS = 3
DROP_BAND = 0.1

#: Statuses whose fit has a midpoint μ (the others are censored or failed).
FITTED_STATUSES = ("ok", "unresolved_drop", "ci_collapsed")

#: Start of ``FitResult.note`` when μ's interval reaches beyond the swept range.
OPEN_CI_NOTE = "CI reaches beyond the swept range"


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
        Bootstrap confidence interval of ``mu`` over repeats (NaN where it cannot be made, or
        on a side that reaches beyond the swept range: see ``mu_ci_open``).
    status : str
        ``ok``; ``unresolved_drop`` (μ fitted, but fewer than :data:`MIN_DROP_POINTS` points
        inside the drop) or ``ci_collapsed`` (a bound of the bootstrap CI equals μ: too few
        distinct resamples); ``above_range`` (no drop inside the range), ``below_range``
        (already dropped at the smallest p), ``no_signal`` (``a_max`` at chance level) or
        ``failed``.
    note : str
        Human-readable reason for a non-ok status, e.g. ``"mu > 1e-01"``.
    n_points : int
        Distinct p values used.
    n_boot : int
        Bootstrap resamples used for the CI (0: no CI).
    n_drop_points : int
        Distinct p whose mean accuracy lies inside the drop's central band.
    advice : str
        What would resolve an ``unresolved_drop`` / ``ci_collapsed`` fit ("" otherwise).
    p99_data : float
        The 99 %-noise level read from the measured means (NaN when censored, see
        ``p99_note``); ``p99_data_ci_low``/``p99_data_ci_high`` its bootstrap interval over
        repeats, widened to contain ``p99_bracket_low``/``p99_bracket_high``, the grid points
        that bracket it (NaN without a bootstrap, or on an open side).
    p_min, p_max : float
        The swept range: smallest and largest p fitted.
    mu_ci_open, p99_data_ci_open : str
        Which bound of the interval reaches beyond the swept range (and is NaN for that
        reason): ``""`` (none), ``"low"`` (below ``p_min``), ``"high"`` (above ``p_max``) or
        ``"both"``.
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
    n_drop_points: int = 0
    advice: str = ""
    p99_data: float = math.nan
    p99_data_ci_low: float = math.nan
    p99_data_ci_high: float = math.nan
    p99_bracket_low: float = math.nan
    p99_bracket_high: float = math.nan
    p99_note: str = ""
    p_min: float = math.nan
    p_max: float = math.nan
    mu_ci_open: str = ""
    p99_data_ci_open: str = ""

    @property
    def ok(self) -> bool:
        """True for a fit that resolves its midpoint with a non-degenerate interval."""
        return self.status == "ok"

    @property
    def fitted(self) -> bool:
        """True when a midpoint μ was fitted (resolved or not)."""
        return self.status in FITTED_STATUSES


def logistic(
    x: float | np.ndarray, mu: float, sigma: float, a_max: float, a_min: float
) -> np.ndarray:
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
    base = FitResult(
        scale=scale,
        a_max=float(a_max),
        a_min=float(a_min),
        n_points=int(p.size),
        p_min=float(p[0]) if p.size else math.nan,
        p_max=float(p[-1]) if p.size else math.nan,
    )
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
    """Fit a sweep's points and add bootstrap intervals of μ and ``p99_data`` over repeats.

    The bootstrap resamples whole repeats (with replacement): a repeat is the unit of
    independent randomness, and with coupled sampling the points of one repeat along p are
    correlated, so resampling points one p at a time would understate the interval. The
    ``p99_data`` interval is then widened to the grid points that bracket the crossing (the
    data do not place it more finely than that); a bound that reaches beyond the swept range
    is NaN and named in ``mu_ci_open``/``p99_data_ci_open``.

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
    p99, bracket, p99_note = p_keep_measured(ps, means, a_max, max_gap=MAX_P99_GAP_DECADES)
    result = replace(
        result,
        p99_data=p99,
        p99_bracket_low=bracket[0],
        p99_bracket_high=bracket[1],
        p99_note=p99_note,
        n_drop_points=drop_points(means, a_max, a_min),
    )
    repeats = np.unique(rep)
    if n_boot <= 0 or repeats.size < 2 or (not result.ok and math.isnan(p99)):
        return _qualify(result)
    rng = np.random.default_rng(seed)
    rows_of = [np.flatnonzero(rep == r) for r in repeats]
    mus = np.full(n_boot, np.nan)
    p99s = np.full(n_boot, np.nan)
    censored = {"above_range": np.inf, "below_range": -np.inf}
    for b in range(n_boot):
        pick = np.concatenate([rows_of[i] for i in rng.integers(0, repeats.size, repeats.size)])
        m, c = _means(acc[pick], inverse[pick], ps.size)
        keep = c > 0
        if not math.isnan(p99):
            value, (low, high), note = p_keep_measured(
                ps[keep], m[keep], a_max, max_gap=MAX_P99_GAP_DECADES
            )
            # A resample whose p99 leaves the range sits beyond that end. One whose bracket is
            # a gap the data do not resolve lies somewhere in the gap: count it at the gap's
            # far end from the estimate (the conservative end, and no interpolation across it).
            if note.startswith("in ["):
                p99s[b] = low if low < p99 else high
            else:
                p99s[b] = value if not note else (np.inf if note.startswith(">") else -np.inf)
        if result.ok:
            r = fit_curve(ps[keep], m[keep], a_max=a_max, a_min=a_min, scale=scale, counts=c[keep])
            # A resample whose midpoint leaves the range is censored: it sits beyond that end.
            mus[b] = r.mu if r.ok else censored.get(r.status, np.nan)
    alpha = (1 - confidence) / 2
    p99_low, p99_high, p99_open = _interval(p99s, alpha)
    if not math.isnan(p99):
        # The interpolation inside the bracket is an assumption: the data place the crossing
        # only between the two grid points, however alike the repeats are. An open (NaN)
        # side stays open.
        p99_low = min(p99_low, bracket[0]) if not math.isnan(p99_low) else p99_low
        p99_high = max(p99_high, bracket[1]) if not math.isnan(p99_high) else p99_high
    result = replace(
        result, p99_data_ci_low=p99_low, p99_data_ci_high=p99_high, p99_data_ci_open=p99_open
    )
    mus = mus[~np.isnan(mus)]
    if not result.ok or mus.size == 0:
        return _qualify(replace(result, n_boot=n_boot) if result.ok else result)
    low, high, mu_open = _interval(mus, alpha)
    note = result.note
    if mu_open:
        note = _join(note, _open_note(mu_open, result.p_min, result.p_max))
    return _qualify(
        replace(
            result,
            mu_ci_low=low,
            mu_ci_high=high,
            mu_ci_open=mu_open,
            n_boot=n_boot,
            note=note,
        )
    )


def wilson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``successes / n``.

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0 or n
    successes (an accuracy of 1.0 on 360 images still has a lower bound below 1).

    Returns
    -------
    (low, high) : arrays of float
        NaN where ``n`` is 0.
    """
    from scipy.stats import norm

    k = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = float(norm.ppf(0.5 + confidence / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        phat = k / n
        denom = 1 + z**2 / n
        centre = (phat + z**2 / (2 * n)) / denom
        half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def shared_images_interval(
    accuracy: np.ndarray | float, n_images: np.ndarray | float, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of a mean accuracy over repeats that classify the *same* ``n_images`` images.

    Repeats share their images, so their classifications are not independent: a clean point
    repeats one outcome per image however many repeats there are. With ``m_i`` image ``i``'s
    mean over repeats (in [0, 1], mean ``a``), the mean accuracy is ``mean_i m_i`` and its
    variance ``Var(m_i) / n_images <= a (1 - a) / n_images``. So this is the Wilson interval of
    ``a`` counting each image once: right where repeats agree, wider than needed (by up to
    ``sqrt(repeats)``) where the noise draws dominate, never too narrow, which pooling the
    ``n_images × repeats`` classifications as independent trials was.
    """
    a = np.asarray(accuracy, dtype=float)
    n = np.asarray(n_images, dtype=float)
    return wilson_interval(a * n, n, confidence)


def shared_images_se(accuracy: np.ndarray | float, n_images: np.ndarray | float) -> np.ndarray:
    """Bound on the standard error of a mean accuracy over repeats on the same ``n_images``.

    ``sqrt(a (1 - a) / n_images)``: as in :func:`shared_images_interval`, the variance of the
    mean over repeats that classify the same images, the noise draws included, is
    ``Var(m_i) / n_images <= a (1 - a) / n_images`` (``m_i`` in [0, 1]: image ``i``'s mean over
    repeats). It is never too narrow, unlike the spread over repeats, which is 0 whenever the
    repeats agree (a clean point, or a low ``p`` whose draws change no prediction) although
    the test images themselves are a sample. NaN where ``n_images <= 0``.

    For a *difference* of two accuracies measured on the same images (two policies, or a noisy
    and the clean network) the per-image differences ``d_i = m_i - m'_i`` have
    ``sd(d_i) <= sd(m_i) + sd(m'_i)`` (Minkowski), whatever the correlation between them; so
    its standard error is at most the **sum** of the two bounds, not their root sum of
    squares, which assumes independent samples.
    """
    a = np.asarray(accuracy, dtype=float)
    n = np.asarray(n_images, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.sqrt(np.clip(a * (1 - a), 0.0, None) / n), np.nan)


def median_interval(
    values: np.ndarray | list[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """Distribution-free interval of the median of independent ``values``: order statistics.

    ``[x_(k), x_(n+1-k)]`` (sorted values, from 1) holds the median with probability
    ``1 - 2 P(B <= k - 1)``, ``B ~ Binomial(n, 1/2)``, for any continuous distribution; ``k`` is
    the largest with that coverage at least ``confidence``. More values give a narrower
    interval (unlike the range, which only widens). NaN values are ignored.

    Returns
    -------
    (low, high, coverage)
        NaN bounds when even ``[min, max]`` covers less than ``confidence`` (5 values or fewer
        at 95 %); ``coverage`` is then the range's.
    """
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    k = 0
    while k < n // 2 and 1 - 2 * float(binom.cdf(k, n, 0.5)) >= confidence:
        k += 1  # x_(k + 1) .. x_(n - k) still covers: move both ends in
    coverage = 1 - 2 * float(binom.cdf(max(k, 1) - 1, n, 0.5))  # k = 0: the range's
    if k == 0:
        return math.nan, math.nan, coverage
    return float(x[k - 1]), float(x[n - k]), coverage


def p_keep_measured(
    p: np.ndarray,
    means: np.ndarray,
    a_max: float,
    keep: float = KEEP_FRACTION,
    *,
    max_gap: float | None = None,
) -> tuple[float, tuple[float, float], str]:
    """The largest p keeping ``keep · a_max``, read from measured mean accuracies.

    Linear interpolation in log10 p between the last grid point at or above the target and
    the first one below it. Where those two points lie more than ``max_gap`` decades apart
    (an adaptive sweep measures nothing between its smallest p and the drop), the data do not
    place the crossing inside the gap: ``p99`` is NaN and the note names the bracket.

    Returns
    -------
    (p99, (p_low, p_high), note)
        ``note`` is ``""`` when the data bracket the target; ``"> p_max"`` when no point falls
        below it, ``"< p_min"`` when the smallest p already does and ``"in [p_low, p_high]"``
        when the bracket is wider than ``max_gap`` (``p99`` is NaN then).
    """
    order = np.argsort(p)
    p, means = np.asarray(p, dtype=float)[order], np.asarray(means, dtype=float)[order]
    target = keep * a_max
    below = np.flatnonzero(means < target)
    if p.size == 0:
        return math.nan, (math.nan, math.nan), "no points"
    if below.size == 0:
        return math.nan, (float(p[-1]), math.nan), f"> {p[-1]:.1e}"
    i = int(below[0])
    if i == 0:
        return math.nan, (math.nan, float(p[0])), f"< {p[0]:.1e}"
    x0, x1 = math.log10(p[i - 1]), math.log10(p[i])
    bracket = (float(p[i - 1]), float(p[i]))
    if max_gap is not None and x1 - x0 > max_gap + 1e-9:
        return math.nan, bracket, f"in [{p[i - 1]:.1e}, {p[i]:.1e}]"
    y0, y1 = means[i - 1], means[i]
    x = x0 + (y0 - target) * (x1 - x0) / (y0 - y1)
    return float(10.0**x), bracket, ""


def drop_points(means: np.ndarray, a_max: float, a_min: float) -> int:
    """Distinct p whose mean accuracy lies inside the drop's central band."""
    span = a_max - a_min
    means = np.asarray(means, dtype=float)
    inside = (means > a_min + DROP_BAND * span) & (means < a_max - DROP_BAND * span)
    return int(inside.sum())


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float, str]:
    """Percentile interval of bootstrap values, ±inf marking resamples beyond the range.

    Returns ``(low, high, open)``: a bound at ±inf is NaN and ``open`` names it (``"low"``,
    ``"high"``, ``"both"`` or ``""``).
    """
    values = values[~np.isnan(values)]
    if values.size == 0:
        return math.nan, math.nan, ""
    # "inverted_cdf" keeps ±inf (censored resamples) from turning into NaN by interpolation.
    low, high = np.quantile(values, [alpha, 1 - alpha], method="inverted_cdf")
    open_low, open_high = not np.isfinite(low), not np.isfinite(high)
    side = {(True, True): "both", (True, False): "low", (False, True): "high"}
    return (
        math.nan if open_low else float(low),
        math.nan if open_high else float(high),
        side.get((open_low, open_high), ""),
    )


def _open_note(side: str, p_min: float, p_max: float) -> str:
    """The note of an interval open on ``side`` (``"low"``, ``"high"``, ``"both"``)."""
    parts = []
    if side in ("low", "both"):
        parts.append(f"lower bound < {p_min:.1e}")
    if side in ("high", "both"):
        parts.append(f"upper bound > {p_max:.1e}")
    return f"{OPEN_CI_NOTE} ({', '.join(parts)})"


def _qualify(result: FitResult) -> FitResult:
    """Downgrade an ``ok`` fit the data do not support, and say what would resolve it."""
    if not result.ok:
        return result
    collapsed = [
        name
        for name, bound in (("lower", result.mu_ci_low), ("upper", result.mu_ci_high))
        if math.isclose(bound, result.mu, rel_tol=1e-9)
    ]
    ci_note = f"bootstrap CI {' and '.join(collapsed)} bound equals mu" if collapsed else ""
    if result.n_drop_points < MIN_DROP_POINTS:
        return replace(
            result,
            status="unresolved_drop",
            note=_join(
                result.note,
                f"drop resolved by {result.n_drop_points} point(s); "
                f"at least {MIN_DROP_POINTS} are needed",
                ci_note,
            ),
            advice=_grid_advice(result)
            + ("; and more repeats (sweep.repeats >= 5)" if collapsed else ""),
        )
    if collapsed:
        return replace(
            result,
            status="ci_collapsed",
            note=_join(result.note, ci_note),
            advice="more repeats (sweep.repeats >= 5) or adaptive.enabled = true",
        )
    return result


def _grid_advice(result: FitResult) -> str:
    """A grid that puts :data:`MIN_DROP_POINTS` + 1 points inside the fitted drop."""
    # The band DROP_BAND..1-DROP_BAND of the logistic spans 2·σ·ln((1-b)/b) in x.
    width = 2 * result.sigma * math.log((1 - DROP_BAND) / DROP_BAND)
    mu_x = float(to_x(result.mu, result.scale))
    low, high = from_x(np.array([mu_x - width, mu_x + width]), result.scale)
    if result.scale == "log10p":
        ppd = min(1000, math.ceil((MIN_DROP_POINTS + 1) / width))
        return (
            f"grid.points_per_decade = {ppd} (or grid.values covering "
            f"{low:.1e}..{high:.1e}), or adaptive.enabled = true"
        )
    return (
        f"grid.values with {2 * MIN_DROP_POINTS + 1} points from {max(low, 0):.2e} to "
        f"{high:.2e}, or adaptive.enabled = true"
    )


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _means(acc: np.ndarray, inverse: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(inverse, minlength=n).astype(float)
    sums = np.bincount(inverse, weights=acc, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts, counts


def _censoring(
    p: np.ndarray, acc: np.ndarray, a_max: float, a_min: float
) -> tuple[str, str] | None:
    """Why no midpoint can be fitted, or None when the data cross the midpoint level."""
    if p.size == 0:
        return "failed", "no points to fit"
    # Less than 5 % of the possible range above chance: nothing to drop from.
    if not a_max - a_min > 0.05 * (1 - a_min):
        return "no_signal", f"a_max={a_max:.3g} is at chance level {a_min:.3g}"
    # Where the data never cross the midpoint level they say so with any number of points (an
    # adaptive sweep that finds no drop measures only the ends of the range).
    mid = a_min + (a_max - a_min) / 2
    if (acc > mid).all():
        return "above_range", f"mu > {p[-1]:.0e}"
    if (acc < mid).all():
        return "below_range", f"mu < {p[0]:.0e}"
    if p.size < 3:
        return "failed", f"need at least 3 distinct p values to fit; got {p.size}"
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
