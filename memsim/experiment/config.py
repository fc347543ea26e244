"""Experiment configs: a TOML file into a frozen :class:`ExperimentConfig` and :class:`RunOptions`.

The first stage of an experiment (docs/design.md §2, §7). :func:`load_experiment` validates a config
file, with ``--set`` overrides, into a frozen :class:`ExperimentConfig` (what is modelled; its
hash, :meth:`ExperimentConfig.digest`, is the experiment's identity) and :class:`RunOptions`
(workers, output folder, torch device: how it runs, not part of the identity). Plug-in names
are checked by :mod:`memsim.experiment.plugins`; :mod:`memsim.experiment.run` runs the result.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from memsim.checks import check_probability
from memsim.config import (
    CONFIG_DIR,
    ConfigError,
    build,
    check_choice,
    check_range,
    loads_toml,
    to_dict,
    where_text,
)

#: Write-point granularities (:data:`memsim.inference.graph.GRANULARITIES`; kept here so that
#: reading a config does not import torch).
GRANULARITIES = ("module", "op", "fused")

#: The embedded default experiment (``memsim run`` with no config).
DEFAULT_CONFIG = CONFIG_DIR / "default.toml"

#: Upper bounds: a value beyond them is a typo, and would run for days or exhaust memory.
MAX_REPEATS = 10_000
MAX_IMAGES = 10_000_000
MAX_BOOTSTRAP = 100_000
MAX_GRID_POINTS = 10_000
#: Seeds are 64-bit; a larger one would silently equal a smaller one.
SEED_MAX = 2**64 - 1
#: ``sweep.calibration_images`` by default (int8/int4 activation ranges).
DEFAULT_CALIBRATION_IMAGES = 256


# --------------------------------------------------------------------------- config objects

#: Values of ``sweep.compute_dtype``: the storage format's own dtype, or a torch float dtype.
COMPUTE_DTYPES = ("storage", "float32", "float64", "float16", "bfloat16")
#: Values of ``run.executor``: this process or a local process pool (by ``workers``), or Ray.
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class GridConfig:
    """The p grid: log-spaced from ``p_min`` to ``p_max``, or explicit ``values``."""

    p_min: float = 1e-8
    p_max: float = 1e-1
    points_per_decade: int = 3
    values: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("p_min", "p_max"):
            check_probability(name, getattr(self, name), owner="grid", low_open=True)
        if not self.p_min < self.p_max:
            raise ValueError(f"'p_min' ({self.p_min}) must be below 'p_max' ({self.p_max}).")
        check_range("grid", "points_per_decade", self.points_per_decade, kind=int, low=1, high=1000)
        if len(self.values) > MAX_GRID_POINTS:
            raise ValueError(
                f"'values' lists {len(self.values)} p values; at most {MAX_GRID_POINTS} are allowed."
            )
        if not self.values:
            decades = math.log10(self.p_max) - math.log10(self.p_min)
            n = round(decades * self.points_per_decade) + 1
            if n > MAX_GRID_POINTS:
                raise ValueError(
                    f"The grid from p_min to p_max at {self.points_per_decade} points per decade "
                    f"has {n} points; at most {MAX_GRID_POINTS} are allowed."
                )
        for i, v in enumerate(self.values):
            check_probability(f"values[{i}]", v, owner="grid", low_open=True)
        if len(set(self.values)) != len(self.values):
            raise ValueError("'values' must not repeat a p value.")

    def ps(self) -> tuple[float, ...]:
        """The grid, ascending."""
        if self.values:
            return tuple(sorted(self.values))
        decades = math.log10(self.p_max) - math.log10(self.p_min)
        return log_grid(self.p_min, self.p_max, max(2, round(decades * self.points_per_decade) + 1))


#: Digits of the decimal arithmetic behind :func:`log_grid` and :func:`pow10`.
_DIGITS = 34


def log_grid(p_min: float, p_max: float, n: int) -> tuple[float, ...]:
    """``n`` values evenly spaced in log10 from ``p_min`` to ``p_max``, the same on every machine.

    Computed in decimal arithmetic (software, no SIMD dispatch) from the decimal numbers the
    ends print as (``1e-06``, so the decades are exact powers of ten), and rounded once to the
    nearest float. ``np.logspace`` is not the same everywhere: its power differs in the last
    bit between processors (9.999999999999999e-06 for 1e-05 with AVX-512, 1e-05 with AVX2), and
    a grid value names its points and sets their rates, so a run resumed or repeated on another
    machine would not match.
    """
    with decimal.localcontext() as ctx:
        ctx.prec = _DIGITS
        lo, hi = (decimal.Decimal(repr(p)).log10() for p in (p_min, p_max))
        return tuple(float(10 ** (lo + (hi - lo) * i / (n - 1))) for i in range(n))


def pow10(x: float) -> float:
    """``10**x`` rounded once to the nearest float, the same on every machine (see
    :func:`log_grid`)."""
    with decimal.localcontext() as ctx:
        ctx.prec = _DIGITS
        return float(10 ** decimal.Decimal(x))


@dataclass(frozen=True)
class WorkloadSpec:
    """A workload by registered name, with an optional checkpoint and options."""

    name: str
    label: str = ""
    checkpoint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    granularity: str = ""  # empty: the sweep's granularity

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)
        if self.granularity and self.granularity not in GRANULARITIES:
            raise ValueError(
                f"'granularity' of workload {self.label!r} must be one of "
                f"{', '.join(GRANULARITIES)}. Got {self.granularity!r}."
            )


@dataclass(frozen=True)
class PolicySpec:
    """A policy by name, or a table with ``kind`` and the policy's own parameters."""

    label: str
    spec: str | dict[str, Any]


