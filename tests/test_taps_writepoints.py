"""Write-point discovery (memsim.inference.taps): which tensors count as written, in which order."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from memsim.inference.taps import Taps


def small_cnn(inplace: bool = False) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=inplace),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Identity(),
        nn.Linear(6 * 4 * 4, 10),
    ).eval()


X = torch.randn(2, 3, 8, 8)


def test_leaf_outputs_are_writes_and_views_are_not():
    taps = Taps(small_cnn(), X)
    assert [p.name for p in taps.points] == ["0", "1", "2", "3", "4", "5", "9"]
    assert [p.module_type for p in taps.points][:4] == [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
    ]
    assert [p.shape for p in taps.points] == [(4, 8, 8)] * 3 + [
        (4, 4, 4),
        (6, 4, 4),
        (6, 4, 4),
        (10,),
    ]
    assert all(p.role == "activation" for p in taps.points)
    assert [p.index for p in taps.points] == list(range(7))


def test_inplace_activation_is_a_write_but_an_aliasing_view_is_not():
    class View(nn.Module):
        def forward(self, x):
            return x.view(len(x), -1)

    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True), View()).eval()
    names = [p.name for p in Taps(model, torch.randn(3, 4)).points]
    assert names == ["0", "1"]


def test_ops_count_macs_for_conv_and_linear():
    taps = Taps(small_cnn(), X)
    by_name = {p.name: p for p in taps.points}
    assert by_name["0"].ops == 4 * 8 * 8 * 3 * 9  # outputs × (in_channels × kernel)
    assert by_name["9"].ops == 10 * 96
    assert by_name["3"].ops == 4 * 4 * 4 * 4  # max-pool: outputs × window
    assert by_name["1"].ops == 4 * 8 * 8


def test_noisy_input_is_write_zero():
    taps = Taps(small_cnn(), X, noisy_input=True)
    assert taps.points[0].name == "input" and taps.points[0].role == "input"
    assert taps.points[0].shape == (3, 8, 8)
    assert len(taps.points) == 8


def test_fused_chains_are_one_write_of_the_last_output():
    taps = Taps(small_cnn(inplace=True), X, fused=True)
    assert [(p.name, p.module_type) for p in taps.points] == [
        ("2", "Conv2d+BatchNorm2d+ReLU"),
        ("3", "MaxPool2d"),
        ("5", "Conv2d+ReLU"),
        ("9", "Linear"),
    ]
    unfused = {p.name: p.ops for p in Taps(small_cnn(), X).points}
    assert taps.points[0].ops == unfused["0"] + unfused["1"] + unfused["2"]
    assert taps.points[0].members == ("0", "1", "2")


def test_fusion_follows_data_flow_not_names():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            self.conv(x)  # result unused: bn reads x, not the conv's output
            return self.bn(x)

    taps = Taps(Branchy().eval(), X, fused=True)
    assert [p.module_type for p in taps.points] == ["Conv2d", "BatchNorm2d"]


def test_a_module_called_twice_gives_two_writes():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.lin(self.act(x)))

    assert [p.name for p in Taps(Twice(), torch.randn(2, 4)).points] == ["act", "lin", "act#1"]


def test_changing_control_flow_is_a_clear_error():
    class Dynamic(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()
            self.calls = 1

        def forward(self, x):
            for _ in range(self.calls):
                x = self.act(x)
            return x

    model = Dynamic()
    taps = Taps(model, torch.randn(2, 4))
    model.calls = 2
    with taps.hooked(lambda wp, t: t), pytest.raises(RuntimeError, match="static control flow"):
        model(torch.randn(2, 4))


def test_hooks_are_removed_after_use():
    model = small_cnn()
    taps = Taps(model, X)
    seen = []
    with taps.hooked(lambda wp, t: seen.append(wp.name) or t):
        model(X)
    model(X)
    assert len(seen) == 7
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def _vgg_expected(cfg: list, fused: bool) -> tuple[int, int]:
    """Writes and written elements per image of a CIFAR VGG, from its cfg (independent count)."""
    h = w = 32
    writes = elements = channels = 0
    for entry in cfg:
        if entry == "M":
            h, w = h // 2, w // 2
            writes += 1
            elements += channels * h * w
        else:
            channels = entry
            per = 1 if fused else 3  # conv, bn, relu (or one fused block)
            writes += per
            elements += per * channels * h * w
    return writes + 1, elements + 10


@pytest.mark.parametrize("arch", ["A", "B", "D", "E"])
def test_vgg_write_counts_match_the_cfg(arch):
    from workloads import vgg

    model = vgg.vgg(arch).eval()
    for fused in (False, True):
        taps = Taps(model, torch.randn(1, 3, 32, 32), fused=fused)
        writes, elements = _vgg_expected(vgg.CFGS[arch], fused)
        assert len(taps.points) == writes
        assert sum(p.numel for p in taps.points) == elements
        assert taps.points[-1].name == "classifier"


def test_torchvision_resnet18_write_points():
    import torchvision

    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    points = Taps(model, x).points
    # stem conv1,bn1,relu,maxpool; 8 blocks × (conv1,bn1,relu,conv2,bn2,relu#1);
    # 3 downsample conv+bn; avgpool, fc. The residual add is compute, not a write.
    assert len(points) == 4 + 8 * 6 + 3 * 2 + 2
    assert [p.name for p in points[4:10]] == [
        "layer1.0.conv1",
        "layer1.0.bn1",
        "layer1.0.relu",
        "layer1.0.conv2",
        "layer1.0.bn2",
        "layer1.0.relu#1",
    ]
    fused = Taps(model, x, fused=True).points
    # stem chain + maxpool; blocks without downsample: 2 chains (the second one ends at
    # relu#1, across the in-place residual add); with downsample (3): conv1 chain,
    # conv2+bn2, downsample conv+bn, relu#1; avgpool, fc.
    assert len(fused) == 2 + 5 * 2 + 3 * 4 + 2
