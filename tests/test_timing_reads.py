"""Reads in the SimPy memory model: closed forms without contention, the scheduler's rule with it.

Times are multiples of 1/2 ns so that sums are exact in floating point.
"""

from __future__ import annotations

import pytest

from memsim.device import load_device
from memsim.timing import MemoryParams, ReadPlan, WritePlan, simulate
from memsim.timing.reads import activation_reads, read_plans, weight_reads
from memsim.trace.records import WriteRecord, make_trace

T_ACCESS = 0.5


def machine(**kw):
    base = dict(
        n_banks=1,
        write_width_bits=64,
        write_queue_depth_units=64,
        throughput_ops_per_ns=2.0,
        t_access_ns=T_ACCESS,
        overlap=True,
        burst_units=1,
        read_burst_units=1,
    )
    return MemoryParams(**{**base, **kw})


def records(ops):
    return make_trace(
        "toy",
        "float32",
        [
            WriteRecord(i, f"l{i}", "Conv2d", "activation", (1,), 1, "float32", 32, ops=o)
            for i, o in enumerate(ops)
        ],
    )


def test_reads_without_contention_stall_for_the_sum_of_their_times():
    trace = records([10, 20, 30])
    reads = [
        ReadPlan("a", 0, "rram", units=3, t_unit_ns=2.5, energy_pj={"read_rram": 1.0}),
        ReadPlan("b", 1, "rram", units=4, t_unit_ns=1.5, first_unit=3),
        ReadPlan("w", 1, "rram", units=2, t_unit_ns=4.0, kind="weight"),
        ReadPlan("c", 2, "sram", units=5, t_unit_ns=1.0, energy_pj={"read_sram": 2.5}),
    ]
    res = simulate([], trace, machine(), seed=0, reads=reads)
    read_ns = [3 * 2.5, 4 * 1.5 + 2 * 4.0, 5 * 1.0]
    compute = [5.0, 10.0, 15.0]
    assert res.layers["stall_read_ns"].tolist() == read_ns
    assert res.stall_read_ns == sum(read_ns)
    assert res.latency_ns == sum(read_ns) + sum(compute)
    assert res.read_energy_pj == 3.5
    rram = res.banks[res.banks["memory"] == "rram"].iloc[0]
    assert rram["busy_read_ns"] == 3 * 2.5 + 4 * 1.5 + 2 * 4.0 and rram["busy_write_ns"] == 0
    assert rram["read_utilisation"] == rram["busy_read_ns"] / res.latency_ns


def test_reads_spread_over_banks_take_the_busiest_bank():
    trace = records([0])
    reads = [ReadPlan("a", 0, "rram", units=10, t_unit_ns=2.0)]
    res = simulate([], trace, machine(n_banks=4), seed=0, reads=reads)
    assert res.stall_read_ns == 3 * 2.0  # ceil(10 / 4) units on the busiest bank


def contention_case(params, *, writes=6, w_ns=8.0, gap_ns=3.0, reads=2, r_ns=2.5):
    """Layer 0 writes ``writes`` units; layer 1 computes ``gap_ns``; layer 2 reads."""
    trace = records([0, int(gap_ns * 2), 0])
    plan = WritePlan("l0", 0, rram_bits=writes * 64, unit_bits=64, t_pulse_ns=w_ns - T_ACCESS)
    read = [ReadPlan("x", 2, "rram", units=reads, t_unit_ns=r_ns)]
    return simulate([plan], trace, params, seed=0, deterministic=True, reads=read)


def test_read_first_serves_a_read_after_the_write_in_service():
    res = contention_case(machine(scheduler="read_first"))
    # The bank started unit 1 of 6 at t = 0 (8 ns, not pre-empted); the reads arrive at 3 ns.
    assert res.stall_read_ns == (8.0 - 3.0) + 2 * 2.5


def test_in_order_reads_wait_for_every_earlier_write():
    res = contention_case(machine(scheduler="in_order"))
    assert res.stall_read_ns == 6 * 8.0 - 3.0 + 2 * 2.5


def test_read_first_drains_writes_down_to_the_low_watermark_first():
    params = machine(scheduler="read_first", write_drain_high_units=5, write_drain_low_units=2)
    res = contention_case(params)
    # 6 queued entries >= 5: draining; writes go first until 2 remain (4 written).
    assert res.stall_read_ns == 4 * 8.0 - 3.0 + 2 * 2.5
    assert res.latency_ns == 6 * 8.0 + 2 * 2.5


def test_verify_and_pre_read_time_holds_the_bank_against_inference_reads():
    trace = records([0, 6, 0])
    plan = WritePlan(
        "l0",
        0,
        rram_bits=64,
        unit_bits=64,
        rounds_pmf=(0.0, 1.0),  # two rounds, each pulse + verify read
        t_pulse_ns=4.0,
        t_verify_ns=2.0,
        t_pre_read_ns=1.5,
    )
    read = [ReadPlan("x", 2, "rram", units=1, t_unit_ns=2.5)]
    res = simulate([plan], trace, machine(), seed=0, deterministic=True, reads=read)
    unit_ns = T_ACCESS + 1.5 + 2 * (4.0 + 2.0)
    assert res.stall_read_ns == unit_ns - 3.0 + 2.5


