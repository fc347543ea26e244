"""Graph write points (memsim.inference.graph): op granularity from the torch.fx graph."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from memsim.experiment.config import ExperimentConfig, SweepConfig, WorkloadSpec
from memsim.inference.graph import GraphCaptureError, GraphTaps, make_taps, per_kind
from memsim.inference.network import NoisyNetwork
from memsim.inference.taps import Taps
from memsim.noise.channel import BitFlip
from workloads.resnet import resnet
from workloads.vgg import CFGS, vgg
from workloads.vit import vit

IMAGES = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("arch", sorted(CFGS))
def test_vgg_op_writes_equal_module_writes(arch):
    model = vgg(arch).eval()
    module = Taps(model, IMAGES).points
    op = GraphTaps(model, IMAGES).points
    assert [(p.name, p.module_type, p.shape, p.ops) for p in op] == [
        (p.name, p.module_type, p.shape, p.ops) for p in module
    ]
    assert sum(p.numel for p in op) == sum(p.numel for p in module)
    assert per_kind(op) == per_kind(module)


class Mixed(nn.Module):
    """A residual add, a functional softmax and a torch.cat between linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.fc1(x) + x
        a = F.softmax(r, dim=-1)
        c = torch.cat([a, self.fc2(x)], dim=1)
        return self.head(c)


X8 = torch.randn(64, 8, generator=torch.Generator().manual_seed(1))


def test_mixed_model_op_writes():
    names = [p.name for p in GraphTaps(Mixed().eval(), X8).points]
    assert names == ["fc1", "add", "softmax", "fc2", "cat", "head"]
    assert [p.name for p in Taps(Mixed().eval(), X8).points] == ["fc1", "fc2", "head"]


@pytest.mark.parametrize("kind", ["add", "softmax", "cat"])
def test_flipping_exactly_that_write_changes_the_output(kind):
    torch.manual_seed(0)
    net = NoisyNetwork(Mixed(), "float32", granularity="op")
    clean = net.logits(X8)
    target = [p for p in net.write_points(X8) if p.name == kind]
    assert len(target) == 1
    flips = BitFlip("float32", 0.05, bits="exponent")

    def only_there(wp):
        return flips if wp.name == kind else None

    noisy = net.logits(X8, only_there, seed=3)
    assert not torch.equal(noisy, clean)
    # At module granularity the same write does not exist: no channel means no change.
    module = NoisyNetwork(Mixed(), "float32")
    assert kind not in [p.name for p in module.write_points(X8)]


