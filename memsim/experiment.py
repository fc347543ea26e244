"""Experiments: a TOML config in, a results folder (points, fits, costs, report) out.

This is the top of the data flow (DESIGN §2, §7). :func:`load_experiment` validates a config
file into a frozen :class:`ExperimentConfig` (what is modelled; its hash is the experiment's
identity) and :class:`RunOptions` (workers, output folder, torch device: how it runs, not part
of the identity). :func:`run_experiment` then

1. runs the accuracy sweeps (:mod:`memsim.sweep`) into the results store (:mod:`memsim.results`),
   resuming whatever an earlier, interrupted run finished;
2. traces each workload × format, plans each record with each policy on each programming
   condition and runs the SimPy memory model (:mod:`memsim.timing`) for energy and latency;
3. writes the report (:mod:`memsim.report`), which only reads the tables.

The CLI (:mod:`memsim.experiment_cli`) is a thin layer over these functions.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from memsim.config import (
    CONFIG_DIR,
    ConfigError,
    build,
    check_range,
    load_toml,
    loads_toml,
    to_dict,
    where_text,
)

#: The embedded default experiment (``memsim run`` with no config).
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"


# --------------------------------------------------------------------------- config objects


@dataclass(frozen=True)
class GridConfig:
    """The p grid: log-spaced from ``p_min`` to ``p_max``, or explicit ``values``."""

    p_min: float = 1e-8
    p_max: float = 1e-1
    points_per_decade: int = 3
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("p_min", "p_max"):
            check_range("grid", name, getattr(self, name), low=0, high=1, low_open=True)
        if not self.p_min < self.p_max:
            raise ValueError(f"'p_min' ({self.p_min}) must be below 'p_max' ({self.p_max}).")
        check_range("grid", "points_per_decade", self.points_per_decade, kind=int, low=1, high=1000)
        for i, v in enumerate(self.values):
            check_range("grid", f"values[{i}]", v, low=0, high=1, low_open=True)
        if len(set(self.values)) != len(self.values):
            raise ValueError("'values' must not repeat a p value.")

    def ps(self) -> tuple[float, ...]:
        """The grid, ascending."""
        if self.values:
            return tuple(sorted(self.values))
        decades = math.log10(self.p_max) - math.log10(self.p_min)
        n = max(2, round(decades * self.points_per_decade) + 1)
        return tuple(
            float(v) for v in np.logspace(math.log10(self.p_min), math.log10(self.p_max), n)
        )


@dataclass(frozen=True)
class WorkloadSpec:
    """A workload by registered name, with an optional checkpoint and options."""

    name: str
    label: str = ""
    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)


@dataclass(frozen=True)
class PolicySpec:
    """A policy by name, or a table with ``kind`` and the policy's own parameters."""

    label: str
    spec: str | dict[str, Any]


@dataclass(frozen=True)
class SweepConfig:
    """How accuracy points are evaluated (all of it changes results, so all is modelled)."""

    repeats: int = 5
    images: int = 0  # 0: the whole split
    split: str = "test"
    coupled: bool = True
    batch_size: int = 256
    engine: str = "auto"
    fused: bool = False
    noisy_input: bool = False
    calibration_images: int = 256

    def __post_init__(self) -> None:
        check_range("sweep", "repeats", self.repeats, kind=int, low=1)
        check_range("sweep", "images", self.images, kind=int, low=0)
        check_range("sweep", "batch_size", self.batch_size, kind=int, low=1)
        check_range("sweep", "calibration_images", self.calibration_images, kind=int, low=1)


