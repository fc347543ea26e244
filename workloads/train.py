"""Training a workload's network: the usual CIFAR recipe, optionally with bit-flip noise.

Produces the checkpoints that :meth:`Workload.load_model` reads (format in
:mod:`workloads.checkpoints`). The recipe: SGD with Nesterov momentum 0.9 and weight decay
5e-4, a one-cycle (or cosine) learning-rate schedule stepped per batch, the workload's
augmentation (random crop + flip for CIFAR), bf16 autocast, CUDA when present.

*Noisy training* (a countermeasure tried by the study memsim follows) flips bits of every
activation written in the forward pass, with fresh flips per batch and a selectable noisy-bit
mask: the write points come from :class:`memsim.inference.taps.Taps` and the flips from
:class:`memsim.noise.channel.BitFlip`. Gradients pass the flips straight through.

*Training hooks* let a workload change the loop without a loop of its own
(:class:`TrainHook`, from :meth:`Workload.train_hooks`): binarized workloads clip their latent
weights after every step and, for *error-aware training* (``weight_noise_p``), flip weight
signs on every training forward pass.

Every random draw (initialisation, shuffling, augmentation, flips) comes from the config's
seed, so the same config trains the same weights on the same machine.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import torch
from torch import nn

from memsim.checks import check_probability
from memsim.compute import resolve_device as resolve_torch_device
from memsim.config import check_choice, check_range
from memsim.formats import FORMATS, resolve_bits
from memsim.paths import check_output_file
from memsim.rng import child_seed, torch_generator
from workloads.base import Workload, check_limit
from workloads.checkpoints import save_checkpoint

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

SCHEDULES = ("onecycle", "cosine", "constant")
OPTIMIZERS = ("sgd", "adam", "adamw")
#: Storage formats noisy training can flip (float formats torch computes in).
NOISE_FORMATS = tuple(f.name for f in FORMATS.values() if f.is_float and f.torch_dtype is not None)


class TrainHook(Protocol):
    """A workload's addition to the training loop.

    Call order: ``with hook.training(model, config):`` once around the whole loop (after the
    model is built and on its device), then ``hook.after_step(model)`` after every optimizer
    step.
    """

    def training(self, model: nn.Module, config: TrainConfig) -> AbstractContextManager[None]:
        """Set up (and on exit tear down) whatever the hook changes in the model."""
        ...

    def after_step(self, model: nn.Module) -> None:
        """Called after every optimizer step (e.g. clip weights)."""
        ...


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe (defaults: the shared VGG checkpoints' recipe).

    Parameters
    ----------
    epochs, batch_size : int
    lr : float
        Peak learning rate (one-cycle) or initial one (cosine, constant).
    optimizer : {"sgd", "adam", "adamw"}
        SGD (``momentum``, ``nesterov``), Adam, or AdamW (decoupled ``weight_decay``;
        transformers).
    momentum, weight_decay : float
    nesterov : bool
    schedule : {"onecycle", "cosine", "constant"}
    warmup_fraction : float
        Share of the steps spent warming up (one-cycle only).
    augment : bool
        Apply the workload's training augmentation.
    autocast : bool
        bf16 autocast for the forward pass (CPU and CUDA).
    limit : int, optional
        Train on the first ``limit`` training samples only (quick runs).
    seed : int
    noise_p : float
        Bit-flip probability on every activation write during training (0 = clean training).
    noise_p10 : float, optional
        1→0 probability when asymmetric (default ``noise_p``).
    noise_bits : str, optional
        Noisy-bit mask, as :func:`memsim.formats.resolve_bits` reads it (``"mantissa"``,
        ``"first_noisy:9"``...); default all bits.
    noise_format : str
        Storage format whose bits are flipped (one of ``NOISE_FORMATS``). It and
        ``noise_bits`` are checked even when ``noise_p`` is 0.
    weight_noise_p : float
        Error-aware training: probability that a stored weight bit 0 reads as 1 on each
        training forward pass (fresh per batch), applied by the workload's training hooks
        (binarized workloads flip weight signs); 0 = off.
    weight_noise_p10 : float, optional
        1→0 probability of the same (default ``weight_noise_p``).
    """

    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    warmup_fraction: float = 0.25
    augment: bool = True
    autocast: bool = True
    limit: int | None = None
    seed: int = 0
    noise_p: float = 0.0
    noise_p10: float | None = None
    noise_bits: str | None = None
    noise_format: str = "float32"
    optimizer: str = "sgd"
    weight_noise_p: float = 0.0
    weight_noise_p10: float | None = None

    def __post_init__(self) -> None:
        own = "TrainConfig"
        check_range(own, "epochs", self.epochs, kind=int, low=1, high=100_000)
        check_range(own, "batch_size", self.batch_size, kind=int, low=1, high=65536)
        check_range(own, "lr", self.lr, low=0.0, low_open=True)
        check_range(own, "momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_range(own, "weight_decay", self.weight_decay, low=0.0)
        check_range(own, "warmup_fraction", self.warmup_fraction, low=0.0, high=1.0)
        check_probability("noise_p", self.noise_p, owner=own)
        if self.noise_p10 is not None:
            check_probability("noise_p10", self.noise_p10, owner=own)
        check_range(own, "weight_noise_p", self.weight_noise_p, low=0.0, high=0.5, high_open=True)
        if self.weight_noise_p10 is not None:
            check_range(
                own, "weight_noise_p10", self.weight_noise_p10, low=0.0, high=0.5, high_open=True
            )
        check_range(own, "seed", self.seed, kind=int, low=0, high=2**64 - 1)
        check_choice(own, "schedule", self.schedule, SCHEDULES)
        check_choice(own, "optimizer", self.optimizer, OPTIMIZERS)
        check_choice(own, "noise_format", self.noise_format, NOISE_FORMATS)
        try:
            resolve_bits(self.noise_format, self.noise_bits)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"The 'noise_bits' parameter of {own} must name bits of {self.noise_format} "
                f"(all, a field such as mantissa, or first_noisy:K): {exc} Got {self.noise_bits!r}."
            ) from None
        check_limit(self.limit)

    @property
    def noisy(self) -> bool:
        return self.noise_p > 0 or bool(self.noise_p10)

    @property
    def weight_noisy(self) -> bool:
        """Error-aware training: weight bits read wrong during training."""
        return self.weight_noise_p > 0 or bool(self.weight_noise_p10)

    @property
    def weight_noise_rates(self) -> tuple[float, float]:
        """``(p01, p10)`` of error-aware training."""
        p10 = self.weight_noise_p if self.weight_noise_p10 is None else self.weight_noise_p10
        return self.weight_noise_p, p10

    def describe(self) -> str:
        """One line in the shared checkpoints' ``recipe`` style."""
        sched = {
            "onecycle": f"OneCycle max lr {self.lr:g} ({self.warmup_fraction:.0%} warm-up)",
            "cosine": f"cosine lr {self.lr:g}",
            "constant": f"constant lr {self.lr:g}",
        }[self.schedule]
        optimizer = (
            f"{'AdamW' if self.optimizer == 'adamw' else 'Adam'}, wd {self.weight_decay:g}"
            if self.optimizer in ("adam", "adamw")
            else f"SGD{' nesterov' if self.nesterov else ''} momentum {self.momentum:g}, wd {self.weight_decay:g}"
        )
        parts = [
            optimizer,
            f"batch {self.batch_size}, {sched}, {self.epochs} epochs",
            "workload augmentation" if self.augment else "no augmentation",
            "bf16 autocast" if self.autocast else "float32",
            f"seed {self.seed}",
        ]
        if self.limit is not None:
            parts.append(f"first {self.limit} training samples")
        if self.noisy:
            parts.append(
                f"noisy training: {self.noise_format} bit flips p01={self.noise_p:g} "
                f"p10={self.noise_p if self.noise_p10 is None else self.noise_p10:g} "
                f"on bits {self.noise_bits or 'all'}"
            )
        if self.weight_noisy:
            p01, p10 = self.weight_noise_rates
            parts.append(f"error-aware: weight bit errors p01={p01:g} p10={p10:g} fresh per batch")
        return ", ".join(parts)


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced."""

    model: nn.Module
    test_acc: float
    checkpoint: Path | None
    skipped_batches: int
    #: Test images ``test_acc`` was measured on (``test_acc`` is correct / this).
    test_images: int


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when present, else CPU; a device this machine lacks is a ``ValueError``."""
    return resolve_torch_device(device)


