"""Report section of the binarized-network study: figures and Markdown from its result frames.

Reads what :mod:`memsim.studies.bnn` wrote (``points``, ``conditions``, ``summary`` frames);
never runs a simulation. :func:`accuracy_vs_ber` and :func:`accuracy_vs_energy` return
matplotlib figures, :func:`markdown_section` a Markdown string, :func:`write_section` saves
all three into a folder.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from memsim.report.plots import save  # noqa: E402
from memsim.studies.bnn import point_means  # noqa: E402

LABELS = {"plain": "plain training", "error_aware": "error-aware training"}
COLOURS = {"plain": "C0", "error_aware": "C3"}


def _networks(means: pd.DataFrame) -> list[str]:
    return [n for n in LABELS if n in set(means["network"])]


def accuracy_vs_ber(points: pd.DataFrame, tolerance_points: float = 1.0) -> plt.Figure:
    """Mean accuracy (±1 std over fault maps) against the bit error rate, per network.

    Dotted lines: each network's error-free accuracy minus ``tolerance_points``.
    """
    means = point_means(points)
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for name in _networks(means):
        curve = means[(means["network"] == name) & (means["sweep"] == "ber")].sort_values("p01")
        ax.errorbar(
            curve["p01"], 100 * curve["accuracy"], yerr=100 * curve["accuracy_std"].fillna(0.0),
            marker="o", ms=4, capsize=2, color=COLOURS[name], label=LABELS[name],
        )  # fmt: skip
        clean = means[(means["network"] == name) & (means["sweep"] == "clean")]["accuracy"]
        if len(clean):
            ax.axhline(
                100 * float(clean.iloc[0]) - tolerance_points, color=COLOURS[name], ls=":", lw=1
            )
    ax.set_xscale("log")
    ax.set_xlabel("weight bit error rate p (p01 = p10)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(
        f"BNN accuracy vs. weight bit errors (dotted: −{tolerance_points:g} point)", fontsize=10
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_energy(points: pd.DataFrame) -> plt.Figure:
    """Mean accuracy (±1 std) against the weight memory's programming energy, one marker per
    condition (not joined: conditions from different energy laws may be mixed)."""
    means = point_means(points)
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for name in _networks(means):
        cond = means[(means["network"] == name) & (means["sweep"] == "condition")].sort_values(
            "energy_pj"
        )
        ax.errorbar(
            cond["energy_pj"] / 1e3, 100 * cond["accuracy"], yerr=100 * cond["accuracy_std"].fillna(0.0),
            marker="s", ms=5, ls="none", capsize=2, color=COLOURS[name], label=LABELS[name],
        )  # fmt: skip
        if name == "plain":  # label the shipped presets; scaled ones ("_ic") would crowd it
            for _, row in cond[~cond["condition"].str.contains("_ic")].iterrows():
                ax.annotate(str(row["condition"]), (row["energy_pj"] / 1e3, 100 * row["accuracy"]),
                            fontsize=7, xytext=(3, -10), textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("weight-memory programming energy (nJ)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("BNN accuracy vs. programming energy", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _fmt(value: object, spec: str = ".3g") -> str:
    if isinstance(value, float) and math.isnan(value):
        return "–"
    return format(value, spec) if isinstance(value, int | float) else str(value)


def markdown_section(
    summary: pd.DataFrame,
    conditions: pd.DataFrame,
    *,
    title: str = "Binarized networks in RRAM",
    description: str = "",
    tolerance_points: float = 1.0,
    figures: dict[str, str] | None = None,
) -> str:
    """The study's Markdown section: tolerated BER, lowest tolerated energy and their ratio.

    Parameters
    ----------
    summary, conditions : DataFrame
        :func:`memsim.studies.bnn.summarize` and :func:`memsim.studies.bnn.condition_table` frames.
    title, description : str
        Heading and a paragraph saying what was run (workload, training schedule...).
    figures : dict, optional
        Caption → relative image path, embedded at the end.
    """
    lines = [f"## {title}", ""]
    if description:
        lines += [description, ""]
    lines += [
        f"Tolerated BER: largest grid rate whose mean accuracy stays within {tolerance_points:g} "
        "point(s) of the reference error-free accuracy (≥ when no grid rate fails); interpolated: "
        "log-linear crossing. Energy: every weight bit programmed once (SET for +1, RESET for −1; "
        "2T2R = SET + RESET per bit).",
        "",
        "| network | reference | error-free acc. | tolerated BER | interpolated | lowest energy within "
        "tolerance (nJ) | condition | energy ratio plain / this |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        ber = ("≥ " if r["tolerated_censored"] else "") + _fmt(float(r["tolerated_ber"]))
        lines.append(
            f"| {LABELS.get(r['network'], r['network'])} | {r['reference']} | {100 * r['clean_accuracy']:.2f} % | "
            f"{ber} | {_fmt(float(r['tolerated_ber_interp']))} | {_fmt(float(r['min_energy_pj']) / 1e3)} | "
            f"{r['min_energy_condition'] or '–'} | {_fmt(float(r['energy_ratio']))} |"
        )
    if len(conditions):
        lines += [
            "",
            "| condition | cell | p01 | p10 | E_SET pJ | E_RESET pJ | weight bits | energy (nJ), plain |",
            "|---|---|---|---|---|---|---|---|",
        ]
        plain = conditions[conditions["network"] == conditions["network"].iloc[0]]
        for _, c in plain.iterrows():
            lines.append(
                f"| {c['condition']} | {c['cell']} | {c['p01']:.2e} | {c['p10']:.2e} | {c['e_set_pj']:.3g} | "
                f"{c['e_reset_pj']:.3g} | {int(c['weight_bits'])} | {c['energy_pj'] / 1e3:.4g} |"
            )
    for caption, path in (figures or {}).items():
        lines += ["", f"![{caption}]({path})"]
    return "\n".join(lines) + "\n"


def write_section(
    folder: str | os.PathLike,
    points: pd.DataFrame,
    conditions: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    description: str = "",
    tolerance_points: float = 1.0,
) -> Path:
    """Save both figures (PNG + SVG) and ``bnn_report.md`` in ``folder``; return the Markdown path."""
    folder = Path(folder)
    save(accuracy_vs_ber(points, tolerance_points), folder, "bnn_accuracy_vs_ber")
    save(accuracy_vs_energy(points), folder, "bnn_accuracy_vs_energy")
    text = markdown_section(
        summary, conditions, description=description, tolerance_points=tolerance_points,
        figures={"accuracy vs. bit error rate": "bnn_accuracy_vs_ber.png",
                 "accuracy vs. programming energy": "bnn_accuracy_vs_energy.png"},
    )  # fmt: skip
    path = folder / "bnn_report.md"
    path.write_text(text)
    return path
