"""Benchmark: adaptive sweep vs. full grid — same midpoint with a third of the inference passes.

Runs the full grid (1e-8 … 1e-1, 3 points per decade = 22 p, 5 repeats, coupled) and the
adaptive search on the same curve, fits both and prints μ, its CI and the number of inference
passes (one pass = one evaluation of the whole image subset at one p; the noise-free point
that both need is not counted). Target: |μ_adaptive / μ_grid − 1| ≤ 10 % with at
most one third of the passes.

The midpoint aim is judged on intervals, not on the two point estimates (with 64 images and
2 repeats the μ intervals are ±15-25 %, wider than the aim): the ratio's interval is taken,
conservatively, from the bounds of the two 95 % intervals; "met" when it lies wholly within
0.9-1.1, "missed" when wholly outside, else "unresolved" (more images or repeats narrow it).
The passes ratio is a count. Exit status 0 only when both aims are met. The time_s column is one
run of each mode (a single measurement, no interval: only the passes are judged). Torch and
the Numba flip kernels run on ``--threads`` (default 1) threads.

    python benchmarks/adaptive.py                  # digits CNN, float32, baseline (real network)
    python benchmarks/adaptive.py --format int8 --policy ecc_secded
    python benchmarks/adaptive.py --surrogate      # a known logistic instead of a network
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from memsim.experiment.adaptive import run_adaptive
from memsim.experiment.config import AdaptiveConfig, PolicySpec, SweepConfig, WorkloadSpec
from memsim.experiment.executor import SerialExecutor, set_threads
from memsim.experiment.points import (
    Curve,
    NetworkEvaluator,
    SurrogateEvaluator,
    clean_task,
    plan_grid,
    run_points,
)
from memsim.experiment.store import ResultsStore
from memsim.fit import fit_points

#: The aim on the midpoint: |mu_adaptive / mu_grid - 1| within this.
MU_TOLERANCE = 0.10


def fit_frame(frame, a_max, num_classes):
    pts = frame[frame["kind"] == "sweep"]
    return fit_points(
        pts["p"],
        pts["accuracy"],
        pts["repeat"],
        a_max=a_max,
        num_classes=num_classes,
        n_boot=200,
        seed=0,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="digits")
    ap.add_argument("--format", default="float32")
    ap.add_argument("--policy", default="baseline")
    ap.add_argument("--images", type=int, default=0, help="test images per point (0: all)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch and Numba threads (fixed; default 1)"
    )
    ap.add_argument(
        "--surrogate", action="store_true", help="use a known logistic instead of the network"
    )
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")
    set_threads(args.threads)  # torch's and the Numba flip kernels'

    curve = Curve(args.workload, args.format, args.policy)
    grid = tuple(float(p) for p in np.logspace(-8, -1, 22))
    if args.surrogate:
        evaluate = SurrogateEvaluator(mu_log10=-4.0, sigma=0.25, n_images=360)
        couplable = None
        what = "surrogate logistic (mu = 1e-4, sigma = 0.25 decades, 360 images)"
    else:
        sweep = SweepConfig(repeats=args.repeats, images=args.images)
        evaluate = NetworkEvaluator(
            (WorkloadSpec(args.workload),), (PolicySpec(args.policy, args.policy),), sweep
        )
        couplable = evaluate.couplable
        what = f"{args.workload} · {args.format} · {args.policy} (real network, {args.images or 'all'} images)"

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with ResultsStore.open(tmp / "grid", config={}, digest="grid") as store:
            t0 = time.perf_counter()
            coupled = couplable(curve, grid) if couplable else True
            tasks = plan_grid([curve], grid, repeats=args.repeats, seed=args.seed, coupled=coupled)
            run_points(tasks, store, SerialExecutor(), evaluate, progress=False)
            t_grid = time.perf_counter() - t0
            grid_frame = store.points_frame()
        clean = grid_frame[grid_frame["kind"] == "clean"].iloc[0]
        a_max, k = float(clean["accuracy"]), int(clean["num_classes"])
        ref = fit_frame(grid_frame, a_max, k)
        grid_passes = int((grid_frame["kind"] == "sweep").sum())

        with ResultsStore.open(tmp / "adaptive", config={}, digest="adaptive") as store:
            run_points(
                [clean_task(args.seed, curve)], store, SerialExecutor(), evaluate, progress=False
            )
            t0 = time.perf_counter()
            out = run_adaptive(
                [curve], store, SerialExecutor(), evaluate, seed=args.seed, p_min=grid[0], p_max=grid[-1],
                a_max={curve: a_max}, num_classes={curve: k}, options=AdaptiveConfig(enabled=True),
                couplable=couplable, progress=False,
            )[curve]  # fmt: skip
            t_adaptive = time.perf_counter() - t0
            ad_frame = store.points_frame()
        ad = fit_frame(ad_frame, a_max, k)
        ad_passes = int((ad_frame["kind"] == "sweep").sum())

    print(f"curve: {what}; a_max = {a_max:.4f}; {args.threads} torch and Numba threads")
    print("time_s: one run of each mode (a single measurement, not judged)")
    print(
        f"{'mode':<10}{'passes':>8}{'time_s':>9}{'mu':>12}{'mu_ci_low':>12}{'mu_ci_high':>12}{'sigma':>8}  status"
    )
    for name, fit, passes, secs, status in (
        ("grid", ref, grid_passes, t_grid, ref.status),
        ("adaptive", ad, ad_passes, t_adaptive, f"{ad.status} / search {out.status}"),
    ):
        print(
            f"{name:<10}{passes:>8}{secs:>9.2f}{fit.mu:>12.4g}{fit.mu_ci_low:>12.4g}{fit.mu_ci_high:>12.4g}{fit.sigma:>8.3f}  {status}"
        )
    if not (ref.fitted and ad.fitted):
        print("no midpoint inside the range: nothing to compare")
        return 1
    low, high = ratio_interval(ad, ref)
    on_mu = judge(low, high, 1 - MU_TOLERANCE, 1 + MU_TOLERANCE)
    ratio = ad_passes / grid_passes  # counted, not measured: no interval
    on_passes = "met" if ratio <= 1 / 3 else "missed"
    verdict = (
        "met"
        if on_mu == on_passes == "met"
        else "missed"
        if "missed" in (on_mu, on_passes)
        else "unresolved"
    )
    print(
        f"mu adaptive / mu grid {ad.mu / ref.mu:.3f} [{low:.3f}, {high:.3f}] (from the two 95 % "
        f"intervals; aim within {1 - MU_TOLERANCE:.2f}-{1 + MU_TOLERANCE:.2f}): {on_mu}"
    )
    print(f"passes ratio {ratio:.2f} (aim <= 0.33): {on_passes}")
    print(f"verdict: {verdict}")
    print(f"log10 mu: grid {math.log10(ref.mu):.3f}, adaptive {math.log10(ad.mu):.3f}")
    return 0 if verdict == "met" else 1


def ratio_interval(ad, ref) -> tuple[float, float]:
    """Conservative interval of ``mu_adaptive / mu_grid``: the ratio of the intervals' bounds
    (it holds whenever both midpoints lie in their intervals, whatever their correlation).
    NaN where either interval is missing."""
    bounds = (ad.mu_ci_low, ad.mu_ci_high, ref.mu_ci_low, ref.mu_ci_high)
    if not all(math.isfinite(b) and b > 0 for b in bounds):
        return math.nan, math.nan
    return ad.mu_ci_low / ref.mu_ci_high, ad.mu_ci_high / ref.mu_ci_low


def judge(low: float, high: float, aim_low: float, aim_high: float) -> str:
    """The verdict: "met" when the whole interval lies within the aim, "missed" when it lies
    wholly outside it, else "unresolved" (also without an interval)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "unresolved"
    if aim_low <= low and high <= aim_high:
        return "met"
    if high < aim_low or low > aim_high:
        return "missed"
    return "unresolved"


if __name__ == "__main__":
    sys.exit(main())
