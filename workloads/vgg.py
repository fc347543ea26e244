"""VGG-A/B/D/E (VGG-11/13/16/19) with batch norm for CIFAR-10, and their workloads.

The architecture is docs/design.md §8's: for each config entry a 3×3 convolution (padding 1),
BatchNorm2d and ReLU; ``"M"`` is a 2×2 max-pool; then flatten and one ``Linear(512, 10)``.
Module names (``features.N``, ``classifier``) follow torchvision's ``vgg.make_layers``, so the
shared checkpoints in ``../shared/checkpoints/vgg_<X>.pt`` load as they are. Flattening is a
view (``torch.flatten`` in ``forward``), so it is not a module and not a write point.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from workloads.base import WORKLOADS
from workloads.checkpoints import load_checkpoint, verify_reference
from workloads.cifar import CifarWorkload
from workloads.data import shared_dir

#: Layer lists: ints are conv output channels, "M" a max-pool (Simonyan & Zisserman, table 1).
CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}  # fmt: skip


def make_layers(cfg: list[int | str], in_channels: int = 3) -> nn.Sequential:
    """Conv(3×3, pad 1) + BatchNorm2d + ReLU per int entry, MaxPool2d(2) per ``"M"``."""
    layers: list[nn.Module] = []
    for entry in cfg:
        if entry == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [
                nn.Conv2d(in_channels, int(entry), kernel_size=3, padding=1),
                nn.BatchNorm2d(int(entry)),
                nn.ReLU(inplace=False),  # in-place would overwrite the BN output a tap records
            ]
            in_channels = int(entry)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """VGG with batch norm for 32×32 inputs: ``features`` then ``classifier`` (Linear 512→K)."""

    def __init__(self, cfg: list[int | str], num_classes: int = 10) -> None:
        super().__init__()
        self.features = make_layers(cfg)
        self.classifier = nn.Linear(512, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def vgg(arch: str, num_classes: int = 10) -> VGG:
    """An untrained VGG-``arch`` (``"A"``, ``"B"``, ``"D"`` or ``"E"``)."""
    if arch not in CFGS:
        raise ValueError(f"The 'arch' parameter must be one of {', '.join(CFGS)}. Got {arch!r}.")
    return VGG(CFGS[arch], num_classes)


def shared_checkpoint(arch: str) -> Path:
    """Where the shared reference checkpoint for VGG-``arch`` lives (it may not exist)."""
    return shared_dir() / "checkpoints" / f"vgg_{arch}.pt"


class VGGWorkload(CifarWorkload):
    """VGG-``arch`` with batch norm on CIFAR-10.

    Parameters
    ----------
    arch : {"A", "B", "D", "E"}
    checkpoint : path, optional
        Default weights for :meth:`load_model`; else the shared checkpoint when present.
    data_root, download
        See :class:`workloads.data.Cifar10Data`.
    """

    def __init__(
        self,
        arch: str,
        checkpoint: str | os.PathLike | None = None,
        data_root: str | os.PathLike | None = None,
        download: bool = False,
    ) -> None:
        if arch not in CFGS:
            raise ValueError(
                f"The 'arch' parameter must be one of {', '.join(CFGS)}. Got {arch!r}."
            )
        factory = functools.partial(vgg, arch)
        super().__init__(f"vgg_{arch}", arch, factory, CFGS[arch], checkpoint, data_root, download)

    def stored_checkpoint(self) -> Path:
        return shared_checkpoint(self.arch)

    def train_hint(self) -> str:
        return f"train one with `memsim train {self.name}`"

    def read_checkpoint(self, path: Path) -> dict:
        """The payload, the shared reference verified by its hash; a normalisation differing
        from this workload's is a warning."""
        if path == shared_checkpoint(self.arch):
            verify_reference(path)
        payload = load_checkpoint(path)
        mean, std = payload.get("mean"), payload.get("std")
        if mean is not None and std is not None:
            if max(abs(a - b) for a, b in zip([*mean, *std], [*self.mean, *self.std])) > 1e-4:
                warnings.warn(
                    f"{path} was trained with mean={mean}, std={std}, but {self.name} normalises "
                    f"with mean={self.mean}, std={self.std}; accuracy may suffer.",
                    stacklevel=3,
                )
        return payload


for _arch in CFGS:
    WORKLOADS.register(f"vgg_{_arch}", functools.partial(VGGWorkload, _arch))
