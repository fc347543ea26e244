"""Benchmark: sweep points per second with the serial, local-pool and Ray executors.

Runs the same small sweep (the digits CNN, or ``--workload vgg_A`` for points that take about
a second each; float32, baseline, a reduced grid) once per executor
into fresh folders, in this one process run, checks that every executor wrote the serial
executor's ``points.csv``, and prints points/s and the ratio to the serial executor. Start-up
(process spawn, Ray start, each worker loading the network) is included: it is what a user
waits for. Ray is skipped with a note when the ``ray`` extra is missing.

Run: ``python benchmarks/executors.py [--workers 2] [--images 96] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from memsim.experiment.run import RunOptions, load_experiment, run_experiment  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--executors", default="serial,pool,ray")
    ap.add_argument("--workload", default="digits", help="workload name (e.g. vgg_A)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    overrides = [
        f'workloads=["{args.workload}"]',
        'formats=["float32"]',
        'policies=["baseline"]',
        "grid.p_min=1e-5",
        "grid.points_per_decade=3",
        f"sweep.repeats={args.repeats}",
        f"sweep.images={args.images}",
        "memory.enabled=false",
    ]
    config, _ = load_experiment(overrides=overrides)
    runs = {
        "serial": RunOptions(workers=1, progress=False),
        "pool": RunOptions(workers=args.workers, progress=False),
        "ray": RunOptions(workers=args.workers, executor="ray", progress=False),
    }
    # The network is trained/cached before timing: every executor then only loads it.
    run_experiment(
        config,
        RunOptions(out=Path(tempfile.mkdtemp()) / "warm", progress=False),
        sweep_only=True,
    )
    print(f"{args.workload}, float32, {args.images} images per point; workers = {args.workers}")
    results: dict[str, tuple[float, pd.DataFrame]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.executors.split(","):
            if name == "ray":
                try:
                    import ray  # noqa: F401
                except ImportError:
                    print("ray: skipped (pip install -e '.[ray]')")
                    continue
            run = runs[name]
            out = Path(tmp) / name
            t0 = time.perf_counter()
            run_experiment(
                config,
                RunOptions(**{**run.__dict__, "out": out}),
                sweep_only=True,
            )
            elapsed = time.perf_counter() - t0
            results[name] = (elapsed, pd.read_csv(out / "points.csv"))
    serial_s, serial_points = results["serial"]
    n = len(serial_points)
    print(f"{n} points per run")
    print(f"{'executor':<10}{'wall s':>9}{'points/s':>10}{'vs serial':>11}  same points")
    for name, (secs, points) in results.items():
        same = points.equals(serial_points)
        print(f"{name:<10}{secs:>9.1f}{n / secs:>10.2f}{serial_s / secs:>11.2f}  {same}")


if __name__ == "__main__":
    main()
