"""Training binarized networks, plain or error-aware (weight-sign flips during training).

Produces the plain and error-aware networks the binarized-network study compares
(:mod:`memsim.studies.bnn`). The recipe is the usual BNN one (Courbariaux et al. 2016): Adam
on the latent real weights, a cosine learning-rate schedule stepped per batch, latent binary
weights clipped to [-1, 1] after every step.

*Error-aware training* (Hirtzlin et al. 2019): on every forward pass in training, each
binary weight's sign is flipped independently, a stored −1 with ``train_ber`` (``p01``) and a
stored +1 with ``train_p10`` (default ``train_ber``), with fresh flips on every batch; the
gradient flows through the flipped weights (what the network computed). Evaluation then
uses a persistent fault map instead (:mod:`memsim.inference.faults`).

Every random draw (initialisation, shuffling, augmentation, flips) comes from the seed.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from memsim.config import check_range
from memsim.rng import child_seed, torch_generator
from workloads.base import Workload, check_limit
from workloads.bnn_layers import binary_layers, clip_latent_weights_


@dataclass(frozen=True)
class BNNTrainConfig:
    """A BNN training recipe.

    Parameters
    ----------
    epochs, batch_size : int
    lr : float
        Initial Adam learning rate (cosine decay to 0 over all steps).
    weight_decay : float
        Adam weight decay (0 by default: it would pull latent weights towards sign changes).
    train_ber : float
        Weight-sign flip probability of a stored −1 (0→1) during training; 0 = plain training.
    train_p10 : float, optional
        Flip probability of a stored +1 (1→0); default ``train_ber``.
    augment : bool
        Apply the workload's training augmentation (crop + flip for CIFAR-10).
    limit : int, optional
        Train on the first ``limit`` training samples only (a fixed stratified subset).
    seed : int
    """

    epochs: int = 40
    batch_size: int = 64
    lr: float = 0.01
    weight_decay: float = 0.0
    train_ber: float = 0.0
    train_p10: float | None = None
    augment: bool = False
    limit: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        own = "BNNTrainConfig"
        check_range(own, "epochs", self.epochs, kind=int, low=1)
        check_range(own, "batch_size", self.batch_size, kind=int, low=2)
        check_range(own, "lr", self.lr, low=0.0, low_open=True)
        check_range(own, "weight_decay", self.weight_decay, low=0.0)
        check_range(own, "train_ber", self.train_ber, low=0.0, high=0.5, high_open=True)
        if self.train_p10 is not None:
            check_range(own, "train_p10", self.train_p10, low=0.0, high=0.5, high_open=True)
        check_range(own, "seed", self.seed, kind=int, low=0)
        check_limit(self.limit)

    @property
    def error_aware(self) -> bool:
        return self.train_ber > 0 or bool(self.train_p10)

    @property
    def p01_p10(self) -> tuple[float, float]:
        return self.train_ber, self.train_ber if self.train_p10 is None else self.train_p10

    def describe(self) -> str:
        """One line for checkpoints and reports."""
        text = (
            f"Adam lr {self.lr:g} cosine, wd {self.weight_decay:g}, batch {self.batch_size}, "
            f"{self.epochs} epochs, {'augmentation' if self.augment else 'no augmentation'}, seed {self.seed}"
        )
        if self.limit is not None:
            text += f", first {self.limit} training samples"
        if self.error_aware:
            p01, p10 = self.p01_p10
            text += f", error-aware: weight-sign flips p01={p01:g} p10={p10:g} fresh per batch"
        return text


@contextlib.contextmanager
def error_aware(model: nn.Module, p01: float, p10: float, seed: int) -> Iterator[None]:
    """Fresh weight-sign flips on every training forward pass of every binary layer.

    Each layer draws from its own generator seeded by ``(seed, layer name)``, so the flips
    of one batch are independent of those of any other batch and layer.
    """
    layers = binary_layers(model)
    for name, layer in layers:
        layer.train_flips = (float(p01), float(p10), torch_generator(seed, "error-aware", name))
    try:
        yield
    finally:
        for _, layer in layers:
            layer.train_flips = None


def train_bnn(
    workload: Workload,
    config: BNNTrainConfig,
    *,
    progress: bool = True,
    on_epoch=None,
) -> nn.Module:
    """Train ``workload.build_model()`` (a BNN) with ``config`` on the CPU.

    Parameters
    ----------
    workload : Workload
        A binarized workload (:mod:`workloads.bnn`).
    config : BNNTrainConfig
    progress : bool
        Print one line per epoch (loss, training accuracy) on stderr.
    on_epoch : callable, optional
        ``on_epoch(epoch, model)`` after each epoch (checkpointing, evaluation).

    Returns
    -------
    nn.Module
        The trained network in eval mode.
    """
    x, y = workload.dataset("train", limit=config.limit)
    if len(y) == 0:
        raise ValueError(f"Workload {workload.name} has an empty training set.")
    with torch.random.fork_rng(devices=[]):  # initialisation draws from the seed only
        torch.manual_seed(child_seed(config.seed, "init"))
        model = workload.build_model()
    if not binary_layers(model):
        raise ValueError(
            f"Workload {workload.name}'s network has no binary layers; train it with workloads.train."
        )
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(y) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps_per_epoch
    )
    augment_gen = torch_generator(config.seed, "augment")
    loss_fn = nn.CrossEntropyLoss()
    p01, p10 = config.p01_p10
    flips = (
        error_aware(model, p01, p10, child_seed(config.seed, "flips"))
        if config.error_aware
        else contextlib.nullcontext()
    )
    with flips:
        for epoch in range(config.epochs):
            order = torch.randperm(len(y), generator=torch_generator(config.seed, "shuffle", epoch))
            total, correct, loss_sum = 0, 0, 0.0
            for b in range(steps_per_epoch):
                idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                if len(idx) < 2:  # batch norm needs two samples
                    continue
                xb, yb = x[idx], y[idx]
                if config.augment:
                    xb = workload.augment(xb, augment_gen)
                logits = model(xb)
                loss = loss_fn(logits, yb)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                clip_latent_weights_(model)
                scheduler.step()
                total += len(yb)
                correct += int((logits.argmax(1) == yb).sum())
                loss_sum += loss.item() * len(yb)
            if progress:
                print(
                    f"{workload.name} epoch {epoch + 1}/{config.epochs}: loss {loss_sum / max(total, 1):.4f}, "
                    f"train acc {correct / max(total, 1):.4f}",
                    file=sys.stderr,
                    flush=True,
                )
            if on_epoch is not None:
                on_epoch(epoch, model)
    return model.eval()
