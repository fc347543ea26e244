"""CLI verbs ``run``, ``sweep`` and ``report``: thin wrappers over :mod:`memsim.experiment.run`.

``memsim run [CONFIG]`` runs (or resumes) a whole experiment and prints where the report is
(a config with a ``[study]`` table runs that study, e.g. ``configs/bnn/digits.toml``);
``memsim sweep CONFIG`` stops after the accuracy sweep; ``memsim report DIR`` re-creates the
tables, figures and report of an existing results folder without simulating anything.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from memsim.cli import options

#: ``memsim.experiment.config.MAX_BOOTSTRAP`` (not imported: ``--help`` must not load torch).
MAX_BOOTSTRAP = 100_000

log = logging.getLogger(__name__)


def _add_run_options(p: argparse.ArgumentParser, *, config_required: bool) -> None:
    if config_required:
        p.add_argument("config", type=Path, help="experiment config (TOML)")
    else:
        p.add_argument(
            "config",
            type=Path,
            nargs="?",
            help="experiment config (TOML); default: the embedded default",
        )
    p.add_argument("--out", type=Path, help="output folder (default: runs/<name>-<config hash>)")
    p.add_argument(
        "--workers",
        type=options.bounded_int(1, 1024),
        help="parallel worker processes (results do not depend on it)",
    )
    options.add_scale_out(p)


# ---------------------------------------------------------------------------------------------


def _options(args: argparse.Namespace):
    from memsim.experiment.run import load_experiment

    scale_overrides, changes = options.scale_changes(args)
    config, run = load_experiment(args.config, overrides=[*args.overrides, *scale_overrides])
    return config, options.apply_run_options(run, args, **changes)


def cmd_run(args: argparse.Namespace, *, sweep_only: bool = False) -> int:
    from memsim.experiment.config import resolve_config
    from memsim.experiment.run import run_experiment
    from memsim.studies import is_search_config, study_kind

    if is_search_config(args.config):
        raise ValueError(
            f"{resolve_config(args.config)} is a mixed-policy search config (it has a [search] "
            f"table): run it with `memsim search {args.config}`."
        )
    if study_kind(args.config) == "bnn":
        from memsim.cli.bnn import bnn_executor, run_config

        if sweep_only:
            raise ValueError(
                "`memsim sweep` runs an experiment's accuracy sweep; run a study with `memsim run`."
            )

        if args.device not in (None, "cpu"):
            raise ValueError(
                f"The binarized-network study runs on the CPU; got --device {args.device}."
            )
        return run_config(
            resolve_config(args.config),
            overrides=args.overrides,
            out=args.out,
            workers=args.workers or 1,
            progress=options.progress(args),
            **bnn_executor(args),
        )
    from memsim.experiment.launch import check_executor, subnormal_hint

    config, run = _options(args)
    check_executor(run, config.sweep)  # before the first line (run_experiment checks it too)
    log.info("experiment '%s' (config hash %s)", config.name, config.digest())
    if hint := subnormal_hint(config, run):
        log.info(hint)
    out = run_experiment(config, run, sweep_only=sweep_only)
    if sweep_only:
        print(f"Sweep points: {out / 'points.csv'}")
    else:
        print(f"Report: {out / 'report.md'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from memsim.report import write_report

    fit = {"scale": args.scale, "bootstrap": args.bootstrap}
    # write_report checks them as the config's [fit] table is checked.
    path = write_report(
        args.folder,
        fit_options={k: v for k, v in fit.items() if v is not None},
        out=args.report_out,
    )
    print(f"Report: {path}")
    return 0


def add_parser(subparsers) -> None:
    """Add the ``run``, ``sweep`` and ``report`` verbs."""
    parents = [
        options.common(),
        options.device(),
        options.overrides("--set sweep.repeats=2 --set grid.points_per_decade=1"),
    ]
    p = subparsers.add_parser(
        "run", help="run an experiment: sweeps, memory model, fits, report", parents=parents
    )
    _add_run_options(p, config_required=False)
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser(
        "sweep", help="run only the accuracy sweep of an experiment", parents=parents
    )
    _add_run_options(p, config_required=True)
    p.set_defaults(func=lambda a: cmd_run(a, sweep_only=True))

    p = subparsers.add_parser(
        "report",
        help="re-create the report of a results folder (no simulation)",
        parents=[options.common()],
    )
    p.add_argument("folder", type=Path, help="a results folder written by memsim run/sweep")
    p.add_argument(
        "--scale", choices=["log10p", "p"], help="refit in log10 p or in p (default: the config's)"
    )
    p.add_argument(
        "--bootstrap",
        type=options.bounded_int(0, MAX_BOOTSTRAP),
        help="bootstrap resamples for the CI of mu (default: the config's)",
    )
    p.add_argument(
        "--out",
        dest="report_out",
        type=Path,
        help="write the report into this folder instead (DIR is left as it was), e.g. a "
        "second fit with --scale p beside the first",
    )
    p.set_defaults(func=cmd_report)
