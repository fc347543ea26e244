"""Benchmark: noisy inference at op granularity (torch.fx graph) against module granularity.

ResNet-20 and the small ViT (random init; the timing does not depend on the weights), float32,
one batch of random 3×32×32 inputs, CPU, 1 torch thread. Prints the CPU time per batch of a
clean and a noisy (p = 1e-5) pass at ``module`` and at ``op`` granularity, the number of
writes and written elements per image of each, and the ratio op / module, all measured in
this run. Op granularity writes more tensors (residual sums, attention scores, softmax...), so
some extra cost is expected; the ratio says how much.

Timings are CPU seconds of this process, interleaved, fastest of ``--repeats``.

Run: ``python benchmarks/granularity.py [--batch-size 64] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import time

import torch

from memsim.inference.network import NoisyNetwork
from memsim.noise.channel import BitFlip
from workloads.resnet import resnet
from workloads.vit import vit


def cpu_time(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 3, 32, 32)
    channel = BitFlip("float32", 1e-5)
    for name, model in (
        ("resnet20", resnet("resnet20").eval()),
        ("vit_small", vit("vit_small").eval()),
    ):
        nets = {g: NoisyNetwork(model, "float32", granularity=g) for g in ("module", "op")}
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.repeats):
            for g, net in nets.items():
                for kind, ch in (("clean", None), ("noisy", channel)):
                    t = cpu_time(lambda net=net, ch=ch: net.logits(x, ch, seed=1))
                    best[g, kind] = min(best.get((g, kind), t), t)
        for g, net in nets.items():
            points = net.write_points(x)
            print(
                f"{name} {g:>6}: {len(points)} writes, {sum(p.numel for p in points):,} elements/image; "
                f"clean {best[g, 'clean'] * 1e3:.1f} ms, noisy {best[g, 'noisy'] * 1e3:.1f} ms per batch"
            )
        for kind in ("clean", "noisy"):
            print(f"{name} op / module ({kind}): {best['op', kind] / best['module', kind]:.2f}x")


if __name__ == "__main__":
    main()
