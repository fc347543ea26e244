"""Write plans: what the memory model costs for one traced tensor.

A policy turns each :class:`memsim.trace.records.WriteRecord` into a :class:`WritePlan` (pure
arithmetic from the device model, no SimPy); the SimPy memory system (``memsim.timing``) turns
the plans of one inference into time, contention and utilisation. Energy is already decided
here, by category, as expected values per tensor; time depends on how many pulse rounds each
write unit needs, which the simulator samples per unit from ``rounds_pmf``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

#: Energy categories, in report order.
ENERGY_CATEGORIES = ("rram_set", "rram_reset", "verify_read", "pre_read", "sram", "ecc")


@dataclass(frozen=True)
class WritePlan:
    """How one tensor is written.

    Attributes
    ----------
    name : str
        Record name (layer).
    record_index : int
        Index of the record in the trace.
    rram_bits : int
        RRAM bits written for the whole tensor (check bits included; a 2T2R bit counts once,
        its two devices are in ``devices_per_bit``).
    sram_bits : int
        Bits of the tensor kept in SRAM.
    unit_bits : int
        RRAM bits programmed together as one write unit (a bank access).
    rounds_pmf : tuple of float
        ``rounds_pmf[r]`` is the probability that a write unit needs ``r + 1`` pulse rounds.
        ``(1.0,)`` for a single-pulse write.
    t_pulse_ns : float
        Duration of one pulse round.
    t_verify_ns : float
        Duration of the verify read after each round (0 when there is no verify).
    t_sram_ns : float
        SRAM access time for one SRAM write unit.
    sram_unit_bits : int
        Bits per SRAM access.
    t_ecc_ns : float
        ECC encode latency added once per RRAM write unit (0 without ECC).
    devices_per_bit : int
        1 for 1T1R, 2 for 2T2R.
    energy_pj : mapping
        Expected energy of the whole tensor by category (keys from ``ENERGY_CATEGORIES``).
    """

    name: str
    record_index: int
    rram_bits: int
    sram_bits: int = 0
    unit_bits: int = 64
    rounds_pmf: tuple[float, ...] = (1.0,)
    t_pulse_ns: float = 10.0
    t_verify_ns: float = 0.0
    t_sram_ns: float = 1.0
    sram_unit_bits: int = 64
    t_ecc_ns: float = 0.0
    devices_per_bit: int = 1
    energy_pj: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rram_bits < 0 or self.sram_bits < 0:
            raise ValueError(f"WritePlan '{self.name}': bit counts must be non-negative.")
        if self.unit_bits <= 0 or self.sram_unit_bits <= 0:
            raise ValueError(f"WritePlan '{self.name}': unit sizes must be positive.")
        pmf = np.asarray(self.rounds_pmf, dtype=float)
        if pmf.ndim != 1 or len(pmf) == 0 or (pmf < -1e-12).any() or abs(pmf.sum() - 1) > 1e-6:
            raise ValueError(
                f"WritePlan '{self.name}': rounds_pmf must be a probability vector. Got {self.rounds_pmf}."
            )
        for key in self.energy_pj:
            if key not in ENERGY_CATEGORIES:
                raise ValueError(
                    f"WritePlan '{self.name}': unknown energy category '{key}'. Known: {ENERGY_CATEGORIES}."
                )
        for name in ("t_pulse_ns", "t_verify_ns", "t_sram_ns", "t_ecc_ns"):
            if getattr(self, name) < 0:
                raise ValueError(f"WritePlan '{self.name}': {name} must be non-negative.")

    @property
    def n_units(self) -> int:
        """RRAM write units (ceil of bits / unit bits)."""
        return -(-self.rram_bits // self.unit_bits)

    @property
    def n_sram_units(self) -> int:
        return -(-self.sram_bits // self.sram_unit_bits)

    @property
    def total_energy_pj(self) -> float:
        return float(sum(self.energy_pj.values()))

    @property
    def expected_rounds(self) -> float:
        return float(np.dot(np.arange(1, len(self.rounds_pmf) + 1), self.rounds_pmf))
