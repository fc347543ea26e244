"""The memory model's output for one simulated trace: scalars plus tidy DataFrames.

Where it sits: :func:`memsim.timing.simulate` fills it from the SimPy monitors; reports and
the ``memsim memory`` verb read it. Every column carries its unit in its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from memsim.timing.params import MemoryParams


@dataclass(frozen=True)
class MemoryResult:
    """Time, contention and energy of one simulated trace (one inference unless repeated).

    Attributes
    ----------
    latency_ns : float
        From the start of the first layer until the last write is complete.
    compute_ns : float
        Total processor compute time.
    stall_ns : float
        Time the processor waited for memory: ``stall_queue_ns + stall_dependency_ns``.
    stall_queue_ns : float
        Waiting for a free write-queue entry (the queue was full).
    stall_dependency_ns : float
        Waiting for a layer's writes to complete (``overlap = false`` only).
    queue_mean_units, queue_max_units : float, int
        Write-queue occupancy in entries: time-weighted mean over the run, and maximum.
    events : int
        SimPy events processed.
    energy_pj : float
        Total energy of the trace (sum over categories).
    layers : DataFrame
        One row per trace record: ``index, name, start_ns, compute_ns, stall_queue_ns,
        stall_dependency_ns, issued_ns, writes_done_ns, rram_units, sram_units, bursts,
        rounds_mean`` and one ``energy_<category>_pj`` column per category.
    banks : DataFrame
        One row per bank: ``memory`` (rram/sram), ``bank``, ``busy_ns``, ``units``,
        ``bursts``, ``utilisation`` (busy time over latency).
    energy : DataFrame
        One row per energy category: ``category``, ``energy_pj``, ``share``.
    """

    latency_ns: float
    compute_ns: float
    stall_ns: float
    stall_queue_ns: float
    stall_dependency_ns: float
    queue_mean_units: float
    queue_max_units: int
    events: int
    energy_pj: float
    layers: pd.DataFrame
    banks: pd.DataFrame
    energy: pd.DataFrame
    params: MemoryParams = field(default_factory=MemoryParams)
    seed: int | None = None
    deterministic: bool = False

    def summary(self) -> pd.DataFrame:
        """One row with the scalar results and the mean RRAM bank utilisation."""
        rram = self.banks[self.banks["memory"] == "rram"]
        return pd.DataFrame(
            [
                {
                    "latency_ns": self.latency_ns,
                    "compute_ns": self.compute_ns,
                    "stall_ns": self.stall_ns,
                    "stall_queue_ns": self.stall_queue_ns,
                    "stall_dependency_ns": self.stall_dependency_ns,
                    "rram_utilisation": float(rram["utilisation"].mean()) if len(rram) else 0.0,
                    "queue_mean_units": self.queue_mean_units,
                    "queue_max_units": self.queue_max_units,
                    "energy_pj": self.energy_pj,
                    "events": self.events,
                }
            ]
        )
