"""The Markdown report: a pure function from tables and figure paths to ``report.md`` text.

Sits at the very end of the data flow; :func:`memsim.report.write_report` gathers the inputs
from a results folder and calls :func:`render`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from memsim.experiment.memory import SPREAD_COLUMNS
from memsim.fit import MAX_P99_GAP_DECADES, shared_images_interval
from memsim.report.plots import ACCURACY_BARS, MU_BARS
from memsim.report.tables import markdown_table, open_side

#: The headline table's columns. Accuracies carry their interval in the cell; ``sigma`` has
#: none (the fit gives no interval for it), so it stays in ``summary.csv`` only.
SUMMARY_VIEW = [
    "workload",
    "format",
    "policy",
    "condition",
    "a_max",
    "mu",
    "mu_ci_low",
    "mu_ci_high",
    "fit_status",
    "p99 (source)",
    "accuracy_at_operating_point",
    "energy_pj_per_inference",
    "latency_ns_per_inference",
    "energy_overhead",
    "latency_overhead",
]

#: The full-cost view: reads, standby, area and their products (docs/results.md).
COST_VIEW = [
    "workload",
    "format",
    "policy",
    "condition",
    "accuracy_at_operating_point",
    "energy_pj_per_inference",
    "read_energy_pj_per_inference",
    "standby_energy_pj_per_inference",
    "total_energy_pj_per_inference",
    "latency_ns_per_inference",
    "area_mm2",
    "energy_delay_pj_ns",
    "energy_delay_area_pj_ns_mm2",
    "total_energy_overhead",
    "area_overhead",
]


def render(
    *,
    config: Mapping,
    summary: pd.DataFrame,
    metadata: Mapping,
    figures: Mapping[str, str],
    n_points: int,
    writes: pd.DataFrame | None = None,
    source: object = None,
) -> str:
    """The report text.

    Parameters
    ----------
    config : mapping
        The resolved experiment config (``experiment.json``'s ``config``).
    summary : DataFrame
        ``summary.csv``.
    metadata : mapping
        ``metadata.json`` (versions, seed, revision).
    figures : mapping
        Caption → relative path of a PNG (an SVG of the same stem sits beside it).
    n_points : int
        Rows of ``points.csv``.
    writes : DataFrame, optional
        ``writes.csv``: write points per workload and kind of write.
    source : path, optional
        The results folder the points come from, when the report is written elsewhere.
    """
    fit = config.get("fit", {})
    grid = config.get("grid", {})
    sweep = config.get("sweep", {})
    scale = fit.get("scale", "log10p")
    level = int(fit.get("confidence", 0.95) * 100)
    reference = _reference(summary)
    lines = [
        f"# memsim report: {config.get('name', 'experiment')}",
        "",
        config.get("description", "") or "",
        "",
    ]
    if source is not None:
        lines += [
            f"A second report of the points stored in `{source}` (fit scale {scale}); that "
            "folder's own summary and figures are unchanged.",
            "",
        ]
    lines += [
        "## What was run",
        "",
        f"- workloads: {', '.join(w['label'] for w in config.get('workloads', []))}",
        f"- formats: {', '.join(config.get('formats', []))}",
        f"- policies: {', '.join(p['label'] for p in config.get('policies', []))} (overheads against: {reference or config.get('baseline', '')})",
        f"- noisy-bit masks: {', '.join(config.get('masks', []))}",
        f"- p grid: {_grid_text(grid)}, {sweep.get('repeats', '?')} repeats, "
        f"{'all' if not sweep.get('images') else sweep.get('images')} {sweep.get('split', 'test')} images per point, "
        f"coupled sampling {'on where exact' if sweep.get('coupled', True) else 'off'}"
        + (", adaptive" if config.get("adaptive", {}).get("enabled") else ""),
        f"- device: {config.get('device', '')}; programming conditions: {', '.join(config.get('conditions', [])) or 'the device default'}; "
        f"operating point: {config.get('operating_p', 'device')}",
        f"- write-point granularity: {_granularity_text(config, writes)}",
        f"- {n_points} accuracy points; seed {config.get('seed', 0)}; config hash {metadata.get('config_hash', '?')}",
        "",
        "## Summary",
        "",
        "Midpoint noise level μ from the logistic fit "
        "F(x) = 2·δa/(1 + exp((x − μ)/σ)) + a_min with a_min = 1/K, fitted in "
        + ("x = log10 p (σ in decades)" if scale == "log10p" else "x = p (σ in units of p)")
        + f"; {level} % bootstrap CI over repeats (the noise draws' spread on these images, "
        "not how μ would move on other images); a bound written `< p_min` or `> p_max` (the "
        "swept range) is open: resamples put μ beyond the range on that side. σ, the drop's "
        "width, is in `summary.csv` only: the fit gives it no interval. "
        "p99 is the largest p keeping 99 % of a_max, read from the measured points (`data`): "
        "interpolated in log10 p between the two grid points that bracket 0.99·a_max. Its "
        f"interval is the {level} % bootstrap over repeats widened to those two grid points, "
        "since the interpolation is an assumption and the data place the crossing only "
        "between them (without a bootstrap the bracket alone is given). Where the points do "
        "not bracket p99 the cell gives what the data say instead: `< p_min`, `> p_max`, or "
        f"`in [a, b]` where the bracketing points are more than {MAX_P99_GAP_DECADES:g} decades "
        "apart, as an adaptive sweep's jump to the drop is. The logistic fit's p99 (`fit`) "
        "is shown only for a fit with status ok that agrees with the data, and without an "
        "interval (the fit gives none for p99). a_max and the accuracy at the operating "
        "point: mean over repeats with the 95 % Wilson interval, counting each of the "
        "n_images images the repeats share once. "
        "Energy (pJ) and "
        "latency (ns) are per inference from the memory model: one simulated inference; "
        "where pulse rounds are random (write-verify, a comparison write) the latency reads "
        "`value ± sd`, the standard deviation over `latency_draws` simulated inferences "
        "(`memory.latency_draws`; `no spread in N draws` where they agreed, which does not "
        "make it fixed), and its overhead `± sd` of the ratio; standby, total energy and the "
        "energy-delay products, which follow the same inference's latency, likewise. "
        + (
            f"**Overheads are ratios to one reference, {reference}**, of the same workload, "
            "format and mask, for every condition; `energy_overhead_same_condition` and "
            "`latency_overhead_same_condition` in `summary.csv` divide by the reference "
            "policy at each row's own condition instead."
            if reference
            else "Overheads are ratios to the reference policy."
        ),
        "",
    ]
    lines += _reference_lines(summary, reference)
    table = _view(summary)
    lines += [markdown_table(table) if len(summary) else "_No fitted curves yet._", ""]
    if (
        len(summary)
        and summary.get("total_energy_pj_per_inference", pd.Series(dtype=float)).notna().any()
    ):
        lines += [
            "Full cost per inference: write energy (`energy_pj_per_inference`), read energy, "
            "standby energy (leakage × latency) and their total; area of the activation buffer, "
            "weights and policy logic; energy-delay and energy-delay-area products. "
            "Overheads are ratios to the reference stated above.",
            "",
            markdown_table(_cost_view(summary)),
            "",
        ]
    lines += _warnings(summary, fit)
    notes = _noted(summary)
    if len(notes):
        lines += ["Curves without a resolved midpoint or interval:", ""]
        for row in notes.drop_duplicates(["workload", "format", "policy", "mask"]).itertuples():
            advice = getattr(row, "fit_advice", "")
            advice = advice if isinstance(advice, str) else ""
            lines.append(
                f"- {row.workload} · {row.format} · {row.policy} · {row.mask}: {row.mu_note} "
                f"({row.fit_status})" + (f"; to resolve it: {advice}" if advice else "")
            )
        lines.append("")
    if metadata.get("skipped"):
        lines += ['Combinations left out (`incompatible = "skip"`):', ""]
        lines += [f"- {item}" for item in metadata["skipped"]] + [""]
    if writes is not None and len(writes):
        lines += [
            "## Write points",
            "",
            "Tensors written per inference, by kind of write (the producing module's class, or "
            "the operation at op granularity); elements per image.",
            "",
            markdown_table(
                writes, ["workload", "granularity", "kind", "writes", "elements_per_image"]
            ),
            "",
        ]
        for row in writes.drop_duplicates("workload").itertuples():
            if isinstance(row.fallback, str) and row.fallback:
                lines += [
                    f"- {row.workload}: op granularity fell back to module hooks: {row.fallback}"
                ]
        lines.append("")
    lines += ["## Figures", ""]
    for caption, path in figures.items():
        svg = path.rsplit(".", 1)[0] + ".svg"
        lines += [f"### {caption}", "", f"![{caption}]({path})", ""]
        if path.endswith("accuracy_vs_p.png"):
            lines += [ACCURACY_BARS[0].upper() + ACCURACY_BARS[1:] + ".", ""]
        elif path.endswith("mu_by_mask.png"):
            lines += [MU_BARS[0].upper() + MU_BARS[1:] + ".", ""]
        elif path.endswith("energy_vs_accuracy.png"):
            lines += [
                "Bars: 95 % Wilson interval of the accuracy at the operating point "
                "(each of the images the repeats share counted once); energy in pJ per inference.",
                "",
            ]
        lines += [f"([SVG]({svg}))", ""]
    lines += [
        "## Files",
        "",
        "- `points.csv`: every accuracy point; `summary.csv`: this table in full; "
        "`memory.csv`: energy and latency per inference with energy by category; "
        "`conditions.csv`: programming conditions and operating points; "
        "`config.toml`/`config.json`: the resolved config; `metadata.json`: versions and revision. "
        "Columns: docs/results.md.",
        "",
        "## Provenance",
        "",
        f"- memsim {metadata.get('memsim_version', '?')}, revision {metadata.get('git_revision') or 'unknown'}, "
        f"schema version {metadata.get('schema_version', '?')}",
        f"- Python {metadata.get('python', '?')}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(metadata.get("versions", {}).items())),
        "",
    ]
    return "\n".join(lines)


def _granularity_text(config: Mapping, writes: pd.DataFrame | None) -> str:
    sweep = config.get("sweep", {})
    default = sweep.get("granularity") or ("fused" if sweep.get("fused") else "module")
    if writes is None or not len(writes):
        return default
    used = writes.drop_duplicates("workload")
    return "; ".join(f"{r.workload} {r.granularity}" for r in used.itertuples())


def _reference(summary: pd.DataFrame) -> str:
    if "reference_policy" not in summary or summary.empty:
        return ""
    row = summary.iloc[0]
    condition = row["reference_condition"]
    return f"{row['reference_policy']}" + (f" at the {condition} condition" if condition else "")


def _reference_lines(summary: pd.DataFrame, reference: str) -> list[str]:
    """The reference's own accuracy and cost, so a ratio to a useless reference is visible."""
    if not reference:
        return []
    ref = summary[
        (summary["policy"] == summary["reference_policy"])
        & (summary["condition"] == summary["reference_condition"])
    ]
    if ref.empty:
        return [f"The reference ({reference}) has no row here: overheads are empty.", ""]
    lines = ["Reference rows (every overhead divides by these):", ""]
    for row in ref.to_dict("records"):
        accuracy = _operating_accuracy(row)
        lines.append(
            f"- {row['workload']} · {row['format']} · {row['mask']}: accuracy at the operating "
            f"point {accuracy or 'not measured'}, {_num(row['energy_pj_per_inference'])} pJ "
            f"and {_num(row['latency_ns_per_inference'])} ns per inference"
        )
    return [*lines, ""]


def _view(summary: pd.DataFrame) -> pd.DataFrame:
    """The report's columns: intervals, open bounds and p99 as text."""
    view = summary.copy()
    records = summary.to_dict("records")
    view["a_max"] = [_accuracy_text(row, "a_max") for row in records]
    view["accuracy_at_operating_point"] = [_operating_accuracy(row) for row in records]
    view["mu_ci_low"] = [_bound_text(row, "mu", "low") for row in records]
    view["mu_ci_high"] = [_bound_text(row, "mu", "high") for row in records]
    view["p99 (source)"] = [_p99_text(row) for row in records]
    _latency_texts(view, records)
    return view[[c for c in SUMMARY_VIEW if c in view.columns]]


def _cost_view(summary: pd.DataFrame) -> pd.DataFrame:
    """The full-cost table, the accuracy with its interval."""
    view = summary.copy()
    records = summary.to_dict("records")
    view["accuracy_at_operating_point"] = [_operating_accuracy(row) for row in records]
    _latency_texts(view, records)
    return view[[c for c in COST_VIEW if c in view.columns]]


def _latency_texts(view: pd.DataFrame, records: list[dict]) -> None:
    """Latency, what follows it and their overheads as ``value ± sd`` where the pulse rounds
    are random."""
    for column, sd in (
        *SPREAD_COLUMNS.items(),
        ("latency_overhead", "latency_overhead_sd"),
        ("total_energy_overhead", "total_energy_overhead_sd"),
    ):
        if column in view.columns:
            view[column] = [_spread_text(row, column, sd) for row in records]


def _spread_text(row: Mapping, column: str, sd_column: str) -> str:
    """``value ± sd``; the value alone where it is fixed (one draw); a note where the draws
    agreed (random rounds, no spread seen) or where no spread was recorded (older folders)."""
    value, sd = row.get(column, math.nan), row.get(sd_column, math.nan)
    draws = row.get("latency_draws", math.nan)
    if not _finite(value):
        return ""
    if not _finite(sd):
        return f"{_num(value)} (spread not recorded)"
    if sd > 0:
        return f"{_num(value)} ± {_num(sd)}"
    if _finite(draws) and draws > 1:
        return f"{_num(value)} (no spread in {draws:g} draws)"
    return _num(value)


def _noted(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows whose midpoint is not resolved, or whose fit carries a note (an open interval)."""
    if "fit_status" not in summary:
        return summary.iloc[0:0]
    noted = summary["fit_status"] != "ok"
    if "mu_note" in summary:
        noted |= summary["mu_note"].fillna("").astype(str).str.len() > 0
    return summary[noted]


def _operating_accuracy(row: Mapping) -> str:
    return _accuracy_text(
        row,
        "accuracy_at_operating_point",
        "accuracy_at_operating_point_ci_low",
        "accuracy_at_operating_point_ci_high",
    )


def _accuracy_text(row: Mapping, column: str, low_col: str = "", high_col: str = "") -> str:
    """``value [low, high]``: the stored interval, else the 95 % Wilson interval of the row's
    ``n_images`` images (repeats share them, so each counts once)."""
    value = row.get(column, math.nan)
    if not _finite(value):
        return ""
    low, high = row.get(low_col, math.nan), row.get(high_col, math.nan)
    n_images = row.get("n_images", math.nan)
    if not (_finite(low) and _finite(high)) and _finite(n_images) and n_images > 0:
        low, high = (float(v) for v in shared_images_interval(float(value), float(n_images)))
    if _finite(low) and _finite(high):
        return f"{_num(value)} [{_num(low)}, {_num(high)}]"
    return f"{_num(value)} (no interval: n_images unknown)"


def _open_sides(row: Mapping, column: str) -> str:
    """Which bound of ``column``'s interval is open: the fit's ``<column>_ci_open``; for a
    frame without it, a NaN bound beside a finite one (the other side was computed)."""
    if f"{column}_ci_open" in row:
        return open_side(row, column)
    low, high = row.get(f"{column}_ci_low", math.nan), row.get(f"{column}_ci_high", math.nan)
    if _finite(row.get(column, math.nan)) and _finite(low) != _finite(high):
        return "high" if _finite(low) else "low"
    return ""


def _bound_text(row: Mapping, column: str, side: str) -> str:
    """One bound of ``column``'s interval: its value, or ``< p_min`` / ``> p_max`` where the
    interval reaches beyond the swept range on that side (blank where there is none)."""
    if _open_sides(row, column) in (side, "both"):
        edge = row.get("p_min" if side == "low" else "p_max", math.nan)
        sign, name = ("<", "p_min") if side == "low" else (">", "p_max")
        return f"{sign} {edge:.1e}" if _finite(edge) else f"{sign} {name}"
    return _num(row.get(f"{column}_ci_{side}", math.nan))


def _p99_text(row: Mapping) -> str:
    """The report's p99 cell: the measured value with its interval, else the data's statement;
    the fit's value only for an ok fit that the data do not contradict, without an interval."""
    data = row.get("p99_data", math.nan)
    if _finite(data):
        low, high = _bound_text(row, "p99_data", "low"), _bound_text(row, "p99_data", "high")
        if low and high:
            return f"{_num(data)} [{low}, {high}] (data)"
        bracket = row.get("p99_bracket_low"), row.get("p99_bracket_high")
        if all(_finite(b) for b in bracket):
            between = f"[{_num(bracket[0])}, {_num(bracket[1])}]"
            return f"{_num(data)} {between} (data; grid bracket only, no bootstrap)"
        return f"{_num(data)} (data, no interval)"
    note = row.get("p99_note") or ""
    note = note if isinstance(note, str) else ""
    fitted = row.get("p99", math.nan)
    show_fit = row.get("fit_status") == "ok" and _finite(fitted) and _fit_agrees(row, fitted)
    fit_text = f"{_num(fitted)} (fit, no interval)" if show_fit else ""
    if note:
        return f"{note} (data)" + (f"; {fit_text}" if fit_text else "")
    return fit_text


def _fit_agrees(row: Mapping, fitted: float) -> bool:
    """Whether the fitted p99 lies where the data's censoring note puts p99."""
    low, high = row.get("p99_bracket_low", math.nan), row.get("p99_bracket_high", math.nan)
    if _finite(low) and fitted < low:
        return False
    return not (_finite(high) and fitted > high)


#: Fewest repeats whose bootstrap the report does not warn about: ``n`` repeats have
#: ``C(2n - 1, n)`` distinct resamples, 10 for 3 repeats and 35 for 4 (percentiles of ten
#: values are not a 95 % interval), 126 for 5.
MIN_BOOTSTRAP_REPEATS = 5


def _warnings(summary: pd.DataFrame, fit: Mapping) -> list[str]:
    lines = []
    # Only rows that report a bootstrap interval (a curve with no drop in range has none).
    with_ci = pd.Series(False, index=summary.index)
    for col in ("mu_ci_low", "p99_data_ci_low"):
        if col in summary:
            with_ci |= pd.to_numeric(summary[col], errors="coerce").notna()
    repeats = summary.loc[with_ci, "n_repeats"] if "n_repeats" in summary else pd.Series(dtype=int)
    few = sorted({int(r) for r in repeats if 0 < int(r) < MIN_BOOTSTRAP_REPEATS})
    if few and fit.get("bootstrap", 200):
        n = few[0]
        distinct = math.comb(2 * n - 1, n)
        lines += [
            f"**Warning:** the {int(fit.get('confidence', 0.95) * 100)} % bootstrap CIs come "
            f"from {n} repeat(s) per point: a bootstrap over {n} repeats has only {distinct} "
            "distinct resample(s), so the interval is not a reliable "
            f"{int(fit.get('confidence', 0.95) * 100)} % interval. Use sweep.repeats >= {MIN_BOOTSTRAP_REPEATS} "
            "(or adaptive mode).",
            "",
        ]
    return lines


def _finite(value: object) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _num(value: object) -> str:
    return f"{value:.3g}" if _finite(value) else ""


def _grid_text(grid: Mapping) -> str:
    values: Sequence[float] = grid.get("values") or []
    if values:
        return f"{len(values)} values from {min(values):.1e} to {max(values):.1e}"
    p_min, p_max = grid.get("p_min", 1e-8), grid.get("p_max", 1e-1)
    ppd = grid.get("points_per_decade", 3)
    n = max(2, round((math.log10(p_max) - math.log10(p_min)) * ppd) + 1)
    return f"{n} log-spaced values from {p_min:.0e} to {p_max:.0e}"
