"""Reports say how far their numbers can be trusted: one declared reference for overheads,
fits the grid does not resolve, measured p99 with its interval, binomial intervals per point,
and a second report beside the first."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from helpers import curve_rows

from memsim import fit as fitting
from memsim.cli.main import main
from memsim.config import ConfigError
from memsim.experiment.load import load_experiment
from memsim.experiment.store import (
    ResultsError,
    ResultsStore,
    config_hash,
    points_frame,
)
from memsim.fit import fit_points
from memsim.report import write_report
from memsim.report.tables import summary_table

GRID = np.logspace(-8, -1, 22)
TWO_CONDITIONS = pd.DataFrame(
    [
        {"condition": "nominal", "operating_p01": 1e-6, "operating_p10": 1e-6},
        {"condition": "low_energy", "operating_p01": 4e-2, "operating_p10": 4e-2},
    ]
)


def memory_rows(costs: dict[tuple[str, str], float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "workload": "w",
                "format": "float32",
                "policy": policy,
                "condition": cond,
                "energy_pj_per_inference": energy,
                "latency_ns_per_inference": energy / 10,
            }
            for (policy, cond), energy in costs.items()
        ]
    )


# --------------------------------------------------------------------------- reference


def test_overheads_divide_by_one_reference_across_conditions():
    # The lab-4 situation: write-verify at the low-energy condition costs 4.32x the baseline
    # at that condition but only 0.14x the nominal baseline.
    points = pd.DataFrame(
        curve_rows("baseline", -4.0, GRID, operating=(1e-6, 4e-2))
        + curve_rows("write_verify", -2.0, GRID, seed=1, operating=(1e-6, 4e-2))
    )
    memory = memory_rows(
        {
            ("baseline", "nominal"): 1000.0,
            ("write_verify", "nominal"): 1100.0,
            ("baseline", "low_energy"): 1000.0 * 0.14 / 4.32,
            ("write_verify", "low_energy"): 140.0,
        }
    )
    s = summary_table(points, memory, TWO_CONDITIONS, baseline="baseline", n_boot=0)
    wv_low = s[(s["policy"] == "write_verify") & (s["condition"] == "low_energy")].iloc[0]
    assert wv_low["energy_overhead"] == pytest.approx(0.14)
    assert wv_low["energy_overhead_same_condition"] == pytest.approx(4.32)
    assert (s["reference_policy"] == "baseline").all()
    assert (s["reference_condition"] == "nominal").all()
    base_low = s[(s["policy"] == "baseline") & (s["condition"] == "low_energy")].iloc[0]
    assert base_low["energy_overhead"] == pytest.approx(0.14 / 4.32)
    assert base_low["energy_overhead_same_condition"] == pytest.approx(1.0)
    # A declared reference condition moves every ratio with it.
    s2 = summary_table(
        points,
        memory,
        TWO_CONDITIONS,
        baseline="baseline",
        reference_condition="low_energy",
        n_boot=0,
    )
    wv_nom = s2[(s2["policy"] == "write_verify") & (s2["condition"] == "nominal")].iloc[0]
    assert wv_nom["energy_overhead"] == pytest.approx(1100.0 / (1000.0 * 0.14 / 4.32))


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ('report.reference.policy="sram"', "'report.reference.policy' must be one of the pol"),
        ('report.reference.condition="hot"', "'report.reference.condition' must be one of the"),
        ("report.reference.colour=1", "Unknown key 'report.reference.colour'"),
        ("report.reference=3", "'report.reference'"),
    ],
)
def test_bad_reference_is_refused_naming_the_key(override, match):
    with pytest.raises(ConfigError, match=match):
        load_experiment("labs/lab4_energy", overrides=[override])


def test_reference_condition_must_be_run_when_no_conditions_are_listed():
    with pytest.raises(ConfigError, match="must name a condition of the run"):
        load_experiment(overrides=['report.reference.condition="low_energy"'])


def test_default_report_section_keeps_the_config_hash():
    plain, _ = load_experiment()
    declared, _ = load_experiment(overrides=['report.reference.policy="write_verify"'])
    assert plain.report.reference.policy == ""
    # Folders made before [report] existed keep their identity: the default section is left out.
    data = plain.to_dict()
    del data["report"]
    del data["sweep"]["compute_dtype"]  # likewise a later addition, left out at its default
    del data["memory"]["latency_draws"]  # and another
    del data["sweep"]["flush_denormals"]  # and another
    data["adaptive"] = {"enabled": False}
    assert plain.digest() == config_hash(data)
    assert declared.digest() != plain.digest()
    draws, _ = load_experiment(overrides=["memory.latency_draws=9"])
    assert draws.digest() != plain.digest()


def stored_folder(tmp_path, points: pd.DataFrame, config: dict) -> None:
    with ResultsStore.open(tmp_path, config=config, digest="abc") as store:
        for row in points.to_dict("records"):
            store.append(row)
    (tmp_path / "metadata.json").write_text(json.dumps({"config_hash": "abc"}))


def test_report_states_the_reference_and_uses_the_declared_one(tmp_path):
    points = pd.DataFrame(
        curve_rows("baseline", -4.0, GRID, operating=(1e-6, 4e-2))
        + curve_rows("write_verify", -2.0, GRID, seed=1, operating=(1e-6, 4e-2))
    )
    config = {
        "name": "ref",
        "seed": 0,
        "baseline": "baseline",
        "policies": [{"label": "baseline"}, {"label": "write_verify"}],
        "fit": {"bootstrap": 0},
        "report": {"reference": {"policy": "write_verify", "condition": "low_energy"}},
    }
    stored_folder(tmp_path, points, config)
    memory_rows(
        {
            ("baseline", "nominal"): 1000.0,
            ("write_verify", "nominal"): 1100.0,
            ("baseline", "low_energy"): 50.0,
            ("write_verify", "low_energy"): 200.0,
        }
    ).to_csv(tmp_path / "memory.csv", index=False)
    TWO_CONDITIONS.to_csv(tmp_path / "conditions.csv", index=False)
    text = write_report(tmp_path).read_text()
    assert "write_verify at the low_energy condition" in text
    s = pd.read_csv(tmp_path / "summary.csv")
    base_nom = s[(s["policy"] == "baseline") & (s["condition"] == "nominal")].iloc[0]
    assert base_nom["energy_overhead"] == pytest.approx(1000.0 / 200.0)
    assert (s["reference_policy"] == "write_verify").all()


# --------------------------------------------------------------------------- fit quality


def test_coarse_grid_fit_says_its_drop_is_unresolved_and_suggests_a_grid():
    coarse = np.logspace(-8, -1, 8)  # one point per decade
    p, acc, rep = [], [], []
    for row in curve_rows("baseline", -4.0, coarse, repeats=2, sigma=0.15):
        if row["kind"] == "sweep":
            p.append(row["p"]), acc.append(row["accuracy"]), rep.append(row["repeat"])
    fit = fit_points(np.array(p), np.array(acc), np.array(rep), a_max=0.95, num_classes=10)
    assert fit.n_drop_points < fitting.MIN_DROP_POINTS
    assert fit.status == "unresolved_drop" and fit.fitted and not fit.ok
    assert not math.isnan(fit.mu)
    assert "grid.points_per_decade = " in fit.advice and "adaptive" in fit.advice
    ppd = int(fit.advice.split("grid.points_per_decade = ")[1].split()[0])
    # The suggested density puts at least fitting.MIN_DROP_POINTS into the 10-90 % band (2σ·ln 9 wide).
    assert ppd * 2 * fit.sigma * math.log(9) >= fitting.MIN_DROP_POINTS


def test_fit_with_a_collapsed_bootstrap_says_so():
    rows = [r for r in curve_rows("baseline", -4.0, GRID, repeats=1, noise=0.0)]
    sweep = [r for r in rows if r["kind"] == "sweep"]
    # Two identical repeats: every resample is the data itself, so the CI is a single value.
    p = np.array([r["p"] for r in sweep] * 2)
    acc = np.array([r["accuracy"] for r in sweep] * 2)
    rep = np.repeat([0, 1], len(sweep))
    fit = fit_points(p, acc, rep, a_max=0.95, num_classes=10, n_boot=50)
    assert fit.n_drop_points >= fitting.MIN_DROP_POINTS
    assert fit.status == "ci_collapsed"
    assert fit.mu_ci_low == pytest.approx(fit.mu) and "repeats" in fit.advice


def test_well_resolved_fit_stays_ok():
    rows = curve_rows("baseline", -4.0, GRID, repeats=5)
    sweep = [r for r in rows if r["kind"] == "sweep"]
    fit = fit_points(
        np.array([r["p"] for r in sweep]),
        np.array([r["accuracy"] for r in sweep]),
        np.array([r["repeat"] for r in sweep]),
        a_max=0.95,
        num_classes=10,
        n_boot=50,
    )
    assert fit.status == "ok" and fit.advice == ""
    assert fit.mu_ci_low < fit.mu < fit.mu_ci_high


def test_report_warns_about_a_bootstrap_over_two_repeats(tmp_path):
    points = pd.DataFrame(curve_rows("baseline", -4.0, GRID, repeats=2))
    config = {"name": "two", "seed": 0, "policies": [{"label": "baseline"}]}
    stored_folder(tmp_path, points, config)
    text = write_report(tmp_path).read_text()
    assert "**Warning:**" in text and "only 3 distinct resample" in text


@pytest.mark.parametrize(("repeats", "warned"), [(3, True), (4, True), (5, False)])
def test_report_warns_below_five_repeats(tmp_path, repeats, warned):
    """3 repeats give 10 distinct bootstrap resamples, 4 give 35: still warned; 5 give 126."""
    points = pd.DataFrame(curve_rows("baseline", -4.0, GRID, repeats=repeats))
    stored_folder(tmp_path, points, {"name": "r", "seed": 0, "policies": [{"label": "baseline"}]})
    text = write_report(tmp_path).read_text()
    distinct = math.comb(2 * repeats - 1, repeats)
    assert (f"only {distinct} distinct resample" in text) is warned
    assert ("**Warning:** the 95 % bootstrap" in text) is warned


# --------------------------------------------------------------------------- p99


def test_measured_p99_interpolates_between_bracketing_points():
    p = np.array([1e-6, 1e-5, 1e-4, 1e-3])
    means = np.array([0.95, 0.95, 0.90, 0.50])
    value, bracket, note = fitting.p_keep_measured(p, means, 0.95)
    # 0.99·0.95 = 0.9405 lies 0.19 of the way from 0.95 to 0.90 in log10 p from 1e-5.
    assert note == "" and bracket == (1e-5, 1e-4)
    assert math.log10(value) == pytest.approx(-5 + (0.95 - 0.9405) / 0.05)
    assert fitting.p_keep_measured(p, np.full(4, 0.95), 0.95)[2].startswith(">")
    assert fitting.p_keep_measured(p, np.full(4, 0.5), 0.95)[2].startswith("<")


def test_measured_p99_is_not_interpolated_across_a_gap_of_decades():
    """An adaptive sweep measures p_min and then the drop: interpolating 0.99·a_max across
    three empty decades put p99 at 1.6e-7 and called it data. Across more than a decade the
    data only say p99 lies in the gap; within a decade (a grid of one point a decade) they
    are still interpolated."""
    p = np.array([1e-7, 1e-4, 2e-4, 4e-4])
    means = np.array([0.95, 0.60, 0.40, 0.10])
    value, bracket, note = fitting.p_keep_measured(p, means, 0.95, max_gap=1.5)
    assert math.isnan(value) and bracket == (1e-7, 1e-4) and note == "in [1.0e-07, 1.0e-04]"
    assert not math.isnan(fitting.p_keep_measured(p, means, 0.95)[0])  # no gap limit asked
    decade = fitting.p_keep_measured(
        np.array([1e-5, 1e-4]), np.array([0.95, 0.5]), 0.95, max_gap=1.0
    )
    assert not math.isnan(decade[0]) and decade[2] == ""
    # fit_points applies the limit, and the report falls back to the fit, naming the gap.
    reps = np.repeat(np.arange(5), p.size)
    fit = fit_points(np.tile(p, 5), np.tile(means, 5), reps, a_max=0.95, num_classes=10, n_boot=20)
    assert math.isnan(fit.p99_data) and fit.p99_note == "in [1.0e-07, 1.0e-04]"
    assert math.isnan(fit.p99_data_ci_low) and math.isnan(fit.p99_data_ci_high)


def test_the_p99_interval_does_not_reach_into_a_gap_either():
    """The estimate's bracket is narrow, but resamples whose crossing moves down to the gap
    below it were interpolated across the gap, and the interval's low end landed there."""
    p = np.array([1e-7, 1e-4, 1.5e-4, 2e-4, 3e-4, 5e-4, 1e-3, 1e-2, 1e-1])
    curve = np.array([0.95, 0.95, 0.90, 0.80, 0.60, 0.30, 0.10, 0.10, 0.10])
    acc = np.tile(curve, (5, 1))
    acc[4, 1] = 0.925  # one repeat dips below 0.99·a_max at 1e-4
    reps = np.repeat(np.arange(5), p.size)
    fit = fit_points(np.tile(p, 5), acc.ravel(), reps, a_max=0.95, num_classes=10, n_boot=200)
    assert fit.p99_bracket_low == 1e-4 and 1e-4 < fit.p99_data < 1.5e-4
    # About a quarter of the resamples cross inside the gap: they count at the gap's far end
    # (1e-7, the conservative end), not at a value interpolated across three empty decades.
    assert fit.p99_data_ci_low == 1e-7 and fit.p99_data_ci_open == ""
    assert fit.p99_data_ci_high >= 1.5e-4  # never inside the bracket of the estimate


