"""The binarized-network energy study: programming condition → weight-memory energy and accuracy.

A study built on the experiment machinery (the executor and results store of
:mod:`memsim.experiment`)::

    BNN workload ─ plain + error-aware networks: shipped ones copied, others trained
        │          (workloads.train, the workload's hooks)
        │
        ├─ BER grid:   p → FaultMap (memsim.inference.faults) in a NoisyNetwork → accuracy
        └─ conditions: device preset → (p01, p10) per stored bit → accuracy
                                      → programming energy of the whole weight memory
        ▼
    points.jsonl (ResultsStore: one fsync-ed line per point, resumable) → points.csv
        → summary.csv, comparison.csv (memsim.studies.bnn_summary) → report (memsim.report.bnn)

Energy model (documented choice): every binary weight is programmed exactly once, from an
erased state, with one pulse: a SET (``e_set_pj``) for a +1 (bit 1 = LRS) and a RESET
(``e_reset_pj``) for a −1. A 2T2R cell programs both devices, one SET and one RESET per bit.
So ``E = n_ones·e_set + n_zeros·e_reset`` (1T1R) or ``E = n_bits·(e_set + e_reset)`` (2T2R),
with the counts taken from the trained network's actual weight signs. Real-valued first and
last layers of convolutional BNNs are not in the RRAM weight memory and are not counted.

Accuracy at a rate is the mean over ``repeats`` fault-map draws (one per model load, seeded
``child_seed(seed, "faults", repeat)``). Draw ``r`` uses the same uniforms for every rate and
both networks (common random numbers, see :mod:`memsim.inference.faults`). Tolerance, lowest
sufficient energy and their uncertainty: :mod:`memsim.studies.bnn_summary`.
"""

from __future__ import annotations

import dataclasses
import filecmp
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from memsim.checks import check_non_negative, check_positive, check_probability
from memsim.config import (
    CONFIG_DIR,
    ConfigError,
    build,
    check_choice,
    check_range,
    load_toml,
    to_dict,
)
from memsim.experiment.store import RowSchema, point_id
from memsim.inference.faults import CELLS, cell_rates, check_sense_offset
from memsim.rng import child_seed
from memsim.studies.bnn_summary import NETWORKS, compare, point_means, summarize, tolerated_ber
from workloads.train import TrainConfig

log = logging.getLogger(__name__)

__all__ = [
    "BNN_ROWS",
    "NETWORKS",
    "POINT_COLUMNS",
    "BNNEvaluator",
    "BNNPoint",
    "BNNStudyConfig",
    "check_study",
    "compare",
    "condition_table",
    "load_study_config",
    "parse_study_config",
    "plan_points",
    "point_means",
    "programming_energy_pj",
    "run_study",
    "study_conditions",
    "summarize",
    "tolerated_ber",
]

#: The study's ``[study]`` table: ``kind = "bnn"`` makes ``memsim run`` run this study.
STUDY_KIND = "bnn"
#: Most fault-map draws per point (``repeats``; ``memsim bnn --repeats`` has the same bound).
MAX_REPEATS = 10_000
POINT_COLUMNS = (
    "network",
    "sweep",
    "condition",
    "p01",
    "p10",
    "repeat",
    "seed",
    "accuracy",
    "n_images",
    "n_lost",
    "n_gained",
    "energy_pj",
    "point_id",
)
#: Rows of the study in the results store.
BNN_ROWS = RowSchema(
    columns=POINT_COLUMNS,
    key_columns=("network", "sweep", "condition", "p01", "p10", "repeat"),
    float_columns=("p01", "p10", "accuracy", "energy_pj"),
)


def default_ber_grid() -> tuple[float, ...]:
    """1e-5 … 0.3, three points per decade (1, 2, 5)."""
    return tuple(m * 10.0**e for e in range(-5, 0) for m in (1, 2, 5)) + (0.2, 0.3)


