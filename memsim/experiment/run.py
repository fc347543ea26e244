"""Experiments: a TOML config in, a results folder (points, fits, costs, report) out.

This is the top of the data flow (docs/design.md §2, §7). :func:`load_experiment` validates a config
file into a frozen :class:`ExperimentConfig` (what is modelled; its hash is the experiment's
identity) and :class:`RunOptions` (workers, output folder, torch device: how it runs, not part
of the identity). :func:`run_experiment` then

1. runs the accuracy sweeps (:mod:`memsim.experiment.points`) into the results store (:mod:`memsim.experiment.store`),
   resuming whatever an earlier, interrupted run finished;
2. traces each workload × format, plans each record with each policy on each programming
   condition and runs the SimPy memory model (:mod:`memsim.timing`) for energy and latency;
3. writes the report (:mod:`memsim.report`), which only reads the tables.

The config objects and loading live in :mod:`memsim.experiment.config`, plug-in checks in
:mod:`memsim.experiment.plugins`, the memory model's cost table in :mod:`memsim.experiment.memory`;
their public names are re-exported here. The CLI (:mod:`memsim.cli.experiment`) is a thin
layer over these functions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from memsim.config import to_toml
from memsim.experiment.config import (
    DEFAULT_CONFIG,
    AdaptiveConfig,
    ExperimentConfig,
    FitConfig,
    GridConfig,
    MemoryConfig,
    PolicySpec,
    RunOptions,
    SweepConfig,
    WorkloadSpec,
    apply_overrides,
    replace_config,
    resolve_config,
)
from memsim.experiment.load import check_built, load_experiment, parse_experiment
from memsim.experiment.memory import memory_table, writes_table
from memsim.experiment.plugins import (
    check_plugins,
    curves_of,
    load_condition_device,
    load_memory_params,
    make_policy,
    mask_bits,
    mask_channel_check,
    pairs_of,
    skipped_combinations,
)

__all__ = [
    "DEFAULT_CONFIG",
    "AdaptiveConfig",
    "ExperimentConfig",
    "FitConfig",
    "GridConfig",
    "MemoryConfig",
    "PolicySpec",
    "RunOptions",
    "SweepConfig",
    "WorkloadSpec",
    "apply_overrides",
    "check_plugins",
    "curves_of",
    "default_out",
    "load_experiment",
    "load_condition_device",
    "load_memory_params",
    "make_policy",
    "mask_bits",
    "mask_channel_check",
    "memory_table",
    "operating_points",
    "pairs_of",
    "parse_experiment",
    "replace_config",
    "resolve_config",
    "run_experiment",
    "skipped_combinations",
    "to_toml",
]


def operating_points(config: ExperimentConfig) -> list[dict[str, Any]]:
    """One row per programming condition: its device error rates and the operating point."""
    rows = []
    for cond in config.conditions or (None,):
        device = load_condition_device(config.device, cond)
        p01, p10 = (
            (device.p01, device.p10)
            if config.operating_p == "device"
            else (config.operating_p,) * 2
        )
        rows.append(
            {
                "condition": cond or device.condition.name,
                "device": device.name,
                "p_bf": float(device.p_bf),
                "p01": float(device.p01),
                "p10": float(device.p10),
                "operating_p01": float(p01),
                "operating_p10": float(p10),
                "e_set_pj": float(device.condition.e_set_pj),
                "e_reset_pj": float(device.condition.e_reset_pj),
                "t_pulse_ns": float(device.condition.t_pulse_ns),
            }
        )
    return rows


def default_out(config: ExperimentConfig) -> Path:
    """``runs/<name>-<hash>``: one folder per experiment identity, always inside ``runs/``.

    The name is reduced to letters, digits, ``.``, ``_`` and ``-`` (no path separators, no
    leading dot), so a name such as ``"../../x"`` cannot point the folder elsewhere.
    """
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", config.name).lstrip(".") or "experiment"
    return Path("runs") / f"{slug[:80]}-{config.digest()[:8]}"


def run_experiment(
    config: ExperimentConfig,
    run: RunOptions = RunOptions(),
    *,
    evaluator: Any = None,
    sweep_only: bool = False,
) -> Path:
    """Run (or resume) an experiment into its output folder and write the report.

    Parameters
    ----------
    config : ExperimentConfig
        What is modelled.
    run : RunOptions
        Workers and executor (local or Ray), output folder (default :func:`default_out`), torch
        device, progress bars.
    evaluator : callable(PointTask) -> dict, optional
        Replaces the real-network evaluator (tests and benchmarks use a surrogate).
    sweep_only : bool
        Stop after the accuracy sweep (no memory model, no report).

    Returns
    -------
    Path
        The output folder.

    Raises
    ------
    ConfigError
        A bad plug-in name or combination, a missing checkpoint (before anything is written).
    ValueError
        A torch device this machine lacks; with Ray, a device its workers cannot use, a cluster
        address that does not answer or a cluster that cannot place the workers (all before
        anything is written).
    ResultsError
        The output folder holds another experiment's results or is not writable.
    """
    from memsim.experiment.launch import check_executor, executor_for
    from memsim.experiment.points import NetworkEvaluator, load_workload, plan_grid, run_points
    from memsim.experiment.store import ResultsStore, metadata, write_csv_atomic, write_text_atomic

    # What can be checked is checked before the output folder is claimed, the same way as
    # load_experiment does (a config built in Python skips the loader).
    check_built(config)
    # Refused: a missing device or Ray extra, a silent cluster, what the device cannot do.
    device = check_executor(run, config.sweep)
    if evaluator is None:
        # Train/cache/load the models once, before any worker starts and before the folder is
        # claimed: a corrupt checkpoint or missing data set is refused with nothing written.
        for spec in config.workloads:
            load_workload(spec)
    out = Path(run.out) if run.out is not None else default_out(config)
    digest = config.digest()
    # The executor starts first: Ray refuses a cluster that cannot place the workers before
    # the folder is claimed.
    with (
        executor_for(run) as executor,
        ResultsStore.open(out, config=config.to_dict(), digest=digest) as store,
    ):
        write_text_atomic(out / "config.toml", to_toml(config.to_toml_data()))
        write_text_atomic(
            out / "config.json", json.dumps(config.to_dict(), indent=1, sort_keys=True)
        )
        meta = metadata(
            seed=config.seed,
            digest=digest,
            extra={
                "torch_device": device,  # auto resolved; as asked in "torch_device_asked"
                "torch_device_asked": run.device,
                "workers": run.workers,
                "executor": run.executor,
                "skipped": skipped_combinations(config),
            },
        )
        write_text_atomic(out / "metadata.json", json.dumps(meta, indent=1, sort_keys=True))
        conditions = operating_points(config)
        import pandas as pd

        write_csv_atomic(out / "conditions.csv", pd.DataFrame(conditions))
        if evaluator is None:
            evaluator = NetworkEvaluator(config.workloads, config.policies, config.sweep, device)
        curves = curves_of(config)
        grid = config.grid.ps()
        ops = [(c["operating_p01"], c["operating_p10"]) for c in conditions]
        couplable = getattr(evaluator, "couplable", None)

        def coupled(curve) -> bool:
            return config.sweep.coupled and (couplable is None or couplable(curve, grid))

        if config.adaptive.enabled:
            _run_adaptive(config, run, store, executor, evaluator, curves, ops, coupled)
        else:
            tasks = plan_grid(
                curves,
                grid,
                repeats=config.sweep.repeats,
                seed=config.seed,
                coupled=coupled,
                operating=ops,
            )
            run_points(tasks, store, executor, evaluator, progress=run.progress)
        write_csv_atomic(out / "points.csv", store.points_frame())
    if sweep_only:
        return out
    write_csv_atomic(out / "writes.csv", writes_table(config))
    if config.memory.enabled:
        write_csv_atomic(
            out / "memory.csv", memory_table(config, conditions, progress=run.progress)
        )
    from memsim.report import write_report

    write_report(out)
    return out


def _run_adaptive(config, run, store, executor, evaluator, curves, ops, coupled) -> None:
    from memsim.experiment.adaptive import run_adaptive
    from memsim.experiment.points import PointTask, clean_task, point_seed, run_points

    run_points(
        [clean_task(config.seed, c) for c in curves],
        store,
        executor,
        evaluator,
        progress=run.progress,
        desc="clean",
    )
    rows = store.finished()
    clean = {c: rows[clean_task(config.seed, c).id] for c in curves}
    couplable = getattr(evaluator, "couplable", None)
    run_adaptive(
        curves,
        store,
        executor,
        evaluator,
        seed=config.seed,
        p_min=min(config.grid.ps()),
        p_max=max(config.grid.ps()),
        a_max={c: float(r["accuracy"]) for c, r in clean.items()},
        num_classes={c: int(r["num_classes"]) for c, r in clean.items()},
        options=config.adaptive,
        couplable=(lambda c, ps: config.sweep.coupled and couplable(c, ps)) if couplable else None,
        fit_scale=config.fit.scale,
        progress=run.progress,
    )
    op_tasks = [
        PointTask(c, "operating", p01, p10, r, point_seed(config.seed, c, "operating", r, p01, p10))
        for c in curves
        for p01, p10 in dict.fromkeys(ops)
        for r in range(config.sweep.repeats)
    ]
    run_points(op_tasks, store, executor, evaluator, progress=run.progress, desc="operating")
