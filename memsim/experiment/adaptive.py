"""Adaptive sweeps: spend inference passes near the accuracy drop instead of on a full grid.

Sits beside :func:`memsim.experiment.points.run_points` as the other way to fill the results store. Per
curve, a search (a generator, :func:`search`) proposes batches of ``(p, repeat)`` and receives
their accuracies:

1. *bracket*: evaluate the range ends, then bisect in log10 p (one repeat) until the midpoint
   level ``a_min + (a_max - a_min)/2`` is bracketed within ``bracket_decades``;
2. *refine*: evaluate ``refine_points`` log-spaced points across ``±refine_decades`` around the
   bracket, one repeat per batch (the points of one batch are coupled when exact), and fit
   after each; stop once the bootstrap CI of μ spans at most ``ci_decades`` (or after
   ``max_repeats``).

If the ends show no drop inside the range (the accuracy at ``p_max`` still above the level, or
at ``p_min`` already below it), the end that shows it is measured again up to ``min_repeats``
repeats, the least a fitted midpoint rests on; if the mean over them still shows no drop the
search stops, and the fit reports the curve as censored (``above_range``/``below_range``). If
the mean does cross, the first repeat misled and the search goes on to bracket the drop.
:func:`run_adaptive` drives the searches of all curves concurrently on an
executor and appends every point to the store as it finishes, so it resumes like a grid sweep
(the searches are deterministic given their points, which a re-run reads back).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np

from memsim.experiment.config import pow10
from memsim.experiment.executor import Executor
from memsim.experiment.points import Curve, PointTask, point_row, sweep_task
from memsim.experiment.store import ResultsStore
from memsim.fit import fit_points

Request = tuple[float, int]  # (p, repeat)


@dataclass(frozen=True)
class SearchOutcome:
    """How a search ended: ``status`` is ``converged``, ``max_repeats`` or ``no_drop``."""

    status: str
    passes: int
    mu: float = math.nan
    ci_decades: float = math.nan


def _snap(x: float) -> float:
    # Round p to 12 significant digits: stable point ids, no float noise from 10**x.
    return float(f"{pow10(x):.12g}")


def search(
    p_min: float,
    p_max: float,
    *,
    a_max: float,
    num_classes: int,
    options,
    fit_scale: str = "log10p",
    n_boot: int = 100,
    seed: int = 0,
) -> Generator[tuple[list[Request], bool], list[float], SearchOutcome]:
    """The adaptive search for one curve, as a generator.

    Yields ``(requests, coupled)``: a batch of ``(p, repeat)`` to evaluate and whether its
    points may be coupled; receives the accuracies in the same order. Returns a
    :class:`SearchOutcome`.

    Parameters
    ----------
    p_min, p_max : float
        The range searched.
    a_max : float
        Noise-free accuracy of the curve.
    num_classes : int
        K (chance level ``1/K``).
    options : AdaptiveConfig
        ``bracket_decades``, ``refine_points``, ``refine_decades``, ``min_repeats``,
        ``max_repeats``, ``ci_decades``.
    """
    a_min = 1 / num_classes
    level = a_min + (a_max - a_min) / 2
    points: dict[Request, float] = {}

    def ask(reqs: list[Request], coupled: bool):
        new = [r for r in dict.fromkeys(reqs) if r not in points]
        if new:
            accs = yield new, coupled
            points.update(zip(new, accs))
        return [points[r] for r in reqs]

    def mean_at(p: float) -> float:
        return float(np.mean([a for (q, _), a in points.items() if q == p]))

    lo, hi = math.log10(p_min), math.log10(p_max)
    ends = (_snap(lo), _snap(hi))
    acc_lo, acc_hi = yield from ask([(ends[0], 0), (ends[1], 0)], False)
    # "No drop in range" rests on the end that shows it: measure it as often as a fitted
    # midpoint is measured (min_repeats) before claiming it, in one batch of its own seeds.
    showing = [p for p, shows in zip(ends, (acc_lo < level, acc_hi > level)) if shows]
    if showing:
        extra = [(p, r) for r in range(1, options.min_repeats) for p in showing]
        yield from ask(extra, False)
        if mean_at(ends[1]) > level or mean_at(ends[0]) < level:
            return SearchOutcome("no_drop", len(points))
    while hi - lo > options.bracket_decades:
        mid = (lo + hi) / 2
        (acc,) = yield from ask([(_snap(mid), 0)], False)
        if acc > level:
            lo = mid
        else:
            hi = mid
    center = (lo + hi) / 2
    xs = center + np.linspace(
        -options.refine_decades, options.refine_decades, options.refine_points
    )
    xs = np.clip(xs, math.log10(p_min), math.log10(p_max))
    local = sorted(dict.fromkeys(_snap(float(x)) for x in xs))
    width = math.nan
    mu = math.nan
    for r in range(options.max_repeats):
        yield from ask([(p, r) for p in local], True)
        if r + 1 < options.min_repeats:
            continue
        p_arr = np.array([k[0] for k in points])
        rep = np.array([k[1] for k in points])
        acc = np.array(list(points.values()))
        fit = fit_points(
            p_arr,
            acc,
            rep,
            a_max=a_max,
            num_classes=num_classes,
            scale=fit_scale,
            n_boot=n_boot,
            seed=seed,
        )
        mu = fit.mu
        width = math.log10(fit.mu_ci_high / fit.mu_ci_low) if fit.mu_ci_low > 0 else math.nan
        if width <= options.ci_decades:
            return SearchOutcome("converged", len(points), mu, width)
    return SearchOutcome("max_repeats", len(points), mu, width)


def run_adaptive(
    curves: Sequence[Curve],
    store: ResultsStore,
    executor: Executor,
    evaluate: Callable[[PointTask], dict],
    *,
    seed: int,
    p_min: float,
    p_max: float,
    a_max: dict[Curve, float],
    num_classes: dict[Curve, int],
    options,
    couplable: Callable[[Curve, Sequence[float]], bool] | None = None,
    fit_scale: str = "log10p",
    progress: bool = True,
) -> dict[Curve, SearchOutcome]:
    """Run one adaptive search per curve, interleaved on ``executor``.

    Points already in ``store`` are read back instead of evaluated. ``couplable(curve, ps)``
    says whether a batch may be coupled (exactness check); None couples every refine batch.
    """
    from tqdm.auto import tqdm

    searches = {
        c: search(
            p_min,
            p_max,
            a_max=a_max[c],
            num_classes=num_classes[c],
            options=options,
            fit_scale=fit_scale,
            seed=seed,
        )
        for c in curves
    }
    outcomes: dict[Curve, SearchOutcome] = {}
    waiting: dict[Curve, list] = {}  # curve -> [tasks, results-by-index]
    by_ticket: dict[int, tuple[Curve, int]] = {}
    # The total grows as searches propose batches; the bar shows points done so far.
    bar = tqdm(total=0, desc="adaptive", unit="pt", disable=not progress, dynamic_ncols=True)

    def advance(curve: Curve, results: list[float] | None) -> None:
        gen = searches[curve]
        try:
            reqs, coupled = gen.send(results) if results is not None else next(gen)
        except StopIteration as stop:
            outcomes[curve] = stop.value
            return
        ps = tuple(sorted({p for p, _ in reqs}))
        coupled = coupled and len(ps) > 1 and (couplable is None or couplable(curve, ps))
        tasks = [sweep_task(seed, curve, p, r, ps if coupled else ()) for p, r in reqs]
        slots: list = [None] * len(tasks)
        waiting[curve] = [tasks, slots]
        finished = store.finished()
        for i, task in enumerate(tasks):
            if task.id in finished:
                slots[i] = finished[task.id]["accuracy"]
            else:
                by_ticket[executor.submit(evaluate, task)] = (curve, i)
                bar.total += 1
                bar.refresh()
        maybe_done(curve)

    def maybe_done(curve: Curve) -> None:
        tasks, slots = waiting[curve]
        if all(s is not None for s in slots):
            del waiting[curve]
            advance(curve, slots)

    try:
        for c in curves:
            advance(c, None)
        while executor.pending:
            ticket, outcome = executor.next_done()
            curve, i = by_ticket.pop(ticket)
            tasks, slots = waiting[curve]
            store.append(point_row(tasks[i], outcome))
            slots[i] = float(outcome["accuracy"])
            bar.update(1)
            maybe_done(curve)
    finally:
        bar.close()
    return outcomes
