"""Closed forms of the area and standby model (memsim.cost) and the footprint of a trace."""

from __future__ import annotations

import dataclasses

import pytest

from memsim.config import ConfigError
from memsim.cost import (
    Footprint,
    TechnologyParams,
    area,
    footprint,
    idle_power_nw,
    leakage_nw,
    load_technology,
    peak_live,
    standby_energy_pj,
)
from memsim.timing import MemoryParams, WritePlan
from memsim.trace.records import WriteRecord, make_trace

MB_BITS = 8 * 2**20


def test_shipped_preset_loads_with_every_field():
    tech = load_technology("default")
    assert tech == TechnologyParams()  # the dataclass defaults mirror the preset


def test_array_area_follows_cells_times_cell_area_over_efficiency():
    tech = TechnologyParams(
        feature_nm=10.0,
        rram_cell_area_f2=4.0,
        rram_array_efficiency=0.5,
        sram_cell_area_f2=100.0,
        sram_array_efficiency=0.8,
        gate_area_f2=50.0,
        ecc_codec_gates=1000,
        verify_compare_gates=10,
    )
    fp = Footprint(
        rram_devices=1_000_000, sram_bits=2_000, logic=("ecc_codec", "verify_compare"), n_banks=3
    )
    got = area(fp, tech)
    f2_mm2 = 10.0**2 * 1e-12
    assert got.rram_mm2 == pytest.approx(1_000_000 * 4.0 * f2_mm2 / 0.5, rel=1e-12)
    assert got.sram_mm2 == pytest.approx(2_000 * 100.0 * f2_mm2 / 0.8, rel=1e-12)
    assert got.logic_mm2 == pytest.approx(3 * (1000 + 10) * 50.0 * f2_mm2, rel=1e-12)
    assert got.total_mm2 == pytest.approx(got.rram_mm2 + got.sram_mm2 + got.logic_mm2)


def test_one_megabyte_macros_reproduce_the_cited_nvmexplorer_areas():
    # The preset's cell areas and efficiencies are NVMExplorer's 22 nm 1 MB runs, so the
    # formula must give back their macro areas (0.246714698 and 0.654296934 mm²).
    tech = load_technology("default")
    assert area(Footprint(MB_BITS, 0), tech).total_mm2 == pytest.approx(0.246714698, rel=1e-4)
    assert area(Footprint(0, MB_BITS), tech).total_mm2 == pytest.approx(0.654296934, rel=1e-4)


@pytest.mark.parametrize("factor", [2, 5, 13])
def test_sram_capacity_scales_area_and_standby_as_the_formulas_say(factor):
    tech = load_technology("default")
    small = Footprint(rram_devices=50_000, sram_bits=10_000)
    large = dataclasses.replace(small, sram_bits=10_000 * factor)
    a_small, a_large = area(small, tech), area(large, tech)
    assert a_large.sram_mm2 == pytest.approx(factor * a_small.sram_mm2, rel=1e-12)
    assert a_large.rram_mm2 == a_small.rram_mm2
    added_bits = 10_000 * (factor - 1)
    cell_mm2 = tech.sram_cell_area_f2 * tech.feature_nm**2 * 1e-12 / tech.sram_array_efficiency
    assert a_large.total_mm2 - a_small.total_mm2 == pytest.approx(added_bits * cell_mm2, rel=1e-9)
    latency_ns = 12_345.0
    e_small = standby_energy_pj(leakage_nw(small, tech), latency_ns)
    e_large = standby_energy_pj(leakage_nw(large, tech), latency_ns)
    expected = added_bits * tech.sram_leakage_nw_per_bit * latency_ns * 1e-6
    assert e_large - e_small == pytest.approx(expected, rel=1e-9)
    assert e_large > e_small and a_large.total_mm2 > a_small.total_mm2
    # SRAM is not power-gated by default: idle power grows the same way; RRAM is gated.
    assert idle_power_nw(large, tech) == pytest.approx(
        10_000 * factor * tech.sram_leakage_nw_per_bit, rel=1e-12
    )


def test_standby_energy_is_power_times_latency():
    assert standby_energy_pj(1000.0, 2000.0) == pytest.approx(2.0)  # 1 µW × 2 µs = 2 pJ
    tech = TechnologyParams(rram_leakage_nw_per_bit=0.5, sram_leakage_nw_per_bit=2.0)
    fp = Footprint(rram_devices=100, sram_bits=10)
    assert leakage_nw(fp, tech) == pytest.approx(100 * 0.5 + 10 * 2.0)
    gated = dataclasses.replace(tech, sram_idle_gated=True, rram_idle_gated=False)
    assert idle_power_nw(fp, gated) == pytest.approx(100 * 0.5)


def _trace_and_plans(sizes, *, rram_per_el=32, sram_per_el=0, devices=1, logic=()):
    records, plans = [], []
    for i, n in enumerate(sizes):
        records.append(WriteRecord(i, f"l{i}", "Conv2d", "activation", (n,), n, "float32", 32))
        plans.append(
            WritePlan(
                f"l{i}",
                i,
                rram_bits=n * rram_per_el,
                sram_bits=n * sram_per_el,
                devices_per_bit=devices,
                logic=logic,
            )
        )
    records.append(WriteRecord(len(sizes), "l1.weight", "Conv2d", "weight", (7,), 7, "float32", 32))
    return make_trace("toy", "float32", records), plans


def test_peak_live_is_the_largest_pair_of_consecutive_tensors():
    trace, plans = _trace_and_plans([10, 40, 5, 30, 30], rram_per_el=23, sram_per_el=9)
    assert peak_live(trace, plans) == (60 * 23, 60 * 9)


def test_footprint_adds_weights_where_they_live_and_the_logic_per_bank():
    trace, plans = _trace_and_plans([10, 40, 5], devices=2, logic=("verify_compare",))
    rram = footprint(trace, plans, MemoryParams(n_banks=4, weight_memory="rram"))
    assert rram.rram_devices == 50 * 32 * 2 + 7 * 32
    assert rram.sram_bits == 0 and rram.logic == ("verify_compare",) and rram.n_banks == 4
    sram = footprint(trace, plans, MemoryParams(weight_memory="sram"))
    assert (sram.rram_devices, sram.sram_bits) == (50 * 32 * 2, 7 * 32)
    off = footprint(trace, plans, MemoryParams(weight_memory="offchip"))
    assert (off.rram_devices, off.sram_bits) == (50 * 32 * 2, 0)


def test_configured_capacity_scales_the_stored_cells_per_traced_bit():
    trace, plans = _trace_and_plans([10, 40, 5], rram_per_el=23, sram_per_el=9)
    fp = footprint(
        trace, plans, MemoryParams(activation_capacity_bits=3200, weight_memory="offchip")
    )
    # 3200 traced bits = 100 float32 elements, each stored as 23 RRAM + 9 SRAM bits.
    assert (fp.rram_devices, fp.sram_bits) == (2300, 900)


def test_bad_technology_values_and_names_are_clear_errors():
    with pytest.raises(ValueError, match="rram_array_efficiency"):
        TechnologyParams(rram_array_efficiency=1.5)
    with pytest.raises(ConfigError, match="Unknown technology preset 'nope'"):
        load_technology("nope")
    with pytest.raises(ValueError, match="unknown logic block 'magic'"):
        Footprint(1, 1, logic=("magic",))
