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

from memsim.config import ConfigError, load_toml, loads_toml, where_text
from memsim.experiment.config import (
    ExperimentConfig,
    RunOptions,
    apply_overrides,
    parse_config,
    resolve_config,
)
from memsim.experiment.layers import is_per_layer, write_point_names
from memsim.experiment.plugins import (
    check_files,
    check_images,
    check_plugins,
    make_policy,
    stored_formats,
)
from memsim.inference.int8 import INT_FORMATS

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
    check_compute_dtype(config, source)
    check_images(config, source)
    check_layer_names(config, source)
    return config, run


def check_built(config: ExperimentConfig) -> None:
    """What the loader checks of a config, for one built in Python (which skips the loader):
    plug-in names, images against the data, the files it names, per-layer rules. Entry
    points call it before they claim an output folder."""
    check_plugins(config)
    check_compute_dtype(config)
    check_images(config)
    check_files(config)
    check_layer_names(config)


def check_compute_dtype(config: ExperimentConfig, source: Any = None) -> None:
    """Refuse a ``sweep.compute_dtype`` (``--compute-dtype``) that changes nothing: one other
    than ``"storage"`` where every network the experiment runs stores an integer format.

    int8/int4 networks compute in float32 from their codes whatever ``compute_dtype`` says
    (:class:`memsim.inference.network.NoisyNetwork`), so the option would only change the
    experiment's identity (its hash). The stored format is the policy's
    (``format(to=...)`` may store an int8 sweep as float16, where the option does act), so
    this runs once the policies are resolved.
    """
    dtype = config.sweep.compute_dtype
    if dtype == "storage":
        return
    stored = stored_formats(config)
    if stored and all(fmt in INT_FORMATS for fmt in stored):
        raise ConfigError(
            f"{where_text('sweep.compute_dtype', source)}: compute_dtype = {dtype!r} "
            f"(--compute-dtype) has no effect here: every network of this experiment stores an "
            f"integer format ({', '.join(stored)}), which computes in float32 whatever it says; "
            'leave it at "storage" or add a float format.'
        )


def check_layer_names(config: ExperimentConfig, source: Any = None) -> None:
    """Every per-layer rule of the experiment names a write point of every workload, and
    where the memory model runs, every write point has a policy it can price (none ideal).

    Runs at load time (it loads each workload's model once when a per-layer policy is used),
    so an unknown layer name fails before any output folder is claimed.
    """
    from memsim.experiment.points import load_workload

    layered = [(i, make_policy(s)) for i, s in enumerate(config.policies)]
    layered = [(i, p) for i, p in layered if is_per_layer(p)]
    if not layered:
        return
    for spec in config.workloads:
        workload, model = load_workload(spec)
        example = workload.dataset(config.sweep.split, limit=2)[0]
        names = write_point_names(
            model,
            example,
            granularity=spec.granularity or config.sweep.granularity,
            noisy_input=config.sweep.noisy_input,
        )
        for i, policy in layered:
            try:
                policy.check_names(names)
            except ValueError as exc:
                raise ConfigError(
                    f"{where_text(f'policies[{i}]', source)} (workload {spec.label}): {exc}"
                ) from None
            ideal = [n for n in names if policy.policy_for(n) is None]
            if config.memory.enabled and ideal:
                more = f" (and {len(ideal) - 1} more)" if len(ideal) > 1 else ""
                raise ConfigError(
                    f"{where_text(f'policies[{i}]', source)} (workload {spec.label}): layer "
                    f"'{ideal[0]}'{more} is stored ideally (default = \"ideal\"), which the "
                    "memory model cannot price; give it a rule or a default policy, or set "
                    "memory.enabled = false."
                )
