"""The binarized-network energy study: energy model, tolerance with its uncertainty, summary,
the shared executor/results store (resume, kill -9), report, CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import kill_after_points

from memsim.config import ConfigError, build
from memsim.device import load_condition
from memsim.experiment.store import POINTS_LOG, ResultsError
from memsim.studies.bnn import (
    POINT_COLUMNS,
    BNNStudyConfig,
    load_study_config,
    parse_study_config,
    programming_energy_pj,
    run_study,
    study_conditions,
    summarize,
    tolerated_ber,
)
from memsim.studies.bnn_summary import (
    EQUAL,
    Criterion,
    _margins,
    compare,
    own_margins,
    point_means,
    resolving_effort,
    se_floor,
    z_value,
)
from workloads.bnn import bnn_recipe

TINY = BNNStudyConfig(
    train=bnn_recipe(epochs=2, seed=0),
    ber_grid=(1e-3, 0.1, 0.4),
    conditions=("nominal", "low_energy"),
    repeats=2,
    eval_limit=120,
)
DIGITS = os.fspath(os.path.join(os.path.dirname(__file__), "..", "configs", "bnn", "digits.toml"))
# The shipped digits study, made small enough for a test (still dozens of points).
SMALL = [
    "train.epochs=1",
    "repeats=3",
    "eval_limit=60",
    "ber_grid=[1e-3, 1e-2, 3e-2, 0.1, 0.2, 0.3]",
]


def test_programming_energy_counts_set_for_ones_and_reset_for_zeros():
    c = load_condition("low_energy")
    bits = {"bits": 10, "ones": 7, "zeros": 3}
    assert programming_energy_pj(bits, c) == pytest.approx(7 * c.e_set_pj + 3 * c.e_reset_pj)
    assert programming_energy_pj(bits, c, "2t2r") == pytest.approx(10 * (c.e_set_pj + c.e_reset_pj))


def test_tolerated_ber_finds_first_crossing_and_interpolates():
    curve = pd.DataFrame({"p01": [0.0, 1e-3, 1e-2, 1e-1], "accuracy": [0.90, 0.895, 0.88, 0.5]})
    grid, interp, censored = tolerated_ber(curve, floor=0.89)
    assert grid == 1e-3 and not censored
    assert 1e-3 < interp < 1e-2
    assert interp == pytest.approx(10 ** (-3 + (0.895 - 0.89) / (0.895 - 0.88)))
    assert tolerated_ber(curve, floor=0.4) == (0.1, 0.1, True)
    assert tolerated_ber(curve, floor=0.95)[0] == 0.0
    # The first grid rate failing right after the error-free point: tolerance 0, no crash.
    assert tolerated_ber(curve, floor=0.899) == (0.0, 0.0, False)


def _points(rows, n=100):
    """Rows (network, sweep, condition, p, repeat, correct images, lost, gained, energy)."""
    out = []
    for net, sweep, cond, p, repeat, correct, lost, gained, energy in rows:
        out.append(
            dict(zip(POINT_COLUMNS, (net, sweep, cond, p, p, repeat, 0, correct / n, n, lost, gained, energy, "")))
        )  # fmt: skip
    return pd.DataFrame(out)


def test_summary_energy_ratio_and_references():
    nan = math.nan
    rows = []
    # Two identical repeats (a known, zero fault-map spread) on 1000 images, so that a point
    # with no changed image is sure to stay within 1 point (its floor: 0.38 points).
    for net, clean, accs in (("plain", 950, [950, 800]), ("error_aware", 930, [930, 925])):
        rows.append((net, "clean", "", 0.0, 0, clean, 0, 0, nan))
        for r in range(2):
            rows.append((net, "ber", "", 1e-3, r, accs[0], 0, 0, nan))
            rows.append((net, "ber", "", 4e-2, r, accs[1], clean - accs[1], 0, nan))
            rows.append((net, "condition", "nominal", 1e-6, r, clean, 0, 0, 600.0))
            rows.append(
                (net, "condition", "low_energy", 4e-2, r, accs[1], clean - accs[1], 0, 20.0)
            )
    summary = summarize(_points(rows, n=1000), tolerance_points=1.0)
    summary = summary.set_index(["network", "reference"])
    assert summary.loc[("plain", "own"), "min_energy_condition"] == "nominal"
    assert summary.loc[("error_aware", "own"), "min_energy_condition"] == "low_energy"
    assert summary.loc[("error_aware", "own"), "energy_ratio"] == pytest.approx(30.0)
    assert summary.loc[("plain", "own"), "tolerated_ber"] == 1e-3
    assert bool(summary.loc[("error_aware", "own"), "tolerated_censored"])
    # Against the plain network's error-free 95 %, 93 % is more than one point down.
    assert summary.loc[("error_aware", "plain"), "min_energy_condition"] == ""
    # Bounds bracket the estimates wherever both exist.
    for col in ("min_energy_pj", "tolerated_ber", "tolerated_ber_interp"):
        both = summary[[f"{col}_low", col, f"{col}_high"]].dropna()
        assert len(both) >= 2
        assert (both[f"{col}_low"] <= both[col]).all() and (both[col] <= both[f"{col}_high"]).all()
    # Here every point is decided: the bounds are the estimates.
    own = summary.xs("own", level="reference")
    assert (own["undecided_points"] == 0).all() and (own["warning"] == "").all()
    assert own.loc["error_aware", "min_energy_condition_high"] == "low_energy"


def test_the_plain_rows_energy_ratio_is_exactly_one_bounds_included():
    """Its bounds paired its own optimistic with its pessimistic energy (1 [0.0635, 15.8])."""
    rows = []
    for net in ("plain", "error_aware"):
        rows.append((net, "clean", "", 0.0, 0, 950, 0, 0, math.nan))
        for r, lost in enumerate((8, 12)):  # undecided at low_energy (margin 0 ± noise)
            rows.append((net, "condition", "nominal", 1e-6, r, 950, 0, 0, 600.0))
            rows.append((net, "condition", "low_energy", 4e-2, r, 950 - lost, lost, 0, 20.0))
    summary = summarize(_points(rows, n=1000)).set_index(["network", "reference"])
    for ref in ("own", "plain"):
        plain = summary.loc[("plain", ref)]
        assert plain["min_energy_pj_low"] == 20.0 and plain["min_energy_pj_high"] == 600.0
        assert (plain["energy_ratio"], plain["energy_ratio_low"], plain["energy_ratio_high"]) == (
            1,
            1,
            1,
        )
    aware = summary.loc[("error_aware", "own")]
    assert (aware["energy_ratio_low"], aware["energy_ratio_high"]) == (20 / 600, 600 / 20)


def _one_point(lost: int, gained: int, *, n: int, repeats: int, clean: int | None = None):
    """Both networks: an error-free point and one rate / condition (p = 1e-4) where every
    repeat loses ``lost`` and gains ``gained`` images."""
    clean = n - 1 if clean is None else clean
    rows = []
    for net in ("plain", "error_aware"):
        rows.append((net, "clean", "", 0.0, 0, clean, 0, 0, math.nan))
        for r in range(repeats):
            correct = clean - lost + gained
            rows.append((net, "ber", "", 1e-4, r, correct, lost, gained, math.nan))
            rows.append((net, "condition", "medium", 1e-4, r, correct, lost, gained, 34_000.0))
    return _points(rows, n=n)


def test_no_changed_image_does_not_make_a_point_sure():
    """0 of 64 images changed gave se = 0 and a sure pass, although one lost image already
    fails a 1-point floor: 0 in 64 only bounds the changed fraction by the Wilson bound
    z²/(n + z²) ≈ 5.7 % (the rule of three)."""
    z = z_value(0.95)
    margins = own_margins(point_means(_one_point(0, 0, n=64, repeats=2)), 1.0, z)
    faulty = margins[margins["sweep"] != "clean"]
    assert (faulty["status"] == "undecided").all()
    assert faulty["se"].to_numpy() == pytest.approx(z / (64 + z * z))  # = se_floor
    assert (z * faulty["se"]).to_numpy() == pytest.approx(z * z / (64 + z * z))
    assert se_floor(64, z) == pytest.approx(z / (64 + z * z))
    summary = summarize(_one_point(0, 0, n=64, repeats=2)).set_index(["network", "reference"])
    plain = summary.loc[("plain", "own")]
    assert plain["tolerated_ber"] == 1e-4 and plain["tolerated_ber_low"] == 0.0
    assert plain["min_energy_condition"] == "medium" and math.isnan(plain["min_energy_pj_high"])
    assert plain["undecided_points"] == 2
    # On 1000 images the same observation is sure (floor 0.38 point < 1 point).
    big = summarize(_one_point(0, 0, n=1000, repeats=2)).set_index(["network", "reference"])
    assert big.loc[("plain", "own"), "tolerated_ber_low"] == 1e-4
    assert big.loc[("plain", "own"), "min_energy_pj_high"] == 34_000.0
    assert big.loc[("plain", "own"), "undecided_points"] == 0


def test_clean_accuracy_of_100_percent_has_a_standard_error():
    summary = summarize(_one_point(0, 0, n=64, repeats=2, clean=64))
    row = summary.iloc[0]
    z = z_value(0.95)
    assert row["clean_accuracy"] == 1.0
    assert row["clean_accuracy_se"] == pytest.approx(z / (64 + z * z))
    assert row["clean_accuracy_low"] == pytest.approx(64 / (64 + z * z))  # Wilson at 64/64
    assert row["clean_accuracy_high"] == 1.0
    # Away from 0 and 100 % the binomial standard error is kept where it is larger.
    mid = summarize(_one_point(0, 0, n=64, repeats=2, clean=32)).iloc[0]
    assert mid["clean_accuracy_se"] == pytest.approx(math.sqrt(0.25 / 64))


def test_one_repeat_decides_no_point_and_warns():
    """With one fault-map draw the spread over fault maps was counted as 0: a point could
    "surely" pass or fail on one draw. It is unknown, so no faulty point is decided."""
    one = _one_point(34, 0, n=64, repeats=1)  # loses 34 of 64 images: fails on the mean
    z = z_value(0.95)
    margins = own_margins(point_means(one), 1.0, z)
    faulty = margins[margins["sweep"] != "clean"]
    assert (faulty["status"] == "undecided").all() and np.isinf(faulty["se"]).all()
    assert np.isfinite(faulty["se_image"]).all()  # the test set's share is still known
    assert (margins.loc[margins["sweep"] == "clean", "status"] == "pass").all()
    summary = summarize(one).set_index(["network", "reference"])
    plain = summary.loc[("plain", "own")]
    assert plain["repeats"] == 1 and "run at least 2 repeats" in plain["warning"]
    assert plain["tolerated_ber_low"] == 0.0 and bool(plain["tolerated_ber_high_censored"])
    assert plain["min_energy_pj_low"] == 34_000.0 and math.isnan(plain["min_energy_pj_high"])
    comparison = compare(one).set_index("quantity")
    assert (comparison["verdict"] == "not resolved").all()
    assert "run at least 2 repeats" in comparison.loc["min_energy_pj", "resolve_hint"]
    # Two draws that agree make the spread known: the same loss now fails surely.
    two = summarize(_one_point(34, 0, n=64, repeats=2)).set_index(["network", "reference"])
    assert two.loc[("plain", "own"), "warning"] == ""
    assert two.loc[("plain", "own"), "tolerated_ber_high"] == 0.0
    assert two.loc[("plain", "own"), "undecided_points"] == 0


def test_against_the_plain_network_the_standard_errors_add():
    """The error-aware network against the plain network's error-free accuracy, both on the
    same images: the binomial variances were added in quadrature (as if independent samples);
    Minkowski bounds the standard error of the difference by the sum."""
    n = 1000
    rows = []
    for net in ("plain", "error_aware"):
        rows.append((net, "clean", "", 0.0, 0, 950, 0, 0, math.nan))
    for r in range(2):
        rows.append(("plain", "condition", "medium", 1e-4, r, 950, 0, 0, 34_000.0))
        rows.append(("error_aware", "condition", "medium", 1e-4, r, 961, 0, 11, 34_000.0))
    z = z_value(0.95)
    a, c = 0.961, 0.95
    sd_a, sd_c = math.sqrt(a * (1 - a) / n), math.sqrt(c * (1 - c) / n)
    margin = a - (c - 0.01)
    # The margin lies between the two: quadrature would pass it surely, the sum does not.
    assert z * math.hypot(sd_a, sd_c) < margin < z * (sd_a + sd_c)
    crit = Criterion(c - 0.01, z, paired=False, reference_accuracy=c, own_accuracy=0.95)
    means = point_means(_points(rows, n=n))
    mine = _margins(means[means["network"] == "error_aware"], crit)
    point = mine[mine["sweep"] == "condition"].iloc[0]
    assert point["se"] == pytest.approx(sd_a + sd_c) and point["status"] == "undecided"
    summary = summarize(_points(rows, n=n)).set_index(["network", "reference"])
    assert math.isnan(summary.loc[("error_aware", "plain"), "min_energy_pj_high"])
    assert summary.loc[("error_aware", "own"), "min_energy_pj_high"] == 34_000.0


def test_equal_intervals_are_equal_only_at_the_grids_resolution():
    rows = []
    for net in ("plain", "error_aware"):
        rows.append((net, "clean", "", 0.0, 0, 950, 0, 0, math.nan))
        for r in range(2):
            for p, cond, lost, energy in (
                (1e-3, "nominal", 0, 600.0),
                (1e-2, "low_energy", 50, 20.0),
            ):
                rows.append((net, "ber", "", p, r, 950 - lost, lost, 0, math.nan))
                rows.append((net, "condition", cond, p, r, 950 - lost, lost, 0, energy))
    comparison = compare(_points(rows, n=1000)).set_index("quantity")
    assert (comparison["verdict"] == EQUAL).all()
    assert EQUAL == "equal at this grid's resolution"
    from memsim.report.bnn import headline_lines

    text = "\n".join(headline_lines(comparison.reset_index()))
    assert text.count("equal at this grid's resolution") == 2 and ": equal." not in text


def _knife_edge(plain_extra_images: int, *, n: int = 360, repeats: int = 5):
    """Both networks at 98.33 % error-free; at low_energy the plain network loses about
    3.6 images (the criterion allows 3.6) and the error-aware one loses 1; at nominal neither loses."""
    rows = []
    for net in ("plain", "error_aware"):
        rows.append((net, "clean", "", 0.0, 0, 354, 0, 0, math.nan))
    for r in range(repeats):
        for net in ("plain", "error_aware"):
            rows.append((net, "condition", "nominal", 1e-6, r, 354, 0, 0, 50_000.0))
            rows.append((net, "ber", "", 1e-6, r, 354, 0, 0, math.nan))
        # The plain network passes by `plain_extra_images` in total over all repeats.
        lost = [4, 4, 3, 3, 4]
        lost[0] -= plain_extra_images
        for net, loss in (("plain", lost[r]), ("error_aware", 1)):
            rows.append((net, "condition", "low_energy", 4e-2, r, 354 - loss, loss + 2, 2, 1_700.0))
            rows.append((net, "ber", "", 4e-2, r, 354 - loss, loss + 2, 2, math.nan))
    return _points(rows, n=n)


def test_a_comparison_decided_by_one_image_is_reported_unresolved():
    points = _knife_edge(plain_extra_images=1)
    summary = summarize(points, 1.0).set_index(["network", "reference"])
    plain = summary.loc[("plain", "own")]
    # Point estimate: the plain network passes at low_energy (by one image in 1800 evaluations)...
    assert plain["min_energy_condition"] == "low_energy"
    assert plain["accuracy_at_min_energy"] - plain["floor_accuracy"] < 1 / 360
    # ...but the uncertainty leaves that open, and the comparison says so. Not even nominal,
    # where no image changed, is sure: 0 of 360 bounds the loss only by ~1.05 points.
    assert plain["min_energy_pj_low"] == 1_700.0 and math.isnan(plain["min_energy_pj_high"])
    comparison = compare(points, 1.0).set_index("quantity")
    for quantity in ("min_energy_pj", "tolerated_ber"):
        assert comparison.loc[quantity, "verdict"] == "not resolved"
        hint = comparison.loc[quantity, "resolve_hint"]
        assert "images" in hint and "repeats" in hint and "plain" in hint


def test_a_comparison_with_a_clear_margin_is_resolved():
    # The plain network loses 55 of 1000 images at low_energy (criterion: 10): surely
    # insufficient; the error-aware one loses none (surely within 1 point on 1000 images).
    rows = []
    for net in ("plain", "error_aware"):
        rows.append((net, "clean", "", 0.0, 0, 983, 0, 0, math.nan))
    for r in range(5):
        for net, loss in (("plain", 55 + r % 2), ("error_aware", 0)):
            rows.append((net, "condition", "nominal", 1e-6, r, 983, 0, 0, 50_000.0))
            rows.append((net, "condition", "low_energy", 4e-2, r, 983 - loss, loss, 0, 1_700.0))
            rows.append((net, "ber", "", 4e-2, r, 983 - loss, loss, 0, math.nan))
    comparison = compare(_points(rows, n=1000), 1.0).set_index("quantity")
    assert comparison.loc["min_energy_pj", "verdict"] == "error_aware lower"
    assert comparison.loc["tolerated_ber", "verdict"] == "error_aware higher"
    assert comparison.loc["min_energy_pj", "resolve_hint"] == ""


def test_resolving_effort_matches_the_closed_form():
    # margin 0.01, fault-map variance 1e-4 per repeat over 4 repeats, per-image variance 0.02 at 400.
    row = pd.Series(
        {"margin": 0.01, "repeats": 4, "n_images": 400, "var_fault": 1e-4, "var_b": 0.02 / 400}
    )
    z = 1.96
    effort = resolving_effort(row, z)
    budget = (0.01 / z) ** 2
    assert effort["factor"] == pytest.approx((1e-4 / 4 + 0.02 / 400) / budget)
    assert effort["repeats"] == math.inf  # the 400-image test set alone is too noisy already
    assert effort["images"] == math.ceil(0.02 / (budget - 1e-4 / 4))
    tie = resolving_effort(row.copy().replace({0.01: 0.0}), z)
    assert tie["factor"] == math.inf


def test_resolving_effort_counts_the_floor_shrinking_with_the_images():
    """No changed image in 64: the floor (not a per-image variance of 0.053) sets the images."""
    z = 1.96
    n = 64
    row = pd.Series(
        {"margin": 0.01, "repeats": 2, "n_images": n, "var_fault": 0.0, "var_image": 0.0,
         "var_b": se_floor(n, z) ** 2}
    )  # fmt: skip
    effort = resolving_effort(row, z)
    assert effort["images"] == math.ceil(z / (0.01 / z) - z * z)  # z·se_floor(m) <= margin
    assert z * se_floor(effort["images"], z) <= 0.01 < z * se_floor(effort["images"] - 1, z)
    assert effort["images"] - 1 < effort["factor"] * n <= effort["images"]
    assert effort["repeats"] == math.inf  # the 64 images alone can never decide it
    # One repeat: the spread is unknown; at least 2 repeats, the images a lower bound.
    row1 = row.copy()
    row1["repeats"], row1["var_fault"] = 1, math.nan
    unknown = resolving_effort(row1, z)
    assert unknown["repeats"] >= 2 and unknown["images"] == effort["images"]


def _errorbars(ax) -> dict[str, np.ndarray]:
    """Half heights (accuracy points) of each errorbar container, by label."""
    out = {}
    for container in ax.containers:
        (bars,) = container.lines[2]
        segs = bars.get_segments()
        out[container.get_label()] = np.array([abs(s[1][1] - s[0][1]) / 2 for s in segs])
    return out


def test_figures_draw_the_bounds_the_decision_uses():
    """Bars were ±1 std over fault maps only (0 for agreeing or single repeats) while the
    decision counted the test set's binomial error too."""
    import matplotlib.pyplot as plt

    from memsim.report.bnn import accuracy_vs_ber, accuracy_vs_energy

    z = z_value(0.95)
    points = _one_point(2, 0, n=200, repeats=2, clean=100)  # agreeing repeats: std 0
    margins = own_margins(point_means(points), 1.0, z)
    ber = margins[margins["sweep"] == "ber"].set_index("network")
    for draw in (accuracy_vs_ber, accuracy_vs_energy):
        fig = draw(points, 1.0, 0.95)
        bars = _errorbars(fig.axes[0])
        for net, label in (("plain", "plain training"), ("error_aware", "error-aware training")):
            assert bars[label] == pytest.approx([100 * z * ber.loc[net, "se"]])
            assert (bars[label] > 0).all()
        assert "test-set" in fig.axes[0].get_title()
        plt.close(fig)
    # One repeat: the test set's share is drawn, and the title says the spread is unknown.
    one = _one_point(2, 0, n=200, repeats=1, clean=100)
    margins = own_margins(point_means(one), 1.0, z)
    fig = accuracy_vs_ber(one, 1.0, 0.95)
    bars = _errorbars(fig.axes[0])
    plain = margins[(margins["sweep"] == "ber") & (margins["network"] == "plain")]
    share = 100 * z * plain["se_image"].to_numpy()
    assert bars["plain training"] == pytest.approx(share) and (share > 0).all()
    assert "unknown" in fig.axes[0].get_title()
    plt.close(fig)