@torch.no_grad()
def accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
) -> float:
    """Plain (noise-free) top-1 accuracy of ``model`` on ``(x, y)``, computed on ``device``
    (the model is moved there)."""
    device = resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        logits = model(x[i : i + batch_size].to(device))
        correct += int((logits.argmax(1).cpu() == y[i : i + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(y), 1)


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """Deterministic kernels where torch has them; previous settings restored afterwards.

    On CUDA, cuBLAS is deterministic only with a fixed workspace (``CUBLAS_WORKSPACE_CONFIG``,
    read when cuBLAS starts): set here unless the environment chose one, and left set.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


def _scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    if config.schedule == "onecycle" and total_steps >= 3:
        # OneCycleLR needs at least one step in each phase (else it divides by zero).
        pct = min(max(config.warmup_fraction, 1.5 / total_steps), 1 - 1.5 / total_steps)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=pct
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def _save_train_state(path: str | os.PathLike, state: dict) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_train_state(path: str | os.PathLike, identity: str) -> dict | None:
    """The saved training state at ``path`` when it is for the same workload and config."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated files
        log.warning("ignoring unreadable training state %s (%s); starting afresh", path, exc)
        return None
    if not isinstance(state, dict) or state.get("identity") != identity:
        log.warning("training state %s is for another workload or config; starting afresh", path)
        return None
    return state


@contextlib.contextmanager
def _noisy_writes(
    model: nn.Module, example: torch.Tensor, config: TrainConfig, step: list[int]
) -> Iterator[None]:
    """Flip bits of every activation write while training (fresh flips per batch and write)."""
    if not config.noisy:
        yield
        return
    from memsim.formats import get_format
    from memsim.inference.taps import Taps
    from memsim.noise.channel import BitFlip

    fmt = get_format(config.noise_format)
    if fmt.torch_dtype is None or not fmt.is_float:
        raise ValueError(
            f"Noisy training flips float storage formats; got noise_format={config.noise_format!r}."
        )
    channel = BitFlip(fmt.name, config.noise_p, config.noise_p10, bits=config.noise_bits)
    model.eval()  # discovery must not update batch-norm running statistics
    taps = Taps(model, example, fmt=fmt.name)
    model.train()

    def on_write(point, out: torch.Tensor) -> torch.Tensor:
        stored = out.detach().to(fmt.torch_dtype, copy=True)
        channel.apply_(stored, child_seed(config.seed, "noisy-train", step[0], point.index))
        # Straight-through: the forward sees the flipped value, the gradient the clean one.
        return out + (stored.to(out.dtype) - out.detach())

    with taps.hooked(on_write):
        yield


def _grads_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op thread count set to ``n`` inside the block (None: left as it is)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _in_train_threads(
    train: Callable[Concatenate[Workload, P], R],
) -> Callable[Concatenate[Workload, P], R]:
    """Run ``train`` with torch's thread count at the workload's ``train_threads`` (if set)."""

    @functools.wraps(train)
    def with_threads(workload: Workload, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with torch_threads(getattr(workload, "train_threads", None)):
            return train(workload, *args, **kwargs)

    return with_threads


@_in_train_threads
def train_model(
    workload: Workload,
    config: TrainConfig,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    hooks: Sequence[TrainHook] = (),
    state_path: str | os.PathLike | None = None,
) -> tuple[nn.Module, int]:
    """Train ``workload.build_model()`` with ``config``.

    The workload's own hooks (:meth:`Workload.train_hooks`) run first, then ``hooks``.
    With ``state_path``, the whole training state (weights, optimizer, schedule, random
    generators) is saved there after every epoch, and a state found there for the same
    workload and config is resumed from: an interrupted training loses at most one epoch. A
    ``state_path`` that cannot be written is a ``ValueError`` before anything is trained.

    The workload's ``train_threads`` (if set) is torch's thread count while it trains.

    Returns
    -------
    model : nn.Module
        The trained network, float32, in eval mode, on the CPU.
    skipped_batches : int
        Batches whose loss (or, with noisy training, any gradient) was not finite, possible
        with noisy training on exponent bits; their update, including batch-norm statistics,
        is skipped rather than poisoning the weights.
    """
    from tqdm.auto import tqdm

    if state_path is not None:  # a path that cannot be written fails now, not after an epoch
        state_path = check_output_file(state_path)
    device = resolve_device(device)
    x, y = workload.samples("train", config.limit, "'limit'")
    if len(y) == 0:
        raise ValueError(f"Workload {workload.name} has an empty training set.")
    with torch.random.fork_rng(devices=[]):  # initialisation draws from the seed, not global state
        torch.manual_seed(child_seed(config.seed, "init"))
        model = workload.build_model()
    model.to(device).train()
    hooks = [*workload.train_hooks(config), *hooks]
    if config.optimizer in ("adam", "adamw"):
        adam = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        optimizer: torch.optim.Optimizer = adam(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.SGD(
            model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    steps_per_epoch = math.ceil(len(y) / config.batch_size)
    scheduler = _scheduler(config, optimizer, config.epochs * steps_per_epoch)
    augment_gen = torch_generator(config.seed, "augment")
    loss_fn = nn.CrossEntropyLoss()
    step = [0]
    skipped = 0
    start = 0
    identity = json.dumps({"workload": workload.name, "config": asdict(config)}, sort_keys=True)
    state = _load_train_state(state_path, identity) if state_path is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        augment_gen.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_rng"])
        step[0], skipped, start = int(state["step"]), int(state["skipped"]), int(state["epoch"])
        log.info("resuming %s training from %s after epoch %d", workload.name, state_path, start)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_deterministic())
        stack.enter_context(_noisy_writes(model, x[:2].to(device), config, step))
        for hook in hooks:
            stack.enter_context(hook.training(model, config))
        for epoch in range(start, config.epochs):
            order = torch.randperm(len(y), generator=torch_generator(config.seed, "shuffle", epoch))
            bar = tqdm(
                range(steps_per_epoch),
                desc=f"{workload.name} epoch {epoch + 1}/{config.epochs}",
                disable=not progress,
                file=sys.stderr,
                leave=False,
            )
            started, loss_sum, loss_count = time.perf_counter(), 0.0, 0
            for b in bar:
                idx = order[b * config.batch_size : (b + 1) * config.batch_size]
                xb = x[idx]
                if config.augment:
                    xb = workload.augment(xb, augment_gen)
                xb, yb = xb.to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
                # A noisy forward can push inf/NaN into batch-norm running statistics: keep a
                # copy so a batch that goes non-finite leaves no trace.
                saved = [t.clone() for t in model.buffers()] if config.noisy else None
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.autocast):
                    loss = loss_fn(model(xb).float(), yb)
                optimizer.zero_grad(set_to_none=True)
                finite = bool(torch.isfinite(loss))
                if finite:
                    loss.backward()
                    finite = saved is None or _grads_finite(model)
                if finite:
                    loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
                    optimizer.step()
                    for hook in hooks:
                        hook.after_step(model)
                    scheduler.step()
                else:
                    skipped += 1
                    if saved is not None:
                        with torch.no_grad():
                            for t, old in zip(model.buffers(), saved):
                                t.copy_(old)
                    with warnings.catch_warnings():  # the schedule follows batches, stepped or not
                        warnings.simplefilter("ignore", UserWarning)
                        scheduler.step()
                step[0] += 1
                if b % 10 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
            log.info(
                "%s epoch %d/%d: mean loss %.4f, %.0f s",
                workload.name,
                epoch + 1,
                config.epochs,
                loss_sum / max(loss_count, 1),
                time.perf_counter() - started,
            )
            if state_path is not None:
                _save_train_state(
                    state_path,
                    {
                        "identity": identity,
                        "epoch": epoch + 1,
                        "step": step[0],
                        "skipped": skipped,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "augment_rng": augment_gen.get_state(),
                        "torch_rng": torch.get_rng_state(),
                    },
                )
    return model.float().cpu().eval(), skipped


def train(
    workload: Workload,
    config: TrainConfig | None = None,
    *,
    out: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    weight_dtype: torch.dtype = torch.float16,
    eval_limit: int | None = None,
) -> TrainResult:
    """Train, measure test accuracy with the stored weights, and save a checkpoint.

    Parameters
    ----------
    workload : Workload
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``.
    out : path, optional
        Checkpoint file to write (nothing is written when omitted); missing folders above it
        are created.
        The training state is saved next to it (``<out>.train-state``) after every epoch and
        resumed from. A path that cannot be written (an existing folder, a missing or
        unwritable folder...) is a ``ValueError`` before training starts.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    progress : bool
        Show tqdm progress bars (on stderr).
    weight_dtype : torch.dtype
        Storage dtype of the checkpoint's floating weights; the reported accuracy is measured
        after casting to it, so the checkpoint's ``test_acc`` is what a loader gets.
    eval_limit : int, optional
        Test samples used for ``test_acc`` (default all). It and ``config.limit`` are checked
        against the splits (:meth:`Workload.check_count`) before training.

    Returns
    -------
    TrainResult
    """
    config = config or TrainConfig()
    if eval_limit is not None:
        check_range("train", "eval_limit", eval_limit, kind=int, low=1)
    workload.check_count("train", config.limit)
    workload.check_count("test", eval_limit)
    state_path = None
    if out is not None:
        # Checked before training (which may take hours), and nothing is created for a bad one.
        out = check_output_file(out, missing_parent="create")  # as documented: made if missing
        state_path = check_output_file(f"{out}.train-state")
    # Loaded before training: a workload that learns its split's size only by loading it
    # refuses a count beyond the split now, not after hours of training.
    x_test, y_test = workload.samples("test", eval_limit, "'eval_limit'")
    model, skipped = train_model(
        workload, config, device=device, progress=progress, state_path=state_path
    )
    stored = copy.deepcopy(model)
    with torch.no_grad():
        for t in [*stored.parameters(), *stored.buffers()]:
            if t.is_floating_point():
                t.copy_(t.to(weight_dtype).to(t.dtype))
    test_acc = accuracy(stored, x_test, y_test, device=device)
    stored.cpu()  # returned on the CPU, as train_model returns the model
    path = None
    if out is not None:
        info = workload.describe()
        path = save_checkpoint(
            out,
            model,
            arch=str(getattr(workload, "arch", workload.name)),
            weight_dtype=weight_dtype,
            cfg=info.get("cfg"),
            workload=workload.name,
            data=info.get("data", workload.name),
            test_acc=test_acc,
            test_samples=len(y_test),
            mean=_plain_list(getattr(workload, "mean", None)),
            std=_plain_list(getattr(workload, "std", None)),
            recipe=config.describe(),
            train_config=asdict(config),
            skipped_batches=skipped,
            torch_version=str(torch.__version__),
        )
        if state_path is not None:
            state_path.unlink(missing_ok=True)  # the checkpoint is written: nothing to resume
    return TrainResult(
        model=stored,
        test_acc=test_acc,
        checkpoint=path,
        skipped_batches=skipped,
        test_images=len(y_test),
    )


def _plain_list(values: Iterable[float] | None) -> list[float] | None:
    """Normalisation constants as a plain list (None when the workload has none)."""
    if values is None:
        return None
    values = [float(v) for v in values]
    return values or None