@dataclass(frozen=True)
class AdaptiveConfig:
    """Adaptive sweeps: bisect for the drop, then refine around it until the CI is narrow."""

    enabled: bool = False
    bracket_decades: float = 0.25
    refine_points: int = 5
    refine_decades: float = 0.6
    # At least 3 repeats: a bootstrap over 2 repeats has only 3 distinct resamples.
    min_repeats: int = 3
    max_repeats: int = 5
    ci_decades: float = 0.08

    def __post_init__(self) -> None:
        check_range("adaptive", "bracket_decades", self.bracket_decades, low=0, low_open=True)
        check_range("adaptive", "refine_points", self.refine_points, kind=int, low=3)
        check_range("adaptive", "refine_decades", self.refine_decades, low=0, low_open=True)
        check_range("adaptive", "min_repeats", self.min_repeats, kind=int, low=2)
        check_range("adaptive", "max_repeats", self.max_repeats, kind=int, low=self.min_repeats)
        check_range("adaptive", "ci_decades", self.ci_decades, low=0, low_open=True)


@dataclass(frozen=True)
class FitConfig:
    """Logistic fit options (DESIGN §7)."""

    scale: Literal["log10p", "p"] = "log10p"
    bootstrap: int = 200
    confidence: float = 0.95

    def __post_init__(self) -> None:
        check_range("fit", "bootstrap", self.bootstrap, kind=int, low=0)
        check_range(
            "fit", "confidence", self.confidence, low=0, high=1, low_open=True, high_open=True
        )


