"""Standby power and energy: leakage of the powered memories, closed forms.

A powered macro leaks ``bits × leakage_nw_per_bit`` (SRAM: its cells and periphery; RRAM:
its periphery only, the cells do not leak). During an inference every macro is powered, so
the standby energy of one inference is ``P_leak × latency`` (:func:`standby_energy_pj`;
1 nW × 1 ns = 1e-6 pJ). Between inferences a macro marked ``*_idle_gated`` is power-gated
(non-volatile RRAM keeps its data); the others keep leaking: :func:`idle_power_nw` is their
leakage power while idle (the energy of an idle period is that power × its length).
"""

from __future__ import annotations

from memsim.cost.area import Footprint
from memsim.cost.params import TechnologyParams

#: pJ per (nW × ns).
PJ_PER_NW_NS = 1e-6


def leakage_nw(footprint: Footprint, tech: TechnologyParams) -> float:
    """Leakage of the powered memories: RRAM devices and SRAM bits times their per-bit leakage."""
    return (
        footprint.rram_devices * tech.rram_leakage_nw_per_bit
        + footprint.sram_bits * tech.sram_leakage_nw_per_bit
    )


def idle_power_nw(footprint: Footprint, tech: TechnologyParams) -> float:
    """Leakage while idle: only the macros that are not power-gated."""
    rram = 0.0 if tech.rram_idle_gated else footprint.rram_devices * tech.rram_leakage_nw_per_bit
    sram = 0.0 if tech.sram_idle_gated else footprint.sram_bits * tech.sram_leakage_nw_per_bit
    return rram + sram


def standby_energy_pj(power_nw: float, latency_ns: float) -> float:
    """Energy of leaking ``power_nw`` for ``latency_ns``: ``P · t``."""
    return power_nw * latency_ns * PJ_PER_NW_NS
