"""Exact Binomial draws inside Numba kernels, on a xoshiro256** stream.

NumPy's algorithms (``random_binomial_inversion`` below a mean of 30, BTPE above) ported to
Numba, so that a kernel draws its own counts from its own stream: the block sampler's per-block
candidate counts (:mod:`memsim.noise.blocks`) and the coupled sampler's nested level counts
(:mod:`memsim.noise.ladder`). ``tests/test_noise_coupled.py`` checks every branch against the
Binomial law.
"""

from __future__ import annotations

import math

import numpy as np

from memsim.jit import jit
from memsim.noise.kernels import _INV_2_53, _next  # inlined: Numba's cache only sees this file


@jit(inline="always")
def _uniform(s0, s1, s2, s3):
    """A uniform double in [0, 1) (53 bits) and the new state."""
    r, s0, s1, s2, s3 = _next(s0, s1, s2, s3)
    return (r >> np.uint64(11)) * _INV_2_53, s0, s1, s2, s3


@jit
def _inversion(n, p, qn, s0, s1, s2, s3):
    """Binomial(n, p) by inversion (NumPy's ``random_binomial_inversion``), ``p <= 0.5``.

    ``qn`` is ``(1 - p)**n`` (callers drawing many counts of one ``n`` compute it once).
    """
    q = 1.0 - p
    mean = n * p
    bound = np.int64(min(float(n), mean + 10.0 * math.sqrt(mean * q + 1.0)))
    x = np.int64(0)
    px = qn
    u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
    while u > px:
        x += 1
        if x > bound:
            x = 0
            px = qn
            u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        else:
            u -= px
            px = ((n - x + 1) * p * px) / (x * q)
    return x, s0, s1, s2, s3


@jit(inline="always")
def _stirling(v):
    v2 = v * v
    return (13680.0 - (462.0 - (132.0 - (99.0 - 140.0 / v2) / v2) / v2) / v2) / v / 166320.0


@jit
def _btpe(n, p, s0, s1, s2, s3):
    """Binomial(n, p) by BTPE (Kachitvichyanukul & Schmeiser 1988; NumPy's port), ``p <= 0.5``."""
    r = p
    q = 1.0 - r
    fm = n * r + r
    m = np.int64(math.floor(fm))
    p1 = math.floor(2.195 * math.sqrt(n * r * q) - 4.6 * q) + 0.5
    xm = m + 0.5
    xl = xm - p1
    xr = xm + p1
    c = 0.134 + 20.5 / (15.3 + m)
    a = (fm - xl) / (fm - xl * r)
    laml = a * (1.0 + a / 2.0)
    a = (xr - fm) / (xr * q)
    lamr = a * (1.0 + a / 2.0)
    p2 = p1 * (1.0 + 2.0 * c)
    p3 = p2 + c / laml
    p4 = p3 + c / lamr
    nrq = n * r * q
    y = np.int64(0)
    while True:
        u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        u *= p4
        v, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        if u <= p1:  # triangular centre: accepted at once
            y = np.int64(math.floor(xm - p1 * v + u))
            break
        if u <= p2:  # parallelograms
            x = xl + (u - p1) / c
            v = v * c + 1.0 - abs(m - x + 0.5) / p1
            if v > 1.0:
                continue
            y = np.int64(math.floor(x))
        elif u <= p3:  # left exponential tail
            if v == 0.0:
                continue
            fy = math.floor(xl + math.log(v) / laml)
            if fy < 0:
                continue
            y = np.int64(fy)
            v = v * (u - p2) * laml
        else:  # right exponential tail
            if v == 0.0:
                continue
            fy = math.floor(xr - math.log(v) / lamr)
            if fy > n:
                continue
            y = np.int64(fy)
            v = v * (u - p3) * lamr
        k = abs(y - m)
        if not (k > 20 and k < nrq / 2.0 - 1):
            # Explicit ratio of probabilities from the mode.
            s = r / q
            aa = s * (n + 1)
            f = 1.0
            if m < y:
                for i in range(m + 1, y + 1):
                    f *= aa / i - s
            elif m > y:
                for i in range(y + 1, m + 1):
                    f /= aa / i - s
            if v > f:
                continue
            break
        # Squeeze with a normal approximation, then the Stirling bound.
        rho = (k / nrq) * ((k * (k / 3.0 + 0.625) + 0.16666666666666666) / nrq + 0.5)
        t = -k * k / (2 * nrq)
        big_a = math.log(v) if v > 0.0 else -math.inf
        if big_a < t - rho:
            break
        if big_a > t + rho:
            continue
        x1 = float(y + 1)
        f1 = float(m + 1)
        z = float(n + 1 - m)
        w = float(n - y + 1)
        bound = (
            xm * math.log(f1 / x1)
            + (n - m + 0.5) * math.log(z / w)
            + (y - m) * math.log(w * r / (x1 * q))
            + _stirling(f1)
            + _stirling(z)
            + _stirling(x1)
            + _stirling(w)
        )
        if big_a > bound:
            continue
        break
    return y, s0, s1, s2, s3


