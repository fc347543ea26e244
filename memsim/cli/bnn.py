"""``memsim bnn CONFIG [--out DIR]``: the binarized-network energy study from a config file.

Thin layer over :func:`memsim.studies.bnn.run_study` and :func:`memsim.report.bnn.write_section`:
trains (or loads) the plain and error-aware networks, sweeps the BER grid and the programming
conditions, writes ``points.csv``, ``conditions.csv``, ``summary.csv``, two figures and
``bnn_report.md`` into the output folder, and prints the summary.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def add_parser(subparsers) -> None:
    """Register the ``bnn`` verb."""
    p = subparsers.add_parser(
        "bnn",
        help="binarized networks in RRAM: BER tolerance, error-aware training, programming energy",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "config", help="study config: a TOML path or a name under configs/bnn/ (digits, cifar10...)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="output folder (default results/bnn/<config name>)"
    )
    p.add_argument(
        "--repeats", type=int, default=None, help="fault-map draws per point (overrides the config)"
    )
    p.add_argument(
        "--eval-limit", type=int, default=None, help="test samples (overrides the config)"
    )
    p.add_argument("--plain-checkpoint", default=None, help="trained plain network to use")
    p.add_argument("--aware-checkpoint", default=None, help="trained error-aware network to use")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def describe(config) -> str:
    """One paragraph saying what the study ran."""
    eval_text = (
        f"first {config.eval_limit} test samples" if config.eval_limit else "the whole test set"
    )
    return (
        f"Workload `{config.workload}`{' ' + str(config.workload_options) if config.workload_options else ''}; "
        f"training: {config.train.describe()}; error-aware network: same recipe with weight-sign flips "
        f"at BER {config.train_ber:g} fresh per batch. Evaluation on {eval_text}, {config.repeats} "
        f"fault-map draw(s) per point, weights stored in {config.cell.upper()} cells"
        f"{', binary activations noisy too' if config.activation_noise else ''}; seed {config.seed}."
    )


def run(args: argparse.Namespace) -> int:
    from memsim.report.bnn import write_section
    from memsim.studies.bnn import load_study_config, run_study

    config = load_study_config(args.config)
    overrides = {
        "repeats": args.repeats,
        "eval_limit": args.eval_limit,
        "plain_checkpoint": args.plain_checkpoint,
        "aware_checkpoint": args.aware_checkpoint,
    }
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    out = args.out or Path("results") / "bnn" / Path(str(args.config)).stem
    result = run_study(config, out, progress=not args.quiet)
    report = write_section(
        out, result["points"], result["conditions"], result["summary"],
        description=describe(config), tolerance_points=config.tolerance_points,
    )  # fmt: skip
    columns = ["network", "reference", "clean_accuracy", "tolerated_ber", "tolerated_ber_interp",
               "min_energy_pj", "min_energy_condition", "energy_ratio"]  # fmt: skip
    print(result["summary"][columns].to_string(index=False))
    print(f"Results in {out}; report {report}")
    return 0
