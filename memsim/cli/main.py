"""Command-line interface: a thin layer over the Python API.

Each verb lives beside the concept it drives and registers itself through an
``add_parser(subparsers)`` function that sets ``func`` on its parser; this module only
collects them. Errors a user can fix (bad config, unknown names, missing data) are printed as
one clear line with exit status 2, not as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from memsim.cli.options import configure_logging
from memsim.errors import WorkerDied, WorkerStartFailed

#: Modules that contribute verbs, in the order they appear in ``memsim --help``.
COMMAND_MODULES = (
    "memsim.cli.experiment",  # run, sweep, report
    "memsim.cli.train",  # train, trace, eval
    "memsim.cli.device",  # device
    "memsim.cli.inference",  # trace, eval
    "memsim.cli.memory",  # memory
    "memsim.cli.bnn",  # bnn
    "memsim.cli.search",  # search
    "memsim.cli.listing",  # list
    "memsim.cli.flip_demo",  # flip-demo
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as every other error of the CLI (no usage
    block first; ``--help`` shows it). Sub-commands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from memsim import __version__

    parser = _Parser(
        prog="memsim",
        description="What noisy RRAM writes do to a neural network, and what it costs to fight them.",
    )
    parser.add_argument("--version", action="version", version=f"memsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a verb module not present yet in this build
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    configure_logging(args)
    try:
        if getattr(args, "device", None) is not None and not hasattr(args, "executor"):
            # A device this machine lacks is refused before anything is computed or written.
            # Verbs with an executor check it with their final run options instead
            # (memsim.experiment.launch.check_executor): Ray workers may have GPUs the driver lacks.
            from memsim.compute import resolve_device

            resolve_device(args.device)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("memsim: interrupted; finished work is kept and a re-run resumes.", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError, WorkerDied, WorkerStartFailed) as exc:
        if getattr(args, "debug", False):
            raise
        print(f"memsim {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
