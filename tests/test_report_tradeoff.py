"""The trade-off figure's Pareto rule (accuracy within the noise does not keep a policy alive)
and its accuracy bars (the noise that rule allows)."""

from __future__ import annotations

import math

import pandas as pd

from memsim.report.tradeoff import (
    NOISE_SIGMAS,
    _stderr,
    accuracy_energy_area,
    accuracy_error,
    pareto_optimal,
    tradeoff_frame,
)


def frame(rows):
    cols = ["policy", "accuracy_at_operating_point", "accuracy_at_operating_point_std"]
    cols += ["n_repeats", "total_energy_pj_per_inference", "area_mm2"]
    data = pd.DataFrame(rows, columns=cols)
    return data.assign(workload="w", format="float32", condition="c")


def test_cheaper_and_smaller_at_unresolved_accuracy_dominates():
    rows = frame(
        [
            ("a", 0.90, 0.01, 4, 100.0, 1.0),
            ("b", 0.91, 0.01, 4, 120.0, 1.0),  # +0.01 is < 2 standard errors (0.0141): unresolved
            ("c", 0.99, 0.01, 4, 150.0, 1.0),  # +0.09: resolved, kept
            ("d", 0.50, 0.01, 4, 90.0, 2.0),  # cheapest energy: kept despite area and accuracy
        ]
    )
    assert pareto_optimal(rows).tolist() == [True, False, True, True]


def test_exact_ties_keep_both_and_missing_costs_are_not_drawn():
    rows = frame([("a", 0.9, 0.0, 3, 100.0, 1.0), ("b", 0.9, 0.0, 3, 100.0, 1.0)])
    assert pareto_optimal(rows).tolist() == [True, True]
    rows.loc[1, "area_mm2"] = math.nan
    drawn = tradeoff_frame(rows)
    assert drawn["policy"].tolist() == ["a"] and drawn["pareto"].tolist() == [True]
    fig = accuracy_energy_area(rows)
    assert len(fig.axes) == 2
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["a", "Pareto-optimal"]  # no entry for a policy without a point


def test_one_repeat_takes_the_binomial_noise_of_its_images():
    """With one repeat there is no spread over repeats: a gap within the images' binomial
    noise is unresolved (it used to count as a finding at any size), a larger one is not."""
    rows = frame(
        [
            ("a", 0.90, math.nan, 1, 100.0, 1.0),
            ("b", 0.92, math.nan, 1, 120.0, 1.0),  # +0.02 on 400 images: 2 SE = 0.040
            ("c", 0.99, math.nan, 1, 150.0, 1.0),  # +0.09 over a: resolved, kept
        ]
    ).assign(n_images=400)
    assert pareto_optimal(rows).tolist() == [True, False, True]
    more = rows.assign(n_images=40_000)  # 2 SE = 0.004: b's gain is resolved
    assert pareto_optimal(more).tolist() == [True, True, True]


def test_repeats_that_agree_do_not_resolve_a_two_image_gap():
    """Deterministic policies: 3 repeats agree exactly (spread 0). Two images apart on 10,000
    (+0.0002) was "resolved" at any size, so at equal cost the more accurate one dominated;
    the images' own binomial error (2 × (0.003 + 0.003) for a difference on shared images)
    leaves them unseparated: neither dominates the other."""
    rows = frame(
        [
            ("a", 0.9000, 0.0, 3, 100.0, 1.0),
            ("b", 0.9002, 0.0, 3, 100.0, 1.0),
        ]
    ).assign(n_images=10_000)
    assert pareto_optimal(rows).tolist() == [True, True]
    dearer = rows.assign(total_energy_pj_per_inference=[100.0, 120.0])
    assert pareto_optimal(dearer).tolist() == [True, False]  # b's gain is noise: a is cheaper
    resolved = rows.assign(accuracy_at_operating_point=[0.90, 0.95])  # 500 images apart
    assert pareto_optimal(resolved).tolist() == [False, True]
    # without an image count there is nothing to bound the agreeing repeats by: as before
    assert pareto_optimal(rows.drop(columns="n_images")).tolist() == [False, True]


def test_a_gap_between_the_quadrature_and_the_sum_of_the_errors_is_unresolved():
    """Two policies on the same 10,000 images (se 0.003 each): a +0.010 gap is beyond
    2 × hypot (0.0085) but within 2 × the sum (0.012), the bound that holds whatever the
    correlation of the two on shared images."""
    rows = frame(
        [
            ("a", 0.900, 0.0, 3, 100.0, 1.0),
            ("b", 0.910, 0.0, 3, 100.0, 1.0),
        ]
    ).assign(n_images=10_000)
    assert pareto_optimal(rows).tolist() == [True, True]


def _bars(fig):
    """(x, low, high) of every accuracy bar drawn on the figure's top panels."""
    out = []
    for ax in fig.axes[: len(fig.axes) // 2]:
        for container in ax.containers:
            (segments,) = [c.get_segments() for c in container.lines[2]]
            for (x, low), (_, high) in segments:
                out.append((x, low, high))
    return sorted(out)


def test_the_bars_are_the_noise_the_pareto_rule_allows():
    """The bars were ±1 std over repeats: none where the repeats agree (std 0), while the rule
    counted 2 s.e. of the images' binomial error as noise. Now a bar is ±2 × the rule's
    standard error: where the repeats agree, the binomial bound of the shared images."""
    rows = frame(
        [
            ("a", 0.9000, 0.0, 3, 100.0, 1.0),  # repeats agree: 2 × sqrt(.9 × .1 / 10,000)
            ("b", 0.9002, 0.0, 3, 120.0, 1.0),  # within the noise: not ringed, but barred
            ("c", 0.5000, 0.2, 4, 150.0, 1.0),  # spread over repeats dominates: 2 × 0.2 / 2
        ]
    ).assign(n_images=10_000)
    # .iloc rows hold NumPy integers: they count (they were read as "no image count")
    assert math.isclose(accuracy_error(rows.iloc[0]), 2 * math.sqrt(0.9 * 0.1 / 10_000))
    assert math.isclose(accuracy_error(rows.iloc[2]), 0.2)
    fig = accuracy_energy_area(rows)
    bars = _bars(fig)
    assert [x for x, _, _ in bars] == [100.0, 120.0, 150.0]
    for (_, low, high), (_, r) in zip(bars, rows.iterrows()):
        half = NOISE_SIGMAS * _stderr(r)
        assert math.isclose(high - low, 2 * half) and half > 0
        assert math.isclose((low + high) / 2, r["accuracy_at_operating_point"])
    caption = fig.get_suptitle()
    assert f"± {NOISE_SIGMAS:g} standard errors" in caption and "binomial" in caption


def test_a_bar_is_absent_only_where_nothing_bounds_the_noise():
    rows = frame([("a", 0.9, math.nan, 1, 100.0, 1.0)])  # one repeat, no image count
    assert accuracy_error(rows.iloc[0]) == 0.0
    ((_, low, high),) = _bars(accuracy_energy_area(rows))
    assert low == high == 0.9