def test_the_cli_headline_carries_the_reports_bounds_and_verdicts():
    """`memsim bnn` printed `energy_ratio 15.75`, a bare condition and `tolerated_ber 0.005`
    for a censored `≥ 0.005`, while the report gave bounds and called the comparison open."""
    from memsim.cli.bnn import headline
    from memsim.report.bnn import markdown_section, summary_cells

    points = _knife_edge(plain_extra_images=1)
    summary, comparison = summarize(points, 1.0), compare(points, 1.0)
    text = headline(summary, comparison)
    report = markdown_section(summary, pd.DataFrame(), comparison=comparison)
    for _, row in summary.iterrows():
        for cell in summary_cells(row).values():
            assert cell in text and cell in report
    own = summary.set_index(["network", "reference"]).loc[("error_aware", "own")]
    assert bool(own["tolerated_censored"])
    assert f"tolerated BER [bounds]: ≥ {own['tolerated_ber']:.3g} [" in text
    assert "energy ratio plain / this [bounds]: 1 [1, 1]" in text  # the plain rows
    assert "condition [bounds]: low_energy [low_energy, none surely]" in text
    assert "error-free acc. % [bounds]: 98.33 [" in text
    assert text.count("not resolved by these data") == 2 and "**" not in text
    assert "Warning" not in text
    one = _one_point(0, 0, n=64, repeats=1)
    assert "Warning: one fault-map draw per point" in headline(summarize(one), compare(one))


