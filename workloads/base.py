"""The workload interface: a network factory, its data and its trained weights.

A workload is the first stage of memsim's data flow (docs/design.md §2): tracing records the writes of
``load_model()`` on ``dataset("test")``, and noisy inference evaluates the same pair under a
write channel. Workloads register by name in :data:`WORKLOADS`; outside packages add their own
through the ``memsim.workloads`` entry-point group, each entry being a callable
``factory(**options) -> Workload``.

Call order: ``get_workload(name, **options)`` builds a workload; ``dataset(split)`` gives the
preprocessed tensors (decoded once per process and cached); ``load_model()`` gives a trained,
eval-mode float32 network, ``build_model()`` an untrained one for training.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from memsim.registry import Registry

if TYPE_CHECKING:
    from workloads.train import TrainConfig, TrainHook

#: Every workload factory, by name. Entries are callables ``factory(**options) -> Workload``.
WORKLOADS: Registry[Callable[..., Workload]] = Registry(
    "workload", entry_point_group="memsim.workloads"
)

#: Data splits every workload offers.
SPLITS = ("train", "test")


class Workload(ABC):
    """A network factory plus its data set, class count and (optional) trained weights.

    Subclasses set ``name``, ``num_classes`` and ``input_shape`` (one sample, without the batch
    dimension) and implement the three methods below. ``augment`` is an optional training-time
    hook (identity by default).
    """

    name: str
    num_classes: int
    input_shape: tuple[int, ...]
    #: Torch intra-op threads :func:`workloads.train.train_model` trains with (the process's
    #: count is restored after), or None to keep the process's count. A CPU's float reductions
    #: are split by thread, so trained weights depend on the count: a workload whose default
    #: weights are trained on first use pins it, so any core count trains the same network (a
    #: processor with other SIMD kernels does not: see :mod:`workloads.digits`).
    train_threads: int | None = None

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised (untrained) network, in train mode."""

    @abstractmethod
    def load_model(self, checkpoint: str | os.PathLike | None = None) -> nn.Module:
        """The trained network in eval mode with float32 parameters.

        Parameters
        ----------
        checkpoint : path, optional
            A checkpoint file (see :mod:`workloads.checkpoints`); by default the workload's own
            (shipped, shared or cached) weights.
        """

    @abstractmethod
    def dataset(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed samples ``x`` (float32) and labels ``y`` (int64), held in memory.

        Parameters
        ----------
        split : {"train", "test"}
        limit : int, optional
            Keep only the first ``limit`` samples. The order is a fixed shuffle of the split, so
            a prefix is a representative subset (all classes, in proportion).
        """

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random training-time augmentation of a preprocessed batch (identity by default)."""
        return x

    def split_size(self, split: str) -> int | None:
        """How many samples ``split`` holds, where that is known without decoding them (the
        driver checks ``sweep.images`` against it before a run claims its folder); ``None``
        where it is not (no data here yet: a run then reports what it loads)."""
        return None

    def samples(
        self, split: str, count: int | None, key: str = ""
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``dataset(split, limit=count)``, refusing fewer than ``count`` samples with a
        one-line ``ValueError`` (prefixed by ``key``, the option or config key that asked):
        before loading where the split's size is known (:meth:`check_count`), else once
        loaded (a workload that cannot tell its size in advance, whose ``dataset`` would
        quietly return fewer)."""
        self.check_count(split, count, key)
        x, y = self.dataset(split, limit=count)
        self.check_count(split, count, key, size=len(x))
        return x, y

    def check_count(
        self, split: str, count: int | None, key: str = "", *, size: int | None = None
    ) -> None:
        """Refuse ``count`` samples of ``split`` (``ValueError``, one line, prefixed by
        ``key``) where the split holds fewer: ``size``, else :meth:`split_size` where that is
        known; ``dataset`` would quietly return fewer. Every entry point that takes a count of
        images calls it (or :meth:`samples`) before it loads anything."""
        if count is None:
            return
        size = self.split_size(split) if size is None else size
        if size is not None and count > size:
            where = f"{key}: " if key else ""
            raise ValueError(
                f"{where}{count} images asked for, but the '{split}' split of workload "
                f"{self.name} holds {size:,}."
            )

    def default_recipe(self) -> TrainConfig | None:
        """The training recipe of this workload's own weights (None: the generic default)."""
        return None

    def train_hooks(self, config: TrainConfig) -> list[TrainHook]:
        """Hooks this workload adds to the training loop (:class:`workloads.train.TrainHook`).

        The base workload has none, so it cannot honour error-aware weight noise.
        """
        if config.weight_noisy:
            raise ValueError(
                f"Workload {self.name} has no training hook for weight_noise_p "
                f"(error-aware training applies to binarized workloads). Got {config.weight_noise_p!r}."
            )
        return []

    def describe(self) -> dict[str, object]:
        """Plain metadata for checkpoints and result files."""
        return {
            "workload": self.name,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, num_classes={self.num_classes})"


def check_split(split: str) -> str:
    """Validate a split name."""
    if split not in SPLITS:
        raise ValueError(
            f"The 'split' parameter must be one of {', '.join(SPLITS)}. Got {split!r}."
        )
    return split


def check_limit(limit: int | None) -> int | None:
    """Validate a subset size (``None`` = everything)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"The 'limit' parameter must be a positive int or None. Got {limit!r}.")
    if limit < 1:
        raise ValueError(f"The 'limit' parameter must be a positive int or None. Got {limit}.")
    return limit


def cache_dir() -> Path:
    """Folder for trained default models and decoded data (``MEMSIM_CACHE``, else ~/.cache/memsim)."""
    return Path(os.environ.get("MEMSIM_CACHE") or Path.home() / ".cache" / "memsim")


def get_workload(name: str | Workload, **options: object) -> Workload:
    """Build the workload registered as ``name``.

    Parameters
    ----------
    name : str or Workload
        A registered name (``memsim list`` shows them); a Workload is returned unchanged.
    **options
        Passed to the workload's factory (for example ``data_root`` or ``checkpoint``).

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones).
    TypeError
        An option the workload does not accept (the message lists the valid ones).
    """
    if isinstance(name, Workload):
        if options:
            raise TypeError("Options cannot be applied to an already built Workload.")
        return name
    factory = WORKLOADS.get(name)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        signature = None
    if signature is not None:
        params = signature.parameters.values()
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        valid = [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]
        unknown = [key for key in options if key not in valid]
        if unknown and not takes_any:
            raise TypeError(
                f"Workload '{name}' does not accept option(s) {', '.join(map(repr, unknown))}. "
                f"Valid options: {', '.join(valid) or 'none'}."
            )
    return factory(**options)
