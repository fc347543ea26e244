"""Summary of the binarized-network study: tolerance, lowest sufficient energy, with uncertainty.

Pure functions of the points frame that :mod:`memsim.studies.bnn` stores (and the report reads).

Uncertainty of a point. A network's accuracy at a point is the mean over ``R`` fault-map
draws (repeats) on the same ``n`` test images. Its loss against the error-free network is
uncertain for two reasons, and both are counted:

* **fault maps**: the spread of the per-repeat accuracies, ``s_f² / R``. With one draw
  (``R = 1``) that spread is *unknown*, not 0: the point's standard error is then infinite,
  so no such point is decided (the error-free point has no faults and is exempt);
* **the test set** (binomial): the ``n`` images are a sample. Against the network's own
  error-free accuracy the comparison is paired image by image, so the per-image variance of
  the difference is ``(lost + gained)/n − ((lost − gained)/n)²``, from the images a fault map
  made wrong (``n_lost``) and right (``n_gained``); averaged over repeats and divided by ``n``
  (the repeats share the images, so this part does not shrink with ``R``). Against the plain
  network's error-free accuracy (another network, measured on the *same* images, with no
  per-image pairing stored) the standard errors add (Minkowski, see
  :func:`memsim.fit.shared_images_se`): the smaller of ``sd(a) + sd(c)`` and
  ``paired + sd(own) + sd(c)`` (``a`` this point's accuracy, ``own`` this network's error-free
  accuracy, ``c`` the plain one's), each ``sd(x) = sqrt(x (1 − x) / n)``.

Every test-set standard error has a floor, :func:`se_floor` ``= z / (n + z²)``: with no image
changed (or an accuracy of 100 %) the binomial formulas give 0, yet ``0`` changes in ``n``
images only bound the changed fraction by the Wilson upper bound ``z² / (n + z²)`` (≈ the
rule of three, ``3/n``); the floor makes ``z·se`` exactly that bound.

A point *passes* when its mean accuracy is at least the floor (error-free accuracy minus
``tolerance_points``), as before; with the uncertainty it passes *surely* when the margin
exceeds ``z·se`` (``z`` from ``confidence``), fails surely below ``−z·se``, and is *undecided*
in between. The tolerated BER and the lowest sufficient programming energy are given as an
estimate with an optimistic and a pessimistic bound (undecided points counted as passing,
resp. failing). Plain and error-aware networks are compared on those intervals: a comparison
whose intervals overlap is **not resolved**, and the summary says how many repeats or images
would decide the undecided points; intervals that coincide on one grid rate (or condition)
are only **equal at this grid's resolution**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from memsim.fit import shared_images_se, wilson_interval

NETWORKS = ("plain", "error_aware")
GROUP = ["network", "sweep", "condition", "p01", "p10"]
#: ``verdict`` of :func:`compare` when both intervals sit on the same grid rate or condition.
EQUAL = "equal at this grid's resolution"
#: ``warning`` of :func:`summarize` for points with a single fault-map draw.
ONE_REPEAT = (
    "one fault-map draw per point: the fault-map spread is unknown, so no point is decided "
    "(every bound spans the whole grid); run at least 2 repeats"
)


def z_value(confidence: float) -> float:
    """Two-sided normal quantile of ``confidence`` (1.96 at 0.95)."""
    return float(stats.norm.ppf(0.5 + confidence / 2))


def se_floor(n_images: np.ndarray | pd.Series | float, z: float) -> np.ndarray | pd.Series | float:
    """Least standard error of an accuracy or paired loss measured on ``n_images`` images.

    ``z / (n + z²)``, so that ``z·se`` is the Wilson upper bound ``z² / (n + z²)`` of a fraction
    observed 0 times in ``n`` (≈ the rule of three): no image changed does not mean no image
    can change.
    """
    return z / (n_images + z * z)


def point_means(points: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of accuracy over repeats, per network/sweep/condition/rate.

    Columns: the group keys, ``accuracy`` (mean), ``accuracy_std`` (over repeats),
    ``energy_pj``, ``repeats``, ``n_images``, ``var_fault`` (per-repeat variance of accuracy:
    0 for the error-free point, which has no faults, and NaN, *unknown*, for any other point
    with a single repeat) and ``var_image`` (mean per-image variance of the paired difference
    to the error-free network, see the module docstring; no floor yet).
    """
    frame = points.copy()
    n = frame["n_images"].astype(float)
    if {"n_lost", "n_gained"} <= set(frame.columns):
        lost, gained = frame["n_lost"].astype(float) / n, frame["n_gained"].astype(float) / n
        frame["_var_image"] = lost + gained - (lost - gained) ** 2
    else:
        frame["_var_image"] = math.nan
    means = frame.groupby(GROUP, as_index=False, dropna=False).agg(
        accuracy=("accuracy", "mean"), accuracy_std=("accuracy", "std"), energy_pj=("energy_pj", "mean"),
        repeats=("repeat", "nunique"), n_images=("n_images", "min"), var_image=("_var_image", "mean"),
    )  # fmt: skip
    means["var_fault"] = means["accuracy_std"] ** 2
    means.loc[means["sweep"] == "clean", "var_fault"] = 0.0
    return means