def test_a_curve_measured_only_at_its_ends_is_above_range_not_failed():
    """An adaptive sweep that finds no drop measures p_min and p_max: two points that say the
    midpoint lies above the range, which the fit reported as failed (fewer than 3 points)."""
    p, acc = np.array([1e-7, 1e-1]), np.array([0.95, 0.94])
    fit = fit_points(p, acc, np.zeros(2), a_max=0.95, num_classes=10, n_boot=20)
    assert fit.status == "above_range" and fit.note == "mu > 1e-01"
    between = fit_points(p, np.array([0.95, 0.3]), np.zeros(2), a_max=0.95, num_classes=10)
    assert between.status == "failed"  # crossing somewhere between two points: not fitted


def test_no_bootstrap_warning_for_curves_that_report_no_interval(tmp_path):
    """A curve with no drop in range reports no interval, so its single repeat is no reason
    to warn about bootstrap intervals."""
    rows = [r for r in curve_rows("baseline", 2.0, GRID, repeats=1)]  # mu far above p_max
    stored_folder(
        tmp_path, pd.DataFrame(rows), {"name": "f", "seed": 0, "policies": [{"label": "baseline"}]}
    )
    text = write_report(tmp_path).read_text()
    assert "above_range" in text and "**Warning:** the 95 % bootstrap" not in text


