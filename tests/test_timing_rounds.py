"""Pulse rounds are sampled per write unit from the plan's pmf, reproducibly; units map round-robin."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from memsim.rng import generator
from memsim.timing import MemoryParams, WritePlan, simulate
from memsim.timing.mapping import sample_rounds, split_units
from memsim.trace.records import WriteRecord, make_trace

PMF = (0.55, 0.3, 0.1, 0.05)


def test_sampled_rounds_match_the_pmf():
    n = 100_000
    rounds = sample_rounds(PMF, n, generator(7, "test"))
    counts = np.bincount(rounds.astype(int), minlength=len(PMF) + 1)[1:]
    chi2 = stats.chisquare(counts, np.asarray(PMF) * n)
    assert chi2.pvalue > 1e-3
    assert rounds.mean() == pytest.approx(np.dot(np.arange(1, 5), PMF), abs=0.01)


def test_deterministic_rounds_are_the_expected_value():
    rounds = sample_rounds(PMF, 5, None, deterministic=True)
    assert rounds.tolist() == [pytest.approx(1.65)] * 5


def test_single_round_pmf_needs_no_rng():
    assert sample_rounds((1.0,), 3, None).tolist() == [1.0, 1.0, 1.0]


def toy(pmf=PMF, units=(300, 500)):
    records = [
        WriteRecord(i, f"l{i}", "Conv2d", "activation", (n,), n, "float32", 32, ops=10 * n)
        for i, n in enumerate(units)
    ]
    plans = [
        WritePlan(
            f"l{i}",
            i,
            rram_bits=64 * n,
            unit_bits=64,
            rounds_pmf=pmf,
            t_pulse_ns=10.0,
            t_verify_ns=5.0,
        )
        for i, n in enumerate(units)
    ]
    return make_trace("toy", "float32", records), plans


def test_simulated_rounds_follow_the_pmf():
    trace, plans = toy(units=(20_000,))
    res = simulate(plans, trace, MemoryParams(), seed=1)
    assert res.layers["rounds_mean"].iloc[0] == pytest.approx(1.65, abs=0.02)


def test_same_seed_gives_identical_results_and_another_seed_does_not():
    trace, plans = toy()
    a = simulate(plans, trace, MemoryParams(), seed=5)
    b = simulate(plans, trace, MemoryParams(), seed=5)
    c = simulate(plans, trace, MemoryParams(), seed=6)
    assert a.latency_ns == b.latency_ns
    assert a.layers.equals(b.layers) and a.banks.equals(b.banks)
    assert a.latency_ns != c.latency_ns


def test_more_rounds_never_shorten_latency():
    trace, single = toy(pmf=(1.0,))
    _, verify = toy(pmf=PMF)
    fast = simulate(single, trace, MemoryParams(), seed=2)
    slow = simulate(verify, trace, MemoryParams(), seed=2)
    assert slow.latency_ns > fast.latency_ns


@pytest.mark.parametrize(
    ("n", "banks", "interleave", "first"), [(10, 4, 1, 0), (13, 3, 2, 5), (7, 1, 1, 3)]
)
def test_units_map_round_robin_over_banks(n, banks, interleave, first):
    b = split_units(
        n, n_banks=banks, interleave_units=interleave, burst_units=2, first_unit=first, unit_ns=1.0
    )
    assert b.units.sum() == n and b.units.max() <= 2
    expected = np.bincount(((first + np.arange(n)) // interleave) % banks, minlength=banks)
    assert np.bincount(b.bank, weights=b.units, minlength=banks).tolist() == expected.tolist()
    assert b.service_ns.tolist() == b.units.astype(float).tolist()


def test_burst_service_sums_its_units_rounds():
    rounds = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    b = split_units(
        6,
        n_banks=2,
        interleave_units=1,
        burst_units=3,
        first_unit=0,
        unit_ns=0.5,
        round_ns=10.0,
        rounds=rounds,
    )
    # bank 0 gets units 0, 2, 4 (rounds 1+3+5); bank 1 gets 1, 3, 5 (2+4+6); bank 0 is issued first.
    assert b.bank.tolist() == [0, 1]
    assert b.rounds.tolist() == [9.0, 12.0]
    assert b.service_ns.tolist() == [1.5 + 90.0, 1.5 + 120.0]


def test_interleaving_continues_across_tensors():
    trace, plans = toy(pmf=(1.0,), units=(5, 3))
    res = simulate(plans, trace, MemoryParams(n_banks=4, burst_units=1), seed=0)
    rram = res.banks[res.banks["memory"] == "rram"]
    # units 0..4 then 5..7 → banks 0,1,2,3,0 | 1,2,3: two units on every bank
    assert rram["units"].tolist() == [2, 2, 2, 2]