def test_activation_reads_follow_the_producer_plan_and_its_banks():
    device = load_device("default")
    trace = records([5, 5, 5])
    plans = {
        0: WritePlan(
            "l0",
            0,
            rram_bits=7 * 72,
            sram_bits=3 * 64,
            unit_bits=72,
            devices_per_bit=2,
            t_read_ns=10.0,
            t_decode_ns=1.0,
            read_energy_pj={"read_rram": 4.0, "read_sram": 1.0, "ecc_decode": 0.5},
        ),
        1: WritePlan("l1", 1, rram_bits=5 * 64),
    }
    params = machine(n_banks=4, write_width_bits=72)
    reads = activation_reads(trace, plans, params)
    assert [(r.record_index, r.memory, r.units, r.first_unit) for r in reads] == [
        (1, "rram", 7, 0),
        (1, "sram", 3, 0),
        (2, "rram", 5, 7),
    ]
    # 72 bits × 2 devices over 72 columns: two passes of 10 ns, plus access and decode.
    assert reads[0].t_unit_ns == T_ACCESS + 2 * 10.0 + 1.0
    assert reads[0].energy_pj == {"read_rram": 4.0, "ecc_decode": 0.5}
    assert reads[1].energy_pj == {"read_sram": 1.0}
    assert device.condition.t_read_ns > 0


@pytest.mark.parametrize("memory", ["rram", "sram", "offchip"])
def test_weight_reads_come_from_the_configured_memory(memory):
    device = load_device("default")
    trace = make_trace(
        "toy",
        "float32",
        [
            WriteRecord(0, "l0.weight", "Conv2d", "weight", (10,), 10, "float32", 32),
            WriteRecord(1, "l0.bias", "Conv2d", "bias", (2,), 2, "float32", 32),
            WriteRecord(2, "l0", "Conv2d", "activation", (4,), 4, "float32", 32, ops=8),
        ],
    )
    params = machine(weight_memory=memory)
    reads = weight_reads(trace, device, params)
    assert [r.record_index for r in reads] == [2, 2]
    assert all(r.memory == memory and r.kind == "weight" for r in reads)
    bits = 12 * 32
    per_bit = {
        "rram": device.condition.e_read_pj_per_bit,
        "sram": device.sram.e_read_pj_per_bit,
        "offchip": device.offchip.e_read_pj_per_bit,
    }[memory]
    assert sum(r.total_energy_pj for r in reads) == pytest.approx(bits * per_bit, rel=1e-12)
    res = simulate([], trace, params, seed=0, reads=read_plans(trace, [], device, params))
    assert res.read_energy_pj == pytest.approx(bits * per_bit, rel=1e-12)
    assert res.stall_read_ns == sum(r.units * r.t_unit_ns for r in reads)


@pytest.mark.parametrize(("unit_bits", "n_passes"), [(None, 1), (32, 1), (128, 2), (192, 3)])
def test_rram_weight_reads_use_the_device_unit_size(unit_bits, n_passes):
    import types

    from memsim.timing.reads import RRAM_WORD_BITS

    shipped = load_device("default")
    device = shipped if unit_bits is None else types.SimpleNamespace(
        condition=shipped.condition, sram=shipped.sram, offchip=shipped.offchip, unit_bits=unit_bits
    )  # fmt: skip
    word = RRAM_WORD_BITS if unit_bits is None else unit_bits
    bits = 24 * 32  # one weight record of 768 bits
    trace = make_trace(
        "toy",
        "float32",
        [
            WriteRecord(0, "l0.weight", "Conv2d", "weight", (24,), 24, "float32", 32),
            WriteRecord(1, "l0", "Conv2d", "activation", (4,), 4, "float32", 32, ops=8),
        ],
    )
    params = machine(weight_memory="rram")  # 64 write/sense columns per bank
    (read,) = weight_reads(trace, device, params)
    assert read.units == -(-bits // word)
    assert read.t_unit_ns == T_ACCESS + n_passes * shipped.condition.t_read_ns
    assert read.total_energy_pj == pytest.approx(bits * shipped.condition.e_read_pj_per_bit)


def test_write_only_model_is_unchanged_by_the_read_machinery():
    trace = records([10, 0])
    plan = WritePlan("l0", 0, rram_bits=3 * 64, unit_bits=64, t_pulse_ns=8.0 - T_ACCESS)
    a = simulate([plan], trace, machine(), seed=0, deterministic=True)
    b = simulate([plan], trace, machine(), seed=0, deterministic=True, reads=[])
    assert a.latency_ns == b.latency_ns == 5.0 + 3 * 8.0
    assert a.stall_read_ns == b.stall_read_ns == 0.0


def test_read_plan_rejects_unknown_memories_and_categories():
    with pytest.raises(ValueError, match="memory must be one of"):
        ReadPlan("x", 0, "tape", units=1, t_unit_ns=1.0)
    with pytest.raises(ValueError, match="unknown energy category 'read_tape'"):
        ReadPlan("x", 0, "rram", units=1, t_unit_ns=1.0, energy_pj={"read_tape": 1.0})


@pytest.mark.parametrize(
    "n, banks, interleave, first, burst",
    [(0, 4, 1, 0, 8), (1, 4, 1, 3, 8), (37, 4, 1, 5, 8), (1000, 3, 2, 7, 16), (64, 1, 1, 0, 64)],
)
def test_read_bursts_cut_each_bank_like_the_unit_level_mapping(n, banks, interleave, first, burst):
    from memsim.timing.mapping import read_bursts, split_units

    params = machine(n_banks=banks, interleave_units=interleave, read_burst_units=burst)
    fast = read_bursts(ReadPlan("x", 0, "rram", units=n, t_unit_ns=1.5, first_unit=first), params)
    slow = split_units(
        n,
        n_banks=banks,
        interleave_units=interleave,
        burst_units=burst,
        first_unit=first,
        unit_ns=1.5,
    )
    for b in range(banks):
        assert sorted(fast.units[fast.bank == b].tolist()) == sorted(
            slow.units[slow.bank == b].tolist()
        )
    assert fast.service_ns.tolist() == (fast.units * 1.5).tolist()
    assert int(fast.units.sum()) == n
