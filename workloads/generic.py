"""Any ``torch.nn.Module`` plus a data set as a workload, without editing the model.

Tracing and noise injection reach a network only through forward hooks, so wrapping is all a
model needs: :func:`wrap` turns a module (or a factory) and data (tensors, a torch ``Dataset``
or any object with ``dataset(split, limit)``) into a :class:`Workload`; :func:`register`
additionally makes it available by name (``get_workload(name)``, configs, the CLI).

``resnet18_cifar`` is registered here as the worked example: torchvision's ResNet-18, unedited,
on CIFAR-10 (untrained unless a checkpoint is given).
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable, Mapping, Sized
from typing import Protocol, TypedDict, Unpack

import torch
from torch import nn
from torch.utils.data import Dataset

from workloads.base import SPLITS, WORKLOADS, Workload, check_limit, check_split
from workloads.checkpoints import check_arch, load_checkpoint, load_state
from workloads.data import Cifar10Data

Split = tuple[torch.Tensor, torch.Tensor] | Dataset


class DataSource(Protocol):
    """Data given as an object (such as :class:`workloads.data.Cifar10Data`).

    Optional, looked up by name: ``augment(x, generator)``, ``mean``, ``std``, ``input_shape``
    and ``describe()``.
    """

    def dataset(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed ``(x, y)`` of ``split``, the first ``limit`` samples."""
        ...


class ModuleOptions(TypedDict, total=False):
    """Keyword options of :func:`register` (passed on to :class:`ModuleWorkload`)."""

    num_classes: int | None
    arch: str | None


class WrapOptions(ModuleOptions, total=False):
    """Keyword options of :func:`wrap`."""

    checkpoint: str | os.PathLike | None


