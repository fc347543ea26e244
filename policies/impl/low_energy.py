"""The ``low_energy`` policy: a cheaper programming condition with a higher ``p_bf``.

Fills the ``condition`` slot of a storage spec (:mod:`policies.stage`). The condition is a
device preset (``configs/device/conditions/``; default ``low_energy``: 1/30 of the nominal
pulse energy at ``p_bf`` = 4e-2, Hirtzlin et al. 2019, sources §7.4).

Cost side: the condition's pulse energies, times and, for write-verify, its per-pulse error.
Accuracy side, chosen by ``p_source``:

* ``"scaled"`` (default): the swept ``p`` times ``p_bf(condition) / p_bf(reference)``
  (capped at 0.5), i.e. the sweep axis stays the noise of the reference (nominal) device and
  the cheaper condition multiplies it. At ``p = p_bf(reference)`` this is exactly the
  condition's own ``p_bf``, and zero device noise stays zero, like every other policy;
* ``"condition"``: the condition's own ``p01``/``p10``; the swept ``p`` is ignored (every
  point of a sweep gives the same channel; the named config ``low_energy_fixed``);
* ``"sweep"``: the swept ``p`` as given (the condition only changes the costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from memsim.config import check_choice
from memsim.device import ProgrammingCondition, load_condition
from policies.costs import WriteCost
from policies.stage import Stage, register

P_SOURCES = ("condition", "scaled", "sweep")


@lru_cache(maxsize=32)
def cached_condition(name: str) -> ProgrammingCondition:
    """A shipped programming condition by name (parsed once per process)."""
    return load_condition(name)


@register("low_energy")
@dataclass(frozen=True)
class LowEnergy(Stage):
    """Program with the condition ``condition`` instead of the device's own.

    Parameters
    ----------
    condition : str
        Programming-condition preset name or TOML path.
    p_source : str
        ``"condition"``, ``"scaled"`` or ``"sweep"`` (module notes).
    reference : str
        Condition the swept ``p`` refers to for ``p_source = "scaled"``.
    """

    condition: str = "low_energy"
    p_source: str = "scaled"
    reference: str = "nominal"

    slot = "condition"

    def __post_init__(self) -> None:
        check_choice("low_energy", "p_source", self.p_source, P_SOURCES)
        self.load()  # unknown presets fail here, listing the known ones
        if self.p_source == "scaled":
            cached_condition(self.reference)

    def load(self) -> ProgrammingCondition:
        """The programming condition this policy writes with."""
        return cached_condition(self.condition)

    def cost_terms(self, cost: WriteCost) -> WriteCost:
        """Pulses with this condition's energies, times and statistics."""
        return cost.replace(condition=self.load())

    def error_probs(self, q01: np.ndarray, q10: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-pulse error per position and direction (module notes)."""
        cond = self.load()
        if self.p_source == "condition":
            return np.full_like(q01, cond.p01), np.full_like(q10, cond.p10)
        if self.p_source == "scaled":
            factor = cond.p_bf / cached_condition(self.reference).p_bf
            return np.minimum(q01 * factor, 0.5), np.minimum(q10 * factor, 0.5)
        return q01, q10