def _default_recipe() -> TrainConfig:
    from workloads import get_workload

    recipe = get_workload("bnn_digits").default_recipe()
    if recipe is None:
        raise RuntimeError("The bnn_digits workload has no default training recipe.")
    return recipe


@dataclass(frozen=True)
class BNNStudyConfig:
    """What the study models (see the module docstring).

    Parameters
    ----------
    workload : str
        A registered binarized workload (``bnn_digits``, ``bnn_mnist``, ``bnn_cifar10``).
    workload_options : dict
        Options of the workload's factory (``data_root``, ``cfg``...).
    train : TrainConfig
        Recipe of both networks; in a config file the ``[train]`` table overrides the
        workload's default recipe. Its ``weight_noise_p`` must be 0: the error-aware
        network uses the same recipe with ``train_ber`` below.
    train_ber : float
        Weight-sign flip rate of error-aware training.
    plain_checkpoint, aware_checkpoint : str, optional
        Trained networks to use instead of training them.
    ber_grid : list of float
        Symmetric bit error rates of the BER sweep.
    conditions : list of str
        Programming-condition presets (names or TOML paths); empty = all shipped presets.
    compliance_ratios : list of float
        Extra conditions: the nominal one at these compliance-current ratios
        (:func:`memsim.device.scale_compliance`).
    cell : {"1t1r", "2t2r"}
    sigma_sa_ln : float
        Sense-amplifier offset of 2T2R reads (ln-R units).
    activation_noise : bool
        Also write the binary activations with the same per-bit rates (fresh per write).
    repeats : int
        Fault-map draws per point, at most ``MAX_REPEATS``.
    eval_limit : int, optional
        Test samples (a fixed stratified prefix); default all.
    tolerance_points : float
        Accuracy loss (percentage points) that still counts as tolerated.
    confidence : float
        Confidence of the bounds on tolerance and energy (:mod:`memsim.studies.bnn_summary`).
    seed : int
    """

    workload: str = "bnn_digits"
    workload_options: dict = field(default_factory=dict)
    train: TrainConfig = field(default_factory=_default_recipe)
    train_ber: float = 0.04
    plain_checkpoint: str | None = None
    aware_checkpoint: str | None = None
    ber_grid: tuple[float, ...] = field(default_factory=default_ber_grid)
    conditions: tuple[str, ...] = ()
    compliance_ratios: tuple[float, ...] = ()
    cell: str = "1t1r"
    sigma_sa_ln: float = 0.0
    activation_noise: bool = False
    repeats: int = 5
    eval_limit: int | None = None
    tolerance_points: float = 1.0
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        own = "BNNStudyConfig"
        if self.train.weight_noisy:
            raise ValueError(
                "The 'train.weight_noise_p' parameter of BNNStudyConfig must be 0 (the plain recipe); "
                f"set the top-level 'train_ber' for the error-aware network. Got {self.train.weight_noise_p!r}."
            )
        check_range(
            own, "train_ber", self.train_ber, low=0.0, high=0.5, low_open=True, high_open=True
        )
        if not self.ber_grid:
            raise ValueError(f"The 'ber_grid' parameter of {own} must list at least one rate.")
        for p in self.ber_grid:
            check_probability("ber_grid", p, owner=own, low_open=True)
        object.__setattr__(self, "ber_grid", tuple(sorted(float(p) for p in self.ber_grid)))
        for r in self.compliance_ratios:
            check_range(own, "compliance_ratios", r, low=0.0, high=1.0, low_open=True)
        check_choice(own, "cell", self.cell, CELLS)
        check_non_negative(own, "sigma_sa_ln", self.sigma_sa_ln)  # finite: inf is refused
        check_sense_offset(self.cell, self.sigma_sa_ln, own)
        check_range(own, "repeats", self.repeats, kind=int, low=1, high=MAX_REPEATS)
        check_positive(own, "tolerance_points", self.tolerance_points)
        check_range(
            own, "confidence", self.confidence, low=0.0, high=1.0, low_open=True, high_open=True
        )
        check_range(own, "seed", self.seed, kind=int, low=0)
        if self.eval_limit is not None:
            check_range(own, "eval_limit", self.eval_limit, kind=int, low=1)

    def recipe(self, network: str) -> TrainConfig:
        """The training recipe of ``network`` (``plain`` or ``error_aware``)."""
        if network == "plain":
            return self.train
        return dataclasses.replace(self.train, weight_noise_p=self.train_ber)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``config.json``, and the identity hashed by the results store)."""
        return {"study": {"kind": STUDY_KIND}, **to_dict(self)}


def parse_study_config(data: Mapping[str, Any], *, source: Any = None) -> BNNStudyConfig:
    """Validate parsed TOML into a :class:`BNNStudyConfig`.

    The ``[study]`` table (``kind = "bnn"``) is optional here; ``[train]`` overrides the
    workload's default recipe.
    """
    data = dict(data)
    study = data.pop("study", {"kind": STUDY_KIND})
    if not isinstance(study, Mapping) or dict(study) != {"kind": STUDY_KIND}:
        raise ConfigError(
            f"'study' in {source} must be the table {{kind = \"{STUDY_KIND}\"}} for a "
            f"binarized-network study. Got {study!r}."
        )
    name = data.get("workload", BNNStudyConfig.workload)
    options = data.get("workload_options", {})
    workload = _workload(name, options, source)
    base = workload.default_recipe() or TrainConfig()
    train = data.get("train", {})
    if not isinstance(train, Mapping):
        raise ConfigError(f"'train' in {source} must be a table. Got {train!r}.")
    data["train"] = {**to_dict(base), **train}
    config = build(BNNStudyConfig, data, source=source)
    check_study(config, source=source, workload=workload)
    return config


def load_study_config(
    name_or_path: str | os.PathLike, *, overrides: Sequence[str] = ()
) -> BNNStudyConfig:
    """A study config from a TOML path or a name under ``configs/bnn/`` (``"digits"``, or
    ``"bnn/digits"`` as ``memsim run`` names it).

    ``overrides`` are ``--set`` assignments (``repeats=2``, ``train.epochs=1``).
    """
    from memsim.experiment.config import apply_overrides

    path = Path(name_or_path)
    if not path.is_file():
        name = str(name_or_path).removeprefix("bnn/").removesuffix(".toml")
        named = CONFIG_DIR / "bnn" / f"{name}.toml"
        if not named.is_file():
            known = sorted(p.stem for p in (CONFIG_DIR / "bnn").glob("*.toml"))
            raise FileNotFoundError(
                f"BNN study config {name_or_path} not found (shipped: {', '.join(known)})."
            )
        path = named
    data = apply_overrides(load_toml(path), overrides, path)
    where = f"{path} (with --set {', '.join(overrides)})" if overrides else path
    return parse_study_config(data, source=where)


def _input_error(
    key: str, value: Any, problem: Any, source: Any = None, *, entry: bool = False
) -> ConfigError:
    """One line naming the study's key, its value (or list entry) and, when known, the file."""
    where = f" in {source}" if source is not None else ""
    text = " ".join(str(problem).split()) or type(problem).__name__
    what = "entry" if entry else "value"
    return ConfigError(f"The '{key}' {what} {value!r} of the BNN study{where}: {text}")


