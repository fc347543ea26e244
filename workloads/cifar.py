"""A CIFAR-10 workload around any network factory, with weights trained by memsim itself.

Used by the residual and attention workloads (:mod:`workloads.resnet`, :mod:`workloads.vit`),
which have no shared reference checkpoint: ``load_model()`` reads ``checkpoint`` when given,
else ``<memsim cache>/checkpoints/<name>.pt`` (what ``memsim train <name> --out`` of that path
writes), else the weights shipped with memsim in ``workloads/weights/<name>.pt`` (trained with
the workload's own recipe, :meth:`CifarWorkload.default_recipe`), else fails with a message that
says how to train one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

import torch
from torch import nn

from workloads.base import Workload, cache_dir
from workloads.checkpoints import check_arch, load_checkpoint, load_state
from workloads.data import Cifar10Data

if TYPE_CHECKING:
    from workloads.train import TrainConfig

#: Weights trained by memsim with each workload's recipe, shipped in the package.
SHIPPED_WEIGHTS = Path(__file__).parent / "weights"


def cached_checkpoint(name: str) -> Path:
    """Where a workload's own trained weights live in the memsim cache folder."""
    return cache_dir() / "checkpoints" / f"{name}.pt"


class CifarOptions(TypedDict, total=False):
    """Keyword options of :class:`CifarWorkload` a family's factory passes on."""

    checkpoint: str | os.PathLike | None
    data_root: str | os.PathLike | None
    download: bool


class CifarWorkload(Workload):
    """A network factory on CIFAR-10 (normalised 3×32×32 inputs, 10 classes).

    Parameters
    ----------
    name : str
        Registered workload name (also the cached checkpoint's file name).
    arch : str
        Architecture tag stored in and checked against checkpoints.
    factory : callable
        ``factory(num_classes) -> nn.Module``, a freshly initialised network.
    cfg : dict or list
        Plain description of the architecture (stored in checkpoints and result files).
    checkpoint : path, optional
        Default weights for :meth:`load_model`.
    data_root, download
        See :class:`workloads.data.Cifar10Data`.
    recipe : TrainConfig, optional
        The training recipe of the workload's own weights (``memsim train`` starts from it).
    """

    num_classes = 10
    input_shape = (3, 32, 32)

    def __init__(
        self,
        name: str,
        arch: str,
        factory: Callable[[int], nn.Module],
        cfg: object,
        checkpoint: str | os.PathLike | None = None,
        data_root: str | os.PathLike | None = None,
        download: bool = False,
        recipe: TrainConfig | None = None,
    ) -> None:
        self.name = name
        self.recipe = recipe
        self.arch = arch
        self.cfg = cfg
        self._factory = factory
        self.checkpoint = checkpoint
        self.data = Cifar10Data(data_root=data_root, download=download)
        self.mean, self.std = self.data.mean, self.data.std

    def dataset(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.dataset(split, limit)

    def split_size(self, split: str) -> int | None:
        return self.data.split_size(split)

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.data.augment(x, generator)

    def build_model(self) -> nn.Module:
        return self._factory(self.num_classes).train()

    def stored_checkpoint(self) -> Path:
        """Where :meth:`load_model` looks for weights when no checkpoint is given."""
        return cached_checkpoint(self.name)

    def train_hint(self) -> str:
        """How to get weights, for the error when there are none."""
        return f"train one with `memsim train {self.name} --out {self.stored_checkpoint()}`"

    def default_recipe(self) -> TrainConfig | None:
        return self.recipe

    def default_checkpoint(self) -> Path | None:
        """The checkpoint ``load_model()`` uses without an argument (None when there is none):
        ``checkpoint``, else the cached one, else the shipped one."""
        if self.checkpoint is not None:
            return Path(self.checkpoint)
        for path in (self.stored_checkpoint(), SHIPPED_WEIGHTS / f"{self.name}.pt"):
            if path.is_file():
                return path
        return None

    def read_checkpoint(self, path: Path) -> dict:
        """The checkpoint's payload (a family may verify or compare more here)."""
        return load_checkpoint(path)

    def load_model(self, checkpoint: str | os.PathLike | None = None) -> nn.Module:
        path = checkpoint if checkpoint is not None else self.default_checkpoint()
        if path is None:
            raise FileNotFoundError(
                f"No trained weights for {self.name}: {self.stored_checkpoint()} does not "
                f"exist. Pass checkpoint=PATH, or {self.train_hint()}."
            )
        payload = self.read_checkpoint(Path(path))
        check_arch(payload, self.arch, path)
        model = load_state(self.build_model(), payload["state_dict"], source=f"Checkpoint {path}")
        return model.float().eval()

    def describe(self) -> dict[str, object]:
        info = {"arch": self.arch, "cfg": self.cfg, "data": self.data.describe()}
        return {**super().describe(), **info}
