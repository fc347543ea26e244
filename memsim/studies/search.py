"""The mixed-policy search: the cheapest per-layer protection that keeps accuracy.

Data flow (one workload at a time)::

    config: workloads, formats[0], candidate policies (``policies``), device/condition,
            sweep/grid/adaptive/memory tables, and a [search] table (target, objective, …)
        │
        ├─ costs (memory model, before any output folder is claimed):
        │     every uniform assignment, and each layer switched alone from the first
        │     candidate to every other one → per-layer cost terms (finite differences)
        ├─ sensitivity: per layer, only that layer's writes noisy (first candidate), an
        │     adaptive sweep over the grid range → accuracy curve and midpoint per layer
        ├─ degradation: per layer × candidate, only that layer stored with the candidate,
        │     at the operating point (``repeats`` repeats)
        ├─ search (:mod:`memsim.studies.assign`): additive model → MILP proposal → real noisy
        │     evaluation at the operating point (``repeats`` repeats) + memory-model cost
        ▼
    points.csv (the results store: every evaluation is a point, so a re-run resumes),
    layers.csv, degradation.csv, search.csv, report.md (:mod:`memsim.report.search`)

Assignments are per-layer policies (``policies.impl.per_layer``) with one exact write-point
name per rule, so noisy inference and the memory model read the same object. Curve labels in
``points.csv``: ``only:<layer>`` (sensitivity), ``only:<layer>:<candidate>`` (degradation),
``all:<candidate>`` (uniform) and ``mix:<codes>`` (one character per layer: the candidate's
position in ``policies``, ``0-9a-z``).

Cost: :func:`cost_of` runs the memory model (:func:`memsim.experiment.memory.memory_table`)
and :func:`objectives` reads one row into the objectives in :data:`OBJECTIVES`. Energy adds up
over writes, so its per-layer terms are exact; latency (overlapping writes) and products are
first-order estimates for proposals, while every verified assignment is costed exactly.

Uncertainty: every evaluation's repeats classify the same ``n_images`` images, so the spread
over repeats (``accuracy_spread_se``) misses the images' own sampling error and is 0 whenever
the repeats agree. ``accuracy_se`` is therefore never below
:func:`memsim.fit.shared_images_se`, and a degradation (clean minus noisy accuracy on the
same images) adds the two bounds (``degradation_se``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from memsim.config import (
    ConfigError,
    build,
    check_choice,
    check_range,
    load_toml,
    to_dict,
    where_text,
)
from memsim.experiment.config import Curve, ExperimentConfig, PolicySpec, RunOptions
from memsim.fit import shared_images_interval, shared_images_se

#: Objectives a search can minimise: name -> (column, ...) whose product is the objective.
#: The first column present wins for energy (total energy once the cost model provides it).
OBJECTIVES: dict[str, tuple[tuple[str, ...], ...]] = {
    "energy": (("total_energy_pj_per_inference", "energy_pj_per_inference"),),
    "latency": (("latency_ns_per_inference",),),
    "area": (("area_mm2",),),
    "energy_latency": (
        ("total_energy_pj_per_inference", "energy_pj_per_inference"),
        ("latency_ns_per_inference",),
    ),
    "energy_latency_area": (
        ("total_energy_pj_per_inference", "energy_pj_per_inference"),
        ("latency_ns_per_inference",),
        ("area_mm2",),
    ),
}

_CODES = string.digits + string.ascii_lowercase


@dataclass(frozen=True)
class SearchOptions:
    """The ``[search]`` table.

    Attributes
    ----------
    target : float
        Accuracy to keep, as a fraction of the noise-free accuracy.
    objective : str
        One of :data:`OBJECTIVES`.
    repeats : int
        Repeats of each degradation and verification point.
    scales : tuple of float
        Budget multipliers walked by the search (:func:`memsim.studies.assign.search`).
    max_verifications : int
        Verifications besides the uniform assignments.
    sensitivity : bool
        Run the per-layer sensitivity sweeps (adaptive, over the grid range).
    """

    target: float = 0.99
    objective: str = "energy"
    repeats: int = 3
    scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    max_verifications: int = 40
    sensitivity: bool = True

    def __post_init__(self) -> None:
        check_range("search", "target", self.target, low=0, high=1, low_open=True)
        check_choice("search", "objective", self.objective, tuple(OBJECTIVES))
        check_range("search", "repeats", self.repeats, kind=int, low=1)
        check_range("search", "max_verifications", self.max_verifications, kind=int, low=0)
        if not self.scales:
            raise ValueError("The 'scales' parameter of search must list at least one value.")
        for i, s in enumerate(self.scales):
            check_range("search", f"scales[{i}]", s, low=0)


# --------------------------------------------------------------------------- loading


def parse_search(
    data: Mapping[str, Any], *, source: Any = None
) -> tuple[ExperimentConfig, SearchOptions, RunOptions]:
    """An experiment config with a ``[search]`` table, validated (plug-ins and names included)."""
    from memsim.experiment.load import parse_experiment

    data = dict(data)
    if "search" not in data:  # a plain experiment config would search with made-up settings
        raise ConfigError(
            f"{source} has no [search] table: a search config names its target, objective and "
            "repeats there (see configs/search/digits.toml); run an experiment config with "
            "`memsim run`."
        )
    table = data.pop("search")
    if not isinstance(table, Mapping):
        raise ConfigError(f"'search' in {source} must be a table. Got {table!r}.")
    options = build(SearchOptions, table, where="search", source=source)
    # Keys of an experiment that a search does not read: refused, not ignored.
    for section, key, instead in _UNUSED:
        if isinstance(data.get(section), Mapping) and key in data[section]:
            raise ConfigError(
                f"{where_text(f'{section}.{key}', source)}: a search does not use it ({instead})."
            )
    config, run = parse_experiment(data, source=source)
    check_search(config, source)
    return config, options, run


#: Experiment keys a search never reads: (table, key, what it uses instead).
_UNUSED = (
    ("sweep", "repeats", "search.repeats and adaptive.max_repeats set its repeats"),
    ("adaptive", "enabled", "its sensitivity sweeps are always adaptive"),
)


def check_search(config: ExperimentConfig, source: Any = None) -> None:
    """What a search needs of its experiment config: one format, one operating point, and
    candidates that store that format or int8 (the CLI's loader and :func:`run_search` both
    check, so a config built in Python is refused the same way)."""
    if source is None:
        source = f"the experiment '{config.name}'"
    if len(config.formats) != 1:
        raise ConfigError(
            f"A search runs one storage format; {source} lists {', '.join(config.formats)}."
        )
    if len(config.conditions) > 1:
        raise ConfigError(
            f"A search runs at one operating point; {source} lists {len(config.conditions)} conditions."
        )
    if tuple(config.masks) != ("all",):
        raise ConfigError(
            f"A search flips every bit of its candidates' writes; {source} lists masks "
            f"{list(config.masks)} (leave 'masks' out)."
        )
    if not config.memory.enabled:
        raise ConfigError(
            f"A search prices its candidates with the memory model; {source} sets "
            "memory.enabled = false."
        )
    cands = candidates(config)
    if len(cands) > len(_CODES):
        raise ConfigError(f"A search takes at most {len(_CODES)} candidate policies.")
    from memsim.experiment.layers import is_per_layer
    from memsim.experiment.plugins import make_policy

    for spec in cands:
        policy = make_policy(spec)
        if is_per_layer(policy):
            raise ConfigError(f"Candidate '{spec.label}' in {source} is itself a per-layer policy.")
        policy.validate(config.formats[0])
        policy_fmt = policy.storage_format(config.formats[0])
        if policy_fmt not in (config.formats[0], "int8"):
            raise ConfigError(
                f"Candidate '{spec.label}' stores {policy_fmt}; inside a {config.formats[0]} "
                "network a layer can only switch to int8."
            )


def load_search(
    path: str | os.PathLike, overrides=()
) -> tuple[ExperimentConfig, SearchOptions, RunOptions]:
    """Read a search config file (``--set`` overrides applied)."""
    from memsim.experiment.config import apply_overrides, resolve_config

    source = resolve_config(path)
    data = apply_overrides(load_toml(source), overrides, source)
    # A bad value may come from an override rather than the file: say so, as load_experiment.
    where = f"{source} (with --set {', '.join(overrides)})" if overrides else source
    return parse_search(data, source=where)


def candidates(config: ExperimentConfig) -> list[PolicySpec]:
    """The candidate policies that can store the search's format (config order)."""
    from memsim.experiment.plugins import pairs_of

    return [spec for spec, fmt in pairs_of(config) if fmt == config.formats[0]]


