"""Benchmark: noisy inference at op granularity (torch.fx graph) against module granularity.

ResNet-20 and the small ViT (random init; the timing does not depend on the weights), float32,
one batch of random 3×32×32 inputs, CPU, ``--threads`` (default 1) torch and Numba threads
(the noisy passes' flip kernels run on Numba's). Prints the CPU time per batch of a
clean and a noisy (p = 1e-5) pass at ``module`` and at ``op`` granularity, the number of
writes and written elements per image of each, and the ratio op / module, all measured in
this run. Op granularity writes more tensors (residual sums, attention scores, softmax...), so
some extra cost is expected; the ratio says how much.

Timings are CPU seconds of this process, after one warm-up pass of each network; the ms figures
are the fastest of ``--repeats``. The ratio op / module is paired: in each repeat the two
granularities run back to back (their order alternating from repeat to repeat), and the table
gives the median of the per-repeat ratios with a distribution-free 95 % interval
(``benchmarks/_paired.py``; 6 repeats at least). Op does more work, yet single best-of ratios
came out 0.88-0.96× in three runs: a ratio is above or below 1 only where its interval is;
otherwise it is unresolved (within this run's noise).

Run: ``python benchmarks/granularity.py [--batch-size 64] [--repeats 6] [--threads 1]``
"""

from __future__ import annotations

import argparse
import time

import numba
import torch
from _paired import MIN_PAIRS, Paired

from memsim.experiment.executor import set_threads
from memsim.inference.network import NoisyNetwork
from memsim.noise.channel import BitFlip
from workloads.resnet import resnet
from workloads.vit import vit


def cpu_time(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=MIN_PAIRS)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch and Numba threads (fixed; default 1)"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    set_threads(args.threads)  # torch's and the Numba flip kernels'
    print(
        f"batch {args.batch_size}, CPU seconds of this process, {torch.get_num_threads()} torch "
        f"threads, {numba.get_num_threads()} Numba threads, {args.repeats} paired repeats"
    )
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 3, 32, 32)
    channel = BitFlip("float32", 1e-5)
    for name, model in (
        ("resnet20", resnet("resnet20").eval()),
        ("vit_small", vit("vit_small").eval()),
    ):
        nets = {g: NoisyNetwork(model, "float32", granularity=g) for g in ("module", "op")}
        for net in nets.values():  # warm-up: graph capture, allocator, kernel compilation
            net.logits(x, channel, seed=1)
        times: dict[tuple[str, str], list[float]] = {}
        for r in range(args.repeats):
            for kind, ch in (("clean", None), ("noisy", channel)):
                # The pair: both granularities back to back, in alternating order.
                for g in ("module", "op") if r % 2 == 0 else ("op", "module"):
                    t = cpu_time(lambda net=nets[g], ch=ch: net.logits(x, ch, seed=1))
                    times.setdefault((g, kind), []).append(t)
        best = {key: min(ts) for key, ts in times.items()}
        for g, net in nets.items():
            points = net.write_points(x)
            print(
                f"{name} {g:>6}: {len(points)} writes, {sum(p.numel for p in points):,} elements/image; "
                f"clean {best[g, 'clean'] * 1e3:.1f} ms, noisy {best[g, 'noisy'] * 1e3:.1f} ms per batch"
            )
        for kind in ("clean", "noisy"):
            ratio = Paired.of([o / m for o, m in zip(times["op", kind], times["module", kind])])
            print(
                f"{name} op / module ({kind}): {ratio.text(2)}x, median of {ratio.n} paired "
                f"repeats [95 % interval]: {ratio.against_one()}"
            )


if __name__ == "__main__":
    main()