def check_study(config: BNNStudyConfig, *, source: Any = None, workload: Any = None) -> None:
    """Everything about ``config`` that can be checked without training or evaluating.

    Called by :func:`parse_study_config` (so ``memsim bnn`` and ``memsim run`` refuse a bad
    config before anything runs) and by :func:`run_study` before it claims its output folder:
    a study that would fail later must not write a folder that a corrected re-run then
    refuses. Checks the workload (registered, its options accepted, a binarized network),
    ``eval_limit`` against its test split and, when a network is trained, ``train.limit``
    against its training split, the training recipe's numbers (finite;
    :class:`~workloads.train.TrainConfig` checks the rest, its noise format and bits included,
    when it is built) and the hooks of the networks it trains, the programming conditions and
    their per-bit rates in the configured cell, and the given checkpoints (files that load into
    the workload's network, read with ``weights_only=True``). With both checkpoints given the
    recipe is not used; its keys are still checked as values, never against the training data.

    Raises
    ------
    ConfigError
        A bad value; the one-line message names the key, the value and ``source``.
    FileNotFoundError
        A given checkpoint does not exist.
    """
    # The workload: registered, its options accepted (``workload``: already built from them),
    # a binarized network.
    if workload is None:
        workload = _workload(config.workload, config.workload_options, source)
    if not _is_binarized(workload):
        raise _input_error(
            "workload",
            config.workload,
            "not a binarized network (it has no binary-weight layers); binarized workloads: "
            f"{', '.join(_binarized_names())}.",
            source,
        )

    # The images it trains and evaluates on: no more than the splits hold, where known. The
    # training split only matters when a network is trained: with both checkpoints given, the
    # recipe is checked as values only (as its hooks are, below), never against data it does
    # not use (a shipped config's ``train.limit`` on a data set with a smaller training split).
    given = {"plain": config.plain_checkpoint, "error_aware": config.aware_checkpoint}
    trained = [name for name in NETWORKS if not given[name]]
    counts = [("train.limit", "train", config.train.limit)] if trained else []
    for key, split, count in [*counts, ("eval_limit", "test", config.eval_limit)]:
        try:
            workload.check_count(split, count)
        except ValueError as exc:
            raise _input_error(key, count, exc, source) from None

    # The training recipe: finite numbers, and hooks for the networks that will be trained.
    for f in dataclasses.fields(config.train):
        value = getattr(config.train, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise _input_error(f"train.{f.name}", value, "must be a finite number.", source)
    for name in trained:
        try:
            workload.train_hooks(config.recipe(name))
        except (TypeError, ValueError) as exc:
            key, value = (
                ("train_ber", config.train_ber)
                if name == "error_aware"
                else ("workload", config.workload)
            )
            raise _input_error(key, value, exc, source) from None

    # The programming conditions and their per-bit rates in this cell.
    for condition in study_conditions(config, source=source):
        try:
            for p in cell_rates(condition, config.cell, config.sigma_sa_ln):
                check_probability("p", p)
        except (TypeError, ValueError) as exc:
            raise _input_error(
                "conditions", condition.name,
                f"no per-bit rates in a {config.cell} cell with sigma_sa_ln "
                f"{config.sigma_sa_ln!r}: {exc}", source, entry=True,
            ) from None  # fmt: skip

    # The given checkpoints: files that load into this workload's network.
    for name in NETWORKS:
        checkpoint = given[name]
        if not checkpoint:
            continue
        key = "plain_checkpoint" if name == "plain" else "aware_checkpoint"
        path = Path(checkpoint)
        if not path.exists():
            where = f" in {source}" if source is not None else ""
            raise FileNotFoundError(
                f"The '{key}' value {checkpoint!r} of the BNN study{where}: "
                f"checkpoint file {path} does not exist."
            )
        if not path.is_file():
            raise _input_error(key, checkpoint, f"{path} is not a checkpoint file.", source)
        try:
            workload.load_model(path)  # torch.load(..., weights_only=True): never runs code
        except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise _input_error(key, checkpoint, exc, source) from None


def _workload(name: Any, options: Any, source: Any = None):
    """The study's workload, built with its options; a one-line error names the bad key."""
    from workloads import get_workload
    from workloads.base import WORKLOADS

    if not isinstance(name, str) or name not in WORKLOADS:
        try:
            WORKLOADS.get(name)  # the registry's message lists the known names
        except (TypeError, ValueError) as exc:
            raise _input_error("workload", name, exc, source) from None
    if not isinstance(options, Mapping):
        raise _input_error("workload_options", options, "must be a table of options.", source)
    try:
        return get_workload(name, **options)
    except (TypeError, ValueError, OSError) as exc:
        raise _input_error("workload_options", dict(options), exc, source) from None


def _is_binarized(workload) -> bool:
    """Whether ``workload``'s network stores binary weights (what the study programs)."""
    from memsim.inference.binary import binary_weight_layers
    from workloads.bnn import BNNWorkload

    if isinstance(workload, BNNWorkload):
        return True
    try:
        model = workload.build_model()
    except Exception:  # a network that cannot even be built is no binarized one
        return False
    return any(True for _ in binary_weight_layers(model))


def _binarized_names() -> list[str]:
    from workloads.base import WORKLOADS
    from workloads.bnn import BNNWorkload

    names = []
    for name in WORKLOADS.names():
        factory = WORKLOADS.get(name)
        if isinstance(factory, type) and issubclass(factory, BNNWorkload):
            names.append(name)
    return names


# ----------------------------------------------------------------------------- pieces


def programming_energy_pj(bits: dict[str, int], condition, cell: str = "1t1r") -> float:
    """Energy to program a weight memory once (see the module docstring)."""
    if cell == "2t2r":
        return bits["bits"] * (condition.e_set_pj + condition.e_reset_pj)
    return bits["ones"] * condition.e_set_pj + bits["zeros"] * condition.e_reset_pj


def study_conditions(config: BNNStudyConfig, *, source: Any = None) -> list:
    """The programming conditions of the study, from the most to the least energy per pulse.

    Raises
    ------
    ConfigError
        An unknown or malformed condition, or a compliance ratio the nominal condition cannot
        be scaled by; the message names the entry (and ``source`` when given).
    """
    from memsim.device import load_condition, load_conditions, scale_compliance

    conditions = []
    for entry in config.conditions:
        try:
            conditions.append(load_condition(entry))
        except (OSError, TypeError, ValueError) as exc:
            raise _input_error("conditions", entry, exc, source, entry=True) from None
    if not config.conditions:
        conditions = load_conditions()
    if config.compliance_ratios:
        nominal = load_condition("nominal")
        for ratio in config.compliance_ratios:
            try:
                conditions.append(scale_compliance(nominal, ratio))
            except ValueError as exc:
                raise _input_error(
                    "compliance_ratios", ratio, f"not a valid scaling of 'nominal': {exc}", source,
                    entry=True,
                ) from None  # fmt: skip
    return sorted(conditions, key=lambda c: (-(c.e_set_pj + c.e_reset_pj), c.p_bf))


def condition_table(
    conditions: list, bits: dict[str, dict[str, int]], config: BNNStudyConfig
) -> pd.DataFrame:
    """One row per (network, condition): rates and the weight memory's programming energy."""
    rows = []
    for name, b in bits.items():
        for c in conditions:
            p01, p10 = cell_rates(c, config.cell, config.sigma_sa_ln)
            rows.append(
                {
                    "network": name, "condition": c.name, "cell": config.cell, "p01": p01, "p10": p10,
                    "e_set_pj": c.e_set_pj, "e_reset_pj": c.e_reset_pj, "weight_bits": b["bits"],
                    "ones": b["ones"], "energy_pj": programming_energy_pj(b, c, config.cell),
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- points


@dataclass(frozen=True)
class BNNPoint:
    """One point of the study: a network at one rate (or condition) and one fault-map draw.

    ``fault_seed`` is shared by every point of one repeat (coupled maps); ``act_seed`` seeds
    the activation writes when activations are noisy.
    """

    network: str
    sweep: str  # "clean", "ber" or "condition"
    condition: str
    p01: float
    p10: float
    repeat: int
    energy_pj: float
    fault_seed: int
    act_seed: int

    def key(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "sweep": self.sweep,
            "condition": self.condition,
            "p01": float(self.p01),
            "p10": float(self.p10),
            "repeat": int(self.repeat),
        }

    @property
    def id(self) -> str:
        return point_id(self.key(), BNN_ROWS)

    def row(self, outcome: Mapping[str, Any]) -> dict[str, Any]:
        """The stored row of this point once evaluated."""
        return {
            **self.key(),
            "seed": self.fault_seed,
            "accuracy": float(outcome["accuracy"]),
            "n_images": int(outcome["n_images"]),
            "n_lost": int(outcome["n_lost"]),
            "n_gained": int(outcome["n_gained"]),
            "energy_pj": float(self.energy_pj),
            "point_id": self.id,
        }


def _to_row(task: BNNPoint, outcome: dict) -> dict[str, Any]:
    return task.row(outcome)


def plan_points(config: BNNStudyConfig, conditions: list, bits: dict) -> list[BNNPoint]:
    """Every point of the study, repeat by repeat (the error-free network once per network)."""
    rates = [(c, *cell_rates(c, config.cell, config.sigma_sa_ln)) for c in conditions]
    points = []
    for repeat in range(config.repeats):
        fault_seed = child_seed(config.seed, "faults", repeat)
        for name in NETWORKS:
            plan: list[tuple[str, str, float, float, float]] = []
            if repeat == 0:  # the error-free network is deterministic: measured once
                plan.append(("clean", "", 0.0, 0.0, math.nan))
            plan += [("ber", "", p, p, math.nan) for p in config.ber_grid]
            plan += [
                ("condition", c.name, p01, p10, programming_energy_pj(bits[name], c, config.cell))
                for c, p01, p10 in rates
            ]
            for sweep, label, p01, p10, energy in plan:
                act_seed = child_seed(config.seed, "act", sweep, label, p01, repeat)
                points.append(
                    BNNPoint(name, sweep, label, p01, p10, repeat, energy, fault_seed, act_seed)
                )
    return points


@dataclass(frozen=True)
class BNNEvaluator:
    """Evaluates :class:`BNNPoint` tasks: a NoisyNetwork with the point's fault map.

    Picklable: workers load the networks (from checkpoints) and the data once per process.
    Besides the accuracy it counts, image by image, how many the faults made wrong
    (``n_lost``) and right (``n_gained``) against the error-free network: the paired
    test-set uncertainty of :mod:`memsim.studies.bnn_summary` needs them.
    """

    workload: str
    workload_options: Mapping[str, Any]
    checkpoints: tuple[tuple[str, str], ...]
    eval_limit: int | None = None
    activation_noise: bool = False
    batch_size: int = 500

    def __call__(self, task: BNNPoint) -> dict:
        from memsim.inference.faults import FaultMap, activation_channel, fault_uniforms
        from memsim.inference.network import NoisyNetwork
        from policies.channels import BinaryChannel

        model, x, y = self._model(task.network)
        clean = self._clean(task.network)
        if task.sweep == "clean":
            hits = clean
        else:
            uniforms = _cached(
                ("uniforms", self, task.network, task.fault_seed),
                lambda: fault_uniforms(model, task.fault_seed),
            )
            faults = FaultMap.draw(
                model, task.p01, task.p10, seed=task.fault_seed, uniforms=uniforms
            )
            net = NoisyNetwork(model, "float32", fault_map=faults)
            act = (
                activation_channel(model, BinaryChannel(task.p01, task.p10))
                if self.activation_noise
                else None
            )
            res = net.evaluate(
                x, y, act, seed=task.act_seed, batch_size=self.batch_size, per_image=True
            )
            hits = res.per_image
        return {
            "accuracy": float(hits.double().mean()),
            "n_images": len(hits),
            "n_lost": int((clean & ~hits).sum()),
            "n_gained": int((~clean & hits).sum()),
        }

    def _model(self, network: str):
        def build():
            from workloads import get_workload

            workload = get_workload(self.workload, **dict(self.workload_options))
            path = dict(self.checkpoints)[network]
            x, y = workload.samples("test", self.eval_limit, "'eval_limit'")
            return workload.load_model(path), x, y

        return _cached(("model", self, network), build)

    def _clean(self, network: str):
        def build():
            from memsim.inference.network import NoisyNetwork

            model, x, y = self._model(network)
            res = NoisyNetwork(model, "float32").evaluate(
                x, y, None, seed=0, batch_size=self.batch_size, per_image=True
            )
            return res.per_image

        return _cached(("clean", self, network), build)

    def __hash__(self) -> int:
        return hash((self.workload, json.dumps(dict(self.workload_options), sort_keys=True, default=str),
                     self.checkpoints, self.eval_limit, self.activation_noise, self.batch_size))  # fmt: skip


_CACHE: dict = {}


def _cached(key, build):
    # Per-process cache: a worker loads each network and data set once, not once per point.
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


# ----------------------------------------------------------------------------- running


def networks(
    config: BNNStudyConfig, workload, out: Path, *, progress: bool = False
) -> dict[str, Path]:
    """Checkpoints of the plain and the error-aware network: given ones, or copied from
    :data:`workloads.bnn.SHIPPED_DIR` into ``out`` where the recipe ships (the same networks
    on every machine: the digits ones of the shipped configs and of lab 5), or trained into it.

    A network an earlier (interrupted) run left in ``out`` with the same recipe is reused, so
    the folder's points all come from one network; where it differs from the shipped one (a
    folder from before that network shipped) a warning says so.
    """
    from workloads.bnn import shipped_network, write_network
    from workloads.checkpoints import load_checkpoint

    given = {"plain": config.plain_checkpoint, "error_aware": config.aware_checkpoint}
    paths = {}
    for name in NETWORKS:
        recipe = config.recipe(name)
        checkpoint = given[name]
        if checkpoint:
            path = Path(checkpoint)
            if not path.is_file():
                raise FileNotFoundError(f"Checkpoint {path} ({name}_checkpoint) does not exist.")
            paths[name] = path
            continue
        path = out / f"{name}.pt"
        if path.is_file():
            if load_checkpoint(path).get("recipe") != dataclasses.asdict(recipe):
                raise ValueError(
                    f"{path} was trained with another recipe; delete it or use another output folder."
                )
            shipped = shipped_network(workload, recipe)
            if shipped is not None and not filecmp.cmp(path, shipped, shallow=False):
                log.warning(
                    "%s is not the network that ships for its recipe (%s): this folder keeps its "
                    "own, trained before it shipped; delete the folder to run the shipped one",
                    path,
                    shipped,
                )
        else:
            write_network(workload, recipe, path, progress=progress)
        paths[name] = path
    return paths


def ship_networks(name_or_path: str | os.PathLike) -> list[Path]:
    """Train the two networks of a study config and ship them (:func:`workloads.bnn.
    write_shipped_weights`), so that every machine runs the same ones; e.g. ``python -c "from
    memsim.studies.bnn import ship_networks as s; s('configs/labs/lab5_bnn.toml')"``. Lab 5's
    key moves with them: regenerate it after (``docs/labs/make_key.py``)."""
    from workloads.bnn import BNNWorkload, write_shipped_weights

    config = load_study_config(name_or_path)
    workload = _workload(config.workload, config.workload_options)
    if not isinstance(workload, BNNWorkload):
        raise ValueError(f"Only BNNWorkload networks ship; {config.workload} is not one.")
    return [write_shipped_weights(workload, config.recipe(name)) for name in NETWORKS]


def default_out(config: BNNStudyConfig) -> Path:
    """``runs/bnn-<workload>-<hash>``: one folder per study identity."""
    from memsim.experiment.store import config_hash

    return Path("runs") / f"bnn-{config.workload}-{config_hash(config.to_dict())[:8]}"


def run_study(
    config: BNNStudyConfig,
    out: str | os.PathLike | None = None,
    *,
    workers: int = 1,
    progress: bool = True,
    executor: str = "local",
    address: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Run (or resume) the study; returns ``{"points", "conditions", "summary", "comparison"}``.

    The points go through the experiment executor into the results store of ``out``
    (``points.jsonl``, appended and fsync-ed point by point, so an interrupted run resumes
    where it stopped, never repeating a point); ``points.csv``, ``conditions.csv``,
    ``summary.csv`` and ``comparison.csv`` are written whole at the end. An ``out`` holding
    another experiment's results is refused (:class:`memsim.errors.ResultsError`).
    A config that cannot run (:func:`check_study`) is refused before anything is written.
    Without ``out`` a temporary folder is used and removed. ``workers`` local processes, or
    with ``executor="ray"`` as many Ray actors (on the cluster at ``address``, else a local Ray
    instance): the points are the same (:mod:`memsim.experiment.ray_executor`).
    """
    if out is None:
        with tempfile.TemporaryDirectory(prefix="memsim-bnn-") as tmp:
            return run_study(
                config, tmp, workers=workers, progress=progress, executor=executor, address=address
            )
    from memsim.experiment.config import RunOptions
    from memsim.experiment.launch import check_executor, executor_for
    from memsim.experiment.points import run_points
    from memsim.experiment.store import (
        ResultsStore,
        config_hash,
        metadata,
        write_csv_atomic,
        write_text_atomic,
    )
    from memsim.inference.faults import weight_bits
    from workloads import get_workload

    check_study(config)  # a bad config writes nothing (no folder a corrected re-run would refuse)
    run = RunOptions(workers=workers, executor=executor, address=address)
    check_executor(run)  # a missing Ray extra, a cluster that does not answer
    folder = Path(out)
    data = config.to_dict()
    digest = config_hash(data)
    with (
        executor_for(run) as pool,  # first: a cluster that cannot place it writes nothing
        ResultsStore.open(folder, config=data, digest=digest, schema=BNN_ROWS) as store,
    ):
        write_text_atomic(
            folder / "config.json", json.dumps(data, indent=1, sort_keys=True, default=str)
        )
        meta = metadata(
            seed=config.seed,
            digest=digest,
            extra={"study": STUDY_KIND, "workers": workers, "executor": executor},
        )
        write_text_atomic(folder / "metadata.json", json.dumps(meta, indent=1, sort_keys=True))
        workload = get_workload(config.workload, **config.workload_options)
        paths = networks(config, workload, folder, progress=progress)
        bits = {name: weight_bits(workload.load_model(path)) for name, path in paths.items()}
        conditions = study_conditions(config)
        cond_frame = condition_table(conditions, bits, config)
        write_csv_atomic(folder / "conditions.csv", cond_frame)
        evaluator = BNNEvaluator(
            config.workload,
            dict(config.workload_options),
            tuple((name, str(path)) for name, path in paths.items()),
            config.eval_limit,
            config.activation_noise,
        )
        tasks = plan_points(config, conditions, bits)
        run_points(tasks, store, pool, evaluator, progress=progress, desc="bnn", to_row=_to_row)
        points = store.points_frame()
        write_csv_atomic(folder / "points.csv", points)
    summary = summarize(points, config.tolerance_points, config.confidence)
    comparison = compare(points, config.tolerance_points, config.confidence, summary=summary)
    write_csv_atomic(folder / "summary.csv", summary)
    write_csv_atomic(folder / "comparison.csv", comparison)
    return {
        "points": points,
        "conditions": cond_frame,
        "summary": summary,
        "comparison": comparison,
    }
