"""``memsim train``: the command-line face of :func:`workloads.train.train`.

Example::

    memsim train digits --epochs 5 --out digits.pt
    memsim train vgg_A --epochs 15 --data-root ~/data --download --out vgg_A.pt
    memsim train vgg_A --noise-p 1e-4 --noise-bits mantissa --out vgg_A_noisy.pt
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from memsim.cli import options

#: The generic recipe shown in ``--help`` (``workloads.train.TrainConfig`` checks it; not
#: imported here so that ``--help`` does not load torch). A workload with a recipe of its own
#: (ResNet-20, the ViT, the binarized networks) starts from that one instead; options given on
#: the command line replace single fields of it.
_DEFAULTS: dict[str, Any] = {
    "epochs": 15,
    "batch_size": 128,
    "lr": 0.1,
    "weight_decay": 5e-4,
    "schedule": "onecycle",
    "seed": 0,
    "optimizer": "sgd",
}
_RECIPE_HELP = "(default: the workload's own recipe, else {})"
#: Options that replace a field of the recipe only when given (their dests are field names).
_RECIPE_OPTIONS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "schedule",
    "optimizer",
    "augment",
    "autocast",
)
#: Options that always set their field of the recipe (their dests are field names).
_SET_OPTIONS = ("limit", "seed", "noise_p", "noise_p10", "noise_bits", "noise_format")
#: The flag that sets each recipe field (TrainConfig's messages name fields; the CLI's, flags).
_FLAGS = {
    **{name: "--" + name.replace("_", "-") for name in (*_RECIPE_OPTIONS, *_SET_OPTIONS)},
    "augment": "--no-augment",
    "autocast": "--no-autocast",
}
#: How TrainConfig's checks name a field (``memsim.config.check_range`` and the like).
_FIELD = re.compile(r"The '(\w+)' parameter(?: of TrainConfig)?")
_SCHEDULES = ("onecycle", "cosine", "constant")
_OPTIMIZERS = ("sgd", "adam", "adamw")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` verb."""
    defaults = _DEFAULTS
    p = subparsers.add_parser(
        "train",
        help="train a workload's network and save a checkpoint",
        description="Train a workload's network (SGD + one-cycle by default) and save a checkpoint "
        "with its metadata (architecture, data, test accuracy, recipe). A checkpoint of the "
        "training state is written after every epoch; the same command resumes from it.",
        parents=[options.common(), options.device(), options.seed(_DEFAULTS["seed"])],
    )
    p.add_argument("workload", help="workload name (memsim list workloads)")
    p.add_argument(
        "--out",
        default=None,
        help="checkpoint file to write; missing folders are created (default: <workload>.pt)",
    )
    p.add_argument("--epochs", type=int, help=_RECIPE_HELP.format(defaults["epochs"]))
    p.add_argument("--batch-size", type=int, help=_RECIPE_HELP.format(defaults["batch_size"]))
    p.add_argument(
        "--lr", type=float, help="peak learning rate " + _RECIPE_HELP.format(defaults["lr"])
    )
    p.add_argument("--weight-decay", type=float, help=_RECIPE_HELP.format(defaults["weight_decay"]))
    p.add_argument("--schedule", choices=_SCHEDULES, help=_RECIPE_HELP.format(defaults["schedule"]))
    p.add_argument(
        "--optimizer", choices=_OPTIMIZERS, help=_RECIPE_HELP.format(defaults["optimizer"])
    )
    p.add_argument(
        "--no-augment",
        action="store_const",
        const=False,
        dest="augment",
        help="turn off the workload's augmentation",
    )
    p.add_argument(
        "--no-autocast",
        action="store_const",
        const=False,
        dest="autocast",
        help="train in float32 instead of bf16 autocast",
    )
    p.add_argument(
        "--limit",
        type=options.bounded_int(1, 100_000_000),
        default=None,
        help="train on this many samples only",
    )
    p.add_argument(
        "--eval-limit",
        type=options.bounded_int(1, 100_000_000),
        default=None,
        help="test samples for the reported accuracy",
    )
    p.add_argument(
        "--data-root", default=None, help="data folder (else $MEMSIM_DATA, else ../shared/data)"
    )
    p.add_argument(
        "--download", action="store_true", help="download CIFAR-10 with torchvision if missing"
    )
    p.add_argument(
        "--noise-p",
        type=float,
        default=0.0,
        help="bit-flip probability on activations while training",
    )
    p.add_argument(
        "--noise-p10", type=float, default=None, help="1->0 flip probability if asymmetric"
    )
    p.add_argument(
        "--noise-bits", default=None, help="noisy-bit mask: all, mantissa, first_noisy:9, ..."
    )
    p.add_argument("--noise-format", default="float32", help="storage format whose bits flip")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``memsim train`` with parsed arguments."""
    from memsim.paths import check_output_file
    from workloads.base import get_workload
    from workloads.train import train

    if args.out is not None:  # before the workload loads (or downloads) its data; train()
        # checks again, makes a missing folder, and checks <out>.train-state before training
        check_output_file(args.out, missing_parent="allow")
    extra = {}
    if args.data_root is not None or args.download:
        extra = {"data_root": args.data_root, "download": args.download}
    workload = get_workload(args.workload, **extra)
    options.check_counts(
        workload, ("--limit", "train", args.limit), ("--eval-limit", "test", args.eval_limit)
    )
    config = recipe_from_args(workload, args)  # TrainConfig checks the noise format and bits
    print(f"{workload.name}: {config.describe()}")
    out = args.out or f"{workload.name}.pt"  # train() checks it before training
    result = train(
        workload,
        config,
        out=out,
        device=options.torch_device(args),
        progress=options.progress(args),
        eval_limit=args.eval_limit,
    )
    accuracy = _accuracy_line(result.test_acc, result.test_images)
    print(f"{workload.name}: {accuracy}; checkpoint written to {result.checkpoint}")
    if result.skipped_batches:
        print(f"note: {result.skipped_batches} batches had a non-finite loss and were skipped")
    return 0


def _accuracy_line(accuracy: float, n: int) -> str:
    """The test accuracy on ``n`` images with its 95 % Wilson interval over them, as
    ``memsim eval`` prints it."""
    from memsim.fit import wilson_interval

    correct = round(accuracy * n)  # accuracy is correct / n
    low, high = (float(v) for v in wilson_interval(correct, n))
    return (
        f"test accuracy {accuracy:.4f} [{low:.4f}, {high:.4f}] ({correct}/{n}; "
        "95 % Wilson interval over the images)"
    )


def recipe_from_args(workload: Any, args: argparse.Namespace) -> Any:
    """The workload's own recipe (else the generic one) with the options given replacing fields."""
    import dataclasses

    from workloads.train import TrainConfig

    given = {name: getattr(args, name) for name in _RECIPE_OPTIONS}
    recipe = workload.default_recipe() or TrainConfig()
    try:
        return dataclasses.replace(
            recipe,
            **{k: v for k, v in given.items() if v is not None},
            **{name: getattr(args, name) for name in _SET_OPTIONS},
        )
    except (TypeError, ValueError) as exc:
        raise type(exc)(flag_message(str(exc))) from None


def flag_message(text: str) -> str:
    """A :class:`~workloads.train.TrainConfig` check's message with the field it names
    replaced by the flag that sets it ("The 'noise_format' parameter of TrainConfig must be
    ..." → "--noise-format must be ..."): the checks stay TrainConfig's, the words the
    command line's. A field no flag sets (the workload's own recipe) keeps its name."""

    def flag(match: re.Match[str]) -> str:
        return _FLAGS.get(match[1], match[0])

    return _FIELD.sub(flag, text)
