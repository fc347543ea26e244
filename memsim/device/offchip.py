"""Off-chip memory (DRAM) read cost: the alternative home of the weights.

The memory model reads weights from here when ``MemoryParams.weight_memory = "offchip"``.
Numbers come from the device bundle preset (``configs/device/``).
"""

from __future__ import annotations

from dataclasses import dataclass

from memsim.checks import check_non_negative, check_positive


@dataclass(frozen=True)
class OffchipParams:
    """Energy per bit read and time per 64-bit word of the off-chip channel (streaming).

    Parameters
    ----------
    e_read_pj_per_bit : float
        Energy per bit read, interface included (>= 0).
    t_word_ns : float
        Channel time per 64-bit word once a transfer streams (> 0); row activation is not
        modelled.
    """

    e_read_pj_per_bit: float = 10.94
    t_word_ns: float = 0.315

    def __post_init__(self) -> None:
        check_non_negative("OffchipParams", "e_read_pj_per_bit", self.e_read_pj_per_bit)
        check_positive("OffchipParams", "t_word_ns", self.t_word_ns)
