"""Binarized neural networks (weights and activations ±1) and their workloads.

First stage of the binarized-network study: the networks whose binary weights are programmed
once into RRAM (one bit per cell, bit 1 = +1, bit 0 = −1) and whose binary activations may be
written to RRAM too. The one training loop (:mod:`workloads.train`) trains them with this
family's recipe (:func:`bnn_recipe`) and hooks (latent-weight clipping, error-aware sign
flips); :mod:`memsim.inference.faults` draws the persistent weight fault maps and
:mod:`memsim.studies.bnn` turns programming conditions into energy and accuracy.

Weights: a recipe whose network ships (:data:`SHIPPED_DIR`, named by
:meth:`BNNWorkload.weights_key`) is loaded, never trained, and a shipped file that does not
match its name is an error; other recipes are trained on first use and cached.

Layers (:mod:`workloads.bnn_layers`, re-exported here): sign/straight-through binarization,
:class:`BinaryLinear`/:class:`BinaryConv2d` with fault maps and the :func:`xnor_popcount` oracle.

Networks: :class:`BinaryMLP` (all weights binary, real input pixels, batch norm before every
sign, the last layer's batch norm gives the logits) and :class:`BinaryVGG` (a VGG-like
convolutional BNN whose first convolution and last linear layer are real-valued, as is
customary; only binary weights live in the RRAM weight memory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from memsim.checks import check_probability
from memsim.paths import write_bytes_atomic
from workloads.base import WORKLOADS, Workload, cache_dir, check_limit, check_split
from workloads.bnn_layers import (
    BINARY_LAYERS,
    BinaryConv2d,
    BinaryLinear,
    ClipLatentWeights,
    ErrorAwareFlips,
    SignActivation,
    binarize,
    binary_layers,
    bnn_train_hooks,
    clip_latent_weights_,
    sign,
    xnor_popcount,
)
from workloads.checkpoints import check_arch, load_checkpoint, load_state, save_checkpoint
from workloads.train import TrainConfig, TrainHook, accuracy, train_model

__all__ = [
    "BINARY_LAYERS",
    "SHIPPED_DIR",
    "SMALL_CFG",
    "VERSION",
    "BNNCifarWorkload",
    "BNNDigitsWorkload",
    "BNNMnistWorkload",
    "BNNWorkload",
    "BinaryConv2d",
    "BinaryLinear",
    "BinaryMLP",
    "BinaryVGG",
    "ClipLatentWeights",
    "ErrorAwareFlips",
    "SignActivation",
    "binarize",
    "binary_layers",
    "bnn_recipe",
    "clip_latent_weights_",
    "load_mnist",
    "save_bnn",
    "shipped_network",
    "sign",
    "write_network",
    "write_shipped_weights",
    "xnor_popcount",
]

#: Bump when a network or a default recipe changes, so cached weights are retrained. A bump
#: also renames every shipped file's key (they are then trained on each machine): re-ship them
#: (``memsim.studies.bnn.ship_networks`` per config) and regenerate lab 5's key.
VERSION = 2

#: Trained networks that ship with memsim, ``<workload>-<weights key>.pt``
#: (:meth:`BNNWorkload.weights_key`): a recipe with a file here is not trained but loaded, so
#: its network is the same on every machine (float32 training gave different weights with
#: different SIMD kernels). The digits networks of ``configs/bnn/digits*.toml`` (also
#: ``bnn_digits``'s defaults at ``train_ber`` 0 and 0.04) and of lab 5 ship
#: (:func:`write_shipped_weights`).
SHIPPED_DIR = Path(__file__).parent / "weights"


def bnn_recipe(**changes: object) -> TrainConfig:
    """The usual BNN recipe (Courbariaux et al. 2016) as a :class:`TrainConfig`.

    Adam on the latent real weights, no weight decay (it would pull latent weights towards
    sign changes), a cosine learning-rate schedule stepped per batch, float32, no
    augmentation; latent weights are clipped by the family's hook. ``changes`` override fields.
    """
    base = TrainConfig(
        epochs=40,
        batch_size=64,
        lr=0.01,
        optimizer="adam",
        weight_decay=0.0,
        schedule="cosine",
        augment=False,
        autocast=False,
        seed=0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


class BinaryMLP(nn.Module):
    """Fully connected BNN: [BinaryLinear → BatchNorm1d → sign] × hidden, BinaryLinear → BatchNorm1d.

    Every weight is binary (all of them sit in the RRAM weight memory); the input pixels stay
    real-valued and the last batch norm's output are the logits.
    """

    def __init__(
        self, in_features: int, hidden: tuple[int, ...] = (256, 256), num_classes: int = 10
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [BinaryLinear(width, h), nn.BatchNorm1d(h), SignActivation()]
            width = h
        layers += [BinaryLinear(width, num_classes), nn.BatchNorm1d(num_classes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


#: Default BinaryVGG layer list for CPU budgets: ints are conv channels, "M" a 2×2 max-pool.
SMALL_CFG: tuple[int | str, ...] = (32, "M", 64, "M", 128, "M", 256, "M")


class BinaryVGG(nn.Module):
    """VGG-like convolutional BNN for 32×32 images.

    ``features``: a real-valued Conv(3→cfg[0]) + BN + sign, then per entry a binary 3×3
    convolution (+ 2×2 max-pool where the next entry is ``"M"``) + BN + sign; ``classifier``:
    binary hidden linear layers (BN + sign) and a real-valued ``Linear`` to the logits.
    """

    def __init__(
        self,
        cfg: tuple[int | str, ...] = SMALL_CFG,
        fc: tuple[int, ...] = (),
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        cfg = tuple(cfg)
        if not cfg or not isinstance(cfg[0], int):
            raise ValueError(
                f"The 'cfg' parameter of BinaryVGG must start with a channel count. Got {cfg!r}."
            )
        layers: list[nn.Module] = [nn.Conv2d(3, cfg[0], 3, padding=1, bias=False)]
        channels, size = cfg[0], 32
        entries = list(cfg[1:])
        if entries and entries[0] == "M":
            layers.append(nn.MaxPool2d(2))
            entries.pop(0)
            size //= 2
        layers += [nn.BatchNorm2d(channels), SignActivation()]
        for i, entry in enumerate(entries):
            if entry == "M":
                continue
            # Pool before batch norm and sign (Courbariaux et al.): max of ±1 is binary anyway.
            block: list[nn.Module] = [BinaryConv2d(channels, int(entry))]
            if i + 1 < len(entries) and entries[i + 1] == "M":
                block.append(nn.MaxPool2d(2))
                size //= 2
            channels = int(entry)
            layers += [*block, nn.BatchNorm2d(channels), SignActivation()]
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        width = channels * size * size
        for h in fc:
            head += [BinaryLinear(width, h), nn.BatchNorm1d(h), SignActivation()]
            width = h
        head.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# --------------------------------------------------------------------------- workloads


class BNNWorkload(Workload):
    """Common part of the binarized workloads: checkpoints and recipe-keyed caching.

    Subclasses set ``name``, ``arch``, ``num_classes``, ``input_shape`` and implement
    ``build_model`` and ``dataset``; ``default_recipe`` is :func:`bnn_recipe` unless they
    change it, and ``train_on_first_use`` says whether :meth:`load_model` may train it.

    Parameters
    ----------
    checkpoint : path, optional
        Weights for :meth:`load_model` instead of the default ones (shipped where the default
        recipe ships, :data:`SHIPPED_DIR`, else trained on first use and cached).
    train_ber : float
        Training bit error rate of the default weights (0 = plain training; > 0 error-aware).
    cache : bool
        Keep default weights trained on first use under the memsim cache folder.
    """

    arch: str
    train_on_first_use: bool = True

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        train_ber: float = 0.0,
        cache: bool = True,
    ) -> None:
        self.checkpoint = checkpoint
        self.train_ber = check_probability("train_ber", train_ber, high=0.5, high_open=True)
        self.cache = bool(cache)

    def default_recipe(self) -> TrainConfig:
        return bnn_recipe(weight_noise_p=self.train_ber)

    def train_hooks(self, config: TrainConfig) -> list[TrainHook]:
        return bnn_train_hooks(config)

    def weights_key(self, recipe: TrainConfig) -> str:
        """A hash of everything the weights trained with ``recipe`` depend on (16 hex digits):
        names the cached and the shipped files."""
        spec = {
            "version": VERSION,
            "arch": self.arch,
            "arch_spec": self.describe(),
            "recipe": asdict(recipe),
        }
        if self.train_threads is not None:  # weights trained with another count are retrained
            spec["train_threads"] = self.train_threads
        text = json.dumps(spec, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _cache_path(self, recipe: TrainConfig) -> Path:
        return cache_dir() / f"{self.name}-{self.weights_key(recipe)}.pt"

    def shipped_path(self, recipe: TrainConfig) -> Path:
        """Where the shipped network of ``recipe`` is, if it ships (:data:`SHIPPED_DIR`)."""
        return SHIPPED_DIR / f"{self.name}-{self.weights_key(recipe)}.pt"

    def shipped_weights(self, recipe: TrainConfig) -> Path | None:
        """The shipped checkpoint of ``recipe`` (checked: this network, this recipe), or None.

        Raises
        ------
        ValueError
            The file named for ``recipe`` holds another network or another recipe.
        """
        shipped = self._shipped(recipe)
        return None if shipped is None else shipped[0]

    def _shipped(self, recipe: TrainConfig) -> tuple[Path, dict] | None:
        """:meth:`shipped_weights` with the checkpoint it read."""
        path = self.shipped_path(recipe)
        if not path.is_file():
            return None
        key = self.weights_key(recipe)
        payload = load_checkpoint(path)
        check_arch(payload, self.arch, path)
        if payload.get("weights_key") != key or payload.get("recipe") != asdict(recipe):
            raise ValueError(
                f"Shipped weights {path} were trained for another network or recipe than their "
                f"name says (weights key {payload.get('weights_key')!r}, not {key!r}); rewrite "
                "them with workloads.bnn.write_shipped_weights."
            )
        return path, payload

    def load_model(self, checkpoint: str | os.PathLike | None = None) -> nn.Module:
        path = checkpoint if checkpoint is not None else self.checkpoint
        payload = None
        if path is None:
            recipe = self.default_recipe()
            shipped = self._shipped(recipe)
            if shipped is not None:
                path, payload = shipped
            elif not self.train_on_first_use:
                raise FileNotFoundError(
                    f"No trained weights for {self.name}: pass checkpoint=PATH or train one "
                    f"(workloads.train.train_model, or `memsim run configs/bnn/...`)."
                )
            else:
                path = self._cache_path(recipe)
                if not (self.cache and path.is_file()):
                    model, _ = train_model(self, recipe, device="cpu", progress=False)
                    if not self.cache:
                        return model.eval()
                    save_bnn(path, model, self, recipe)
        if payload is None:
            payload = load_checkpoint(path)
            check_arch(payload, self.arch, path)
        model = load_state(self.build_model(), payload["state_dict"], source=f"Checkpoint {path}")
        return model.float().eval()


def write_shipped_weights(workload: BNNWorkload, recipe: TrainConfig) -> Path:
    """Train ``workload``'s network with ``recipe`` and ship it (:data:`SHIPPED_DIR`); runs
    that train this recipe load it from then on. Results that come from it (lab 5's key) move
    with it: regenerate them after (``memsim.studies.bnn.ship_networks`` ships a study's two)."""
    model, _ = train_model(workload, recipe, device="cpu", progress=False)
    test_acc = accuracy(model, *workload.dataset("test"))
    path = workload.shipped_path(recipe)
    return save_bnn(
        path, model, workload, recipe, weights_key=workload.weights_key(recipe), test_acc=test_acc
    )


def shipped_network(workload: Workload, recipe: TrainConfig) -> Path | None:
    """The shipped checkpoint of ``workload``'s network trained with ``recipe``, or None (it
    does not ship, or ``workload`` is not a :class:`BNNWorkload`)."""
    return workload.shipped_weights(recipe) if isinstance(workload, BNNWorkload) else None


def write_network(
    workload: Workload, recipe: TrainConfig, path: str | os.PathLike, *, progress: bool = False
) -> Path:
    """``workload``'s network trained with ``recipe``, written to ``path`` (atomically): the
    shipped one copied where it ships, else trained here and saved (:func:`save_bnn`)."""
    shipped = shipped_network(workload, recipe)
    if shipped is not None:
        return write_bytes_atomic(path, shipped.read_bytes())
    model, _ = train_model(workload, recipe, device="cpu", progress=progress)
    return save_bnn(path, model, workload, recipe)


def save_bnn(
    path: str | os.PathLike, model: nn.Module, workload: Workload, recipe, **metadata: object
) -> Path:
    """Save a trained BNN with float32 latent weights (their signs are the stored bits) and
    ``metadata`` (plain values)."""
    return save_checkpoint(
        path,
        model,
        arch=str(getattr(workload, "arch", workload.name)),
        weight_dtype=torch.float32,
        workload=workload.name,
        arch_spec=workload.describe(),
        recipe=asdict(recipe),
        torch_version=str(torch.__version__),
        **metadata,
    )


class BNNDigitsWorkload(BNNWorkload):
    """scikit-learn's 8×8 digits (C1's fixed split) with a :class:`BinaryMLP` 64→256→256→10."""

    name = "bnn_digits"
    arch = "bnn_mlp"
    num_classes = 10
    input_shape = (1, 8, 8)
    train_threads = 2  # recipes that do not ship train with 2 threads on any core count
    hidden = (256, 256)

    def build_model(self) -> nn.Module:
        return BinaryMLP(64, self.hidden, self.num_classes)

    def dataset(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        from workloads.digits import DigitsWorkload

        return DigitsWorkload(cache=False).dataset(split, limit)

    def split_size(self, split: str) -> int | None:
        from workloads.digits import DigitsWorkload

        return DigitsWorkload(cache=False).split_size(split)

    def default_recipe(self) -> TrainConfig:
        return bnn_recipe(epochs=40, batch_size=64, lr=0.01, weight_noise_p=self.train_ber)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "arch": self.arch,
            "hidden": list(self.hidden),
            "data": "sklearn load_digits (8x8)",
        }


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


#: Images per split of torchvision's MNIST.
MNIST_SPLIT_SIZES = {"train": 60_000, "test": 10_000}


def find_mnist(root: str | os.PathLike, split: str) -> tuple[str, Path] | None:
    """Where ``split`` lies under ``root``: ``("folder", path)`` for an ImageFolder tree
    (``{train,test}/<class>/*.png`` or ``mnist/{train,test}/...``), ``("torchvision", root)``
    for torchvision's ``MNIST/raw`` files, ``None`` when neither is there."""
    root = Path(root).expanduser()
    for folder in (root / split, root / "mnist" / split):
        if folder.is_dir():
            return "folder", folder
    return ("torchvision", root) if (root / "MNIST").is_dir() else None


def load_mnist(
    root: str | os.PathLike, split: str, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST-like grey images as uint8 (N, 1, H, W) and int64 labels, never downloading,
    from where :func:`find_mnist` finds them."""
    from workloads.data import load_image_folder

    found = find_mnist(root, split)
    if found is None:
        root = Path(root).expanduser()
        raise FileNotFoundError(
            f"MNIST data not found under {root}: expected {root}/{{train,test}}/<class>/*.png, "
            f"{root}/mnist/{{train,test}}/... or torchvision's {root}/MNIST/raw (nothing is "
            "downloaded)."
        )
    kind, where = found
    if kind == "folder":
        x, y = load_image_folder(where, split=split, num_classes=10, limit=limit, disk_cache=False)
        return x[:, :1].contiguous(), y
    from torchvision.datasets import MNIST

    ds = MNIST(str(where), train=split == "train", download=False)
    x, y = ds.data.unsqueeze(1).contiguous(), ds.targets.to(torch.int64)
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


class BNNMnistWorkload(BNNWorkload):
    """MNIST-like data (28×28 grey, 10 classes) with a :class:`BinaryMLP` 784→512→512→10.

    Parameters
    ----------
    data_root : path, optional
        See :func:`load_mnist`; default ``$MEMSIM_DATA/mnist``.
    checkpoint, train_ber, cache
        See :class:`BNNWorkload`.
    """

    name = "bnn_mnist"
    arch = "bnn_mlp"
    num_classes = 10
    input_shape = (1, 28, 28)
    hidden = (512, 512)

    def __init__(self, data_root: str | os.PathLike | None = None, **options) -> None:
        super().__init__(**options)
        self.data_root = data_root or (
            Path(os.environ["MEMSIM_DATA"]) / "mnist" if "MEMSIM_DATA" in os.environ else None
        )
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def build_model(self) -> nn.Module:
        return BinaryMLP(28 * 28, self.hidden, self.num_classes)

    def dataset(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        check_split(split)
        limit = check_limit(limit)
        if self.data_root is None:
            raise FileNotFoundError(
                "MNIST data root not configured: pass data_root= or set MEMSIM_DATA."
            )
        if split not in self._data:
            raw, y = load_mnist(self.data_root, split)
            self._data[split] = ((raw.to(torch.float32) / 255.0 - MNIST_MEAN) / MNIST_STD, y)
        x, y = self._data[split]
        return (x[:limit], y[:limit]) if limit is not None else (x, y)

    def split_size(self, split: str) -> int | None:
        from workloads.data import count_image_folder

        check_split(split)
        if split in self._data:
            return len(self._data[split][1])
        found = None if self.data_root is None else find_mnist(self.data_root, split)
        if found is None:
            return None
        kind, where = found
        return count_image_folder(where, 10) if kind == "folder" else MNIST_SPLIT_SIZES[split]

    def default_recipe(self) -> TrainConfig:
        return bnn_recipe(epochs=10, batch_size=100, lr=0.01, weight_noise_p=self.train_ber)

    def describe(self) -> dict[str, object]:
        return {
            **super().describe(),
            "arch": self.arch,
            "hidden": list(self.hidden),
            "data": str(self.data_root),
        }


class BNNCifarWorkload(BNNWorkload):
    """CIFAR-10 with a :class:`BinaryVGG` (no default weights: train them or pass a checkpoint).

    Parameters
    ----------
    cfg : sequence of int or "M"
        Layer list (default :data:`SMALL_CFG`, sized for CPU training).
    fc : sequence of int
        Binary hidden linear layers before the real-valued output layer.
    data_root, download
        See :class:`workloads.data.Cifar10Data`.
    checkpoint, train_ber, cache
        See :class:`BNNWorkload`.
    """

    name = "bnn_cifar10"
    arch = "bnn_vgg"
    train_on_first_use = False
    num_classes = 10
    input_shape = (3, 32, 32)

    def __init__(
        self,
        cfg: tuple[int | str, ...] | list[int | str] = SMALL_CFG,
        fc: tuple[int, ...] | list[int] = (),
        data_root: str | os.PathLike | None = None,
        download: bool = False,
        **options,
    ) -> None:
        from workloads.data import Cifar10Data

        super().__init__(**options)
        self.cfg = tuple(cfg)
        self.fc = tuple(int(h) for h in fc)
        BinaryVGG(self.cfg, self.fc)  # validate early
        self.data = Cifar10Data(data_root=data_root, download=download)
        self.mean, self.std = self.data.mean, self.data.std

    def build_model(self) -> nn.Module:
        return BinaryVGG(self.cfg, self.fc, self.num_classes)

    def dataset(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.data.dataset(split, limit)

    def split_size(self, split: str) -> int | None:
        return self.data.split_size(split)

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.data.augment(x, generator)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "arch": self.arch, "cfg": list(self.cfg), "fc": list(self.fc)}


WORKLOADS.register("bnn_digits", BNNDigitsWorkload)
WORKLOADS.register("bnn_mnist", BNNMnistWorkload)
WORKLOADS.register("bnn_cifar10", BNNCifarWorkload)
