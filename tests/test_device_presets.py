"""Every shipped device preset loads and makes sense; bad preset files fail by key and file."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from memsim.config import CONFIG_DIR, ConfigError
from memsim.device import (
    CONDITION_DIR,
    DEVICE_DIR,
    DeviceParams,
    OffchipParams,
    ProgrammingCondition,
    condition_names,
    device_names,
    load_condition,
    load_conditions,
    load_device,
    scale_compliance,
)

CONDITION_FILES = sorted(CONDITION_DIR.glob("*.toml"))
DEVICE_FILES = sorted(DEVICE_DIR.glob("*.toml"))
# Memory-system and technology presets cite their sources the same way.
MEMORY_FILES = sorted((CONFIG_DIR / "memory").glob("*.toml"))
COST_FILES = sorted((CONFIG_DIR / "cost").glob("*.toml"))
TAGGED_FILES = CONDITION_FILES + DEVICE_FILES + MEMORY_FILES + COST_FILES
NUMBER_LINE = re.compile(r"^\s*[A-Za-z_][\w.]*\s*=\s*[-+]?(\d|\.\d|inf|nan)")
TAG = re.compile(r"#.*\[(V|A|R|D)(/(V|A|R|D))*\]")


def test_presets_are_shipped():
    assert {"nominal", "medium", "low_energy"} <= set(condition_names())
    assert "default" in device_names()


def check_condition(c: ProgrammingCondition) -> None:
    cell = c.cell
    numbers = [
        c.e_set_pj, c.e_reset_pj, c.t_pulse_ns, c.e_read_pj_per_bit, c.t_read_ns,
        cell.lrs.median_ohm, cell.hrs.median_ohm, cell.lrs.sigma_ln, cell.hrs.sigma_ln,
        cell.read_threshold_ohm, c.p01, c.p10, c.p_bf, c.p_2t2r(),
    ]  # fmt: skip
    assert all(math.isfinite(x) for x in numbers)
    assert all(x > 0 for x in numbers)
    assert cell.lrs.median_ohm < cell.read_threshold_ohm < cell.hrs.median_ohm
    assert 0 < c.p01 < 0.5 and 0 < c.p10 < 0.5
    assert c.p_2t2r() <= c.p_bf  # the differential read never loses to one threshold


@pytest.mark.parametrize("path", CONDITION_FILES, ids=lambda p: p.stem)
def test_every_condition_preset_loads_validates_and_is_ordered(path):
    by_name = load_condition(path.stem)
    by_path = load_condition(path)
    assert by_name == by_path and by_name.name == path.stem
    check_condition(by_name)


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: p.stem)
def test_every_device_preset_loads_validates_and_is_ordered(path):
    device = load_device(path.stem)
    assert isinstance(device, DeviceParams) and load_device(path) == device
    check_condition(device.condition)
    assert device.sram.t_access_ns > 0 and device.secded.codeword_bits > device.secded.data_bits
    assert 0 <= device.secded.word_failure(device.p_bf) <= 1


def test_the_tag_check_covers_every_cost_side_preset():
    assert {"default", "serial", "channels16"} <= {p.stem for p in MEMORY_FILES}
    assert "default" in {p.stem for p in COST_FILES}
    assert not TAG.search("n_banks = 4  # row 20: NVMain")  # a citation alone is not a tag
    assert TAG.search("n_banks = 4  # [D/V] row 20: NVMain")


@pytest.mark.parametrize(
    "path", TAGGED_FILES, ids=lambda p: f"{p.parent.relative_to(CONFIG_DIR)}/{p.stem}"
)
def test_every_number_in_a_preset_carries_a_source_tag(path):
    untagged = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if NUMBER_LINE.match(line) and not TAG.search(line)
    ]
    assert not untagged, f"{path.name}: numbers without a [V]/[A]/[R]/[D] source tag: {untagged}"


def test_offchip_defaults_mirror_the_shipped_bundle_and_its_sources():
    shipped = load_device("default").offchip
    assert OffchipParams() == shipped
    # ZigZag tpu_like.yaml DRAM read: 700 pJ per 64 bits (docs/sources.md §9) [V].
    assert shipped.e_read_pj_per_bit == pytest.approx(700.0 / 64, abs=5e-3)
    # DRAMSim3 DDR4_8Gb_x8_3200 tCK = 0.63 ns, two 64-bit transfers per clock (§9) [V].
    assert shipped.t_word_ns == pytest.approx(0.63 / 2, rel=1e-12)


def test_condition_table_runs_from_nominal_to_low_energy():
    table = load_conditions()
    energies = [c.e_set_pj + c.e_reset_pj for c in table]
    p_bfs = [c.p_bf for c in table]
    assert energies == sorted(energies, reverse=True)
    assert p_bfs == sorted(p_bfs)
    by_name = {c.name: c for c in table}
    assert table[0].name == "nominal" and 5e-7 < by_name["nominal"].p_bf < 2e-6
    assert by_name["medium"].p_bf == pytest.approx(1e-4, rel=0.02)
    low = by_name["low_energy"]
    assert low.p_bf == pytest.approx(4e-2, rel=0.02)
    assert by_name["nominal"].e_set_pj / low.e_set_pj == pytest.approx(30.0)


def test_knob_presets_agree_with_the_scaling_law():
    nominal = load_condition("nominal")
    for name in ("medium", "reduced"):
        preset = load_condition(name)
        ratio = preset.compliance_current_ua / nominal.compliance_current_ua
        scaled = scale_compliance(nominal, ratio)
        assert scaled.p_bf == pytest.approx(preset.p_bf, rel=0.03)
        assert scaled.e_set_pj == pytest.approx(preset.e_set_pj, rel=0.01)


def test_load_device_accepts_condition_names_paths_and_overrides():
    low = load_device("low_energy")
    assert low.condition == load_condition("low_energy")
    assert load_device(CONDITION_DIR / "low_energy.toml").condition == low.condition
    assert load_device("default", condition="medium").condition.name == "medium"
    wv = low.write_verify(3)
    assert wv.max_extra_rounds == 3 and wv.misread_prob == low.read.verify_misread_prob


@pytest.mark.parametrize("loader", [load_condition, load_device])
def test_unknown_preset_names_list_the_known_ones(loader):
    with pytest.raises(ConfigError, match=r"nomnal.*Did you mean 'nominal'.*low_energy"):
        loader("nomnal")


# --- malformed files ---------------------------------------------------------------------

GOOD = (CONDITION_DIR / "nominal.toml").read_text(encoding="utf-8")


def write(tmp_path: Path, text: str, name: str = "bad.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        (
            "t_pulse_ns = 10.0",
            "t_pulse_ns = 10.0\nt_pulse_width_ns = 3.0",
            r"Unknown key 't_pulse_width_ns' in .*bad\.toml",
        ),
        (
            "t_pulse_ns = 10.0",
            "t_pulse = 10.0",
            r"'t_pulse' in .*bad\.toml has no unit.*'t_pulse_ns'",
        ),
        (
            "median_ohm = 10_000.0",
            "median = 10_000.0",
            r"'cell\.lrs\.median' in .*bad\.toml has no unit.*'median_ohm'",
        ),
        (
            "sigma_ln = 0.15",
            "sigma_ln = -0.15",
            r"'cell\.lrs\.sigma_ln' in .*bad\.toml.*'sigma_ln'.*-0\.15",
        ),
        (
            "median_ohm = 100_000.0",
            "median_ohm = 5_000.0",
            r"'cell' in .*bad\.toml.*hrs\.median_ohm",
        ),
        ("e_set_pj = 0.6", "e_set_pj = 0.0", r"bad\.toml.*'e_set_pj'"),
        ("e_reset_pj = 0.6 ", "#", r"Missing key 'e_reset_pj' in .*bad\.toml"),
        (
            "[cell.hrs]",
            "[cell]\nthreshold_ohm = 1e6\n[cell.hrs]",
            r"'cell\.threshold_ohm' in .*bad\.toml.*threshold_ohm",
        ),
    ],
)
def test_malformed_condition_file_names_key_and_file(tmp_path, old, new, pattern):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError, match=pattern):
        load_condition(path)


def test_malformed_device_file_names_key_and_file(tmp_path):
    good = (DEVICE_DIR / "default.toml").read_text(encoding="utf-8")
    bad_unit = write(tmp_path, good.replace("t_access_ns = 1.0", "t_access = 1.0"))
    with pytest.raises(ConfigError, match=r"'sram\.t_access' in .*bad\.toml has no unit"):
        load_device(bad_unit)
    bad_key = write(tmp_path, good.replace("[read]", "[read]\nrelax_prob = 0.1"), "bad2.toml")
    with pytest.raises(ConfigError, match=r"Unknown key 'read\.relax_prob' in .*bad2\.toml"):
        load_device(bad_key)
    bad_cond = write(
        tmp_path, good.replace('condition = "nominal"', 'condition = "nominnal"'), "bad3.toml"
    )
    with pytest.raises(ConfigError, match=r"'condition' in .*bad3\.toml.*Did you mean 'nominal'"):
        load_device(bad_cond)
    bad_prob = write(
        tmp_path,
        good.replace("verify_misread_prob = 0.0", "verify_misread_prob = 1.5"),
        "bad4.toml",
    )
    with pytest.raises(
        ConfigError, match=r"'read\.verify_misread_prob' in .*bad4\.toml.*verify_misread_prob"
    ):
        load_device(bad_prob)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_condition(tmp_path / "nope.toml")


def test_condition_file_with_override_takes_the_override():
    device = load_device(CONDITION_DIR / "low_energy.toml", condition="medium")
    assert device.condition.name == "medium"


def test_condition_name_with_override_takes_the_override():
    device = load_device("reduced", condition="nominal")
    assert device.condition.name == "nominal" and device.name == "default:nominal"


def test_a_negative_write_periphery_energy_names_the_key():
    import dataclasses

    from memsim.device import load_condition

    with pytest.raises(ValueError, match=r"'e_write_periphery_pj_per_bit'.*Got -0\.1"):
        dataclasses.replace(load_condition("nominal"), e_write_periphery_pj_per_bit=-0.1)
