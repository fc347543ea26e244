"""Area of a policy's memories and logic: closed forms in F², no simulation.

Where it sits: after the write plans (:mod:`policies.costs`) and beside the SimPy model.
A :class:`Footprint` says what a policy keeps on chip (RRAM devices, SRAM bits, logic blocks
per bank); :func:`area` prices it with a :class:`memsim.cost.params.TechnologyParams`:

* an array of ``n`` cells of ``a`` F² in a macro of array efficiency ``η`` takes
  ``n · a · F² / η`` (:func:`array_area_mm2`; F in nm, 1 nm² = 1e-12 mm²);
* a logic block of ``g`` gate equivalents of ``a_g`` F² each takes ``g · a_g · F²`` per bank
  (:func:`logic_area_mm2`).

RRAM devices count both devices of a 2T2R bit, ECC check cells, and weights kept in RRAM;
SRAM bits count the bits a placement keeps in SRAM, shadow copies and weights kept in SRAM.
Sense amplifiers and write drivers are inside the array efficiency of each macro: no
shipped policy adds sense amplifiers of its own (2T2R replaces a single-ended sense
amplifier by a differential one, write-verify and pre-reads reuse the read path).
"""

from __future__ import annotations

from dataclasses import dataclass

from memsim.cost.params import LOGIC_BLOCKS, TechnologyParams

#: mm² per nm².
MM2_PER_NM2 = 1e-12


@dataclass(frozen=True)
class Footprint:
    """What a policy keeps on chip for one inference.

    Attributes
    ----------
    rram_devices : int
        RRAM devices (1T1R cells; a 2T2R bit is two), activations and weights.
    sram_bits : int
        SRAM bits, activations (and shadow copies) and weights.
    logic : tuple of str
        Logic blocks added to every bank (names from ``LOGIC_BLOCKS``).
    n_banks : int
        Banks that each carry the logic blocks.
    """

    rram_devices: int
    sram_bits: int
    logic: tuple[str, ...] = ()
    n_banks: int = 1

    def __post_init__(self) -> None:
        if self.rram_devices < 0 or self.sram_bits < 0 or self.n_banks < 1:
            raise ValueError(
                f"Footprint: counts must be non-negative and n_banks >= 1. Got {self}."
            )
        for block in self.logic:
            if block not in LOGIC_BLOCKS:
                raise ValueError(
                    f"Footprint: unknown logic block '{block}'. Known: {', '.join(LOGIC_BLOCKS)}."
                )


@dataclass(frozen=True)
class Area:
    """Area by part, mm²."""

    rram_mm2: float
    sram_mm2: float
    logic_mm2: float

    @property
    def total_mm2(self) -> float:
        return self.rram_mm2 + self.sram_mm2 + self.logic_mm2


def array_area_mm2(
    cells: float, cell_area_f2: float, feature_nm: float, efficiency: float
) -> float:
    """Macro area of ``cells`` cells: ``cells · cell_area_f2 · F² / efficiency``."""
    return cells * cell_area_f2 * feature_nm**2 * MM2_PER_NM2 / efficiency


def logic_area_mm2(gates: float, gate_area_f2: float, feature_nm: float) -> float:
    """Area of ``gates`` gate equivalents: ``gates · gate_area_f2 · F²``."""
    return gates * gate_area_f2 * feature_nm**2 * MM2_PER_NM2


def area(footprint: Footprint, tech: TechnologyParams) -> Area:
    """The area of ``footprint`` in technology ``tech`` (module notes)."""
    gates = footprint.n_banks * sum(tech.gates(b) for b in sorted(set(footprint.logic)))
    return Area(
        rram_mm2=array_area_mm2(
            footprint.rram_devices,
            tech.rram_cell_area_f2,
            tech.feature_nm,
            tech.rram_array_efficiency,
        ),
        sram_mm2=array_area_mm2(
            footprint.sram_bits, tech.sram_cell_area_f2, tech.feature_nm, tech.sram_array_efficiency
        ),
        logic_mm2=logic_area_mm2(gates, tech.gate_area_f2, tech.feature_nm),
    )