@dataclass(frozen=True)
class MemoryConfig:
    """Cost side: the memory-system preset and how the write trace is measured."""

    enabled: bool = True
    preset: str = "default"
    trace_images: int = 16

    def __post_init__(self) -> None:
        check_range("memory", "trace_images", self.trace_images, kind=int, low=1)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything an experiment models; its hash (:meth:`digest`) names the experiment.

    ``operating_p`` is ``"device"`` (each programming condition's own p01/p10) or a number.
    ``conditions`` are programming conditions (``configs/device/conditions``); empty means the
    device bundle's own condition. ``masks`` are noisy-bit masks: ``"all"``, field names joined
    by ``+`` (``"exponent+mantissa"``) or ``"first_noisy:k"`` (positions 0…k-1 protected).
    ``incompatible = "skip"`` leaves out policy × format pairs a policy cannot store (e.g.
    ``sram_exponent`` × ``int8``, which has no exponent) and masks a policy's channel cannot
    take (SECDED codewords); ``"error"`` refuses them.
    """

    name: str = "experiment"
    description: str = ""
    seed: int = 0
    workloads: tuple[WorkloadSpec, ...] = (WorkloadSpec("digits"),)
    formats: tuple[str, ...] = ("float32",)
    policies: tuple[PolicySpec, ...] = (PolicySpec("baseline", "baseline"),)
    masks: tuple[str, ...] = ("all",)
    baseline: str = "baseline"
    device: str = "default"
    conditions: tuple[str, ...] = ()
    operating_p: float | str = "device"
    incompatible: Literal["skip", "error"] = "skip"
    grid: GridConfig = field(default_factory=GridConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    adaptive: AdaptiveConfig = field(default_factory=AdaptiveConfig)
    fit: FitConfig = field(default_factory=FitConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)

    def __post_init__(self) -> None:
        check_range("the experiment", "seed", self.seed, kind=int, low=0)
        for key in ("workloads", "formats", "policies", "masks"):
            if not getattr(self, key):
                raise ValueError(f"'{key}' must list at least one entry.")
        for key, labels in (
            ("workloads", [w.label for w in self.workloads]),
            ("policies", [p.label for p in self.policies]),
            ("formats", list(self.formats)),
            ("masks", list(self.masks)),
            ("conditions", list(self.conditions)),
        ):
            dupes = sorted({x for x in labels if labels.count(x) > 1})
            if dupes:
                raise ValueError(f"'{key}' lists {dupes[0]!r} twice; give entries distinct labels.")
        if isinstance(self.operating_p, str):
            if self.operating_p != "device":
                raise ValueError(
                    f"'operating_p' must be \"device\" or a probability. Got {self.operating_p!r}."
                )
        else:
            check_range(
                "the experiment", "operating_p", self.operating_p, low=0, high=1, low_open=True
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what ``config.json`` holds and the hash is taken of)."""
        data = to_dict(self)
        data["workloads"] = [_compact_workload(w) for w in self.workloads]
        data["policies"] = [{"label": p.label, "spec": p.spec} for p in self.policies]
        return data

    def to_toml_data(self) -> dict[str, Any]:
        """Plain data in the config-file layout (``config.toml``: loads back to this config)."""
        data = self.to_dict()
        data["workloads"] = [
            w.name
            if (w.label == w.name and w.checkpoint is None and not w.options)
            else _compact_workload(w)
            for w in self.workloads
        ]
        data["policies"] = [
            p.spec
            if isinstance(p.spec, str) and p.spec == p.label
            else {"kind": p.spec, "label": p.label}
            if isinstance(p.spec, str)
            else {**p.spec, "label": p.label}
            for p in self.policies
        ]
        return data

    def digest(self) -> str:
        """The experiment's identity: a hash of :meth:`to_dict`.

        Adaptive options are left out while adaptive mode is off: they change nothing then.
        """
        from memsim.results import config_hash

        data = self.to_dict()
        if not self.adaptive.enabled:
            data["adaptive"] = {"enabled": False}
        return config_hash(data)

    @property
    def baseline_label(self) -> str:
        """The policy that overheads are measured against (first policy if absent)."""
        labels = [p.label for p in self.policies]
        return self.baseline if self.baseline in labels else labels[0]


@dataclass(frozen=True)
class RunOptions:
    """How an experiment runs; never part of its identity."""

    workers: int = 1
    out: Path | None = None
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        check_range("run", "workers", self.workers, kind=int, low=1, high=1024)


# --------------------------------------------------------------------------- loading


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


def resolve_config(path: str | os.PathLike | None) -> Path:
    """A config file from a path, or a shipped config's name (``labs/lab1_noise_curve``)."""
    if path is None:
        return DEFAULT_CONFIG
    path = Path(path)
    if not path.exists():
        shipped = CONFIG_DIR / (path.as_posix() + ("" if path.suffix == ".toml" else ".toml"))
        if shipped.is_file():
            return shipped
    return path


def parse_experiment(
    data: Mapping[str, Any], *, source: Any = None
) -> tuple[ExperimentConfig, RunOptions]:
    """Validate parsed TOML into an :class:`ExperimentConfig` and :class:`RunOptions`."""
    data = dict(data)
    run = build(RunOptions, data.pop("run", {}), where="run", source=source)
    if "workloads" in data:
        data["workloads"] = tuple(
            _workload_spec(w, i, source) for i, w in enumerate(_listed(data, "workloads", source))
        )
    if "policies" in data:
        data["policies"] = tuple(
            _policy_spec(p, i, source) for i, p in enumerate(_listed(data, "policies", source))
        )
    config = build(ExperimentConfig, data, source=source)
    check_plugins(config, source)
    return config, run


def apply_overrides(
    data: dict[str, Any], overrides: Sequence[str], source: Any = None
) -> dict[str, Any]:
    """``data`` with ``key.sub=value`` assignments applied (values parsed as TOML)."""
    data = json.loads(json.dumps(data, default=str)) if overrides else data
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"Override {item!r} must look like key=value (e.g. sweep.repeats=2).")
        try:
            parsed = loads_toml(f"v = {value.strip()}", f"override {item!r}")["v"]
        except ConfigError:
            parsed = value.strip()  # a bare word: treat as a string
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Override {item!r}: {where_text(part, source)} is not a table.")
        node[parts[-1]] = parsed
    return data


