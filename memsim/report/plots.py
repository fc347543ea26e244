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
from matplotlib import ticker  # noqa: E402

from memsim.fit import FitResult, logistic, to_x  # noqa: E402
from memsim.report.tables import curve_means, open_side  # noqa: E402

MARKERS = "osD^vP*Xh<>"

#: Colour and dash pattern of each condition's operating-point line (dash-dot family).
OPERATING_STYLES = (
    ("k", "-."),
    ("0.35", (0, (6, 2, 1, 2, 1, 2))),
    ("0.55", (0, (2, 1, 2, 3))),
    ("0.2", (0, (8, 3))),
)

#: The one energy unit of tables and figures: the columns' ``_pj``.
ENERGY_UNIT = "pJ"

#: What the error bars of :func:`accuracy_vs_p` mean (also the report's caption).
ACCURACY_BARS = (
    "markers: mean accuracy over repeats; bars: 95 % Wilson interval of that mean, each of the "
    "images the repeats share counted once; lines: logistic fit (dashed where the fit is "
    "not resolved); dotted: fitted μ; grey dashed: chance level 1/K; dash-dot: device "
    "operating point(s)"
)

#: What the bars of :func:`mu_by_mask` mean (also the report's caption).
MU_BARS = (
    "markers: fitted midpoint μ per noisy-bit mask; bars: its bootstrap CI over repeats; a bar "
    "ending in a triangle at the edge of the swept range is open: its interval reaches beyond "
    "the range on that side; no bar: no interval was made; censored midpoints are left out"
)


class ReadableLogLocator(ticker.Locator):
    """Major ticks of a log axis that stay few and readable on any range.

    Over a decade or more: powers of ten (at most ``max_ticks``, thinned). Within less than a
    decade matplotlib's log locator has no major tick inside the view and labels minor ticks,
    which crowd into an unreadable row; here the ticks are then a few round linear values.
    """

    def __init__(self, max_ticks: int = 6) -> None:
        self.max_ticks = max_ticks

    def __call__(self):
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin: float, vmax: float):
        vmin, vmax = sorted((float(vmin), float(vmax)))
        if vmin <= 0 or not np.isfinite(vmax):
            return ticker.LogLocator(numticks=self.max_ticks).tick_values(max(vmin, 1e-300), vmax)
        if vmax / vmin >= 10:
            return ticker.LogLocator(numticks=self.max_ticks).tick_values(vmin, vmax)
        values = np.asarray(
            ticker.MaxNLocator(nbins=self.max_ticks - 2, steps=[1, 2, 2.5, 5, 10]).tick_values(
                vmin, vmax
            )
        )
        return values[(values > 0) & (values >= vmin) & (values <= vmax)]


