"""Write-verify: closed forms against a Monte Carlo of individual cells, and monotonicity."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memsim.device import LognormalState, RRAMCell, WriteVerify, cell_for_pbf


def simulate_cells(cell: RRAMCell, wv: WriteVerify, direction: str, n: int, seed: int):
    """Pulse ``n`` cells one resistance draw at a time; return (wrong, pulses) per cell."""
    rng = np.random.default_rng(seed)
    r_th = cell.read_threshold_ohm
    state = cell.lrs if direction == "set" else cell.hrs
    m = wv.verify_margin_ln
    pulses = np.zeros(n, dtype=np.int64)
    wrong = np.zeros(n, dtype=bool)
    active = np.ones(n, dtype=bool)
    for attempt in range(1, wv.max_pulses + 1):
        idx = np.flatnonzero(active)
        r = state.sample(idx.size, rng)
        pulses[idx] += 1
        if direction == "set":
            wrong[idx], outside = r >= r_th, r >= r_th * math.exp(-m)
        else:
            wrong[idx], outside = r < r_th, r < r_th * math.exp(m)
        if attempt == wv.max_pulses:
            break
        missed = rng.random(idx.size) < wv.misread_prob
        active[idx] = outside & ~missed
    return wrong, pulses


CASES = [
    (WriteVerify(0), "set"),
    (WriteVerify(3), "set"),
    (WriteVerify(3, verify_margin_ln=0.2), "reset"),
    (WriteVerify(4, verify_margin_ln=0.1, misread_prob=0.1), "set"),
    (WriteVerify(2, misread_prob=0.3), "reset"),
]


@pytest.mark.parametrize(("wv", "direction"), CASES)
def test_residual_error_and_pulses_match_cell_monte_carlo(wv, direction):
    cell = cell_for_pbf(0.15, 1e4, 4.0, 0.4)
    probs = wv.attempt_probs(cell, direction)
    n = 200_000
    wrong, pulses = simulate_cells(cell, wv, direction, n, seed=7)
    resid = wv.residual_error(probs.p_wrong, probs.q_verify)
    assert abs(wrong.mean() - resid) < 4 * math.sqrt(resid * (1 - resid) / n) + 1e-6
    mean_pulses = wv.expected_pulses(probs.p_wrong, probs.q_verify)
    assert abs(pulses.mean() - mean_pulses) < 4 * pulses.std() / math.sqrt(n) + 1e-9


@pytest.mark.parametrize("unit_cells", [1, 8, 64])
def test_rounds_per_unit_are_the_max_over_cells_as_in_monte_carlo(unit_cells):
    cell = cell_for_pbf(0.2, 1e4, 4.0, 0.4)
    wv = WriteVerify(5, verify_margin_ln=0.1, misread_prob=0.05)
    probs = wv.attempt_probs(cell, "set")
    n_units = 4000
    _, pulses = simulate_cells(cell, wv, "set", n_units * unit_cells, seed=11)
    rounds = pulses.reshape(n_units, unit_cells).max(axis=1)
    pmf = wv.rounds_pmf(probs.p_wrong, unit_cells, probs.q_verify)
    observed = np.bincount(rounds - 1, minlength=wv.max_pulses) / n_units
    se = np.sqrt(pmf * (1 - pmf) / n_units)
    assert np.all(np.abs(observed - pmf) < 4 * se + 2e-3)
    mean = wv.expected_rounds(probs.p_wrong, unit_cells, probs.q_verify)
    assert abs(rounds.mean() - mean) < 4 * rounds.std() / math.sqrt(n_units) + 1e-9


def test_reference_worked_values_of_expected_rounds():
    # sources §4.2, N = 8: q = 0.1 -> E[P] 1.111, E[R] 2.54 at n = 64; q = 0.3 -> 4.43
    wv = WriteVerify(7)
    assert wv.expected_pulses(0.1) == pytest.approx(1.111, abs=1e-3)
    assert wv.expected_rounds(0.1, 64) == pytest.approx(2.54, abs=0.01)
    assert wv.expected_rounds(0.3, 64) == pytest.approx(4.43, abs=0.01)
    assert wv.residual_error(0.1) == pytest.approx(1e-8, rel=1e-9)


def test_margin_zero_and_no_misread_give_p_to_the_power_of_pulses():
    wv = WriteVerify(3)
    assert wv.residual_error(0.04) == pytest.approx(0.04**4)


def test_misread_sets_a_floor_on_the_residual_error():
    p, eps = 0.05, 0.02
    floor = p * eps / (1 - p * (1 - eps))
    deep = WriteVerify(60, misread_prob=eps).residual_error(p)
    assert deep == pytest.approx(floor, rel=1e-9)
    assert WriteVerify(3, misread_prob=eps).residual_error(p) > floor


def test_single_pulse_has_no_verify_cost_and_one_round():
    wv = WriteVerify(0)
    assert wv.residual_error(0.1) == 0.1
    assert list(wv.rounds_pmf(0.1, 64)) == [1.0]
    assert wv.unit_energy_pj(0.1, 64, 0.6, 0.063) == pytest.approx(64 * 0.6)
    assert wv.unit_latency_ns(0.1, 64, 10.0, 10.0) == pytest.approx(10.0)


def test_mixed_unit_combines_set_and_reset_cells():
    cell = RRAMCell(LognormalState(1e4, 0.3), LognormalState(5e4, 0.6), threshold_ohm=2e4)
    wv = WriteVerify(4)
    a_set = wv.retry_prob(cell.p10)
    a_reset = wv.retry_prob(cell.p01)
    assert a_set != pytest.approx(a_reset)
    mixed = wv.rounds_pmf_mixed(cell, 10, 6)
    r = np.arange(1, 6)
    cdf = (1 - a_set**r) ** 10 * (1 - a_reset**r) ** 6
    cdf[-1] = 1.0
    assert np.allclose(mixed, np.diff(cdf, prepend=0.0))
    assert np.allclose(wv.rounds_pmf_mixed(cell, 10, 0), wv.rounds_pmf(cell.p10, 10))
    assert wv.residual_p01_p10(cell) == pytest.approx((cell.p01**5, cell.p10**5))


@settings(max_examples=80, deadline=None)
@given(
    p=st.floats(0.0, 0.5),
    extra=st.floats(0.0, 0.4),
    eps=st.floats(0.0, 0.5),
    k=st.integers(0, 12),
    n=st.integers(1, 128),
)
def test_more_rounds_never_raise_error_nor_lower_energy_and_wider_units_never_need_fewer(
    p, extra, eps, k, n
):
    q = min(1.0, p + extra)
    fewer, more = WriteVerify(k, misread_prob=eps), WriteVerify(k + 1, misread_prob=eps)
    assert more.residual_error(p, q) <= fewer.residual_error(p, q) * (1 + 1e-12) + 1e-300
    assert more.unit_energy_pj(p, n, 0.6, 0.063, q) >= fewer.unit_energy_pj(p, n, 0.6, 0.063, q) * (
        1 - 1e-12
    )
    assert more.expected_rounds(p, n, q) >= fewer.expected_rounds(p, n, q) - 1e-12
    wider_cdf = fewer.rounds_cdf([(fewer.retry_prob(p, q), n + 1)])
    narrow_cdf = fewer.rounds_cdf([(fewer.retry_prob(p, q), n)])
    assert np.all(wider_cdf <= narrow_cdf + 1e-12)  # stochastically more rounds
    assert fewer.expected_rounds(p, n + 1, q) >= fewer.expected_rounds(p, n, q) - 1e-12
    pmf = fewer.rounds_pmf(p, n, q)
    assert pmf.sum() == pytest.approx(1.0) and np.all(pmf >= -1e-15)


@pytest.mark.parametrize(
    ("make", "key"),
    [
        (lambda: WriteVerify(-1), "max_extra_rounds"),
        (lambda: WriteVerify(1.5), "max_extra_rounds"),
        (lambda: WriteVerify(2, misread_prob=1.5), "misread_prob"),
        (lambda: WriteVerify(2, verify_margin_ln=-0.1), "verify_margin_ln"),
        (lambda: WriteVerify(2).residual_error(-0.1), "'p'"),
        (lambda: WriteVerify(2).expected_pulses(1.2), "'p'"),
        (lambda: WriteVerify(2).residual_error(0.2, 0.1), "q_verify"),
        (lambda: WriteVerify(2).rounds_pmf(0.1, -3), "unit_cells"),
    ],
)
def test_bad_write_verify_input_names_the_parameter(make, key):
    with pytest.raises((ValueError, TypeError), match=key):
        make()


def test_a_programming_condition_works_like_its_cell():
    from memsim.device import load_condition

    cond = load_condition("reduced")
    wv = WriteVerify(2, verify_margin_ln=0.1)
    assert wv.residual_p01_p10(cond) == wv.residual_p01_p10(cond.cell)
    assert np.array_equal(wv.rounds_pmf_mixed(cond, 5, 3), wv.rounds_pmf_mixed(cond.cell, 5, 3))
    with pytest.raises(TypeError, match="RRAMCell"):
        wv.attempt_probs(0.1, "set")
    with pytest.raises(ValueError, match="direction"):
        wv.attempt_probs(cond, "sideways")