def test_run_study_writes_points_resumes_and_reports(tmp_path):
    out = tmp_path / "study"
    result = run_study(TINY, out, progress=False)
    points = result["points"]
    # clean once per network + (3 rates + 2 conditions) x 2 repeats x 2 networks
    assert len(points) == 2 + 2 * 2 * 5
    assert (out / "plain.pt").is_file() and (out / "error_aware.pt").is_file()
    on_disk = pd.read_csv(out / "points.csv")
    assert len(on_disk) == len(points) == on_disk["point_id"].nunique()
    assert (out / POINTS_LOG).read_text().count("\n") == len(points)
    low = points[(points["condition"] == "low_energy") & (points["network"] == "plain")]
    assert low["energy_pj"].nunique() == 1 and low["energy_pj"].iloc[0] > 0
    clean = points[points["sweep"] == "clean"].set_index("network")["accuracy"]
    heavy = points[(points["p01"] == 0.4)].groupby("network")["accuracy"].mean()
    assert (heavy < clean.reindex(heavy.index)).all()  # 40 % sign flips hurt both networks
    # Lost/gained images are consistent with the accuracy change (paired counts).
    diff = points.set_index("network")["accuracy"] - clean
    counted = (points["n_gained"] - points["n_lost"]) / points["n_images"]
    assert (diff.to_numpy() - counted.to_numpy()).__abs__().max() < 1e-12
    # Resume: nothing is recomputed, the stored points come back unchanged.
    again = run_study(TINY, out, progress=False)
    assert (out / POINTS_LOG).read_text().count("\n") == len(points)
    pd.testing.assert_frame_equal(again["points"], points)
    pd.testing.assert_frame_equal(
        again["summary"].reset_index(drop=True),
        result["summary"].reset_index(drop=True),
        check_dtype=False,
    )
    with pytest.raises(ResultsError, match="different experiment"):
        run_study(BNNStudyConfig(**{**TINY.__dict__, "repeats": 1}), out, progress=False)

    from memsim.report import write_report
    from memsim.report.bnn import markdown_section, write_section

    text = markdown_section(
        result["summary"], result["conditions"], comparison=result["comparison"]
    )
    assert "tolerated BER" in text and "low_energy" in text and "Plain vs. error-aware" in text
    path = write_section(tmp_path / "report", points, result["conditions"], result["summary"])
    assert path.read_text().count("![") == 2
    assert (tmp_path / "report" / "bnn_accuracy_vs_ber.png").stat().st_size > 0
    assert (tmp_path / "report" / "bnn_accuracy_vs_energy.png").stat().st_size > 0
    # `memsim report DIR` re-creates the study's report from the folder alone.
    before = (out / "summary.csv").read_text()
    (out / "summary.csv").unlink()
    report = write_report(out)
    assert report.name == "bnn_report.md"
    assert (out / "summary.csv").read_text() == before
    assert json.loads((out / "config.json").read_text())["study"] == {"kind": "bnn"}


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="ber_gird"):
        build(BNNStudyConfig, {"ber_gird": [0.1]}, source="x.toml")
    with pytest.raises(ConfigError, match="cell"):
        build(BNNStudyConfig, {"cell": "3t3r"}, source="x.toml")
    with pytest.raises(ConfigError, match="weight_noise_p"):
        parse_study_config({"train": {"weight_noise_p": 0.1}}, source="x.toml")
    with pytest.raises(ConfigError, match="train_ber"):
        parse_study_config({"train": {"train_ber": 0.1}}, source="x.toml")
    with pytest.raises(ConfigError, match="study"):
        parse_study_config({"study": {"kind": "sweep"}}, source="x.toml")
    with pytest.raises(ConfigError, match="bnn_digts"):
        parse_study_config({"workload": "bnn_digts"}, source="x.toml")
    with pytest.raises(FileNotFoundError, match="digits"):
        load_study_config("no_such_study")
    with pytest.raises(ConfigError, match="repeats"):
        load_study_config("digits", overrides=["repeats=0"])
    for name in (
        "digits",
        "digits_compliance",
        "digits_2t2r",
        "cifar10",
        "cifar10_compliance",
        "cifar10_full_data",
        "mnist",
    ):
        config = load_study_config(name)
        assert config.tolerance_points == 1.0
        # [train] overrides the workload's recipe: Adam and cosine stay from the BNN family.
        assert config.train.optimizer == "adam" and config.train.schedule == "cosine"
    assert load_study_config("cifar10").train.augment is True
    # As `memsim run bnn/digits` names it, and with the file's suffix.
    assert load_study_config("bnn/digits") == load_study_config("digits")
    assert load_study_config("digits.toml") == load_study_config("digits")


