"""Cost side of a storage spec: the write plan of one traced tensor.

Reads a :class:`policies.stage.StorageSpec`, a :class:`memsim.trace.records.WriteRecord` and a
device bundle (:class:`memsim.device.params.DeviceParams`) and returns the
:class:`memsim.timing.plan.WritePlan` the SimPy memory model costs. Pure arithmetic on
expected values; no SimPy, no randomness.

Modelling choices (all documented here, tested with records whose ``ones_fraction`` is 0 or 1
so that the expected counts are exact):

* **Bit values.** ``ones_fraction[i]`` of the record is the probability that bit ``i`` of a
  stored word is 1. When the policy stores another format than the traced one, the bits are
  estimated: bfloat16 from float32 keeps the first 16 fractions (bfloat16 is the top half of a
  float32), otherwise every bit is 1 with probability ``(1 − zero_fraction)/2``.
* **Plain write** (every cell pulsed, sources §6): a cell holding 1 gets a SET, a cell
  holding 0 a RESET, ``E = (#ones)·E_SET + (#zeros)·E_RESET``.
* **Write periphery**: every written RRAM device also costs the array's write periphery,
  ``e_write_periphery_pj_per_bit`` of the condition (NVMExplorer's 64-bit write less its
  cells' pulses, sources §1 rows 12-13), once per write (not per verify round); a comparison
  write's units that change nothing are not written and cost none.
* **Data-comparison write**: see :mod:`policies.impl.dcw` (old content independent with the same
  statistics: ``n01 = n10 = Σ_i numel·f_i·(1 − f_i)``; pre-read of every cell). A write unit
  whose old and new words are both zero changes no cell and takes no pulse round (sources §6:
  no latency when nothing changed); :func:`unchanged_unit_prob`.
* **SECDED**: ``ceil(data bits / 64)`` words, 8 check cells each, written like data cells.
  When every RRAM bit position is deterministic (``f`` in {0, 1}) the check bits are computed
  exactly by encoding the periodic data pattern; otherwise a check bit is 1 with probability
  ``(1 − P(word = 0))/2`` (a non-zero word has balanced check bits), with
  ``P(word = 0) = z^(64/m)``, ``z = max(zero_fraction, Π_i (1 − f_i))`` and ``m`` the RRAM bits
  per element. One encode per word (``ecc`` energy), ``t_ecc_ns`` per unit, 72-bit units.
* **Write-verify**: each pulsed cell gets ``expected_pulses`` pulses and as many verify reads
  (with the device bundle's verify margin and misreads; SET cells with the SET statistics,
  RESET cells with the RESET ones); a unit's rounds are the max over its pulsed cells
  (``rounds_pmf_mixed`` with the expected SET/RESET cell counts per unit, rounded; after a
  comparison write, per unit that changes).
* **2T2R**: a pulsed bit programs one SET and one RESET device; verify reads, pre-reads,
  inference reads and the write periphery count both devices (an upper bound, sources §3.3);
  the per-pulse error is ``p_2t2r`` of the condition.
* **SRAM**: ``numel · n`` bits at ``sram.e_write_pj_per_bit``.

* **Reads** (the plan's read terms, for the layer that reads the tensor back): every stored
  RRAM device sensed at ``e_read_pj_per_bit``, every SRAM bit at the SRAM read energy, one
  SECDED decode per word. A DCW pre-read takes one read time per write unit on its bank.
* **Logic and shadow storage** (for area): SECDED adds an encoder/decoder, write-verify a
  compare of the read-back word, DCW a compare of old and new words; DCW without pre-read
  keeps a shadow copy of the stored RRAM bits, check bits included (counted as SRAM bits; its own write
  energy is not modelled).

How the terms are gathered: :func:`build_plan` asks no policy kind by name. It starts from the
terms of a plain single-pulse write of every RRAM bit (:func:`start`), then asks the stage in
each slot of :data:`COST_ORDER` for its terms (``stage.cost_terms(cost) -> WriteCost``, the
way the accuracy side asks each stage for its error probabilities), and prices the result
(:meth:`WriteCost.plan`). The ``format`` and ``placement`` slots act through the stored
format and its SRAM bits, which :func:`start` reads from the spec.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from memsim.formats import get_format
from memsim.timing.plan import WritePlan
from memsim.timing.reads import RRAM_WORD_BITS, rram_word_bits
from policies import secded

if TYPE_CHECKING:
    from memsim.device import ProgrammingCondition
    from memsim.device import WriteVerify as VerifyModel
    from memsim.device.params import DeviceParams
    from memsim.trace.records import WriteRecord
    from policies.stage import StorageSpec

#: RRAM bits programmed together when the device bundle does not say (sources §1 row 19): the
#: word inference reads weights in too (:func:`memsim.timing.reads.rram_word_bits`).
DEFAULT_UNIT_BITS = RRAM_WORD_BITS


def bit_ones_fraction(record: WriteRecord, stored: str) -> np.ndarray:
    """Probability that each bit position (MSB first) of a stored word is 1 (module notes)."""
    width = get_format(stored).width
    f = np.asarray(record.ones_fraction, dtype=float)
    if record.format == stored and f.shape == (width,):
        return f
    if stored == "bfloat16" and record.format == "float32" and f.shape == (32,):
        return f[:16].copy()
    return np.full(width, 0.5 * (1.0 - record.zero_fraction))


def zero_word_prob(f_rram: np.ndarray, zero_fraction: float, bits: float) -> float:
    """Probability that ``bits`` consecutive RRAM bits of a tensor are all 0 (module notes):
    ``z^(bits/m)``, ``z = max(zero_fraction, Π_i (1 − f_i))`` the probability that an element's
    ``m`` RRAM bits are all 0, elements independent."""
    if len(f_rram) == 0:
        return 1.0
    z = max(zero_fraction, float(np.prod(1.0 - f_rram)))
    return float(z ** (bits / len(f_rram)))


def unchanged_unit_prob(cost: WriteCost) -> float:
    """Probability that a write unit changes no cell against an independent old content with
    the same statistics (module notes, data-comparison write).

    Every RRAM bit position fixed (``f`` in {0, 1}): old and new always agree, 1. Otherwise the
    probability that old and new are both all-zero, ``P(unit = 0)²``, over the unit's data
    bits (its check bits are then 0 too): a lower bound, since it leaves out equal non-zero
    words, negligible for floats and the reason it errs towards a pulse, not away from one.
    """
    f = cost.f
    if cost.rram_bits == 0 or np.all((f == 0) | (f == 1)):
        return 1.0
    unit_data_bits = cost.unit_bits * cost.data_bits / cost.rram_bits
    return zero_word_prob(f, cost.record.zero_fraction, unit_data_bits) ** 2


def check_bit_counts(
    f_rram: np.ndarray, numel: int, zero_fraction: float = 0.0
) -> tuple[float, float]:
    """Expected ones among all check bits, and expected 0→1 (= 1→0) check-bit transitions.

    Parameters
    ----------
    f_rram : ndarray
        Ones fraction of each RRAM bit position of an element (length ``m``).
    numel : int
        Elements of the tensor.
    zero_fraction : float
        Fraction of all-zero elements.
    """
    m = len(f_rram)
    n_data = numel * m
    n_words = -(-n_data // secded.DATA_BITS)
    if n_words == 0:
        return 0.0, 0.0
    if np.all((f_rram == 0) | (f_rram == 1)):
        # Deterministic data: the stream repeats with period m bits, so the words repeat with
        # period m / gcd(m, 64); encode one period and the zero-padded last word.
        pattern = f_rram.astype(np.uint8)
        full, rem = divmod(n_data, secded.DATA_BITS)
        period = m // math.gcd(m, secded.DATA_BITS)
        classes = np.arange(min(period, full))
        words = pattern[(classes[:, None] * secded.DATA_BITS + np.arange(secded.DATA_BITS)) % m]
        counts = full // period + (classes < full % period)
        ones = float(np.dot(secded.check_bits(words).sum(axis=1), counts)) if full else 0.0
        if rem:
            last = np.zeros((1, secded.DATA_BITS), dtype=np.uint8)
            last[0, :rem] = pattern[(full * secded.DATA_BITS + np.arange(rem)) % m]
            ones += float(secded.check_bits(last).sum())
        return ones, 0.0
    q = 0.5 * (1.0 - zero_word_prob(f_rram, zero_fraction, secded.DATA_BITS))
    n_check = n_words * secded.CHECK_BITS
    return n_check * q, n_check * q * (1.0 - q)


#: Slots whose stages contribute cost terms, in the order they are asked (each may read the
#: terms of the ones before it: write-verify reads the cell model and which cells are pulsed).
COST_ORDER = ("coding", "condition", "cell", "comparison", "verify")


@dataclass(frozen=True)
class VerifyTerms:
    """What write-verify does per pulsed device, as expected values.

    Attributes
    ----------
    pulses : (float, float)
        Expected pulses per device pulsed towards SET and towards RESET.
    reads : (float, float)
        Expected verify reads per such device.
    rounds_pmf : sequence of float
        ``rounds_pmf[r]``: probability that a write unit needs ``r + 1`` rounds.
    verifies : bool
        Whether a verify read follows each pulse (it adds ``t_read_ns`` to a round).
    """

    pulses: tuple[float, float]
    reads: tuple[float, float]
    rounds_pmf: tuple[float, ...]
    verifies: bool


class CellModel(Protocol):
    """How a bit is held, as the cost side sees it (1T1R: :class:`SingleCell`)."""

    devices_per_bit: int

    def pulsed_devices(self, set_bits: float, reset_bits: float) -> tuple[float, float]:
        """Devices pulsed towards SET and towards RESET when these bits are pulsed."""
        ...

    def verify_terms(
        self, cost: WriteCost, model: VerifyModel, n_set_unit: int, n_reset_unit: int
    ) -> VerifyTerms:
        """Write-verify terms of ``model`` for a unit with these SET/RESET bit counts."""
        ...


class SingleCell:
    """1T1R: one device per bit, pulsed towards its new value, SET and RESET statistics apart."""

    devices_per_bit = 1

    def pulsed_devices(self, set_bits: float, reset_bits: float) -> tuple[float, float]:
        return set_bits, reset_bits

    def verify_terms(
        self, cost: WriteCost, model: VerifyModel, n_set_unit: int, n_reset_unit: int
    ) -> VerifyTerms:
        cell = cost.condition.cell
        a_set, a_reset = model.attempt_probs(cell, "set"), model.attempt_probs(cell, "reset")
        return VerifyTerms(
            pulses=(
                model.expected_pulses(a_set.p_wrong, a_set.q_verify),
                model.expected_pulses(a_reset.p_wrong, a_reset.q_verify),
            ),
            reads=(
                model.expected_verify_reads(a_set.p_wrong, a_set.q_verify),
                model.expected_verify_reads(a_reset.p_wrong, a_reset.q_verify),
            ),
            rounds_pmf=tuple(
                float(x) for x in model.rounds_pmf_mixed(cell, n_set_unit, n_reset_unit)
            ),
            verifies=model.verifies,
        )


@dataclass(frozen=True)
class WriteCost:
    """The cost terms of one traced tensor, filled in stage by stage (module notes).

    Attributes
    ----------
    record : WriteRecord
    device : DeviceParams
    n_sram : int
        Leading bits of each stored word kept in SRAM.
    f : ndarray
        Ones fraction of each RRAM bit position of a stored word.
    data_bits : int
        RRAM data bits of the tensor.
    ones, n01 : float
        Expected ones among all RRAM cells (check cells included), and expected 0→1
        (= 1→0) transitions against an independent old content.
    condition : ProgrammingCondition
        Pulse energies and times.
    check_cells, encodes : int
        ECC check cells and ECC encodes (words) of the tensor.
    unit_bits : int
        RRAM bits programmed together as one write unit.
    t_ecc_ns, t_decode_ns : float
        ECC encode time per unit written, decode time per unit read.
    logic : tuple of str
        Logic blocks the stages add to each bank (``memsim.cost.LOGIC_BLOCKS``).
    shadow_bits : int
        Bits of a shadow copy of the stored data kept beside the array (SRAM).
    cell : CellModel
        Devices per bit and the cell's write-verify statistics.
    pulsed : (float, float) or None
        Bits pulsed towards SET and towards RESET (``None``: every cell, to its new value).
    pre_read : bool
        Every device is read before the write.
    unchanged_units : float
        Probability that a write unit changes no cell and is not pulsed (comparison write;
        :func:`unchanged_unit_prob`); ``verify`` then describes the units that change.
    verify : VerifyTerms or None
        ``None``: one pulse, no verify read.
    """

    record: WriteRecord
    device: DeviceParams
    n_sram: int
    f: np.ndarray
    data_bits: int
    ones: float
    n01: float
    condition: ProgrammingCondition
    check_cells: int = 0
    encodes: int = 0
    unit_bits: int = DEFAULT_UNIT_BITS
    t_ecc_ns: float = 0.0
    t_decode_ns: float = 0.0
    logic: tuple[str, ...] = ()
    shadow_bits: int = 0
    cell: CellModel = field(default_factory=SingleCell)
    pulsed: tuple[float, float] | None = None
    pre_read: bool = False
    verify: VerifyTerms | None = None
    unchanged_units: float = 0.0

    def replace(self, **changes: Any) -> WriteCost:
        """These terms with ``changes`` (the way a stage returns its contribution)."""
        return dataclasses.replace(self, **changes)

    @property
    def rram_bits(self) -> int:
        return self.data_bits + self.check_cells

    @property
    def pulsed_bits(self) -> tuple[float, float]:
        """Bits pulsed towards SET and towards RESET."""
        return (self.ones, self.rram_bits - self.ones) if self.pulsed is None else self.pulsed

    def plan(self) -> WritePlan:
        """Price the terms: the :class:`WritePlan` of the record."""
        record, device, cond = self.record, self.device, self.condition
        set_dev, reset_dev = self.cell.pulsed_devices(*self.pulsed_bits)
        terms = self.verify
        pulses, reads = ((1.0, 1.0), (0.0, 0.0)) if terms is None else (terms.pulses, terms.reads)
        devices = self.cell.devices_per_bit
        pre_reads = self.rram_bits * devices if self.pre_read else 0
        sram_bits = record.numel * self.n_sram
        read_energy = {
            "read_rram": self.rram_bits * devices * cond.e_read_pj_per_bit,
            "read_sram": sram_bits * device.sram.e_read_pj_per_bit,
            "ecc_decode": self.encodes * device.secded.e_decode_pj,
        }
        energy = {
            "rram_set": set_dev * pulses[0] * cond.e_set_pj,
            "rram_reset": reset_dev * pulses[1] * cond.e_reset_pj,
            # Once per written unit (not per round): a unit that changes nothing is not written.
            "write_periphery": self.rram_bits
            * devices
            * (1.0 - self.unchanged_units)
            * cond.e_write_periphery_pj_per_bit,
            "verify_read": (set_dev * reads[0] + reset_dev * reads[1]) * cond.e_read_pj_per_bit,
            "pre_read": pre_reads * cond.e_read_pj_per_bit,
            "sram": device.sram.write_energy_pj(sram_bits),
            "ecc": self.encodes * device.secded.e_encode_pj,
        }
        return WritePlan(
            name=record.name,
            record_index=record.index,
            rram_bits=int(self.rram_bits),
            sram_bits=int(sram_bits),
            unit_bits=self.unit_bits,
            rounds_pmf=(1.0,) if terms is None else terms.rounds_pmf,
            t_pulse_ns=cond.t_pulse_ns,
            t_verify_ns=cond.t_read_ns if terms is not None and terms.verifies else 0.0,
            t_sram_ns=device.sram.t_access_ns,
            sram_unit_bits=device.sram.word_bits,
            t_ecc_ns=self.t_ecc_ns,
            devices_per_bit=devices,
            energy_pj={k: float(v) for k, v in energy.items()},
            t_pre_read_ns=cond.t_read_ns if self.pre_read else 0.0,
            read_energy_pj={k: float(v) for k, v in read_energy.items()},
            t_read_ns=cond.t_read_ns,
            t_decode_ns=self.t_decode_ns,
            logic=self.logic,
            shadow_bits=int(self.shadow_bits),
            unchanged_unit_prob=float(self.unchanged_units),
        )


def start(spec: StorageSpec, record: WriteRecord, device: DeviceParams) -> WriteCost:
    """The terms of a plain single-pulse write of the stored RRAM bits (before the stages)."""
    stored = spec.validate(record.format)
    n_sram = spec.sram_bits(stored)
    f = bit_ones_fraction(record, stored)[n_sram:]
    numel = record.numel
    return WriteCost(
        record=record,
        device=device,
        n_sram=n_sram,
        f=f,
        data_bits=numel * len(f),
        ones=numel * float(f.sum()),
        n01=numel * float((f * (1.0 - f)).sum()),
        condition=device.condition,
        unit_bits=rram_word_bits(device),
    )


def build_plan(spec: StorageSpec, record: WriteRecord, device: DeviceParams) -> WritePlan:
    """The write plan of ``record`` under ``spec`` on ``device`` (see the module notes)."""
    cost = start(spec, record, device)
    for slot in COST_ORDER:
        stage = getattr(spec, slot)
        if stage is not None:
            cost = stage.cost_terms(cost)
    return cost.plan()
