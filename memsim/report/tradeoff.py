"""The trade-off figure: accuracy at the operating point against total energy, with area.

Reads ``summary.csv`` (its ``accuracy_at_operating_point``, ``total_energy_pj_per_inference``
and ``area_mm2`` columns) and never simulates. One column of panels per workload × format ×
condition: on top accuracy against total energy per inference, below area against total energy;
the same marker and colour per policy in both, and the Pareto-optimal policies ringed. The
accuracy bars are the noise the Pareto rule allows each point: ± :data:`NOISE_SIGMAS` standard
errors of :func:`_stderr` (:func:`accuracy_error`), so a bar is drawn wherever the rule counts
noise, also where the repeats agree exactly (std 0) and the binomial bound of the images is all
there is. The rule judges the *difference* of two points: on shared images its error is the
sum of theirs, so two points whose bars overlap are exactly the pairs it does not separate
(without image counts the errors combine in quadrature, and slightly overlapping bars can be).

Pareto optimality (:func:`pareto_optimal`) is decided within each panel on three axes:
higher accuracy, lower total energy, lower area. Accuracy differences within the noise do
not count: policy ``a`` dominates ``b`` when ``a`` costs no more energy and no more area,
its accuracy is not lower than ``b``'s by more than :data:`NOISE_SIGMAS` standard errors of
the difference, and it is strictly better somewhere (cheaper, or more accurate beyond that
noise). So a policy whose accuracy gain is unresolved is not kept alive by it.

A standard error (:func:`_stderr`) is the spread over repeats, but never below the binomial
bound of the ``n_images`` images the repeats share (:func:`memsim.fit.shared_images_se`): the
spread alone is 0 whenever the repeats agree (a deterministic policy, a low ``p``), which made
two policies a couple of images apart "resolved". The policies of one panel are measured on
the same images, so the standard error of their difference is bounded by the *sum* of theirs
(Minkowski, whatever their correlation); without ``n_images`` (spread only) the spreads of
independent noise draws combine in quadrature.
"""

from __future__ import annotations

import math

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from memsim.fit import shared_images_se  # noqa: E402

MARKERS = "osD^vP*Xh<>"

#: Standard errors of an accuracy difference below which it is treated as unresolved.
NOISE_SIGMAS = 2.0

#: What the accuracy bars are, printed on the figure.
CAPTION = (
    f"accuracy bars: ± {NOISE_SIGMAS:g} standard errors (spread over repeats,\nnever below "
    "the images' binomial error): the Pareto rule's noise"
)

PANEL_KEYS = ("workload", "format", "condition")

REQUIRED = ("accuracy_at_operating_point", "total_energy_pj_per_inference", "area_mm2")


def _number(row: pd.Series, column: str) -> float:
    """``row[column]`` as a float; NaN where it is missing or not a number. NumPy scalars
    count (a row taken with ``.iloc`` holds ``numpy.int64``, not ``int``)."""
    value = row.get(column, math.nan)
    number = isinstance(value, float | int | np.integer | np.floating)
    return float(value) if number and not isinstance(value, bool) else math.nan


def _stderr(row: pd.Series) -> float:
    """Standard error of a row's accuracy at the operating point: its spread over repeats
    (``std / sqrt(n_repeats)``), never below the binomial bound of its ``n_images`` shared
    images where that is known (with one repeat it is all there is). Never 0 for a lack of
    spread: repeats that agree, or a single draw, do not make a gap between two policies a
    finding. 0 only where neither a spread nor an image count is known."""
    std, n = _number(row, "accuracy_at_operating_point_std"), _number(row, "n_repeats")
    spread = std / math.sqrt(n) if n >= 2 and not math.isnan(std) else math.nan
    a, images = _number(row, "accuracy_at_operating_point"), _number(row, "n_images")
    bound = float(shared_images_se(a, images))  # NaN without images
    se = float(np.fmax(spread, bound))
    return 0.0 if math.isnan(se) else se


def accuracy_error(row: pd.Series) -> float:
    """Half-length of a row's accuracy bar in the figure: :data:`NOISE_SIGMAS` ×
    :func:`_stderr`, the noise the Pareto rule allows one point (0 only where neither a
    spread nor an image count is known)."""
    return NOISE_SIGMAS * _stderr(row)