@dataclass(frozen=True)
class SweepConfig:
    """How accuracy points are evaluated (all of it changes results, so all is modelled)."""

    repeats: int = 5
    images: int = 0  # 0: the whole split; more than the split holds is refused (check_files)
    split: str = "test"
    coupled: bool = True
    batch_size: int = 256
    engine: str = "auto"
    fused: bool = False
    granularity: str = ""  # module | op | fused; empty: "fused" when fused = true, else "module"
    noisy_input: bool = False
    # The default takes at most what a small training split holds; a count given explicitly
    # beyond the split is refused (memsim.experiment.plugins.calibration_images).
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES
    # Float formats compute in their storage dtype ("storage"); "float32" computes narrower
    # formats in float32 with every write still rounded to the storage format (same numbers at
    # the same seed, far faster on a CPU; see memsim.inference.network). int8/int4 compute in
    # float32 whatever it says: an experiment storing only those refuses another value
    # (memsim.experiment.load.check_compute_dtype, once the policies' stored formats are known).
    compute_dtype: str = "storage"
    # Compute as a processor that flushes subnormal floats to zero (CPU only; far faster on
    # Intel CPUs under noise, see memsim.inference.denormals). Off: IEEE arithmetic.
    flush_denormals: bool = False

    def __post_init__(self) -> None:
        if self.granularity and self.granularity not in GRANULARITIES:
            raise ValueError(
                f"'granularity' must be one of {', '.join(GRANULARITIES)}. Got {self.granularity!r}."
            )
        if self.fused and self.granularity not in ("", "fused"):
            raise ValueError(
                f"'fused = true' means granularity \"fused\", but 'granularity' is {self.granularity!r}."
            )
        # One spelling per experiment: fused = true and granularity = "fused" are the same run.
        object.__setattr__(self, "fused", self.fused or self.granularity == "fused")
        object.__setattr__(
            self, "granularity", "fused" if self.fused else self.granularity or "module"
        )
        check_range("sweep", "repeats", self.repeats, kind=int, low=1, high=MAX_REPEATS)
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(
                f"The 'compute_dtype' parameter of sweep must be one of {list(COMPUTE_DTYPES)}. "
                f"Got {self.compute_dtype!r}."
            )
        check_range("sweep", "images", self.images, kind=int, low=0, high=MAX_IMAGES)
        check_range("sweep", "batch_size", self.batch_size, kind=int, low=1, high=65536)
        check_range(
            "sweep", "calibration_images", self.calibration_images, kind=int, low=1, high=MAX_IMAGES
        )
        if self.split not in ("train", "test"):
            raise ValueError(
                f"The 'split' parameter of sweep must be train or test. Got {self.split!r}."
            )
        if not isinstance(self.engine, str) or not self.engine:
            raise ValueError(
                f"The 'engine' parameter of sweep must be an engine name. Got {self.engine!r}."
            )


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
        check_range("adaptive", "refine_points", self.refine_points, kind=int, low=3, high=1000)
        check_range("adaptive", "refine_decades", self.refine_decades, low=0, low_open=True)
        check_range("adaptive", "min_repeats", self.min_repeats, kind=int, low=2)
        check_range(
            "adaptive",
            "max_repeats",
            self.max_repeats,
            kind=int,
            low=self.min_repeats,
            high=MAX_REPEATS,
        )
        check_range("adaptive", "ci_decades", self.ci_decades, low=0, low_open=True)