def test_conditions_run_from_nominal_to_low_energy():
    conditions = study_conditions(BNNStudyConfig(compliance_ratios=(0.5,)))
    energies = [c.e_set_pj + c.e_reset_pj for c in conditions]
    assert energies == sorted(energies, reverse=True)
    assert conditions[0].name == "nominal" and conditions[-1].name == "low_energy"
    assert any(c.name == "nominal_ic0.5" for c in conditions)


def test_cli_runs_a_config_file(tmp_path, capsys):
    from memsim.cli import bnn as bnn_cli

    config = tmp_path / "tiny.toml"
    config.write_text(
        'workload = "bnn_digits"\nber_grid = [0.01]\nconditions = ["nominal"]\nrepeats = 1\n'
        "eval_limit = 60\n[train]\nepochs = 1\n"
    )
    parser = argparse.ArgumentParser()
    bnn_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["bnn", str(config), "--out", str(tmp_path / "out"), "--quiet"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "energy ratio plain / this [bounds]: 1 [1, 1]" in out
    assert "lowest sufficient energy: plain " in out and "Warning: one fault-map draw" in out
    assert (tmp_path / "out" / "bnn_report.md").is_file()


def _run_cmd(out) -> list[str]:
    cmd = [sys.executable, "-m", "memsim", "run", DIGITS, "--out", os.fspath(out), "--no-progress"]
    for item in SMALL:
        cmd += ["--set", item]
    return cmd


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory):
    """The small digits study through `memsim run`, uninterrupted."""
    out = tmp_path_factory.mktemp("bnn-reference")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_run_cmd(out), env=env, check=True, capture_output=True)
    return pd.read_csv(out / "points.csv")


