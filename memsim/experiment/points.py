"""Accuracy sweeps: noisy inference over a p grid, one point at a time into the results store.

Sits between the experiment config (:mod:`memsim.experiment.config`) and the fits/report. A *curve*
is one workload × format × policy × noisy-bit mask; a *point* is one evaluation of a curve at
one ``(p01, p10)`` and one repeat. Points are planned as picklable :class:`PointTask` objects,
evaluated by an evaluator (:class:`NetworkEvaluator` for real networks, a surrogate for tests
and benchmarks) on an :class:`~memsim.experiment.executor.Executor`, and appended one by one to the
:class:`~memsim.experiment.store.ResultsStore`: a resumed sweep evaluates only what is missing.

Seeds come from the run seed by name (:func:`point_seed`), never from the order of execution,
so any number of workers gives identical results. With coupled sampling (common random
numbers, docs/design.md §3) all p of one repeat share a seed and the channels share a ``ladder``, so
flips at a smaller p are a subset of those at a larger one; it is used only where it is exact
(every channel along the grid is a :class:`~memsim.noise.channel.BitFlip` with non-decreasing
per-bit rates), otherwise each p gets its own seed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memsim.compute import resolve_device
from memsim.experiment.config import Curve
from memsim.experiment.executor import Executor, map_unordered
from memsim.experiment.layers import is_per_layer, layer_channel_for
from memsim.experiment.plugins import (
    calibration_images,
    is_bitflip,
    make_channel,
    make_policy,
)
from memsim.experiment.store import ResultsStore, point_id
from memsim.inference.int8 import INT_FORMATS
from memsim.rng import child_seed

#: Kinds of points: the noise-free reference, grid/adaptive points, device operating points.
KINDS = ("clean", "sweep", "operating")

Evaluator = Callable[["PointTask"], dict]


@dataclass(frozen=True)
class PointTask:
    """One point to evaluate; everything a worker needs besides the evaluator's own setup."""

    curve: Curve
    kind: str
    p: float
    p10: float
    repeat: int
    seed: int
    ladder: tuple[float, ...] = ()

    @property
    def coupled(self) -> bool:
        """Coupled points carry the symmetric p values their ladder is built from."""
        return bool(self.ladder)

    def key(self) -> dict[str, Any]:
        c = self.curve
        return {
            "workload": c.workload,
            "format": c.format,
            "policy": c.policy,
            "mask": c.mask,
            "kind": self.kind,
            "p": float(self.p),
            "p10": float(self.p10),
            "repeat": int(self.repeat),
        }

    @property
    def id(self) -> str:
        return point_id(self.key())


def point_seed(
    seed: int,
    curve: Curve,
    kind: str,
    repeat: int,
    p: float | None = None,
    p10: float | None = None,
) -> int:
    """The seed of a point: a pure function of the run seed and the point's names.

    Coupled points pass ``p=None``: every p of one repeat then shares the seed.
    """
    parts: list[object] = [
        "sweep",
        kind,
        curve.workload,
        curve.format,
        curve.policy,
        curve.mask,
        "repeat",
        repeat,
    ]
    if p is not None:
        parts += ["p", float(p).hex(), float(p if p10 is None else p10).hex()]
    return child_seed(seed, *parts)


def clean_task(seed: int, curve: Curve) -> PointTask:
    """The noise-free point of a curve (its ``a_max``)."""
    return PointTask(curve, "clean", 0.0, 0.0, 0, point_seed(seed, curve, "clean", 0))


def sweep_task(
    seed: int, curve: Curve, p: float, repeat: int, ladder: Sequence[float] = ()
) -> PointTask:
    """A symmetric (p01 = p10 = p) sweep point, coupled with the other p of ``ladder`` if given.

    All points of one repeat coupled along one ladder share a seed.
    """
    if ladder:
        ladder = tuple(float(v) for v in ladder)
        if p not in ladder:
            raise ValueError(f"p={p} is not on its ladder {ladder}.")
        s = point_seed(seed, curve, "sweep", repeat)
    else:
        s = point_seed(seed, curve, "sweep", repeat, p, p)
    return PointTask(curve, "sweep", float(p), float(p), repeat, s, tuple(ladder))


