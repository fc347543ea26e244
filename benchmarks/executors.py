"""Benchmark: sweep points per second with the serial, local-pool and Ray executors.

Runs the same small sweep (the digits CNN, or ``--workload vgg_A`` for points that take about
a second each; float32, baseline, a reduced grid) once per executor
into fresh folders, in this one process run, checks that every executor wrote the serial
executor's ``points.csv``, and prints points/s and the ratio to the serial executor. Every
worker, and the serial run, computes on one thread (torch's and the Numba kernels'). Start-up
(process spawn, Ray start, each worker loading the network) is included: it is what a user
waits for. Ray is skipped with a note when the ``ray`` extra is missing.

Start-up and throughput are also told apart: a thread watches ``points.jsonl`` grow (the
driver appends each point as it lands), and the table gives the seconds to the first point and
the steady rate, points/s from the first quarter of the points landed to the last (what a
long sweep would see), with its ratio to the serial executor's.

The ratios to the serial executor are, by default, single measurements (one run of each
executor): on the 2-core development machine the same ratios moved by up to about ±10 % from
session to session (pool 1.40-1.53×, Ray 1.11-1.26× with start-up; docs/cluster.md), so read a
difference smaller than that as unresolved. ``--runs N`` repeats the whole comparison N times,
the executors' order alternating, and gives each ratio as the median of the runs' paired
ratios (each executor against the serial run of the same round) with a distribution-free 95 %
interval (``benchmarks/_paired.py``; 6 runs at least): faster or slower than serial only where
the interval lies wholly above or below 1.

Run: ``python benchmarks/executors.py [--workers 2] [--images 96] [--repeats 3] [--runs 6]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402
from _paired import MIN_PAIRS, Paired  # noqa: E402

from memsim.experiment.executor import set_threads  # noqa: E402
from memsim.experiment.run import RunOptions, load_experiment, run_experiment  # noqa: E402

#: The executors, in the order the tables list them.
ORDER = {"serial": 0, "pool": 1, "ray": 2}


class Landings:
    """Times at which points land in a run's ``points.jsonl`` (polled every ``every`` s)."""

    def __init__(self, path: Path, every: float = 0.05) -> None:
        self.path, self.every = path, every
        self.times: list[float] = []
        self._read = 0  # bytes of the file already counted
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Landings:
        self.start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self._poll()

    def _poll(self) -> None:
        """Count the lines appended since the last poll (reads only the new bytes)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self._read)
                new = f.read()
        except FileNotFoundError:
            return
        self._read += len(new)
        now = time.perf_counter() - self.start
        self.times.extend([now] * new.count(b"\n"))

    def first_s(self) -> float:
        return self.times[0] if self.times else float("nan")

    def steady_rate(self) -> float:
        """Points per second from the first quarter of the points landed to the last."""
        n = len(self.times)
        m = max(1, n // 4)
        span = self.times[-1] - self.times[m - 1] if n > m else 0.0
        return (n - m) / span if span > 0 else float("nan")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--executors", default="serial,pool,ray")
    ap.add_argument("--workload", default="digits", help="workload name (e.g. vgg_A)")
    ap.add_argument(
        "--runs",
        type=int,
        default=1,
        help=f"rounds of the whole comparison ({MIN_PAIRS} or more give 95 %% intervals)",
    )
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error(f"--runs must be at least 1, got {args.runs}")
    names = args.executors.split(",")
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        ap.error(f"--executors: unknown executor {unknown[0]!r} (serial, pool, ray)")
    if "serial" not in names:
        ap.error("--executors must include serial (the ratios' reference)")
    # One thread per worker, the serial run's included: torch's and the Numba flip kernels'.
    set_threads(1)
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
    if "ray" in names:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("ray: skipped (pip install -e '.[ray]')")
            names.remove("ray")
    # rounds[r][name] = (wall s, points, landings) of executor ``name`` in round ``r``.
    rounds: list[dict[str, tuple[float, pd.DataFrame, Landings]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            results = {}
            for name in names if r % 2 == 0 else names[::-1]:
                out = Path(tmp) / f"{name}-{r}"
                t0 = time.perf_counter()
                with Landings(out / "points.jsonl") as landed:
                    run_experiment(
                        config,
                        RunOptions(**{**runs[name].__dict__, "out": out}),
                        sweep_only=True,
                    )
                elapsed = time.perf_counter() - t0
                results[name] = (elapsed, pd.read_csv(out / "points.csv"), landed)
            rounds.append(results)
    if args.runs == 1:
        table(rounds[0])
    else:
        summary(rounds, names)


def table(results: dict[str, tuple[float, pd.DataFrame, Landings]]) -> None:
    """One round: the figures and their ratios to serial, each a single measurement."""
    serial_s, serial_points, serial_landed = results["serial"]
    n = len(serial_points)
    print(f"{n} points per run")
    print(
        f"{'executor':<10}{'wall s':>9}{'points/s':>10}{'vs serial':>11}"
        f"{'first s':>9}{'steady/s':>10}{'vs serial':>11}  same points"
    )
    for name, (secs, points, landed) in sorted(results.items(), key=lambda kv: ORDER[kv[0]]):
        same = points.equals(serial_points)
        steady = landed.steady_rate()
        print(
            f"{name:<10}{secs:>9.1f}{n / secs:>10.2f}{serial_s / secs:>11.2f}"
            f"{landed.first_s():>9.1f}{steady:>10.2f}{steady / serial_landed.steady_rate():>11.2f}"
            f"  {same}"
        )
    print(
        "'vs serial': one run of each executor, a single measurement; on the 2-core development "
        "machine such ratios moved by up to about ±10 % between sessions, so a smaller "
        f"difference is unresolved (--runs {MIN_PAIRS} gives 95 % intervals)"
    )


def summary(rounds: list[dict[str, tuple[float, pd.DataFrame, Landings]]], names) -> None:
    """Several rounds: medians, and the ratios to serial paired within each round."""
    reference = rounds[0]["serial"][1]
    n = len(reference)
    print(f"{n} points per run, {len(rounds)} rounds (executor order alternating)")
    print(
        "medians over the rounds; ratios to serial paired within each round: "
        "median [95 % interval of the median]"
    )
    for name in sorted(names, key=ORDER.__getitem__):
        secs = [rd[name][0] for rd in rounds]
        steady = [rd[name][2].steady_rate() for rd in rounds]
        same = all(rd[name][1].equals(reference) for rd in rounds)
        overall = Paired.of([rd["serial"][0] / rd[name][0] for rd in rounds])
        rate = Paired.of([s / rd["serial"][2].steady_rate() for s, rd in zip(steady, rounds)])
        first = statistics.median(rd[name][2].first_s() for rd in rounds)
        print(
            f"{name:<8} wall {statistics.median(secs):.1f} s, first point {first:.1f} s, "
            f"steady {statistics.median(steady):.2f} points/s; same points: {same}"
        )
        if name != "serial":
            print(f"         points/s vs serial {overall.text(2)}: {overall.against_one()}")
            print(f"         steady vs serial   {rate.text(2)}: {rate.against_one()}")


if __name__ == "__main__":
    main()
