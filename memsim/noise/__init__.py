"""Bit-flip noise: how written bits go wrong (docs/design.md §3).

Data flow: a policy turns a device error rate into per-bit ``p01``/``p10`` and a
:class:`~memsim.noise.channel.Channel`; noisy inference calls the channel at every write point,
which calls :func:`flip_` on the stored tensor.

* :func:`flip` / :func:`flip_` flip every noisy stored bit independently: a 0 becomes 1 with
  ``p01``, a 1 becomes 0 with ``p10`` (``y = (x | f1) ^ (x & f2)``), on the same-width integer
  view of the storage, positions counted MSB-first. Engines (``memsim.noise.engines``):
  ``reference`` (dense float64 Bernoulli masks, the oracle), ``numba`` (CPU, cost ∝ flips:
  exact Binomial counts per cache-sized block and distinct positions inside it, geometric
  skipping at very low p, bit-sliced dense sampling at high p; thinning by the stored bit),
  ``torch`` (sparse, exact, CUDA or CPU), ``auto`` (numba on CPU, torch elsewhere). Every call without a seed draws fresh flips;
  nothing caches a pattern.

Coupled sweeps (common random numbers)
--------------------------------------
``ladder=[P_1, P_2, ...]`` is a non-decreasing list of settings (a scalar p, or a ``(p01,
p10)`` pair of scalars or per-position vectors). A call whose ``(p01, p10)`` is entry ``k`` flips
each bit (judged by its *original* stored value) with exactly ``P_k``, and with the same seed
the flips at a smaller entry are a subset of those at a larger one. Equivalently, the entry is
the union of independent layers ``j = 1..k`` with ``r_j = (P_j - P_{j-1}) / (1 - P_{j-1})``
(``P_0 = 0``, per position and direction), since ``1 - prod_j (1 - r_j) = P_k``: the reference
engine draws these layers (seed ``child_seed(seed, "layer", j)``); the numba and torch engines
draw nested Poisson hits per level instead, sparsely below the ladder's split and with a
dense pass above (:mod:`memsim.noise.numba_engine`, :mod:`memsim.noise.torch_engine`); on a
CPU a numba coupled draw cost 0.98-1.84x an independent one at every p from 1e-8 to 0.5
(``benchmarks/bitflip.py --quick --coupled``: 1M float32, one thread, measured 2026-11-30 on
an Intel Xeon); on an AMD EPYC (AVX2) 0.63-1.56x, except 2.3-2.4x above a ``first_noisy:7``
ladder's split (docs/cluster.md).
:func:`flip_coupled` returns the whole nested family in one call.
"""

from memsim.noise.api import flip, flip_, flip_coupled
from memsim.noise.channel import BitFlip, Channel, Noiseless
from memsim.noise.engines import ENGINES, Engine, get_engine

__all__ = [
    "ENGINES",
    "BitFlip",
    "Channel",
    "Engine",
    "Noiseless",
    "flip",
    "flip_",
    "flip_coupled",
    "get_engine",
]