def plan_grid(
    curves: Sequence[Curve],
    grid: Sequence[float],
    *,
    repeats: int,
    seed: int,
    coupled: Callable[[Curve], bool] | bool = True,
    operating: Sequence[tuple[float, float]] = (),
) -> list[PointTask]:
    """Every point of a full-grid sweep: clean points first, then grid and operating points.

    Parameters
    ----------
    curves : sequence of Curve
    grid : sequence of float
        Symmetric p values (ascending).
    repeats : int
        Repeats per p.
    seed : int
        Run seed.
    coupled : bool or callable(Curve) -> bool
        Whether a curve uses coupled sampling (callers pass the exactness check).
    operating : sequence of (p01, p10)
        Device operating points evaluated directly on every curve (independent seeds).
    """
    tasks = [clean_task(seed, c) for c in curves]
    grid = tuple(float(p) for p in grid)
    for c in curves:
        is_coupled = coupled(c) if callable(coupled) else bool(coupled)
        for r in range(repeats):
            tasks += [sweep_task(seed, c, p, r, grid if is_coupled else ()) for p in grid]
    for c in curves:
        for p01, p10 in dict.fromkeys((float(a), float(b)) for a, b in operating):
            for r in range(repeats):
                s = point_seed(seed, c, "operating", r, p01, p10)
                tasks.append(PointTask(c, "operating", p01, p10, r, s))
    return tasks


def point_row(task: PointTask, outcome: dict) -> dict[str, Any]:
    """The stored row of a finished point (the columns of ``points.csv``)."""
    return {
        **task.key(),
        "seed": task.seed,
        "coupled": task.coupled,
        "accuracy": float(outcome["accuracy"]),
        "nonfinite_fraction": float(outcome["nonfinite_fraction"]),
        "n_images": int(outcome["n_images"]),
        "num_classes": int(outcome["num_classes"]),
        "point_id": task.id,
    }


def run_points(
    tasks: Iterable[Any],
    store: ResultsStore,
    executor: Executor,
    evaluate: Callable[[Any], dict],
    *,
    progress: bool = True,
    desc: str = "sweep",
    to_row: Callable[[Any, dict], dict[str, Any]] = point_row,
) -> int:
    """Evaluate the tasks the store does not hold yet; append each as it finishes.

    A task is a :class:`PointTask` by default; a study passes its own hashable, picklable
    tasks (with an ``id``, the ``point_id`` of its row) and ``to_row`` (task, outcome) → row.
    Returns the number of points evaluated in this call.
    """
    todo = [t for t in dict.fromkeys(tasks) if t.id not in store]
    bar = _progress(len(todo), desc, progress)
    done = 0
    try:
        for task, outcome in map_unordered(executor, evaluate, todo):
            store.append(to_row(task, outcome))
            done += 1
            bar.update(1)
    finally:
        bar.close()
    return done


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="pt", disable=not enabled or total == 0, dynamic_ncols=True
    )


# --------------------------------------------------------------------------- real networks


