"""The trade-off figure's Pareto rule: accuracy within the noise does not keep a policy alive."""

from __future__ import annotations

import math

import pandas as pd

from memsim.report.tradeoff import accuracy_energy_area, pareto_optimal, tradeoff_frame


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