def check_plugins(config: ExperimentConfig, source: Any = None) -> None:
    """Check that every named workload, format, policy and preset exists and fits together."""
    from memsim.formats import get_format, resolve_bits
    from memsim.inference import INFERENCE_FORMATS

    for i, fmt in enumerate(config.formats):
        try:
            get_format(fmt)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where_text(f'formats[{i}]', source)}: {exc}") from None
        if fmt not in INFERENCE_FORMATS:
            raise ConfigError(
                f"{where_text(f'formats[{i}]', source)}: noisy inference supports "
                f"{', '.join(INFERENCE_FORMATS)}. Got {fmt!r}."
            )
        for j, mask in enumerate(config.masks):
            try:
                resolve_bits(fmt, mask_bits(mask))
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"{where_text(f'masks[{j}]', source)} for format {fmt}: {exc}"
                ) from None
    for i, spec in enumerate(config.workloads):
        _check_lookup(f"workloads[{i}]", source, lambda s=spec: _workload_registry().get(s.name))
    for i, spec in enumerate(config.policies):
        policy = _check_lookup(f"policies[{i}]", source, lambda s=spec: make_policy(s))
        errors = []
        for fmt in config.formats:
            try:
                policy.validate(fmt)
            except (ValueError, TypeError) as exc:
                errors.append(exc)
        if errors and (config.incompatible == "error" or len(errors) == len(config.formats)):
            raise ConfigError(f"{where_text(f'policies[{i}]', source)}: {errors[0]}")
    if any(m != "all" for m in config.masks):
        _check_masks(config, source)
    _check_lookup("device", source, lambda: _load_device(config.device, None))
    for i, cond in enumerate(config.conditions):
        _check_lookup(f"conditions[{i}]", source, lambda c=cond: _load_device(config.device, c))
    if config.memory.enabled:
        _check_lookup("memory.preset", source, lambda: load_memory_params(config.memory.preset))


def _check_masks(config: ExperimentConfig, source: Any) -> None:
    """Masks restrict plain bit flips; a policy with another channel (ECC) cannot take one."""
    for j, mask in enumerate(config.masks):
        errors = []
        pairs = pairs_of(config)
        for spec, fmt in pairs:
            try:
                mask_channel_check(make_policy(spec), fmt, mask)
            except (ValueError, TypeError) as exc:
                errors.append(exc)
        if errors and (config.incompatible == "error" or len(errors) == len(pairs)):
            raise ConfigError(f"{where_text(f'masks[{j}]', source)}: {errors[0]}")


def mask_channel_check(policy: Any, fmt: str, mask: str) -> None:
    """Raise ``ValueError`` if ``mask`` cannot restrict ``policy``'s channel for ``fmt``."""
    from memsim.sweep import make_channel

    if mask != "all":
        make_channel(policy, policy.storage_format(fmt), mask, 1e-3, 1e-3)


def mask_bits(mask: str) -> Any:
    """A mask string as the ``bits`` argument of :func:`memsim.formats.resolve_bits`."""
    if mask == "all":
        return None
    if mask.startswith("first_noisy:"):
        return mask
    return [part.strip() for part in mask.split("+")]


def make_policy(spec: PolicySpec):
    """The policy object for a spec (registry lookup; tables carry ``kind``)."""
    from policies import get_policy

    return get_policy(spec.spec)


def load_memory_params(preset: str):
    """Memory-system parameters for a preset name or file."""
    from memsim.timing import load_memory_params as load

    return load(preset)


def _load_device(device: str, condition: str | None):
    from memsim.device import load_device

    return load_device(device, condition=condition)


def _workload_registry():
    from workloads import WORKLOADS

    return WORKLOADS


def _check_lookup(key: str, source: Any, fn):
    try:
        return fn()
    except ConfigError as exc:
        raise ConfigError(f"{where_text(key, source)}: {exc}") from None
    except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        raise ConfigError(f"{where_text(key, source)}: {exc}") from None


def _listed(data: Mapping[str, Any], key: str, source: Any) -> list:
    value = data[key]
    if isinstance(value, str | Mapping):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where_text(key, source)} must be a list. Got {value!r}.")
    return list(value)


def _workload_spec(item: Any, i: int, source: Any) -> WorkloadSpec:
    if isinstance(item, str):
        return WorkloadSpec(item)
    return build(WorkloadSpec, item, where=f"workloads[{i}]", source=source)


