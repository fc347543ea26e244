"""The logistic fit recovers known parameters, and says so when it cannot fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memsim.fit import (
    OPEN_CI_NOTE,
    fit_curve,
    fit_points,
    logistic,
    median_interval,
    p_keep,
    shared_images_interval,
    shared_images_se,
)

GRID = np.logspace(-8, -1, 22)


def synthetic(mu_log10: float, sigma: float, *, repeats: int, noise: float, seed: int):
    """Points drawn from a known logistic in log10 p with Gaussian noise per point."""
    rng = np.random.default_rng(seed)
    p = np.repeat(GRID, repeats)
    rep = np.tile(np.arange(repeats), GRID.size)
    acc = logistic(np.log10(p), mu_log10, sigma, 0.95, 0.1) + rng.normal(0, noise, p.size)
    return p, acc, rep


def test_fit_recovers_mu_and_sigma_from_known_logistic():
    p, acc, rep = synthetic(-4.3, 0.25, repeats=5, noise=0.01, seed=1)
    fit = fit_points(p, acc, rep, a_max=0.95, num_classes=10, n_boot=100, seed=0)
    assert fit.ok and fit.scale == "log10p"
    assert math.log10(fit.mu) == pytest.approx(-4.3, abs=0.05)
    assert fit.sigma == pytest.approx(0.25, rel=0.2)
    assert fit.r2 > 0.99
    assert fit.mu_ci_low <= fit.mu <= fit.mu_ci_high
    assert 10**-4.3 > fit.mu_ci_low and 10**-4.3 < fit.mu_ci_high


def test_linear_p_fit_recovers_mu():
    grid = np.linspace(1e-3, 2e-2, 20)
    acc = logistic(grid, 8e-3, 1e-3, 0.9, 0.1)
    fit = fit_curve(grid, acc, a_max=0.9, a_min=0.1, scale="p")
    assert fit.ok and fit.scale == "p"
    assert fit.mu == pytest.approx(8e-3, rel=1e-3)
    assert fit.sigma == pytest.approx(1e-3, rel=1e-3)


def test_p99_keeps_99_percent_of_a_max():
    mu_x, sigma = -3.0, 0.2
    p99 = p_keep(mu_x, sigma, 0.9, 0.1, "log10p")
    assert logistic(math.log10(p99), mu_x, sigma, 0.9, 0.1) == pytest.approx(0.99 * 0.9)
    assert p99 < 10**mu_x


def test_no_drop_in_range_is_reported_not_invented():
    acc = np.full(GRID.size, 0.97)
    fit = fit_curve(GRID, acc, a_max=0.97, a_min=0.1)
    assert fit.status == "above_range"
    assert math.isnan(fit.mu) and math.isnan(fit.sigma)
    assert fit.note == "mu > 1e-01"


def test_dropped_before_range_is_reported():
    fit = fit_curve(GRID, np.full(GRID.size, 0.1), a_max=0.97, a_min=0.1)
    assert fit.status == "below_range" and fit.note == "mu < 1e-08"


def test_chance_level_model_has_no_signal():
    fit = fit_curve(GRID, np.full(GRID.size, 0.1), a_max=0.11, a_min=0.1)
    assert fit.status == "no_signal" and math.isnan(fit.mu)


def test_bootstrap_ci_is_reproducible_and_narrows_with_repeats():
    few = synthetic(-5.0, 0.3, repeats=3, noise=0.05, seed=2)
    many = synthetic(-5.0, 0.3, repeats=30, noise=0.05, seed=2)
    a = fit_points(*few, a_max=0.95, num_classes=10, n_boot=100, seed=7)
    b = fit_points(*few, a_max=0.95, num_classes=10, n_boot=100, seed=7)
    c = fit_points(*many, a_max=0.95, num_classes=10, n_boot=100, seed=7)
    assert (a.mu_ci_low, a.mu_ci_high) == (b.mu_ci_low, b.mu_ci_high)
    width = math.log10(a.mu_ci_high / a.mu_ci_low)
    assert math.log10(c.mu_ci_high / c.mu_ci_low) < width


def test_bad_scale_is_an_error():
    with pytest.raises(ValueError, match="scale"):
        fit_curve(GRID, np.ones(GRID.size), a_max=1, a_min=0.1, scale="ln")


def test_median_interval_takes_the_order_statistics_of_its_coverage():
    values = np.arange(15.0)[::-1]  # any order
    low, high, coverage = median_interval(values)
    assert (low, high) == (3.0, 11.0)  # x_(4), x_(12)
    assert coverage == pytest.approx(1 - 2 * sum(math.comb(15, i) for i in range(4)) / 2**15)
    # Seven values: only the range reaches 95 %; five or fewer cannot.
    assert median_interval(np.arange(7.0))[:2] == (0.0, 6.0)
    low, high, coverage = median_interval(np.arange(5.0))
    assert math.isnan(low) and math.isnan(high) and coverage == pytest.approx(1 - 2 / 32)


def test_median_interval_covers_the_median_as_claimed():
    # A skewed law (lognormal, median 1): over 4,000 samples of 15 values the interval must
    # miss the median about 3.5 % of the time (its coverage is 96.5 %), not more, and must
    # not be so wide that it never misses.
    rng = np.random.default_rng(7)
    samples = rng.lognormal(0.0, 0.5, size=(4000, 15))
    misses = 0
    for row in samples:
        low, high, coverage = median_interval(row)
        misses += not (low <= 1.0 <= high)
    expected = (1 - coverage) * len(samples)
    assert abs(misses - expected) < 4 * math.sqrt(expected)


def test_median_interval_narrows_with_more_values():
    rng = np.random.default_rng(8)
    widths = {
        n: np.mean([np.subtract(*median_interval(rng.normal(size=n))[1::-1]) for _ in range(300)])
        for n in (7, 21, 61)
    }
    assert widths[7] > 1.3 * widths[21] > 1.3 * 1.3 * widths[61]


def test_shared_images_se_is_the_binomial_error_of_the_images():
    assert float(shared_images_se(0.9, 10_000)) == pytest.approx(math.sqrt(0.9 * 0.1 / 10_000))
    got = shared_images_se(np.array([0.5, 1.0, 0.25, 0.5]), np.array([100, 50, 400, 0]))
    assert got[:3] == pytest.approx([0.05, 0.0, math.sqrt(0.25 * 0.75 / 400)])
    assert math.isnan(got[3])  # no images: unknown, not 0
    # the shared-images interval is about ± 1.96 of it on many images
    low, high = shared_images_interval(0.9, 10_000)
    assert (high - low) / 2 == pytest.approx(1.96 * 0.003, rel=0.01)


def test_shared_images_se_bounds_a_mean_over_repeats_and_a_sum_bounds_a_difference():
    """Images drawn from a population (70 % always right, 20 % a coin flip under the noise,
    10 % always wrong), 4 noisy repeats on the same 200: the spread of the mean accuracy over
    fresh draws of images and noise stays under the bound, and is far above the pooled
    "n_images × repeats independent trials" error. For a policy right exactly where another
    is wrong (correlation -1) the difference's error reaches the sum of the two bounds, which
    a root sum of squares would understate by sqrt(2)."""
    rng = np.random.default_rng(11)
    n, repeats, trials = 200, 4, 2000
    q = rng.choice([1.0, 0.5, 0.0], p=[0.7, 0.2, 0.1], size=(trials, n))
    means = (rng.random((trials, n, repeats)) < q[..., None]).mean(axis=(1, 2))
    bound = float(shared_images_se(0.8, n))
    assert means.std() <= bound
    assert means.std() > 1.5 * math.sqrt(0.8 * 0.2 / (n * repeats))
    right = rng.random((trials, n)) < 0.8  # policy b; policy u is right exactly where b is not
    diff = right.mean(axis=1) - (~right).mean(axis=1)
    se_b, se_u = float(shared_images_se(0.8, n)), float(shared_images_se(0.2, n))
    assert diff.std() <= 1.05 * (se_b + se_u)
    assert diff.std() > 1.3 * math.hypot(se_b, se_u)


# --------------------------------------------------------------------------- honest intervals


def test_p99_data_interval_is_never_narrower_than_its_grid_bracket():
    """The audit's lab-4 case: the drop inside [1e-5, 1e-4] is one image of 64 in both repeats,
    so every bootstrap resample interpolates the same p99 and the interval was
    [4.27e-05, 4.27e-05]. The data place the crossing only between the two grid points."""
    p = np.array([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    curve = np.array([63, 63, 62, 40, 8, 6]) / 64
    reps = np.repeat([0, 1], p.size)
    fit = fit_points(np.tile(p, 2), np.tile(curve, 2), reps, a_max=63 / 64, num_classes=10)
    assert (fit.p99_bracket_low, fit.p99_bracket_high) == (1e-5, 1e-4)
    assert 1e-5 < fit.p99_data < 1e-4
    assert fit.p99_data_ci_low == 1e-5 and fit.p99_data_ci_high == 1e-4
    assert fit.p99_data_ci_open == ""


def test_a_p99_interval_open_below_the_range_says_so():
    """One repeat of five is already below 0.99·a_max at p_min: about a quarter of the
    resamples put p99 below the swept range, so the interval's low end is open, and named."""
    p = np.logspace(-6, -1, 11)
    acc = np.tile([0.95, 0.80, 0.6, 0.4, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], (5, 1))
    acc[4, 0] = 0.91
    reps = np.repeat(np.arange(5), p.size)
    fit = fit_points(np.tile(p, 5), acc.ravel(), reps, a_max=0.95, num_classes=10)
    assert fit.p_min == 1e-6 and fit.p_max == pytest.approx(0.1)
    assert fit.p99_data_ci_open == "low" and math.isnan(fit.p99_data_ci_low)
    assert fit.p99_data_ci_high >= fit.p99_bracket_high  # the finite side is kept (and widened)


def test_a_mu_interval_open_above_the_range_says_so():
    """Two repeats of five never drop: a third of the resamples have no midpoint in range, so
    μ's upper bound is open; the fit stays ok, and its note says which side and where."""
    drop = logistic(np.log10(GRID), -1.6, 0.2, 0.95, 0.1)
    acc = np.array([drop] * 3 + [np.full(GRID.size, 0.95)] * 2)
    reps = np.repeat(np.arange(5), GRID.size)
    fit = fit_points(np.tile(GRID, 5), acc.ravel(), reps, a_max=0.95, num_classes=10)
    assert fit.status == "ok" and fit.mu_ci_open == "high"
    assert math.isnan(fit.mu_ci_high) and fit.mu_ci_low < fit.mu
    assert fit.note.startswith(OPEN_CI_NOTE) and "upper bound > 1.0e-01" in fit.note
