"""End to end: the default experiment on a reduced grid, kill -9 and resume, worker independence."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import torch
from helpers import KillWorkerOnce, interrupt_after_points, kill_after_points

from memsim.config import ConfigError
from memsim.experiment.points import NetworkEvaluator
from memsim.experiment.run import RunOptions, load_experiment, run_experiment
from memsim.experiment.store import POINTS_LOG, ResultsError
from memsim.report import write_report

POINT_CONTRACT = [
    "workload",
    "format",
    "policy",
    "p",
    "repeat",
    "seed",
    "accuracy",
    "nonfinite_fraction",
    "n_images",
]
SUMMARY_CONTRACT = [
    "workload", "format", "policy", "a_max", "mu", "mu_ci_low", "mu_ci_high", "sigma", "p99",
    "accuracy_at_operating_point", "energy_pj_per_inference", "latency_ns_per_inference",
]  # fmt: skip

# The default experiment with a reduced grid, fewer repeats and a subset of the test images.
REDUCED = [
    "grid.p_min=1e-6",
    "grid.points_per_decade=2",
    "sweep.repeats=3",
    "sweep.images=96",
    "fit.bootstrap=100",
]

# A small sweep for the resume and worker tests: one curve, many cheap points.
SMALL = [
    'formats=["float32"]',
    'policies=["baseline"]',
    "grid.p_min=1e-5",
    "grid.points_per_decade=4",
    "sweep.repeats=4",
    "sweep.images=48",
    "memory.enabled=false",
]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    config, _ = load_experiment(overrides=REDUCED)
    out = tmp_path_factory.mktemp("default")
    run_experiment(config, RunOptions(out=out, progress=False))
    return config, out


def test_default_run_writes_the_documented_files(default_run):
    _, out = default_run
    for name in (
        "points.csv",
        "summary.csv",
        "memory.csv",
        "report.md",
        "config.toml",
        "config.json",
        "metadata.json",
    ):
        assert (out / name).is_file(), name
    for stem in ("accuracy_vs_p", "energy_vs_accuracy", "energy_by_category"):
        assert (out / "figures" / f"{stem}.png").stat().st_size > 0
        assert (out / "figures" / f"{stem}.svg").stat().st_size > 0
    points = pd.read_csv(out / "points.csv")
    summary = pd.read_csv(out / "summary.csv")
    assert set(POINT_CONTRACT) <= set(points.columns)
    assert set(SUMMARY_CONTRACT) <= set(summary.columns)
    report = (out / "report.md").read_text()
    assert "figures/accuracy_vs_p.png" in report and "mu" in report


def test_default_run_fits_a_midpoint_inside_the_grid_with_its_ci(default_run):
    config, out = default_run
    summary = pd.read_csv(out / "summary.csv")
    base = summary[(summary["policy"] == "baseline") & (summary["format"] == "float32")].iloc[0]
    ps = config.grid.ps()
    # Two grid points per decade may leave the drop to two points: mu is still fitted, and the
    # summary says the drop is unresolved (which grid would resolve it is in the advice).
    assert base["fit_status"] in ("ok", "unresolved_drop")
    if base["fit_status"] == "unresolved_drop":
        assert base["mu_note"].startswith("drop resolved by")
    assert ps[0] < base["mu"] < ps[-1]
    assert base["mu_ci_low"] <= base["mu"] <= base["mu_ci_high"]
    assert base["a_max"] > 0.9 and base["energy_pj_per_inference"] > 0
    # Curves that never drop are reported as censored, never with a made-up midpoint.
    censored = summary[summary["fit_status"] == "above_range"]
    assert censored["mu"].isna().all()
    assert censored["mu_note"].str.startswith("mu > ").all()
    # Overheads are relative to the baseline of the same format.
    assert (summary.loc[summary["policy"] == "baseline", "energy_overhead"] == 1).all()


def test_default_run_latency_carries_its_spread_where_rounds_are_random(default_run):
    """write_verify draws its units' rounds: memory.latency_draws simulated inferences give the
    spread of its latency (at the nominal condition a second round is so rare, 5e-5 a unit,
    that the draws may agree: a spread of 0 is then what was measured), which the summary and
    the report carry; a single-pulse policy's latency is one fixed number."""
    config, out = default_run
    memory = pd.read_csv(out / "memory.csv").set_index(["format", "policy"])
    verify = memory.loc[("float32", "write_verify")]
    assert verify["latency_draws"] == config.memory.latency_draws == 5
    assert 0 <= verify["latency_ns_sd"] < 0.05 * verify["latency_ns_per_inference"]
    for policy in ("baseline", "sram_exponent", "ecc_secded"):
        row = memory.loc[("float32", policy)]
        assert row["latency_draws"] == 1 and row["latency_ns_sd"] == 0
    summary = pd.read_csv(out / "summary.csv").set_index(["format", "policy"])
    assert summary.loc[("float32", "write_verify"), "latency_ns_sd"] == verify["latency_ns_sd"]
    assert summary.loc[("float32", "baseline"), "latency_overhead_sd"] == 0