def _policy_spec(item: Any, i: int, source: Any) -> PolicySpec:
    where = f"policies[{i}]"
    if isinstance(item, str):
        return PolicySpec(item, item)
    if not isinstance(item, Mapping):
        raise ConfigError(
            f"{where_text(where, source)} must be a policy name or a table with 'kind'. Got {item!r}."
        )
    table = dict(item)
    label = table.pop("label", None)
    if "kind" not in table:
        raise ConfigError(
            f"Missing key {where_text(where + '.kind', source)}: a policy table names its policy with 'kind'."
        )
    if label is None:
        extra = ",".join(f"{k}={v}" for k, v in sorted(table.items()) if k != "kind")
        label = f"{table['kind']}({extra})" if extra else table["kind"]
    if not isinstance(label, str) or not label:
        raise ConfigError(
            f"{where_text(where + '.label', source)} must be a non-empty string. Got {label!r}."
        )
    return PolicySpec(label, table if len(table) > 1 else table["kind"])


def _compact_workload(w: WorkloadSpec) -> dict[str, Any]:
    return {
        "name": w.name,
        "label": w.label,
        "checkpoint": w.checkpoint,
        "options": dict(w.options),
    }


def replace_config(config: ExperimentConfig, **changes: Any) -> ExperimentConfig:
    """A copy of ``config`` with top-level fields replaced (validated again)."""
    return dataclasses.replace(config, **changes)


# --------------------------------------------------------------------------- running


def pairs_of(config: ExperimentConfig) -> list[tuple[PolicySpec, str]]:
    """The (policy, format) pairs the experiment runs: those the policy can store."""
    pairs = []
    for spec in config.policies:
        policy = make_policy(spec)
        for fmt in config.formats:
            try:
                policy.validate(fmt)
            except (ValueError, TypeError):
                continue  # left out by incompatible = "skip" (load refused it otherwise)
            pairs.append((spec, fmt))
    return pairs


def skipped_combinations(config: ExperimentConfig) -> list[str]:
    """Human-readable policy × format (× mask) combinations left out, with the reason."""
    skipped = []
    for spec in config.policies:
        policy = make_policy(spec)
        for fmt in config.formats:
            try:
                policy.validate(fmt)
            except (ValueError, TypeError) as exc:
                skipped.append(f"{spec.label} × {fmt}: {exc}")
                continue
            for mask in config.masks:
                try:
                    mask_channel_check(policy, fmt, mask)
                except (ValueError, TypeError) as exc:
                    skipped.append(f"{spec.label} × {fmt} × mask {mask}: {exc}")
    return skipped


def curves_of(config: ExperimentConfig) -> list:
    """Every workload × format × policy × mask curve of the experiment, in config order."""
    from memsim.sweep import Curve

    pairs = {(s.label, f): s for s, f in pairs_of(config)}
    masks_ok = {}
    for (label, fmt), spec in pairs.items():
        for mask in config.masks:
            try:
                mask_channel_check(make_policy(spec), fmt, mask)
                masks_ok[label, fmt, mask] = True
            except (ValueError, TypeError):
                continue  # left out by incompatible = "skip" (load refused it otherwise)
    return [
        Curve(w.label, fmt, p.label, mask)
        for w in config.workloads
        for fmt in config.formats
        for p in config.policies
        for mask in config.masks
        if masks_ok.get((p.label, fmt, mask))
    ]


def operating_points(config: ExperimentConfig) -> list[dict[str, Any]]:
    """One row per programming condition: its device error rates and the operating point."""
    rows = []
    for cond in config.conditions or (None,):
        device = _load_device(config.device, cond)
        p01, p10 = (
            (device.p01, device.p10)
            if config.operating_p == "device"
            else (config.operating_p,) * 2
        )
        rows.append(
            {
                "condition": cond or device.condition.name,
                "device": device.name,
                "p_bf": float(device.p_bf),
                "p01": float(device.p01),
                "p10": float(device.p10),
                "operating_p01": float(p01),
                "operating_p10": float(p10),
                "e_set_pj": float(device.condition.e_set_pj),
                "e_reset_pj": float(device.condition.e_reset_pj),
                "t_pulse_ns": float(device.condition.t_pulse_ns),
            }
        )
    return rows


def default_out(config: ExperimentConfig) -> Path:
    """``runs/<name>-<hash>``: one folder per experiment identity."""
    return Path("runs") / f"{config.name}-{config.digest()[:8]}"


