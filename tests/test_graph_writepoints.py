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


class _Scaled(nn.Module):
    """A submodule the trace goes through (not a leaf): its buffer is read by a get_attr node."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.full((4,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class _Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.inner = _Scaled()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.relu(self.lin(x)))


def test_a_nested_buffer_the_model_replaces_is_what_the_captured_graph_reads():
    """model.to(device) replaces buffers: the graph must read the new ones, nested ones too
    (else a network moved to CUDA reads a CPU tensor there)."""
    model = _Outer().eval()
    x = torch.randn(3, 4)
    taps = make_taps(model, x, "op", fallback=False)
    assert isinstance(taps, GraphTaps)
    model.inner.scale = torch.full((4,), 3.0)  # a new tensor, as Module.to() installs
    with torch.no_grad():
        expected = model(x)
        with taps.hooked(lambda point, t: t):
            got = model(x)
    assert torch.equal(got, expected)
    assert not torch.equal(got, torch.relu(model.lin(x)) * 2.0)


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


# ------------------------------------------------------------------ fused granularity (graph)
def _described(points):
    return [(p.name, p.module_type, p.shape, p.ops, p.members) for p in points]


@pytest.mark.parametrize("arch", sorted(CFGS))
def test_vgg_graph_fusion_equals_module_hook_fusion(arch):
    model = vgg(arch).eval()
    graph = GraphTaps(model, IMAGES, fused=True)
    hooks = Taps(model, IMAGES, fused=True)
    assert graph.granularity == "fused"
    assert _described(graph.points) == _described(hooks.points)
    assert any(p.module_type == "Conv2d+BatchNorm2d+ReLU" for p in graph.points)
    assert len(graph.points) < len(GraphTaps(model, IMAGES).points)


def test_resnet_fusion_joins_the_residual_sum_into_conv_bn_relu():
    points = make_taps(resnet("resnet_tiny").eval(), IMAGES, "fused").points
    by_name = {p.name: p for p in points}
    # conv1 → bn1 → relu1 is one write; conv2 → bn2 → (+ shortcut) → relu2 is one write.
    assert by_name["layer1.0.relu1"].module_type == "Conv2d+BatchNorm2d+ReLU"
    block_out = by_name["layer1.0.relu2"]
    assert block_out.module_type == "Conv2d+BatchNorm2d+add+ReLU"
    assert block_out.members == (
        "layer1.0.conv2",
        "layer1.0.bn2",
        "layer1.0.add",
        "layer1.0.relu2",
    )
    # The 1×1 shortcut (conv + bn) of a downsampling block stays a write of its own.
    assert by_name["layer2.0.shortcut.1"].module_type == "Conv2d+BatchNorm2d"
    assert not any(n.endswith(".add") or n.endswith(".bn2") for n in by_name)


def test_vit_fusion_keeps_attention_writes_and_fuses_the_mlp():
    points = make_taps(vit("vit_tiny").eval(), IMAGES, "fused").points
    kinds = [p.module_type for p in points]
    assert "Linear+GELU" in kinds
    for kind in ("softmax", "matmul", "cat", "add", "LayerNorm"):
        assert kind in kinds, kind
    op = GraphTaps(vit("vit_tiny").eval(), IMAGES).points
    assert sum(p.numel for p in points) < sum(p.numel for p in op)
    assert sum(p.ops for p in points) == sum(p.ops for p in op)  # fusion moves no work


class FunctionalChain(nn.Module):
    """conv → batch norm → relu written with torch.nn.functional, then a used intermediate."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.register_buffer("mean", torch.zeros(4))
        self.register_buffer("var", torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(F.batch_norm(F.conv2d(x, self.w, padding=1), self.mean, self.var))
        z = F.conv2d(y, self.w[:, :1].expand(4, 4, 3, 3).contiguous(), padding=1)
        return F.relu(z) + z  # z has two users: not fused


def test_functional_chains_fuse_and_shared_intermediates_do_not():
    points = GraphTaps(FunctionalChain().eval(), IMAGES, fused=True).points
    kinds = [p.module_type for p in points]
    assert kinds[0] == "conv2d+batch_norm+relu"
    assert "conv2d" in kinds and "relu" in kinds and kinds[-1] == "add"


def test_fused_noise_hits_the_chain_output_only():
    model = resnet("resnet_tiny").eval()
    net = NoisyNetwork(model, "float32", granularity="fused")
    names = [p.name for p in net.write_points(IMAGES)]
    clean = net.logits(IMAGES)
    flips = BitFlip("float32", 0.05, bits="exponent")
    for target in ("layer1.0.relu2", "layer2.0.shortcut.1"):
        assert target in names
        noisy = net.logits(IMAGES, lambda wp, t=target: flips if wp.name == t else None, seed=0)
        assert not torch.equal(noisy, clean), target
    # The chain's inner members are not writes: a channel asked for them is never used.
    asked = []
    net.logits(IMAGES, lambda wp: asked.append(wp.name), seed=0)
    assert "layer1.0.bn2" not in asked and "layer1.0.add" not in asked and len(asked) == len(names)


def test_fused_falls_back_to_module_hook_fusion():
    with pytest.warns(RuntimeWarning, match="module-hook chain fusion"):
        taps = make_taps(Branching().eval(), X8, "fused")
    assert isinstance(taps, Taps) and taps.granularity == "fused" and taps.fallback


@pytest.mark.parametrize("granularity", ["op", "fused"])
def test_per_layer_int8_parameters_follow_the_granularity(granularity):
    from memsim.inference.mixed import int8_point_qparams

    model = resnet("resnet_tiny").eval()
    q = int8_point_qparams(model, IMAGES, IMAGES, granularity=granularity)
    points = NoisyNetwork(model, "float32", granularity=granularity).write_points(IMAGES)
    assert set(q) == {p.index for p in points}
    assert len(points) != len(NoisyNetwork(model).write_points(IMAGES))