def test_memsim_run_on_a_bnn_config_runs_the_study(small_reference):
    # clean once per network + (6 rates + 4 shipped conditions) x 3 repeats x 2 networks
    assert len(small_reference) == 2 + 3 * 2 * 10
    assert set(small_reference["sweep"]) == {"clean", "ber", "condition"}
    assert small_reference["point_id"].is_unique


def test_bnn_run_killed_with_sigkill_resumes_to_the_same_points(tmp_path, small_reference):
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = out / POINTS_LOG
    done_before = kill_after_points(_run_cmd(out), log, 10, timeout_s=180, env=env)
    assert 10 <= done_before < len(small_reference)

    subprocess.run(_run_cmd(out), env=env, check=True, capture_output=True)
    resumed = pd.read_csv(out / "points.csv")
    pd.testing.assert_frame_equal(resumed, small_reference)
    # Nothing lost, nothing duplicated in the store either.
    assert log.read_text().count("\n") == len(small_reference)


def test_bnn_run_with_two_workers_gives_the_points_of_one(tmp_path, small_reference):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [*_run_cmd(tmp_path / "two"), "--workers", "2"], env=env, check=True, capture_output=True
    )
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "two" / "points.csv"), small_reference)


# ----------------------------------------------------------------------------- bad input
# Bad input is refused with one line naming the key and the value, before the output folder
# is claimed (a folder written by a failed run would refuse the corrected re-run as "a
# different experiment") and before any network is trained.