def run_experiment(
    config: ExperimentConfig,
    run: RunOptions = RunOptions(),
    *,
    evaluator: Any = None,
    sweep_only: bool = False,
) -> Path:
    """Run (or resume) an experiment into its output folder and write the report.

    Parameters
    ----------
    config : ExperimentConfig
        What is modelled.
    run : RunOptions
        Workers, output folder (default :func:`default_out`), torch device, progress bars.
    evaluator : callable(PointTask) -> dict, optional
        Replaces the real-network evaluator (tests and benchmarks use a surrogate).
    sweep_only : bool
        Stop after the accuracy sweep (no memory model, no report).

    Returns
    -------
    Path
        The output folder.

    Raises
    ------
    ResultsError
        The output folder holds another experiment's results or is not writable.
    """
    from memsim.executor import make_executor
    from memsim.results import ResultsStore, metadata, write_csv_atomic, write_text_atomic
    from memsim.sweep import NetworkEvaluator, load_workload, plan_grid, run_points

    out = Path(run.out) if run.out is not None else default_out(config)
    digest = config.digest()
    with ResultsStore.open(out, config=config.to_dict(), digest=digest) as store:
        write_text_atomic(out / "config.toml", to_toml(config.to_toml_data()))
        write_text_atomic(
            out / "config.json", json.dumps(config.to_dict(), indent=1, sort_keys=True)
        )
        meta = metadata(
            seed=config.seed,
            digest=digest,
            extra={
                "torch_device": run.device,
                "workers": run.workers,
                "skipped": skipped_combinations(config),
            },
        )
        write_text_atomic(out / "metadata.json", json.dumps(meta, indent=1, sort_keys=True))
        conditions = operating_points(config)
        import pandas as pd

        write_csv_atomic(out / "conditions.csv", pd.DataFrame(conditions))
        if evaluator is None:
            evaluator = NetworkEvaluator(
                config.workloads, config.policies, config.sweep, run.device
            )
            for spec in config.workloads:  # train/cache models once, before any worker starts
                load_workload(spec)
        curves = curves_of(config)
        grid = config.grid.ps()
        ops = [(c["operating_p01"], c["operating_p10"]) for c in conditions]
        couplable = getattr(evaluator, "couplable", None)

        def coupled(curve) -> bool:
            return config.sweep.coupled and (couplable is None or couplable(curve, grid))

        with make_executor(run.workers) as executor:
            if config.adaptive.enabled:
                _run_adaptive(config, run, store, executor, evaluator, curves, ops, coupled)
            else:
                tasks = plan_grid(
                    curves,
                    grid,
                    repeats=config.sweep.repeats,
                    seed=config.seed,
                    coupled=coupled,
                    operating=ops,
                )
                run_points(tasks, store, executor, evaluator, progress=run.progress)
        write_csv_atomic(out / "points.csv", store.points_frame())
    if sweep_only:
        return out
    if config.memory.enabled:
        write_csv_atomic(
            out / "memory.csv", memory_table(config, conditions, progress=run.progress)
        )
    from memsim.report import write_report

    write_report(out)
    return out


def _run_adaptive(config, run, store, executor, evaluator, curves, ops, coupled) -> None:
    from memsim.adaptive import run_adaptive
    from memsim.sweep import PointTask, clean_task, point_seed, run_points

    run_points(
        [clean_task(config.seed, c) for c in curves],
        store,
        executor,
        evaluator,
        progress=run.progress,
        desc="clean",
    )
    rows = store.finished()
    clean = {c: rows[clean_task(config.seed, c).id] for c in curves}
    couplable = getattr(evaluator, "couplable", None)
    run_adaptive(
        curves,
        store,
        executor,
        evaluator,
        seed=config.seed,
        p_min=min(config.grid.ps()),
        p_max=max(config.grid.ps()),
        a_max={c: float(r["accuracy"]) for c, r in clean.items()},
        num_classes={c: int(r["num_classes"]) for c, r in clean.items()},
        options=config.adaptive,
        couplable=(lambda c, ps: config.sweep.coupled and couplable(c, ps)) if couplable else None,
        fit_scale=config.fit.scale,
        progress=run.progress,
    )
    op_tasks = [
        PointTask(c, "operating", p01, p10, r, point_seed(config.seed, c, "operating", r, p01, p10))
        for c in curves
        for p01, p10 in dict.fromkeys(ops)
        for r in range(config.sweep.repeats)
    ]
    run_points(op_tasks, store, executor, evaluator, progress=run.progress, desc="operating")


