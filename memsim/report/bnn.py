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
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from memsim.report.plots import save  # noqa: E402
from memsim.studies.bnn_summary import (  # noqa: E402
    EQUAL,
    compare,
    own_margins,
    point_means,
    summarize,
    z_value,
)

LABELS = {"plain": "plain training", "error_aware": "error-aware training"}
COLOURS = {"plain": "C0", "error_aware": "C3"}


def _networks(means: pd.DataFrame) -> list[str]:
    return [n for n in LABELS if n in set(means["network"])]


def bar_caption(confidence: float, tolerance_points: float | None, unknown: bool) -> str:
    """What the figures' error bars and markers show (their title, and the report's caption)."""
    text = (
        f"bars: {confidence:.0%} interval of each point's loss against its network's own "
        "error-free accuracy, the one pass/fail is decided with (fault-map spread + test-set "
        "error, never below the rule-of-three bound of a point where no image changed); "
        "hollow: undecided"
    )
    if tolerance_points is not None:
        text += f"; dotted: −{tolerance_points:g} point"
    if unknown:
        text += (
            "; one fault-map draw: the spread over fault maps is unknown, so the bars show the "
            "test set's share only and no point is decided"
        )
    return text


def _draw(ax, curve: pd.DataFrame, x: pd.Series, z: float, name: str, marker: str, **kw) -> bool:
    """Mean accuracy with ``±z·se`` bars (test-set share where ``se`` is unknown); hollow
    markers for undecided points. True when some ``se`` was unknown."""
    se = curve["se"].where(np.isfinite(curve["se"]), curve["se_image"])
    acc = curve["accuracy"].to_numpy(float)
    half = z * se.to_numpy(float)
    yerr = 100 * np.vstack([np.minimum(half, acc), np.minimum(half, 1 - acc)])  # within 0-100 %
    ax.errorbar(
        x, 100 * acc, yerr=yerr, marker=marker, capsize=2,
        color=COLOURS[name], label=LABELS[name], **kw,
    )  # fmt: skip
    open_ = (curve["status"] == "undecided").to_numpy()
    ax.plot(
        x[open_], 100 * curve["accuracy"][open_], marker=marker, ls="none",
        mfc="white", color=COLOURS[name], ms=kw.get("ms", 4), zorder=3,
    )  # fmt: skip
    return bool((~np.isfinite(curve["se"])).any())