@dataclass(frozen=True)
class Criterion:
    """How a point is judged: floor accuracy, confidence, and which error-free accuracy is paired.

    ``own_accuracy`` (this network's error-free accuracy) lets an unpaired comparison go
    through the paired one (see the module docstring); NaN skips that route.
    """

    floor: float
    z: float
    paired: bool
    reference_accuracy: float
    own_accuracy: float = math.nan


def _binomial_sd(accuracy: pd.Series | float, n: pd.Series, z: float) -> pd.Series:
    """Standard error of an accuracy on ``n`` images, never below :func:`se_floor`."""
    a = pd.Series(accuracy, index=n.index, dtype=float)
    return np.maximum(pd.Series(shared_images_se(a, n), index=n.index), se_floor(n, z))


def _margins(curve: pd.DataFrame, crit: Criterion) -> pd.DataFrame:
    """``margin`` (accuracy − floor), its ``se`` and test-set part ``se_image``, and ``status``.

    ``se`` is infinite where the fault-map spread is unknown (one repeat), so such a point is
    never decided.
    """
    out = curve.copy()
    out["margin"] = out["accuracy"] - crit.floor
    n = out["n_images"].astype(float)
    z = crit.z
    floor = se_floor(n, z)
    paired = np.maximum(np.sqrt(out["var_image"] / n), floor)  # NaN when not counted
    ref_sd = _binomial_sd(crit.reference_accuracy, n, z)
    direct = _binomial_sd(out["accuracy"], n, z) + ref_sd  # Minkowski: same images
    if crit.paired:
        se_image = paired.fillna(direct)
    else:
        via_own = paired + _binomial_sd(crit.own_accuracy, n, z) + ref_sd
        se_image = np.fmin(direct, via_own)
    out["se_image"] = se_image
    out["var_b"] = se_image**2
    out["se"] = np.sqrt(out["var_fault"] / out["repeats"] + out["var_b"]).fillna(math.inf)
    clean = out["sweep"] == "clean"
    if crit.paired:  # the error-free network against itself: no uncertainty
        out.loc[clean, ["se", "se_image", "var_b"]] = 0.0
    lower, upper = out["margin"] - crit.z * out["se"], out["margin"] + crit.z * out["se"]
    out["status"] = np.where(lower >= 0, "pass", np.where(upper < 0, "fail", "undecided"))
    return out


def own_margins(means: pd.DataFrame, tolerance_points: float, z: float) -> pd.DataFrame:
    """:func:`_margins` of every network's points against its own error-free accuracy.

    The same ``se`` and ``status`` the summary decides with (the report's error bars draw it).
    """
    clean = means[means["sweep"] == "clean"].set_index("network")["accuracy"]
    frames = []
    for name in [n for n in NETWORKS if n in clean.index]:
        base = float(clean[name])
        crit = Criterion(base - tolerance_points / 100.0, z, True, base, base)
        frames.append(_margins(means[means["network"] == name], crit))
    return pd.concat(frames, ignore_index=True) if frames else means.iloc[0:0]


