"""Report figures: pure functions from result frames to matplotlib figures (saved as PNG + SVG).

Sits after :mod:`memsim.report.tables`: it reads the points, summary and memory tables and
the fits; it never runs a simulation. Uses the non-interactive Agg backend so reports render
on machines without a display.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from memsim.fit import FitResult, from_x, logistic, to_x  # noqa: E402
from memsim.report.tables import curve_means  # noqa: E402

MARKERS = "osD^vP*Xh<>"


def accuracy_vs_p(points: pd.DataFrame, fits: Mapping[tuple, tuple[FitResult, int]]) -> plt.Figure:
    """Accuracy against p on a log axis: one panel per workload × format × mask, one colour per
    policy; markers are means over repeats (bars: ±1 std), lines the fitted logistic curves."""
    means = curve_means(points)
    panels = sorted({(w, f, m) for w, f, _, m in (k for k in fits)}) or [("", "", "")]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.8 * nrows), squeeze=False)
    policies = sorted({k[2] for k in fits})
    colours = {p: f"C{i % 10}" for i, p in enumerate(policies)}
    for ax, (workload, fmt, mask) in zip(axes.flat, panels):
        for i, policy in enumerate(policies):
            key = (workload, fmt, policy, mask)
            if key not in fits:
                continue
            fit, _ = fits[key]
            sel = means[
                (means["workload"] == workload)
                & (means["format"] == fmt)
                & (means["policy"] == policy)
                & (means["mask"] == mask)
            ]
            label = policy if fit.ok else f"{policy} ({fit.note})"
            ax.errorbar(
                sel["p"],
                sel["mean"],
                yerr=sel["std"].fillna(0),
                fmt=MARKERS[i % len(MARKERS)],
                ms=4,
                color=colours[policy],
                label=label,
                alpha=0.8,
                capsize=2,
            )
            if fit.ok and len(sel):
                xs = np.linspace(*to_x(np.array([sel["p"].min(), sel["p"].max()]), fit.scale), 300)
                ax.plot(
                    from_x(xs, fit.scale),
                    logistic(xs, _mu_x(fit), fit.sigma, fit.a_max, fit.a_min),
                    "-",
                    color=colours[policy],
                    lw=1.2,
                )
                ax.axvline(fit.mu, color=colours[policy], ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("bit-flip probability p (single pulse)")
        ax.set_ylabel("accuracy")
        title = f"{workload} · {fmt}" + ("" if mask == "all" else f" · mask {mask}")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def energy_vs_accuracy(summary: pd.DataFrame) -> plt.Figure:
    """Energy per inference against accuracy at the operating point: one panel per format,
    one point per policy × condition (colour: policy; label: condition when several)."""
    data = summary.dropna(subset=["energy_pj_per_inference", "accuracy_at_operating_point"])
    data = data[data["mask"] == "all"] if (data["mask"] == "all").any() else data
    policies = sorted(data["policy"].unique())
    formats = sorted(data["format"].unique()) or [""]
    several_conditions = data["condition"].nunique() > 1
    fig, axes = plt.subplots(1, len(formats), figsize=(5.2 * len(formats), 4.4), squeeze=False)
    for ax, fmt in zip(axes.flat, formats):
        sel = data[data["format"] == fmt]
        for _, row in sel.iterrows():
            i = policies.index(row["policy"])
            xy = (row["energy_pj_per_inference"] / 1e3, row["accuracy_at_operating_point"])
            ax.scatter(*xy, color=f"C{i % 10}", marker=MARKERS[i % len(MARKERS)], s=40, alpha=0.85)
            if several_conditions:
                ax.annotate(
                    str(row["condition"]), xy, fontsize=6, xytext=(3, 3), textcoords="offset points"
                )
        for i, p in enumerate(policies):
            ax.scatter([], [], color=f"C{i % 10}", marker=MARKERS[i % len(MARKERS)], label=p)
        ax.set_xscale("log")
        ax.set_xlabel("write energy per inference (nJ)")
        ax.set_ylabel("accuracy at the operating point")
        ax.set_title(f"Energy vs. accuracy · {fmt}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def mu_by_mask(summary: pd.DataFrame, masks: list[str]) -> plt.Figure:
    """Midpoint μ (with its CI) for each noisy-bit mask in config order: one line per
    workload × format × policy. Censored midpoints are left out (their note is in the table)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    rows = summary.drop_duplicates(["workload", "format", "policy", "mask"])
    for i, (key, group) in enumerate(rows.groupby(["workload", "format", "policy"], sort=True)):
        group = group.set_index("mask").reindex(masks)
        x = np.arange(len(masks))
        mu = group["mu"].to_numpy(dtype=float)
        low = mu - group["mu_ci_low"].to_numpy(dtype=float)
        high = group["mu_ci_high"].to_numpy(dtype=float) - mu
        yerr = np.nan_to_num(np.vstack([low, high]), nan=0.0)
        ax.errorbar(
            x,
            mu,
            yerr=yerr,
            fmt=MARKERS[i % len(MARKERS)] + "-",
            ms=4,
            capsize=2,
            label=" · ".join(key),
        )
    ax.set_xticks(np.arange(len(masks)), masks, rotation=30, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("noisy-bit mask")
    ax.set_ylabel("midpoint noise level μ")
    ax.set_title("Midpoint vs. noisy-bit mask", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def energy_by_category(memory: pd.DataFrame) -> plt.Figure:
    """Stacked bars of energy per inference by category for each policy (panels: workload ×
    format × condition)."""
    cats = [
        c
        for c in memory.columns
        if c.startswith("energy_") and c.endswith("_pj") and c != "energy_pj_per_inference"
    ]
    panels = sorted({(r.workload, r.format, r.condition) for r in memory.itertuples()}) or [
        ("", "", "")
    ]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.8 * nrows), squeeze=False)
    for ax, (workload, fmt, cond) in zip(axes.flat, panels):
        sel = memory[
            (memory["workload"] == workload)
            & (memory["format"] == fmt)
            & (memory["condition"] == cond)
        ]
        bottom = np.zeros(len(sel))
        for i, cat in enumerate(cats):
            values = sel[cat].to_numpy(dtype=float) / 1e3
            if not values.any():
                continue
            ax.bar(
                sel["policy"],
                values,
                bottom=bottom,
                color=f"C{i % 10}",
                label=cat[len("energy_") : -len("_pj")],
            )
            bottom += values
        ax.set_ylabel("energy per inference (nJ)")
        ax.set_title(f"{workload} · {fmt} · {cond}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, folder: Path, stem: str) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg`` in ``folder``; close it."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = folder / f"{stem}.{ext}"
        # SVGs embed a date by default; drop it so re-created reports are byte-identical.
        fig.savefig(path, dpi=130, metadata={"Date": None} if ext == "svg" else None)
        paths.append(path)
    plt.close(fig)
    return paths


def _mu_x(fit: FitResult) -> float:
    return float(to_x(fit.mu, fit.scale))


__all__ = ["accuracy_vs_p", "energy_by_category", "energy_vs_accuracy", "mu_by_mask", "save"]
