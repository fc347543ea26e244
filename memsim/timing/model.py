"""The SimPy memory system: a processor, a bounded write queue, RRAM banks and SRAM banks.

Where it sits: :func:`memsim.timing.simulate` prepares one :class:`LayerWork` per trace
record (compute time and the bursts from :mod:`memsim.timing.mapping`), runs the processes
below in one ``simpy.Environment`` and turns their monitors into DataFrames. SimPy owns time
and contention only; energy and rounds were decided before the run.

Processes (generator functions taking ``env`` first):

* :func:`processor` computes each layer, then issues its RRAM bursts into the bounded write
  queue (stalling while the queue has fewer free entries than the burst needs) and posts its
  SRAM bursts to the SRAM banks. Without overlap it then waits for the layer's writes.
* :func:`bank` serves one bank's FIFO: one timeout per burst, then frees the burst's queue
  entries (an entry is held until its unit is written: write-verify compares against it).

PERF: the write queue and the bank FIFOs are small classes over ``collections.deque`` and
``env.event()`` rather than ``simpy.Container``/``simpy.Store``. Those resources schedule an
event for every put and get even when it succeeds at once (about five events per burst);
here an event is scheduled only when a process really waits, so a burst costs one timeout
plus the occasional wake-up (about 1.3 events per burst on VGG-16; benchmarks/memory_model.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import simpy

from memsim.timing.mapping import Bursts
from memsim.timing.params import MemoryParams


@dataclass
class LayerWork:
    """What the processor does for one trace record."""

    index: int
    name: str
    compute_ns: float
    rram: Bursts
    sram: Bursts


@dataclass
class Monitors:
    """Plain lists and counters filled during the run; frames are built after ``env.run()``."""

    n_layers: int
    n_banks: int
    n_sram_banks: int
    queue_t_ns: list[float] = field(default_factory=lambda: [0.0])
    queue_level: list[int] = field(default_factory=lambda: [0])
    layer_rows: list[dict] = field(default_factory=list)
    busy_ns: dict[tuple[str, int], float] = field(default_factory=dict)
    units: dict[tuple[str, int], int] = field(default_factory=dict)
    bursts: dict[tuple[str, int], int] = field(default_factory=dict)
    done_ns: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        for kind, n in (("rram", self.n_banks), ("sram", self.n_sram_banks)):
            for b in range(n):
                self.busy_ns[kind, b] = 0.0
                self.units[kind, b] = 0
                self.bursts[kind, b] = 0
        self.done_ns = [0.0] * self.n_layers


class WriteQueue:
    """The controller's bounded write queue, counted in entries (one per write unit).

    One producer (the processor) takes entries with :meth:`put`; banks give them back with
    :meth:`release` when their units are written. A put that does not fit waits, in order.
    """

    def __init__(self, env: simpy.Environment, capacity: int, monitors: Monitors) -> None:
        self.env = env
        self.capacity = capacity
        self.level = 0
        self._monitors = monitors
        self._waiting: tuple[int, simpy.Event] | None = None  # the processor, if it waits

    def put(self, units: int) -> simpy.Event | None:
        """Take ``units`` entries; ``None`` if they were free, else an event that fires when taken."""
        if self.level + units <= self.capacity:
            self._take(units)
            return None
        self._waiting = (units, event := self.env.event())
        return event

    def release(self, units: int) -> None:
        """Free ``units`` entries (their units are written) and admit a waiting put that fits."""
        self.level -= units
        self._log()
        if self._waiting is not None and self.level + self._waiting[0] <= self.capacity:
            wanted, event = self._waiting
            self._waiting = None
            self._take(wanted)
            event.succeed()

    def _take(self, units: int) -> None:
        self.level += units
        self._log()

    def _log(self) -> None:
        self._monitors.queue_t_ns.append(self.env.now)
        self._monitors.queue_level.append(self.level)


class BankFifo:
    """The bursts waiting for one bank, and the wake-up event of its idle server."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.items: deque[tuple[int, int, float]] = deque()
        self._idle: simpy.Event | None = None

    def put(self, item: tuple[int, int, float]) -> None:
        self.items.append(item)
        if self._idle is not None:
            self._idle, event = None, self._idle
            event.succeed()

    def wait(self) -> simpy.Event:
        self._idle = self.env.event()
        return self._idle