def tolerated_ber(curve: pd.DataFrame, floor: float) -> tuple[float, float, bool]:
    """Largest grid rate up to which the mean accuracy stays >= ``floor``.

    Parameters
    ----------
    curve : DataFrame
        Columns ``p01`` (the rate) and ``accuracy`` (mean per rate), any order; ``±inf``
        accuracies (a shifted margin of a point whose spread is unknown) are allowed.
    floor : float

    Returns
    -------
    grid : float
        The largest passing grid rate before the first failure (0 if the first fails).
    interpolated : float
        Log-linear interpolation of the crossing between that rate and the first failing one
        (``grid`` when no rate fails or the first one fails; the failing rate when the last
        passing accuracy is ``+inf``, the passing one when the failing accuracy is ``−inf``).
    censored : bool
        True when no grid rate fails (the tolerance is at least ``grid``).
    """
    curve = curve.sort_values("p01")
    p = curve["p01"].to_numpy(float)
    acc = curve["accuracy"].to_numpy(float)
    fail = np.flatnonzero(acc < floor)
    if fail.size == 0:
        return float(p[-1]), float(p[-1]), True
    i = int(fail[0])
    if (
        i == 0 or p[i - 1] <= 0
    ):  # fails at once (after the error-free point): nothing to interpolate
        return float(p[i - 1]) if i else 0.0, 0.0, False
    a0, a1 = acc[i - 1], acc[i]
    if math.isinf(a0):
        frac = 1.0
    elif math.isinf(a1):
        frac = 0.0
    else:
        frac = (a0 - floor) / (a0 - a1) if a0 != a1 else 0.0
    interp = math.exp(math.log(p[i - 1]) + frac * (math.log(p[i]) - math.log(p[i - 1])))
    return float(p[i - 1]), float(interp), False


def _tolerance(curve: pd.DataFrame, shift: float) -> tuple[float, float, bool]:
    """Tolerated grid rate, its interpolation and censoring when every margin is moved by
    ``shift`` standard errors."""
    shifted = pd.DataFrame({"p01": curve["p01"], "accuracy": curve["margin"] + shift * curve["se"]})
    return tolerated_ber(shifted, 0.0)


def _lowest_energy(cond: pd.DataFrame, passing: pd.Series) -> pd.Series | None:
    ok = cond[passing]
    return ok.loc[ok["energy_pj"].idxmin()] if len(ok) else None


def resolving_effort(row: pd.Series, z: float) -> dict[str, float]:
    """Repeats and images that would decide one undecided point (its margin > z·se).

    Returns ``repeats`` (at the current images), ``images`` (at the current repeats) and
    ``factor`` (scaling both together); ``inf`` where no amount of that alone suffices
    (also for a margin of exactly 0: a tie with the criterion is never decided). With one
    repeat the fault-map spread is unknown (``var_fault`` NaN): the numbers then count the
    test set alone, a lower bound, and ``repeats`` is at least 2.

    The test-set part is the observed per-image variance ``var_image`` over the images, but
    never below :func:`se_floor` of that many images (a floor that shrinks like ``1/n²``,
    faster than the observed part); without ``var_image`` it is ``var_b`` scaled as ``1/n``.
    """
    margin = abs(float(row["margin"]))
    r, n = float(row["repeats"]), float(row["n_images"])
    var_f = float(row["var_fault"])  # per repeat
    known = math.isfinite(var_f)
    var_f = var_f if known else 0.0
    if margin == 0:
        return {"repeats": math.inf, "images": math.inf, "factor": math.inf}
    observed = float(row.get("var_image", math.nan))
    floored = math.isfinite(observed)
    var_1 = observed if floored else float(row["var_b"]) * n  # per image

    def var_test(images: float) -> float:
        floor = float(se_floor(images, z)) ** 2 if floored else 0.0
        return max(var_1 / images, floor)

    budget = (margin / z) ** 2
    left = budget - var_test(n)
    repeats = math.ceil(var_f / left) if left > 0 else math.inf
    left = budget - var_f / r
    images = math.inf
    if left > 0:
        images = math.ceil(var_1 / left)
        if floored:  # z / (m + z²) <= sqrt(left)
            images = max(images, math.ceil(z / math.sqrt(left) - z * z))
    factor = max((var_f / r + var_1 / n) / budget, 1e-12)  # without the floor: a lower bound
    if floored and var_f / (factor * r) + var_test(factor * n) > budget:
        high = 2 * factor
        while var_f / (high * r) + var_test(high * n) > budget:
            high *= 2
        factor = float(
            optimize.brentq(lambda f: var_f / (f * r) + var_test(f * n) - budget, factor, high)
        )
    return {"repeats": max(repeats, 1 if known else 2), "images": max(images, 1), "factor": factor}