def _as_tensors(data: Split, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensors from an ``(x, y)`` pair or a Dataset of ``(x, y)`` items (first ``limit``)."""
    if isinstance(data, tuple) and len(data) == 2:
        x, y = (torch.as_tensor(v) for v in data)
    elif isinstance(data, Dataset):
        if not isinstance(data, Sized):
            raise TypeError(
                f"Data for split '{split}' must be a Dataset with a length (map-style). "
                f"Got {type(data).__name__}."
            )
        n = len(data) if limit is None else min(limit, len(data))
        if n == 0:
            raise ValueError(f"The '{split}' data set is empty.")
        items = [data[i] for i in range(n)]
        x = torch.stack([torch.as_tensor(item[0]) for item in items])
        y = torch.as_tensor([int(item[1]) for item in items])
    else:
        raise TypeError(
            f"Data for split '{split}' must be an (x, y) pair of tensors or a torch Dataset. "
            f"Got {type(data).__name__}."
        )
    if len(x) != len(y):
        raise ValueError(f"Split '{split}': {len(x)} samples but {len(y)} labels.")
    if len(y) == 0:
        raise ValueError(f"The '{split}' data set is empty.")
    x = x.float() if not x.is_floating_point() else x.to(torch.float32)
    y = y.to(torch.int64)
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


class ModuleWorkload(Workload):
    """A workload made of an arbitrary network and data.

    Parameters
    ----------
    name : str
    model : nn.Module or callable returning one
        A module is used as given (``load_model`` returns a float32 eval-mode copy of it);
        a factory builds fresh, untrained networks.
    data : mapping or object
        ``{"train": ..., "test": ...}`` with ``(x, y)`` pairs or Datasets (x already
        preprocessed), or any object with ``dataset(split, limit)`` (and optionally
        ``augment(x, generator)``), such as :class:`workloads.data.Cifar10Data`.
    num_classes : int, optional
        Default: one more than the largest test label.
    checkpoint : path, optional
        Weights that ``load_model()`` loads by default.
    arch : str, optional
        Architecture tag written into and checked against checkpoints.
    """

    def __init__(
        self,
        name: str,
        model: nn.Module | Callable[[], nn.Module],
        data: Mapping[str, Split] | DataSource,
        *,
        num_classes: int | None = None,
        checkpoint: str | os.PathLike | None = None,
        arch: str | None = None,
    ) -> None:
        if not isinstance(model, nn.Module) and not callable(model):
            raise TypeError(
                f"model must be an nn.Module or a callable returning one. Got {type(model).__name__}."
            )
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(SPLITS))
            if unknown:
                raise ValueError(
                    f"Unknown data split(s) {unknown}; splits are {', '.join(SPLITS)}."
                )
        elif not hasattr(data, "dataset"):
            raise TypeError(
                "data must be a mapping {'train': ..., 'test': ...} or an object with a "
                f"dataset(split, limit) method. Got {type(data).__name__}."
            )
        self.name = name
        self.arch = arch or name
        self._model = model
        self._data = data
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.checkpoint = checkpoint
        self._num_classes = num_classes
        self.mean = getattr(data, "mean", None)
        self.std = getattr(data, "std", None)

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        if self._num_classes is None:
            self._num_classes = int(self.dataset("test")[1].max()) + 1
        return self._num_classes

    @property
    def input_shape(self) -> tuple[int, ...]:  # type: ignore[override]
        known = getattr(self._data, "input_shape", None)
        return (
            tuple(known) if known is not None else tuple(self.dataset("test", limit=1)[0].shape[1:])
        )

    def dataset(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_split(split)
        limit = check_limit(limit)
        if not isinstance(self._data, Mapping):
            return self._data.dataset(split, limit)
        if split not in self._data:
            raise ValueError(
                f"Workload {self.name} has no '{split}' data (it has {', '.join(self._data)})."
            )
        if split not in self._cache:
            whole = _as_tensors(self._data[split], split, None)
            self._cache[split] = whole
        x, y = self._cache[split]
        return (x[:limit], y[:limit]) if limit is not None else (x, y)

    def split_size(self, split: str) -> int | None:
        check_split(split)
        if not isinstance(self._data, Mapping):
            size = getattr(self._data, "split_size", None)
            return size(split) if callable(size) else None
        data = self._data.get(split)
        if isinstance(data, tuple) and len(data) == 2:
            labels = data[1]
            scalar = getattr(labels, "ndim", None) == 0  # a 0-d tensor has no len()
            return len(labels) if isinstance(labels, Sized) and not scalar else None
        return len(data) if isinstance(data, Dataset) and isinstance(data, Sized) else None

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        augment = getattr(self._data, "augment", None)
        return augment(x, generator) if augment is not None else x

    def build_model(self) -> nn.Module:
        if isinstance(self._model, nn.Module):
            return copy.deepcopy(self._model).train()
        model = self._model()
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"The model factory of {self.name} returned {type(model).__name__}, not an nn.Module."
            )
        return model.train()

    def load_model(self, checkpoint: str | os.PathLike | None = None) -> nn.Module:
        path = checkpoint if checkpoint is not None else self.checkpoint
        model = self.build_model()
        if path is not None:
            payload = load_checkpoint(path)
            check_arch(payload, self.arch, path)
            load_state(model, payload["state_dict"], source=f"Checkpoint {path}")
        elif not isinstance(self._model, nn.Module):
            warnings.warn(
                f"Workload {self.name} has no checkpoint: its network is untrained. "
                f"Pass checkpoint=PATH or train one with `memsim train {self.name}`.",
                stacklevel=2,
            )
        return model.float().eval()

    def describe(self) -> dict[str, object]:
        describe_data = getattr(self._data, "describe", None)
        data = describe_data() if callable(describe_data) else "user-supplied tensors"
        return {**super().describe(), "arch": self.arch, "data": data}


def wrap(
    model: nn.Module | Callable[[], nn.Module],
    data: Mapping[str, Split] | DataSource,
    *,
    name: str = "custom",
    **options: Unpack[WrapOptions],
) -> ModuleWorkload:
    """Make ``model`` + ``data`` a workload (see :class:`ModuleWorkload` for the options)."""
    return ModuleWorkload(name, model, data, **options)


def register(
    name: str,
    model: nn.Module | Callable[[], nn.Module],
    data: Mapping[str, Split] | DataSource,
    **options: Unpack[ModuleOptions],
) -> None:
    """Register ``model`` + ``data`` as workload ``name`` (``get_workload(name)`` builds it)."""

    def factory(checkpoint: str | os.PathLike | None = None) -> ModuleWorkload:
        return ModuleWorkload(name, model, data, checkpoint=checkpoint, **options)

    WORKLOADS.register(name, factory)


@WORKLOADS.register("resnet18_cifar")
def resnet18_cifar(
    checkpoint: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    download: bool = False,
) -> ModuleWorkload:
    """torchvision's ResNet-18 (10 classes, unedited) on CIFAR-10; untrained without a checkpoint."""
    from torchvision.models import resnet18

    def factory() -> nn.Module:
        return resnet18(num_classes=10)

    return ModuleWorkload(
        "resnet18_cifar",
        factory,
        Cifar10Data(data_root=data_root, download=download),
        num_classes=10,
        checkpoint=checkpoint,
        arch="resnet18",
    )
