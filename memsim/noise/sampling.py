"""Sparse Bernoulli sampling: the hit positions of independent trials, at a cost per hit.

Where this sits: the NumPy-side samplers of ``policies`` (SECDED codewords, ±1 binary
channels) draw which of ``n`` cells are candidates for a flip with :func:`bernoulli_positions`
and then thin the candidates by the stored bit. The engines of :mod:`memsim.noise` have their
own kernels (Numba, torch) for the same job on stored words.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bernoulli_positions"]


def bernoulli_positions(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """Sorted indices of an exact Bernoulli(p) process over ``n`` positions.

    The gaps between successive hits of independent Bernoulli trials are i.i.d. geometric, so
    cumulative sums of geometric draws give the hit positions exactly, at a cost proportional
    to the number of hits (not to ``n``).

    Parameters
    ----------
    rng : numpy Generator
        Source of the draws.
    n : int
        Number of positions.
    p : float
        Probability of a hit at each position.

    Returns
    -------
    ndarray of int64
        Sorted, distinct indices in ``[0, n)``.
    """
    if n <= 0 or p <= 0:
        return np.empty(0, dtype=np.int64)
    if p >= 1:
        return np.arange(n, dtype=np.int64)
    mean = n * p
    chunk = int(mean + 6.0 * np.sqrt(mean) + 16)
    parts = []
    last = -1
    while last < n - 1:  # one pass almost always; more only in the far tail
        gaps = rng.geometric(p, size=chunk)
        hits = last + np.cumsum(gaps, dtype=np.int64)
        parts.append(hits)
        last = int(hits[-1])
    hits = np.concatenate(parts)
    return hits[hits < n]
