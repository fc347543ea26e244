"""Reports are pure functions of result frames: summary rows, overheads, censoring, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from helpers import curve_rows

from memsim.experiment.store import ResultsError, ResultsStore
from memsim.report import write_report
from memsim.report.tables import SUMMARY_COLUMNS, markdown_table, summary_table

GRID = np.logspace(-8, -1, 15)


def curve_points(policy: str, mu_log10: float, *, repeats: int = 3, seed: int = 0) -> list[dict]:
    """Synthetic points of one curve from a known logistic (plus a clean and operating point)."""
    return curve_rows(policy, mu_log10, GRID, repeats=repeats, seed=seed, operating_step=0.01)


POINTS = pd.DataFrame(curve_points("baseline", -4.0) + curve_points("write_verify", 5.0, seed=1))
MEMORY = pd.DataFrame(
    [
        {"workload": "w", "format": "float32", "policy": "baseline", "condition": "nominal", "energy_pj_per_inference": 100.0, "latency_ns_per_inference": 10.0, "energy_rram_set_pj": 60.0, "energy_rram_reset_pj": 40.0},
        {"workload": "w", "format": "float32", "policy": "write_verify", "condition": "nominal", "energy_pj_per_inference": 150.0, "latency_ns_per_inference": 30.0, "energy_rram_set_pj": 60.0, "energy_rram_reset_pj": 90.0},
    ]
)  # fmt: skip
CONDITIONS = pd.DataFrame([{"condition": "nominal", "operating_p01": 1e-6, "operating_p10": 1e-6}])


def test_summary_has_contract_columns_overheads_and_operating_accuracy():
    s = summary_table(POINTS, MEMORY, CONDITIONS, baseline="baseline", n_boot=50)
    assert list(s.columns) == list(SUMMARY_COLUMNS)
    base = s[s["policy"] == "baseline"].iloc[0]
    wv = s[s["policy"] == "write_verify"].iloc[0]
    assert math.log10(base["mu"]) == pytest.approx(-4.0, abs=0.05)
    assert base["mu_ci_low"] <= base["mu"] <= base["mu_ci_high"]
    assert base["accuracy_at_operating_point"] == pytest.approx(0.95)
    assert wv["energy_overhead"] == pytest.approx(1.5) and wv["latency_overhead"] == pytest.approx(
        3.0
    )
    # No drop inside the grid: censored, with a note instead of a number.
    assert (
        wv["fit_status"] == "above_range" and math.isnan(wv["mu"]) and wv["mu_note"] == "mu > 1e-01"
    )
    assert math.isnan(wv["mu_gain"])


def test_summary_without_costs_leaves_them_empty():
    s = summary_table(POINTS, n_boot=0)
    assert s["energy_pj_per_inference"].isna().all() and (s["condition"] == "").all()
    assert s["fit_scale"].eq("log10p").all()


def test_markdown_table_formats_numbers_and_blanks_nan():
    text = markdown_table(pd.DataFrame({"a": ["x|y"], "b": [0.000123456], "c": [math.nan]}))
    assert text.splitlines()[2] == "| x\\|y | 0.000123 |  |"


def test_report_is_written_from_stored_results_only(tmp_path):
    config = {
        "name": "synthetic",
        "seed": 0,
        "policies": [{"label": "baseline"}, {"label": "write_verify"}],
        "fit": {"bootstrap": 20},
    }
    with ResultsStore.open(tmp_path, config=config, digest="abc") as store:
        for row in POINTS.to_dict("records"):
            store.append(row)
    MEMORY.to_csv(tmp_path / "memory.csv", index=False)
    CONDITIONS.to_csv(tmp_path / "conditions.csv", index=False)
    (tmp_path / "metadata.json").write_text(
        json.dumps({"config_hash": "abc", "skipped": ["x × int8: no exponent"]})
    )
    path = write_report(tmp_path)
    text = path.read_text()
    assert "figures/accuracy_vs_p.png" in text and "figures/energy_vs_accuracy.png" in text
    assert "mu > 1e-01" in text and "x × int8" in text
    for stem in ("accuracy_vs_p", "energy_vs_accuracy", "energy_by_category"):
        assert (tmp_path / "figures" / f"{stem}.svg").is_file()
    points = pd.read_csv(tmp_path / "points.csv")
    assert len(points) == len(POINTS)


def test_report_of_a_folder_that_is_not_results_is_an_error(tmp_path):
    with pytest.raises(ResultsError, match="not a memsim results folder"):
        write_report(tmp_path)
