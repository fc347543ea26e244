"""Report section of the binarized-network study: figures and Markdown from its result frames.

Reads what :mod:`memsim.studies.bnn` wrote (``points``, ``conditions``, ``summary``,
``comparison`` frames); never runs a simulation. :func:`accuracy_vs_ber` and
:func:`accuracy_vs_energy` return matplotlib figures, :func:`markdown_section` a Markdown
string, :func:`write_section` saves all three into a folder, and :func:`write_folder_report`
re-creates everything from a study's results folder alone (``memsim report DIR``).
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
from memsim.studies.bnn_summary import compare, point_means, summarize  # noqa: E402

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
        f"BNN accuracy vs. weight bit errors (error bars: ±1 std over fault maps; "
        f"dotted: −{tolerance_points:g} point)",
        fontsize=9,
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
    if isinstance(value, float) and math.isinf(value):
        return "unbounded"
    return format(value, spec) if isinstance(value, int | float) else str(value)


def markdown_section(
    summary: pd.DataFrame,
    conditions: pd.DataFrame,
    *,
    title: str = "Binarized networks in RRAM",
    description: str = "",
    tolerance_points: float = 1.0,
    figures: dict[str, str] | None = None,
    comparison: pd.DataFrame | None = None,
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
    comparison : DataFrame, optional
        :func:`memsim.studies.bnn_summary.compare`: the headline, first.
    """
    lines = [f"## {title}", ""]
    if description:
        lines += [description, ""]
    if comparison is not None and len(comparison):
        lines += _headline(comparison)
    lines += [
        f"Tolerated BER: largest grid rate whose mean accuracy stays within {tolerance_points:g} "
        "point(s) of the reference error-free accuracy (≥ when no grid rate fails); interpolated: "
        "log-linear crossing. Energy: every weight bit programmed once (SET for +1, RESET for −1; "
        "2T2R = SET + RESET per bit). Brackets: bounds at the stated confidence from the "
        "fault-map spread and the binomial error of the test set (undecided points counted as "
        "passing, resp. failing).",
        "",
        "| network | reference | error-free acc. | tolerated BER [bounds] | interpolated | lowest energy within "
        "tolerance, nJ [bounds] | condition | energy ratio plain / this [bounds] | undecided points |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        ber = ("≥ " if r["tolerated_censored"] else "") + _fmt(float(r["tolerated_ber"]))
        high_ber = ("≥ " if r["tolerated_ber_high_censored"] else "") + _fmt(
            float(r["tolerated_ber_high"])
        )
        energy = _fmt(float(r["min_energy_pj"]) / 1e3)
        e_low, e_high = (
            _fmt(float(r["min_energy_pj_low"]) / 1e3),
            _fmt(float(r["min_energy_pj_high"]) / 1e3),
        )
        ratio = f"{_fmt(float(r['energy_ratio']))} [{_fmt(float(r['energy_ratio_low']))}, {_fmt(float(r['energy_ratio_high']))}]"
        lines.append(
            f"| {LABELS.get(r['network'], r['network'])} | {r['reference']} | "
            f"{100 * r['clean_accuracy']:.2f} ± {100 * r['clean_accuracy_se']:.2f} % | "
            f"{ber} [{_fmt(float(r['tolerated_ber_low']))}, {high_ber}] | {_fmt(float(r['tolerated_ber_interp']))} | "
            f"{energy} [{e_low}, {e_high}] | {r['min_energy_condition'] or '–'} | {ratio} | {int(r['undecided_points'])} |"
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


def _headline(comparison: pd.DataFrame) -> list[str]:
    """Plain vs error-aware, each quantity with its bounds and whether the data resolve it."""
    confidence = float(comparison["confidence"].iloc[0])
    lines = [f"**Plain vs. error-aware training** ({confidence:.0%} bounds, own references):", ""]
    names = {"tolerated_ber": "tolerated BER", "min_energy_pj": "lowest sufficient energy"}
    for _, c in comparison.iterrows():
        scale = 1e-3 if c["quantity"] == "min_energy_pj" else 1.0
        unit = " nJ" if c["quantity"] == "min_energy_pj" else ""

        def val(net: str, c=c, scale=scale) -> str:
            return (
                f"{_fmt(float(c[net]) * scale)} [{_fmt(float(c[net + '_low']) * scale)}, "
                f"{_fmt(float(c[net + '_high']) * scale)}]"
            )

        verdict = c["verdict"]
        text = (
            f"- {names.get(c['quantity'], c['quantity'])}: plain {val('plain')}{unit}, "
            f"error-aware {val('error_aware')}{unit}: "
        )
        if verdict == "not resolved":
            text += f"**not resolved** by these data ({c['resolve_hint']})."
        else:
            text += f"{verdict.replace('_', '-')}."
        lines.append(text)
    return [*lines, ""]


def write_section(
    folder: str | os.PathLike,
    points: pd.DataFrame,
    conditions: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    description: str = "",
    tolerance_points: float = 1.0,
    comparison: pd.DataFrame | None = None,
) -> Path:
    """Save both figures (PNG + SVG) and ``bnn_report.md`` in ``folder``; return the Markdown path."""
    from memsim.paths import write_text_atomic

    folder = Path(folder)
    save(accuracy_vs_ber(points, tolerance_points), folder, "bnn_accuracy_vs_ber")
    save(accuracy_vs_energy(points), folder, "bnn_accuracy_vs_energy")
    text = markdown_section(
        summary, conditions, description=description, tolerance_points=tolerance_points,
        figures={"accuracy vs. bit error rate": "bnn_accuracy_vs_ber.png",
                 "accuracy vs. programming energy": "bnn_accuracy_vs_energy.png"},
        comparison=comparison,
    )  # fmt: skip
    return write_text_atomic(folder / "bnn_report.md", text)


def describe(config: dict) -> str:
    """One paragraph saying what a study ran, from its stored ``config.json``."""
    limit = config.get("eval_limit")
    eval_text = f"first {limit} test samples" if limit else "the whole test set"
    options = config.get("workload_options") or {}
    train = config.get("train", {})
    return (
        f"Workload `{config['workload']}`{' ' + str(options) if options else ''}; training: "
        f"{train.get('optimizer', '?')} lr {train.get('lr', '?')} {train.get('schedule', '?')}, "
        f"{train.get('epochs', '?')} epochs, batch {train.get('batch_size', '?')}, seed {train.get('seed', '?')}; "
        f"error-aware network: same recipe with weight-sign flips at BER {config['train_ber']:g} fresh "
        f"per batch. Evaluation on {eval_text}, {config['repeats']} fault-map draw(s) per point, weights "
        f"stored in {str(config['cell']).upper()} cells"
        f"{', binary activations noisy too' if config.get('activation_noise') else ''}; seed {config['seed']}."
    )


def write_folder_report(folder: str | os.PathLike) -> Path:
    """(Re-)create ``summary.csv``, ``comparison.csv``, figures and ``bnn_report.md`` of a study folder."""
    from memsim.experiment.store import load_points, read_experiment, write_csv_atomic
    from memsim.studies.bnn import BNN_ROWS

    folder = Path(folder)
    experiment = read_experiment(folder)
    config = experiment["config"]
    # Checked rows, and never fewer points than points.csv already shows.
    points = load_points(folder, experiment, BNN_ROWS)
    conditions = pd.read_csv(
        folder / "conditions.csv", keep_default_na=False, na_values=["NaN", "nan"]
    )
    tol, conf = float(config["tolerance_points"]), float(config.get("confidence", 0.95))
    summary = summarize(points, tol, conf)
    comparison = compare(points, tol, conf, summary=summary)
    write_csv_atomic(folder / "points.csv", points)
    write_csv_atomic(folder / "summary.csv", summary)
    write_csv_atomic(folder / "comparison.csv", comparison)
    return write_section(
        folder, points, conditions, summary, description=describe(config),
        tolerance_points=tol, comparison=comparison,
    )  # fmt: skip