@dataclass(frozen=True)
class FitConfig:
    """Logistic fit options (docs/design.md §7)."""

    scale: Literal["log10p", "p"] = "log10p"
    bootstrap: int = 200
    confidence: float = 0.95

    def __post_init__(self) -> None:
        # The loader checks Literal fields; a config built in Python is checked here.
        check_choice("fit", "scale", self.scale, ("log10p", "p"))
        check_range("fit", "bootstrap", self.bootstrap, kind=int, low=0, high=MAX_BOOTSTRAP)
        check_range(
            "fit", "confidence", self.confidence, low=0, high=1, low_open=True, high_open=True
        )


#: Default ``memory.latency_draws``: five draws give the spread of latency to about ±35 %
#: (the sd's relative standard error, 1/√(2·4)), enough to say whether it matters.
DEFAULT_LATENCY_DRAWS = 5


@dataclass(frozen=True)
class MemoryConfig:
    """Cost side: the memory-system preset and how the write trace is measured."""

    enabled: bool = True
    preset: str = "default"
    trace_images: int = 16
    #: Simulated inferences whose latencies give ``latency_ns_sd`` where pulse rounds are
    #: random (write-verify, a comparison write's unchanged units); 1 where they are not.
    latency_draws: int = DEFAULT_LATENCY_DRAWS

    def __post_init__(self) -> None:
        check_range("memory", "trace_images", self.trace_images, kind=int, low=1, high=100_000)
        check_range("memory", "latency_draws", self.latency_draws, kind=int, low=2, high=1000)


@dataclass(frozen=True)
class ReferenceConfig:
    """The one policy and programming condition that overheads are ratios to.

    Empty values mean the defaults: the experiment's ``baseline`` policy and the ``nominal``
    condition (the first listed condition when ``nominal`` is not among them).
    """

    policy: str = ""
    condition: str = ""


