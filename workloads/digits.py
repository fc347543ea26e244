"""The embedded default workload: scikit-learn's 8×8 digits and a small CNN with batch norm.

Everything it needs ships inside installed packages, so it runs offline anywhere: tests, the
README's first command and course labs use it. The network is trained on first use (a few
seconds on one CPU core) with a fixed seed and cached under the memsim cache folder
(``MEMSIM_CACHE``, default ``~/.cache/memsim``) in a file keyed by a hash of the recipe, so a
changed recipe never picks up stale weights.

Data: 1,797 grey-scale images with 17 levels (0–16), split once and for all into 1,437
training and 360 test images (stratified, fixed order); pixels scaled to [0, 1], then
standardised with the training set's mean and standard deviation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from workloads.base import WORKLOADS, Workload, cache_dir, check_limit, check_split
from workloads.checkpoints import check_arch, load_checkpoint, load_state, save_checkpoint
from workloads.data import fixed_order
from workloads.train import TrainConfig, accuracy, train_model

log = logging.getLogger(__name__)

ARCH = "digits_cnn"
#: Bump when the network, the data split or the training changes, so cached weights are
#: retrained (2: trained with two threads on every machine).
VERSION = 2
N_TRAIN = 1437

#: The recipe of the default weights (float32, no augmentation: digits are not flip-invariant).
RECIPE = TrainConfig(
    epochs=20,
    batch_size=64,
    lr=0.05,
    schedule="onecycle",
    warmup_fraction=0.25,
    augment=False,
    autocast=False,
    seed=0,
)

_DATA: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
_TRAINED: dict[str, dict[str, torch.Tensor]] = {}


class DigitsCNN(nn.Module):
    """conv(1→16)-bn-relu-pool, conv(16→32)-bn-relu-pool, linear(128→10); ~6k parameters."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(32 * 2 * 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def _load_splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    if not _DATA:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = digits.images.astype(np.float32) / 16.0
        labels = digits.target.astype(np.int64)
        order = fixed_order(labels, "digits")
        train, test = order[:N_TRAIN], order[N_TRAIN:]
        mean, std = float(images[train].mean()), float(images[train].std())
        for split, idx in (("train", train), ("test", test)):
            x = torch.from_numpy((images[idx] - mean) / std).unsqueeze(1).contiguous()
            _DATA[split] = (x, torch.from_numpy(labels[idx]))
    return _DATA


def recipe_hash(config: TrainConfig = RECIPE) -> str:
    """Hash of everything that determines the default weights (recipe, network, split)."""
    spec = {"version": VERSION, "arch": ARCH, "n_train": N_TRAIN, "recipe": asdict(config)}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class DigitsWorkload(Workload):
    """scikit-learn's 8×8 digits with :class:`DigitsCNN` (trained on first use, cached).

    Parameters
    ----------
    checkpoint : path, optional
        Weights to use instead of the cached default ones.
    cache : bool
        Keep the default weights on disk (under ``MEMSIM_CACHE``); off retrains in memory.
    """

    name = "digits"
    arch = ARCH
    num_classes = 10
    input_shape = (1, 8, 8)
    train_threads = 2  # the default weights are the same on every machine

    def __init__(self, checkpoint: str | os.PathLike | None = None, cache: bool = True) -> None:
        self.checkpoint = checkpoint
        self.cache = bool(cache)

    def build_model(self) -> nn.Module:
        return DigitsCNN(self.num_classes)

    def dataset(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_split(split)
        limit = check_limit(limit)
        x, y = _load_splits()[split]
        return (x[:limit], y[:limit]) if limit is not None else (x, y)

    def split_size(self, split: str) -> int | None:
        check_split(split)
        return len(_load_splits()[split][1])

    def default_recipe(self) -> TrainConfig:
        return RECIPE

    def cache_path(self) -> Path:
        """Where the default weights are cached."""
        return cache_dir() / f"digits-{recipe_hash()}.pt"

    def _default_state(self) -> dict[str, torch.Tensor]:
        key = recipe_hash()
        if key in _TRAINED:
            return _TRAINED[key]
        path = self.cache_path()
        if self.cache and path.is_file():
            try:
                payload = load_checkpoint(path)
                check_arch(payload, ARCH, path)
                _TRAINED[key] = payload["state_dict"]
                return _TRAINED[key]
            except ValueError:  # a broken cache entry is retrained, not fatal
                pass
        model, _ = train_model(self, RECIPE, device="cpu", progress=False)
        if self.cache:
            x, y = self.dataset("test")
            try:
                save_checkpoint(
                    path,
                    model,
                    arch=ARCH,
                    weight_dtype=torch.float32,
                    workload=self.name,
                    data="sklearn load_digits, fixed stratified split 1437 train / 360 test",
                    test_acc=accuracy(model, x, y),
                    recipe=RECIPE.describe(),
                    train_config=asdict(RECIPE),
                    torch_version=str(torch.__version__),
                )
            except OSError as exc:  # a read-only cache only costs the next process a retrain
                log.warning("cannot cache the digits weights in %s (%s)", path.parent, exc)
        _TRAINED[key] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return _TRAINED[key]

    def load_model(self, checkpoint: str | os.PathLike | None = None) -> nn.Module:
        path = checkpoint if checkpoint is not None else self.checkpoint
        if path is not None:
            payload = load_checkpoint(path)
            check_arch(payload, ARCH, path)
            state, source = payload["state_dict"], f"Checkpoint {path}"
        else:
            state, source = self._default_state(), "the cached digits weights"
        model = load_state(self.build_model(), state, source=source)
        return model.float().eval()

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "arch": ARCH, "data": "sklearn load_digits (8x8)"}


WORKLOADS.register("digits", DigitsWorkload)