@pytest.mark.parametrize("scale", ["log10p", "p"])
def test_p99_from_the_points_is_reported_for_either_scale(scale):
    rows = curve_rows("baseline", -4.0, GRID, repeats=4)
    s = summary_table(pd.DataFrame(rows), scale=scale, n_boot=40)
    row = s.iloc[0]
    assert row["p99_bracket_low"] < row["p99_data"] < row["p99_bracket_high"]
    assert row["p99_data_ci_low"] <= row["p99_data"] <= row["p99_data_ci_high"]
    # The truth: logistic(x) = 0.99·0.95 at x = mu + sigma·ln(ratio).
    truth = -4.0 + 0.2 * math.log((0.95 - 0.1) / (0.99 * 0.95 - 0.1) - 1)
    assert abs(math.log10(row["p99_data"]) - truth) < math.log10(GRID[1] / GRID[0])


def test_report_shows_measured_p99_with_scale_p(tmp_path):
    points = pd.DataFrame(curve_rows("baseline", -4.0, GRID, repeats=3))
    stored_folder(tmp_path, points, {"name": "s", "seed": 0, "policies": [{"label": "baseline"}]})
    text = write_report(tmp_path, fit_options={"scale": "p", "bootstrap": 20}).read_text()
    row = [line for line in text.splitlines() if line.startswith("| w | float32 | baseline")][0]
    assert "(data)" in row


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"scal": "p"}, "Unknown key 'fit.scal'. Did you mean 'scale'?"),
        ({"bootstrap": -3}, "'bootstrap' parameter of fit"),
        ({"confidence": 5.0}, "'confidence' parameter of fit"),
    ],
)
def test_fit_options_of_the_python_api_are_checked_as_the_fit_table_is(tmp_path, options, expected):
    """write_report(fit_options=...) merged anything into the fit: a misspelt key was dropped
    and a negative bootstrap or a confidence of 5 wrote a report (the CLI checked them)."""
    from memsim.config import ConfigError

    points = pd.DataFrame(curve_rows("baseline", -4.0, GRID, repeats=3))
    stored_folder(tmp_path, points, {"name": "s", "seed": 0, "policies": [{"label": "baseline"}]})
    with pytest.raises(ConfigError, match=re.escape(expected)):
        write_report(tmp_path, fit_options=options)
    assert not (tmp_path / "report.md").exists()