@jit
def _binomial(n, p, s0, s1, s2, s3):
    """Binomial(n, p) as NumPy draws it (inversion for a mean <= 30, else BTPE)."""
    if n <= 0 or p <= 0.0:
        return np.int64(0), s0, s1, s2, s3
    if p >= 1.0:
        return np.int64(n), s0, s1, s2, s3
    low = min(p, 1.0 - p)
    if low * n <= 30.0:
        qn = math.exp(n * math.log1p(-low))
        x, s0, s1, s2, s3 = _inversion(n, low, qn, s0, s1, s2, s3)
    else:
        x, s0, s1, s2, s3 = _btpe(n, low, s0, s1, s2, s3)
    return (np.int64(n) - x if p > 0.5 else x), s0, s1, s2, s3


@jit
def binomials(n, p, size, state):
    """``size`` Binomial(``n``, ``p``) draws from a xoshiro256** ``state`` (advanced); for tests."""
    out = np.empty(size, dtype=np.int64)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for i in range(size):
        out[i], s0, s1, s2, s3 = _binomial(n, p, s0, s1, s2, s3)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return out


#: Means below this are drawn by multiplication (:func:`_poisson_mult`), as NumPy does.
POISSON_MULT_BELOW = 10.0


@jit(inline="always")
def _poisson_mult(enlam, s0, s1, s2, s3):
    """Poisson by multiplying uniforms until the product falls to ``enlam = exp(-lam)``
    (``lam < POISSON_MULT_BELOW``); callers drawing many counts of one mean compute it once."""
    x = np.int64(0)
    prod = 1.0
    while True:
        u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        prod *= u
        if prod > enlam:
            x += 1
        else:
            return x, s0, s1, s2, s3


@jit
def _poisson(lam, s0, s1, s2, s3):
    """Poisson(``lam``) as NumPy draws it: multiplication below a mean of 10, else PTRS
    (Hörmann's transformed rejection with squeeze, ``random_poisson_ptrs``)."""
    if lam <= 0.0:
        return np.int64(0), s0, s1, s2, s3
    if lam < POISSON_MULT_BELOW:
        return _poisson_mult(math.exp(-lam), s0, s1, s2, s3)
    return _ptrs(lam, _ptrs_setup(lam), s0, s1, s2, s3)


@jit(inline="always")
def _poisson_constants(usual):
    """What :func:`_poisson_usual` needs of a mean ``usual`` that many draws share: ``(usual,
    exp(-usual), PTRS's constants)``, each only where its algorithm draws (zeros elsewhere)."""
    if usual < POISSON_MULT_BELOW:
        return usual, math.exp(-usual), (0.0, 0.0, 0.0, 0.0, 0.0)
    return usual, 0.0, _ptrs_setup(usual)


@jit(inline="always")
def _poisson_usual(lam, constants, s0, s1, s2, s3):
    """Poisson(``lam``) as :func:`_poisson` draws it, for a ``lam`` that is mostly the mean of
    ``constants`` (:func:`_poisson_constants`): then without its ``exp`` or PTRS set-up."""
    if lam != constants[0]:
        return _poisson(lam, s0, s1, s2, s3)
    return _poisson_of(constants, s0, s1, s2, s3)


@jit(inline="always")
def _poisson_of(constants, s0, s1, s2, s3):
    """Poisson of the mean of ``constants`` (:func:`_poisson_constants`) as :func:`_poisson`
    draws it."""
    usual, enlam, setup = constants
    if usual <= 0.0:
        return np.int64(0), s0, s1, s2, s3
    if usual < POISSON_MULT_BELOW:
        return _poisson_mult(enlam, s0, s1, s2, s3)
    return _ptrs(usual, setup, s0, s1, s2, s3)


@jit(inline="always")
def _ptrs_setup(lam):
    """PTRS's constants of a mean ``lam >= POISSON_MULT_BELOW``: ``(log lam, a, b, log(1 /
    alpha), v_r)``; callers drawing many counts of one mean compute them once."""
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    return loglam, a, b, math.log(invalpha), vr


@jit(inline="always")
def _ptrs(lam, setup, s0, s1, s2, s3):
    """Poisson(``lam``) by PTRS with the constants of :func:`_ptrs_setup` (``random_poisson_ptrs``)."""
    loglam, a, b, loginvalpha, vr = setup
    while True:
        u, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        u -= 0.5
        v, s0, s1, s2, s3 = _uniform(s0, s1, s2, s3)
        us = 0.5 - abs(u)
        k = np.int64(math.floor((2.0 * a / us + b) * u + lam + 0.43)) if us > 0.0 else -1
        if us >= 0.07 and v <= vr:
            return k, s0, s1, s2, s3
        if k < 0 or (us < 0.013 and v > us):
            continue
        if v > 0.0 and (math.log(v) + loginvalpha - math.log(a / (us * us) + b)) <= (
            -lam + k * loglam - math.lgamma(k + 1.0)
        ):
            return k, s0, s1, s2, s3


@jit
def poissons(lam, size, state):
    """``size`` Poisson(``lam``) draws from a xoshiro256** ``state`` (advanced); for tests."""
    out = np.empty(size, dtype=np.int64)
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    for i in range(size):
        out[i], s0, s1, s2, s3 = _poisson(lam, s0, s1, s2, s3)
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return out
