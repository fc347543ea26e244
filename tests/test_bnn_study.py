"""The binarized-network energy study: energy model, tolerance, summary, resume, report, CLI."""

from __future__ import annotations

import argparse
import math

import pandas as pd
import pytest

from memsim.config import ConfigError, build
from memsim.device import load_condition
from memsim.studies.bnn import (
    POINT_COLUMNS,
    BNNStudyConfig,
    load_study_config,
    programming_energy_pj,
    run_study,
    study_conditions,
    summarize,
    tolerated_ber,
)
from workloads.bnn_train import BNNTrainConfig

TINY = BNNStudyConfig(
    train=BNNTrainConfig(epochs=2, seed=0),
    ber_grid=(1e-3, 0.1, 0.4),
    conditions=("nominal", "low_energy"),
    repeats=2,
    eval_limit=120,
)


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


def _points(rows):
    return pd.DataFrame([dict(zip(POINT_COLUMNS, r)) for r in rows])


def test_summary_energy_ratio_and_references():
    nan = math.nan
    rows = []
    for net, clean, accs in (("plain", 0.95, [0.95, 0.80]), ("error_aware", 0.93, [0.93, 0.925])):
        rows.append((net, "clean", "", 0.0, 0.0, 0, clean, 100, nan))
        rows.append((net, "ber", "", 1e-3, 1e-3, 0, accs[0], 100, nan))
        rows.append((net, "ber", "", 4e-2, 4e-2, 0, accs[1], 100, nan))
        rows.append((net, "condition", "nominal", 1e-6, 1e-6, 0, clean, 100, 600.0))
        rows.append((net, "condition", "low_energy", 4e-2, 4e-2, 0, accs[1], 100, 20.0))
    summary = summarize(_points(rows), tolerance_points=1.0).set_index(["network", "reference"])
    assert summary.loc[("plain", "own"), "min_energy_condition"] == "nominal"
    assert summary.loc[("error_aware", "own"), "min_energy_condition"] == "low_energy"
    assert summary.loc[("error_aware", "own"), "energy_ratio"] == pytest.approx(30.0)
    assert summary.loc[("plain", "own"), "tolerated_ber"] == 1e-3
    assert bool(summary.loc[("error_aware", "own"), "tolerated_censored"])
    # Against the plain network's error-free 95 %, 93 % is more than one point down.
    assert summary.loc[("error_aware", "plain"), "min_energy_condition"] == ""


def test_run_study_writes_points_resumes_and_reports(tmp_path):
    out = tmp_path / "study"
    result = run_study(TINY, out, progress=False)
    points = result["points"]
    # clean once per network + (3 rates + 2 conditions) x 2 repeats x 2 networks
    assert len(points) == 2 + 2 * 2 * 5
    assert (out / "plain.pt").is_file() and (out / "error_aware.pt").is_file()
    on_disk = pd.read_csv(out / "points.csv")
    assert len(on_disk) == len(points)
    low = points[(points["condition"] == "low_energy") & (points["network"] == "plain")]
    assert low["energy_pj"].nunique() == 1 and low["energy_pj"].iloc[0] > 0
    clean = points[points["sweep"] == "clean"].set_index("network")["accuracy"]
    heavy = points[(points["p01"] == 0.4)].groupby("network")["accuracy"].mean()
    assert (heavy < clean.reindex(heavy.index)).all()  # 40 % sign flips hurt both networks
    # Resume: nothing is recomputed, the stored points come back unchanged.
    again = run_study(TINY, out, progress=False)
    assert len(pd.read_csv(out / "points.csv")) == len(points)
    pd.testing.assert_frame_equal(
        again["summary"].reset_index(drop=True),
        result["summary"].reset_index(drop=True),
        check_dtype=False,
    )
    with pytest.raises(ValueError, match="another config"):
        run_study(BNNStudyConfig(**{**TINY.__dict__, "repeats": 1}), out, progress=False)

    from memsim.report.bnn import markdown_section, write_section

    text = markdown_section(result["summary"], result["conditions"])
    assert "tolerated BER" in text and "low_energy" in text
    path = write_section(tmp_path / "report", points, result["conditions"], result["summary"])
    assert path.read_text().count("![") == 2
    assert (tmp_path / "report" / "bnn_accuracy_vs_ber.png").stat().st_size > 0
    assert (tmp_path / "report" / "bnn_accuracy_vs_energy.png").stat().st_size > 0


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="ber_gird"):
        build(BNNStudyConfig, {"ber_gird": [0.1]}, source="x.toml")
    with pytest.raises(ConfigError, match="cell"):
        build(BNNStudyConfig, {"cell": "3t3r"}, source="x.toml")
    with pytest.raises(ConfigError, match="train_ber"):
        build(BNNStudyConfig, {"train": {"train_ber": 0.1}}, source="x.toml")
    with pytest.raises(FileNotFoundError, match="digits"):
        load_study_config("no_such_study")
    for name in (
        "digits",
        "digits_compliance",
        "digits_2t2r",
        "cifar10",
        "cifar10_compliance",
        "cifar10_full_data",
        "mnist",
    ):
        assert load_study_config(name).tolerance_points == 1.0


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
    assert "energy_ratio" in capsys.readouterr().out
    assert (tmp_path / "out" / "bnn_report.md").is_file()
