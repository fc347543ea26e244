"""Summary tables: pure functions from result frames to the tables of the report.

Sits after the results store: inputs are the points table (``points.csv``), the memory-model
table (``memory.csv``) and the programming conditions (``conditions.csv``); outputs are the
per-curve fits and ``summary.csv``. Nothing here simulates; fits are analysis of stored points.
Column meanings are documented in ``docs/results.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from memsim.fit import FitResult, fit_points, shared_images_interval

CURVE_COLUMNS = ("workload", "format", "policy", "mask")

#: Columns of ``summary.csv`` in order (the contract).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "workload",
    "format",
    "policy",
    "mask",
    "condition",
    "num_classes",
    "a_max",
    "a_min",
    "mu",
    "mu_ci_low",
    "mu_ci_high",
    "mu_note",
    "fit_status",
    "fit_scale",
    "sigma",
    "p99",
    "fit_r2",
    "fit_rmse",
    "n_points",
    "n_repeats",
    "operating_p01",
    "operating_p10",
    "accuracy_at_operating_point",
    "accuracy_at_operating_point_std",
    "energy_pj_per_inference",
    "latency_ns_per_inference",
    "energy_overhead",
    "latency_overhead",
    "mu_gain",
    "read_energy_pj_per_inference",
    "standby_energy_pj_per_inference",
    "total_energy_pj_per_inference",
    "area_mm2",
    "energy_delay_pj_ns",
    "energy_delay_area_pj_ns_mm2",
    "total_energy_overhead",
    "area_overhead",
)

#: Ratio columns of ``summary.csv``: (column, the column it divides by the baseline's).
#: ``mu_gain`` is not among them: it is a ratio of two fitted values with intervals
#: (:func:`mu_gains`).
OVERHEADS = (
    ("energy_overhead", "energy_pj_per_inference"),
    ("latency_overhead", "latency_ns_per_inference"),
    ("total_energy_overhead", "total_energy_pj_per_inference"),
    ("area_overhead", "area_mm2"),
)

#: μ's ratio to the reference policy's, and the bounds of that ratio.
MU_GAIN_COLUMNS = ("mu_gain", "mu_gain_low", "mu_gain_high")

#: Cost columns copied from ``memory.csv`` (empty when the memory model did not write them).
COST_COLUMNS = (
    "energy_pj_per_inference",
    "latency_ns_per_inference",
    "latency_ns_sd",
    "latency_draws",
    "standby_energy_pj_sd",
    "total_energy_pj_sd",
    "energy_delay_pj_ns_sd",
    "energy_delay_area_pj_ns_mm2_sd",
    "read_energy_pj_per_inference",
    "standby_energy_pj_per_inference",
    "total_energy_pj_per_inference",
    "area_mm2",
    "energy_delay_pj_ns",
    "energy_delay_area_pj_ns_mm2",
)
#: Columns added to ``summary.csv`` after the first ones: what qualifies the numbers above.
SUMMARY_COLUMNS = SUMMARY_COLUMNS + (
    "n_drop_points",
    "fit_advice",
    "p99_data",
    "p99_data_ci_low",
    "p99_data_ci_high",
    "p99_bracket_low",
    "p99_bracket_high",
    "p99_note",
    "n_images",
    "accuracy_at_operating_point_ci_low",
    "accuracy_at_operating_point_ci_high",
    "reference_policy",
    "reference_condition",
    "energy_overhead_same_condition",
    "latency_overhead_same_condition",
    "mu_gain_low",
    "mu_gain_high",
    "p_min",
    "p_max",
    "mu_ci_open",
    "p99_data_ci_open",
    "latency_ns_sd",
    "latency_overhead_sd",
    "latency_draws",
    "standby_energy_pj_sd",
    "total_energy_pj_sd",
    "energy_delay_pj_ns_sd",
    "energy_delay_area_pj_ns_mm2_sd",
    "total_energy_overhead_sd",
)

#: Columns :func:`add_overheads` fills in.
OVERHEAD_COLUMNS = (
    *(col for col, _ in OVERHEADS),
    *MU_GAIN_COLUMNS,
    "reference_policy",
    "reference_condition",
    "energy_overhead_same_condition",
    "latency_overhead_same_condition",
    "latency_overhead_sd",
    "total_energy_overhead_sd",
)


def fit_curves(
    points: pd.DataFrame,
    *,
    scale: str = "log10p",
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[tuple, tuple[FitResult, int]]:
    """Fit every curve of a points table.

    Returns
    -------
    dict
        ``(workload, format, policy, mask) -> (FitResult, num_classes)``. ``a_max`` is the
        curve's clean (noise-free) accuracy; curves without a clean point are skipped.
    """
    fits: dict[tuple, tuple[FitResult, int]] = {}
    if points.empty:
        return fits
    for key, group in points.groupby(list(CURVE_COLUMNS), sort=True):
        clean = group[group["kind"] == "clean"]
        sweep = group[group["kind"] == "sweep"]
        if clean.empty:
            continue
        num_classes = int(clean["num_classes"].iloc[0])
        a_max = float(clean["accuracy"].mean())
        fit = fit_points(
            sweep["p"].to_numpy(),
            sweep["accuracy"].to_numpy(),
            sweep["repeat"].to_numpy(),
            a_max=a_max,
            num_classes=num_classes,
            scale=scale,
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
        )
        fits[tuple(key)] = (fit, num_classes)
    return fits


def summary_table(
    points: pd.DataFrame,
    memory: pd.DataFrame | None = None,
    conditions: pd.DataFrame | None = None,
    *,
    baseline: str = "baseline",
    reference_condition: str | None = None,
    fits: Mapping[tuple, tuple[FitResult, int]] | None = None,
    **fit_options,
) -> pd.DataFrame:
    """One row per workload × format × policy × mask × programming condition.

    Parameters
    ----------
    points : DataFrame
        The points table.
    memory : DataFrame, optional
        ``memory.csv``: energy and latency per inference by workload, format, policy, condition.
    conditions : DataFrame, optional
        ``conditions.csv``: one row per condition with ``operating_p01``/``operating_p10``.
    baseline : str
        The reference policy: the label the overheads are measured against.
    reference_condition : str, optional
        The reference's programming condition (default: :func:`reference_condition_of`).
    fits : mapping, optional
        Precomputed :func:`fit_curves` output; computed with ``fit_options`` otherwise.
    """
    fits = fit_curves(points, **fit_options) if fits is None else fits
    conds = _conditions(conditions)
    rows = []
    for key, (fit, num_classes) in fits.items():
        curve = dict(zip(CURVE_COLUMNS, key))
        group = _select(points, curve)
        n_repeats = int(group.loc[group["kind"] == "sweep", "repeat"].nunique())
        for cond in conds:
            op = group[
                (group["kind"] == "operating")
                & np.isclose(group["p"], cond["operating_p01"], rtol=1e-12, atol=0)
                & np.isclose(group["p10"], cond["operating_p10"], rtol=1e-12, atol=0)
            ]
            correct = float(np.round(op["accuracy"] * op["n_images"]).sum())
            pooled = correct / float(op["n_images"].sum()) if len(op) else math.nan
            op_low, op_high = (
                shared_images_interval(pooled, float(op["n_images"].max()))
                if len(op)
                else (np.nan,) * 2
            )
            op = op["accuracy"]
            cost = _cost(memory, curve, cond["condition"])
            rows.append(
                {
                    **curve,
                    "condition": cond["condition"],
                    "num_classes": num_classes,
                    "a_max": fit.a_max,
                    "a_min": fit.a_min,
                    "mu": fit.mu,
                    "mu_ci_low": fit.mu_ci_low,
                    "mu_ci_high": fit.mu_ci_high,
                    "mu_note": fit.note,
                    "fit_status": fit.status,
                    "fit_scale": fit.scale,
                    "sigma": fit.sigma,
                    "p99": fit.p99,
                    "n_drop_points": fit.n_drop_points,
                    "fit_advice": fit.advice,
                    "p99_data": fit.p99_data,
                    "p99_data_ci_low": fit.p99_data_ci_low,
                    "p99_data_ci_high": fit.p99_data_ci_high,
                    "p99_bracket_low": fit.p99_bracket_low,
                    "p99_bracket_high": fit.p99_bracket_high,
                    "p99_note": fit.p99_note,
                    "p_min": fit.p_min,
                    "p_max": fit.p_max,
                    "mu_ci_open": fit.mu_ci_open,
                    "p99_data_ci_open": fit.p99_data_ci_open,
                    "n_images": int(group.loc[group["kind"] == "sweep", "n_images"].max())
                    if (group["kind"] == "sweep").any()
                    else 0,
                    "accuracy_at_operating_point_ci_low": float(op_low),
                    "accuracy_at_operating_point_ci_high": float(op_high),
                    "fit_r2": fit.r2,
                    "fit_rmse": fit.rmse,
                    "n_points": fit.n_points,
                    "n_repeats": n_repeats,
                    "operating_p01": cond["operating_p01"],
                    "operating_p10": cond["operating_p10"],
                    "accuracy_at_operating_point": float(op.mean()) if len(op) else math.nan,
                    "accuracy_at_operating_point_std": float(op.std(ddof=1))
                    if len(op) > 1
                    else math.nan,
                    **cost,
                }
            )
    summary = pd.DataFrame(rows, columns=[c for c in SUMMARY_COLUMNS if c not in OVERHEAD_COLUMNS])
    if reference_condition is None:
        reference_condition = reference_condition_of([c["condition"] for c in conds])
    return add_overheads(summary, baseline, reference_condition)


def reference_condition_of(conditions: list[str], wanted: str = "") -> str:
    """The reference condition: ``wanted`` if given, else ``nominal`` if run, else the first."""
    if wanted:
        return wanted
    return "nominal" if "nominal" in conditions or not conditions else conditions[0]


def add_overheads(
    summary: pd.DataFrame, baseline: str, reference_condition: str = "nominal"
) -> pd.DataFrame:
    """Ratios to the reference: ``baseline`` at ``reference_condition``.

    ``energy_overhead``/``latency_overhead`` divide by the reference of the same workload,
    format and mask (one number for every condition, so rows compare across conditions);
    ``*_same_condition`` divide by ``baseline`` at each row's own condition; ``mu_gain``
    divides μ by the reference policy's (μ does not depend on the condition), with bounds
    (:func:`mu_gains`).
    """
    summary = summary.copy()
    keys = ["workload", "format", "mask"]
    at_ref = summary[
        (summary["policy"] == baseline) & (summary["condition"] == reference_condition)
    ].set_index(keys)
    same = summary[summary["policy"] == baseline].set_index([*keys, "condition"])
    for col, ref_col, base, with_condition in (
        *((col, ref_col, at_ref, False) for col, ref_col in OVERHEADS),
        ("energy_overhead_same_condition", "energy_pj_per_inference", same, True),
        ("latency_overhead_same_condition", "latency_ns_per_inference", same, True),
    ):
        values = []
        for _, row in summary.iterrows():
            k = tuple(row[c] for c in (*keys, "condition") if with_condition or c != "condition")
            b = base[ref_col].get(k, math.nan) if k in base.index else math.nan
            values.append(row[ref_col] / b if b and not math.isnan(b) else math.nan)
        summary[col] = values
    for col, value, sd in (
        ("latency_overhead", "latency_ns_per_inference", "latency_ns_sd"),
        ("total_energy_overhead", "total_energy_pj_per_inference", "total_energy_pj_sd"),
    ):
        summary[f"{col}_sd"] = [
            _ratio_sd(row, at_ref.loc[k] if k in at_ref.index else None, col, value, sd)
            for row, k in ((r, tuple(r[c] for c in keys)) for _, r in summary.iterrows())
        ]
    gains = []
    for _, row in summary.iterrows():
        k = tuple(row[c] for c in keys)
        ref = at_ref.loc[k] if k in at_ref.index else None
        gains.append(mu_gains(row, ref, same=row["policy"] == baseline))
    gain_frame = pd.DataFrame(gains, index=summary.index, columns=list(MU_GAIN_COLUMNS))
    for col in MU_GAIN_COLUMNS:
        summary[col] = gain_frame[col].astype(float)
    summary["reference_policy"] = baseline
    summary["reference_condition"] = reference_condition
    return summary[list(SUMMARY_COLUMNS)]


def ratio_sd(a: float, sd_a: float, b: float, sd_b: float) -> float:
    """Standard deviation of ``a / b`` for independent ``a ± sd_a`` and ``b ± sd_b`` (two
    simulated inferences with their own seeds): relative spreads in quadrature, first order."""
    if not (a and b):
        return math.nan
    return float(abs(a / b) * math.hypot(sd_a / a, sd_b / b))


def _ratio_sd(
    row: Mapping,
    ref: Mapping | None,
    overhead: str = "latency_overhead",
    value: str = "latency_ns_per_inference",
    sd: str = "latency_ns_sd",
) -> float:
    """Standard deviation of an overhead (``value`` over the reference's, :func:`ratio_sd`);
    0 for the reference row itself, a ratio of one draw to itself."""
    if ref is None or not np.isfinite(row.get(overhead, math.nan)):
        return math.nan
    if row["policy"] == ref["policy"] and row["condition"] == ref["condition"]:
        return 0.0
    pairs = [(float(r[value]), float(r.get(sd, math.nan))) for r in (row, ref)]
    return ratio_sd(pairs[0][0], pairs[0][1], pairs[1][0], pairs[1][1])


def mu_gains(
    row: Mapping, ref: Mapping | None, *, same: bool = False
) -> tuple[float, float, float]:
    """``(mu_gain, mu_gain_low, mu_gain_high)`` of a summary row against the reference's.

    The bounds are the conservative ratio of the two μ intervals, ``μ_low / μ_ref_high`` and
    ``μ_high / μ_ref_low``: whatever the two intervals' correlation, the ratio of two values
    inside them lies inside these. A side open beyond the swept range (``mu_ci_open``) gives
    a bound of 0 or ``inf``; a missing interval (no bootstrap) a NaN bound. All three are NaN
    unless both fits have status ``ok``: a ratio of unresolved or collapsed fits is no finding.
    ``same``: the row is the reference policy itself (at any condition, μ is the same fit),
    so the ratio is exactly 1.
    """
    nan = (math.nan,) * 3
    if ref is None or row.get("fit_status") != "ok" or ref.get("fit_status") != "ok":
        return nan
    mu, mu_ref = float(row["mu"]), float(ref["mu"])
    if not (mu > 0 and mu_ref > 0):
        return nan
    if same:
        return 1.0, 1.0, 1.0
    low, high = _mu_bounds(row)
    ref_low, ref_high = _mu_bounds(ref)
    gain_low = low / ref_high if not math.isnan(low + ref_high) else math.nan
    if math.isnan(high + ref_low):
        gain_high = math.nan
    else:
        gain_high = math.inf if ref_low == 0 else high / ref_low
    return mu / mu_ref, gain_low, gain_high


def open_side(row: Mapping, column: str = "mu") -> str:
    """``row``'s ``<column>_ci_open``: ``"low"``, ``"high"``, ``"both"`` or ``""`` (also where it
    is missing or NaN, as a CSV round trip leaves an empty one)."""
    side = row.get(f"{column}_ci_open", "")
    return side if isinstance(side, str) else ""


def _mu_bounds(row: Mapping) -> tuple[float, float]:
    """μ's interval with an open side as 0 (below the range) or ``inf`` (above it)."""
    side = open_side(row)
    low, high = float(row.get("mu_ci_low", math.nan)), float(row.get("mu_ci_high", math.nan))
    if side in ("low", "both"):
        low = 0.0
    if side in ("high", "both"):
        high = math.inf
    return low, high


