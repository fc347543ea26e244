"""``memsim bnn CONFIG``: the binarized-network energy study (also ``memsim run CONFIG``).

Thin layer over :func:`memsim.studies.bnn.run_study` and
:func:`memsim.report.bnn.write_folder_report`: trains (or loads) the plain and error-aware
networks, sweeps the BER grid and the programming conditions through the experiment executor
into the results store (``points.jsonl``, resumable), writes ``points.csv``,
``conditions.csv``, ``summary.csv``, ``comparison.csv``, two figures and ``bnn_report.md``
into the output folder, and prints the headline: every number with its bounds and each
comparison's verdict, as the report gives them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from memsim.cli import options


def add_parser(subparsers) -> None:
    """Register the ``bnn`` verb."""
    p = subparsers.add_parser(
        "bnn",
        help="binarized networks in RRAM: BER tolerance, error-aware training, programming energy",
        description=__doc__.split("\n\n")[0],
        parents=[options.common(), options.overrides("--set repeats=2 --set train.epochs=5")],
    )
    p.add_argument(
        "config", help="study config: a TOML path or a name under configs/bnn/ (digits, cifar10...)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="output folder (default runs/bnn-<workload>-<hash>)"
    )
    p.add_argument(
        "--repeats",
        type=options.bounded_int(1, 10_000),  # memsim.studies.bnn.MAX_REPEATS (a test keeps it)
        default=None,
        help="fault-map draws per point (overrides the config)",
    )
    p.add_argument(
        "--eval-limit",
        type=options.bounded_int(1, 100_000_000),
        default=None,
        help="test samples (overrides the config)",
    )
    p.add_argument("--plain-checkpoint", default=None, help="trained plain network to use")
    p.add_argument("--aware-checkpoint", default=None, help="trained error-aware network to use")
    p.add_argument(
        "--workers",
        type=options.bounded_int(1, 1024),
        default=1,
        help="parallel worker processes (or Ray actors)",
    )
    options.add_scale_out(p, cpu_only=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    for key, value in (("repeats", args.repeats), ("eval_limit", args.eval_limit)):
        if value is not None:
            overrides.append(f"{key}={value}")
    for key, value in (
        ("plain_checkpoint", args.plain_checkpoint),
        ("aware_checkpoint", args.aware_checkpoint),
    ):
        if value is not None:
            overrides.append(f"{key}={value!r}")
    return run_config(
        args.config,
        overrides=overrides,
        out=args.out,
        workers=args.workers,
        progress=options.progress(args),
        **bnn_executor(args),
    )


def bnn_executor(args: argparse.Namespace) -> dict:
    """``executor`` and ``address`` for :func:`run_config` from the scale-out options; the
    study runs on CPUs in its own compute type, so GPU packing, a compute dtype and flushing
    subnormals are refused."""
    given = [
        f"--{k.replace('_', '-')}"
        for k in ("gpus_per_point", "compute_dtype", "flush_denormals")
        if getattr(args, k, None) is not None
    ]
    if given:
        raise ValueError(
            "The binarized-network study runs on CPUs in its own compute type; "
            f"got {', '.join(given)}."
        )
    return {"executor": args.executor or "local", "address": args.address}


def run_config(
    config_path: str | Path,
    *,
    overrides: Sequence[str] = (),
    out: Path | None = None,
    workers: int = 1,
    progress: bool = True,
    executor: str = "local",
    address: str | None = None,
) -> int:
    """Load a study config (with ``--set`` overrides), run it, write its report, print the headline."""
    from memsim.report.bnn import write_folder_report
    from memsim.studies.bnn import default_out, load_study_config, run_study

    config = load_study_config(config_path, overrides=overrides)
    out = Path(out) if out is not None else default_out(config)
    result = run_study(
        config, out, workers=workers, progress=progress, executor=executor, address=address
    )
    report = write_folder_report(out)
    print(headline(result["summary"], result["comparison"]), end="")
    print(f"Results in {out}; report {report}", file=sys.stderr)
    return 0


def headline(summary, comparison) -> str:
    """What ``memsim bnn`` prints: the report's warnings, table cells and comparison, as text.

    The same numbers as ``bnn_report.md``, each with its bounds (``≥`` for a censored
    tolerance) and every comparison with its verdict (``not resolved`` with its hint).
    """
    from memsim.report.bnn import headline_lines, summary_cells, warnings

    lines = [f"Warning: {w}." for w in warnings(summary)]
    for _, row in summary.iterrows():
        cells = summary_cells(row)
        lines.append(f"{cells.pop('network')}, reference {cells.pop('reference')}:")
        lines += [f"  {key}: {value}" for key, value in cells.items()]
    if comparison is not None and len(comparison):
        lines += [line.replace("**", "") for line in headline_lines(comparison, summary) if line]
    return "\n".join(lines) + "\n"
