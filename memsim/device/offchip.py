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

    # The defaults mirror ``[offchip]`` of configs/device/default.toml (a test keeps them equal)
    # and carry its sources (docs/sources.md §9):
    # [V/D] ZigZag inputs/hardware/tpu_like.yaml prices a DRAM read at 700 pJ per 64 bits;
    # 700 / 64 = 10.9375, rounded as in the preset.
    e_read_pj_per_bit: float = 10.94
    # [D/V] DRAMSim3 DDR4_8Gb_x8_3200: tCK = 0.63 ns; a 64-bit DDR channel moves one word per
    # half clock while streaming (row activation, tRCD = 22 tCK, is not modelled).
    t_word_ns: float = 0.315

    def __post_init__(self) -> None:
        check_non_negative("OffchipParams", "e_read_pj_per_bit", self.e_read_pj_per_bit)
        check_positive("OffchipParams", "t_word_ns", self.t_word_ns)