def memory_table(
    config: ExperimentConfig, conditions: Sequence[Mapping[str, Any]], *, progress: bool = False
):
    """Energy and latency per inference for each workload × format × policy × condition.

    Traces each workload once per stored format on ``memory.trace_images`` real inputs, plans
    every record with each policy on each programming condition's device, and simulates.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from memsim.rng import child_seed
    from memsim.sweep import load_workload
    from memsim.timing import ENERGY_CATEGORIES, simulate
    from memsim.tracing import trace_model

    params = load_memory_params(config.memory.preset)
    devices = {
        c["condition"]: _load_device(config.device, cond)
        for c, cond in zip(conditions, config.conditions or (None,))
    }
    rows = []
    traces: dict = {}
    pairs = pairs_of(config)
    bar = tqdm(
        total=len(config.workloads) * len(pairs) * len(devices),
        desc="memory",
        unit="sim",
        disable=not progress,
    )
    for wspec in config.workloads:
        workload, model = load_workload(wspec)
        x, _ = workload.dataset(config.sweep.split, limit=config.memory.trace_images)
        for pspec, fmt in pairs:
            policy = make_policy(pspec)
            stored = policy.storage_format(fmt)
            if (wspec.label, stored) not in traces:
                calibration = None
                if stored == "int8":
                    calibration = workload.dataset("train", limit=config.sweep.calibration_images)[
                        0
                    ]
                traces[wspec.label, stored] = trace_model(
                    model,
                    x,
                    stored,
                    workload_name=wspec.label,
                    fused=config.sweep.fused,
                    noisy_input=config.sweep.noisy_input,
                    calibration=calibration,
                )
            trace = traces[wspec.label, stored]
            for cond, device in devices.items():
                plans = [policy.plan(r, device) for r in trace.records]
                seed = child_seed(config.seed, "memory", wspec.label, fmt, pspec.label, cond)
                res = simulate(plans, trace, params, seed=seed)
                bar.update(1)
                energy = dict(zip(res.energy["category"], res.energy["energy_pj"]))
                rram = res.banks[res.banks["memory"] == "rram"]
                rows.append(
                    {
                        "workload": wspec.label,
                        "format": fmt,
                        "policy": pspec.label,
                        "condition": cond,
                        "stored_format": stored,
                        "energy_pj_per_inference": float(res.energy_pj),
                        "latency_ns_per_inference": float(res.latency_ns),
                        "compute_ns_per_inference": float(res.compute_ns),
                        "stall_ns_per_inference": float(res.stall_ns),
                        "rram_utilisation": float(rram["utilisation"].mean()) if len(rram) else 0.0,
                        "written_bits_per_inference": int(trace.written_bits),
                        **{f"energy_{c}_pj": float(energy.get(c, 0.0)) for c in ENERGY_CATEGORIES},
                    }
                )
    bar.close()
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- TOML out


def to_toml(data: Mapping[str, Any]) -> str:
    """Plain data as TOML text (scalars and arrays first, then one ``[table]`` per mapping)."""
    lines: list[str] = []
    _toml_table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping) and v is not None}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if path:
        lines += ["", f"[{'.'.join(path)}]"]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items()]
    for k, v in tables.items():
        _toml_table(v, [*path, _toml_key(k)], lines)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return (
            repr(v)
            if math.isfinite(v)
            else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
        )
    if isinstance(v, str | Path):
        return json.dumps(str(v))
    if isinstance(v, Mapping):
        return (
            "{"
            + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None)
            + "}"
        )
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"Cannot write {v!r} as TOML.")
