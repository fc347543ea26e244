"""Reports: tables, figures and Markdown from a results folder; they never run simulations.

``write_report(folder)`` reads what a run stored (``experiment.json``, ``points.jsonl`` or
``points.csv``, ``memory.csv``, ``conditions.csv``, ``metadata.json``), fits the curves
(:mod:`memsim.report.tables`), draws the figures (:mod:`memsim.report.plots`) and writes
``points.csv``, ``summary.csv``, ``figures/`` and ``report.md`` (:mod:`memsim.report.markdown`).
``memsim report DIR`` calls it, so a report can be re-created (or restyled) at any time;
``memsim report DIR --out OTHER`` writes a second report (e.g. another fit scale) of the same
points into ``OTHER`` and leaves ``DIR`` as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from memsim.experiment.store import (
    EXPERIMENT_FILE,
    MEMORY_CSV,
    METADATA_FILE,
    POINTS_CSV,
    SUMMARY_CSV,
    WRITES_CSV,
    ResultsError,
    read_experiment,
    read_json,
    write_csv_atomic,
    write_text_atomic,
)
from memsim.experiment.store import load_points as store_load_points

CONDITIONS_CSV = "conditions.csv"
REPORT_MD = "report.md"
FIGURES_DIR = "figures"


def load_points(folder: str | os.PathLike) -> pd.DataFrame:
    """The checked points of a results folder (:func:`memsim.experiment.store.load_points`)."""
    return store_load_points(folder, read_experiment(folder))


def _optional_csv(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    # keep_default_na=False: an empty condition name must stay "", not become NaN.
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=["NaN", "nan"])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path} is not a readable CSV table: {exc}".strip()) from None


#: The tables a finished mixed-policy search leaves, which its report is made from.
SEARCH_TABLES = ("layers.csv", "search.csv", "points.csv", "degradation.csv")


def write_report(
    folder: str | os.PathLike,
    *,
    fit_options: dict | None = None,
    out: str | os.PathLike | None = None,
) -> Path:
    """(Re-)create ``summary.csv``, the figures and ``report.md`` of a results folder.

    Parameters
    ----------
    folder : path
        A results folder.
    fit_options : dict, optional
        Replace the config's ``[fit]`` options for this report (``scale``, ``bootstrap``,
        ``confidence``): refitting needs no new simulation.
    out : path, optional
        Write ``points.csv``, ``summary.csv``, ``figures/`` and ``report.md`` here instead of
        into ``folder`` (which is then left untouched). It must not be another results folder.

    Returns the path of ``report.md``.

    Raises
    ------
    ConfigError
        A ``fit_options`` key the ``[fit]`` table does not have, or a value out of its range.
    ResultsError
        The folder is not a memsim results folder or holds no points, or ``out`` is another
        results folder or not a folder.
    """
    from memsim.report import plots, tradeoff
    from memsim.report.markdown import render
    from memsim.report.tables import fit_curves, summary_table

    if fit_options:  # the [fit] table's own checks (unknown keys, ranges), before anything
        from memsim.config import build
        from memsim.experiment.config import FitConfig

        build(FitConfig, fit_options, where="fit")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ResultsError(f"Results folder {folder} is a file, not a results folder.")
    if not folder.is_dir():
        raise ResultsError(f"Results folder {folder} does not exist.")
    target = folder if out is None else Path(out)
    elsewhere = target.resolve() != folder.resolve()
    if elsewhere and target.exists() and not target.is_dir():
        raise ResultsError(f"--out {target} exists and is not a folder.")
    if elsewhere and (target / EXPERIMENT_FILE).exists():
        raise ResultsError(
            f"--out {target} is another results folder; choose a new or report-only folder."
        )
    experiment = read_experiment(folder)
    config = experiment["config"]
    kind = (
        "binarized-network study"
        if config.get("study", {}).get("kind") == "bnn"
        else "mixed-policy search"
        if {"experiment", "search"} <= config.keys()
        else None
    )
    if kind is not None:  # its own report, re-created in place, with no logistic fit to redo
        if elsewhere:
            raise ResultsError(
                f"{folder} is a {kind} folder: its report is re-created in place; drop --out."
            )
        if fit_options:
            raise ResultsError(
                f"{folder} is a {kind} folder: --scale and --bootstrap refit experiment "
                f"sweeps only (got {', '.join(f'{k}={v}' for k, v in fit_options.items())})."
            )
        if kind == "mixed-policy search":
            from memsim.report.search import write_search_report

            missing = [n for n in SEARCH_TABLES if not (folder / n).is_file()]
            if missing:
                raise ResultsError(
                    f"{folder} is a mixed-policy search that has not finished (no "
                    f"{', '.join(missing)}): run the same search again to resume it."
                )
            return write_search_report(folder)
        from memsim.report.bnn import write_folder_report

        return write_folder_report(folder)
    points = store_load_points(folder, experiment)
    memory = _optional_csv(folder / MEMORY_CSV)
    writes = _optional_csv(folder / WRITES_CSV)
    conditions = _optional_csv(folder / CONDITIONS_CSV)
    metadata = read_json(folder / METADATA_FILE) if (folder / METADATA_FILE).exists() else {}
    config = {**config, "fit": {**config.get("fit", {}), **(fit_options or {})}}
    fit = config["fit"]
    fits = fit_curves(
        points,
        scale=fit.get("scale", "log10p"),
        n_boot=fit.get("bootstrap", 200),
        confidence=fit.get("confidence", 0.95),
        seed=config.get("seed", 0),
    )
    reference = config.get("report", {}).get("reference", {})
    baseline = reference.get("policy") or _baseline(config)
    summary = summary_table(
        points,
        memory,
        conditions,
        baseline=baseline,
        reference_condition=reference.get("condition") or None,
        fits=fits,
    )
    target.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(target / POINTS_CSV, points)
    write_csv_atomic(target / SUMMARY_CSV, summary)

    figures = {}
    fig_dir = target / FIGURES_DIR
    if fits:
        plots.save(plots.accuracy_vs_p(points, fits, conditions), fig_dir, "accuracy_vs_p")
        figures["Accuracy vs. bit-flip probability"] = f"{FIGURES_DIR}/accuracy_vs_p.png"
    if (
        summary[["energy_pj_per_inference", "accuracy_at_operating_point"]]
        .notna()
        .all(axis=1)
        .any()
    ):
        plots.save(plots.energy_vs_accuracy(summary), fig_dir, "energy_vs_accuracy")
        figures["Energy per inference vs. accuracy at the operating point"] = (
            f"{FIGURES_DIR}/energy_vs_accuracy.png"
        )
    if not tradeoff.tradeoff_frame(summary).empty:
        plots.save(tradeoff.accuracy_energy_area(summary), fig_dir, "tradeoff")
        figures[
            "Accuracy vs. total energy (top) and area (bottom); Pareto-optimal policies ringed; "
            f"accuracy bars ± {tradeoff.NOISE_SIGMAS:g} standard errors"
        ] = f"{FIGURES_DIR}/tradeoff.png"
    masks = list(config.get("masks", []))
    if len(masks) > 1 and summary["mu"].notna().any():
        plots.save(plots.mu_by_mask(summary, masks), fig_dir, "mu_by_mask")
        figures["Midpoint noise level vs. noisy-bit mask"] = f"{FIGURES_DIR}/mu_by_mask.png"
    if memory is not None and not memory.empty:
        plots.save(plots.energy_by_category(memory), fig_dir, "energy_by_category")
        figures["Energy per inference by category"] = f"{FIGURES_DIR}/energy_by_category.png"
    text = render(
        config=config,
        summary=summary,
        metadata=metadata,
        figures=figures,
        n_points=len(points),
        writes=writes,
        source=folder if elsewhere else None,
    )
    return write_text_atomic(target / REPORT_MD, text)


def _baseline(config: dict) -> str:
    labels = [p["label"] for p in config.get("policies", [])]
    wanted = config.get("baseline", "baseline")
    return wanted if wanted in labels or not labels else labels[0]


__all__ = ["CONDITIONS_CSV", "FIGURES_DIR", "REPORT_MD", "load_points", "write_report"]
