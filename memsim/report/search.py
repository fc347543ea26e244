"""The mixed-policy search report: per-layer sensitivity, the Pareto front, the headline ratio.

Pure functions of a search folder's tables (``layers.csv``, ``degradation.csv``,
``search.csv``, ``points.csv``; see :mod:`memsim.studies.search`): nothing is simulated here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import t as student_t

from memsim.fit import shared_images_se
from memsim.report.tables import fit_curves, markdown_table, ratio_sd


def sensitivity_table(layers: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """Per layer (network order): bits and energy shares and the midpoint of its own curve."""
    only = points[points["policy"].str.match(r"^only:[^:]+$")] if len(points) else points
    fits = fit_curves(only) if len(only) else {}
    by_layer = {key[2][len("only:") :]: (key[0], fit) for key, (fit, _) in fits.items()}
    rows = []
    for row in layers.to_dict("records"):
        _, fit = by_layer.get(row["layer"], (None, None))
        rows.append(
            {
                **row,
                "p50": fit.mu if fit is not None else math.nan,
                "p50_ci_low": fit.mu_ci_low if fit is not None else math.nan,
                "p50_ci_high": fit.mu_ci_high if fit is not None else math.nan,
                "p50_ci_open": fit.mu_ci_open if fit is not None else "",
                "p_min": fit.p_min if fit is not None else math.nan,
                "p_max": fit.p_max if fit is not None else math.nan,
                "fit_status": fit.status if fit is not None else "not run",
            }
        )
    return pd.DataFrame(rows)


def accuracy_se(row: pd.Series) -> float:
    """A ``search.csv`` row's standard error of accuracy: ``accuracy_se``, never below the
    bound of its shared images (:func:`memsim.fit.shared_images_se`). A folder written before
    ``n_images`` was recorded gives no bound: a 0 there (repeats that agree) is NaN, unknown."""
    se = float(row.get("accuracy_se", math.nan))
    n = float(row.get("n_images", math.nan))
    if n > 0:
        se = float(np.fmax(se, shared_images_se(float(row["accuracy"]), n)))
    return se if se > 0 else math.nan


def headline(search: pd.DataFrame) -> dict:
    """The verified best assignment next to the best uniform policy, measured in the same run.

    Both are measured on the same images, as is the noise-free accuracy the target is a fraction
    of, so the standard error of a difference between them is bounded by the sum of theirs
    (:func:`memsim.fit.shared_images_se`): ``accuracy_difference_se`` (best minus uniform) and
    ``margin_stderr`` (best minus target). The difference is ``accuracy_resolved`` only beyond
    2 of them; ``margin_se`` is the margin in standard errors (NaN where no error is known).
    """
    best = search[search["best"]]
    unif = search[search["best_uniform"]]
    if unif.empty:  # no uniform policy meets the target: compare with the most accurate one
        u = search[search["uniform"]]
        unif = u.loc[[u["accuracy"].idxmax()]] if len(u) else u
    if best.empty or unif.empty:
        return {}
    b, u = best.iloc[0], unif.iloc[0]
    ratio = b["cost"] / u["cost"] if u["cost"] else math.nan
    # Each cost is one simulated inference, ± its latency's spread (cost_sd) over
    # cost_draws simulated ones, with their own seeds (memsim.report.tables.ratio_sd). A
    # folder written before cost_sd was recorded gives NaN: not resolved. Random rounds whose
    # draws all agreed give 0 without making the cost fixed: not judged.
    sd = ratio_sd(b["cost"], b.get("cost_sd", math.nan), u["cost"], u.get("cost_sd", math.nan))
    draws = max(float(r.get("cost_draws", 1)) for r in (b, u))
    unseen = sd == 0 and draws > 1
    # The sds are sample sds of a few draws: Student's t of the fewest draws that drew any.
    drawn = [float(r.get("cost_draws", 1)) for r in (b, u) if float(r.get("cost_draws", 1)) > 1]
    factor = float(student_t.ppf(0.975, min(drawn) - 1)) if drawn else 2.0
    se_b, se_u = accuracy_se(b), accuracy_se(u)
    diff = b["accuracy"] - u["accuracy"]
    diff_se = se_b + se_u  # same images: Minkowski, whatever their correlation
    clean, target = float(b["clean_accuracy"]), float(b["target_accuracy"])
    n = float(b.get("n_images", math.nan))
    # the target is a fraction of the clean accuracy on the same images: its error adds too
    clean_se = float(shared_images_se(clean, n)) if n > 0 else 0.0
    margin = b["accuracy"] - target
    margin_stderr = se_b + (target / clean if clean > 0 else 1.0) * clean_se
    return {
        "workload": b["workload"],
        "best_label": b["label"],
        "best_accuracy": b["accuracy"],
        "best_accuracy_se": se_b,
        "best_cost": b["cost"],
        "uniform_label": u["label"],
        "uniform_meets_target": bool(u["meets_target"]),
        "uniform_accuracy": u["accuracy"],
        "uniform_accuracy_se": se_u,
        "uniform_cost": u["cost"],
        "cost_ratio": ratio,
        "cost_ratio_sd": sd,
        "cost_draws": draws,
        "cost_resolved": bool(abs(ratio - 1.0) > factor * sd) if sd == sd and not unseen else False,
        "cost_factor": factor,
        "accuracy_difference": diff,
        "accuracy_difference_se": diff_se,
        "accuracy_resolved": bool(abs(diff) > 2 * diff_se) if diff_se == diff_se else False,
        "margin": margin,
        "margin_stderr": margin_stderr,
        "margin_se": margin / margin_stderr if margin_stderr > 0 else math.nan,
        "objective": b["objective"],
        "target_accuracy": target,
        "clean_accuracy": clean,
        "n_images": n,
    }


def _ratio_text(h: dict) -> str:
    """The cost ratio with its spread and whether it differs from 1 (beyond t·sd, Student's t
    of the draws behind the sd)."""
    ratio, sd = h["cost_ratio"], h["cost_ratio_sd"]
    if sd != sd:
        return f"{ratio:.3f}, no spread recorded: not resolved"
    if sd == 0 and h["cost_draws"] > 1:
        return (
            f"{ratio:.3f}, random pulse rounds but no spread seen in {h['cost_draws']:g} "
            "draws: not judged"
        )
    if sd == 0:
        return f"{ratio:.3f}, fixed costs"
    factor = h.get("cost_factor", 2.0)
    verdict = "resolved" if h["cost_resolved"] else f"not resolved, within {factor:.2f} sd of 1"
    return f"{ratio:.4f} ± {sd:.4f}, {verdict}"


def _degradation_matrix(degradation: pd.DataFrame, workload: str, layers: list) -> pd.DataFrame:
    """Layers (network order) × candidates (config order) of the measured degradation."""
    rows = degradation[degradation["workload"] == workload]
    matrix = rows.pivot(index="layer", columns="candidate", values="degradation")
    matrix = matrix.reindex(index=layers, columns=list(dict.fromkeys(rows["candidate"])))
    return matrix.reset_index()


def _degradation_note(rows: pd.DataFrame) -> list[str]:
    """How uncertain the degradation matrix is (its standard errors are in degradation.csv)."""
    if "n_images" not in rows:  # an older folder: its degradation_se was the spread alone
        return []
    se = rows["degradation_se"].dropna()
    if se.empty:
        return []
    return [
        "Noise-free minus mean accuracy at the operating point. Both are measured on the same "
        "images, so the standard error of each value (`degradation_se` in `degradation.csv`) is "
        f"bounded by the sum of theirs: {se.min():.2g} to {se.max():.2g} here. A value less "
        "than 2 standard errors from 0 is not resolved from no degradation.",
        "",
    ]


def plot_sensitivity(table: pd.DataFrame, path: Path) -> Path:
    """Midpoint per layer (left, log p) and bits written per layer (right), network order."""
    import matplotlib.pyplot as plt

    from memsim.report.plots import interval_bar

    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(table) + 2), 4))
    x = np.arange(len(table))
    ax2 = ax.twinx()
    ax2.bar(x, table["bits_written"], color="0.85", label="bits written / inference")
    ax2.set_yscale("log")
    ax2.set_ylabel("bits written per inference")
    # An interval open on a side (it reaches beyond the swept range) is drawn to that edge of
    # the range and ends in a triangle pointing on; a midpoint without an interval gets no bar.
    ax.plot(x, table["p50"], "o-", color="C0", ms=5, label="midpoint p50")
    for j, row in enumerate(table.to_dict("records")):
        interval_bar(ax, float(x[j]), row, "C0", column="p50")
    ax.set_yscale("log")
    ax.set_ylabel("p at half accuracy drop (this layer noisy only)")
    ax.set_xticks(x, table["layer"], rotation=60, ha="right", fontsize=8)
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_title(f"Per-layer sensitivity: {table['workload'].iloc[0]}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_pareto(search: pd.DataFrame, path: Path) -> Path:
    """Cost against verified accuracy: every verification, the front, uniform policies."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    mixed, unif = search[~search["uniform"]], search[search["uniform"]]
    ax.errorbar(
        mixed["cost"], mixed["accuracy"], yerr=mixed["accuracy_se"], fmt="o", color="C0",
        alpha=0.6, label="per-layer (verified)",
    )  # fmt: skip
    ax.errorbar(
        unif["cost"], unif["accuracy"], yerr=unif["accuracy_se"], fmt="s", color="C1",
        label="uniform",
    )  # fmt: skip
    for row in unif.to_dict("records"):
        ax.annotate(row["label"][4:], (row["cost"], row["accuracy"]), fontsize=7)
    front = search[search["pareto"]].sort_values("cost")
    ax.step(front["cost"], front["accuracy"], where="post", color="C2", label="Pareto front")
    best = search[search["best"]]
    if len(best):
        ax.plot(best["cost"], best["accuracy"], "*", ms=14, color="C3", label="best per-layer")
    ax.axhline(search["target_accuracy"].iloc[0], ls="--", color="0.5", label="target")
    ax.set_xlabel(f"{search['objective'].iloc[0]} per inference (memory model)")
    ax.set_ylabel("verified accuracy at the operating point")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_search_report(folder: str | Path) -> Path:
    """``report.md`` (+ figures) of a search folder; returns its path."""
    folder = Path(folder)
    layers = pd.read_csv(folder / "layers.csv")
    search = pd.read_csv(folder / "search.csv")
    points = pd.read_csv(folder / "points.csv")
    degradation = pd.read_csv(folder / "degradation.csv")
    lines = ["# Mixed-policy search", ""]
    sens_all = []
    for workload, group in layers.groupby("workload", sort=False):
        wsearch = search[search["workload"] == workload]
        sens = sensitivity_table(group, points[points["workload"] == workload])
        sens_all.append(sens)
        h = headline(wsearch)
        lines += [f"## {workload}", ""]
        first = wsearch.iloc[0]
        images = (
            f" on the same {int(first['n_images'])} test images"
            if first.get("n_images", 0) > 0
            else ""
        )
        lines += [
            f"Operating point p01 = {first['operating_p01']:.3g}, p10 = {first['operating_p10']:.3g}; "
            f"noise-free accuracy {first['clean_accuracy']:.4f}; target {first['target_accuracy']:.4f}; "
            f"objective: {first['objective']}. Accuracies are means over {int(first['repeats'])} "
            f"repeats{images} ± standard error: the spread over repeats, never below the "
            "binomial error of the images the repeats share (repeats that agree do not make "
            "an accuracy exact). A difference between two accuracies on the same images is "
            "resolved only beyond 2 × the sum of their standard errors.",
            "",
        ]
        if h:
            verdict = (
                f"resolved (beyond 2 × {h['accuracy_difference_se']:.4f})"
                if h["accuracy_resolved"]
                else f"not resolved (within 2 × {h['accuracy_difference_se']:.4f})"
            )
            kind = (
                "best uniform policy meeting the target"
                if h["uniform_meets_target"]
                else ("most accurate uniform policy (none meets the target)")
            )
            lines += [
                f"**Verified per-layer assignment** `{h['best_label']}`: accuracy "
                f"{h['best_accuracy']:.4f} ± {h['best_accuracy_se']:.4f}, {h['objective']} "
                f"{h['best_cost']:.4g}.  ",
                f"**{kind}** `{h['uniform_label']}`: accuracy {h['uniform_accuracy']:.4f} ± "
                f"{h['uniform_accuracy_se']:.4f}, {h['objective']} {h['uniform_cost']:.4g}.  ",
                f"Cost ratio per-layer / uniform = **{_ratio_text(h)}** (same run); accuracy "
                f"difference {h['accuracy_difference']:+.4f}, {verdict}.  ",
                f"Margin of the per-layer assignment above the target: {h['margin']:+.4f} ± "
                f"{h['margin_stderr']:.4f} ({h['margin_se']:.1f} s.e.; the target's own error, "
                "a fraction of the noise-free accuracy on the same images, added). It is the "
                "cheapest of several noisy verifications, so a margin within about 2 s.e. may "
                "not hold on fresh seeds or images; re-verify with more repeats or images "
                "before building it.",
                "",
            ]
        else:
            lines += ["No verified assignment meets the target.", ""]
        fig = plot_sensitivity(sens, folder / f"sensitivity_{workload}.png")
        cols = ["index", "layer", "module_type", "bits_written", "bits_share", "write_energy_pj",
                "energy_share", "p50", "p50_ci_low", "p50_ci_high", "fit_status"]  # fmt: skip
        lines += [
            "### Per-layer sensitivity",
            "",
            "Only the named layer's writes are noisy (first candidate policy), every other "
            "layer stored ideally; p50 is the fitted midpoint of the accuracy drop with its "
            "bootstrap CI. Shares are of bits written and of write energy per inference.",
            "",
            markdown_table(sens, cols),
            "",
            f"![sensitivity]({fig.name})",
            "",
            "### Degradation at the operating point (only that layer, each candidate)",
            "",
            *_degradation_note(degradation[degradation["workload"] == workload]),
            markdown_table(_degradation_matrix(degradation, workload, list(group["layer"]))),
            "",
        ]
        fig = plot_pareto(wsearch, folder / f"pareto_{workload}.png")
        cols = ["order", "label", "source", "accuracy", "accuracy_se", "accuracy_ci_low",
                "accuracy_ci_high", "meets_target", "cost", "cost_sd", "predicted_cost",
                "predicted_degradation", "pareto", "best", "best_uniform"]  # fmt: skip
        cols = [c for c in cols if c in wsearch]  # older folders lack the interval
        lines += [
            "### Verified assignments",
            "",
            "In the order verified; `mix:` codes give each layer's candidate (its position in "
            "the config's `policies`). `assignment` in `search.csv` spells them out. "
            "`accuracy_ci_low`/`_high`: 95 % interval counting each shared image once; "
            "`accuracy_spread_se` in `search.csv` is the spread over repeats alone.",
            "",
            markdown_table(wsearch, cols),
            "",
            f"![pareto]({fig.name})",
            "",
        ]
    if sens_all:
        pd.concat(sens_all, ignore_index=True).to_csv(folder / "sensitivity.csv", index=False)
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
