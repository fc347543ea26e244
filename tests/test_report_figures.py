"""Report figures are readable and say nothing false: tick labels never overlap, legends list
only what is drawn, accuracy-vs-p figures show chance level and the operating point, and
energy has one unit (the tables' pJ)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from memsim.experiment.store import point_id
from memsim.fit import fit_points, logistic
from memsim.report import plots
from memsim.report.tables import CURVE_COLUMNS


def summary_rows(energies: dict[tuple[str, str], float]) -> pd.DataFrame:
    """A summary with one row per (format, policy): the default run's int8 energies."""
    return pd.DataFrame(
        [
            {
                "workload": "digits",
                "format": fmt,
                "policy": policy,
                "mask": "all",
                "condition": "nominal",
                "energy_pj_per_inference": energy,
                "accuracy_at_operating_point": 0.985 + 0.001 * i,
                "accuracy_at_operating_point_ci_low": 0.975,
                "accuracy_at_operating_point_ci_high": 0.993,
            }
            for i, ((fmt, policy), energy) in enumerate(energies.items())
        ]
    )


# Energies of the default run: the int8 panel spans less than a decade (2.40e4..2.72e4 pJ).
DEFAULT_ENERGIES = {
    ("float32", "baseline"): 96038.4,
    ("float32", "ecc_secded"): 108668.4,
    ("float32", "sram_exponent"): 73529.4,
    ("float32", "write_verify"): 106122.5,
    ("int8", "baseline"): 24009.6,
    ("int8", "ecc_secded"): 27170.9,
    ("int8", "write_verify"): 26530.6,
}


def visible_labels(ax, which: str):
    ax.figure.canvas.draw()
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = sorted(axis.get_view_interval())
    renderer = ax.figure.canvas.get_renderer()
    boxes = []
    for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
        label = tick.label1
        if label.get_visible() and label.get_text() and lo <= tick.get_loc() <= hi:
            boxes.append((label.get_text(), label.get_window_extent(renderer)))
    return boxes


def assert_ticks_readable(ax, which: str = "x") -> None:
    boxes = visible_labels(ax, which)
    assert 2 <= len(boxes) <= 8, [t for t, _ in boxes]
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), f"tick labels {ta!r} and {tb!r} overlap"


def drawn_labels(ax) -> set[str]:
    """Labels of artists on ``ax`` that hold at least one data point."""
    labels = set()
    for line in ax.lines:
        if len(line.get_xdata()):
            labels.add(line.get_label())
    for coll in ax.collections:
        if len(coll.get_offsets()):
            labels.add(coll.get_label())
    for container in ax.containers:
        first = container[0] if len(container) else None
        if first is not None and hasattr(first, "get_xdata") and len(first.get_xdata()):
            labels.add(container.get_label())
    return labels


def assert_legends_list_only_drawn_artists(fig) -> None:
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        listed = {t.get_text() for t in legend.get_texts()}
        assert listed <= drawn_labels(ax), listed - drawn_labels(ax)


def test_energy_figure_int8_panel_ticks_do_not_overlap():
    fig = plots.energy_vs_accuracy(summary_rows(DEFAULT_ENERGIES))
    for ax in fig.axes:
        assert_ticks_readable(ax, "x")


@pytest.mark.parametrize(
    ("low", "high"), [(24009.6, 27170.9), (1.0, 1.01), (3e-7, 9e-7), (1e-8, 1e-1), (10, 1e9)]
)
def test_readable_log_axis_never_overlaps(low, high):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.0, 3.0))
    ax.plot([low, high], [0, 1], "o")
    ax.set_xscale("log")
    plots.readable_log_axis(ax, "x")
    assert_ticks_readable(ax, "x")
    plt.close(fig)


def test_energy_figure_legend_lists_only_policies_with_a_point():
    fig = plots.energy_vs_accuracy(summary_rows(DEFAULT_ENERGIES))
    int8 = [ax for ax in fig.axes if ax.get_title().endswith("int8")][0]
    listed = {t.get_text() for t in int8.get_legend().get_texts()}
    assert "sram_exponent" not in listed and "baseline" in listed
    assert_legends_list_only_drawn_artists(fig)


def test_energy_figures_use_the_tables_unit():
    fig = plots.energy_vs_accuracy(summary_rows(DEFAULT_ENERGIES))
    assert all("(pJ)" in ax.get_xlabel() for ax in fig.axes)
    xs = np.concatenate([c[0].get_xdata() for ax in fig.axes for c in ax.containers]).astype(float)
    assert set(np.round(xs, 1)) == set(np.round(list(DEFAULT_ENERGIES.values()), 1))
    memory = pd.DataFrame(
        [
            {
                "workload": "digits",
                "format": "int8",
                "policy": "baseline",
                "condition": "nominal",
                "energy_pj_per_inference": 24009.6,
                "energy_rram_set_pj": 14009.6,
                "energy_rram_reset_pj": 10000.0,
            }
        ]
    )
    fig = plots.energy_by_category(memory)
    ax = fig.axes[0]
    assert "(pJ)" in ax.get_ylabel()
    assert max(p.get_y() + p.get_height() for p in ax.patches) == pytest.approx(24009.6)