def search_digest(config: ExperimentConfig, options: SearchOptions) -> str:
    """The search's identity: its experiment and its options."""
    from memsim.experiment.store import config_hash

    experiment = config.without_new_defaults(config.to_dict())
    return config_hash({"experiment": experiment, "search": to_dict(options)})


# --------------------------------------------------------------------------- assignments


def assignment_label(assignment: tuple[int, ...], cands: list[PolicySpec]) -> str:
    """``all:<candidate>`` for a uniform assignment, else ``mix:<one code per layer>``."""
    if len(set(assignment)) == 1:
        return f"all:{cands[assignment[0]].label}"
    return "mix:" + "".join(_CODES[k] for k in assignment)


def assignment_spec(
    assignment: tuple[int | None, ...], names: list[str], cands: list[PolicySpec], label: str
) -> PolicySpec:
    """The per-layer policy of an assignment (``None``: that layer stored ideally)."""
    layers = {n: cands[k].spec for n, k in zip(names, assignment) if k is not None}
    first = assignment[0]
    default = "ideal" if first is None or any(k is None for k in assignment) else cands[first].spec
    return PolicySpec(label, {"kind": "per_layer", "default": default, "layers": layers})


def only_spec(
    layer: int, names: list[str], cands: list[PolicySpec], k: int, label: str
) -> PolicySpec:
    """Only write point ``layer`` stored with candidate ``k``; every other layer ideal."""
    a = tuple(k if i == layer else None for i in range(len(names)))
    return assignment_spec(a, names, cands, label)