@dataclass(frozen=True)
class NetworkEvaluator:
    """Evaluates points with :class:`memsim.inference.network.NoisyNetwork` on a real workload.

    Picklable: workers rebuild (and cache, per process) the networks and data they need.

    Parameters
    ----------
    workloads, policies : tuple of specs
        From the experiment config, looked up by the labels in each task's curve.
    sweep : SweepConfig
        Images, split, batch size, engine, granularity/noisy-input options (a workload's
        own ``granularity`` wins over the sweep's).
    device : str
        Torch device (a run option); ``auto`` is resolved in each worker.
    """

    workloads: tuple
    policies: tuple
    sweep: Any
    device: str = "cpu"

    def __call__(self, task: PointTask) -> dict:
        policy = self._policy(task.curve.policy)
        fmt = policy.storage_format(task.curve.format)
        net, x, y, num_classes = self._network(task.curve.workload, fmt)
        if is_per_layer(policy):
            if task.curve.mask != "all":
                raise ValueError(f"A per-layer policy takes no noisy-bit mask. Got {task.curve}.")
            clean = task.kind == "clean"
            channel = layer_channel_for(
                policy,
                fmt,
                0.0 if clean else task.p,
                0.0 if clean else task.p10,
                engine=self.sweep.engine,
                int8_qparams=lambda: self._int8_points(task.curve.workload),
            )
        elif task.kind == "clean":
            channel = None
        elif task.coupled:
            channels = self._ladder(task.curve, task.ladder)
            if channels is None:
                raise ValueError(
                    f"Coupled sampling is not exact for {task.curve}; plan it uncoupled."
                )
            channel = channels[task.ladder.index(task.p)]
        else:
            channel = make_channel(
                policy, fmt, task.curve.mask, task.p, task.p10, self.sweep.engine
            )
        res = net.evaluate(
            x, y, channel, seed=task.seed, batch_size=self.sweep.batch_size, device=x.device
        )
        return {
            "accuracy": res.accuracy,
            "nonfinite_fraction": res.nonfinite_fraction,
            "n_images": res.n_images,
            "num_classes": num_classes,
        }

    def couplable(self, curve: Curve, grid: Sequence[float]) -> bool:
        """Whether coupled sampling is exact for this curve's channels along ``grid``."""
        return self._ladder(curve, tuple(float(p) for p in grid)) is not None

    def _policy(self, label: str):

        spec = next(s for s in self.policies if s.label == label)
        return _cached(
            ("policy", label, json.dumps(spec.spec, sort_keys=True, default=str)),
            lambda: make_policy(spec),
        )

    def _ladder(self, curve: Curve, grid: tuple[float, ...]):
        def build():
            policy = self._policy(curve.policy)
            if is_per_layer(policy):
                return None  # a channel per layer: planned uncoupled
            fmt = policy.storage_format(curve.format)
            chans = [make_channel(policy, fmt, curve.mask, p, p, self.sweep.engine) for p in grid]
            return coupled_channels(chans)

        key = ("ladder", curve, grid, self.sweep.engine, self._spec_key("policy", curve.policy))
        return _cached(key, build)

    def _spec_key(self, kind: str, label: str) -> str:
        specs = self.policies if kind == "policy" else self.workloads
        spec = next(s for s in specs if s.label == label)
        return json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)

    def _network(self, label: str, fmt: str):
        key = ("network", self._spec_key("workload", label), fmt, self.sweep, self.device)
        return _cached(key, lambda: self._build_network(label, fmt))

    def _int8_points(self, label: str):
        """int8 parameters of every write point, for layers stored as int8 in a float network
        (of the float model: the same for every storage format of the workload)."""

        def build():
            from memsim.inference.mixed import int8_point_qparams

            spec = next(s for s in self.workloads if s.label == label)
            workload, model = load_workload(spec)
            s = self.sweep
            x = self._data(label)[0]  # an example for the write points
            calibration = calibration_images(workload, s.calibration_images)
            return int8_point_qparams(
                model,  # on the CPU, as calibration runs: the example too, whatever the device
                x[:2].cpu(),
                calibration,
                granularity=spec.granularity or s.granularity,
                noisy_input=s.noisy_input,
            )

        key = ("int8_points", self._spec_key("workload", label), self.sweep)
        return _cached(key, build)

    def _build_network(self, label: str, fmt: str):
        from memsim.inference.network import NoisyNetwork

        spec = next(s for s in self.workloads if s.label == label)
        workload, model = load_workload(spec)
        s = self.sweep
        calibration = None
        if fmt in INT_FORMATS:
            calibration = calibration_images(workload, s.calibration_images)
        compute = None if s.compute_dtype == "storage" or fmt in INT_FORMATS else s.compute_dtype
        net = NoisyNetwork(
            model,
            fmt,
            granularity=spec.granularity or s.granularity,
            noisy_input=s.noisy_input,
            calibration=calibration,
            compute_dtype=compute,
            flush_denormals=s.flush_denormals,
        )
        x, y = self._data(label)
        return net, x, y, int(workload.num_classes)

    def _data(self, label: str):
        """The workload's evaluation images and labels on the device.

        PERF: they move to the device once per worker and workload, not once per point, nor
        once per storage format (a copy per format would hold the data set N times on a GPU).
        """
        s = self.sweep

        def build():
            spec = next(w for w in self.workloads if w.label == label)
            workload, _ = load_workload(spec)
            x, y = workload.samples(s.split, s.images or None, "'sweep.images'")
            device = resolve_device(self.device)  # auto: this worker's GPU if it has one
            return x.to(device), y.to(device)

        key = ("data", self._spec_key("workload", label), s.split, s.images, self.device)
        return _cached(key, build)


