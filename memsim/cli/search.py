"""CLI verb ``search``: the cheapest per-layer protection that keeps accuracy.

``memsim search CONFIG`` runs (or resumes) :func:`memsim.studies.search.run_search` on an
experiment config with a ``[search]`` table and prints where the report is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memsim.cli import options


def cmd_search(args: argparse.Namespace) -> int:
    from memsim.experiment.launch import check_executor, subnormal_hint
    from memsim.studies.search import load_search, run_search, search_digest

    scale_overrides, changes = options.scale_changes(args)
    config, search, run = load_search(args.config, [*args.overrides, *scale_overrides])
    run = options.apply_run_options(run, args, **changes)
    check_executor(run, config.sweep)  # before the first line (run_search checks it too)
    digest = search_digest(config, search)
    print(f"memsim: search '{config.name}' (config hash {digest})", file=sys.stderr)
    if hint := subnormal_hint(config, run):
        print(f"memsim: {hint}", file=sys.stderr)
    out = run_search(config, search, run)
    print(f"Report: {out / 'report.md'}")
    return 0


def add_parser(subparsers) -> None:
    """Add the ``search`` verb."""
    p = subparsers.add_parser(
        "search",
        help="per-layer sensitivity and the cheapest per-layer policy assignment",
        parents=[
            options.common(),
            options.device(),
            options.overrides("--set search.repeats=2"),
        ],
    )
    p.add_argument("config", type=Path, help="experiment config (TOML) with a [search] table")
    p.add_argument("--out", type=Path, help="output folder (default: runs/<name>-search-<hash>)")
    p.add_argument(
        "--workers", type=options.bounded_int(1, 1024), help="parallel worker processes (or actors)"
    )
    options.add_scale_out(p)
    p.set_defaults(func=cmd_search)
