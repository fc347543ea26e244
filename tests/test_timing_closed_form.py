"""Closed forms of the SimPy memory model: latency and energy against exact arithmetic.

Times are multiples of 1/2 ns so that every sum is exact in floating point and the checks
use ``==``.
"""

from __future__ import annotations

import math

import pytest

from memsim.timing import ENERGY_CATEGORIES, MemoryParams, WritePlan, simulate
from memsim.trace.records import WriteRecord, make_trace

T_PULSE, T_VERIFY, T_ECC, T_ACCESS = 8.0, 4.0, 2.0, 0.5


def case(layers, *, unit_bits=64, pmf=(1.0,), sram_bits=0, t_sram=1.0, energy=None, devices=1):
    """A trace and plans: ``layers`` is a list of (ops, rram units)."""
    records, plans = [], []
    for i, (ops, units) in enumerate(layers):
        records.append(
            WriteRecord(i, f"l{i}", "Conv2d", "activation", (units,), units, "float32", 32, ops=ops)
        )
        plans.append(
            WritePlan(
                f"l{i}",
                i,
                rram_bits=units * unit_bits,
                sram_bits=sram_bits,
                unit_bits=unit_bits,
                rounds_pmf=pmf,
                t_pulse_ns=T_PULSE,
                t_verify_ns=T_VERIFY,
                t_ecc_ns=T_ECC,
                t_sram_ns=t_sram,
                energy_pj=energy[i] if energy else {},
                devices_per_bit=devices,
            )
        )
    return make_trace("toy", "float32", records), plans


def machine(**kw):
    base = dict(
        n_banks=1,
        write_width_bits=64,
        write_queue_depth_units=64,
        throughput_ops_per_ns=2.0,
        t_access_ns=T_ACCESS,
        overlap=False,
        burst_units=1,
    )
    return MemoryParams(**{**base, **kw})


LAYERS = [(100, 5), (0, 3), (37, 11), (1000, 0), (6, 7)]


@pytest.mark.parametrize("burst_units", [1, 4])
@pytest.mark.parametrize("depth", [2, 64])
@pytest.mark.parametrize(
    ("unit_bits", "devices", "n_passes"),
    [(64, 1, 1), (72, 1, 2), (128, 1, 2), (64, 2, 2), (72, 2, 3)],
)
def test_one_bank_no_overlap_latency_equals_analytic_sum(
    burst_units, depth, unit_bits, devices, n_passes
):
    # 64 write drivers: a unit of unit_bits × devices cells needs ceil(cells / 64) passes.
    pmf = (0.25, 0.5, 0.25)  # E[R] = 2
    trace, plans = case(LAYERS, unit_bits=unit_bits, pmf=pmf, devices=devices)
    params = machine(burst_units=min(burst_units, depth), write_queue_depth_units=depth)
    res = simulate(plans, trace, params, seed=0, deterministic=True)
    unit_ns = T_ECC + T_ACCESS + n_passes * 2.0 * (T_PULSE + T_VERIFY)
    expected = sum(ops / 2.0 for ops, _ in LAYERS) + sum(n * unit_ns for _, n in LAYERS)
    assert res.latency_ns == expected
    assert res.compute_ns == sum(ops / 2.0 for ops, _ in LAYERS)
    assert (
        res.latency_ns == res.compute_ns + res.stall_ns
    )  # no overlap: the processor waits for everything


@pytest.mark.parametrize("n_banks", [2, 3, 4])
@pytest.mark.parametrize("units", [12, 13])
def test_b_banks_latency_is_ceil_units_over_banks_of_unit_time(n_banks, units):
    layers = [(64, units), (8, units + 1)]
    trace, plans = case(layers)
    res = simulate(plans, trace, machine(n_banks=n_banks), seed=0, deterministic=True)
    unit_ns = T_ECC + T_ACCESS + T_PULSE + T_VERIFY
    # Unit interleaving gives every bank floor(n/B) or ceil(n/B) units of a layer, so a layer's
    # writes take ceil(n/B) unit times: n/B of the one-bank write time plus a tail < one unit.
    write_ns = [math.ceil(n / n_banks) * unit_ns for _, n in layers]
    assert res.latency_ns == sum(ops / 2.0 for ops, _ in layers) + sum(write_ns)
    for w, (_, n) in zip(write_ns, layers):
        assert n / n_banks * unit_ns <= w < n / n_banks * unit_ns + unit_ns


