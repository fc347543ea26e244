"""``memsim memory``: prints the costs of a trace under a policy; bad input is one clean line."""

from __future__ import annotations

import json

import pytest

from memsim.cli.main import main
from memsim.cli.memory import parse_overrides
from memsim.trace.records import Trace, TraceError, WriteRecord, make_trace


@pytest.fixture
def trace_file(tmp_path):
    records = [
        WriteRecord(0, "input", "Input", "input", (3, 4, 4), 48, "float32", 32, 0, (0.5,) * 32),
        WriteRecord(
            0, "conv", "Conv2d", "activation", (8, 4, 4), 128, "float32", 32, 3456, (0.5,) * 32
        ),
        WriteRecord(
            0, "relu", "ReLU", "activation", (8, 4, 4), 128, "float32", 32, 128, (0.25,) * 32, 0.5
        ),
    ]
    return make_trace("toy", "float32", records).save(tmp_path / "toy.json")


def test_wrong_trace_version_is_one_clean_line(tmp_path, capsys):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema": "memsim.trace", "version": 99, "records": []}))
    with pytest.raises(TraceError, match="version 99"):
        Trace.load(path)
    assert main(["memory", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("memsim memory: error:") and "version 99" in err
    assert "\n" not in err and "Traceback" not in err


def test_missing_trace_file_is_a_clean_error(tmp_path, capsys):
    assert main(["memory", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_unknown_memory_preset_lists_known_presets(trace_file, capsys):
    assert main(["memory", str(trace_file), "--params", "nope"]) == 2
    assert "Known presets" in capsys.readouterr().err


def test_bad_override_names_the_key(trace_file, capsys):
    assert main(["memory", str(trace_file), "--set", "n_banks=0"]) == 2
    err = capsys.readouterr().err
    # The override is named as one; the preset file holds a valid n_banks.
    assert "n_banks" in err and "(with --set n_banks=0)" in err
    assert main(["memory", str(trace_file), "--set", "bogus=1"]) == 2
    err = capsys.readouterr().err
    assert "Unknown key 'bogus'" in err and "(with --set bogus=1)" in err


@pytest.mark.parametrize("extra", [["--format", "int8"], ["--images", "100"]])
def test_tracing_options_with_a_trace_file_are_refused(trace_file, extra, capsys):
    """--format and --images shape a trace memsim takes itself; with a trace file they were
    ignored (the output said float32 after --format int8)."""
    assert main(["memory", str(trace_file), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{extra[0]} apply when a workload is traced" in err
    assert "is a trace file (float32, 1 images measured)" in err


def test_a_csv_folder_that_cannot_be_written_fails_before_the_simulation(
    trace_file, tmp_path, capsys
):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    assert main(["memory", str(trace_file), "--csv", str(blocker / "sub")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip().startswith(f"memsim memory: error: --csv {blocker / 'sub'}: ")


def test_memory_verb_prints_latency_stall_utilisation_and_energy(trace_file, capsys, tmp_path):
    rc = main(
        [
            "memory",
            str(trace_file),
            "--policy",
            "baseline",
            "--params",
            "serial",
            "--layers",
            "--csv",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    for word in (
        "latency_ns",
        "stall_ns",
        "rram_utilisation",
        "queue_units",
        "rram_set",
        "sram",
        "conv",
    ):
        assert word in out
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "summary.csv",
        "layers.csv",
        "banks.csv",
        "energy.csv",
    }


def test_parse_overrides_reads_toml_values():
    assert parse_overrides(["n_banks=8", "overlap = false", "t_access_ns=1.5"]) == {
        "n_banks": 8,
        "overlap": False,
        "t_access_ns": 1.5,
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["n_banks"])


@pytest.mark.parametrize(
    ("extra", "noted"),
    [(["--policy", "write_verify"], True), (["--policy", "data_comparison_write"], True),
     (["--policy", "baseline"], False), (["--policy", "write_verify", "--deterministic"], False)],
)  # fmt: skip
def test_a_random_latency_says_it_is_one_draw(trace_file, capsys, extra, noted):
    """Write-verify and a comparison write draw their rounds: the printed latency is one
    simulated inference, and the verb says so (no spread is computed here)."""
    assert main(["memory", str(trace_file), *extra]) == 0
    out = capsys.readouterr().out
    assert ("pulse rounds are random: the latency is one simulated inference" in out) is noted
