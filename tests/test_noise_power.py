"""Statistical tests sized to catch specific, small biases in the noise engines' samplers.

Each test names the bias it is there to detect and shows, by its sample size against the
effect size, that it has the power to: the chi-square statistic's non-centrality under the
bias is far above the critical value at ``ALPHA``, while at fixed seeds the exact sampler
passes. Large samples come from the kernels' own compiled loops, so each test takes seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import binomial_counts_pvalue
from scipy import stats

from memsim.noise.binomial import binomials
from memsim.noise.kernels import seed_state

pytestmark = pytest.mark.statistical

ALPHA = 1e-6


@pytest.mark.parametrize("n,p", [(1000, 0.003), (60, 0.9)])
def test_binomial_inversion_keeps_its_upper_tail(n, p):
    """Inversion (mean <= 30) must restart only past NumPy's bound ``mean + 10 sd``.

    A bound at ``mean + 3 sd`` (9 draws and up at n = 1000, p = 0.003; 14 and up of the
    failures at n = 60, p = 0.9) silently cuts a tail of probability ``t`` = 0.0037 (0.0020)
    and renormalises. With 10^6 draws the chi-square's non-centrality is about
    ``N t (1 + t)`` = 3700 (2000), against a critical value near 60 (about 15 cells at
    ALPHA); the 20 000 draws of test_noise_coupled (~75 expected tail draws, spread over
    pooled cells) can miss it. The count of draws in the cut tail is checked on its own too.
    """
    size = 10**6
    draws = binomials(n, p, size, seed_state(n + 1))
    assert binomial_counts_pvalue(draws, n, p) > ALPHA
    low = min(p, 1 - p)
    tail_from = int(n * low + 3 * np.sqrt(n * low * (1 - low) + 1)) + 1  # a 3 sd bound's cut
    failures = draws if p < 0.5 else n - draws
    k = int((failures >= tail_from).sum())
    t = stats.binom.sf(tail_from - 1, n, low)
    assert stats.binom.ppf(ALPHA / 2, size, t) <= k <= stats.binom.isf(ALPHA / 2, size, t)