QUICK = ["--no-progress", "--set", "train.epochs=1", "--repeats", "1", "--eval-limit", "64",
         "--set", "ber_grid=[1e-3,1e-1]"]  # fmt: skip


@pytest.fixture
def bad_files(tmp_path):
    """A garbage checkpoint file and a folder where a checkpoint file is expected."""
    (tmp_path / "bad.pt").write_text("junk\n")
    (tmp_path / "folder.pt").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--set", 'conditions=["junk"]'],
         ["The 'conditions' entry 'junk' of the BNN study", "Unknown programming condition 'junk'"]),
        (["--plain-checkpoint", "{tmp}/nonexist.pt"],
         ["The 'plain_checkpoint' value", "nonexist.pt", "does not exist"]),
        (["--plain-checkpoint", "{tmp}/bad.pt"],
         ["The 'plain_checkpoint' value", "bad.pt", "corrupted or not a PyTorch checkpoint"]),
        (["--aware-checkpoint", "{tmp}/folder.pt"],
         ["The 'aware_checkpoint' value", "folder.pt", "not a checkpoint file"]),
        (["--set", 'workload="digits"'],
         ["The 'workload' value 'digits' of the BNN study", "not a binarized network", "bnn_digits"]),
        (["--set", "sigma_sa_ln=inf", "--set", 'cell="2t2r"'], ["'sigma_sa_ln'", "Got inf"]),
        (["--set", "workload_options={junk=1}"],
         ["The 'workload_options' value {'junk': 1}", "'junk'", "Valid options"]),
        (["--set", "compliance_ratios=[1e-9]"],
         ["The 'compliance_ratios' entry 1e-09 of the BNN study", "not a valid scaling"]),
        (["--eval-limit", "100000"],
         ["The 'eval_limit' value 100000 of the BNN study", "the 'test' split of workload"]),
        (["--set", "train.limit=100000"],
         ["The 'train.limit' value 100000 of the BNN study", "the 'train' split of workload",
          "holds 1,437"]),
        (["--set", "train.noise_p=0.01", "--set", 'train.noise_format="foo"'],
         ["'train.noise_format' in ", "The 'noise_format' parameter of TrainConfig", "Got 'foo'"]),
        (["--set", 'train.noise_bits="bogus"'],
         ["'train.noise_bits' in ", "The 'noise_bits' parameter of TrainConfig",
          "unknown field 'bogus'"]),
    ],
)  # fmt: skip
def test_cli_refuses_bad_input_before_writing_or_training(
    tmp_path, bad_files, capsys, extra, expected
):
    from memsim.cli.main import main

    out = tmp_path / "out"
    extra = [item.replace("{tmp}", os.fspath(bad_files)) for item in extra]
    assert main(["bnn", "digits", "--out", os.fspath(out), *QUICK, *extra]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("memsim bnn: error: ")
    for text in expected:
        assert text in last
    assert "epoch 1/1" not in err  # refused before training (no training log line)
    assert not out.exists()


def test_memsim_run_refuses_a_missing_checkpoint_before_writing(tmp_path, capsys):
    from memsim.cli.main import main

    out = tmp_path / "out"
    missing = os.fspath(tmp_path / "nonexist")
    args = ["run", "bnn/digits", "--out", os.fspath(out), "--no-progress", "--set",
            f"plain_checkpoint={missing!r}"]  # fmt: skip
    assert main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("memsim run: error: The 'plain_checkpoint' value")
    assert missing in last and "does not exist" in last
    assert not out.exists()


def test_the_config_parser_refuses_what_the_study_would_refuse_later(tmp_path):
    with pytest.raises(ConfigError, match=r"The 'conditions' entry 'junk' of the BNN study in"):
        load_study_config("digits", overrides=['conditions=["junk"]'])
    with pytest.raises(ConfigError, match=r"'workload' value 'digits' .* not a binarized network"):
        parse_study_config({"workload": "digits"}, source="x.toml")
    with pytest.raises(ConfigError, match="sigma_sa_ln"):
        parse_study_config({"cell": "2t2r", "sigma_sa_ln": math.inf}, source="x.toml")
    with pytest.raises(ConfigError, match="tolerance_points"):
        parse_study_config({"tolerance_points": math.inf}, source="x.toml")
    with pytest.raises(FileNotFoundError, match=r"'aware_checkpoint' value .*x\.toml"):
        parse_study_config({"aware_checkpoint": os.fspath(tmp_path / "no.pt")}, source="x.toml")


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"workload": "junk"}, ConfigError,
         r"^The 'workload' value 'junk' of the BNN study: Unknown workload 'junk'"),
        ({"workload": "digits"}, ConfigError, r"'workload' value 'digits' .* not a binarized"),
        ({"workload_options": {"junk": 1}}, ConfigError,
         r"^The 'workload_options' value \{'junk': 1\} of the BNN study: .*'junk'"),
        ({"conditions": ("junk",)}, ConfigError, r"^The 'conditions' entry 'junk' of the BNN study"),
        ({"plain_checkpoint": "{tmp}/nonexist.pt"}, FileNotFoundError,
         r"^The 'plain_checkpoint' value .*nonexist\.pt.* does not exist"),
        ({"aware_checkpoint": "{tmp}/bad.pt"}, ConfigError,
         r"^The 'aware_checkpoint' value .*bad\.pt.*: Checkpoint file .*bad\.pt is corrupted"),
        ({"plain_checkpoint": "{tmp}/folder.pt"}, ConfigError,
         r"^The 'plain_checkpoint' value .*folder\.pt.* not a checkpoint file"),
        ({"train": bnn_recipe(epochs=2, limit=1438)}, ConfigError,
         r"^The 'train.limit' value 1438 of the BNN study: 1438 images asked for, but the "
         r"'train' split of workload bnn_digits holds 1,437\.$"),
    ],
)  # fmt: skip
def test_run_study_refuses_bad_input_before_writing(tmp_path, bad_files, change, error, match):
    out = tmp_path / "out"
    change = {k: v.replace("{tmp}", os.fspath(bad_files)) if isinstance(v, str) else v
              for k, v in change.items()}  # fmt: skip
    with pytest.raises(error, match=match) as info:
        run_study(dataclasses.replace(TINY, **change), out, progress=False)
    assert "\n" not in str(info.value)
    assert not out.exists()


