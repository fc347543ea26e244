"""CLI verbs ``memsim trace`` and ``memsim eval``: thin layers over tracing and noisy inference.

``memsim trace WORKLOAD`` prints the per-layer write table of one inference and the total
written activations per image (optionally saving the trace file the memory model reads);
``memsim eval WORKLOAD`` prints one accuracy point under symmetric or asymmetric bit flips.
"""

from __future__ import annotations

import argparse
import json

from memsim.cli import options

#: ``memsim.inference.graph.GRANULARITIES`` (not imported: ``--help`` must not load torch).
GRANULARITIES = ("module", "op", "fused")
#: Calibration images of ``--calibration`` by default.
CALIBRATION_DEFAULT = 512
#: ``--calibration-method`` by default (an int format's; a float format refuses the option).
CALIBRATION_METHOD_DEFAULT = "minmax"
#: ``memsim.inference.network.INFERENCE_FORMATS``, likewise.
FORMATS = (
    "float64",
    "float32",
    "float16",
    "bfloat16",
    "float8_e4m3",
    "float8_e5m2",
    "int8",
    "int4",
)


def _workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("workload", nargs="?", default="digits", help="workload name (default: digits)")
    p.add_argument(
        "--format",
        default="float32",
        dest="fmt",
        choices=FORMATS,
        metavar="FORMAT",
        help=f"storage format: {', '.join(FORMATS)} (default float32)",
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
        type=options.bounded_int(1, 1_000_000),
        default=None,
        metavar="N",
        help=f"int8/int4: calibration images from the training split (default "
        f"{CALIBRATION_DEFAULT}, or the whole split where it holds fewer; refused for a float "
        "format)",
    )
    p.add_argument(
        "--calibration-method",
        choices=("minmax", "percentile"),
        default=None,  # None: not given (a float format refuses it), else minmax
        help=f"int8/int4: activation range estimate (default {CALIBRATION_METHOD_DEFAULT}; "
        "refused for a float format, which is not calibrated)",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``trace`` and ``eval`` verbs."""
    t = subparsers.add_parser(
        "trace",
        help="trace the tensor writes of one inference",
        parents=[options.common(), options.device()],
    )
    _workload_args(t)
    t.add_argument(
        "--images",
        type=options.bounded_int(1, 1_000_000),
        default=64,
        help="images the bit statistics are measured on",
    )
    t.add_argument("--include-weights", action="store_true", help="also list weights and biases")
    t.add_argument("--out", default=None, help="save the trace (JSON) to this file")
    t.set_defaults(func=run_trace)

    e = subparsers.add_parser(
        "eval",
        help="accuracy of a workload under write bit flips",
        parents=[options.common(), options.device(), options.noise(), options.seed()],
    )
    _workload_args(e)
    e.add_argument(
        "--limit",
        type=options.bounded_int(1, 100_000_000),
        default=None,
        help="evaluate the first N test images",
    )
    e.add_argument("--batch-size", type=options.bounded_int(1, 65536), default=256)
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument(
        "--compute-dtype",
        choices=options.COMPUTE_DTYPES,
        default=None,
        help="float dtype to compute a float format in (as sweep.compute_dtype; default: the "
        "storage format's own; every write is still rounded to the storage format; refused "
        "for int8/int4)",
    )
    e.add_argument(
        "--flush-denormals",
        action="store_true",
        help="compute as a processor that flushes subnormal floats to zero (as "
        "sweep.flush_denormals; CPU only; far faster on Intel CPUs under noise)",
    )
    e.set_defaults(func=run_eval)


def _network(args: argparse.Namespace, test_images: tuple[str, int | None], **compute):
    """The workload and its noisy network; ``test_images`` (option, count) and the int
    formats' calibration images are checked against the splits before anything loads.
    ``compute``: the network's ``compute_dtype`` and ``flush_denormals`` (``eval``'s options)."""
    from memsim.experiment.plugins import calibration_images
    from memsim.inference.int8 import INT_FORMATS
    from memsim.inference.network import NoisyNetwork
    from workloads.base import get_workload

    calibrated = args.fmt in INT_FORMATS
    for flag, value in (
        ("--calibration", args.calibration),
        ("--calibration-method", args.calibration_method),
    ):
        if value is not None and not calibrated:
            raise ValueError(
                f"{flag} {value} has no effect with --format {args.fmt}: only the integer "
                f"formats ({', '.join(INT_FORMATS)}) are calibrated."
            )
    if compute.get("compute_dtype") is not None and calibrated:
        raise ValueError(
            f"--compute-dtype {compute['compute_dtype']} has no effect with --format "
            f"{args.fmt}: the integer formats compute in float32 whatever it says."
        )
    workload = get_workload(args.workload)
    options.check_counts(
        workload,
        (test_images[0], "test", test_images[1]),
        ("--calibration", "train", args.calibration),
    )  # the default (None) is not checked: it takes what a small split holds
    model = workload.load_model(args.checkpoint)
    calibration = None
    if calibrated:
        calibration = calibration_images(
            workload, args.calibration, "--calibration", default=CALIBRATION_DEFAULT
        )
    net = NoisyNetwork(
        model,
        args.fmt,
        fused=args.fused,
        granularity=args.granularity,
        noisy_input=args.noisy_input,
        calibration=calibration,
        calibration_method=args.calibration_method or CALIBRATION_METHOD_DEFAULT,
        **compute,
    )
    return workload, net


def run_trace(args: argparse.Namespace) -> int:
    from memsim.compute import resolve_device
    from memsim.paths import check_output_file
    from memsim.trace.capture import trace_model

    if args.out:  # a path that cannot be written fails before anything is traced
        check_output_file(args.out)
    device = resolve_device(options.torch_device(args))  # auto resolved; one this lacks refused
    workload, net = _network(args, ("--images", args.images))
    x, _ = workload.samples("test", args.images, "--images")
    if device.type != "cpu":  # the network moves on its first run; the data once, here
        net.logits(x[:2], device=device)
        x = x.to(device)
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
    from memsim.compute import resolve_device
    from memsim.experiment.launch import check_engine
    from memsim.inference.denormals import check_flush_device
    from memsim.noise.channel import BitFlip

    device = resolve_device(options.torch_device(args))  # auto resolved; one this lacks refused
    check_engine(args.engine, str(device))
    if args.flush_denormals:
        check_flush_device(device, "--flush-denormals")
    # The channel is always built, so p, bits and engine are checked even when p is 0.
    channel = BitFlip(args.fmt, args.p, args.p10, bits=args.bits, engine=args.engine)
    storage = args.compute_dtype in (None, "storage")
    workload, net = _network(
        args,
        ("--limit", args.limit),
        compute_dtype=None if storage else args.compute_dtype,
        flush_denormals=args.flush_denormals,
    )
    x, y = workload.samples("test", args.limit, "--limit")
    result = net.evaluate(
        x,
        y,
        None if channel.is_noiseless else channel,
        seed=args.seed,
        batch_size=args.batch_size,
        device=device,
        progress=options.progress(args),
    )
    from memsim.fit import wilson_interval

    # The accuracy's 95 % Wilson interval over the images, as points.csv gives each point's.
    low, high = (float(v) for v in wilson_interval(result.correct, result.n_images))
    if args.json:
        p10 = args.p if args.p10 is None else args.p10
        record = {
            "workload": workload.name,
            "format": args.fmt,
            "granularity": net.granularity,
            "p": args.p,
            "p10": p10,
        }
        interval = {"accuracy_ci_low": low, "accuracy_ci_high": high}
        print(json.dumps({**record, **result.__dict__, **interval}, allow_nan=False))
    else:
        print(
            f"{workload.name} {args.fmt} {net.granularity} granularity p={args.p:g}: accuracy "
            f"{result.accuracy:.4f} [{low:.4f}, {high:.4f}] ({result.correct}/{result.n_images}; "
            f"95 % Wilson interval over the images), non-finite logits "
            f"{result.nonfinite_fraction:.4f}"
        )
    return 0
