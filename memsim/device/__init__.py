"""Device and technology model: from RRAM resistance statistics to bit-flip probability, energy, time.

Data flow: a programming condition (``configs/device/conditions/*.toml``) fixes the lognormal
LRS/HRS distributions of a cell (``cell``) and its pulse costs (``conditions``); write-verify
(``verify``), SRAM/SECDED costs (``sram_ecc``) and data-dependent write energy
(``transitions``) build on them; ``params.DeviceParams`` bundles it all for policies and the
memory-system model. Logic 1 = LRS, 0 = HRS; 0→1 is a SET, 1→0 a RESET.
"""

from memsim.device.cell import (
    LognormalState,
    RRAMCell,
    cell_for_pbf,
    ratio_for_pbf,
    sigma_sum_for_pbf,
)
from memsim.device.conditions import (
    ProgrammingCondition,
    condition_names,
    load_condition,
    load_conditions,
    scale_compliance,
)
from memsim.device.offchip import OffchipParams
from memsim.device.params import DEFAULT_DEVICE, DeviceParams, ReadParams, device_names, load_device
from memsim.device.presets import CONDITION_DIR, DEVICE_DIR
from memsim.device.sram_ecc import SECDEDParams, SRAMParams
from memsim.device.transitions import (
    SCHEMES,
    TransitionCounts,
    count_transitions,
    write_energy_breakdown,
    write_energy_pj,
)
from memsim.device.verify import AttemptProbs, WriteVerify

__all__ = [
    "CONDITION_DIR",
    "DEFAULT_DEVICE",
    "DEVICE_DIR",
    "SCHEMES",
    "AttemptProbs",
    "DeviceParams",
    "LognormalState",
    "ProgrammingCondition",
    "RRAMCell",
    "ReadParams",
    "SECDEDParams",
    "OffchipParams",
    "SRAMParams",
    "TransitionCounts",
    "WriteVerify",
    "cell_for_pbf",
    "condition_names",
    "count_transitions",
    "device_names",
    "load_condition",
    "load_conditions",
    "load_device",
    "ratio_for_pbf",
    "scale_compliance",
    "sigma_sum_for_pbf",
    "write_energy_breakdown",
    "write_energy_pj",
]
