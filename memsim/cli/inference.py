"""CLI verbs ``memsim trace`` and ``memsim eval``: thin layers over tracing and noisy inference.

``memsim trace WORKLOAD`` prints the per-layer write table of one inference and the total
written activations per image (optionally saving the trace file the memory model reads);
``memsim eval WORKLOAD`` prints one accuracy point under symmetric or asymmetric bit flips.
"""

from __future__ import annotations

import argparse
import json

from memsim.inference.graph import GRANULARITIES
from memsim.inference.network import INFERENCE_FORMATS


def _workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", nargs="?", default="digits", help="workload name (default: digits)")
    p.add_argument(
        "--format",
        default="float32",
        dest="fmt",
        help=f"storage format: {', '.join(INFERENCE_FORMATS)}",
    )
    p.add_argument(
        "--checkpoint", default=None, help="checkpoint file (default: the workload's own)"
    )
    p.add_argument("--fused", action="store_true", help="one write per conv→bn→activation chain")
    p.add_argument(
        "--granularity",
        choices=GRANULARITIES,
        default=None,
        help="which tensors are writes: module (module calls; default), op (every "
        "tensor-producing operation, from the torch.fx graph), fused (conv→bn→act chains)",
    )
    p.add_argument("--noisy-input", action="store_true", help="the network input is written too")
    p.add_argument(
        "--calibration",
        type=int,
        default=512,
        metavar="N",
        help="int8: calibration images from the training split",
    )
    p.add_argument(
        "--calibration-method",
        choices=("minmax", "percentile"),
        default="minmax",
        help="int8: activation range estimate",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``trace`` and ``eval`` verbs."""
    t = subparsers.add_parser("trace", help="trace the tensor writes of one inference")
    _workload_args(t)
    t.add_argument(
        "--images", type=int, default=64, help="images the bit statistics are measured on"
    )
    t.add_argument("--include-weights", action="store_true", help="also list weights and biases")
    t.add_argument("--out", default=None, help="save the trace (JSON) to this file")
    t.add_argument("--device", default="cpu", help="torch device to trace on (cpu, cuda)")
    t.set_defaults(func=run_trace)

    e = subparsers.add_parser("eval", help="accuracy of a workload under write bit flips")
    _workload_args(e)
    e.add_argument(
        "--p", type=float, default=0.0, help="bit-flip probability (0→1, and 1→0 unless --p10)"
    )
    e.add_argument("--p10", type=float, default=None, help="1→0 flip probability (default: --p)")
    e.add_argument(
        "--bits", default=None, help="noisy bits: 'all', a field (exponent), 'first_noisy:K'"
    )
    e.add_argument(
        "--engine", default="auto", help="bit-flip engine (auto, numba, torch, reference)"
    )
    e.add_argument("--seed", type=int, default=0, help="run seed")
    e.add_argument("--limit", type=int, default=None, help="evaluate the first N test images")
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--device", default="cpu")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=run_eval)


def _network(args: argparse.Namespace):
    from memsim.inference.network import NoisyNetwork
    from workloads.base import get_workload

    workload = get_workload(args.workload)
    model = workload.load_model(args.checkpoint)
    calibration = None
    if args.fmt in ("int8", "int4"):
        calibration = workload.dataset("train", limit=args.calibration)[0]
    net = NoisyNetwork(
        model,
        args.fmt,
        fused=args.fused,
        granularity=args.granularity,
        noisy_input=args.noisy_input,
        calibration=calibration,
        calibration_method=args.calibration_method,
    )
    return workload, net


def run_trace(args: argparse.Namespace) -> int:
    from memsim.inference.network import check_device
    from memsim.trace.capture import trace_model

    workload, net = _network(args)
    x, _ = workload.dataset("test", limit=args.images)
    check_device(args.device)
    if args.device != "cpu":  # the network moves on its first run; the data once, here
        net.logits(x[:2], device=args.device)
        x = x.to(args.device)
    trace = trace_model(net, x, workload_name=workload.name, include_weights=args.include_weights)
    print(format_trace(trace))
    if args.out:
        print(f"saved {trace.save(args.out)}")
    return 0


def format_trace(trace) -> str:
    """The per-layer write table and totals of a trace, as text."""
    head = f"{'#':>3}  {'name':<24} {'type':<28} {'role':<10} {'shape':<16} {'elements':>10} {'KiB':>9} {'MOPs':>9} {'zero %':>7}"
    granularity = trace.meta.get("granularity", "fused" if trace.meta.get("fused") else "module")
    fallback = trace.meta.get("granularity_fallback")
    lines = [
        f"{trace.workload}: writes of one inference stored as {trace.format}, "
        f"{granularity} granularity"
        + (f" (op fell back to module hooks: {fallback})" if fallback else ""),
        head,
        "-" * len(head),
    ]
    for r in trace.records:
        lines.append(
            f"{r.index:>3}  {r.name[:24]:<24} {r.module_type[:28]:<28} {r.role:<10} "
            f"{'x'.join(map(str, r.shape))[:16]:<16} {r.numel:>10,} {r.bytes / 1024:>9.1f} "
            f"{r.ops / 1e6:>9.3f} {100 * r.zero_fraction:>7.1f}"
        )
    acts = trace.activations()
    lines.append("-" * len(head))
    lines.append(
        f"{len(acts)} activation writes per image: {trace.written_elements:,} elements, "
        f"{trace.written_bits / 8 / 1024:,.1f} KiB ({trace.images_measured} images measured)"
    )
    kinds: dict[str, int] = {}
    for r in acts:
        kinds[r.module_type] = kinds.get(r.module_type, 0) + r.numel
    lines.append(
        "elements per image by kind of write: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
    )
    return "\n".join(lines)


def run_eval(args: argparse.Namespace) -> int:
    from memsim.inference.network import check_device
    from memsim.noise.channel import BitFlip

    check_device(args.device)
    workload, net = _network(args)
    x, y = workload.dataset("test", limit=args.limit)
    channel = None
    if args.p > 0 or (args.p10 or 0) > 0:
        channel = BitFlip(args.fmt, args.p, args.p10, bits=args.bits, engine=args.engine)
    result = net.evaluate(
        x, y, channel, seed=args.seed, batch_size=args.batch_size, device=args.device, progress=True
    )
    if args.json:
        print(
            json.dumps(
                {
                    "workload": workload.name,
                    "format": args.fmt,
                    "granularity": net.granularity,
                    "p": args.p,
                    **result.__dict__,
                }
            )
        )
    else:
        print(
            f"{workload.name} {args.fmt} {net.granularity} granularity p={args.p:g}: accuracy {result.accuracy:.4f} "
            f"({result.correct}/{result.n_images}), non-finite logits {result.nonfinite_fraction:.4f}"
        )
    return 0