# --------------------------------------------------------------------------- cost


def objectives(row: Mapping[str, Any]) -> dict[str, float]:
    """Every objective of :data:`OBJECTIVES` that a memory-table row provides."""
    out = {}
    for name, factors in OBJECTIVES.items():
        value = 1.0
        for choices in factors:
            col = next((c for c in choices if c in row and row[c] == row[c]), None)
            if col is None:
                break
            value *= float(row[col])
        else:
            out[name] = value
    return out


def objective_sds(row: Mapping[str, Any]) -> dict[str, float]:
    """Standard deviation of each objective of a memory-table row, from its latency's spread.

    A row is one simulated inference: where pulse rounds are random its latency varies by
    ``latency_ns_sd`` (:func:`memsim.experiment.memory.memory_table`), and so does the total
    energy, through the standby term (leakage × latency). Every factor moves with the same
    draw, so to first order their relative spreads add. Write energy and area are fixed.
    """
    from memsim.experiment.memory import relative_spreads

    latency = float(row.get("latency_ns_per_inference", math.nan))
    spread = float(row.get("latency_ns_sd", 0.0))
    rel_latency = spread / latency if spread == spread and latency > 0 else math.nan
    moves = relative_spreads(row, rel_latency)
    out = {}
    for name, factors in OBJECTIVES.items():
        value, rel = 1.0, 0.0
        for choices in factors:
            col = next((c for c in choices if c in row and row[c] == row[c]), None)
            if col is None:
                break
            value *= float(row[col])
            rel += moves.get(col, 0.0)
        else:
            out[name] = abs(value) * rel
    return out


def cost_of(
    config: ExperimentConfig, workload: str, specs: Mapping[str, PolicySpec]
) -> dict[str, dict[str, float]]:
    """Memory-model objectives of each labelled policy on one workload (label -> objectives).

    Also returns the raw memory-table columns (``energy_pj_per_inference`` …) of each.
    """
    from memsim.experiment.memory import memory_table
    from memsim.experiment.run import operating_points

    wspec = next(w for w in config.workloads if w.label == workload)
    sub = dataclasses.replace(
        config, workloads=(wspec,), policies=tuple(specs.values()), baseline=""
    )
    frame = memory_table(sub, operating_points(sub))
    out = {}
    for row in frame.to_dict("records"):
        numbers = {k: float(v) for k, v in row.items() if isinstance(v, int | float)}
        sds = {f"{name}_sd": sd for name, sd in objective_sds(row).items()}
        out[row["policy"]] = {**numbers, **objectives(row), **sds}
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class _Context:
    config: ExperimentConfig
    options: SearchOptions
    run: RunOptions
    store: Any
    executor: Any
    evaluator: Any
    workload: str
    fmt: str
    p01: float
    p10: float

    def curve(self, label: str) -> Curve:
        return Curve(self.workload, self.fmt, label, "all")

    def evaluate(self, specs: list[PolicySpec], kind: str) -> dict[str, list[dict]]:
        """Evaluate each spec's clean point or its operating-point repeats; rows by label."""
        from memsim.experiment.points import PointTask, clean_task, point_seed, run_points

        seed = self.config.seed
        tasks = []
        for spec in specs:
            c = self.curve(spec.label)
            if kind == "clean":
                tasks.append(clean_task(seed, c))
                continue
            for r in range(self.options.repeats):
                s = point_seed(seed, c, "operating", r, self.p01, self.p10)
                tasks.append(PointTask(c, "operating", self.p01, self.p10, r, s))
        evaluator = dataclasses.replace(self.evaluator, policies=tuple(specs))
        run_points(tasks, self.store, self.executor, evaluator, progress=False)
        rows = self.store.finished()
        out: dict[str, list[dict]] = {s.label: [] for s in specs}
        for t in tasks:
            out[t.curve.policy].append(rows[t.id])
        return out