# --------------------------------------------------------------------------- intervals


def test_wilson_interval_matches_its_closed_form():
    z = 1.959963984540054
    low, high = fitting.wilson_interval(0, 10)
    assert low == 0 and high == pytest.approx(z**2 / (10 + z**2))
    low, high = fitting.wilson_interval(np.array([50, 100]), np.array([100, 100]))
    half = z * math.sqrt(0.25 / 100 + z**2 / 4e4) / (1 + z**2 / 100)
    assert low[0] == pytest.approx(0.5 - half) and high[0] == pytest.approx(0.5 + half)
    assert high[1] == 1.0 and low[1] < 1.0


def test_points_and_summary_carry_binomial_intervals():
    frame = points_frame(curve_rows("baseline", -4.0, GRID, repeats=3))
    assert (frame["accuracy_ci_low"] <= frame["accuracy"]).all()
    assert (frame["accuracy"] <= frame["accuracy_ci_high"]).all()
    assert (frame["accuracy_ci_high"] - frame["accuracy_ci_low"] > 0).all()
    s = summary_table(frame, pd.DataFrame(), TWO_CONDITIONS.iloc[:1], n_boot=0)
    row = s.iloc[0]
    assert row["n_images"] == 100
    # Operating point: 0.94 in each of 3 repeats of the same 100 images: each image counts
    # once (the repeats agree, so 300 classifications are 100 outcomes), not 282 of 300.
    low, high = fitting.wilson_interval(94, 100)
    assert row["accuracy_at_operating_point_ci_low"] == pytest.approx(float(low))
    assert row["accuracy_at_operating_point_ci_high"] == pytest.approx(float(high))
    narrow_low, _ = fitting.wilson_interval(282, 300)
    assert row["accuracy_at_operating_point_ci_low"] < narrow_low


