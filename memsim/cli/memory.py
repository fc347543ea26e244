"""``memsim memory``: simulate the writes of one inference under a policy and print the costs.

Where it sits: the command-line face of the cost side. It gets a trace (a trace file, or a
workload traced on a few real test images), asks a policy for the write plans, runs
:func:`memsim.timing.simulate` and prints latency, stall, utilisation, queue occupancy and
energy by category; ``--csv DIR`` saves the result frames.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from memsim.cli import options
from memsim.config import loads_toml

if TYPE_CHECKING:
    from memsim.timing.result import MemoryResult
    from memsim.trace.records import Trace

log = logging.getLogger(__name__)


class _DeprecatedDevice(argparse.Action):
    """``memory --device`` named the RRAM preset before ``--device`` meant the torch device."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        log.warning("memory --device is deprecated (it is the torch device elsewhere); use --rram.")
        setattr(namespace, self.dest, values)


#: What ``--format`` and ``--images`` default to when a workload is traced (a trace file has
#: its own format and images, so they are refused with one).
TRACE_DEFAULTS = {"format": "float32", "images": 8}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``memory`` verb."""
    parser = subparsers.add_parser(
        "memory",
        help="simulate one inference's writes on the memory system: latency, stall, energy",
        description="Simulate the writes of one inference under a policy on the SimPy memory "
        "system and print latency, processor stall, bank utilisation, write-queue occupancy "
        "and energy by category.",
        parents=[options.common()],
    )
    parser.add_argument(
        "trace", metavar="TRACE_OR_WORKLOAD", help="a trace file (.json) or a workload name"
    )
    parser.add_argument(
        "--policy", default="baseline", help="policy name or TOML file (default: %(default)s)"
    )
    parser.add_argument(
        "--params",
        default="default",
        help="memory-system preset (memsim list memory) or TOML path (default: %(default)s)",
    )
    parser.add_argument(
        "--rram",
        default=None,
        help="RRAM device bundle or programming condition (default: the device default)",
    )
    parser.add_argument("--device", dest="rram", action=_DeprecatedDevice, help=argparse.SUPPRESS)
    parser.add_argument(
        "--format",
        default=None,
        help=f"storage format when tracing a workload (default: {TRACE_DEFAULTS['format']})",
    )
    parser.add_argument(
        "--images",
        type=options.bounded_int(1, 1_000_000),
        default=None,
        help="test images for bit statistics when tracing a workload (default: "
        f"{TRACE_DEFAULTS['images']})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a memory parameter (repeatable), e.g. --set n_banks=8",
    )
    parser.add_argument(
        "--seed",
        type=options.bounded_int(0, options.SEED_MAX),
        default=0,
        help="run seed for the sampled pulse rounds (default: %(default)s)",
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="expected rounds instead of sampled ones"
    )
    parser.add_argument("--layers", action="store_true", help="also print the per-layer table")
    parser.add_argument(
        "--csv",
        metavar="DIR",
        default=None,
        help="save summary/layers/banks/energy as CSV files in DIR",
    )
    parser.set_defaults(func=run)
    return parser


def parse_overrides(items: list[str]) -> dict[str, object]:
    """``["n_banks=8", "overlap=false"]`` → ``{"n_banks": 8, "overlap": False}`` (TOML values)."""
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE. Got {item!r}.")
        out[key.strip()] = loads_toml(f"v = {value.strip()}", source=f"--set {item}")["v"]
    return out


def _is_trace_file(source: str) -> bool:
    path = Path(source)
    return path.suffix == ".json" or os.sep in source or path.is_file()


def _trace_workload(name: str, fmt: str, images: int) -> Trace:
    """Trace workload ``name`` on ``images`` real test images, stored as ``fmt``."""
    from memsim.trace.capture import trace_model
    from workloads import get_workload

    workload = get_workload(name)
    x, _ = workload.samples("test", images, "--images")
    return trace_model(
        workload.load_model(), x, fmt, workload_name=workload.name, include_weights=True
    )


def format_result(result: MemoryResult, *, layers: bool = False) -> str:
    """Human-readable text of a result (the verb's output)."""
    s = result.summary().iloc[0]
    lines = [
        f"latency_ns           {s.latency_ns:14.1f}",
        f"compute_ns           {s.compute_ns:14.1f}",
        f"stall_ns             {s.stall_ns:14.1f}   (reads {s.stall_read_ns:.1f}, queue full {s.stall_queue_ns:.1f}, waiting for writes {s.stall_dependency_ns:.1f})",
        f"rram_utilisation     {s.rram_utilisation:14.3f}   (per bank: "
        + ", ".join(
            f"{u:.3f}" for u in result.banks.loc[result.banks["memory"] == "rram", "utilisation"]
        )
        + ")",
        f"queue_units          {s.queue_mean_units:14.2f}   mean, max {int(s.queue_max_units)} of {result.params.write_queue_depth_units}",
        f"events               {int(s.events):14d}",
        f"energy_pj            {s.energy_pj:14.1f}",
    ]
    for row in result.energy.itertuples():
        lines.append(f"  {row.category:<18} {row.energy_pj:14.1f}   {100 * row.share:5.1f} %")
    if result.read_energy_pj or result.stall_read_ns:
        busy = result.utilisation("rram")
        lines += [
            f"read_stall_ns        {result.stall_read_ns:14.1f}",
            f"rram_read/write_util {busy['read_utilisation']:14.3f} / {busy['write_utilisation']:.3f}",
            f"read_energy_pj       {result.read_energy_pj:14.1f}",
        ]
        for row in result.read_energy.itertuples():
            lines.append(f"  {row.category:<18} {row.energy_pj:14.1f}   {100 * row.share:5.1f} %")
    if layers:
        cols = [
            "index",
            "name",
            "compute_ns",
            "stall_queue_ns",
            "stall_dependency_ns",
            "writes_done_ns",
            "rram_units",
            "sram_units",
            "rounds_mean",
        ]
        energy_total = result.layers[[c for c in result.layers if c.startswith("energy_")]].sum(
            axis=1
        )
        table = result.layers[cols].assign(energy_pj=energy_total)
        lines += ["", table.to_string(index=False, float_format=lambda v: f"{v:.1f}")]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from memsim.paths import check_output_file
    from memsim.timing.params import load_memory_params
    from memsim.timing.reads import read_plans
    from memsim.timing.simulate import plan_trace, simulate
    from memsim.trace.records import Trace

    if args.csv:  # a folder that cannot be written fails before anything is simulated
        try:
            check_output_file(Path(args.csv) / "summary.csv", missing_parent="allow")
        except ValueError as exc:
            raise ValueError(f"--csv {args.csv}: {exc}") from None
    params = load_memory_params(args.params, **parse_overrides(args.set))
    # A trace file is read first: a wrong version is reported before any policy is built.
    trace = Trace.load(args.trace) if _is_trace_file(args.trace) else None
    given = [f"--{k}" for k in TRACE_DEFAULTS if getattr(args, k) is not None]
    if trace is not None and given:
        raise ValueError(
            f"{' and '.join(given)} apply when a workload is traced; {args.trace} is a trace "
            f"file ({trace.format}, {trace.images_measured} images measured)."
        )
    for key, value in TRACE_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # Policies and devices plug into memsim; they are imported only when the verb runs.
    from memsim.device import load_device
    from policies import get_policy

    policy = get_policy(args.policy)
    if trace is None:
        policy.validate(args.format)
        trace = _trace_workload(args.trace, policy.storage_format(args.format), args.images)
    else:
        policy.validate(trace.format)
    device = load_device() if args.rram is None else load_device(args.rram)
    plans = plan_trace(policy, trace, device)
    # Reads of the weights need weight records in the trace (traced workloads include them).
    reads = read_plans(trace, plans, device, params) if params.reads else None
    result = simulate(
        plans,
        trace,
        params,
        seed=args.seed,
        deterministic=args.deterministic,
        reads=reads,
    )
    print(
        f"memory: trace {trace.workload} ({trace.format}, {len(trace)} records), policy {args.policy}, params {args.params}"
    )
    print(format_result(result, layers=args.layers))
    if not args.deterministic and any(p.random_rounds for p in plans):
        print(
            f"note: this policy's pulse rounds are random: the latency is one simulated "
            f"inference (--seed {args.seed}); other seeds give its spread (an experiment's "
            "memory.csv reports it as latency_ns_sd), --deterministic the expected rounds"
        )
    if args.csv:
        out = Path(args.csv)
        out.mkdir(parents=True, exist_ok=True)
        result.summary().to_csv(out / "summary.csv", index=False)
        result.layers.to_csv(out / "layers.csv", index=False)
        result.banks.to_csv(out / "banks.csv", index=False)
        result.energy.to_csv(out / "energy.csv", index=False)
        print(f"saved CSV tables to {out}")
    return 0
