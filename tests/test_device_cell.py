"""RRAM cell statistics: closed forms against numerical integration and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize

from memsim.device import LognormalState, RRAMCell, cell_for_pbf, ratio_for_pbf, sigma_sum_for_pbf


def make_cell(r_l=1e4, s_l=0.15, ratio=10.0, s_h=0.33, threshold=None) -> RRAMCell:
    return RRAMCell(LognormalState(r_l, s_l), LognormalState(r_l * ratio, s_h), threshold)


CELLS = {
    "nominal_like": make_cell(),  # p_bf ~ 8e-7
    "low_energy_like": make_cell(2e4, 0.35, 5.0, 0.57),  # p_bf ~ 4e-2
    "wide": make_cell(1e4, 0.3, 10.0, 1.0),  # p_bf ~ 4e-2, asymmetric sigmas
}


@pytest.mark.parametrize("name", list(CELLS))
def test_p_bf_closed_form_matches_numerical_integration_of_both_densities(name):
    cell = CELLS[name]
    r_th = cell.symmetric_threshold_ohm
    upper = cell.lrs.median_ohm * math.exp(15 * cell.lrs.sigma_ln)
    p10, _ = integrate.quad(cell.lrs.pdf, r_th, upper, epsabs=0, epsrel=1e-10, limit=200)
    lower = cell.hrs.median_ohm * math.exp(-15 * cell.hrs.sigma_ln)
    p01, _ = integrate.quad(cell.hrs.pdf, lower, r_th, epsabs=0, epsrel=1e-10, limit=200)
    assert p10 == pytest.approx(cell.p_bf, rel=1e-6)
    assert p01 == pytest.approx(cell.p_bf, rel=1e-6)


@pytest.mark.parametrize("name", ["low_energy_like", "wide"])
def test_p_bf_closed_form_matches_monte_carlo_within_standard_error(name):
    cell = CELLS[name]
    n = 400_000
    rng = np.random.default_rng(1234)
    r_th = cell.read_threshold_ohm
    for est in (
        np.mean(cell.lrs.sample(n, rng) >= r_th),  # stored 1 read as 0
        np.mean(cell.hrs.sample(n, rng) < r_th),  # stored 0 read as 1
    ):
        se = math.sqrt(cell.p_bf * (1 - cell.p_bf) / n)
        assert abs(est - cell.p_bf) < 4 * se


@settings(max_examples=60, deadline=None)
@given(
    s_l=st.floats(0.02, 2.0),
    s_h=st.floats(0.02, 2.0),
    ratio=st.floats(1.01, 1e3),
)
def test_symmetric_threshold_equalises_both_errors(s_l, s_h, ratio):
    cell = make_cell(1e4, s_l, ratio, s_h)
    assert cell.p01 == pytest.approx(cell.p10, rel=1e-9, abs=1e-300)
    assert cell.p01 == pytest.approx(cell.p_bf, rel=1e-9, abs=1e-300)


def test_symmetric_threshold_equals_root_found_numerically():
    cell = CELLS["wide"]
    log_root = optimize.brentq(
        lambda x: cell.lrs.sf(math.exp(x)) - cell.hrs.cdf(math.exp(x)),
        cell.lrs.mu_ln,
        cell.hrs.mu_ln,
        xtol=1e-14,
    )
    assert math.exp(log_root) == pytest.approx(cell.symmetric_threshold_ohm, rel=1e-9)


def test_explicit_threshold_gives_asymmetric_errors_that_trade_off():
    cell = CELLS["wide"]
    lower = cell.with_threshold(cell.symmetric_threshold_ohm * 0.8)
    assert lower.p10 > cell.p10 and lower.p01 < cell.p01
    assert lower.p_bf == pytest.approx(0.5 * (lower.p01 + lower.p10))
    assert lower.p01 == pytest.approx(float(cell.hrs.cdf(lower.threshold_ohm)))


@settings(max_examples=60, deadline=None)
@given(
    s_l=st.floats(0.05, 1.0),
    s_h=st.floats(0.05, 1.0),
    ratio=st.floats(1.5, 200.0),
    grow_l=st.floats(0.0, 0.5),
    grow_h=st.floats(0.0, 0.5),
    shrink=st.floats(1.0, 1.4),
)
def test_more_overlap_never_lowers_p_bf(s_l, s_h, ratio, grow_l, grow_h, shrink):
    base = make_cell(1e4, s_l, ratio, s_h)
    wider = make_cell(1e4, s_l + grow_l, ratio / shrink, s_h + grow_h)
    assert wider.p_bf >= base.p_bf * (1 - 1e-12)
    assert wider.p_2t2r() >= base.p_2t2r() * (1 - 1e-12)


@pytest.mark.parametrize("p_bf", [1e-9, 1e-6, 1e-4, 4e-2, 0.3])
@pytest.mark.parametrize("split", [0.2, 0.5, 0.8])
def test_inverse_round_trips(p_bf, split):
    cell = cell_for_pbf(p_bf, 1e4, 10.0, split)
    assert cell.p_bf == pytest.approx(p_bf, rel=1e-9)
    assert cell.lrs.sigma_ln / (cell.lrs.sigma_ln + cell.hrs.sigma_ln) == pytest.approx(split)
    ratio = ratio_for_pbf(p_bf, cell.lrs.sigma_ln, cell.hrs.sigma_ln)
    assert ratio == pytest.approx(10.0, rel=1e-9)


def test_sigma_sum_matches_reference_z_values():
    # z = Φ⁻¹(1 − p): 4.753 at 1e-6, 1.751 at 4e-2 (sources §3.1)
    assert sigma_sum_for_pbf(1e-6, 10.0) == pytest.approx(math.log(10) / 4.753, rel=1e-3)
    assert sigma_sum_for_pbf(4e-2, 5.0) == pytest.approx(math.log(5) / 1.751, rel=1e-3)


def test_reference_worked_values_of_1t1r_and_2t2r():
    # sources §3.2: ratio 10, σ 0.25 / 0.7 -> 7.7e-3 (1T1R), 9.8e-4 (2T2R)
    cell = make_cell(1e4, 0.25, 10.0, 0.7)
    assert cell.p_bf == pytest.approx(7.7e-3, rel=0.02)
    assert cell.p_2t2r() == pytest.approx(9.8e-4, rel=0.02)


@pytest.mark.parametrize("sigma_sa", [0.0, 0.4])
def test_2t2r_error_matches_monte_carlo_of_device_pairs(sigma_sa):
    cell = CELLS["wide"]
    n = 400_000
    rng = np.random.default_rng(99)
    ln_l = np.log(cell.lrs.sample(n, rng))
    ln_h = np.log(cell.hrs.sample(n, rng))
    est = (
        np.mean(ln_l - ln_h + rng.normal(0.0, sigma_sa, n) > 0)
        if sigma_sa
        else np.mean(ln_l > ln_h)
    )
    p = cell.p_2t2r(sigma_sa)
    assert abs(est - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert p < cell.p_bf


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"median_ohm": 0.0, "sigma_ln": 0.1}, "median_ohm"),
        ({"median_ohm": -5.0, "sigma_ln": 0.1}, "median_ohm"),
        ({"median_ohm": 1e4, "sigma_ln": 0.0}, "sigma_ln"),
        ({"median_ohm": 1e4, "sigma_ln": -0.2}, "sigma_ln"),
        ({"median_ohm": math.inf, "sigma_ln": 0.2}, "median_ohm"),
    ],
)
def test_non_positive_resistance_or_sigma_is_rejected_by_name(kwargs, key):
    with pytest.raises(ValueError, match=key):
        LognormalState(**kwargs)


def test_hrs_median_must_exceed_lrs_median():
    with pytest.raises(ValueError, match="hrs.median_ohm"):
        RRAMCell(LognormalState(1e4, 0.1), LognormalState(1e4, 0.1))


@pytest.mark.parametrize("threshold", [-1.0, 0.0, 5e3, 1e4, 1e5, 2e5, math.inf, math.nan])
def test_threshold_outside_the_medians_is_rejected(threshold):
    with pytest.raises(ValueError, match="threshold_ohm"):
        make_cell(threshold=threshold)


@pytest.mark.parametrize("p", [-0.1, 0.0, 0.5, 0.7, 1.5, math.nan])
def test_calibration_rejects_probabilities_outside_the_open_half_interval(p):
    with pytest.raises(ValueError, match="p_bf"):
        sigma_sum_for_pbf(p, 10.0)


def test_calibration_rejects_ratio_not_above_one():
    with pytest.raises(ValueError, match="ratio"):
        sigma_sum_for_pbf(1e-3, 1.0)
