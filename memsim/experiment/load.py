"""Loading an experiment: TOML → validated config → plug-in names resolved.

:func:`load_experiment` reads a file (or a shipped config's name), applies ``--set``
overrides, validates keys and values (:mod:`memsim.experiment.config`) and then checks every
plug-in name and combination (:mod:`memsim.experiment.plugins`), so that a config that loads
can run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from memsim.config import load_toml, loads_toml
from memsim.experiment.config import (
    ExperimentConfig,
    RunOptions,
    apply_overrides,
    parse_config,
    resolve_config,
)
from memsim.experiment.plugins import check_plugins

__all__ = ["load_experiment", "parse_experiment"]


def load_experiment(
    path: str | os.PathLike | None = None,
    *,
    overrides: Sequence[str] = (),
    text: str | None = None,
) -> tuple[ExperimentConfig, RunOptions]:
    """Read and validate an experiment config.

    Parameters
    ----------
    path : path, optional
        A TOML file, or the name of a shipped one (``default``, ``labs/lab1_noise_curve``,
        see ``memsim list experiments``); ``None`` reads the embedded default.
    overrides : sequence of str
        ``"dotted.key=value"`` assignments applied before validation; values are TOML
        (``sweep.repeats=2``, ``grid.values=[1e-4, 1e-3]``, ``formats=["int8"]``).
    text : str, optional
        TOML text instead of a file (``path`` then only names it in messages).

    Raises
    ------
    ConfigError
        Malformed TOML (with the line), unknown keys, bad values, unknown workloads,
        policies, formats or presets; the message names the key, the value and the file.
    """
    source = resolve_config(path)
    data = loads_toml(text, str(source)) if text is not None else load_toml(source)
    data = apply_overrides(data, overrides, source)
    # A bad value may come from an override rather than the file: say so in messages.
    where = f"{source} (with --set {', '.join(overrides)})" if overrides else source
    return parse_experiment(data, source=where)


def parse_experiment(
    data: Mapping[str, Any], *, source: Any = None
) -> tuple[ExperimentConfig, RunOptions]:
    """Validate parsed TOML into an :class:`ExperimentConfig` and :class:`RunOptions`."""
    config, run = parse_config(data, source=source)
    check_plugins(config, source)
    return config, run
