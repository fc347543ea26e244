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
ENERGY_CATEGORIES = (
    "rram_set",
    "rram_reset",
    "write_periphery",
    "verify_read",
    "pre_read",
    "sram",
    "ecc",
)

#: Read energy categories (inference reads of activations and weights), in report order.
READ_CATEGORIES = ("read_rram", "read_sram", "read_offchip", "ecc_decode")

#: Memories a read can be served from.
READ_MEMORIES = ("rram", "sram", "offchip")


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
    t_pre_read_ns : float
        Read of the old word before each RRAM write unit (data-comparison write with a
        pre-read; 0 otherwise). It occupies the bank like any read.
    read_energy_pj : mapping
        Energy of reading the stored tensor back once, by category (keys from
        ``READ_CATEGORIES``): RRAM devices sensed, SRAM bits, ECC decodes.
    t_read_ns : float
        Sensing time of one RRAM read pass (a unit of ``unit_bits × devices_per_bit``
        devices takes as many passes as it takes write passes).
    t_decode_ns : float
        ECC decode latency added once per RRAM unit read (0 without ECC).
    logic : tuple of str
        Logic blocks the policy adds to each bank (names from ``memsim.cost.LOGIC_BLOCKS``).
    shadow_bits : int
        Bits of a shadow copy of the stored data the controller keeps (area only).
    unchanged_unit_prob : float
        Probability that a write unit changes no cell, so that a comparison write pulses
        nothing in it: the unit takes no round (``rounds_pmf`` is then the rounds of a unit
        that changes). 0 for writes that pulse every cell.
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
    t_pre_read_ns: float = 0.0
    read_energy_pj: Mapping[str, float] = field(default_factory=dict)
    t_read_ns: float = 10.0
    t_decode_ns: float = 0.0
    logic: tuple[str, ...] = ()
    shadow_bits: int = 0
    unchanged_unit_prob: float = 0.0

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
        for key in self.read_energy_pj:
            if key not in READ_CATEGORIES:
                raise ValueError(
                    f"WritePlan '{self.name}': unknown read energy category '{key}'. Known: {READ_CATEGORIES}."
                )
        if not 0.0 <= self.unchanged_unit_prob <= 1.0:
            raise ValueError(
                f"WritePlan '{self.name}': unchanged_unit_prob must be in [0, 1]. "
                f"Got {self.unchanged_unit_prob}."
            )
        object.__setattr__(self, "logic", tuple(self.logic))
        for name in (
            "t_pulse_ns",
            "t_verify_ns",
            "t_sram_ns",
            "t_ecc_ns",
            "t_pre_read_ns",
            "t_read_ns",
            "t_decode_ns",
        ):
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
    def random_rounds(self) -> bool:
        """Whether the units' pulse rounds are drawn (several possible, or some units skipped),
        so that the simulated latency varies from one inference to the next."""
        several = int(np.count_nonzero(np.asarray(self.rounds_pmf) > 0)) > 1
        return several or 0.0 < self.unchanged_unit_prob < 1.0

    @property
    def expected_rounds(self) -> float:
        """Mean pulse rounds per write unit (a unit that changes no cell takes none)."""
        pmf = self.rounds_pmf
        changed = float(np.dot(np.arange(1, len(pmf) + 1), pmf))
        return (1.0 - self.unchanged_unit_prob) * changed


@dataclass(frozen=True)
class ReadPlan:
    """One read an inference layer makes before it computes (its input or its weights).

    Attributes
    ----------
    name : str
        What is read (the producing record, or ``<module>.weight``).
    record_index : int
        The trace record (layer) that reads it.
    memory : str
        ``rram``, ``sram`` or ``offchip`` (``READ_MEMORIES``).
    units : int
        Accesses (words) read.
    t_unit_ns : float
        Service time of one access on its bank or channel.
    first_unit : int
        Address of the first unit: RRAM and SRAM units go to banks as the writes did
        (``(first_unit + j) // interleave % banks``).
    energy_pj : mapping
        Energy of the read by category (keys from ``READ_CATEGORIES``).
    kind : str
        ``activation`` or ``weight``.
    """

    name: str
    record_index: int
    memory: str
    units: int
    t_unit_ns: float
    first_unit: int = 0
    energy_pj: Mapping[str, float] = field(default_factory=dict)
    kind: str = "activation"

    def __post_init__(self) -> None:
        if self.memory not in READ_MEMORIES:
            raise ValueError(
                f"ReadPlan '{self.name}': memory must be one of {READ_MEMORIES}. Got {self.memory!r}."
            )
        if self.units < 0 or self.first_unit < 0:
            raise ValueError(f"ReadPlan '{self.name}': units and first_unit must be non-negative.")
        if self.units and self.t_unit_ns <= 0:
            raise ValueError(
                f"ReadPlan '{self.name}': t_unit_ns must be positive. Got {self.t_unit_ns}."
            )
        for key in self.energy_pj:
            if key not in READ_CATEGORIES:
                raise ValueError(
                    f"ReadPlan '{self.name}': unknown energy category '{key}'. Known: {READ_CATEGORIES}."
                )

    @property
    def total_energy_pj(self) -> float:
        return float(sum(self.energy_pj.values()))