def load_workload(spec) -> tuple[Any, Any]:
    """``(workload, trained model)`` for a workload spec (cached per process)."""

    def build():
        from workloads import get_workload

        workload = get_workload(spec.name, **dict(spec.options))
        return workload, workload.load_model(spec.checkpoint)

    return _cached(
        ("workload", json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str)), build
    )


def coupled_channels(channels: Sequence[Any]) -> list | None:
    """The channels with a shared ladder when coupling is exact for them, else None.

    Exact means: all are :class:`BitFlip` of one format, mask and engine, and the per-bit
    rates (both directions) never decrease along the sequence.
    """
    if not channels or not all(is_bitflip(c) for c in channels):
        return None
    first = channels[0]
    if any((c.fmt, c.engine) != (first.fmt, first.engine) for c in channels):
        return None
    rates = [(np.asarray(c.p01_vector), np.asarray(c.p10_vector)) for c in channels]
    for (a01, a10), (b01, b10) in zip(rates, rates[1:]):
        if (b01 < a01).any() or (b10 < a10).any():
            return None
    ladder = tuple((tuple(r01.tolist()), tuple(r10.tolist())) for r01, r10 in rates)
    # The rates already include the mask; bits=None keeps the ladder entries comparable.
    return [
        dataclasses.replace(c, p01=list(r01), p10=list(r10), bits=None, ladder=ladder)
        for c, (r01, r10) in zip(channels, ladder)
    ]


_CACHE: dict = {}


def _cached(key, build):
    # Per-process cache: a worker loads each network and data set once, not once per point.
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


# --------------------------------------------------------------------------- surrogate


@dataclass(frozen=True)
class SurrogateEvaluator:
    """A cheap stand-in for a network: accuracy drawn around a known logistic in log10 p.

    Each image is correct when its uniform draw is below ``F(p)``; the draws come from the
    point's seed, so coupled points (one seed for all p) give monotone curves, as coupled
    network sweeps do. Used by tests and by ``benchmarks/adaptive.py`` (never by ``memsim run``).
    """

    mu_log10: float = -4.0
    sigma: float = 0.25
    a_max: float = 0.95
    num_classes: int = 10
    n_images: int = 400

    def __call__(self, task: PointTask) -> dict:
        from memsim.fit import logistic

        a_min = 1 / self.num_classes
        u = np.random.default_rng(task.seed).random(self.n_images)
        if task.kind == "clean":
            prob = self.a_max
        else:
            prob = float(logistic(math.log10(task.p), self.mu_log10, self.sigma, self.a_max, a_min))
        correct = int((u < prob).sum())
        return {
            "accuracy": correct / self.n_images,
            "nonfinite_fraction": 0.0,
            "n_images": self.n_images,
            "num_classes": self.num_classes,
        }