def default_out(config: ExperimentConfig, options: SearchOptions) -> Path:
    """``runs/<name>-search-<hash>``."""
    return Path("runs") / f"{config.name}-search-{search_digest(config, options)[:8]}"


def run_search(
    config: ExperimentConfig, options: SearchOptions, run: RunOptions = RunOptions()
) -> Path:
    """Run (or resume) the search of every workload into one folder; write the report.

    Raises
    ------
    ResultsError
        The folder holds another experiment's results or is not writable.
    ValueError
        The objective needs a cost column the memory model does not provide.
    """
    import pandas as pd

    from memsim.experiment.launch import check_executor, executor_for
    from memsim.experiment.load import check_built
    from memsim.experiment.points import NetworkEvaluator, load_workload
    from memsim.experiment.run import operating_points
    from memsim.experiment.store import ResultsStore, write_csv_atomic, write_text_atomic

    check_built(config)
    check_search(config)  # as parse_search does
    # Refused: a missing device or Ray extra, a silent cluster, what the device cannot do.
    device = check_executor(run, config.sweep)
    fmt = config.formats[0]
    cands = candidates(config)
    op = operating_points(config)[0]
    plans = {}
    for wspec in config.workloads:  # costs first: a missing objective fails before any output
        workload, model = load_workload(wspec)
        names = _names(config, workload, model, wspec.granularity or config.sweep.granularity)
        plans[wspec.label] = (names, _cost_model(config, options, wspec.label, names, cands))
    out = Path(run.out) if run.out is not None else default_out(config, options)
    digest = search_digest(config, options)
    record = {"experiment": config.to_dict(), "search": to_dict(options)}
    frames: dict[str, list] = {"layers": [], "degradation": [], "search": []}
    with (
        executor_for(run) as executor,  # first: a cluster that cannot place it writes nothing
        ResultsStore.open(out, config=record, digest=digest) as store,
    ):
        write_text_atomic(out / "config.json", json.dumps(record, indent=1, sort_keys=True))
        evaluator = NetworkEvaluator(config.workloads, (), config.sweep, device)
        for wspec in config.workloads:
            names, (unif_costs, cost_matrix, costs) = plans[wspec.label]
            ctx = _Context(
                config, options, run, store, executor, evaluator, wspec.label, fmt,
                float(op["operating_p01"]), float(op["operating_p10"]),
            )  # fmt: skip
            layers = _layer_table(config, wspec, names, cands)
            if options.sensitivity:
                _sensitivity(ctx, names, cands)
            clean_spec = assignment_spec((None,) * len(names), names, cands, "clean")
            clean = ctx.evaluate([clean_spec], "clean")["clean"][0]
            a_clean = float(clean["accuracy"])
            deg, deg_rows = _degradation(ctx, names, cands, a_clean)
            result, rows = _search(ctx, names, cands, deg, cost_matrix, costs, a_clean)
            frames["layers"].append(layers)
            frames["degradation"].append(pd.DataFrame(deg_rows))
            frames["search"].append(pd.DataFrame(rows))
        write_csv_atomic(out / "points.csv", store.points_frame())
    for name, parts in frames.items():
        write_csv_atomic(out / f"{name}.csv", pd.concat(parts, ignore_index=True))
    from memsim.report.search import write_search_report

    write_search_report(out)
    return out


def _names(config: ExperimentConfig, workload, model, granularity: str) -> list[str]:
    from memsim.experiment.layers import write_point_names

    example = workload.dataset(config.sweep.split, limit=2)[0]
    return write_point_names(
        model, example, granularity=granularity, noisy_input=config.sweep.noisy_input
    )