def accuracy_vs_ber(
    points: pd.DataFrame, tolerance_points: float = 1.0, confidence: float = 0.95
) -> plt.Figure:
    """Mean accuracy against the bit error rate, per network, with the decision's bounds.

    Bars: ``±z·se`` of :func:`memsim.studies.bnn_summary.own_margins` (fault maps and test
    images, floored), the interval the summary decides each point with; hollow markers:
    undecided points. Dotted lines: each network's error-free accuracy minus
    ``tolerance_points``: a bar wholly above its line passes surely, wholly below fails surely.
    """
    z = z_value(confidence)
    margins = own_margins(point_means(points), tolerance_points, z)
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    unknown = False
    for name in _networks(margins):
        mine = margins[margins["network"] == name]
        curve = mine[mine["sweep"] == "ber"].sort_values("p01")
        unknown |= _draw(ax, curve, curve["p01"], z, name, "o", ms=4)
        clean = mine[mine["sweep"] == "clean"]["accuracy"]
        if len(clean):
            ax.axhline(
                100 * float(clean.iloc[0]) - tolerance_points, color=COLOURS[name], ls=":", lw=1
            )
    ax.set_xscale("log")
    ax.set_xlabel("weight bit error rate p (p01 = p10)")
    ax.set_ylabel("test accuracy (%)")
    caption = textwrap.fill(bar_caption(confidence, tolerance_points, unknown), 96)
    ax.set_title("BNN accuracy vs. weight bit errors\n" + caption, fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_energy(
    points: pd.DataFrame, tolerance_points: float = 1.0, confidence: float = 0.95
) -> plt.Figure:
    """Mean accuracy against the weight memory's programming energy, one marker per
    condition (not joined: conditions from different energy laws may be mixed), with the
    decision's bounds as in :func:`accuracy_vs_ber`."""
    z = z_value(confidence)
    margins = own_margins(point_means(points), tolerance_points, z)
    fig, ax = plt.subplots(figsize=(6.0, 4.4))
    unknown = False
    for name in _networks(margins):
        cond = margins[(margins["network"] == name) & (margins["sweep"] == "condition")]
        cond = cond.sort_values("energy_pj")
        unknown |= _draw(ax, cond, cond["energy_pj"] / 1e3, z, name, "s", ms=5, ls="none")
        if name == "plain":  # label the shipped presets; scaled ones ("_ic") would crowd it
            for _, row in cond[~cond["condition"].str.contains("_ic")].iterrows():
                ax.annotate(str(row["condition"]), (row["energy_pj"] / 1e3, 100 * row["accuracy"]),
                            fontsize=7, xytext=(3, -10), textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("weight-memory programming energy (nJ)")
    ax.set_ylabel("test accuracy (%)")
    caption = textwrap.fill(bar_caption(confidence, None, unknown), 96)
    ax.set_title("BNN accuracy vs. programming energy\n" + caption, fontsize=7)
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


def _num(row: pd.Series, key: str, scale: float = 1.0) -> float:
    value = row.get(key, math.nan)
    if value is None or (isinstance(value, str) and not value.strip()) or pd.isna(value):
        return math.nan
    return float(value) * scale


def _text(row: pd.Series, key: str) -> str:
    value = row.get(key, "")
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _ge(value: float, censored: object) -> str:
    """A tolerance, with ``≥`` when no grid rate failed (the grid ends before the crossing)."""
    return ("≥ " if bool(censored) and not math.isnan(value) else "") + _fmt(value)


def summary_cells(row: pd.Series) -> dict[str, str]:
    """One ``summary.csv`` row as the report's (and ``memsim bnn``'s) cells, header → text.

    Every estimate carries its bounds at the summary's confidence, tolerances their ``≥``
    when censored; an energy upper bound with no surely sufficient condition is "unbounded".
    """
    acc = [
        _num(row, k, 100.0) for k in ("clean_accuracy", "clean_accuracy_low", "clean_accuracy_high")
    ]
    censored, high_censored = row.get("tolerated_censored"), row.get("tolerated_ber_high_censored")
    energy = [
        _num(row, k, 1e-3) for k in ("min_energy_pj", "min_energy_pj_low", "min_energy_pj_high")
    ]
    if math.isnan(energy[2]) and not math.isnan(energy[1]):
        energy[2] = math.inf  # some condition may suffice, none surely does
    conds = [_text(row, k) for k in ("min_energy_condition", "min_energy_condition_low",
                                     "min_energy_condition_high")]  # fmt: skip
    ratio = [_num(row, k) for k in ("energy_ratio", "energy_ratio_low", "energy_ratio_high")]
    return {
        "network": LABELS.get(row["network"], str(row["network"])),
        "reference": str(row["reference"]),
        "error-free acc. % [bounds]": f"{acc[0]:.2f} [{acc[1]:.2f}, {acc[2]:.2f}]",
        "tolerated BER [bounds]": (
            f"{_ge(_num(row, 'tolerated_ber'), censored)} [{_fmt(_num(row, 'tolerated_ber_low'))}, "
            f"{_ge(_num(row, 'tolerated_ber_high'), high_censored)}]"
        ),
        "interpolated [bounds]": (
            f"{_ge(_num(row, 'tolerated_ber_interp'), censored)} "
            f"[{_fmt(_num(row, 'tolerated_ber_interp_low'))}, "
            f"{_ge(_num(row, 'tolerated_ber_interp_high'), high_censored)}]"
        ),
        "lowest energy within tolerance, nJ [bounds]": (
            f"{_fmt(energy[0])} [{_fmt(energy[1])}, {_fmt(energy[2])}]"
        ),
        "condition [bounds]": f"{conds[0] or '–'} [{conds[1] or '–'}, {conds[2] or 'none surely'}]",
        "energy ratio plain / this [bounds]": f"{_fmt(ratio[0])} [{_fmt(ratio[1])}, {_fmt(ratio[2])}]",
        "undecided points": str(int(row["undecided_points"])),
    }


def warnings(summary: pd.DataFrame) -> list[str]:
    """The summary's distinct warnings (one fault-map draw per point...)."""
    if "warning" not in summary:
        return []
    return list(dict.fromkeys(w for w in summary["warning"].fillna("") if w))


def markdown_section(
    summary: pd.DataFrame,
    conditions: pd.DataFrame,
    *,
    title: str = "Binarized networks in RRAM",
    description: str = "",
    tolerance_points: float = 1.0,
    figures: dict[str, str] | None = None,
    comparison: pd.DataFrame | None = None,
    figure_note: str = "",
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
    figure_note : str
        A paragraph before the figures (what their bars show).
    comparison : DataFrame, optional
        :func:`memsim.studies.bnn_summary.compare`: the headline, first.
    """
    lines = [f"## {title}", ""]
    if description:
        lines += [description, ""]
    lines += [f"**Warning:** {w}." for w in warnings(summary)]
    if lines[-1]:
        lines.append("")
    if comparison is not None and len(comparison):
        lines += headline_lines(comparison, summary)
    lines += [
        f"Tolerated BER: largest grid rate whose mean accuracy stays within {tolerance_points:g} "
        "point(s) of the reference error-free accuracy (≥ when no grid rate fails); interpolated: "
        "log-linear crossing. Energy: every weight bit programmed once (SET for +1, RESET for −1; "
        "2T2R = SET + RESET per bit). Brackets: bounds at the stated confidence from the "
        "fault-map spread and the binomial error of the test set (undecided points counted as "
        "passing, resp. failing; Wilson bounds for the error-free accuracy); an energy bound is "
        "unbounded when no condition is surely sufficient.",
        "",
    ]
    cells = [summary_cells(r) for _, r in summary.iterrows()]
    if cells:
        lines += ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
        lines += ["| " + " | ".join(c.values()) + " |" for c in cells]
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
    if figures and figure_note:
        lines += ["", figure_note]
    for caption, path in (figures or {}).items():
        lines += ["", f"![{caption}]({path})"]
    return "\n".join(lines) + "\n"


def headline_lines(comparison: pd.DataFrame, summary: pd.DataFrame | None = None) -> list[str]:
    """Plain vs error-aware, each quantity with its bounds and whether the data resolve it.

    Markdown lines (``memsim bnn`` prints them without the ``**``). With ``summary``, an
    unbounded tolerance is shown as ``≥`` the largest grid rate, as in the table.
    """
    confidence = float(comparison["confidence"].iloc[0])
    lines = [f"**Plain vs. error-aware training** ({confidence:.0%} bounds, own references):", ""]
    names = {"tolerated_ber": "tolerated BER", "min_energy_pj": "lowest sufficient energy"}
    grid_top = math.nan
    if summary is not None and len(summary) and "tolerated_ber_high" in summary:
        grid_top = float(summary["tolerated_ber_high"].max())
    for _, c in comparison.iterrows():
        energy = c["quantity"] == "min_energy_pj"
        scale, unit = (1e-3, " nJ") if energy else (1.0, "")

        def bound(value: float, scale: float = scale, energy: bool = energy) -> str:
            if math.isinf(value) and not energy and not math.isnan(grid_top):
                return f"≥ {_fmt(grid_top)}"
            return _fmt(value * scale)

        def val(net: str, c: pd.Series = c, bound=bound) -> str:
            censored = bool(c.get(net + "_censored", False))
            return (
                f"{_ge(float(c[net]), True) if censored else bound(float(c[net]))} "
                f"[{bound(float(c[net + '_low']))}, {bound(float(c[net + '_high']))}]"
            )

        verdict = c["verdict"]
        text = (
            f"- {names.get(c['quantity'], c['quantity'])}: plain {val('plain')}{unit}, "
            f"error-aware {val('error_aware')}{unit}"
        )
        if energy and "ratio" in c and not math.isnan(float(c["ratio"])):
            text += (
                f" (plain / error-aware {_fmt(float(c['ratio']))} [{_fmt(float(c['ratio_low']))}, "
                f"{_fmt(float(c['ratio_high']))}])"
            )
        if verdict == "not resolved":
            text += f": **not resolved** by these data ({c['resolve_hint']})."
        elif verdict == EQUAL:
            text += (
                f": {EQUAL} (both bounds on the same grid rate or condition; a finer grid could "
                "still separate them)."
            )
        else:
            text += f": {verdict.replace('_', '-')}."
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
    confidence: float | None = None,
) -> Path:
    """Save both figures (PNG + SVG) and ``bnn_report.md`` in ``folder``; return the Markdown path.

    ``confidence`` of the figures' bars: the summary's own by default (else 0.95).
    """
    from memsim.paths import write_text_atomic

    if confidence is None:
        has = "confidence" in summary and len(summary)
        confidence = float(summary["confidence"].iloc[0]) if has else 0.95
    folder = Path(folder)
    save(accuracy_vs_ber(points, tolerance_points, confidence), folder, "bnn_accuracy_vs_ber")
    save(accuracy_vs_energy(points, tolerance_points, confidence), folder, "bnn_accuracy_vs_energy")
    unknown = bool(warnings(summary))
    bars = bar_caption(confidence, None, unknown)
    text = markdown_section(
        summary, conditions, description=description, tolerance_points=tolerance_points,
        figures={"accuracy vs. bit error rate": "bnn_accuracy_vs_ber.png",
                 "accuracy vs. programming energy": "bnn_accuracy_vs_energy.png"},
        figure_note=f"Figures: {bars}; dotted: −{tolerance_points:g} point from each network's "
        "error-free accuracy.",
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
        tolerance_points=tol, comparison=comparison, confidence=conf,
    )  # fmt: skip