def test_latency_spread_where_rounds_matter():
    """At the low-energy condition (p_bf 4e-2) write-verify units take several rounds: the
    draws differ, and the spread is the sample standard deviation of their latencies, which
    the report prints as ``value ± sd``."""
    from memsim.experiment.memory import memory_table
    from memsim.experiment.run import operating_points
    from memsim.report.markdown import _spread_text

    overrides = ['formats=["float32"]', 'policies=["baseline", "write_verify"]',
                 'conditions=["low_energy"]', "memory.trace_images=2", "memory.latency_draws=4"]  # fmt: skip
    config, _ = load_experiment(overrides=overrides)
    table = memory_table(config, operating_points(config)).set_index("policy")
    verify = table.loc["write_verify"]
    assert verify["latency_draws"] == 4
    assert 0 < verify["latency_ns_sd"] < 0.05 * verify["latency_ns_per_inference"]
    assert table.loc["baseline", "latency_ns_sd"] == 0
    text = _spread_text(verify.to_dict(), "latency_ns_per_inference", "latency_ns_sd")
    assert text == f"{verify['latency_ns_per_inference']:.3g} ± {verify['latency_ns_sd']:.3g}"
    # what follows the latency moves with it: standby = leakage × latency, to first order
    rel = verify["latency_ns_sd"] / verify["latency_ns_per_inference"]
    standby = verify["standby_energy_pj_per_inference"]
    assert verify["standby_energy_pj_sd"] == pytest.approx(standby * rel)
    assert verify["total_energy_pj_sd"] == pytest.approx(standby * rel)
    assert verify["total_energy_pj_sd"] > 0
    delay_rel = standby * rel / verify["total_energy_pj_per_inference"] + rel
    assert verify["energy_delay_pj_ns_sd"] == pytest.approx(
        verify["energy_delay_pj_ns"] * delay_rel
    )
    assert table.loc["baseline", "energy_delay_pj_ns_sd"] == 0


WRITE_CATEGORIES = (
    "rram_set",
    "rram_reset",
    "write_periphery",
    "verify_read",
    "pre_read",
    "sram",
    "ecc",
)
READ_CATEGORIES = ("read_rram", "read_sram", "read_offchip", "ecc_decode")