def readable_log_axis(ax: plt.Axes, which: str = "x") -> None:
    """A log axis whose tick labels never crowd: :class:`ReadableLogLocator`, unlabelled minor
    ticks, and labels in the shortest form that tells the ticks apart."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(ReadableLogLocator())
    axis.set_major_formatter(ticker.FuncFormatter(_log_label))
    axis.set_minor_formatter(ticker.NullFormatter())


def _log_label(value: float, _pos: int | None = None) -> str:
    exponent = math.log10(value) if value > 0 else math.nan
    if math.isfinite(exponent) and abs(exponent - round(exponent)) < 1e-9:
        return f"$10^{{{round(exponent)}}}$"
    return f"{value:.3g}"


def accuracy_vs_p(
    points: pd.DataFrame,
    fits: Mapping[tuple, tuple[FitResult, int]],
    conditions: pd.DataFrame | None = None,
) -> plt.Figure:
    """Accuracy against p on a log axis: one panel per workload × format × mask, one colour per
    policy. See :data:`ACCURACY_BARS` for what markers, bars and lines mean; ``conditions``
    (``conditions.csv``) gives the operating points drawn as vertical lines."""
    means = curve_means(points)
    panels = sorted({(w, f, m) for w, f, _, m in (k for k in fits)}) or [("", "", "")]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.8 * nrows), squeeze=False)
    policies = sorted({k[2] for k in fits})
    colours = {p: f"C{i % 10}" for i, p in enumerate(policies)}
    operating = _operating_points(conditions)
    for ax, (workload, fmt, mask) in zip(axes.flat, panels):
        chance = None
        for i, policy in enumerate(policies):
            key = (workload, fmt, policy, mask)
            if key not in fits:
                continue
            fit, _ = fits[key]
            chance = fit.a_min
            sel = means[
                (means["workload"] == workload)
                & (means["format"] == fmt)
                & (means["policy"] == policy)
                & (means["mask"] == mask)
            ]
            if sel.empty:
                continue
            if fit.ok:
                label = policy
            elif fit.fitted:
                label = f"{policy} ({fit.status.replace('_', ' ')})"
            else:
                label = f"{policy} ({fit.note})"
            yerr = np.vstack([sel["mean"] - sel["ci_low"], sel["ci_high"] - sel["mean"]])
            ax.errorbar(
                sel["p"],
                sel["mean"],
                yerr=np.clip(np.nan_to_num(yerr), 0, None),
                fmt=MARKERS[i % len(MARKERS)],
                ms=4,
                color=colours[policy],
                label=label,
                alpha=0.8,
                capsize=2,
            )
            if fit.fitted:
                # Log-spaced samples: the axis is log whatever scale the fit used.
                ps = np.geomspace(sel["p"].min(), sel["p"].max(), 300)
                ax.plot(
                    ps,
                    logistic(to_x(ps, fit.scale), _mu_x(fit), fit.sigma, fit.a_max, fit.a_min),
                    "-" if fit.ok else "--",
                    color=colours[policy],
                    lw=1.2,
                )
                ax.axvline(fit.mu, color=colours[policy], ls=":", lw=0.8)
        if chance is not None:
            ax.axhline(chance, color="0.5", ls="--", lw=0.8, label=f"chance 1/K = {chance:.3g}")
        for j, (name, p01) in enumerate(operating):
            ax.axvline(
                p01,
                color=OPERATING_STYLES[j % len(OPERATING_STYLES)][0],
                ls=OPERATING_STYLES[j % len(OPERATING_STYLES)][1],
                lw=0.9,
                label=f"operating p ({name})",
            )
        ax.set_xscale("log")
        readable_log_axis(ax, "x")
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
    one point per policy × condition (colour: policy; label: condition when several). Bars: 95 %
    Wilson interval of the accuracy. Legends list only the policies drawn in their panel."""
    data = summary.dropna(subset=["energy_pj_per_inference", "accuracy_at_operating_point"])
    data = data[data["mask"] == "all"] if (data["mask"] == "all").any() else data
    policies = sorted(data["policy"].unique())
    formats = sorted(data["format"].unique()) or [""]
    several_conditions = data["condition"].nunique() > 1
    fig, axes = plt.subplots(1, len(formats), figsize=(5.2 * len(formats), 4.4), squeeze=False)
    for ax, fmt in zip(axes.flat, formats):
        sel = data[data["format"] == fmt]
        labelled = set()
        for _, row in sel.iterrows():
            i = policies.index(row["policy"])
            x, y = row["energy_pj_per_inference"], row["accuracy_at_operating_point"]
            low = row.get("accuracy_at_operating_point_ci_low", math.nan)
            high = row.get("accuracy_at_operating_point_ci_high", math.nan)
            yerr = (
                [[max(y - low, 0.0)], [max(high - y, 0.0)]]
                if np.isfinite([low, high]).all()
                else None
            )
            ax.errorbar(
                [x],
                [y],
                yerr=yerr,
                fmt=MARKERS[i % len(MARKERS)],
                color=f"C{i % 10}",
                ms=6,
                alpha=0.85,
                capsize=2,
                label=None if row["policy"] in labelled else row["policy"],
            )
            labelled.add(row["policy"])
            if several_conditions:
                ax.annotate(
                    str(row["condition"]),
                    (x, y),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_xscale("log")
        _pad_log_limits(ax, sel["energy_pj_per_inference"].to_numpy(dtype=float))
        readable_log_axis(ax, "x")
        ax.set_xlabel(f"write energy per inference ({ENERGY_UNIT})")
        ax.set_ylabel("accuracy at the operating point")
        ax.set_title(f"Energy vs. accuracy · {fmt}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if labelled:
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def mu_by_mask(summary: pd.DataFrame, masks: list[str]) -> plt.Figure:
    """Midpoint μ (with its CI) for each noisy-bit mask in config order: one line per
    workload × format × policy. Censored midpoints are left out (their note is in the table).
    See :data:`MU_BARS`: a bound open beyond the swept range (``mu_ci_open``) is drawn as a
    bar to that edge of the range ending in a triangle, never as a bar of zero length."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    rows = summary.drop_duplicates(["workload", "format", "policy", "mask"])
    any_open = False
    for i, (key, group) in enumerate(rows.groupby(["workload", "format", "policy"], sort=True)):
        group = group.set_index("mask").reindex(masks)
        x = np.arange(len(masks))
        mu = group["mu"].to_numpy(dtype=float)
        if not np.isfinite(mu).any():
            continue  # every midpoint censored: nothing to draw, so no legend entry either
        colour = f"C{i % 10}"
        ax.plot(x, mu, MARKERS[i % len(MARKERS)] + "-", ms=4, color=colour, label=" · ".join(key))
        for j, row in enumerate(group.to_dict("records")):
            any_open |= interval_bar(ax, x[j], row, colour)
    if any_open:
        ax.plot([], [], "^", color="0.3", ms=5, label=OPEN_LABEL)
    ax.set_xticks(np.arange(len(masks)), masks, rotation=30, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("noisy-bit mask")
    ax.set_ylabel("midpoint noise level μ")
    ax.set_title("Midpoint vs. noisy-bit mask", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def interval_bar(ax: plt.Axes, x: float, row: Mapping, colour: str, column: str = "mu") -> bool:
    """Draw the interval of ``row[column]`` (``<column>_ci_low`` / ``_ci_high`` /
    ``_ci_open``) at ``x``; True when a side of it is open.

    A finite bound gets a cap; an open one a bar to the swept range's edge (``p_min`` /
    ``p_max``, or a decade beyond the value where the range is unknown) and a triangle pointing
    on. No interval at all (no bootstrap) draws nothing.
    """
    mu = float(row.get(column, math.nan))
    if not (np.isfinite(mu) and mu > 0):
        return False
    side = open_side(row, column)
    ends = []
    for name, edge_col, factor, marker in (
        ("low", "p_min", 0.1, "v"),
        ("high", "p_max", 10.0, "^"),
    ):
        if side in (name, "both"):
            edge = float(row.get(edge_col, math.nan))
            end = edge if np.isfinite(edge) and edge > 0 else mu * factor
            # An edge on the wrong side of μ (μ fitted just outside the range) still points on.
            end = min(end, mu) if name == "low" else max(end, mu)
            ends.append((end, marker))
        else:
            bound = float(row.get(f"{column}_ci_{name}", math.nan))
            ends.append((bound, "_") if np.isfinite(bound) and bound > 0 else (math.nan, ""))
    (low, low_marker), (high, high_marker) = ends
    if np.isnan(low) and np.isnan(high):
        return False
    ax.vlines(x, low if np.isfinite(low) else mu, high if np.isfinite(high) else mu, colour, lw=1)
    for end, marker in ends:
        if marker:
            ax.plot([x], [end], marker, color=colour, ms=5 if marker != "_" else 6)
    return side != ""


#: Legend entry of the triangles :func:`interval_bar` ends an open side with.
OPEN_LABEL = "CI open beyond the swept range"


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
            values = sel[cat].to_numpy(dtype=float)
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
        ax.set_ylabel(f"energy per inference ({ENERGY_UNIT})")
        ax.set_title(f"{workload} · {fmt} · {cond}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        if ax.get_legend_handles_labels()[1]:
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


def _operating_points(conditions: pd.DataFrame | None) -> list[tuple[str, float]]:
    """(condition, operating p01) pairs, one per distinct operating point."""
    if conditions is None or conditions.empty or "operating_p01" not in conditions:
        return []
    seen: dict[float, str] = {}
    for row in conditions.itertuples():
        p01 = float(row.operating_p01)
        if np.isfinite(p01) and p01 > 0:
            seen[p01] = f"{seen[p01]}, {row.condition}" if p01 in seen else str(row.condition)
    return [(name, p01) for p01, name in seen.items()]


def _pad_log_limits(ax: plt.Axes, values: np.ndarray) -> None:
    """x limits 5 % (in log) beyond the data, so a single point still gets a visible range."""
    values = values[np.isfinite(values) & (values > 0)]
    if not values.size:
        return
    lo, hi = math.log10(values.min()), math.log10(values.max())
    pad = max(0.05 * (hi - lo), 0.02)
    ax.set_xlim(10 ** (lo - pad), 10 ** (hi + pad))


__all__ = [
    "ACCURACY_BARS",
    "ENERGY_UNIT",
    "MU_BARS",
    "ReadableLogLocator",
    "accuracy_vs_p",
    "energy_by_category",
    "energy_vs_accuracy",
    "mu_by_mask",
    "readable_log_axis",
    "save",
]