class Layout(nn.Module):
    """Views, copies of layout, dropout and identity write nothing; in-place adds do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.drop = nn.Dropout(0.5)
        self.same = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        h = h.view(-1, 2, 4).transpose(1, 2).reshape(-1, 8).contiguous()
        h = F.dropout(self.drop(self.same(h)), 0.5, training=False)
        h += x  # torch.fx records an out-of-place add
        h.mul_(2.0)  # in place: overwrites a stored tensor, a write
        return torch.flatten(h, 1)[:, :4]


def test_layout_operations_are_not_writes_and_inplace_compute_is():
    points = GraphTaps(Layout().eval(), X8).points
    assert [p.name for p in points] == ["fc", "add", "mul_"]


class Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.fc(x)
        return x


def test_uncapturable_model_names_the_construct_and_falls_back():
    with pytest.raises(
        GraphCaptureError, match=r"Branching.*test_graph_writepoints.py:\d+ `if x.sum"
    ):
        GraphTaps(Branching().eval(), X8)
    with pytest.warns(RuntimeWarning, match="Falling back to module hooks"):
        taps = make_taps(Branching().eval(), X8, "op")
    assert taps.granularity == "module" and "Branching" in taps.fallback
    with pytest.warns(RuntimeWarning):
        net = NoisyNetwork(Branching(), "float32", granularity="op")
        net.write_points(X8)
    assert net.granularity == "module" and net.fallback
    with pytest.raises(GraphCaptureError):
        make_taps(Branching().eval(), X8, "op", fallback=False)


@pytest.mark.parametrize("factory", [lambda: resnet("resnet_tiny"), lambda: vit("vit_tiny")])
def test_clean_op_granularity_reproduces_the_model(factory):
    model = factory().eval()
    with torch.no_grad():
        expected = model(IMAGES)
    net = NoisyNetwork(model, "float32", granularity="op")
    assert torch.equal(net.logits(IMAGES), expected)
    assert len(net.write_points(IMAGES)) > len(NoisyNetwork(model).write_points(IMAGES))


def test_resnet_and_vit_op_writes_include_their_functional_ops():
    res = {p.module_type for p in GraphTaps(resnet("resnet_tiny").eval(), IMAGES).points}
    assert "add" in res
    kinds = per_kind(GraphTaps(vit("vit_tiny").eval(), IMAGES).points)
    for kind in ("cat", "add", "matmul", "softmax"):
        assert kinds.get(kind, 0) > 0, kind


def test_int8_calibrates_op_writes():
    model = resnet("resnet_tiny").eval()
    net = NoisyNetwork(model, "int8", granularity="op", calibration=IMAGES)
    names = [p.name for p in net.write_points(IMAGES)]
    assert "layer1.0.add" in names
    assert set(net._storage.cal.activations) == {p.index for p in net.write_points(IMAGES)}
    assert net.logits(IMAGES).shape == (2, 10)


def test_fused_flag_is_fused_granularity_and_conflicts_are_refused():
    assert NoisyNetwork(Mixed(), fused=True).granularity == "fused"
    with pytest.raises(ValueError, match="granularity"):
        NoisyNetwork(Mixed(), fused=True, granularity="op")
    with pytest.raises(ValueError, match="granularity"):
        NoisyNetwork(Mixed(), granularity="ops")


def test_config_granularity_keeps_old_identities():
    base = ExperimentConfig()
    assert ExperimentConfig(sweep=SweepConfig(granularity="module")).digest() == base.digest()
    fused = ExperimentConfig(sweep=SweepConfig(fused=True))
    assert fused.sweep.granularity == "fused"
    assert ExperimentConfig(sweep=SweepConfig(granularity="fused")).digest() == fused.digest()
    op = ExperimentConfig(sweep=SweepConfig(granularity="op"))
    assert op.digest() not in (base.digest(), fused.digest())
    with pytest.raises(ValueError, match="fused"):
        SweepConfig(fused=True, granularity="op")
    with pytest.raises(ValueError, match="granularity"):
        SweepConfig(granularity="layer")
    spec = WorkloadSpec("digits", granularity="op")
    assert ExperimentConfig(workloads=(spec,)).granularity_of(spec) == "op"
    with pytest.raises(ValueError, match="granularity"):
        WorkloadSpec("digits", granularity="graph")


@pytest.mark.parametrize(
    "fmt,dtype", [("float8_e4m3", torch.float8_e4m3fn), ("float8_e5m2", torch.float8_e5m2)]
)
def test_fp8_storage_rounds_every_op_write(fmt, dtype):
    model = Mixed().eval()

    def r(t):
        return t.to(dtype).float()

    with torch.no_grad():
        add = r(r(model.fc1(X8)) + X8)
        cat = r(torch.cat([r(F.softmax(add, dim=-1)), r(model.fc2(X8))], dim=1))
        expected = r(model.head(cat))
    net = NoisyNetwork(model, fmt, granularity="op")
    assert net.compute_dtype == torch.float32
    assert torch.equal(net.logits(X8), expected)
    assert {p.format for p in net.write_points(X8)} == {fmt}


def test_report_states_granularity_and_elements_per_kind():
    import pandas as pd

    from memsim.report.markdown import render

    writes = pd.DataFrame(
        [
            ["net_op", "op", "", "add", 3, 6656],
            ["net_op", "op", "", "Conv2d", 9, 19968],
            ["other", "module", "Cannot capture Foo", "Linear", 1, 10],
        ],
        columns=["workload", "granularity", "fallback", "kind", "writes", "elements_per_image"],
    )
    text = render(
        config={"sweep": {"granularity": "op"}},
        summary=pd.DataFrame(),
        metadata={},
        figures={},
        n_points=0,
        writes=writes,
    )
    assert "write-point granularity: net_op op; other module" in text
    assert "| net_op | op | add | 3 | 6656 |" in text
    assert "other: op granularity fell back to module hooks: Cannot capture Foo" in text


def test_cli_granularity_option_reaches_trace_and_eval(capsys):
    import argparse
    import json

    import workloads.digits  # noqa: F401  (registers the default workload)
    from memsim.cli import inference as inference_cli

    def cli(argv):
        parser = argparse.ArgumentParser()
        inference_cli.add_parser(parser.add_subparsers())
        args = parser.parse_args(argv)
        return args.func(args)

    assert cli(["trace", "digits", "--images", "4", "--granularity", "op"]) == 0
    text = capsys.readouterr().out
    assert "op granularity" in text and "elements per image by kind of write" in text
    argv = ["eval", "digits", "--granularity", "fused", "--p", "1e-3", "--limit", "20", "--json"]
    assert cli(argv) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["granularity"] == "fused"
