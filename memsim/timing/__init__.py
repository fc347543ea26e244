"""The cost side's memory-system model (docs/design.md §6).

Policies turn trace records into :class:`WritePlan` objects; :func:`simulate` runs them on a
SimPy model of a processor, a bounded write queue, RRAM banks and SRAM banks, configured by
:class:`MemoryParams` (presets in ``configs/memory/``), and returns a :class:`MemoryResult`.
"""

from memsim.timing.params import MemoryParams, load_memory_params, preset_names
from memsim.timing.plan import ENERGY_CATEGORIES, READ_CATEGORIES, ReadPlan, WritePlan
from memsim.timing.result import MemoryResult
from memsim.timing.simulate import plan_trace, simulate

__all__ = [
    "ENERGY_CATEGORIES",
    "READ_CATEGORIES",
    "ReadPlan",
    "MemoryParams",
    "MemoryResult",
    "WritePlan",
    "load_memory_params",
    "plan_trace",
    "preset_names",
    "simulate",
]