class MemorySystem:
    """Shared state of one run: the write queue, the bank FIFOs and per-layer completion."""

    def __init__(self, env: simpy.Environment, params: MemoryParams, n_layers: int) -> None:
        self.env = env
        self.params = params
        self.monitors = Monitors(n_layers, params.n_banks, params.sram_banks)
        self.queue = WriteQueue(env, params.write_queue_depth_units, self.monitors)
        self.rram = [BankFifo(env) for _ in range(params.n_banks)]
        self.sram = [BankFifo(env) for _ in range(params.sram_banks)]
        self._pending = [0] * n_layers  # units of each layer not yet written
        self._waiters: dict[int, simpy.Event] = {}

    def expect(self, layer: int, units: int) -> None:
        self._pending[layer] += units

    def written(self, layer: int, units: int) -> None:
        """Called by a bank when ``units`` of ``layer`` are written."""
        self._pending[layer] -= units
        if self._pending[layer] == 0:
            self.monitors.done_ns[layer] = self.env.now
            waiter = self._waiters.pop(layer, None)
            if waiter is not None:
                waiter.succeed()

    def wait_written(self, layer: int) -> simpy.Event | None:
        """An event that fires when every unit of ``layer`` is written (None if already)."""
        if self._pending[layer] == 0:
            return None
        self._waiters[layer] = event = self.env.event()
        return event


def bank(env: simpy.Environment, system: MemorySystem, kind: str, index: int):
    """Serve one bank's FIFO, one timeout per burst (process; idles when the FIFO is empty)."""
    fifo = (system.rram if kind == "rram" else system.sram)[index]
    key = (kind, index)
    mon = system.monitors
    holds_queue = kind == "rram"  # SRAM writes are posted; they hold no write-queue entry
    while True:
        if not fifo.items:
            yield fifo.wait()
        layer, units, service_ns = fifo.items.popleft()
        yield env.timeout(service_ns)
        mon.busy_ns[key] += service_ns
        mon.units[key] += units
        mon.bursts[key] += 1
        if holds_queue:
            system.queue.release(units)
        system.written(layer, units)


def processor(env: simpy.Environment, system: MemorySystem, layers: Sequence[LayerWork]):
    """Run the layers in order: compute, issue the writes, and (without overlap) wait for them."""
    overlap = system.params.overlap
    queue = system.queue
    for work in layers:
        start_ns = env.now
        if work.compute_ns > 0:
            yield env.timeout(work.compute_ns)
        sram = work.sram
        for b, u, s in zip(sram.bank.tolist(), sram.units.tolist(), sram.service_ns.tolist()):
            system.expect(work.index, u)
            system.sram[b].put((work.index, u, s))
        stall_queue_ns = 0.0
        rram = work.rram
        for b, u, s in zip(rram.bank.tolist(), rram.units.tolist(), rram.service_ns.tolist()):
            system.expect(work.index, u)
            wait = queue.put(u)
            if wait is not None:  # queue full: the processor stalls until entries free up
                t_ns = env.now
                yield wait
                stall_queue_ns += env.now - t_ns
            system.rram[b].put((work.index, u, s))
        issued_ns = env.now
        stall_dependency_ns = 0.0
        if not overlap:
            waiter = system.wait_written(work.index)
            if waiter is not None:
                yield waiter
                stall_dependency_ns = env.now - issued_ns
        system.monitors.layer_rows.append(
            {
                "start_ns": start_ns,
                "compute_ns": work.compute_ns,
                "stall_queue_ns": stall_queue_ns,
                "stall_dependency_ns": stall_dependency_ns,
                "issued_ns": issued_ns,
            }
        )
