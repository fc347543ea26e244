"""Memory-system parameters: the numbers the SimPy model (``memsim.timing``) runs with.

Where it sits: a policy decides *what* is written (:class:`~memsim.timing.plan.WritePlan`:
bits, unit size, pulse rounds, per-pulse times, energy); these parameters describe the
*machine* the writes run on (how many banks, how deep the write queue is, how fast the
processor computes). They come from TOML presets in ``configs/memory/`` whose numbers name
their source (``docs/sources.md`` rows 19–22 and §8).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from memsim.config import (
    CONFIG_DIR,
    build,
    check_choice,
    check_range,
    load_toml,
    preset_path,
    toml_value,
)

#: Folder of the shipped memory-system presets.
PRESET_DIR = CONFIG_DIR / "memory"

#: Read/write schedulers of the controller (see :mod:`memsim.timing.model`).
SCHEDULERS = ("read_first", "in_order")

#: Where the weights live.
WEIGHT_MEMORIES = ("rram", "sram", "offchip")


@dataclass(frozen=True)
class MemoryParams:
    """Parameters of the simulated memory system.

    Attributes
    ----------
    n_banks : int
        RRAM banks that program write units in parallel.
    write_width_bits : int
        Cells a bank programs in parallel in one pass (its write drivers). A write unit with
        more cells (``unit_bits × devices_per_bit``; 2T2R has two devices per bit) is
        programmed in ``ceil(cells / write_width_bits)`` passes, one after the other ("sum of
        maxes", docs/sources.md §4.2).
    interleave_units : int
        Interleaving granularity: this many consecutive write units go to one bank before the
        controller moves to the next bank (round-robin; 1 = unit interleaving).
    write_queue_depth_units : int
        Entries of the controller's write queue, one per write unit. An entry is held until its
        unit is written (write-verify compares against the queued data), and the processor
        stalls when the queue is full.
    throughput_ops_per_ns : float
        Processor throughput: a layer with ``ops`` operations computes for
        ``ops / throughput_ops_per_ns`` ns.
    t_access_ns : float
        Fixed controller and array overhead per bank access (address decode, driver set-up),
        added once per write unit before its pulse rounds.
    sram_banks : int
        SRAM banks (parallel SRAM write ports); SRAM time per access comes from the plan.
    overlap : bool
        If true, the processor computes the next layer while the writes of earlier layers
        drain (it stalls only when the write queue is full). If false, each layer waits until
        its own writes (RRAM and SRAM) are complete, as when the next layer reads its input
        back from memory.
    burst_units : int
        Simulation granularity: up to this many write units of one tensor bound for the same
        bank are served by one SimPy event with their summed service time. Bank busy time and
        energy do not depend on it; queue occupancy and stalls are resolved per burst, so
        ``burst_units = 1`` is the exact unit-level model and larger bursts trade that
        resolution for speed. The simulator uses :attr:`effective_burst_units`, which caps
        it at ``write_queue_depth_units // n_banks``: with room for one burst per bank in the
        queue, VGG-16 latencies stay within 1e-4 of the unit-level model, while larger bursts
        would leave banks idle and overstate latency by tens of percent.
    reads : bool
        Model inference reads: each layer reads its input activations and its weights
        before it computes (``False``: the write-only model).
    scheduler : str
        ``read_first`` (reads before writes, the write queue drains between the watermarks)
        or ``in_order`` (one FIFO per bank); see :mod:`memsim.timing.model`.
    write_drain_high_units, write_drain_low_units : int
        Write-queue watermarks of ``read_first``: draining starts at the high one and stops
        at the low one (low <= high); both are capped at ``write_queue_depth_units``
        (:attr:`drain_watermarks`).
    read_burst_units : int
        Simulation granularity of reads: up to this many consecutive accesses of one read
        bound for the same bank are served as one SimPy event (reads hold no queue entry).
    weight_memory : str
        Where the weights are read from: ``rram``, ``sram`` or ``offchip``.
    activation_capacity_bits : int
        Activation buffer for area and standby, in bits of the traced format; 0: the peak
        live activations of the trace (a layer's input and output together).
    technology : str
        Area/leakage preset (``configs/cost/``) or a TOML path.
    """

    n_banks: int = 4
    write_width_bits: int = 72
    interleave_units: int = 1
    write_queue_depth_units: int = 32
    throughput_ops_per_ns: float = 256.0
    t_access_ns: float = 0.64
    sram_banks: int = 1
    overlap: bool = True
    burst_units: int = 8
    reads: bool = True
    scheduler: str = "read_first"
    write_drain_high_units: int = 32
    write_drain_low_units: int = 16
    read_burst_units: int = 1024
    weight_memory: str = "rram"
    activation_capacity_bits: int = 0
    technology: str = "default"

    def __post_init__(self) -> None:
        owner = "MemoryParams"
        for name in (
            "n_banks",
            "write_width_bits",
            "interleave_units",
            "write_queue_depth_units",
            "sram_banks",
            "burst_units",
            "read_burst_units",
        ):
            check_range(owner, name, getattr(self, name), kind=int, low=1)
        check_choice(owner, "scheduler", self.scheduler, SCHEDULERS)
        check_choice(owner, "weight_memory", self.weight_memory, WEIGHT_MEMORIES)
        check_range(
            owner, "activation_capacity_bits", self.activation_capacity_bits, kind=int, low=0
        )
        check_range(owner, "write_drain_high_units", self.write_drain_high_units, kind=int, low=1)
        check_range(
            owner,
            "write_drain_low_units",
            self.write_drain_low_units,
            kind=int,
            low=0,
            high=self.write_drain_high_units,
        )
        check_range(
            owner, "throughput_ops_per_ns", self.throughput_ops_per_ns, low=0, low_open=True
        )
        check_range(owner, "t_access_ns", self.t_access_ns, low=0)
        for name in ("overlap", "reads"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(
                    f"The '{name}' parameter of {owner} must be a bool. Got {getattr(self, name)!r}."
                )

    @property
    def drain_watermarks(self) -> tuple[int, int]:
        """(high, low) write-queue watermarks, capped at the queue depth."""
        high = min(self.write_drain_high_units, self.write_queue_depth_units)
        return high, min(self.write_drain_low_units, high)

    @property
    def effective_burst_units(self) -> int:
        """Units per simulated burst: ``burst_units`` capped so every bank can have one queued."""
        return max(1, min(self.burst_units, self.write_queue_depth_units // self.n_banks))


def _as_set(value: object) -> str:
    """An override's value as ``--set`` would spell it (TOML), else its repr (from Python)."""
    try:
        return toml_value(value)
    except TypeError:
        return repr(value)


def preset_names() -> list[str]:
    """Names of the shipped memory-system presets (``configs/memory/*.toml``)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_memory_params(name_or_path: str | os.PathLike = "default", **overrides) -> MemoryParams:
    """Load memory-system parameters from a preset name or a TOML file.

    Parameters
    ----------
    name_or_path : str or path-like
        A preset name from :func:`preset_names` (``"default"``) or the path of a TOML file
        whose top-level keys are :class:`MemoryParams` fields.
    **overrides
        Field values that replace the file's (for sweeps and tests).

    Raises
    ------
    ConfigError
        Unknown preset (the known ones are listed), unknown or ill-typed keys, or a value out
        of range; the message names the key and the file.
    """
    path = preset_path(name_or_path, PRESET_DIR, "memory")
    data = load_toml(path)
    data.pop("description", None)
    # A bad override is named as one, not blamed on the file, in the experiment loader's words.
    given = ", ".join(f"{k}={_as_set(v)}" for k, v in overrides.items())
    source = f"{path} (with --set {given})" if overrides else path
    return build(MemoryParams, {**data, **overrides}, source=source)