def _cost_model(config, options, workload, names, cands):
    """Costs of the uniform assignments and per-layer terms: ``cost[l, c]`` (finite differences)."""
    n = len(names)
    specs = {}
    for k in range(len(cands)):
        a = (k,) * n
        specs[assignment_label(a, cands)] = assignment_spec(
            a, names, cands, assignment_label(a, cands)
        )
    for layer in range(n):
        for k in range(1, len(cands)):
            a = tuple(k if i == layer else 0 for i in range(n))
            specs[assignment_label(a, cands)] = assignment_spec(
                a, names, cands, assignment_label(a, cands)
            )
    costs = cost_of(config, workload, specs)
    base = costs[assignment_label((0,) * n, cands)]
    if options.objective not in base:
        missing = " × ".join("/".join(c) for c in OBJECTIVES[options.objective])
        raise ValueError(
            f"The objective '{options.objective}' needs {missing} from the memory model, which "
            f"provides: {', '.join(sorted(k for k in base if k.endswith(('_inference', '_mm2'))))}."
        )
    obj = options.objective
    matrix = np.zeros((n, len(cands)))
    for layer in range(n):
        for k in range(1, len(cands)):
            a = tuple(k if i == layer else 0 for i in range(n))
            matrix[layer, k] = costs[assignment_label(a, cands)][obj] - base[obj]
    matrix += base[obj] / n  # the first candidate's cost, shared evenly (a constant)
    return {k: costs[assignment_label((k,) * n, cands)] for k in range(len(cands))}, matrix, costs


def _layer_table(config, wspec, names, cands):
    """Per layer: bits written and write energy under the first candidate, and their shares."""
    import pandas as pd

    from memsim.experiment.plugins import load_condition_device, make_policy
    from memsim.experiment.points import load_workload
    from memsim.trace.capture import trace_model

    workload, model = load_workload(wspec)
    x, _ = workload.samples(config.sweep.split, config.memory.trace_images, "'memory.trace_images'")
    trace = trace_model(
        model, x, config.formats[0], workload_name=wspec.label,
        fused=config.sweep.fused, noisy_input=config.sweep.noisy_input,
    )  # fmt: skip
    device = load_condition_device(config.device, (config.conditions or (None,))[0])
    policy = make_policy(cands[0])
    rows = []
    for rec in trace.records:
        plan = policy.plan(rec, device)
        rows.append(
            {
                "workload": wspec.label,
                "layer": rec.name,
                "index": rec.index,
                "module_type": rec.module_type,
                "numel": rec.numel,
                "bits_written": rec.total_bits,
                "write_energy_pj": plan.total_energy_pj,
                "energy_policy": cands[0].label,
            }
        )
    frame = pd.DataFrame(rows)
    frame["bits_share"] = frame["bits_written"] / frame["bits_written"].sum()
    frame["energy_share"] = frame["write_energy_pj"] / frame["write_energy_pj"].sum()
    if list(frame["layer"]) != names:
        raise RuntimeError("Trace records and write points disagree; cannot tabulate layers.")
    return frame


def _sensitivity(ctx: _Context, names, cands) -> None:
    from memsim.experiment.adaptive import run_adaptive

    specs = [only_spec(i, names, cands, 0, f"only:{n}") for i, n in enumerate(names)]
    clean = ctx.evaluate(specs, "clean")
    evaluator = dataclasses.replace(ctx.evaluator, policies=tuple(specs))
    curves = [ctx.curve(s.label) for s in specs]
    grid = ctx.config.grid.ps()
    run_adaptive(
        curves,
        ctx.store,
        ctx.executor,
        evaluator,
        seed=ctx.config.seed,
        p_min=min(grid),
        p_max=max(grid),
        a_max={c: float(clean[c.policy][0]["accuracy"]) for c in curves},
        num_classes={c: int(clean[c.policy][0]["num_classes"]) for c in curves},
        options=ctx.config.adaptive,
        couplable=lambda c, ps: False,  # a channel per layer: uncoupled
        fit_scale=ctx.config.fit.scale,
        progress=ctx.run.progress,
    )