def test_b_banks_equal_units_share_the_busy_time_evenly():
    trace, plans = case([(0, 40)])
    res = simulate(plans, trace, machine(n_banks=4), seed=0, deterministic=True)
    rram = res.banks[res.banks["memory"] == "rram"]
    assert rram["units"].tolist() == [10, 10, 10, 10]
    assert rram["utilisation"].tolist() == [1.0, 1.0, 1.0, 1.0]


def test_overlap_lets_compute_run_under_earlier_writes():
    layers = [(40, 3), (10, 4), (200, 2), (0, 1)]
    trace, plans = case(layers)
    params = machine(overlap=True)
    res = simulate(plans, trace, params, seed=0, deterministic=True)
    unit_ns = T_ECC + T_ACCESS + T_PULSE + T_VERIFY
    # One FIFO bank, queue never full: layer i's writes start at max(previous end, its issue).
    issued = finish = 0.0
    for ops, n in layers:
        issued += ops / 2.0
        finish = max(finish, issued) + n * unit_ns
    assert res.stall_ns == 0.0
    assert res.latency_ns == max(finish, issued)
    serial = simulate(plans, trace, machine(overlap=False), seed=0, deterministic=True)
    assert res.latency_ns < serial.latency_ns == issued + sum(n for _, n in layers) * unit_ns


def test_sram_writes_run_beside_rram_and_take_units_times_access_time():
    trace, plans = case([(0, 4)], sram_bits=640, t_sram=3.0)  # 10 SRAM units of 64 bits
    res = simulate(plans, trace, machine(), seed=0, deterministic=True)
    sram = res.banks[res.banks["memory"] == "sram"].iloc[0]
    rram_ns = 4 * (T_ECC + T_ACCESS + T_PULSE + T_VERIFY)
    assert sram["busy_ns"] == 30.0
    assert res.latency_ns == max(rram_ns, 30.0)


@pytest.mark.parametrize("burst_units", [2, 8, 32])
def test_burst_size_does_not_change_latency_when_queue_never_fills(burst_units):
    trace, plans = case([(500, 40), (30, 70), (900, 25)], pmf=(0.5, 0.3, 0.2))
    params = machine(n_banks=3, overlap=True, write_queue_depth_units=256)
    exact = simulate(plans, trace, params, seed=11)
    coarse = simulate(
        plans, trace, MemoryParams(**{**params.__dict__, "burst_units": burst_units}), seed=11
    )
    assert coarse.latency_ns == pytest.approx(exact.latency_ns, rel=1e-12)
    assert coarse.banks["busy_ns"].tolist() == pytest.approx(
        exact.banks["busy_ns"].tolist(), rel=1e-12
    )
    assert coarse.events < exact.events


def test_energy_totals_equal_the_sum_of_plan_energies():
    energy = [
        {"rram_set": 12.5, "rram_reset": 3.0, "verify_read": 1.25},
        {},
        {"sram": 7.0, "ecc": 0.5, "rram_set": 1.0},
    ]
    trace, plans = case([(1, 2), (1, 1), (1, 3)], energy=energy)
    res = simulate(plans, trace, machine(n_banks=2), seed=3)
    assert res.energy_pj == sum(sum(e.values()) for e in energy)
    by_cat = dict(zip(res.energy["category"], res.energy["energy_pj"]))
    for cat in ENERGY_CATEGORIES:
        assert by_cat[cat] == sum(e.get(cat, 0.0) for e in energy)
        assert res.layers[f"energy_{cat}_pj"].tolist() == [e.get(cat, 0.0) for e in energy]
    assert res.energy["share"].sum() == pytest.approx(1.0)


def test_records_without_plans_only_compute():
    trace, plans = case([(10, 2), (20, 2)])
    res = simulate(plans[:1], trace, machine(), seed=0, deterministic=True)
    assert res.layers["rram_units"].tolist() == [2, 0]
    assert res.latency_ns == 5.0 + 2 * (T_ECC + T_ACCESS + T_PULSE + T_VERIFY) + 10.0