def _difference_stderr(a: pd.Series, b: pd.Series) -> float:
    """Standard error of the accuracy difference of two rows of one panel (module notes)."""
    shared = _number(a, "n_images") > 0 and _number(b, "n_images") > 0
    return _stderr(a) + _stderr(b) if shared else math.hypot(_stderr(a), _stderr(b))


def pareto_optimal(group: pd.DataFrame) -> pd.Series:
    """Boolean per row of ``group``: not dominated by any other row (module notes)."""
    rows = list(group.iterrows())
    keep = []
    for i, (_, b) in enumerate(rows):
        dominated = False
        for j, (_, a) in enumerate(rows):
            if i == j:
                continue
            noise = NOISE_SIGMAS * _difference_stderr(a, b)
            gap = a["accuracy_at_operating_point"] - b["accuracy_at_operating_point"]
            e_a, e_b = a["total_energy_pj_per_inference"], b["total_energy_pj_per_inference"]
            s_a, s_b = a["area_mm2"], b["area_mm2"]
            no_worse = e_a <= e_b and s_a <= s_b and gap >= -noise
            better = e_a < e_b or s_a < s_b or gap > noise
            if no_worse and better:
                dominated = True
                break
        keep.append(not dominated)
    return pd.Series(keep, index=group.index, dtype=bool)


def tradeoff_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows that can be drawn, with a ``pareto`` column (per panel)."""
    if any(c not in summary for c in REQUIRED):
        return summary.iloc[0:0].assign(pareto=pd.Series(dtype=bool))
    rows = summary.dropna(subset=list(REQUIRED)).copy()
    rows["pareto"] = False
    for _, group in rows.groupby(list(PANEL_KEYS), dropna=False):
        rows.loc[group.index, "pareto"] = pareto_optimal(group)
    return rows


def accuracy_energy_area(summary: pd.DataFrame) -> plt.Figure:
    """The trade-off figure (module notes)."""
    rows = tradeoff_frame(summary)
    panels = sorted({tuple(r) for r in rows[list(PANEL_KEYS)].astype(str).to_numpy()}) or [
        ("", "", "")
    ]
    policies = sorted(rows["policy"].unique()) if len(rows) else []
    style = {p: (f"C{i % 10}", MARKERS[i % len(MARKERS)]) for i, p in enumerate(policies)}
    fig, axes = plt.subplots(
        2, len(panels), figsize=(4.6 * len(panels), 7.0), squeeze=False, sharex="col"
    )
    for col, key in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        sel = rows[
            (rows[list(PANEL_KEYS)].astype(str) == pd.Series(key, index=PANEL_KEYS)).all(axis=1)
        ]
        for _, r in sel.iterrows():
            colour, marker = style[r["policy"]]
            x = r["total_energy_pj_per_inference"]
            top.errorbar(
                x,
                r["accuracy_at_operating_point"],
                yerr=accuracy_error(r),
                fmt=marker,
                color=colour,
                ms=7,
                capsize=2,
            )
            bottom.plot(x, r["area_mm2"], marker, color=colour, ms=7)
            if r["pareto"]:
                for ax, y in ((top, r["accuracy_at_operating_point"]), (bottom, r["area_mm2"])):
                    ax.plot(x, y, "o", ms=15, mfc="none", mec="black", mew=1.2)
        title = " / ".join(k for k in key if k)
        top.set_title(title or "all", fontsize=10)
        top.set_ylabel("accuracy at operating point")
        bottom.set_ylabel("area (mm²)")
        bottom.set_xlabel("total energy per inference (pJ)")
        energies = sel["total_energy_pj_per_inference"]
        wide = len(energies) and energies.max() > 10 * energies.min()
        for ax in (top, bottom):
            if wide:  # several decades: log axis, labels on the decades only
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            else:  # within a decade: a linear axis with a shared exponent stays readable
                ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
                ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
            ax.grid(True, alpha=0.3)
    handles = [
        plt.Line2D([], [], ls="", marker=style[p][1], color=style[p][0], label=p) for p in policies
    ]
    handles.append(
        plt.Line2D(
            [], [], ls="", marker="o", ms=12, mfc="none", mec="black", label="Pareto-optimal"
        )
    )
    fig.suptitle(CAPTION, fontsize=9)
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    return fig