@dataclass(frozen=True)
class ReportConfig:
    """How the report presents results (it never changes a simulated number)."""

    reference: ReferenceConfig = field(default_factory=ReferenceConfig)


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
    report: ReportConfig = field(default_factory=ReportConfig)

    def __post_init__(self) -> None:
        check_range("the experiment", "seed", self.seed, kind=int, low=0, high=SEED_MAX)
        for key in ("name", "description", "baseline"):
            if not isinstance(getattr(self, key), str):
                raise TypeError(f"'{key}' must be a string. Got {getattr(self, key)!r}.")
        check_choice("the experiment", "incompatible", self.incompatible, ("skip", "error"))
        labels = [p.label for p in self.policies]
        if self.baseline not in ("", "baseline") and self.baseline not in labels:
            # Empty or the default: the first policy where none is labelled "baseline".
            raise ValueError(
                f"'baseline' must be one of the policies {labels}. Got {self.baseline!r}."
            )
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
            check_probability(
                "operating_p", self.operating_p, owner="the experiment", low_open=True
            )
        ref = self.report.reference
        labels = [p.label for p in self.policies]
        if ref.policy and ref.policy not in labels:
            raise ValueError(
                f"'report.reference.policy' must be one of the policies {labels}. "
                f"Got {ref.policy!r}."
            )
        if ref.condition and self.conditions and ref.condition not in self.conditions:
            raise ValueError(
                f"'report.reference.condition' must be one of the conditions "
                f"{list(self.conditions)}. Got {ref.condition!r}."
            )

    def granularity_of(self, workload: WorkloadSpec) -> str:
        """The write-point granularity of one workload (its own, else the sweep's)."""
        return workload.granularity or self.sweep.granularity

    def to_dict(self) -> dict[str, Any]:
        """Plain data (what ``config.json`` holds and the hash is taken of).

        The module and fused granularities are spelt by ``sweep.fused`` alone, as before
        granularity existed, so older experiments keep their hash.
        """
        data = to_dict(self)
        if data["sweep"]["granularity"] in ("module", "fused"):
            del data["sweep"]["granularity"]
        data["workloads"] = [_compact_workload(w) for w in self.workloads]
        data["policies"] = [{"label": p.label, "spec": p.spec} for p in self.policies]
        return data

    def to_toml_data(self) -> dict[str, Any]:
        """Plain data in the config-file layout (``config.toml``: loads back to this config)."""
        data = self.to_dict()
        data["workloads"] = [
            w.name
            if (w.label == w.name and w.checkpoint is None and not w.options and not w.granularity)
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

    def without_new_defaults(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` (from :meth:`to_dict`) without the keys added after experiments and
        searches were stored, where they hold their defaults, so that those keep their
        identities (:meth:`digest`, :func:`memsim.studies.search.search_digest`)."""
        if self.memory.latency_draws == DEFAULT_LATENCY_DRAWS:
            data = {**data, "memory": dict(data["memory"])}
            del data["memory"]["latency_draws"]
        if not self.sweep.flush_denormals:
            data = {**data, "sweep": dict(data["sweep"])}
            del data["sweep"]["flush_denormals"]
        return data

    def digest(self) -> str:
        """The experiment's identity: a hash of :meth:`to_dict`.

        Adaptive options are left out while adaptive mode is off: they change nothing then;
        ``sweep.compute_dtype`` is left out at its default.
        """
        from memsim.experiment.store import config_hash

        data = self.to_dict()
        if not self.adaptive.enabled:
            data["adaptive"] = {"enabled": False}
        if self.report == ReportConfig():
            # Results folders made before the report options existed keep their identity.
            del data["report"]
        data = self.without_new_defaults(data)
        if self.sweep.compute_dtype == "storage":
            # Added after results existed: the default leaves earlier experiments' hashes as they were.
            del data["sweep"]["compute_dtype"]
        return config_hash(data)

    @property
    def baseline_label(self) -> str:
        """The policy that overheads are measured against (first policy if absent)."""
        labels = [p.label for p in self.policies]
        return self.baseline if self.baseline in labels else labels[0]


@dataclass(frozen=True, order=True)
class Curve:
    """One accuracy-vs-p curve: labels from the experiment config."""

    workload: str
    format: str
    policy: str
    mask: str = "all"


def check_gpu_share(gpus_per_point: float) -> None:
    """A worker reserves a fraction of one GPU or one whole GPU (a point computes on one):
    0.25 and 1 are shares, 1.5 and 2 are not."""
    if gpus_per_point > 1:
        raise ValueError(
            f"gpus_per_point = {gpus_per_point:g}: a point computes on one GPU, so a worker "
            "reserves a fraction of one (below 1) or one whole GPU (1); more would sit idle."
        )


@dataclass(frozen=True)
class RunOptions:
    """How an experiment runs; never part of its identity."""

    workers: int = 1
    out: Path | None = None
    device: str = "cpu"
    progress: bool = True
    # Ray (memsim.experiment.ray_executor): ``workers`` actors on a local Ray instance, or on
    # the cluster at ``address``; ``gpus_per_point`` < 1 packs several actors on one GPU.
    executor: str = "local"
    address: str | None = None
    gpus_per_point: float = 0.0

    def __post_init__(self) -> None:
        check_range("run", "workers", self.workers, kind=int, low=1, high=1024)
        if self.executor not in EXECUTORS:
            raise ValueError(
                f"The 'executor' parameter of run must be one of {list(EXECUTORS)}. "
                f"Got {self.executor!r}."
            )
        check_range("run", "gpus_per_point", self.gpus_per_point, low=0, high=1024)
        check_gpu_share(float(self.gpus_per_point))

    def check_combination(self) -> None:
        """Refuse Ray-only options on a local run. Checked when a run starts
        (:func:`memsim.experiment.launch.check_executor`), not when the options are built: a
        config's ``[run]`` table and the command line's flags are merged first."""
        if self.executor != "ray" and (self.address is not None or self.gpus_per_point):
            given = ", ".join(
                f"{k} = {v!r}"
                for k, v in (("address", self.address), ("gpus_per_point", self.gpus_per_point))
                if v
            )
            raise ValueError(
                f"The 'address' and 'gpus_per_point' run options need executor = \"ray\". Got "
                f"{given} with executor = {self.executor!r}."
            )


# --------------------------------------------------------------------------- loading


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


def parse_config(
    data: Mapping[str, Any], *, source: Any = None
) -> tuple[ExperimentConfig, RunOptions]:
    """Validate parsed TOML into an :class:`ExperimentConfig` and :class:`RunOptions`.

    Checks keys, types and ranges only; :func:`memsim.experiment.load.parse_experiment` also
    resolves the plug-in names (workloads, policies, presets).
    """
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
    data = {
        "name": w.name,
        "label": w.label,
        "checkpoint": w.checkpoint,
        "options": dict(w.options),
    }
    if w.granularity:
        data["granularity"] = w.granularity
    return data


def replace_config(config: ExperimentConfig, **changes: Any) -> ExperimentConfig:
    """A copy of ``config`` with top-level fields replaced (validated again)."""
    return dataclasses.replace(config, **changes)
