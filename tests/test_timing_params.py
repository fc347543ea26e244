"""Memory-system parameters: presets load, every number names its source, bad values are clear errors."""

from __future__ import annotations

import re

import pytest

from memsim.config import ConfigError
from memsim.timing import MemoryParams, WritePlan, load_memory_params, preset_names, simulate
from memsim.timing.params import PRESET_DIR
from memsim.trace.records import WriteRecord, make_trace


@pytest.mark.parametrize("name", preset_names())
def test_presets_load_and_cite_a_source_for_every_number(name):
    params = load_memory_params(name)
    assert isinstance(params, MemoryParams)
    for line in (PRESET_DIR / f"{name}.toml").read_text().splitlines():
        if re.match(r"^\w+\s*=", line) and not line.startswith("description"):
            assert "#" in line, f"{name}.toml: no source comment on {line!r}"


def test_shipped_presets_include_default_and_the_closed_form_machine():
    assert {"default", "serial"} <= set(preset_names())
    assert load_memory_params("default") == MemoryParams()
    serial = load_memory_params("serial")
    assert serial.n_banks == 1 and not serial.overlap and serial.burst_units == 1


def write(tmp_path, text):
    path = tmp_path / "mem.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("n_banks = 0", "n_banks"),
        ("throughput_ops_per_ns = 0.0", "throughput_ops_per_ns"),
        ("throughput_ops_per_ns = -2.0", "throughput_ops_per_ns"),
        ("t_access_ns = -1.0", "t_access_ns"),
        ("write_queue_depth_units = 0", "write_queue_depth_units"),
        ("burst_units = 0", "burst_units"),
        ("n_banks = 2.5", "n_banks"),
    ],
)
def test_bad_values_name_the_key_and_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=key) as info:
        load_memory_params(path)
    assert str(path) in str(info.value)


def test_zero_banks_is_a_house_style_error():
    with pytest.raises(
        ValueError,
        match=r"The 'n_banks' parameter of MemoryParams must be an int in \[1, inf\). Got 0.",
    ):
        MemoryParams(n_banks=0)


def test_unknown_key_suggests_the_closest(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'n_banks'"):
        load_memory_params(write(tmp_path, "n_bank = 4"))


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="Known presets: .*default"):
        load_memory_params("no_such_machine")


def test_overrides_replace_file_values():
    assert load_memory_params("default", n_banks=8).n_banks == 8


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"n_banks": 0}, "(with --set n_banks=0)"),
        ({"scheduler": "fifo", "n_banks": 2}, '(with --set scheduler="fifo", n_banks=2)'),
        ({"bogus": 1}, "(with --set bogus=1)"),
    ],
)
def test_bad_overrides_are_named_as_the_experiment_loader_names_them(overrides, named):
    """The memory loader said "(with n_banks=0 set)", the experiment loader "(with --set
    ...)": one phrasing, with values spelt as --set takes them (TOML)."""
    from memsim.experiment.load import load_experiment

    with pytest.raises(ConfigError) as info:
        load_memory_params("default", **overrides)
    assert named in str(info.value) and "set)" not in str(info.value)
    with pytest.raises(ConfigError, match=r"\(with --set sweep\.repeats=0\)"):
        load_experiment(overrides=["sweep.repeats=0"])


@pytest.mark.parametrize(
    ("burst", "depth", "banks", "effective"),
    [(8, 32, 4, 8), (8, 32, 8, 4), (16, 4, 8, 1), (1, 32, 1, 1)],
)
def test_bursts_are_capped_so_every_bank_can_have_one_queued(burst, depth, banks, effective):
    params = MemoryParams(burst_units=burst, write_queue_depth_units=depth, n_banks=banks)
    assert params.effective_burst_units == effective


def test_non_positive_plan_times_are_rejected():
    with pytest.raises(ValueError, match="t_pulse_ns"):
        WritePlan("x", 0, rram_bits=64, t_pulse_ns=-1.0)
    trace = trace_of(1)
    with pytest.raises(ValueError, match="'x': t_pulse_ns must be positive"):
        simulate([WritePlan("x", 0, rram_bits=64, t_pulse_ns=0.0)], trace, seed=0)
    with pytest.raises(ValueError, match="'x': t_sram_ns must be positive"):
        simulate([WritePlan("x", 0, rram_bits=0, sram_bits=8, t_sram_ns=0.0)], trace, seed=0)
    # zero times are fine where nothing is written with them
    simulate([WritePlan("x", 0, rram_bits=0, t_pulse_ns=0.0, t_sram_ns=0.0)], trace, seed=0)


def trace_of(n=2):
    return make_trace(
        "toy",
        "float32",
        [WriteRecord(i, f"l{i}", "ReLU", "activation", (4,), 4, "float32", 32) for i in range(n)],
    )


def test_simulate_rejects_plans_that_do_not_match_the_trace():
    trace = trace_of()
    with pytest.raises(ValueError, match="record_index 5"):
        simulate([WritePlan("x", 5, rram_bits=64)], trace, seed=0)
    with pytest.raises(ValueError, match="Two write plans for trace record 0"):
        simulate([WritePlan("a", 0, rram_bits=64), WritePlan("b", 0, rram_bits=64)], trace, seed=0)
    with pytest.raises(TypeError, match="WritePlan"):
        simulate([{"rram_bits": 64}], trace, seed=0)
    with pytest.raises(TypeError, match="MemoryParams"):
        simulate([], trace, {"n_banks": 4}, seed=0)


def test_empty_plans_give_compute_only_latency():
    res = simulate([], trace_of(), seed=0)
    assert res.latency_ns == 0.0 and res.energy_pj == 0.0 and res.stall_ns == 0.0


def test_memory_cli_names_a_bad_override_with_set_before_writing(tmp_path, capsys):
    from memsim.cli.main import main

    csv = tmp_path / "csv"
    assert main(["memory", "digits", "--set", "n_banks=0", "--csv", str(csv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("memsim memory: error: ")
    assert "(with --set n_banks=0)" in err[0] and "'n_banks'" in err[0]
    assert not csv.exists()
