"""Lab 6: plug in your own network.

Edit ``MyNet`` below (any ``torch.nn.Module``), then run::

    python docs/labs/lab6_own_network.py --out runs/lab6

The script trains the network on scikit-learn's 8×8 digits (seconds on a laptop), registers
it as the workload ``my_net`` (nothing in memsim is edited), and runs the same experiment as
lab 1 on it, with float32 and int8 storage: the results folder has the usual files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

from memsim.experiment import RunOptions, run_experiment
from memsim.experiment.load import parse_experiment
from workloads.generic import register


class MyNet(nn.Module):
    """A small MLP: change the layers, widths, activations, and see what changes."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(128, 64)
        self.act2 = nn.ReLU()
        self.out = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.out(self.act2(self.fc2(self.act1(self.fc1(x)))))


def digits_splits(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The 1,797 digits images scaled to [0, 1], split 80/20 with a fixed seed."""
    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    x, y = x[order], y[order]
    cut = int(0.8 * len(y))
    return {"train": (x[:cut], y[:cut]), "test": (x[cut:], y[cut:])}


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 30) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def trained_network(
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]], epochs: int = 30, seed: int = 0
) -> nn.Module:
    """``MyNet`` trained on the training split; the same weights on every run.

    Seeded before the network is built: torch seeds its default generator at random in each
    process, so an unseeded initialisation would give another network (and other answers)
    on every run.
    """
    torch.manual_seed(seed)
    return train(MyNet(), *splits["train"], epochs=epochs)


CONFIG = """
name = "lab6-own-network"
description = "Lab 6: your own network (MyNet on the digits), float32 and int8."
seed = 6
workloads = ["my_net"]
formats = ["float32", "int8"]
policies = ["baseline", "ecc_secded"]

[grid]
p_min = 1e-6
p_max = 1e-1
points_per_decade = 6

[sweep]
repeats = 5
"""
# 6 points per decade put at least 3 points inside the steepest drop (SECDED's), and 5 repeats
# are the fewest whose bootstrap interval the report does not warn about.

SMOKE = ["grid.points_per_decade=1", "sweep.repeats=2", "fit.bootstrap=20"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lab 6: your own network in memsim.")
    parser.add_argument("--out", type=Path, default=Path("runs/lab6"))
    parser.add_argument("--smoke", action="store_true", help="a tiny run (tests use it)")
    args = parser.parse_args(argv)

    torch.set_num_threads(2)
    splits = digits_splits()
    model = trained_network(splits, epochs=5 if args.smoke else 30)
    register("my_net", model, splits)

    import tomllib

    from memsim.experiment.config import apply_overrides

    data = tomllib.loads(CONFIG)
    if args.smoke:
        data = apply_overrides(data, SMOKE, "lab6")
    config, _ = parse_experiment(data, source="lab6_own_network.py")
    folder = run_experiment(config, RunOptions(out=args.out, progress=False))
    print(f"Report: {folder / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