def curve_points(policy: str, mu_log10: float, grid: np.ndarray, repeats: int = 3) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for kind, p, r in [("clean", 0.0, 0)] + [("sweep", float(p), r) for r in range(repeats) for p in grid]:  # fmt: skip
        key = {"workload": "w", "format": "float32", "policy": policy, "mask": "all",
               "kind": kind, "p": p, "p10": p, "repeat": r}  # fmt: skip
        acc = 0.95 if kind == "clean" else logistic(np.log10(p), mu_log10, 0.2, 0.95, 0.1)
        rows.append(
            {
                **key,
                "seed": 1,
                "coupled": True,
                "accuracy": float(np.clip(acc + rng.normal(0, 0.01) * (kind != "clean"), 0, 1)),
                "nonfinite_fraction": 0.0,
                "n_images": 200,
                "num_classes": 10,
                "point_id": point_id(key),
            }
        )
    return rows


def fits_of(points: pd.DataFrame) -> dict:
    fits = {}
    for key, group in points.groupby(list(CURVE_COLUMNS)):
        sweep = group[group["kind"] == "sweep"]
        fit = fit_points(
            sweep["p"].to_numpy(),
            sweep["accuracy"].to_numpy(),
            sweep["repeat"].to_numpy(),
            a_max=0.95,
            num_classes=10,
            n_boot=0,
        )
        fits[tuple(key)] = (fit, 10)
    return fits


def test_accuracy_figure_shows_chance_operating_point_and_binomial_bars():
    grid = np.logspace(-8, -1, 22)
    points = pd.DataFrame(curve_points("baseline", -4.0, grid) + curve_points("wv", 9.0, grid))
    conditions = pd.DataFrame([{"condition": "nominal", "operating_p01": 8e-7}])
    fig = plots.accuracy_vs_p(points, fits_of(points), conditions)
    ax = fig.axes[0]
    chance = [line for line in ax.lines if line.get_label().startswith("chance")]
    assert chance and np.allclose(chance[0].get_ydata(), 0.1)
    op = [line for line in ax.lines if line.get_label() == "operating p (nominal)"]
    assert op and np.allclose(op[0].get_xdata(), 8e-7)
    # Bars: the Wilson interval of 3 repeats × 200 images, not the spread over repeats.
    bars = [c for c in ax.containers if c.get_label() == "baseline"][0]
    segments = bars.lines[2][0].get_segments()
    heights = np.array([s[1][1] - s[0][1] for s in segments])
    assert (heights > 0.005).all()  # a Wilson interval of 600 trials is never degenerate
    assert_legends_list_only_drawn_artists(fig)
    assert_ticks_readable(ax, "x")
    assert "Wilson" in plots.ACCURACY_BARS


def test_mu_by_mask_draws_an_open_bound_to_the_range_edge_not_a_zero_bar():
    """A NaN bound (the interval reaches beyond the swept range) became a bar of zero length;
    it is now a bar to the edge of the range ending in a triangle."""
    base = {"workload": "w", "format": "float32", "policy": "baseline", "p_min": 1e-8, "p_max": 0.1}
    summary = pd.DataFrame(
        [
            {**base, "mask": "all", "mu": 1e-3, "mu_ci_low": 5e-4, "mu_ci_high": 2e-3, "mu_ci_open": ""},
            {**base, "mask": "first_noisy:1", "mu": 3e-2, "mu_ci_low": 1e-2, "mu_ci_high": math.nan, "mu_ci_open": "high"},
            {**base, "mask": "first_noisy:9", "mu": 1e-6, "mu_ci_low": math.nan, "mu_ci_high": 3e-6, "mu_ci_open": "low"},
            {**base, "policy": "wv", "mask": "all", "mu": math.nan, "mu_ci_low": math.nan, "mu_ci_high": math.nan, "mu_ci_open": ""},
        ]
    )  # fmt: skip
    fig = plots.mu_by_mask(summary, ["all", "first_noisy:1", "first_noisy:9"])
    ax = fig.axes[0]
    segments = [seg for coll in ax.collections for seg in coll.get_segments()]
    spans = sorted((float(s[0][0]), min(s[0][1], s[1][1]), max(s[0][1], s[1][1])) for s in segments)
    want = [(0, 5e-4, 2e-3), (1, 1e-2, 0.1), (2, 1e-8, 3e-6)]
    assert np.allclose(np.array(spans), np.array(want), rtol=1e-9, atol=0)
    assert all(high > low for _, low, high in spans)  # never a bar of zero length
    markers = {(line.get_marker(), float(line.get_xdata()[0]), float(line.get_ydata()[0]))
               for line in ax.lines if len(line.get_xdata()) == 1}  # fmt: skip
    assert ("^", 1.0, 0.1) in markers and ("v", 2.0, 1e-8) in markers
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert "CI open beyond the swept range" in labels
    assert "w · float32 · wv" not in labels  # nothing drawn for it: not in the legend
    assert "triangle" in plots.MU_BARS
