"""Benchmark: noisy inferences per second, and the wall time of the seed study's full protocol.

On one network (VGG-A by default: the shared checkpoint if present, else random weights) and
one torch device, measures images per second of clean inference and of noisy inference with
the fast engine (``auto``) for every storage format, in the same run: floats at p = 1e-6,
int8 at p = 1e-3 (the issue's operating points), float16/bfloat16 computed in float32 (every
write still rounded; ``--compute-dtype storage`` for native). Clean float32 inference of the
other VGG depths (random weights: the cost does not depend on them) scales VGG-A's figures to
the four networks.

Then projects the wall time of the full protocol, 4 VGG depths × 5 formats × 22 p × 5 repeats
× 10,000 test images (+ one clean pass per curve), and of its adaptive variant (the number of
passes per curve that the adaptive search of :mod:`memsim.experiment.adaptive` spends on a
surrogate curve, default options), for 1 worker and for N workers. N workers assume ideal
scaling (points are independent; each worker loads its network and data once): a lower bound.

Timings are best of ``--repeats``. The noisy/clean ratio is paired: in each repeat clean and
noisy run back to back (their order alternating), and the table gives the median of the
per-repeat ratios; from 6 repeats on with a distribution-free 95 % interval of that median
(``benchmarks/_paired.py``), and a ratio is above 1 only where its interval is. With fewer
(the default 2, which keeps CPU runs short) it gives the range of the pairs and no verdict: on
the 2-core development machine such ratios moved by ±3-5 % from run to run (docs/cluster.md),
so a ratio within about 1.05 of 1 is unresolved by one run. The depth ratios are single
measurements too (each depth's best of ``--repeats``, one after the other). On a CPU the
default is one torch thread and CPU seconds of this process (``--clock cpu``): the time one
dedicated core would take, far less disturbed on a shared machine than wall time, so "N
workers" means N cores. On CUDA: wall time, and a worker is a GPU (or a share of one). On a
shared machine compare figures from one run only.

``--flush-denormals`` computes with subnormal floats flushed to zero (``sweep.flush_denormals``):
on Intel CPUs flipped zeros' subnormals otherwise slow every layer after a noisy write.

Run: ``python benchmarks/protocol.py [--device cpu] [--threads 2] [--workers 8] [--images 64]
[--flush-denormals]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _paired import MIN_PAIRS, Paired

from memsim.experiment.executor import set_threads
from memsim.inference.denormals import check_flush_device
from memsim.inference.network import INFERENCE_FORMATS, NoisyNetwork
from memsim.noise.channel import BitFlip

DEPTHS = ("A", "B", "D", "E")
GRID_P = 22
REPEATS = 5
IMAGES = 10_000
P_FLOAT = 1e-6
P_INT8 = 1e-3


def timed(fn, device: torch.device, clock: str) -> float:
    """Seconds of ``fn``: wall time, or CPU time of this process (``clock="cpu"``)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    now = time.process_time if clock == "cpu" else time.perf_counter
    t0 = now()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return now() - t0


def best(fn, repeats: int, device: torch.device, clock: str) -> float:
    return min(timed(fn, device, clock) for _ in range(repeats))


