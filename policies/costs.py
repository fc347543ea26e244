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
* **Plain write** (every cell pulsed, reference notes §6): a cell holding 1 gets a SET, a cell
  holding 0 a RESET, ``E = (#ones)·E_SET + (#zeros)·E_RESET``.
* **Data-comparison write**: see :mod:`policies.impl.dcw` (old content independent with the same
  statistics: ``n01 = n10 = Σ_i numel·f_i·(1 − f_i)``; pre-read of every cell).
* **SECDED**: ``ceil(data bits / 64)`` words, 8 check cells each, written like data cells.
  When every RRAM bit position is deterministic (``f`` in {0, 1}) the check bits are computed
  exactly by encoding the periodic data pattern; otherwise a check bit is 1 with probability
  ``(1 − P(word = 0))/2`` (a non-zero word has balanced check bits), with
  ``P(word = 0) = z^(64/m)``, ``z = max(zero_fraction, Π_i (1 − f_i))`` and ``m`` the RRAM bits
  per element. One encode per word (``ecc`` energy), ``t_ecc_ns`` per unit, 72-bit units.
* **Write-verify**: each pulsed cell gets ``expected_pulses`` pulses and as many verify reads
  (with the device bundle's verify margin and misreads; SET cells with the SET statistics,
  RESET cells with the RESET ones); a unit's rounds are the max over its pulsed cells
  (``rounds_pmf_mixed`` with the expected SET/RESET cell counts per unit, rounded).
* **2T2R**: a pulsed bit programs one SET and one RESET device; verify reads and pre-reads
  sense both devices; the per-pulse error is ``p_2t2r`` of the condition.
* **SRAM**: ``numel · n`` bits at ``sram.e_write_pj_per_bit``.

The controller has no field for a pre-read latency: a DCW pre-read costs energy only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from memsim.formats import get_format
from memsim.timing.plan import WritePlan
from policies import secded

if TYPE_CHECKING:
    from memsim.trace.records import WriteRecord
    from policies.stage import StorageSpec

#: RRAM bits programmed together when the device bundle does not say (notes §1 row 19).
DEFAULT_UNIT_BITS = 64


def bit_ones_fraction(record: WriteRecord, stored: str) -> np.ndarray:
    """Probability that each bit position (MSB first) of a stored word is 1 (module notes)."""
    width = get_format(stored).width
    f = np.asarray(record.ones_fraction, dtype=float)
    if record.format == stored and f.shape == (width,):
        return f
    if stored == "bfloat16" and record.format == "float32" and f.shape == (32,):
        return f[:16].copy()
    return np.full(width, 0.5 * (1.0 - record.zero_fraction))


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
    z = max(zero_fraction, float(np.prod(1.0 - f_rram)))
    q = 0.5 * (1.0 - z ** (secded.DATA_BITS / m))
    n_check = n_words * secded.CHECK_BITS
    return n_check * q, n_check * q * (1.0 - q)


def build_plan(spec: StorageSpec, record: WriteRecord, device: Any) -> WritePlan:
    """The write plan of ``record`` under ``spec`` on ``device`` (see the module notes)."""
    stored = spec.validate(record.format)
    width = get_format(stored).width
    n_sram = spec.sram_bits(stored)
    m = width - n_sram
    numel = record.numel
    f = bit_ones_fraction(record, stored)[n_sram:]

    data_bits = numel * m
    ones = numel * float(f.sum())
    n01 = numel * float((f * (1.0 - f)).sum())
    check_cells = n_words = 0
    ecc = device.secded
    if spec.coding is not None:
        if (ecc.data_bits, ecc.check_bits) != (secded.DATA_BITS, secded.CHECK_BITS):
            raise ValueError(
                f"Policy '{spec.coding.describe()}' implements the (72,64) code; the device bundle "
                f"describes a ({ecc.codeword_bits},{ecc.data_bits}) code."
            )
        n_words = -(-data_bits // secded.DATA_BITS)
        check_cells = n_words * secded.CHECK_BITS
        c_ones, c_n01 = check_bit_counts(f, numel, record.zero_fraction)
        ones += c_ones
        n01 += c_n01
        unit_bits = secded.CODE_BITS
    else:
        unit_bits = int(getattr(device, "unit_bits", DEFAULT_UNIT_BITS))
    rram_bits = data_bits + check_cells
    zeros = rram_bits - ones

    cond = spec.condition.load() if spec.condition is not None else device.condition
    two = spec.cell is not None
    devices = 2 if two else 1
    dcw = spec.comparison
    set_bits, reset_bits = (n01, n01) if dcw is not None else (ones, zeros)

    pmf: tuple[float, ...] = (1.0,)
    pulses_set = pulses_reset = 1.0
    reads_set = reads_reset = 0.0
    verifies = False
    if spec.verify is not None:
        model = spec.verify.scheme(device)
        verifies = model.verifies
        frac = (set_bits / rram_bits, reset_bits / rram_bits) if rram_bits else (0.0, 0.0)
        n_set_u, n_reset_u = (int(round(unit_bits * x)) for x in frac)
        if two:
            sigma_sa = (
                device.read.sigma_sa_ln if spec.cell.sigma_sa_ln is None else spec.cell.sigma_sa_ln
            )
            p2 = cond.p_2t2r(sigma_sa)
            pulses_set = pulses_reset = model.expected_pulses(p2)
            reads_set = reads_reset = model.expected_verify_reads(p2)
            rounds = model.rounds_pmf(p2, n_set_u + n_reset_u)
        else:
            a_set, a_reset = (
                model.attempt_probs(cond.cell, "set"),
                model.attempt_probs(cond.cell, "reset"),
            )
            pulses_set = model.expected_pulses(a_set.p_wrong, a_set.q_verify)
            pulses_reset = model.expected_pulses(a_reset.p_wrong, a_reset.q_verify)
            reads_set = model.expected_verify_reads(a_set.p_wrong, a_set.q_verify)
            reads_reset = model.expected_verify_reads(a_reset.p_wrong, a_reset.q_verify)
            rounds = model.rounds_pmf_mixed(cond.cell, n_set_u, n_reset_u)
        pmf = tuple(float(x) for x in rounds)

    if two:
        pulsed = set_bits + reset_bits
        e_set = pulsed * pulses_set * cond.e_set_pj
        e_reset = pulsed * pulses_reset * cond.e_reset_pj
        verify_reads = pulsed * reads_set * devices
    else:
        e_set = set_bits * pulses_set * cond.e_set_pj
        e_reset = reset_bits * pulses_reset * cond.e_reset_pj
        verify_reads = set_bits * reads_set + reset_bits * reads_reset
    pre_reads = rram_bits * devices if dcw is not None and dcw.pre_read else 0
    sram_bits = numel * n_sram
    energy = {
        "rram_set": e_set,
        "rram_reset": e_reset,
        "verify_read": verify_reads * cond.e_read_pj_per_bit,
        "pre_read": pre_reads * cond.e_read_pj_per_bit,
        "sram": device.sram.write_energy_pj(sram_bits),
        "ecc": n_words * ecc.e_encode_pj,
    }
    return WritePlan(
        name=record.name,
        record_index=record.index,
        rram_bits=int(rram_bits),
        sram_bits=int(sram_bits),
        unit_bits=unit_bits,
        rounds_pmf=pmf,
        t_pulse_ns=cond.t_pulse_ns,
        t_verify_ns=cond.t_read_ns if verifies else 0.0,
        t_sram_ns=device.sram.t_access_ns,
        sram_unit_bits=device.sram.word_bits,
        t_ecc_ns=ecc.t_encode_ns if spec.coding is not None else 0.0,
        devices_per_bit=devices,
        energy_pj={k: float(v) for k, v in energy.items()},
    )
