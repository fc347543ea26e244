"""Summary of the binarized-network study: tolerance, lowest sufficient energy, with uncertainty.

Pure functions of the points frame that :mod:`memsim.studies.bnn` stores (and the report reads).

Uncertainty of a point. A network's accuracy at a point is the mean over ``R`` fault-map
draws (repeats) on the same ``n`` test images. Its loss against the error-free network is
uncertain for two reasons, and both are counted:

* **fault maps**: the spread of the per-repeat accuracies, ``s_f² / R``;
* **the test set** (binomial): the ``n`` images are a sample. Against the network's own
  error-free accuracy the comparison is paired image by image, so the per-image variance of
  the difference is ``(lost + gained)/n − ((lost − gained)/n)²``, from the images a fault map
  made wrong (``n_lost``) and right (``n_gained``); averaged over repeats and divided by ``n``
  (the repeats share the images, so this part does not shrink with ``R``). Against the plain
  network's error-free accuracy (another network) the two binomial variances add.

A point *passes* when its mean accuracy is at least the floor (error-free accuracy minus
``tolerance_points``), as before; with the uncertainty it passes *surely* when the margin
exceeds ``z·se`` (``z`` from ``confidence``), fails surely below ``−z·se``, and is *undecided*
in between. The tolerated BER and the lowest sufficient programming energy are given as an
estimate with an optimistic and a pessimistic bound (undecided points counted as passing,
resp. failing). Plain and error-aware networks are compared on those intervals: a comparison
whose intervals overlap is **not resolved**, and the summary says how many repeats or images
would decide the undecided points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

NETWORKS = ("plain", "error_aware")
GROUP = ["network", "sweep", "condition", "p01", "p10"]


def point_means(points: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of accuracy over repeats, per network/sweep/condition/rate.

    Columns: the group keys, ``accuracy`` (mean), ``accuracy_std`` (over repeats),
    ``energy_pj``, ``repeats``, ``n_images``, ``var_fault`` (per-repeat variance of accuracy,
    0 for one repeat) and ``var_image`` (mean per-image variance of the paired difference
    to the error-free network, see the module docstring).
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
    means["var_fault"] = means["accuracy_std"].fillna(0.0) ** 2
    return means


@dataclass(frozen=True)
class Criterion:
    """How a point is judged: floor accuracy, confidence, and which error-free accuracy is paired."""

    floor: float
    z: float
    paired: bool
    reference_accuracy: float


def _margins(curve: pd.DataFrame, crit: Criterion) -> pd.DataFrame:
    """``margin`` (accuracy − floor), its ``se``, and the point's ``status``."""
    out = curve.copy()
    out["margin"] = out["accuracy"] - crit.floor
    n = out["n_images"].astype(float)
    if crit.paired:
        var_b = out["var_image"].fillna(0.0) / n
    else:
        a, c = out["accuracy"], crit.reference_accuracy
        var_b = (a * (1 - a) + c * (1 - c)) / n
    out["var_b"] = var_b
    out["se"] = np.sqrt(out["var_fault"] / out["repeats"] + var_b)
    clean = out["sweep"] == "clean"
    if crit.paired:  # the error-free network against itself: no uncertainty
        out.loc[clean, ["se", "var_b"]] = 0.0
    lower, upper = out["margin"] - crit.z * out["se"], out["margin"] + crit.z * out["se"]
    out["status"] = np.where(lower >= 0, "pass", np.where(upper < 0, "fail", "undecided"))
    return out


