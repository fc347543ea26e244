"""The ``ecc_secded`` policy: (72,64) Hsiao SECDED codewords over the RRAM bits.

Fills the ``coding`` slot of a storage spec (:mod:`policies.stage`). The RRAM bits of a tensor
(all bits, or the mantissa when composed with ``sram_exponent``), in element order, are cut
into 64-bit data words (2 float32, 4 float16, 8 int8 or 1 float64 per word) and each is
stored with 8 check bits.

Accuracy side: :class:`policies.channels.SECDEDChannel` simulates every codeword exactly
(flips on all 72 cells; single errors corrected, double errors detected and left as stored,
heavier errors possibly miscorrected). Cost side: +8 check cells per 64 data bits (12.5 %)
written like data cells, one encode per word (``ecc`` energy, ``t_ecc_ns`` per unit), and a
write unit of one 72-bit codeword (:mod:`policies.costs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from policies import secded
from policies.costs import WriteCost, check_bit_counts
from policies.stage import Stage, register


@register("ecc_secded")
@dataclass(frozen=True)
class EccSecded(Stage):
    """SECDED (72,64) protection of every RRAM word."""

    slot = "coding"

    def cost_terms(self, cost: WriteCost) -> WriteCost:
        """Check cells written like data cells, one encode per word, 72-bit write units."""
        ecc = cost.device.secded
        if (ecc.data_bits, ecc.check_bits) != (secded.DATA_BITS, secded.CHECK_BITS):
            raise ValueError(
                f"Policy '{self.describe()}' implements the (72,64) code; the device bundle "
                f"describes a ({ecc.codeword_bits},{ecc.data_bits}) code."
            )
        n_words = -(-cost.data_bits // secded.DATA_BITS)
        ones, n01 = check_bit_counts(cost.f, cost.record.numel, cost.record.zero_fraction)
        return cost.replace(
            check_cells=n_words * secded.CHECK_BITS,
            encodes=n_words,
            ones=cost.ones + ones,
            n01=cost.n01 + n01,
            unit_bits=secded.CODE_BITS,
            t_ecc_ns=ecc.t_encode_ns,
            t_decode_ns=ecc.t_decode_ns,
            logic=(*cost.logic, "ecc_codec"),
        )
