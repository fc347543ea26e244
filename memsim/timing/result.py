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
        Time the processor waited for memory:
        ``stall_read_ns + stall_queue_ns + stall_dependency_ns``.
    stall_queue_ns : float
        Waiting for a free write-queue entry (the queue was full).
    stall_dependency_ns : float
        Waiting for a layer's writes to complete (``overlap = false`` only).
    queue_mean_units, queue_max_units : float, int
        Write-queue occupancy in entries: time-weighted mean over the run, and maximum.
    events : int
        SimPy events processed.
    energy_pj : float
        Write energy of the trace (sum over the write categories).
    layers : DataFrame
        One row per trace record: ``index, name, start_ns, stall_read_ns, compute_ns,
        stall_queue_ns, stall_dependency_ns, issued_ns, writes_done_ns, rram_units,
        sram_units, bursts, rounds_mean`` and one ``energy_<category>_pj`` column per write
        and read category.
    banks : DataFrame
        One row per bank: ``memory`` (rram/sram/offchip), ``bank``, ``busy_ns``, ``units``,
        ``bursts``, ``utilisation`` (busy time over latency), and the same split by
        ``busy_read_ns``/``busy_write_ns``, ``read_utilisation``/``write_utilisation``.
    energy : DataFrame
        One row per write energy category: ``category``, ``energy_pj``, ``share``.
    stall_read_ns : float
        Time the processor waited for its layers' reads (inputs and weights).
    read_energy_pj : float
        Energy of the inference reads (0 in the write-only model).
    read_energy : DataFrame
        One row per read energy category: ``category``, ``energy_pj``, ``share``.
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
    stall_read_ns: float = 0.0
    read_energy_pj: float = 0.0
    read_energy: pd.DataFrame = field(default_factory=pd.DataFrame)

    def utilisation(self, memory: str = "rram") -> dict[str, float]:
        """Mean busy fraction of the banks of ``memory``: total, reads and writes."""
        rows = self.banks[self.banks["memory"] == memory]
        if not len(rows):
            return {"utilisation": 0.0, "read_utilisation": 0.0, "write_utilisation": 0.0}
        return {
            k: float(rows[k].mean())
            for k in ("utilisation", "read_utilisation", "write_utilisation")
        }

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
                    "stall_read_ns": self.stall_read_ns,
                    "rram_utilisation": float(rram["utilisation"].mean()) if len(rram) else 0.0,
                    "read_energy_pj": self.read_energy_pj,
                    "queue_mean_units": self.queue_mean_units,
                    "queue_max_units": self.queue_max_units,
                    "energy_pj": self.energy_pj,
                    "events": self.events,
                }
            ]
        )
