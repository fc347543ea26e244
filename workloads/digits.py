"""The embedded default workload: scikit-learn's 8×8 digits and a small CNN with batch norm.

Everything it needs ships inside installed packages, so it runs offline anywhere: tests, the
README's first command and course labs use it. Its weights ship too (``SHIPPED``, 31 KB,
trained with :data:`RECIPE`): trained on first use, they differed between processors (the
same seed and thread count, but CPU kernels that add up in another order: AVX2 against
AVX-512 moved weights by up to 0.017, and five golden points), so results, the golden run and
the lab key did too. A recipe the shipped file was not trained with is trained on first use (a
few seconds on one CPU core) and cached under the memsim cache folder (``MEMSIM_CACHE``,
default ``~/.cache/memsim``) in a file keyed by a hash of the recipe, so a changed recipe never
picks up stale weights; :func:`write_shipped_weights` ships a new one.

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

#: The default weights, shipped: trained once with :data:`RECIPE`, the same on every machine.
SHIPPED = Path(__file__).parent / "weights" / "digits.pt"

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
    """scikit-learn's 8×8 digits with :class:`DigitsCNN` (shipped weights; see the module doc).

    Parameters
    ----------
    checkpoint : path, optional
        Weights to use instead of the default ones.
    cache : bool
        Where the shipped weights are not of :data:`RECIPE`: keep the weights trained for it on
        disk (under ``MEMSIM_CACHE``); off retrains in memory.
    """

    name = "digits"
    arch = ARCH
    num_classes = 10
    input_shape = (1, 8, 8)
    train_threads = 2  # weights trained here do not depend on the core count

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
        if SHIPPED.is_file():
            payload = load_checkpoint(SHIPPED)
            if payload.get("recipe_hash") == key:
                check_arch(payload, ARCH, SHIPPED)
                _TRAINED[key] = payload["state_dict"]
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
            try:
                self._save(path, model)
            except OSError as exc:  # a read-only cache only costs the next process a retrain
                log.warning("cannot cache the digits weights in %s (%s)", path.parent, exc)
        _TRAINED[key] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return _TRAINED[key]

    def _save(self, path: Path, model: nn.Module) -> Path:
        x, y = self.dataset("test")
        return save_checkpoint(
            path,
            model,
            arch=ARCH,
            weight_dtype=torch.float32,
            workload=self.name,
            data="sklearn load_digits, fixed stratified split 1437 train / 360 test",
            test_acc=accuracy(model, x, y),
            recipe=RECIPE.describe(),
            recipe_hash=recipe_hash(),
            train_config=asdict(RECIPE),
            torch_version=str(torch.__version__),
        )

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


def write_shipped_weights() -> Path:
    """Train the default weights with :data:`RECIPE` and write them to :data:`SHIPPED` (after a
    recipe change; ``python -c "from workloads.digits import write_shipped_weights as w; w()"``).
    Every result on the default workload moves with them: regenerate the golden run and the
    lab key after."""
    workload = DigitsWorkload(cache=False)
    model, _ = train_model(workload, RECIPE, device="cpu", progress=False)
    return workload._save(SHIPPED, model)
