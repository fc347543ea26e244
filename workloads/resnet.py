"""ResNet-20 for CIFAR-10 (He et al., 2016, §4.2), and a tiny variant for tests.

Three stages of ``n`` basic blocks (16, 32, 64 channels; ResNet-20 has n = 3), a 3×3 stem,
global average pooling and one linear layer. Each block is conv-bn-relu-conv-bn, then the
residual sum and a ReLU. The shortcut is the identity, or a 1×1 convolution + batch norm where
the shape changes (the paper's option B). The residual sum is a functional ``+``: at ``module``
granularity it is part of the compute of the block's second ReLU, at ``op`` granularity it is a
write of its own (:mod:`memsim.inference.graph`).
"""

from __future__ import annotations

import functools
from typing import Unpack

import torch
from torch import nn

from workloads.base import WORKLOADS
from workloads.cifar import CifarOptions, CifarWorkload
from workloads.train import TrainConfig


class BasicBlock(nn.Module):
    """conv3×3-bn-relu-conv3×3-bn, plus the shortcut, then relu."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32×32 inputs with stage widths ``widths``."""

    def __init__(
        self, blocks_per_stage: int, widths: tuple[int, ...] = (16, 32, 64), num_classes: int = 10
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        stages = []
        in_channels = widths[0]
        for i, width in enumerate(widths):
            blocks = []
            for j in range(blocks_per_stage):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(BasicBlock(in_channels, width, stride))
                in_channels = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # each block starts as the identity (zero-init last BN)
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


#: Registered variants: name → (blocks per stage, stage widths).
VARIANTS: dict[str, tuple[int, tuple[int, int, int]]] = {
    "resnet20": (3, (16, 32, 64)),
    "resnet_tiny": (1, (4, 8, 8)),
}


#: ResNet-20's recipe: SGD with Nesterov momentum, one-cycle schedule, random crop + flip, bf16
#: autocast; about 1.2 minutes per epoch on 2 CPU cores (the paper's 160-epoch step
#: schedule reaches 91.25 %; this shorter one-cycle run gets close, see the shipped checkpoint's
#: ``test_acc``).
RECIPE = TrainConfig(epochs=30, batch_size=128, lr=0.1, weight_decay=5e-4, optimizer="sgd")


def resnet(name: str, num_classes: int = 10) -> CifarResNet:
    """An untrained CIFAR ResNet variant (``"resnet20"`` or ``"resnet_tiny"``)."""
    if name not in VARIANTS:
        raise ValueError(
            f"The 'name' parameter must be one of {', '.join(VARIANTS)}. Got {name!r}."
        )
    n, widths = VARIANTS[name]
    return CifarResNet(n, widths, num_classes)


def _workload(name: str, **options: Unpack[CifarOptions]) -> CifarWorkload:
    n, widths = VARIANTS[name]
    cfg = {"blocks_per_stage": n, "widths": list(widths), "shortcut": "1x1 conv + bn"}
    return CifarWorkload(name, name, functools.partial(resnet, name), cfg, recipe=RECIPE, **options)


for _name in VARIANTS:
    WORKLOADS.register(_name, functools.partial(_workload, _name))
