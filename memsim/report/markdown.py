"""The Markdown report: a pure function from tables and figure paths to ``report.md`` text.

Sits at the very end of the data flow; :func:`memsim.report.write_report` gathers the inputs
from a results folder and calls :func:`render`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from memsim.report.tables import markdown_table

SUMMARY_VIEW = [
    "workload",
    "format",
    "policy",
    "condition",
    "a_max",
    "mu",
    "mu_ci_low",
    "mu_ci_high",
    "sigma",
    "p99",
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
    """
    fit = config.get("fit", {})
    grid = config.get("grid", {})
    sweep = config.get("sweep", {})
    scale = fit.get("scale", "log10p")
    lines = [
        f"# memsim report: {config.get('name', 'experiment')}",
        "",
        config.get("description", "") or "",
        "",
        "## What was run",
        "",
        f"- workloads: {', '.join(w['label'] for w in config.get('workloads', []))}",
        f"- formats: {', '.join(config.get('formats', []))}",
        f"- policies: {', '.join(p['label'] for p in config.get('policies', []))} (baseline for overheads: {config.get('baseline', '')})",
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
        + f"; {int(fit.get('confidence', 0.95) * 100)} % bootstrap CI over repeats. "
        "p99 is the largest p keeping 99 % of a_max. Energy and latency are per inference from the "
        "memory model; overheads are ratios to the baseline policy.",
        "",
    ]
    view = [c for c in SUMMARY_VIEW if c in summary.columns]
    lines += [markdown_table(summary, view) if len(summary) else "_No fitted curves yet._", ""]
    if (
        len(summary)
        and summary.get("total_energy_pj_per_inference", pd.Series(dtype=float)).notna().any()
    ):
        lines += [
            "Full cost per inference: write energy (`energy_pj_per_inference`), read energy, "
            "standby energy (leakage × latency) and their total; area of the activation buffer, "
            "weights and policy logic; energy-delay and energy-delay-area products. "
            "Overheads are ratios to the baseline policy.",
            "",
            markdown_table(summary, [c for c in COST_VIEW if c in summary.columns]),
            "",
        ]
    notes = summary[summary["fit_status"] != "ok"] if "fit_status" in summary else summary.iloc[0:0]
    if len(notes):
        lines += ["Curves without a fitted midpoint:", ""]
        for row in notes.drop_duplicates(["workload", "format", "policy", "mask"]).itertuples():
            lines.append(
                f"- {row.workload} · {row.format} · {row.policy} · {row.mask}: {row.mu_note} ({row.fit_status})"
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
        lines += [f"### {caption}", "", f"![{caption}]({path})", "", f"([SVG]({svg}))", ""]
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


def _grid_text(grid: Mapping) -> str:
    values: Sequence[float] = grid.get("values") or []
    if values:
        return f"{len(values)} values from {min(values):.1e} to {max(values):.1e}"
    p_min, p_max = grid.get("p_min", 1e-8), grid.get("p_max", 1e-1)
    ppd = grid.get("points_per_decade", 3)
    n = max(2, round((math.log10(p_max) - math.log10(p_min)) * ppd) + 1)
    return f"{n} log-spaced values from {p_min:.0e} to {p_max:.0e}"