def summarize(
    points: pd.DataFrame, tolerance_points: float = 1.0, confidence: float = 0.95
) -> pd.DataFrame:
    """Per network and reference: tolerated BER and lowest sufficient energy, with bounds.

    Pure function of the points frame. References: ``own`` (each network's own error-free
    accuracy) and ``plain`` (the plain network's). ``energy_ratio`` = lowest sufficient energy
    of the plain network / that of this network (so the plain row is 1, bounds included),
    with ``energy_ratio_low``/``_high`` from the energy bounds. ``*_low``/``*_high`` columns
    are the pessimistic/optimistic bounds at ``confidence`` (see the module docstring;
    ``min_energy_condition_low``/``_high`` name the conditions they come from);
    ``clean_accuracy_low``/``_high`` are Wilson bounds and ``clean_accuracy_se`` (floored, see
    :func:`se_floor`) the standard error of the error-free accuracy; ``undecided_points``
    counts the points whose pass/fail the uncertainty leaves open; ``repeats`` is the fewest
    fault-map draws of any faulty point and ``warning`` says when that is one.
    """
    tol = tolerance_points / 100.0
    z = z_value(confidence)
    means = point_means(points)
    clean = means[means["sweep"] == "clean"].set_index("network")["accuracy"]
    rows = []
    for ref in ("own", "plain"):
        for name in [n for n in NETWORKS if n in clean.index]:
            base = clean[name] if ref == "own" else clean.get("plain", math.nan)
            crit = Criterion(
                base - tol, z, paired=ref == "own" or name == "plain", reference_accuracy=base,
                own_accuracy=float(clean[name]),
            )  # fmt: skip
            mine = _margins(means[means["network"] == name], crit)
            ber = mine[mine["sweep"].isin(["clean", "ber"])]
            if len(ber):
                grid, interp, censored = tolerated_ber(ber, crit.floor)
                low, interp_low, _ = _tolerance(ber, -z)
                high, interp_high, high_censored = _tolerance(ber, +z)
            else:
                grid = interp = low = high = interp_low = interp_high = math.nan
                censored = high_censored = False
            cond = mine[mine["sweep"] == "condition"]
            best = _lowest_energy(cond, cond["margin"] >= 0)
            optimistic = _lowest_energy(cond, cond["status"] != "fail")
            pessimistic = _lowest_energy(cond, cond["status"] == "pass")
            n_img = int(means.loc[means["network"] == name, "n_images"].min())
            faulty = mine.loc[mine["sweep"] != "clean", "repeats"]
            repeats = int(faulty.min()) if len(faulty) else int(mine["repeats"].max())
            c = float(clean[name])
            c_low, c_high = wilson_interval(c * n_img, n_img, confidence)
            rows.append(
                {
                    "network": name, "reference": ref, "clean_accuracy": clean[name], "floor_accuracy": crit.floor,
                    "tolerated_ber": grid, "tolerated_ber_interp": interp, "tolerated_censored": censored,
                    "min_energy_pj": math.nan if best is None else float(best["energy_pj"]),
                    "min_energy_condition": "" if best is None else str(best["condition"]),
                    "accuracy_at_min_energy": math.nan if best is None else float(best["accuracy"]),
                    "clean_accuracy_se": max(float(shared_images_se(c, n_img)), float(se_floor(n_img, z))),
                    "clean_accuracy_low": float(c_low), "clean_accuracy_high": float(c_high),
                    "n_images": n_img, "repeats": repeats, "confidence": confidence,
                    "tolerated_ber_low": low, "tolerated_ber_high": high,
                    "tolerated_ber_high_censored": high_censored,
                    "tolerated_ber_interp_low": interp_low, "tolerated_ber_interp_high": interp_high,
                    "min_energy_pj_low": math.nan if optimistic is None else float(optimistic["energy_pj"]),
                    "min_energy_pj_high": math.nan if pessimistic is None else float(pessimistic["energy_pj"]),
                    "min_energy_condition_low": "" if optimistic is None else str(optimistic["condition"]),
                    "min_energy_condition_high": "" if pessimistic is None else str(pessimistic["condition"]),
                    "undecided_points": int((mine["status"] == "undecided").sum()),
                    "warning": ONE_REPEAT if repeats < 2 else "",
                }
            )  # fmt: skip
    summary = pd.DataFrame(rows)
    for ref in ("own", "plain"):
        sel = summary["reference"] == ref
        plain = summary[sel & (summary["network"] == "plain")]
        e = (
            plain[["min_energy_pj", "min_energy_pj_low", "min_energy_pj_high"]].iloc[0]
            if len(plain)
            else pd.Series(
                math.nan, index=["min_energy_pj", "min_energy_pj_low", "min_energy_pj_high"]
            )
        )
        summary.loc[sel, "energy_ratio"] = e["min_energy_pj"] / summary.loc[sel, "min_energy_pj"]
        # No surely-sufficient condition (NaN high) leaves the ratio unbounded on that side.
        high = summary.loc[sel, "min_energy_pj_high"].fillna(math.inf)
        summary.loc[sel, "energy_ratio_low"] = e["min_energy_pj_low"] / high
        summary.loc[sel, "energy_ratio_high"] = (
            math.inf if math.isnan(e["min_energy_pj_high"]) else e["min_energy_pj_high"]
        ) / summary.loc[sel, "min_energy_pj_low"]
        # The plain network against itself: 1 by definition, whatever its bounds (the
        # bounds above pair its optimistic with its pessimistic energy, as if two networks).
        own_row = sel & (summary["network"] == "plain")
        for col, energy in (("energy_ratio", "min_energy_pj"), ("energy_ratio_low", "min_energy_pj_low"),
                            ("energy_ratio_high", "min_energy_pj_low")):  # fmt: skip
            summary.loc[own_row, col] = np.where(
                summary.loc[own_row, energy].notna(), 1.0, math.nan
            )
    first = [*list(summary.columns[:10]), "energy_ratio"]  # the original columns, in order
    return summary[first + [c for c in summary.columns if c not in first]]


