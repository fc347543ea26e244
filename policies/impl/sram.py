"""The ``sram_msb`` and ``sram_exponent`` policies: the leading bits of each word in SRAM.

Fill the ``placement`` slot of a storage spec (:mod:`policies.stage`). The first ``n`` bits
(MSB first) of every stored word go to SRAM, which is noiseless; the rest go to RRAM. By
default ``n`` covers the sign and the exponent of a float format (fp32: 9 bits, bf16: 9,
fp16: 6, fp64: 12; sources §7.1), which removes the catastrophic flips.

Accuracy side: positions ``0 … n-1`` never flip. Cost side: ``numel·n`` SRAM bits at the SRAM
write energy, the rest priced as RRAM cells (:mod:`policies.costs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from memsim.config import check_range
from memsim.formats import get_format
from policies.stage import Stage, register


def _sign_and_exponent(policy: Stage, fmt: str) -> int:
    f = get_format(fmt)
    if not f.is_float or "exponent" not in f.fields:
        raise ValueError(
            f"Policy '{policy.describe()}' cannot store {fmt}: it keeps the sign and exponent in SRAM "
            f"and {fmt} has no exponent (sram_msb(n=...) keeps the first n bits of any format)."
        )
    return 1 + len(f.fields["exponent"])


@register("sram_msb")
@dataclass(frozen=True)
class SramMsb(Stage):
    """The first ``n`` bits of each word in SRAM (``None``: sign and exponent of a float format).

    Parameters
    ----------
    n : int or None
        Leading bits kept in SRAM, in [0, width of the stored format].
    """

    n: int | None = None

    slot = "placement"

    def __post_init__(self) -> None:
        if self.n is not None:
            check_range("sram_msb", "n", self.n, kind=int, low=0, high=64)

    def sram_bits_for(self, fmt: str) -> int:
        """SRAM bits per word of ``fmt``; ``ValueError`` if the policy cannot store ``fmt``."""
        if self.n is None:
            return _sign_and_exponent(self, fmt)
        width = get_format(fmt).width
        if self.n > width:
            raise ValueError(
                f"Policy '{self.describe()}' cannot store {fmt}: it keeps {self.n} bits per word in "
                f"SRAM but a {fmt} word has {width}."
            )
        return self.n


@register("sram_exponent")
@dataclass(frozen=True)
class SramExponent(Stage):
    """Sign and exponent of each float in SRAM, mantissa in RRAM (= ``sram_msb`` with no ``n``)."""

    slot = "placement"

    def sram_bits_for(self, fmt: str) -> int:
        """SRAM bits per word of ``fmt``; ``ValueError`` for formats without an exponent."""
        return _sign_and_exponent(self, fmt)