def test_shared_images_interval_covers_repeats_that_agree():
    """Repeats that classify the same images identically carry no more information than one:
    in simulation the pooled interval (n_images × repeats trials) misses the true accuracy far
    more often than 5 %, the shared-images one about 5 % of the time or less."""
    rng = np.random.default_rng(0)
    truth, n, repeats, trials = 0.8, 200, 5, 2000
    per_image = rng.random((trials, n)) < truth  # one outcome per image, repeated 5 times
    acc = per_image.mean(axis=1)
    low, high = fitting.shared_images_interval(acc, np.full(trials, n))
    pooled_low, pooled_high = fitting.wilson_interval(acc * n * repeats, n * repeats)
    miss = np.mean((truth < low) | (truth > high))
    pooled_miss = np.mean((truth < pooled_low) | (truth > pooled_high))
    assert miss < 0.07
    assert pooled_miss > 0.2
    # With independent repeats (noise-dominated) it stays valid, only wider.
    independent = (rng.random((trials, repeats, n)) < truth).mean(axis=(1, 2))
    low, high = fitting.shared_images_interval(independent, np.full(trials, n))
    assert np.mean((truth < low) | (truth > high)) < 0.01


# --------------------------------------------------------------------------- report --out


def test_report_out_writes_a_second_fit_beside_the_first(tmp_path):
    folder, other = tmp_path / "run", tmp_path / "refit-p"
    points = pd.DataFrame(curve_rows("baseline", -4.0, GRID, repeats=3))
    folder.mkdir()
    stored_folder(folder, points, {"name": "s", "seed": 0, "policies": [{"label": "baseline"}]})
    write_report(folder)
    before = {
        path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()
    }
    assert main(["report", str(folder), "--scale", "p", "--out", str(other)]) == 0
    after = {
        path.relative_to(folder): path.read_bytes() for path in folder.rglob("*") if path.is_file()
    }
    assert after == before
    assert pd.read_csv(other / "summary.csv")["fit_scale"].eq("p").all()
    assert pd.read_csv(folder / "summary.csv")["fit_scale"].eq("log10p").all()
    assert (other / "figures" / "accuracy_vs_p.png").is_file()
    assert str(folder) in (other / "report.md").read_text()