def test_default_run_total_energy_is_write_plus_read_plus_standby(default_run):
    _, out = default_run
    memory = pd.read_csv(out / "memory.csv")
    assert set(memory["policy"]) == {"baseline", "write_verify", "sram_exponent", "ecc_secded"}
    for _, row in memory.iterrows():
        write = sum(row[f"energy_{c}_pj"] for c in WRITE_CATEGORIES)
        read = sum(row[f"energy_{c}_pj"] for c in READ_CATEGORIES)
        assert row["energy_pj_per_inference"] == pytest.approx(write, rel=1e-12)
        assert row["read_energy_pj_per_inference"] == pytest.approx(read, rel=1e-12)
        assert read > 0 and row["standby_energy_pj_per_inference"] > 0
        standby = row["leakage_power_uw"] * 1e3 * row["latency_ns_per_inference"] * 1e-6
        assert row["standby_energy_pj_per_inference"] == pytest.approx(standby, rel=1e-9)
        assert row["total_energy_pj_per_inference"] == pytest.approx(
            write + read + row["standby_energy_pj_per_inference"], rel=1e-12
        )
        assert row["area_mm2"] == pytest.approx(
            row["area_rram_mm2"] + row["area_sram_mm2"] + row["area_logic_mm2"], rel=1e-12
        )
        assert row["rram_read_utilisation"] + row["rram_write_utilisation"] == pytest.approx(
            row["rram_utilisation"], rel=1e-9
        )
    # Policies that add logic or SRAM cells cost area; the summary carries the same totals.
    f32 = memory[memory["format"] == "float32"].set_index("policy")
    for policy in ("write_verify", "sram_exponent", "ecc_secded"):
        assert f32.loc[policy, "area_mm2"] > f32.loc["baseline", "area_mm2"]
    assert f32.loc["sram_exponent", "idle_power_uw"] > 0 == f32.loc["baseline", "idle_power_uw"]
    summary = pd.read_csv(out / "summary.csv")
    merged = summary.merge(memory, on=["workload", "format", "policy", "condition"])
    for col in ("total_energy_pj_per_inference", "area_mm2", "read_energy_pj_per_inference"):
        assert (merged[f"{col}_x"] == merged[f"{col}_y"]).all(), col
    base = summary["policy"] == "baseline"
    assert (summary.loc[base, ["total_energy_overhead", "area_overhead"]] == 1).all().all()
    assert (out / "figures" / "tradeoff.png").stat().st_size > 0
    assert "figures/tradeoff.png" in (out / "report.md").read_text()


def test_report_is_recreated_from_the_folder_alone(default_run):
    _, out = default_run
    before = (out / "summary.csv").read_text()
    (out / "summary.csv").unlink()
    (out / "report.md").unlink()
    write_report(out)
    assert (out / "summary.csv").read_text() == before
    assert (out / "report.md").is_file()


def test_folder_of_another_experiment_is_refused(default_run):
    config, out = default_run
    other = dataclasses.replace(config, seed=config.seed + 1)
    with pytest.raises(ResultsError, match="different experiment"):
        run_experiment(other, RunOptions(out=out, progress=False))


def test_read_only_output_folder_is_a_clear_error(read_only_folder):
    folder = read_only_folder
    config, _ = load_experiment(overrides=SMALL)
    with pytest.raises(ResultsError, match="not writable"):
        run_experiment(config, RunOptions(out=folder / "out", progress=False))


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory):
    """The small sweep, uninterrupted, one worker."""
    config, _ = load_experiment(overrides=SMALL)
    out = tmp_path_factory.mktemp("reference")
    run_experiment(config, RunOptions(out=out, progress=False), sweep_only=True)
    return pd.read_csv(out / "points.csv")


def _sweep_cmd(out, workers: int = 1) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "memsim",
        "sweep",
        os.fspath(_config_path()),
        "--out",
        os.fspath(out),
        "--no-progress",
        "--workers",
        str(workers),
    ]
    for item in SMALL:
        cmd += ["--set", item]
    return cmd


def _config_path():
    from memsim.experiment.run import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def test_sweep_killed_with_sigkill_resumes_to_the_same_table(tmp_path, small_reference):
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = out / POINTS_LOG
    done_before = kill_after_points(_sweep_cmd(out), log, 10, timeout_s=120, env=env)
    assert 10 <= done_before < len(small_reference)

    subprocess.run(_sweep_cmd(out), env=env, check=True, capture_output=True)
    resumed = pd.read_csv(out / "points.csv")
    pd.testing.assert_frame_equal(resumed, small_reference)
    # Nothing duplicated in the store either.
    assert (out / POINTS_LOG).read_text().count("\n") == len(small_reference)


def test_ctrl_c_stops_a_pool_run_in_seconds_and_a_rerun_resumes(tmp_path, small_reference):
    """Ctrl-C (SIGINT to the process group, workers included) during a two-worker sweep: the
    driver says the work is kept and exits 130, no worker outlives it, and the same command
    resumes to the uninterrupted table."""
    out = tmp_path / "interrupted"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = out / POINTS_LOG
    done, status, err, left = interrupt_after_points(
        _sweep_cmd(out, workers=2), log, 3, timeout_s=120, env=env
    )
    assert status == 130, err[-1000:]
    assert err.strip().splitlines()[-1] == (
        "memsim: interrupted; finished work is kept and a re-run resumes."
    )
    assert left == []
    assert 3 <= done < len(small_reference)
    subprocess.run(_sweep_cmd(out, workers=2), env=env, check=True, capture_output=True)
    pd.testing.assert_frame_equal(pd.read_csv(out / "points.csv"), small_reference)
    assert log.read_text().count("\n") == len(small_reference)


