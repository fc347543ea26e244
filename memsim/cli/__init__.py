"""The command line: one module per verb, collected by :mod:`memsim.cli.main`."""

from memsim.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
