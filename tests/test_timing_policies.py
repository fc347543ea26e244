"""Every default policy's write plans run through the memory model consistently.

Contract tests over ``policies.default_policies()`` (a new policy is checked the moment it is
registered): energy is the plans' sum, time covers compute and the busiest bank, and a larger
write-verify budget never shortens the latency.
"""

from __future__ import annotations

import math

import pytest

import memsim.device as device_mod
import policies
from memsim.timing import MemoryParams, plan_trace, simulate
from memsim.trace.records import WriteRecord, make_trace

# Imported, not guarded: a broken policies package fails collection instead of emptying the
# parametrize list.
POLICIES = policies.default_policies()


def test_the_default_policies_are_all_checked():
    assert {"baseline", "write_verify", "sram_exponent", "ecc_secded"} <= set(POLICIES)


@pytest.fixture(scope="module")
def device():
    return device_mod.load_device()


@pytest.fixture(scope="module")
def trace():
    ones = tuple(0.5 if i % 3 else 0.2 for i in range(32))
    records = [
        WriteRecord(0, "input", "Input", "input", (3, 8, 8), 192, "float32", 32, 0, ones),
        WriteRecord(0, "conv", "Conv2d", "activation", (8, 8, 8), 512, "float32", 32, 13824, ones),
        WriteRecord(0, "relu", "ReLU", "activation", (8, 8, 8), 512, "float32", 32, 512, ones, 0.5),
        WriteRecord(0, "fc", "Linear", "activation", (10,), 10, "float32", 32, 5120, ones),
    ]
    return make_trace("toy", "float32", records)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_plans_simulate_with_their_energy_and_enough_time(name, trace, device):
    plans = plan_trace(POLICIES[name], trace, device)
    params = MemoryParams(n_banks=2, burst_units=1)
    res = simulate(plans, trace, params, seed=0)
    assert res.energy_pj == pytest.approx(sum(p.total_energy_pj for p in plans), rel=1e-12)
    assert math.isfinite(res.latency_ns) and res.latency_ns >= res.compute_ns
    assert res.latency_ns >= res.banks["busy_ns"].max()
    assert res.layers["rram_units"].sum() == sum(p.n_units for p in plans)
    assert res.layers["sram_units"].sum() == sum(p.n_sram_units for p in plans)


def test_larger_verify_budget_never_shortens_latency(trace, device):
    latencies = []
    for k in range(4):
        policy = policies.get_policy({"kind": "write_verify", "max_extra_rounds": k})
        plans = plan_trace(policy, trace, device)
        latencies.append(
            simulate(plans, trace, MemoryParams(), seed=0, deterministic=True).latency_ns
        )
    assert latencies == sorted(latencies)
    # Not a vacuous check: verify rounds must cost time, so the budget shows in the latency.
    assert latencies[-1] > latencies[0]