def test_two_workers_give_the_results_of_one(tmp_path, small_reference):
    config, _ = load_experiment(overrides=SMALL)
    run_experiment(config, RunOptions(out=tmp_path, workers=2, progress=False), sweep_only=True)
    two = pd.read_csv(tmp_path / "points.csv")
    pd.testing.assert_frame_equal(two, small_reference)
    assert not math.isnan(two["accuracy"].mean())


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto resolves to CUDA here")
def test_device_auto_runs_on_the_device_it_resolves_to_and_records_both(tmp_path, small_reference):
    """--device auto is resolved before the run (here: the CPU), not handed to torch as is."""
    config, _ = load_experiment(overrides=SMALL)
    run_experiment(config, RunOptions(out=tmp_path, device="auto", progress=False), sweep_only=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "points.csv"), small_reference)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert (meta["torch_device"], meta["torch_device_asked"]) == ("cpu", "auto")


def test_a_pool_worker_killed_mid_point_has_its_point_retried(tmp_path, small_reference):
    """A local worker killed mid-point (as by the out-of-memory killer) breaks the process
    pool; the run starts a new one and evaluates the lost points again: the same table,
    nothing missing, nothing twice."""
    config, _ = load_experiment(overrides=SMALL)
    victim = small_reference["point_id"].iloc[len(small_reference) // 2]
    marker = tmp_path / "killed.pid"
    evaluator = KillWorkerOnce(
        NetworkEvaluator(config.workloads, config.policies, config.sweep), victim, str(marker)
    )
    out = tmp_path / "out"
    run = RunOptions(out=out, workers=2, progress=False)
    run_experiment(config, run, evaluator=evaluator, sweep_only=True)
    assert marker.exists(), "the worker was never killed"
    assert int(marker.read_text()) != os.getpid()
    pd.testing.assert_frame_equal(pd.read_csv(out / "points.csv"), small_reference)
    assert (out / POINTS_LOG).read_text().count("\n") == len(small_reference)


@pytest.mark.slow
@pytest.mark.cifar
def test_cifar_vgg_study_config_runs_on_a_small_subset(tmp_path):
    from workloads import get_workload

    try:
        workload = get_workload("vgg_A")
        workload.dataset("test", limit=8)
        workload.load_model()
    except (FileNotFoundError, OSError, ValueError) as exc:
        pytest.skip(f"CIFAR-10 copy or VGG-A checkpoint not available: {exc}")
    config, _ = load_experiment(
        _config_path().parent / "cifar" / "vgg_formats.toml",
        overrides=[
            'workloads=["vgg_A"]',
            'formats=["float32", "int8"]',
            "grid.p_min=1e-6",
            "grid.points_per_decade=1",
            "sweep.repeats=2",
            "sweep.images=64",
            "sweep.batch_size=64",
            "sweep.calibration_images=64",
        ],
    )
    out = run_experiment(config, RunOptions(out=tmp_path, progress=False))
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["format"]) == {"float32", "int8"}
    assert (summary["a_max"] > 0.5).all()
    # int8 codes have no exponent to blow up: they tolerate far more flips than float32.
    f32, i8 = (summary.set_index("format").loc[f, "mu"] for f in ("float32", "int8"))
    assert i8 > 10 * f32


def test_the_formats_of_a_workload_share_one_copy_of_its_data_per_worker():
    """One copy on the device per worker and workload, not one per storage format."""
    from memsim.experiment.config import SweepConfig, WorkloadSpec

    spec = WorkloadSpec(name="digits")
    evaluator = NetworkEvaluator((spec,), (), SweepConfig(images=16), "cpu")
    float32, int8 = evaluator._network("digits", "float32"), evaluator._network("digits", "int8")
    assert float32[0] is not int8[0]  # two networks
    assert float32[1] is int8[1] and float32[2] is int8[2]  # one data set
    assert len(float32[1]) == 16


