"""Options shared by every verb: one name, one meaning, one default each.

Verbs build their parsers with ``parents=[...]`` from here, so ``--device``, ``--p``, ``--seed``,
``--no-progress``, ``-q``, ``-v`` and ``--debug`` read the same everywhere. This module imports
nothing heavy: ``memsim --help`` must not load torch or scipy.

* :func:`common`: ``-v/--verbose`` (debug log messages), ``-q/--quiet`` (warnings and
  errors only, no progress bars), ``--no-progress``, ``--debug`` (tracebacks).
* :func:`device`: ``--device``, the torch device (default ``cpu``; ``auto`` picks CUDA when
  present). It is checked before anything is written.
* :func:`noise`: ``--p`` (0→1, and 1→0 unless ``--p10``), ``--p01`` (same as ``--p``),
  ``--p10``, ``--bits`` (comma-separated fields, ``all`` or ``first_noisy:K``), ``--engine``.
* :func:`seed`: ``--seed``, the run seed (an int in [0, 2**64 - 1]).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from memsim.compute import DEFAULT_DEVICE

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

#: Seeds are 64-bit: a larger one would silently equal a smaller one.
SEED_MAX = 2**64 - 1


def probability(text: str) -> float:
    """An argparse type: a float in [0, 1] (NaN and infinities refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a probability in [0, 1]. Got {text!r}."
        ) from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1]. Got {text!r}.")
    return value


def bounded_int(low: int, high: int):
    """An argparse type: an int in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an int in [{low}, {high}]. Got {text!r}."
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an int in [{low}, {high}]. Got {text!r}.")
        return value

    parse.__name__ = f"int in [{low}, {high}]"
    return parse


def bits_list(text: str) -> str | list[str] | None:
    """``--bits``: ``all`` → None, ``sign,exponent`` → a list, one field or ``first_noisy:K`` as is."""
    text = text.strip()
    if text in ("", "all"):
        return None
    parts = [part.strip() for part in text.replace("+", ",").split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no bit field (all, fields such as sign,exponent, or first_noisy:K)"
        )
    return parts if len(parts) > 1 else parts[0]


def check_counts(workload: Any, *asks: tuple[str, str, int | None]) -> None:
    """Refuse each ``(option, split, count)`` that asks for more images than ``workload``'s
    split holds (:meth:`workloads.base.Workload.check_count`), naming the option; a verb
    calls it before it loads a model or data."""
    for option, split, count in asks:
        workload.check_count(split, count, option)


def common() -> argparse.ArgumentParser:
    """``-v``, ``-q``, ``--no-progress`` and ``--debug``."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("output")
    g.add_argument("-v", "--verbose", action="count", default=0, help="debug log messages")
    g.add_argument(
        "-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars"
    )
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")
    g.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return p


def device() -> argparse.ArgumentParser:
    """``--device``: the torch device."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--device",
        default=None,
        help=f"torch device: cpu, cuda, cuda:N, mps or auto (CUDA when present); "
        f"default {DEFAULT_DEVICE}",
    )
    return p


def seed(default: int | None = 0) -> argparse.ArgumentParser:
    """``--seed``: the run seed."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--seed",
        type=bounded_int(0, SEED_MAX),
        default=default,
        help="run seed, an int in [0, 2**64 - 1]"
        + (f" (default {default})" if default is not None else ""),
    )
    return p


def noise(default_p: float = 0.0) -> argparse.ArgumentParser:
    """``--p``/``--p01``, ``--p10``, ``--bits`` and ``--engine``."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("noise")
    g.add_argument(
        "--p",
        "--p01",
        dest="p",
        type=probability,
        default=default_p,
        help=f"0→1 bit-flip probability, and 1→0 unless --p10 (default {default_p:g})",
    )
    g.add_argument("--p10", type=probability, default=None, help="1→0 probability (default --p)")
    g.add_argument(
        "--bits",
        type=bits_list,
        default=None,
        help="noisy bits: all, fields separated by commas (sign,exponent) or first_noisy:K",
    )
    g.add_argument(
        "--engine", default="auto", help="bit-flip engine: auto, numba, torch, reference"
    )
    return p


def overrides(example: str) -> argparse.ArgumentParser:
    """``--set KEY=VALUE`` (repeatable): config overrides, collected in ``args.overrides``."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config value, e.g. {example}",
    )
    return p


