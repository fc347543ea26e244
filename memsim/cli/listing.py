"""CLI verb ``list``: what can be named in a config (registered plug-ins and shipped presets).

``memsim list`` prints every category; ``memsim list policies`` one of them. Categories:
workloads and policies (registries, entry points included), storage formats, device bundles,
programming conditions, memory presets, policy configs and experiment configs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from memsim.cli import options
from memsim.config import CONFIG_DIR


def _workloads() -> list[str]:
    from workloads import WORKLOADS

    return WORKLOADS.names()


def _policies() -> list[str]:
    from policies import POLICIES

    return POLICIES.names()


def _policy_configs() -> list[str]:
    from policies import config_names

    return config_names()


def _formats() -> list[str]:
    from memsim.formats import ACTIVATION_FORMATS

    return list(ACTIVATION_FORMATS)


def _devices() -> list[str]:
    from memsim.device import device_names

    return device_names()


def _conditions() -> list[str]:
    from memsim.device import condition_names

    return condition_names()


def _memory() -> list[str]:
    from memsim.timing import preset_names

    return preset_names()


def _experiments() -> list[str]:
    """Experiment configs: top-level ``configs/*.toml`` plus the ``labs/``, ``cifar/`` and
    ``bnn/`` (binarized-network study) sets."""
    names = [p.stem for p in sorted(CONFIG_DIR.glob("*.toml"))]
    for sub in ("labs", "cifar", "bnn"):
        names += [f"{sub}/{p.stem}" for p in sorted((CONFIG_DIR / sub).glob("*.toml"))]
    return names


#: Category → (description, lister).
CATEGORIES: dict[str, tuple[str, Callable[[], list[str]]]] = {
    "workloads": ("registered workloads (configs: workloads = [...])", _workloads),
    "policies": ("registered policy kinds (configs: policies = [...])", _policies),
    "policy-configs": ("named policy configs in configs/policies/", _policy_configs),
    "formats": ("activation storage formats (configs: formats = [...])", _formats),
    "devices": ("device bundles in configs/device/ (configs: device = ...)", _devices),
    "conditions": (
        "programming conditions in configs/device/conditions/ (configs: conditions = [...])",
        _conditions,
    ),
    "memory": ("memory-system presets in configs/memory/ ([memory] preset = ...)", _memory),
    "experiments": (
        f"experiment configs under {CONFIG_DIR} (memsim run NAME)",
        _experiments,
    ),
}


def listing(categories: list[str] | None = None) -> str:
    """The text ``memsim list`` prints for ``categories`` (all when None)."""
    lines = []
    for name in categories or list(CATEGORIES):
        description, lister = CATEGORIES[name]
        try:
            items = lister()
        except (
            ImportError
        ) as exc:  # a part of memsim missing from this build must not hide the rest
            items = [f"(unavailable: {exc})"]
        lines.append(f"{name}: {description}")
        lines += [f"  {item}" for item in items] or ["  (none)"]
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    print(listing([args.category] if args.category else None))
    return 0


def add_parser(subparsers) -> None:
    """Add the ``list`` verb."""
    p = subparsers.add_parser(
        "list", help="list workloads, policies, formats and presets", parents=[options.common()]
    )
    p.add_argument(
        "category", nargs="?", choices=list(CATEGORIES), help="one category (default: all)"
    )
    p.set_defaults(func=cmd_list)
