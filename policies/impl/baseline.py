"""The ``baseline`` policy: one write pulse per cell, every bit in RRAM.

It decides nothing beyond the defaults of a storage spec (:mod:`policies.stage`): the stored
format is the requested one, no bit goes to SRAM, no code, 1T1R cells, no verify, every cell
pulsed, the device's own programming condition. So it is also the identity of composition.

Accuracy side: ``BitFlip(fmt, p01, p10)`` on every bit. Cost side: every cell pulsed once,
E = (#ones)·E_SET + (#zeros)·E_RESET (see :mod:`policies.costs`), rounds ``(1.0,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.stage import Stage, register


@register("baseline")
@dataclass(frozen=True)
class Baseline(Stage):
    """Single write pulse, every bit in RRAM, the device's programming condition."""

    slot = None