def _degradation(ctx: _Context, names, cands, a_clean: float):
    """``degradation[l, c]`` with its standard error, measured at the operating point."""
    specs = {
        (i, k): only_spec(i, names, cands, k, f"only:{n}:{cands[k].label}")
        for i, n in enumerate(names)
        for k in range(len(cands))
    }
    rows = ctx.evaluate(list(specs.values()), "operating")
    deg = np.zeros((len(names), len(cands)))
    table = []
    for (i, k), spec in specs.items():
        acc, n_images = _accuracies(rows[spec.label])
        deg[i, k] = a_clean - acc.mean()
        table.append(
            {
                "workload": ctx.workload,
                "layer": names[i],
                "index": i,
                "candidate": cands[k].label,
                "accuracy": acc.mean(),
                "degradation": deg[i, k],
                # clean and noisy accuracy on the same images: the bounds add (Minkowski)
                "degradation_se": float(shared_images_se(a_clean, n_images))
                + _accuracy_se(acc, n_images),
                "degradation_spread_se": _spread_se(acc),
                "repeats": len(acc),
                "n_images": n_images,
            }
        )
    return deg, table


def _accuracies(rows: list[dict]) -> tuple[np.ndarray, int]:
    """The accuracies of one evaluation's repeats and the images each classified."""
    return np.array([r["accuracy"] for r in rows]), int(max(r["n_images"] for r in rows))


def _spread_se(acc: np.ndarray) -> float:
    """Standard error from the spread over repeats alone (the noise draws): NaN for one
    repeat, and 0 when the repeats agree, although the shared test images are a sample."""
    return float(acc.std(ddof=1) / math.sqrt(len(acc))) if len(acc) > 1 else math.nan


def _accuracy_se(acc: np.ndarray, n_images: int) -> float:
    """Standard error of the mean over repeats on shared images: the spread's, never below
    :func:`memsim.fit.shared_images_se` (which holds the noise draws too)."""
    return float(np.fmax(_spread_se(acc), shared_images_se(acc.mean(), n_images)))


def _search(ctx: _Context, names, cands, deg, cost_matrix, costs, a_clean):
    from memsim.studies.assign import search

    options = ctx.options
    target = options.target * a_clean
    accs: dict[tuple, np.ndarray] = {}
    n_images: dict[tuple, int] = {}
    full: dict[tuple, dict] = {}

    def verify(a: tuple[int, ...]) -> tuple[float, float]:
        label = assignment_label(a, cands)
        spec = assignment_spec(a, names, cands, label)
        accs[a], n_images[a] = _accuracies(ctx.evaluate([spec], "operating")[label])
        full[a] = costs.get(label) or cost_of(ctx.config, ctx.workload, {label: spec})[label]
        return float(accs[a].mean()), full[a][options.objective]

    result = search(
        deg,
        cost_matrix,
        target=target,
        clean_accuracy=a_clean,
        verify=verify,
        scales=options.scales,
        max_verifications=options.max_verifications,
    )
    front = {v.assignment for v in result.pareto()}
    rows = []
    for order, v in enumerate(result.verified):
        cost = full[v.assignment]
        acc, n = accs[v.assignment], n_images[v.assignment]
        ci_low, ci_high = shared_images_interval(v.accuracy, n)
        rows.append(
            {
                "workload": ctx.workload,
                "order": order,
                "label": assignment_label(v.assignment, cands),
                "assignment": json.dumps({n: cands[k].label for n, k in zip(names, v.assignment)}),
                "source": v.source,
                "uniform": v.source == "uniform",
                "accuracy": v.accuracy,
                "accuracy_se": _accuracy_se(acc, n),
                "accuracy_spread_se": _spread_se(acc),
                "accuracy_ci_low": float(ci_low),
                "accuracy_ci_high": float(ci_high),
                "repeats": len(acc),
                "n_images": n,
                "clean_accuracy": a_clean,
                "target_accuracy": target,
                "meets_target": v.meets_target,
                "objective": options.objective,
                "cost": v.cost,
                "cost_sd": cost.get(f"{options.objective}_sd", math.nan),
                "cost_draws": int(cost.get("latency_draws", 1)),
                "predicted_cost": float(sum(cost_matrix[i, k] for i, k in enumerate(v.assignment))),
                "predicted_degradation": float(
                    sum(max(deg[i, k], 0.0) for i, k in enumerate(v.assignment))
                ),
                "pareto": v.assignment in front,
                "best": result.best is not None and v.assignment == result.best.assignment,
                "best_uniform": result.best_uniform is not None
                and v.assignment == result.best_uniform.assignment,
                "operating_p01": ctx.p01,
                "operating_p10": ctx.p10,
                **{k: cost[k] for k in ("energy_pj_per_inference", "latency_ns_per_inference")},
            }
        )
    return result, rows