def tolerated_ber(curve: pd.DataFrame, floor: float) -> tuple[float, float, bool]:
    """Largest grid rate up to which the mean accuracy stays >= ``floor``.

    Parameters
    ----------
    curve : DataFrame
        Columns ``p01`` (the rate) and ``accuracy`` (mean per rate), any order.
    floor : float

    Returns
    -------
    grid : float
        The largest passing grid rate before the first failure (0 if the first fails).
    interpolated : float
        Log-linear interpolation of the crossing between that rate and the first failing one
        (``grid`` when no rate fails or the first one fails).
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
    frac = (a0 - floor) / (a0 - a1) if a0 != a1 else 0.0
    interp = math.exp(math.log(p[i - 1]) + frac * (math.log(p[i]) - math.log(p[i - 1])))
    return float(p[i - 1]), float(interp), False


def _tolerance(curve: pd.DataFrame, shift: float) -> tuple[float, bool]:
    """Tolerated grid rate when every margin is moved by ``shift`` standard errors."""
    shifted = pd.DataFrame({"p01": curve["p01"], "accuracy": curve["margin"] + shift * curve["se"]})
    grid, _, censored = tolerated_ber(shifted, 0.0)
    return grid, censored


def _lowest_energy(cond: pd.DataFrame, passing: pd.Series) -> pd.Series | None:
    ok = cond[passing]
    return ok.loc[ok["energy_pj"].idxmin()] if len(ok) else None


def resolving_effort(row: pd.Series, z: float) -> dict[str, float]:
    """Repeats and images that would decide one undecided point (its margin > z·se).

    Returns ``repeats`` (at the current images), ``images`` (at the current repeats) and
    ``factor`` (scaling both together); ``inf`` where no amount of that alone suffices
    (also for a margin of exactly 0: a tie with the criterion is never decided).
    """
    margin = abs(float(row["margin"]))
    r, n = float(row["repeats"]), float(row["n_images"])
    var_f, var_b1 = float(row["var_fault"]), float(row["var_b"]) * n  # per repeat, per image
    if margin == 0:
        return {"repeats": math.inf, "images": math.inf, "factor": math.inf}
    budget = (margin / z) ** 2
    repeats = math.ceil(var_f / (budget - var_b1 / n)) if budget > var_b1 / n else math.inf
    images = math.ceil(var_b1 / (budget - var_f / r)) if budget > var_f / r else math.inf
    factor = (var_f / r + var_b1 / n) / budget
    return {"repeats": max(repeats, 1), "images": max(images, 1), "factor": factor}


def summarize(
    points: pd.DataFrame, tolerance_points: float = 1.0, confidence: float = 0.95
) -> pd.DataFrame:
    """Per network and reference: tolerated BER and lowest sufficient energy, with bounds.

    Pure function of the points frame. References: ``own`` (each network's own error-free
    accuracy) and ``plain`` (the plain network's). ``energy_ratio`` = lowest sufficient energy
    of the plain network / that of this network (so the plain row is 1), with
    ``energy_ratio_low``/``_high`` from the energy bounds. ``*_low``/``*_high`` columns are the
    pessimistic/optimistic bounds at ``confidence`` (see the module docstring);
    ``undecided_points`` counts the points whose pass/fail the uncertainty leaves open.
    """
    tol = tolerance_points / 100.0
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    means = point_means(points)
    clean = means[means["sweep"] == "clean"].set_index("network")["accuracy"]
    rows = []
    for ref in ("own", "plain"):
        for name in [n for n in NETWORKS if n in clean.index]:
            base = clean[name] if ref == "own" else clean.get("plain", math.nan)
            crit = Criterion(
                base - tol, z, paired=ref == "own" or name == "plain", reference_accuracy=base
            )
            mine = _margins(means[means["network"] == name], crit)
            ber = mine[mine["sweep"].isin(["clean", "ber"])]
            if len(ber):
                grid, interp, censored = tolerated_ber(ber, crit.floor)
                low, _ = _tolerance(ber, -z)
                high, high_censored = _tolerance(ber, +z)
            else:
                grid = interp = low = high = math.nan
                censored = high_censored = False
            cond = mine[mine["sweep"] == "condition"]
            best = _lowest_energy(cond, cond["margin"] >= 0)
            optimistic = _lowest_energy(cond, cond["status"] != "fail")
            pessimistic = _lowest_energy(cond, cond["status"] == "pass")
            n_img = int(means.loc[means["network"] == name, "n_images"].min())
            rows.append(
                {
                    "network": name, "reference": ref, "clean_accuracy": clean[name], "floor_accuracy": crit.floor,
                    "tolerated_ber": grid, "tolerated_ber_interp": interp, "tolerated_censored": censored,
                    "min_energy_pj": math.nan if best is None else float(best["energy_pj"]),
                    "min_energy_condition": "" if best is None else str(best["condition"]),
                    "accuracy_at_min_energy": math.nan if best is None else float(best["accuracy"]),
                    "clean_accuracy_se": math.sqrt(clean[name] * (1 - clean[name]) / n_img),
                    "n_images": n_img, "repeats": int(mine["repeats"].max()), "confidence": confidence,
                    "tolerated_ber_low": low, "tolerated_ber_high": high,
                    "tolerated_ber_high_censored": high_censored,
                    "min_energy_pj_low": math.nan if optimistic is None else float(optimistic["energy_pj"]),
                    "min_energy_pj_high": math.nan if pessimistic is None else float(pessimistic["energy_pj"]),
                    "undecided_points": int((mine["status"] == "undecided").sum()),
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
    (``error_aware lower``/``plain lower``/``equal`` for energy, ``... higher`` for the
    tolerance, or ``not resolved`` when the intervals overlap) and, when not resolved,
    ``resolve_hint``: the repeats or images that would decide every undecided point that
    the comparison hinges on.
    """
    summary = summarize(points, tolerance_points, confidence) if summary is None else summary
    own = summary[summary["reference"] == "own"].set_index("network")
    if not set(NETWORKS) <= set(own.index):
        return pd.DataFrame()
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    tol = tolerance_points / 100.0
    means = point_means(points)
    rows = []
    for quantity, sweeps, better in (
        ("tolerated_ber", ("clean", "ber"), "higher"),
        ("min_energy_pj", ("condition",), "lower"),
    ):
        est = {n: _interval(own.loc[n], quantity) for n in NETWORKS}
        (pe, plo, phi), (we, wlo, whi) = est["plain"], est["error_aware"]
        if any(math.isnan(v) for v in (plo, wlo)):
            verdict = "not resolved"
        elif plo == phi == wlo == whi:
            verdict = "equal"
        elif (better == "lower" and whi < plo) or (better == "higher" and wlo > phi):
            verdict = f"error_aware {better}"
        elif (better == "lower" and phi < wlo) or (better == "higher" and plo > whi):
            verdict = f"plain {better}"
        else:
            verdict = "not resolved"
        hint = ""
        if verdict == "not resolved":
            hint = _hint(means, sweeps, own, tol, z)
        rows.append(
            {
                "quantity": quantity, "plain": pe, "plain_low": plo, "plain_high": phi,
                "error_aware": we, "error_aware_low": wlo, "error_aware_high": whi,
                "verdict": verdict, "resolve_hint": hint, "confidence": confidence,
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def _hint(
    means: pd.DataFrame, sweeps: tuple[str, ...], own: pd.DataFrame, tol: float, z: float
) -> str:
    undecided = []
    for name in NETWORKS:
        crit = Criterion(
            own.loc[name, "clean_accuracy"] - tol, z, True, own.loc[name, "clean_accuracy"]
        )
        mine = _margins(means[(means["network"] == name) & means["sweep"].isin(sweeps)], crit)
        undecided += [r for _, r in mine[mine["status"] == "undecided"].iterrows()]
    if not undecided:
        return "the grid or condition set is too coarse to separate the two networks"
    efforts = [resolving_effort(r, z) for r in undecided]
    worst = max(range(len(undecided)), key=lambda i: efforts[i]["factor"])
    row, effort = undecided[worst], efforts[worst]
    where = row["condition"] or f"p={row['p01']:.3g}"
    n_img, reps = int(row["n_images"]), int(row["repeats"])
    if not math.isfinite(effort["factor"]):
        return (
            f"{len(undecided)} undecided point(s); {row['network']} at {where} sits exactly on "
            f"the criterion (margin 0): no sample size decides a tie"
        )
    margin_images = abs(float(row["margin"])) * n_img
    verb = "passes" if float(row["margin"]) > 0 else "misses"
    parts = [
        f"{len(undecided)} undecided point(s); the hardest, {row['network']} at {where}, {verb} "
        f"the criterion by {margin_images:.2g} image(s) of {n_img} on average over repeats "
        f"(se {float(row['se']) * n_img:.2g} images)",
        f"deciding it needs about {math.ceil(effort['factor'] * n_img)} images and "
        f"{math.ceil(effort['factor'] * reps)} repeats together",
    ]
    if math.isfinite(effort["repeats"]):
        parts.append(f"or {effort['repeats']} repeats on the {n_img} images")
    else:
        parts.append(f"more repeats alone cannot (the {n_img}-image test set limits it)")
    if math.isfinite(effort["images"]):
        parts.append(f"or {effort['images']} images at {reps} repeat(s)")
    if reps < 2:
        parts.append(
            "with one repeat the fault-map spread is unknown (counted as 0): run at least 2"
        )
    return "; ".join(parts)
