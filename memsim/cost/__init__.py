"""Area and standby per policy and technology: closed forms over what a policy keeps on chip.

Energy per access and time come from the write and read plans and the SimPy model
(``memsim.timing``); this package adds the two costs that do not depend on traffic:

* :mod:`memsim.cost.capacity`: the footprint of a policy (activation buffer at the trace's
  peak live tensors or a configured capacity, weights, logic blocks);
* :mod:`memsim.cost.area`: mm² of a footprint (cells × cell area × F² / array efficiency,
  plus logic gate equivalents);
* :mod:`memsim.cost.standby`: leakage power, standby energy per inference (power × latency)
  and idle power;
* :mod:`memsim.cost.params`: the cited technology presets (``configs/cost/``).
"""

from memsim.cost.area import Area, Footprint, area, array_area_mm2, logic_area_mm2
from memsim.cost.capacity import footprint, peak_live, weight_bits
from memsim.cost.params import LOGIC_BLOCKS, TechnologyParams, load_technology, preset_names
from memsim.cost.standby import idle_power_nw, leakage_nw, standby_energy_pj

__all__ = [
    "LOGIC_BLOCKS",
    "Area",
    "Footprint",
    "TechnologyParams",
    "area",
    "array_area_mm2",
    "footprint",
    "idle_power_nw",
    "leakage_nw",
    "load_technology",
    "logic_area_mm2",
    "peak_live",
    "preset_names",
    "standby_energy_pj",
    "weight_bits",
]
