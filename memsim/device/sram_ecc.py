"""SRAM and SECDED ECC cost parameters: the alternatives to keeping a bit raw in RRAM.

Policies that keep some bits in SRAM (sign and exponent) or protect RRAM words with a
SECDED(72,64) code read their energy and latency here; the memory-system model reads the
access and coding times. Numbers come from the device bundle preset (``configs/device/``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memsim.checks import check_non_negative, check_positive, check_probabilities
from memsim.config import check_range


@dataclass(frozen=True)
class SRAMParams:
    """SRAM energy per bit and access time.

    Parameters
    ----------
    e_read_pj_per_bit, e_write_pj_per_bit : float
        Energy per bit read / written (>= 0).
    t_access_ns : float
        Time of one access of ``word_bits`` bits (> 0).
    word_bits : int
        Bits per access.
    """

    e_read_pj_per_bit: float
    e_write_pj_per_bit: float
    t_access_ns: float
    word_bits: int = 64

    def __post_init__(self) -> None:
        check_non_negative("SRAMParams", "e_read_pj_per_bit", self.e_read_pj_per_bit)
        check_non_negative("SRAMParams", "e_write_pj_per_bit", self.e_write_pj_per_bit)
        check_positive("SRAMParams", "t_access_ns", self.t_access_ns)
        check_range("SRAMParams", "word_bits", self.word_bits, kind=int, low=1)

    def write_energy_pj(self, bits: int) -> float:
        """Energy of writing ``bits`` bits (SRAM writes are error-free and data-independent)."""
        return bits * self.e_write_pj_per_bit


@dataclass(frozen=True)
class SECDEDParams:
    """A single-error-correcting, double-error-detecting code over ``data_bits``-bit words.

    Parameters
    ----------
    data_bits, check_bits : int
        Word layout; (64, 8) is the Hsiao (72,64) code. ``check_bits`` must satisfy the SECDED
        bound 2^(c−1) >= data_bits + c.
    e_encode_pj, e_decode_pj : float
        Logic energy per encoded / decoded word.
    t_encode_ns, t_decode_ns : float
        Logic latency per word.
    """

    data_bits: int = 64
    check_bits: int = 8
    e_encode_pj: float = 0.0
    e_decode_pj: float = 0.0
    t_encode_ns: float = 0.0
    t_decode_ns: float = 0.0

    def __post_init__(self) -> None:
        check_range("SECDEDParams", "data_bits", self.data_bits, kind=int, low=1)
        check_range("SECDEDParams", "check_bits", self.check_bits, kind=int, low=2)
        if 2 ** (self.check_bits - 1) < self.data_bits + self.check_bits:
            raise ValueError(
                f"The 'check_bits' parameter of SECDEDParams is too small for {self.data_bits} data bits: "
                f"a SECDED code needs 2^(c-1) >= data_bits + c. Got {self.check_bits}."
            )
        for key in ("e_encode_pj", "e_decode_pj", "t_encode_ns", "t_decode_ns"):
            check_non_negative("SECDEDParams", key, getattr(self, key))

    @property
    def codeword_bits(self) -> int:
        """Cells per protected word (72 for SECDED(72,64))."""
        return self.data_bits + self.check_bits

    @property
    def overhead_fraction(self) -> float:
        """Extra cells per data cell (0.125 for (72,64))."""
        return self.check_bits / self.data_bits

    def extra_cells(self, data_bits: int) -> int:
        """Check cells needed to protect ``data_bits`` bits (whole words)."""
        check_range("SECDEDParams.extra_cells", "data_bits", data_bits, kind=int, low=0)
        return -(-data_bits // self.data_bits) * self.check_bits

    def word_failure(self, p: float | np.ndarray) -> float | np.ndarray:
        """P(a codeword has two or more bit errors), 1 − (1−p)^n − n p (1−p)^(n−1).

        Each of the n = ``codeword_bits`` cells errs independently with probability ``p``;
        one error is corrected, two or more are not. Computed with ``log1p``/``expm1`` so
        tiny ``p`` keep their precision (≈ C(n,2) p² there).
        """
        arr = check_probabilities("p", p, owner="SECDEDParams.word_failure")
        n = self.codeword_bits
        with np.errstate(divide="ignore", invalid="ignore"):
            log_q = np.log1p(-arr)
            # 1 - q^n - n p q^(n-1) = -expm1(n log q) - n p exp((n-1) log q)
            out = -np.expm1(n * log_q) - n * arr * np.exp((n - 1) * log_q)
        out = np.where(arr >= 1.0, 1.0, np.clip(out, 0.0, 1.0))
        return float(out) if out.ndim == 0 else out
