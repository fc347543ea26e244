"""When the processor stalls: only on a full write queue (overlap) or on its own writes (no overlap)."""

from __future__ import annotations

import pytest

from memsim.timing import MemoryParams, WritePlan, simulate
from memsim.trace.records import WriteRecord, make_trace

UNIT_NS = 10.0  # one 64-bit unit, single 10 ns pulse, no overhead


def run(layers, *, depth=8, overlap=True, n_banks=1, burst_units=1):
    """Simulate ``layers`` = [(compute_ns, units)] at 1 op/ns on one unit-level bank."""
    records = [
        WriteRecord(
            i, f"l{i}", "Conv2d", "activation", (max(n, 1),), max(n, 1), "float32", 32, ops=int(c)
        )
        for i, (c, n) in enumerate(layers)
    ]
    plans = [
        WritePlan(f"l{i}", i, rram_bits=64 * n, unit_bits=64, t_pulse_ns=UNIT_NS)
        for i, (_, n) in enumerate(layers)
    ]
    params = MemoryParams(
        n_banks=n_banks,
        write_width_bits=64,
        write_queue_depth_units=depth,
        throughput_ops_per_ns=1.0,
        t_access_ns=0.0,
        overlap=overlap,
        burst_units=burst_units,
    )
    return simulate(
        plans, make_trace("toy", "float32", records), params, seed=0, deterministic=True
    )


@pytest.mark.parametrize(("units", "stall_ns"), [(7, 0.0), (8, 0.0), (9, 10.0), (11, 30.0)])
def test_processor_stalls_only_when_queue_full(units, stall_ns):
    # Depth 8: up to 8 units are accepted at once; each further unit waits for one write.
    res = run([(5, units), (1, 0)], depth=8)
    assert res.stall_queue_ns == stall_ns
    assert res.layers["stall_queue_ns"].tolist() == [stall_ns, 0.0]
    assert res.stall_dependency_ns == 0.0


@pytest.mark.parametrize(("second_units", "stall_ns"), [(3, 0.0), (4, 5.0)])
def test_second_layer_stalls_only_if_compute_did_not_drain_enough_entries(second_units, stall_ns):
    # Layer 0 fills the 8-entry queue at t=0; layer 1 issues at t=35, when 3 units are written
    # (entries freed at 10, 20, 30); its 4th unit waits for the write ending at t=40.
    res = run([(0, 8), (35, second_units)], depth=8)
    assert res.layers["stall_queue_ns"].tolist() == [0.0, stall_ns]


def test_no_overlap_waits_for_its_own_writes_not_for_the_queue():
    res = run([(5, 3), (7, 2)], depth=8, overlap=False)
    assert res.stall_queue_ns == 0.0
    assert res.layers["stall_dependency_ns"].tolist() == [30.0, 20.0]
    assert res.latency_ns == 5 + 30 + 7 + 20


def test_queue_occupancy_never_exceeds_depth_and_reaches_it_when_full():
    full = run([(0, 20)], depth=8)
    assert full.queue_max_units == 8
    roomy = run([(0, 5)], depth=8)
    assert roomy.queue_max_units == 5


def test_queue_mean_is_time_weighted():
    # n units at t=0, one bank: occupancy n, n-1, ..., 1 for one unit time each → mean (n+1)/2.
    res = run([(0, 6)], depth=8)
    assert res.latency_ns == 60.0
    assert res.queue_mean_units == pytest.approx(3.5, rel=1e-12)


def test_bursts_hold_one_entry_per_unit():
    res = run([(0, 16)], depth=8, burst_units=8)
    assert res.queue_max_units == 8
    assert res.stall_queue_ns == 80.0  # the second burst waits for the whole first one