def test_a_corrected_rerun_into_the_same_folder_runs(tmp_path, capsys):
    from memsim.cli.main import main
    from memsim.studies.bnn import check_study

    out = tmp_path / "out"
    base = ["bnn", "digits", "--out", os.fspath(out), *QUICK]
    assert main([*base, "--set", 'conditions=["junk"]']) == 2
    assert not out.exists()
    assert main([*base, "--set", 'conditions=["nominal"]']) == 0
    assert (out / "points.csv").is_file() and (out / "bnn_report.md").is_file()
    assert "epoch 1/1" in capsys.readouterr().err  # what the refused runs must not print
    # The networks it trained are checkpoints the check accepts.
    check_study(
        dataclasses.replace(
            TINY,
            plain_checkpoint=os.fspath(out / "plain.pt"),
            aware_checkpoint=os.fspath(out / "error_aware.pt"),
        )
    )


def test_train_limit_and_repeats_are_checked_when_the_config_loads(tmp_path, capsys):
    """``train.limit`` beyond the training split was accepted (the run trained on fewer), and
    ``repeats`` had no upper bound though ``--repeats`` stops at 10,000."""
    from memsim.cli.main import main

    out = tmp_path / "out"
    assert main(["bnn", "digits", "--out", os.fspath(out), "--set", "repeats=100000000"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("memsim bnn: error: ") and "'repeats' parameter" in last
    assert "must be an int in [1, 10000]. Got 100000000." in last and not out.exists()
    with pytest.raises(ConfigError, match=r"^The 'train.limit' value 100000 of the BNN study in "):
        load_study_config("digits", overrides=["train.limit=100000"])
    assert load_study_config("digits", overrides=["train.limit=1437"]).train.limit == 1437
    with pytest.raises(ConfigError, match=r"'repeats' parameter .* \[1, 10000\]\. Got 100000000"):
        load_study_config("digits", overrides=["repeats=100000000"])
    assert load_study_config("digits", overrides=["repeats=10000"]).repeats == 10_000
    with pytest.raises(ValueError, match="'repeats'"):
        dataclasses.replace(TINY, repeats=10_001)


def test_train_limit_is_checked_only_when_a_network_is_trained(tmp_path):
    """With both checkpoints given nothing is trained: ``train.limit`` (a shipped config's, on a
    data set with a smaller training split) was still refused against the training split. It
    is checked as soon as one network is trained, and its value is still checked either way."""
    from workloads import get_workload
    from workloads.bnn import save_bnn

    workload = get_workload("bnn_digits")
    paths = {}
    for name in ("plain", "aware"):
        paths[f"{name}_checkpoint"] = os.fspath(
            save_bnn(tmp_path / f"{name}.pt", workload.build_model(), workload, TINY.train)
        )
    data = {"train": {"limit": 100_000}, "repeats": 1}
    config = parse_study_config({**data, **paths}, source="x.toml")
    assert config.train.limit == 100_000
    for only in paths:
        with pytest.raises(ConfigError, match=r"^The 'train.limit' value 100000 of the BNN study"):
            parse_study_config({**data, only: paths[only]}, source="x.toml")
    with pytest.raises(ConfigError, match=r"'limit' parameter must be a positive int"):
        parse_study_config({**paths, "train": {"limit": 0}}, source="x.toml")


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ('train.noise_format="foo"', r"The 'noise_format' parameter of TrainConfig .*Got 'foo'"),
        ('train.noise_format="binary"', r"The 'noise_format' parameter .*Got 'binary'"),
        ('train.noise_bits="bogus"', r"The 'noise_bits' parameter of TrainConfig .*'bogus'"),
    ],
)
def test_noise_format_and_bits_are_checked_when_the_config_loads(override, match):
    """They failed only in training ("Unknown storage format 'foo'", no key named), after the
    results folder was claimed, so the corrected re-run was refused."""
    key = re.search(r"The '(\w+)' parameter", match)[1]  # the message names the whole key
    with pytest.raises(
        ConfigError, match=rf"^'train\.{key}' in .*digits\.toml .*: " + match
    ) as info:
        load_study_config("digits", overrides=["train.noise_p=0.01", override])
    assert "\n" not in str(info.value)


def test_the_repeats_flag_and_key_have_one_bound():
    from memsim.cli import bnn as cli_bnn
    from memsim.studies.bnn import MAX_REPEATS

    parser = argparse.ArgumentParser()
    cli_bnn.add_parser(parser.add_subparsers())
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    (repeats,) = [a for a in sub.choices["bnn"]._actions if "--repeats" in a.option_strings]
    assert repeats.type.__name__ == f"int in [1, {MAX_REPEATS}]"