def test_more_images_than_the_split_holds_is_refused_before_the_folder_is_claimed(tmp_path):
    """sweep.images beyond the split was silently cut to the split; now it is a one-line
    config error naming the key, the split and its size, with nothing written."""
    from workloads import get_workload

    test_size = get_workload("digits").split_size("test")
    too_many = [*SMALL, f"sweep.images={test_size + 1}"]
    with pytest.raises(ConfigError, match=r"^'sweep.images' in .*\(with --set .*images asked"):
        load_experiment(overrides=too_many)
    # A config built in Python skips the loader: the run checks it before claiming its folder.
    config, _ = load_experiment(overrides=SMALL)
    config = dataclasses.replace(
        config, sweep=dataclasses.replace(config.sweep, images=test_size + 1)
    )
    out = tmp_path / "out"
    with pytest.raises(ConfigError) as refused:
        run_experiment(config, RunOptions(out=out, workers=1, progress=False), sweep_only=True)
    message = str(refused.value)
    assert message.startswith("'sweep.images': ") and "\n" not in message
    assert f"{test_size + 1} images asked for" in message
    assert f"the 'test' split of workload digits holds {test_size:,}" in message
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "key", "split"),
    [
        (["memory.enabled=true", "memory.trace_images=361"], "memory.trace_images", "test"),
        (['formats=["int8"]', "sweep.calibration_images=1438"], "sweep.calibration_images",
         "train"),
        # A policy that stores int8 from a float32 format needs calibration images too.
        (['policies=["int8"]', "sweep.calibration_images=1438"], "sweep.calibration_images",
         "train"),
        # So does a per-layer policy that stores one layer as int8.
        (['policies=[{kind="per_layer", layers={"classifier"="int8"}}]',
          "sweep.calibration_images=1438"], "sweep.calibration_images", "train"),
    ],
)  # fmt: skip
def test_every_count_of_images_is_checked_against_its_split(extra, key, split):
    """The trace and calibration counts were cut to their splits silently, as sweep.images
    was; each is now refused at load time, naming its key, its split and the split's size."""
    from workloads import get_workload

    size = get_workload("digits").split_size(split)
    with pytest.raises(ConfigError) as refused:
        load_experiment(overrides=[*SMALL, *extra])
    message = str(refused.value)
    assert message.startswith(f"'{key}' in ") and "\n" not in message
    assert f"the '{split}' split of workload digits holds {size:,}" in message
    # One image fewer loads: the check compares with the split's own size.
    fewer = [e.replace("361", "360").replace("1438", "1437") for e in extra]
    load_experiment(overrides=[*SMALL, *fewer])


def test_an_unknown_memory_preset_is_refused_with_the_memory_model_off():
    """memory.preset was looked up only when memory.enabled: a bad name loaded silently."""
    with pytest.raises(ConfigError, match=r"^'memory.preset' in .*Unknown memory preset 'bogus'"):
        load_experiment(overrides=[*SMALL, 'memory.preset="bogus"'])


def test_a_checkpoint_named_twice_is_refused():
    """checkpoint and options.checkpoint both given: the second was ignored silently."""
    twice = 'workloads=[{name="digits", checkpoint="a.pt", options={checkpoint="b.pt"}}]'
    with pytest.raises(ConfigError, match=r"^'workloads\[0\]' in .*names a checkpoint twice"):
        load_experiment(overrides=[*SMALL, twice])


def test_trace_images_are_not_checked_where_the_memory_model_is_off():
    config, _ = load_experiment(overrides=[*SMALL, "memory.trace_images=361"])
    assert not config.memory.enabled and config.memory.trace_images == 361


def test_calibration_images_are_not_checked_where_nothing_is_calibrated():
    """Only integer storage formats read calibration images; a float-only experiment takes
    any count (the key's default must not refuse a small training split it never reads)."""
    config, _ = load_experiment(overrides=[*SMALL, "sweep.calibration_images=1438"])
    assert config.sweep.calibration_images == 1438


def test_the_cli_names_the_file_and_the_set_of_too_many_images(tmp_path, capsys):
    from memsim.cli.main import main

    out = tmp_path / "out"
    args = ["run", "default", "--out", str(out), "--no-progress", "--set", "sweep.images=99999"]
    assert main(args) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("memsim run: error: 'sweep.images' in ")
    assert "(with --set sweep.images=99999)" in last and "99999 images asked for" in last
    assert not out.exists()