def _interval(row: pd.Series, quantity: str) -> tuple[float, float, float]:
    """(estimate, lower bound, upper bound) of a quantity, as numbers (unbounded = inf)."""
    if quantity == "min_energy_pj":
        high = row["min_energy_pj_high"]
        return (
            row["min_energy_pj"],
            row["min_energy_pj_low"],
            math.inf if math.isnan(high) else high,
        )
    high = math.inf if row["tolerated_ber_high_censored"] else row["tolerated_ber_high"]
    return row["tolerated_ber"], row["tolerated_ber_low"], high


def compare(
    points: pd.DataFrame,
    tolerance_points: float = 1.0,
    confidence: float = 0.95,
    *,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Plain vs error-aware on tolerated BER and lowest sufficient energy (own references).

    One row per quantity with both networks' estimates and bounds, a ``verdict``
    (``error_aware lower``/``plain lower`` for energy, ``... higher`` for the tolerance,
    :data:`EQUAL` when both intervals are the same single grid rate or condition, or
    ``not resolved`` when the intervals overlap) and, when not resolved, ``resolve_hint``:
    the repeats or images that would decide every undecided point that the comparison hinges
    on. For the energy, ``ratio``/``ratio_low``/``ratio_high`` give plain / error-aware with
    bounds (NaN for the tolerance); ``plain_censored``/``error_aware_censored``: the estimate
    is a lower bound (no grid rate failed; only for the tolerance).
    """
    summary = summarize(points, tolerance_points, confidence) if summary is None else summary
    own = summary[summary["reference"] == "own"].set_index("network")
    if not set(NETWORKS) <= set(own.index):
        return pd.DataFrame()
    z = z_value(confidence)
    margins = own_margins(point_means(points), tolerance_points, z)
    rows = []
    for quantity, sweeps, better in (
        ("tolerated_ber", ("clean", "ber"), "higher"),
        ("min_energy_pj", ("condition",), "lower"),
    ):
        est = {n: _interval(own.loc[n], quantity) for n in NETWORKS}
        censored = {
            n: quantity == "tolerated_ber" and bool(own.loc[n, "tolerated_censored"])
            for n in NETWORKS
        }
        (pe, plo, phi), (we, wlo, whi) = est["plain"], est["error_aware"]
        if any(math.isnan(v) for v in (plo, wlo)):
            verdict = "not resolved"
        elif plo == phi == wlo == whi:
            verdict = EQUAL
        elif (better == "lower" and whi < plo) or (better == "higher" and wlo > phi):
            verdict = f"error_aware {better}"
        elif (better == "lower" and phi < wlo) or (better == "higher" and plo > whi):
            verdict = f"plain {better}"
        else:
            verdict = "not resolved"
        hint = ""
        if verdict == "not resolved":
            hint = _hint(margins, sweeps, z)
        ratio = (math.nan,) * 3
        if quantity == "min_energy_pj":
            ratio = (pe / we, plo / whi, phi / wlo)
        rows.append(
            {
                "quantity": quantity, "plain": pe, "plain_low": plo, "plain_high": phi,
                "error_aware": we, "error_aware_low": wlo, "error_aware_high": whi,
                "verdict": verdict, "resolve_hint": hint, "confidence": confidence,
                "ratio": ratio[0], "ratio_low": ratio[1], "ratio_high": ratio[2],
                "plain_censored": censored["plain"], "error_aware_censored": censored["error_aware"],
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def _hint(margins: pd.DataFrame, sweeps: tuple[str, ...], z: float) -> str:
    """How to decide the undecided points of ``sweeps`` (``margins``: :func:`own_margins`)."""
    mine = margins[margins["sweep"].isin(sweeps)]
    undecided = [r for _, r in mine[mine["status"] == "undecided"].iterrows()]
    if not undecided:
        return "the grid or condition set is too coarse to separate the two networks"
    efforts = [resolving_effort(r, z) for r in undecided]
    worst = max(range(len(undecided)), key=lambda i: efforts[i]["factor"])
    row, effort = undecided[worst], efforts[worst]
    cond = row["condition"]
    where = cond if isinstance(cond, str) and cond else f"p={row['p01']:.3g}"
    n_img, reps = int(row["n_images"]), int(row["repeats"])
    unknown = any(not math.isfinite(float(r["var_fault"])) for r in undecided)
    parts = [f"{len(undecided)} undecided point(s)"]
    if unknown:
        parts.append(
            "with one fault-map draw per point the fault-map spread is unknown and no point is "
            "decided: run at least 2 repeats"
        )
    if not math.isfinite(effort["factor"]):
        parts.append(
            f"{row['network']} at {where} sits exactly on the criterion (margin 0): "
            "no sample size decides a tie"
        )
        return "; ".join(parts)
    margin_images = abs(float(row["margin"])) * n_img
    verb = "passes" if float(row["margin"]) > 0 else "misses"
    se_images = float(row["se_image"] if unknown else row["se"]) * n_img
    parts.append(
        f"the hardest, {row['network']} at {where}, {verb} the criterion by "
        f"{margin_images:.2g} image(s) of {n_img} on average over repeats "
        f"({'test-set ' if unknown else ''}se {se_images:.2g} images)"
    )
    if unknown:  # only the test set's share is known: a lower bound on the effort
        parts.append(
            f"the test set alone then needs at least about {math.ceil(effort['factor'] * n_img)} "
            "images"
            if effort["factor"] > 1
            else f"the {n_img} images alone would decide it; whether 2 repeats do depends on "
            "the spread they show"
        )
        return "; ".join(parts)
    parts.append(
        f"deciding it needs about {math.ceil(effort['factor'] * n_img)} images and "
        f"{math.ceil(effort['factor'] * reps)} repeats together"
    )
    if math.isfinite(effort["repeats"]):
        parts.append(f"or {effort['repeats']} repeats on the {n_img} images")
    else:
        parts.append(f"more repeats alone cannot (the {n_img}-image test set limits it)")
    if math.isfinite(effort["images"]):
        parts.append(f"or {effort['images']} images at {reps} repeat(s)")
    return "; ".join(parts)
