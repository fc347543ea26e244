"""Sweeps: planning, seeds, resume and worker independence, on a surrogate evaluator."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from memsim.experiment.adaptive import run_adaptive
from memsim.experiment.executor import SerialExecutor
from memsim.experiment.points import Curve, SurrogateEvaluator, plan_grid, run_points
from memsim.experiment.run import AdaptiveConfig
from memsim.experiment.store import ResultsStore
from memsim.fit import fit_points

CURVES = [Curve("w", "float32", "baseline"), Curve("w", "int8", "baseline")]
GRID = tuple(np.logspace(-8, -1, 22))
SURROGATE = SurrogateEvaluator(mu_log10=-4.0, sigma=0.25, n_images=300)


def sweep(folder, executor, tasks=None, evaluate=SURROGATE) -> pd.DataFrame:
    tasks = tasks or plan_grid(CURVES, GRID, repeats=3, seed=11)
    with ResultsStore.open(folder, config={}, digest="h") as store:
        run_points(tasks, store, executor, evaluate, progress=False)
        return store.points_frame()


def test_plan_has_every_point_once_with_stable_seeds():
    a = plan_grid(CURVES, GRID, repeats=3, seed=11, operating=[(1e-6, 1e-6)])
    b = plan_grid(CURVES, GRID, repeats=3, seed=11, operating=[(1e-6, 1e-6)])
    assert len(a) == len(CURVES) * (1 + 3 * len(GRID) + 3)
    assert len({t.id for t in a}) == len(a)
    assert [t.seed for t in a] == [t.seed for t in b]
    coupled = [t for t in a if t.kind == "sweep"]
    # Coupled: one seed per repeat for all p of a curve.
    assert len({t.seed for t in coupled if t.curve == CURVES[0]}) == 3


def test_coupled_curves_are_monotone_in_p():
    tasks = plan_grid(CURVES[:1], GRID, repeats=2, seed=3)
    accs = {(t.repeat, t.p): SURROGATE(t)["accuracy"] for t in tasks if t.kind == "sweep"}
    for r in range(2):
        curve = [accs[(r, p)] for p in GRID]
        assert all(b <= a for a, b in zip(curve, curve[1:]))


def test_interrupted_sweep_resumes_to_the_same_table(tmp_path):
    full = sweep(tmp_path / "full", SerialExecutor())

    calls = {"n": 0}

    def dies_after_20(task):
        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt
        return SURROGATE(task)

    with pytest.raises(KeyboardInterrupt):
        sweep(tmp_path / "part", SerialExecutor(), evaluate=dies_after_20)
    with ResultsStore.open(tmp_path / "part", config={}, digest="h") as store:
        assert len(store.finished()) == 20
    counted = {"n": 0}

    def counting(task):
        counted["n"] += 1
        return SURROGATE(task)

    resumed = sweep(tmp_path / "part", SerialExecutor(), evaluate=counting)
    assert counted["n"] == len(full) - 20  # nothing recomputed
    pd.testing.assert_frame_equal(resumed, full)


def test_adaptive_finds_midpoint_with_a_third_of_the_passes(tmp_path):
    curve = Curve("w", "float32", "baseline")
    full = sweep(tmp_path / "full", SerialExecutor(), plan_grid([curve], GRID, repeats=5, seed=1))
    grid_pts = full[full["kind"] == "sweep"]
    ref = fit_points(
        grid_pts["p"],
        grid_pts["accuracy"],
        grid_pts["repeat"],
        a_max=0.95,
        num_classes=10,
        n_boot=0,
    )
    with ResultsStore.open(tmp_path / "adaptive", config={}, digest="h") as store:
        outcomes = run_adaptive(
            [curve],
            store,
            SerialExecutor(),
            SURROGATE,
            seed=1,
            p_min=1e-8,
            p_max=1e-1,
            a_max={curve: 0.95},
            num_classes={curve: 10},
            options=AdaptiveConfig(enabled=True),
            progress=False,
        )
        pts = store.points_frame()
    out = outcomes[curve]
    assert out.passes == len(pts) <= len(grid_pts) / 3
    fit = fit_points(pts["p"], pts["accuracy"], pts["repeat"], a_max=0.95, num_classes=10, n_boot=0)
    assert abs(fit.mu / ref.mu - 1) < 0.1
    assert math.log10(fit.mu) == pytest.approx(-4.0, abs=0.05)


def _adaptive(folder, evaluate, curve, options, seed=0):
    """One adaptive search over 1e-8 … 1e-1 into the store at ``folder``: (outcome, points)."""
    with ResultsStore.open(folder, config={}, digest="h") as store:
        out = run_adaptive(
            [curve],
            store,
            SerialExecutor(),
            evaluate,
            seed=seed,
            p_min=1e-8,
            p_max=1e-1,
            a_max={curve: 0.95},
            num_classes={curve: 10},
            options=options,
            progress=False,
        )[curve]
        return out, store.points_frame()


@pytest.mark.parametrize(
    ("mu_log10", "end", "status"), [(2.0, 1e-1, "above_range"), (-11.0, 1e-8, "below_range")]
)
def test_a_curve_without_a_drop_gets_min_repeats_at_the_end_its_claim_rests_on(
    tmp_path, mu_log10, end, status
):
    """ "No drop in range" rested on one repeat at each end, where a fitted midpoint rests on
    at least ``min_repeats``: the end that shows it (p_max for a curve that never drops, p_min
    for one already down) is measured ``min_repeats`` times, the other end once."""
    curve = Curve("w", "float32", "robust")
    flat = SurrogateEvaluator(mu_log10=mu_log10)  # the drop is far outside 1e-8 … 1e-1
    options = AdaptiveConfig(enabled=True, min_repeats=4, max_repeats=6)
    out, pts = _adaptive(tmp_path, flat, curve, options)
    assert out.status == "no_drop" and out.passes == len(pts) == 5
    repeats = pts.groupby("p")["repeat"].apply(sorted).to_dict()
    other = 1e-8 if end == 1e-1 else 1e-1
    assert repeats == {end: [0, 1, 2, 3], other: [0]}
    assert pts.groupby("p")["seed"].nunique()[end] == 4  # four draws, not one read four times
    fit = fit_points(pts["p"], pts["accuracy"], pts["repeat"], a_max=0.95, num_classes=10)
    assert fit.status == status
    # Deterministic and resumable: the same points again, and a re-run evaluates nothing.
    again = _adaptive(tmp_path / "again", flat, curve, options)[1]
    pd.testing.assert_frame_equal(again, pts)

    def never(task):
        raise AssertionError(f"{task} evaluated again")

    assert _adaptive(tmp_path, never, curve, options)[0] == out


def test_an_end_whose_first_repeat_misled_does_not_stop_the_search(tmp_path):
    """One lucky repeat at p_max (full accuracy where the curve has long dropped) no longer
    ends the search as "no drop": its further repeats pull the mean below the level, and the
    search brackets and fits the drop as usual."""
    curve = Curve("w", "float32", "baseline")

    def lucky_first(task):
        if task.p == 1e-1 and task.repeat == 0:
            return {**SURROGATE(task), "accuracy": 0.95}
        return SURROGATE(task)

    out, pts = _adaptive(tmp_path, lucky_first, curve, AdaptiveConfig(enabled=True))
    assert out.status != "no_drop"
    assert sorted(pts.loc[pts["p"] == 1e-1, "repeat"])[:3] == [0, 1, 2]
    fit = fit_points(pts["p"], pts["accuracy"], pts["repeat"], a_max=0.95, num_classes=10, n_boot=0)
    assert math.log10(fit.mu) == pytest.approx(-4.0, abs=0.1)


def test_adaptive_experiment_writes_a_fitted_summary(tmp_path):
    from memsim.experiment.run import RunOptions, load_experiment, run_experiment

    config, _ = load_experiment(
        overrides=[
            'formats=["float32"]',
            'policies=["baseline"]',
            "adaptive.enabled=true",
            "memory.enabled=false",
            "sweep.repeats=2",
        ]
    )
    out = run_experiment(config, RunOptions(out=tmp_path, progress=False), evaluator=SURROGATE)
    summary = pd.read_csv(out / "summary.csv")
    points = pd.read_csv(out / "points.csv")
    assert summary["fit_status"].tolist() == ["ok"]
    assert math.log10(summary["mu"].iloc[0]) == pytest.approx(-4.0, abs=0.1)
    assert len(points) < 22 * 5 / 3


def test_interrupted_adaptive_search_resumes_to_the_same_points(tmp_path):
    curve = Curve("w", "float32", "baseline")

    def adaptive(folder, evaluate):
        with ResultsStore.open(folder, config={}, digest="h") as store:
            run_adaptive(
                [curve],
                store,
                SerialExecutor(),
                evaluate,
                seed=4,
                p_min=1e-8,
                p_max=1e-1,
                a_max={curve: 0.95},
                num_classes={curve: 10},
                options=AdaptiveConfig(enabled=True),
                progress=False,
            )
            return store.points_frame()

    full = adaptive(tmp_path / "full", SURROGATE)
    calls = {"n": 0}

    def dies_after_9(task):
        calls["n"] += 1
        if calls["n"] > 9:
            raise KeyboardInterrupt
        return SURROGATE(task)

    with pytest.raises(KeyboardInterrupt):
        adaptive(tmp_path / "part", dies_after_9)
    counted = {"n": 0}

    def counting(task):
        counted["n"] += 1
        return SURROGATE(task)

    resumed = adaptive(tmp_path / "part", counting)
    assert counted["n"] == len(full) - 9
    pd.testing.assert_frame_equal(resumed, full)