def curve_means(points: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Accuracy per curve and p (sweep points), for plots.

    ``mean``/``std``/``n`` are over repeats; ``ci_low``/``ci_high`` the interval of the pooled
    accuracy over ``n_trials = n_images × repeats`` classifications, with each of the images the
    repeats share counted once (:func:`~memsim.fit.shared_images_interval`).
    """
    columns = [*CURVE_COLUMNS, "p", "mean", "std", "n", "n_trials", "ci_low", "ci_high"]
    sweep = points[points["kind"] == "sweep"]
    if sweep.empty:
        return pd.DataFrame(columns=columns)
    sweep = sweep.assign(correct=np.round(sweep["accuracy"] * sweep["n_images"]))
    grouped = sweep.groupby([*CURVE_COLUMNS, "p"])
    means = grouped["accuracy"].agg(mean="mean", std="std", n="count")
    means["n_trials"] = grouped["n_images"].sum()
    pooled = grouped["correct"].sum() / means["n_trials"]
    means["ci_low"], means["ci_high"] = shared_images_interval(
        pooled.to_numpy(), grouped["n_images"].max().to_numpy(), confidence
    )
    return means.reset_index()[columns]


def _select(frame: pd.DataFrame, values: Mapping[str, object]) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for col, value in values.items():
        mask &= (frame[col] == value).to_numpy()
    return frame[mask]


def _conditions(conditions: pd.DataFrame | None) -> list[dict]:
    if conditions is None or conditions.empty:
        return [{"condition": "", "operating_p01": math.nan, "operating_p10": math.nan}]
    return conditions[["condition", "operating_p01", "operating_p10"]].to_dict("records")


def _cost(memory: pd.DataFrame | None, curve: Mapping[str, object], condition: str) -> dict:
    empty = dict.fromkeys(COST_COLUMNS, math.nan)
    if memory is None or memory.empty:
        return empty
    sel = _select(
        memory,
        {
            "workload": curve["workload"],
            "format": curve["format"],
            "policy": curve["policy"],
            "condition": condition,
        },
    )
    if sel.empty:
        return empty
    return {k: float(sel[k].iloc[0]) if k in sel else math.nan for k in empty}


def markdown_table(frame: pd.DataFrame, columns: list[str] | None = None, digits: int = 3) -> str:
    """A frame as a GitHub Markdown table, numbers to ``digits`` significant digits."""
    frame = frame if columns is None else frame[columns]

    def cell(v: object) -> str:
        if isinstance(v, float | np.floating):
            return "" if math.isnan(v) else f"{v:.{digits}g}"
        return str(v).replace("|", "\\|")

    lines = [
        "| " + " | ".join(frame.columns) + " |",
        "|" + "|".join("---" for _ in frame.columns) + "|",
    ]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)