def test_report_out_refuses_another_results_folder(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    points = pd.DataFrame(curve_rows("baseline", -4.0, GRID, repeats=2))
    for folder in (a, b):
        folder.mkdir()
        stored_folder(folder, points, {"name": "s", "seed": 0, "policies": [{"label": "baseline"}]})
    with pytest.raises(ResultsError, match="another results folder"):
        write_report(a, out=b)
    assert not (b / "summary.csv").exists()


def test_memsim_eval_prints_its_accuracy_with_an_interval(capsys):
    """`memsim eval` printed a bare accuracy (a count over the images); it now gives the 95 %
    Wilson interval of that count, in the text and in the JSON record."""
    from memsim.cli.main import main

    argv = ["eval", "digits", "--p", "1e-4", "--limit", "40", "--no-progress"]
    assert main([*argv, "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    low, high = fitting.wilson_interval(record["correct"], 40)
    assert record["accuracy_ci_low"] == pytest.approx(float(low))
    assert record["accuracy_ci_high"] == pytest.approx(float(high))
    assert record["accuracy_ci_low"] < record["accuracy_ci_high"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"[{float(low):.4f}, {float(high):.4f}]" in text and "Wilson interval" in text


# --------------------------------------------------------------------------- every number's interval


def summary_row(**changes) -> dict:
    """One summary row of a resolved curve, as summary_table writes it."""
    row = {
        "workload": "w",
        "format": "float32",
        "policy": "baseline",
        "mask": "all",
        "condition": "nominal",
        "num_classes": 10,
        "a_max": 0.984,
        "n_images": 64,
        "mu": 1.6e-4,
        "mu_ci_low": 1.4e-4,
        "mu_ci_high": 1.8e-4,
        "mu_ci_open": "",
        "mu_note": "",
        "fit_status": "ok",
        "sigma": 0.25,
        "p99": 2.0e-5,
        "p99_data": 2.1e-5,
        "p99_data_ci_low": 1e-5,
        "p99_data_ci_high": 1e-4,
        "p99_data_ci_open": "",
        "p99_bracket_low": 1e-5,
        "p99_bracket_high": 1e-4,
        "p99_note": "",
        "p_min": 1e-8,
        "p_max": 1e-1,
        "accuracy_at_operating_point": 0.969,
        "accuracy_at_operating_point_ci_low": 0.893,
        "accuracy_at_operating_point_ci_high": 0.991,
        "energy_pj_per_inference": 100.0,
        "latency_ns_per_inference": 10.0,
        "total_energy_pj_per_inference": 150.0,
    }
    return {**row, **changes}


def rendered(*rows: dict, **config) -> str:
    from memsim.report.markdown import render

    return render(
        config={"fit": {"bootstrap": 200}, **config},
        summary=pd.DataFrame(list(rows)),
        metadata={},
        figures={},
        n_points=0,
    )


def table_rows(text: str, first_column: str = "a_max") -> list[dict[str, str]]:
    """The rows of the first Markdown table whose fifth column is ``first_column``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if line.startswith("| workload |") and cells[4] == first_column:
            rows = []
            for body in lines[i + 2 :]:
                if not body.startswith("|"):
                    break
                rows.append(dict(zip(cells, (c.strip() for c in body.strip("|").split(" | ")))))
            return rows
    raise AssertionError(f"no table with {first_column!r} in:\n{text}")


def test_a_censored_p99_is_reported_as_the_data_say_not_as_the_fit():
    """The audit's lab-4 cell read `1.23e-05 (fit; data: p99 < 1.0e-06)` for an unresolved fit:
    a headline 12 times above the data's own upper limit."""
    censored = dict(p99_data=math.nan, p99_data_ci_low=math.nan, p99_data_ci_high=math.nan)
    below = summary_row(
        fit_status="unresolved_drop",
        p99=1.23e-5,
        p99_note="< 1.0e-06",
        p99_bracket_low=math.nan,
        p99_bracket_high=1e-6,
        **censored,
    )
    (cell,) = [r["p99 (source)"] for r in table_rows(rendered(below))]
    assert cell == "< 1.0e-06 (data)"
    # An ok fit is not shown where it contradicts the data either ...
    (cell,) = [r["p99 (source)"] for r in table_rows(rendered({**below, "fit_status": "ok"}))]
    assert cell == "< 1.0e-06 (data)"
    # ... but where the data leave a gap and an ok fit places p99 inside it, it is added,
    # labelled as the fit's and without an interval (the fit gives none for p99).
    gap = summary_row(
        p99=3.2e-6,
        p99_note="in [1.0e-07, 4.8e-05]",
        p99_bracket_low=1e-7,
        p99_bracket_high=4.8e-5,
        **censored,
    )
    (cell,) = [r["p99 (source)"] for r in table_rows(rendered(gap))]
    assert cell == "in [1.0e-07, 4.8e-05] (data); 3.2e-06 (fit, no interval)"
    (cell,) = [
        r["p99 (source)"] for r in table_rows(rendered({**gap, "fit_status": "unresolved_drop"}))
    ]
    assert cell == "in [1.0e-07, 4.8e-05] (data)"


def test_open_bounds_are_printed_with_the_swept_range_and_noted():
    """A bound beyond the swept range was NaN: the p99 cell lost its interval silently and μ's
    upper bound was a blank cell, its note shown nowhere."""
    note = "CI reaches beyond the swept range (upper bound > 1.0e-01)"
    row = summary_row(
        mu_ci_high=math.nan,
        mu_ci_open="high",
        mu_note=note,
        p99_data=1.62e-5,
        p99_data_ci_low=math.nan,
        p99_data_ci_open="low",
    )
    text = rendered(row)
    (cells,) = table_rows(text)
    assert cells["mu_ci_low"] == "0.00014" and cells["mu_ci_high"] == "> 1.0e-01"
    assert cells["p99 (source)"] == "1.62e-05 [< 1.0e-08, 0.0001] (data)"
    notes = text.split("Curves without a resolved midpoint or interval:")[1]
    assert f"w · float32 · baseline · all: {note} (ok)" in notes
    # A frame written before the open columns existed: a NaN bound beside a finite one is open.
    legacy = {k: v for k, v in row.items() if not k.endswith("_ci_open")}
    (cells,) = table_rows(rendered(legacy))
    assert cells["mu_ci_high"] == "> 1.0e-01"
    assert cells["p99 (source)"].startswith("1.62e-05 [< 1.0e-08, ")


def test_without_a_bootstrap_p99_shows_its_grid_bracket_labelled():
    row = summary_row(p99_data_ci_low=math.nan, p99_data_ci_high=math.nan)
    (cells,) = table_rows(rendered(row))
    assert (
        cells["p99 (source)"] == "2.1e-05 [1e-05, 0.0001] (data; grid bracket only, no bootstrap)"
    )


def test_report_accuracies_carry_their_wilson_interval_and_sigma_is_not_headlined():
    """a_max, the reference rows' accuracy and the full-cost table's accuracy were bare
    numbers; σ, which has no interval, sat in the headline table as if it were exact."""
    row = summary_row(reference_policy="baseline", reference_condition="nominal")
    text = rendered(row)
    low, high = fitting.shared_images_interval(0.984, 64)
    a_max = f"0.984 [{float(low):.3g}, {float(high):.3g}]"
    (cells,) = table_rows(text)
    assert cells["a_max"] == a_max
    assert cells["accuracy_at_operating_point"] == "0.969 [0.893, 0.991]"
    assert "sigma" not in cells
    (cost,) = table_rows(text, first_column="accuracy_at_operating_point")
    assert cost["accuracy_at_operating_point"] == "0.969 [0.893, 0.991]"
    assert "accuracy at the operating point 0.969 [0.893, 0.991], 100 pJ" in text
    # Without a stored interval, the Wilson interval of the row's images is computed.
    bare = {**row, "accuracy_at_operating_point_ci_low": math.nan}
    low, high = fitting.shared_images_interval(0.969, 64)
    (cells,) = table_rows(rendered(bare))
    assert cells["accuracy_at_operating_point"] == f"0.969 [{low:.3g}, {high:.3g}]"


def test_mu_gain_has_bounds_and_is_empty_unless_both_fits_are_ok():
    """The audit's summary gave ecc_secded a mu_gain of 9.61 from an unresolved fit whose CI
    had collapsed onto μ, with no interval."""
    coarse = np.logspace(-8, -1, 8)
    points = pd.DataFrame(
        curve_rows("baseline", -4.0, GRID, repeats=5)
        + curve_rows("write_verify", -3.0, GRID, repeats=5, seed=1)
        + curve_rows("ecc_secded", -2.0, coarse, repeats=2, sigma=0.15, seed=2)
    )
    s = summary_table(points, baseline="baseline", n_boot=100).set_index("policy")
    base, wv, ecc = s.loc["baseline"], s.loc["write_verify"], s.loc["ecc_secded"]
    assert base["fit_status"] == wv["fit_status"] == "ok"
    assert ecc["fit_status"] == "unresolved_drop" and not math.isnan(ecc["mu"])
    assert wv["mu_gain"] == pytest.approx(wv["mu"] / base["mu"])
    assert wv["mu_gain_low"] == pytest.approx(wv["mu_ci_low"] / base["mu_ci_high"])
    assert wv["mu_gain_high"] == pytest.approx(wv["mu_ci_high"] / base["mu_ci_low"])
    assert wv["mu_gain_low"] < wv["mu_gain"] < wv["mu_gain_high"]
    assert math.isnan(ecc["mu_gain"]) and math.isnan(ecc["mu_gain_low"])
    assert math.isnan(ecc["mu_gain_high"])
    # The reference against itself: exactly 1, whatever its interval.
    assert (base["mu_gain"], base["mu_gain_low"], base["mu_gain_high"]) == (1.0, 1.0, 1.0)


def test_mu_gain_bounds_of_an_open_interval_are_unbounded_on_that_side():
    from memsim.report.tables import mu_gains

    ref = summary_row(mu=1e-4, mu_ci_low=5e-5, mu_ci_high=2e-4)
    row = summary_row(policy="wv", mu=1e-3, mu_ci_low=5e-4, mu_ci_high=math.nan, mu_ci_open="high")
    assert mu_gains(row, ref) == pytest.approx((10.0, 2.5, math.inf))
    row = summary_row(policy="wv", mu=1e-3, mu_ci_low=math.nan, mu_ci_high=2e-3, mu_ci_open="low")
    assert mu_gains(row, ref) == pytest.approx((10.0, 0.0, 40.0))
    open_ref = {**ref, "mu_ci_low": math.nan, "mu_ci_open": "low"}
    assert mu_gains(summary_row(policy="wv", mu=1e-3), open_ref)[2] == math.inf
    # No bootstrap (no interval, nothing open): the ratio, with unknown bounds.
    plain = summary_row(policy="wv", mu=1e-3, mu_ci_low=math.nan, mu_ci_high=math.nan)
    gain, low, high = mu_gains(plain, ref)
    assert gain == pytest.approx(10.0) and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in mu_gains(row, {**ref, "fit_status": "ci_collapsed"}))


def test_latency_overhead_spread_adds_both_draws_in_quadrature():
    """A latency overhead is a ratio of two simulated inferences with their own seeds: its
    sd is the first-order quadrature of their relative spreads; the reference's own ratio is
    one draw over itself (sd 0); a row without a recorded spread has none (NaN)."""
    import math

    from memsim.report.tables import _ratio_sd

    ref = {"policy": "baseline", "condition": "nominal", "latency_ns_per_inference": 1000.0,
           "latency_ns_sd": 10.0, "latency_overhead": 1.0}  # fmt: skip
    row = {"policy": "write_verify", "condition": "nominal", "latency_ns_per_inference": 1100.0,
           "latency_ns_sd": 22.0, "latency_overhead": 1.1}  # fmt: skip
    assert _ratio_sd(row, ref) == pytest.approx(1.1 * math.hypot(0.02, 0.01))
    assert _ratio_sd(ref, ref) == 0
    assert math.isnan(_ratio_sd({**row, "latency_ns_sd": math.nan}, ref))
    energy = {"total_energy_pj_per_inference": 200.0, "total_energy_pj_sd": 2.0,
              "total_energy_overhead": 2.0}  # fmt: skip
    ref_energy = {"total_energy_pj_per_inference": 100.0, "total_energy_pj_sd": 0.0}
    got = _ratio_sd({**row, **energy}, {**ref, **ref_energy}, "total_energy_overhead",
                    "total_energy_pj_per_inference", "total_energy_pj_sd")  # fmt: skip
    assert got == pytest.approx(2.0 * 0.01)


@pytest.mark.parametrize(
    ("sd", "draws", "text"),
    [(12.0, 5, "2.81e+04 ± 12"), (0.0, 1, "2.81e+04"), (0.0, 5, "2.81e+04 (no spread in 5 draws)"),
     (float("nan"), float("nan"), "2.81e+04 (spread not recorded)")],
)  # fmt: skip
def test_latency_text_never_passes_an_unknown_spread_off_as_fixed(sd, draws, text):
    from memsim.report.markdown import _spread_text

    row = {"latency_ns_per_inference": 28100.0, "latency_ns_sd": sd, "latency_draws": draws}
    assert _spread_text(row, "latency_ns_per_inference", "latency_ns_sd") == text