def apply_run_options(run: R, args: argparse.Namespace, **changes: Any) -> R:
    """``run`` (a config's :class:`~memsim.experiment.config.RunOptions`) with the run options
    given on the command line (``--out``, ``--workers``, ``--device``, progress) and ``changes``."""
    for name in ("out", "workers", "device"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if not progress(args):
        changes["progress"] = False
    return dataclasses.replace(run, **changes)


def progress(args: argparse.Namespace) -> bool:
    """Whether to show progress bars (not with ``--no-progress`` or ``--quiet``)."""
    return not (getattr(args, "no_progress", False) or getattr(args, "quiet", False))


def torch_device(args: argparse.Namespace) -> str:
    """The ``--device`` given, else the default."""
    return getattr(args, "device", None) or DEFAULT_DEVICE


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each message."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(args: argparse.Namespace) -> None:
    """Set up the ``memsim``, ``workloads`` and ``policies`` loggers from ``-v``/``-q``.

    Only the CLI configures logging (libraries just log); calling this again replaces what
    an earlier call set up.
    """
    if getattr(args, "quiet", False):
        level = logging.WARNING
    elif getattr(args, "verbose", 0):
        level = logging.DEBUG
    else:
        level = logging.INFO
    formatter = logging.Formatter("memsim: %(message)s")
    for name in ("memsim", "workloads", "policies"):
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
            logger.removeHandler(handler)
        handler = _StderrHandler()
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        logger.setLevel(level)


# ---- scale-out options: executor, cluster address, GPU packing, compute dtype ----------------
#: Run options the scale-out flags set (:class:`memsim.experiment.config.RunOptions` fields).
SCALE_RUN_OPTIONS = ("executor", "address", "gpus_per_point")
#: ``memsim.experiment.config.EXECUTORS`` and ``COMPUTE_DTYPES``, repeated here because importing
#: ``memsim.experiment`` loads torch, and ``--help`` must not (a test keeps them equal).
EXECUTORS = ("local", "ray")
COMPUTE_DTYPES = ("storage", "float32", "float64", "float16", "bfloat16")


def add_scale_out(p: argparse.ArgumentParser, *, cpu_only: bool = False) -> None:
    """``--executor``, ``--address``, ``--gpus-per-point``, ``--compute-dtype``,
    ``--flush-denormals`` (every verb that runs points: ``run``, ``sweep``, ``search``, ``bnn``).
    A ``cpu_only`` verb (``bnn``) takes the last three to refuse them with its own one-line
    error; its help says so."""
    refused = " (refused: this verb runs on CPUs in its own compute type)" if cpu_only else ""
    g = p.add_argument_group(
        "scale-out (results do not depend on these, except compute dtype and subnormals)"
    )
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="local: this process or a process pool (--workers); ray: Ray actors "
        '(pip install -e ".[ray]")',
    )
    g.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    g.add_argument(
        "--gpus-per-point",
        type=float,
        help="GPU share of each Ray worker, e.g. 0.25 packs four points on one GPU" + refused,
    )
    g.add_argument(
        "--compute-dtype",
        choices=COMPUTE_DTYPES,
        help="float dtype to compute float formats in (sets sweep.compute_dtype: "
        "part of the experiment's identity; refused where every format stored is int8/int4)"
        + refused,
    )
    g.add_argument(
        "--flush-denormals",
        action="store_true",
        default=None,
        help="compute as a processor that flushes subnormal floats to zero (sets "
        "sweep.flush_denormals: part of the experiment's identity; CPU only; far faster on "
        "Intel CPUs, where flipped zeros' subnormals slow every layer)" + refused,
    )


def scale_changes(args: argparse.Namespace) -> tuple[list[str], dict]:
    """``--set`` items and run-option changes from the scale-out options."""
    overrides = []
    if args.compute_dtype is not None:
        overrides.append(f'sweep.compute_dtype="{args.compute_dtype}"')
    if getattr(args, "flush_denormals", None):
        overrides.append("sweep.flush_denormals=true")
    changes = {k: getattr(args, k) for k in SCALE_RUN_OPTIONS if getattr(args, k) is not None}
    if changes.get("executor") == "local":
        # A local run on the command line drops the Ray-only options a config's [run] table
        # sets (flags win over the file); given as flags too, they are refused with it.
        changes.setdefault("address", None)
        changes.setdefault("gpus_per_point", 0.0)
    return overrides, changes
