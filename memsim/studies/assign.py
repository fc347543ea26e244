"""Choosing a policy per layer: an additive model proposes, real evaluations decide.

Pure arithmetic (no torch, no SimPy): the mixed-policy search (:mod:`memsim.studies.search`)
gives it, for ``L`` layers and ``C`` candidate policies,

* ``degradation[l, c]``: accuracy lost when only layer ``l`` is stored with candidate ``c``
  (every other layer ideal), measured at the operating point;
* ``cost[l, c]``: the layer's share of the chosen cost (exact for energy, which adds up over
  writes; a first-order estimate for latency and products, see :mod:`memsim.studies.search`);
* ``verify(assignment) -> (accuracy, cost)``: a real noisy evaluation of the whole network and
  the memory model's cost of that assignment.

Model: per-layer degradations add up. :func:`propose` solves the 0/1 program

    minimise Σ cost[l, a_l]  subject to  Σ degradation[l, a_l] ≤ budget,
    cost below the best verified one, and no assignment verified before,

with :func:`scipy.optimize.milp`. :func:`search` verifies every uniform assignment first (the
best uniform policy is the bar to beat), then walks the budget scales from tight to loose:
at each scale it verifies the model's cheapest proposal, keeps it when it meets the target
and is cheaper than the best so far, excludes it either way, and re-solves until the model
has nothing cheaper to offer or ``max_verifications`` is spent. The result never costs more
than the best uniform policy that meets the target, and with an infinite scale the walk
verifies assignments in order of cost until one passes (a brute force, pruned by the best).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

Assignment = tuple[int, ...]


@dataclass(frozen=True)
class Verified:
    """One verified assignment: its accuracy (mean over repeats) and true cost."""

    assignment: Assignment
    accuracy: float
    cost: float
    source: str  # "uniform" or "scale=<s>"
    meets_target: bool


@dataclass
class SearchResult:
    """Every verification in order, and the best one that meets the target (or None)."""

    verified: list[Verified] = field(default_factory=list)
    best: Verified | None = None
    best_uniform: Verified | None = None

    def pareto(self) -> list[Verified]:
        """The verified assignments no other one beats on both cost and accuracy."""
        return pareto_front(self.verified)


def pareto_front(points: Sequence[Verified]) -> list[Verified]:
    """Non-dominated points (lower cost, higher accuracy), by increasing cost."""
    front: list[Verified] = []
    for v in sorted(points, key=lambda v: (v.cost, -v.accuracy)):
        if not front or v.accuracy > front[-1].accuracy:
            front.append(v)
    return front


def predicted(matrix: np.ndarray, assignment: Assignment) -> float:
    """Σ_l matrix[l, a_l]."""
    return float(sum(matrix[layer, c] for layer, c in enumerate(assignment)))


def propose(
    degradation: np.ndarray,
    cost: np.ndarray,
    budget: float,
    *,
    exclude: Sequence[Assignment] = (),
    cost_below: float | None = None,
) -> Assignment | None:
    """The cheapest assignment whose predicted degradation is at most ``budget``.

    Parameters
    ----------
    degradation, cost : ndarray, shape (L, C)
        Per-layer, per-candidate terms (``inf`` or NaN degradation: candidate not allowed).
    budget : float
        Largest total predicted degradation (``inf``: no accuracy constraint).
    exclude : sequence of assignments
        Assignments not to propose again (each adds a no-good cut).
    cost_below : float, optional
        Predicted cost must be below this (by a relative 1e-6, above the solver's tolerance).

    Returns
    -------
    tuple of int or None
        One candidate index per layer; None when no assignment satisfies the constraints.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    d = np.asarray(degradation, dtype=float)
    c = np.asarray(cost, dtype=float)
    if d.shape != c.shape or d.ndim != 2:
        raise ValueError(f"degradation and cost must be (L, C) arrays. Got {d.shape}, {c.shape}.")
    n_layers, n_cand = d.shape
    allowed = np.isfinite(d) & np.isfinite(c)
    upper = allowed.astype(float).ravel()
    rows, lo, hi = [], [], []
    for layer in range(n_layers):  # exactly one candidate per layer
        row = np.zeros(d.size)
        row[layer * n_cand : (layer + 1) * n_cand] = 1.0
        rows.append(row)
        lo.append(1.0)
        hi.append(1.0)
    if math.isfinite(budget):
        rows.append(np.where(allowed, d, 0.0).ravel())
        lo.append(-np.inf)
        hi.append(budget + 1e-12)
    if cost_below is not None:
        rows.append(np.where(allowed, c, 0.0).ravel())
        lo.append(-np.inf)
        hi.append(cost_below - 1e-6 * max(abs(cost_below), 1.0))
    for a in exclude:  # no-good cut: at least one layer differs from a
        row = np.zeros(d.size)
        for layer, k in enumerate(a):
            row[layer * n_cand + k] = 1.0
        rows.append(row)
        lo.append(-np.inf)
        hi.append(n_layers - 1.0)
    res = milp(
        np.where(allowed, c, 0.0).ravel(),
        constraints=LinearConstraint(np.array(rows), lo, hi),
        integrality=np.ones(d.size),
        bounds=Bounds(0.0, upper),
    )
    if res.status != 0 or res.x is None:
        return None
    x = np.round(res.x).reshape(n_layers, n_cand)
    a = tuple(int(np.argmax(row)) for row in x)
    if cost_below is not None and predicted(c, a) >= cost_below:
        return None  # within the solver's tolerance of the bound: nothing strictly cheaper
    return a


def search(
    degradation: np.ndarray,
    cost: np.ndarray,
    *,
    target: float,
    clean_accuracy: float,
    verify: Callable[[Assignment], tuple[float, float]],
    scales: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    max_verifications: int = 40,
) -> SearchResult:
    """The cheapest verified assignment with accuracy at least ``target`` (module notes).

    Parameters
    ----------
    degradation, cost : ndarray, shape (L, C)
        The additive model (negative degradations are read as 0).
    target : float
        Accuracy the verified assignment must reach.
    clean_accuracy : float
        Noise-free accuracy; the budget is ``scale × (clean_accuracy − target)``.
    verify : callable(assignment) -> (accuracy, cost)
        A real evaluation; called once per distinct assignment.
    scales : sequence of float
        Budget multipliers, walked in the given order (``inf`` allowed).
    max_verifications : int
        Cap on verifications besides the uniform ones.
    """
    d = np.maximum(np.asarray(degradation, dtype=float), 0.0)
    c = np.asarray(cost, dtype=float)
    n_layers, n_cand = d.shape
    budget = max(clean_accuracy - target, 0.0)
    result = SearchResult()
    seen: set[Assignment] = set()

    def check(a: Assignment, source: str) -> Verified:
        accuracy, true_cost = verify(a)
        v = Verified(a, float(accuracy), float(true_cost), source, bool(accuracy >= target))
        seen.add(a)
        result.verified.append(v)
        if v.meets_target and (result.best is None or v.cost < result.best.cost):
            result.best = v
        return v

    for k in range(n_cand):
        if np.all(np.isfinite(d[:, k])):
            check((k,) * n_layers, "uniform")
    uniform = [v for v in result.verified if v.meets_target]
    result.best_uniform = min(uniform, key=lambda v: v.cost) if uniform else None
    spent = 0
    for scale in scales:
        while spent < max_verifications:
            a = propose(
                d,
                c,
                scale * budget,
                exclude=sorted(seen),
                cost_below=None if result.best is None else predicted(c, result.best.assignment),
            )
            if a is None:
                break
            check(a, f"scale={scale:g}")
            spent += 1
    return result