def load(depth: str, images: int):
    from workloads import get_workload
    from workloads.vgg import vgg

    workload = get_workload(f"vgg_{depth}")
    try:
        model, source = workload.load_model(), "checkpoint"
    except (FileNotFoundError, ValueError):
        torch.manual_seed(0)
        model, source = vgg(depth).eval(), "random init"
    try:
        x, _ = workload.dataset("test", limit=images)
        source += ", CIFAR-10"
    except (FileNotFoundError, ValueError):
        x = torch.randn(images, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        source += ", random inputs"
    return model, x, source


def adaptive_passes_per_curve() -> int:
    """Passes the adaptive search spends on one (surrogate) curve with the default options."""
    from memsim.experiment.adaptive import run_adaptive
    from memsim.experiment.config import AdaptiveConfig
    from memsim.experiment.executor import SerialExecutor
    from memsim.experiment.points import Curve, SurrogateEvaluator, clean_task, run_points
    from memsim.experiment.store import ResultsStore

    curve = Curve("surrogate", "float32", "baseline")
    evaluate = SurrogateEvaluator(mu_log10=-4.0, sigma=0.25, n_images=2000)
    grid = np.logspace(-8, -1, GRID_P)
    with (
        tempfile.TemporaryDirectory() as tmp,
        ResultsStore.open(Path(tmp), config={}, digest="protocol") as store,
    ):
        run_points([clean_task(0, curve)], store, SerialExecutor(), evaluate, progress=False)
        a_max = float(store.points_frame()["accuracy"].iloc[0])
        run_adaptive(
            [curve], store, SerialExecutor(), evaluate, seed=0, p_min=grid[0], p_max=grid[-1],
            a_max={curve: a_max}, num_classes={curve: 10}, options=AdaptiveConfig(enabled=True),
            couplable=None, progress=False,
        )  # fmt: skip
        frame = store.points_frame()
    return int((frame["kind"] == "sweep").sum())


def hours(seconds: float) -> str:
    return f"{seconds / 3600:9.1f} h"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads of torch and of the Numba flip kernels (fixed)",
    )
    ap.add_argument(
        "--clock", choices=["cpu", "wall"], help="default: cpu on a CPU device, wall on CUDA"
    )
    ap.add_argument("--workers", type=int, default=8, help="N for the N-worker projection")
    ap.add_argument("--images", type=int, default=64, help="images per timed batch")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--compute-dtype", default="float32", help="float16/bfloat16 compute dtype")
    # The seed study's five formats (configs/cifar/vgg_formats.toml); any of INFERENCE_FORMATS.
    ap.add_argument("--formats", default="float16,bfloat16,float32,float64,int8")
    ap.add_argument(
        "--flush-denormals",
        action="store_true",
        help="compute with subnormal floats flushed to zero (sweep.flush_denormals; CPU only)",
    )
    args = ap.parse_args(argv)
    set_threads(args.threads)  # torch's and the Numba flip kernels'
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: CUDA is not available on this machine")
    if args.flush_denormals:
        try:
            check_flush_device(device, "--flush-denormals")
        except ValueError as exc:
            ap.error(str(exc))
    clock = args.clock or ("cpu" if device.type == "cpu" else "wall")
    formats = args.formats.split(",")
    unknown = [f for f in formats if f not in INFERENCE_FORMATS]
    if unknown:
        ap.error(
            f"--formats: unknown format {unknown[0]!r} (one of {', '.join(INFERENCE_FORMATS)})"
        )

    model, x, source = load("A", args.images)
    x = x.to(device)
    print(
        f"VGG-A ({source}), {len(x)} images per batch, {device}, {torch.get_num_threads()} "
        f"threads, {clock} time; subnormals "
        f"{'flushed to zero' if args.flush_denormals else 'kept (IEEE)'}"
    )
    print(
        f"{'format':<10}{'p':>8}{'clean img/s':>13}{'noisy img/s':>13}  noisy/clean time, paired "
        "(median [95 % interval], or range)"
    )
    per_image: dict[str, float] = {}
    for fmt in formats:
        compute = None
        if fmt in ("float16", "bfloat16") and args.compute_dtype != "storage":
            compute = args.compute_dtype
        quantized = fmt in ("int8", "int4")
        cal = x[:32].cpu() if quantized else None
        net = NoisyNetwork(
            model, fmt, compute_dtype=compute, calibration=cal, flush_denormals=args.flush_denormals
        )
        p = P_INT8 if quantized else P_FLOAT
        channel = BitFlip(fmt, p, engine="auto")
        net.logits(x[:8], channel, seed=0, device=args.device)  # warm-up: compile, allocate
        passes = {
            "clean": lambda n=net: n.logits(x, None, device=args.device),
            "noisy": lambda n=net, c=channel: n.logits(x, c, seed=1, device=args.device),
        }
        times: dict[str, list[float]] = {"clean": [], "noisy": []}
        for r in range(args.repeats):  # pairs: clean and noisy back to back, order alternating
            for kind in ("clean", "noisy") if r % 2 == 0 else ("noisy", "clean"):
                times[kind].append(timed(passes[kind], device, clock))
        t_clean, t_noisy = min(times["clean"]), min(times["noisy"])
        ratio = Paired.of([n / c for n, c in zip(times["noisy"], times["clean"])])
        verdict = f": {ratio.against_one()}" if ratio.resolved else ""
        per_image[fmt] = t_noisy / len(x)
        print(
            f"{fmt:<10}{p:>8.0e}{len(x) / t_clean:>13.1f}{len(x) / t_noisy:>13.1f}  "
            f"{ratio.text(3)}{verdict}"
        )
    if args.repeats < MIN_PAIRS:
        print(
            f"(noisy/clean from {args.repeats} pairs: no interval; such ratios moved by ±3-5 % "
            "between runs on the 2-core development machine, so one within about 1.05 of 1 is "
            f"unresolved; --repeats {MIN_PAIRS} or more gives a 95 % interval)"
        )

    depth_scale = {"A": 1.0}
    small = x[: max(8, len(x) // 4)]
    t_a = None
    for depth in DEPTHS:
        from workloads.vgg import vgg

        torch.manual_seed(0)
        net = NoisyNetwork(vgg(depth).eval(), "float32", flush_denormals=args.flush_denormals)
        net.logits(small[:2], None, device=args.device)
        t = best(
            lambda n=net: n.logits(small, None, device=args.device), args.repeats, device, clock
        )
        t_a = t if depth == "A" else t_a
        depth_scale[depth] = t / t_a
    print(
        "clean cost relative to VGG-A (single measurements, best of each): "
        + ", ".join(f"VGG-{d} {depth_scale[d]:.2f}x" for d in DEPTHS)
    )

    per_curve_s = {fmt: per_image[fmt] * IMAGES for fmt in formats}  # one pass, VGG-A
    curves_cost = sum(per_curve_s.values()) * sum(depth_scale[d] for d in DEPTHS)
    passes_grid = GRID_P * REPEATS + 1
    passes_adaptive = adaptive_passes_per_curve() + 1
    full = curves_cost * passes_grid
    adaptive = curves_cost * passes_adaptive
    n = args.workers
    print(
        f"\nprotocol: {len(DEPTHS)} depths x {len(formats)} formats x {GRID_P} p x {REPEATS} "
        f"repeats x {IMAGES:,} images = {len(DEPTHS) * len(formats) * GRID_P * REPEATS * IMAGES:,} "
        "noisy inferences (+1 clean pass per curve)"
    )
    print(f"adaptive: {passes_adaptive - 1} passes per curve instead of {GRID_P * REPEATS}")
    print(f"{'variant':<10}{'1 worker':>12}{f'{n} workers (ideal)':>22}")
    print(f"{'full':<10}{hours(full):>12}{hours(full / n):>22}")
    print(f"{'adaptive':<10}{hours(adaptive):>12}{hours(adaptive / n):>22}")
    print(
        "(projections from best-of timings and single depth ratios: estimates without an "
        "interval, to read as an order of magnitude, not to compare runs)"
    )


if __name__ == "__main__":
    main()
