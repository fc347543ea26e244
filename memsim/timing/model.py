"""The SimPy memory system: a processor, a bounded write queue, banks that serve reads and writes.

Where it sits: :func:`memsim.timing.simulate` prepares one :class:`LayerWork` per trace
record (its reads, compute time and write bursts from :mod:`memsim.timing.mapping`), runs the
processes below in one ``simpy.Environment`` and turns their monitors into DataFrames. SimPy
owns time and contention only; energy and rounds were decided before the run.

Processes (generator functions taking ``env`` first):

* :func:`processor` runs the layers in order. A layer first reads its input activations and
  its weights (read bursts posted to the RRAM banks, the SRAM banks or the off-chip channel)
  and waits until they are all served (the read stall), then computes, then issues its RRAM
  write bursts into the bounded write queue (stalling while the queue has fewer free entries
  than a burst needs) and posts its SRAM write bursts. Without overlap it then waits for the
  layer's writes.
* :func:`bank` serves one bank: one timeout per burst, chosen by the controller's scheduler
  (:class:`BankQueues`); a written burst frees its write-queue entries (an entry is held
  until its unit is written: write-verify compares against it).

Schedulers (``MemoryParams.scheduler``):

* ``in_order``: each bank serves reads and writes in arrival order (one FIFO).
* ``read_first``: reads first, as NVMain's FRFCFS-WQF does: a bank serves its waiting
  reads before its waiting writes, except while the write queue drains. Draining starts when
  the queue holds ``write_drain_high_units`` entries and stops when it is down to
  ``write_drain_low_units``; while draining, banks serve writes first. Service is not
  pre-empted: a read that arrives during a write burst waits for the burst.

Verify reads and DCW pre-reads are part of a write unit's service time, so they hold the
bank exactly like the inference reads they compete with.

PERF: the write queue and the bank queues are small classes over ``collections.deque`` and
``env.event()`` rather than ``simpy.Container``/``simpy.Store``. Those resources schedule an
event for every put and get even when it succeeds at once (about five events per burst);
here an event is scheduled only when a process really waits, so a burst costs one timeout
plus the occasional wake-up (benchmarks/memory_model.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import simpy

from memsim.timing.mapping import Bursts
from memsim.timing.params import MemoryParams

#: Kinds of servers, in report order.
SERVERS = ("rram", "sram", "offchip")


@dataclass
class LayerWork:
    """What the processor does for one trace record."""

    index: int
    name: str
    compute_ns: float
    rram: Bursts
    sram: Bursts
    reads: list[tuple[str, Bursts]] = field(default_factory=list)


@dataclass
class Monitors:
    """Plain lists and counters filled during the run; frames are built after ``env.run()``."""

    n_layers: int
    servers: dict[str, int]
    queue_t_ns: list[float] = field(default_factory=lambda: [0.0])
    queue_level: list[int] = field(default_factory=lambda: [0])
    layer_rows: list[dict] = field(default_factory=list)
    busy_read_ns: dict[tuple[str, int], float] = field(default_factory=dict)
    busy_write_ns: dict[tuple[str, int], float] = field(default_factory=dict)
    units: dict[tuple[str, int], int] = field(default_factory=dict)
    bursts: dict[tuple[str, int], int] = field(default_factory=dict)
    done_ns: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        for kind, n in self.servers.items():
            for b in range(n):
                self.busy_read_ns[kind, b] = 0.0
                self.busy_write_ns[kind, b] = 0.0
                self.units[kind, b] = 0
                self.bursts[kind, b] = 0
        self.done_ns = [0.0] * self.n_layers


class WriteQueue:
    """The controller's bounded write queue, counted in entries (one per write unit).

    One producer (the processor) takes entries with :meth:`put`; banks give them back with
    :meth:`release` when their units are written. A put that does not fit waits, in order.
    ``draining`` follows the high/low watermarks of the ``read_first`` scheduler.
    """

    def __init__(
        self, env: simpy.Environment, capacity: int, high: int, low: int, monitors: Monitors
    ) -> None:
        self.env = env
        self.capacity = capacity
        self.high = high
        self.low = low
        self.level = 0
        self.draining = False
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
        if self.level >= self.high:
            self.draining = True
        elif self.level <= self.low:
            self.draining = False
        self._monitors.queue_t_ns.append(self.env.now)
        self._monitors.queue_level.append(self.level)


#: A queued burst: (layer, units, service_ns, is_read).
Item = tuple[int, int, float, bool]


class BankQueues:
    """The bursts waiting for one bank, the scheduler's choice, and the idle server's wake-up."""

    def __init__(self, env: simpy.Environment, in_order: bool) -> None:
        self.env = env
        self.in_order = in_order
        self.reads: deque[Item] = deque()
        self.writes: deque[Item] = deque()  # in_order: every item, in arrival order
        self._idle: simpy.Event | None = None

    def put(self, item: Item) -> None:
        (self.reads if item[3] and not self.in_order else self.writes).append(item)
        event = self._idle
        if event is not None:
            self._idle = None
            event.succeed()

    def next(self, draining: bool) -> Item | None:
        """The burst to serve next (module notes), or ``None`` when nothing waits."""
        if self.reads and not (draining and self.writes):
            return self.reads.popleft()
        if self.writes:
            return self.writes.popleft()
        return None

    def wait(self) -> simpy.Event:
        self._idle = self.env.event()
        return self._idle


class Completion:
    """Per-layer counters of outstanding units, with an event when a layer's count reaches 0."""

    def __init__(self, env: simpy.Environment, n_layers: int) -> None:
        self.env = env
        self.pending = [0] * n_layers
        self._waiters: dict[int, simpy.Event] = {}

    def expect(self, layer: int, units: int) -> None:
        self.pending[layer] += units

    def done(self, layer: int, units: int) -> bool:
        """Count ``units`` of ``layer`` as done; True when the layer has none left."""
        self.pending[layer] -= units
        if self.pending[layer] == 0:
            waiter = self._waiters.pop(layer, None)
            if waiter is not None:
                waiter.succeed()
            return True
        return False

    def wait(self, layer: int) -> simpy.Event | None:
        """An event that fires when ``layer`` has nothing outstanding (None if already)."""
        if self.pending[layer] == 0:
            return None
        self._waiters[layer] = event = self.env.event()
        return event


class MemorySystem:
    """Shared state of one run: the write queue, the bank queues and per-layer completion."""

    def __init__(
        self, env: simpy.Environment, params: MemoryParams, n_layers: int, offchip: int = 0
    ) -> None:
        self.env = env
        self.params = params
        servers = {"rram": params.n_banks, "sram": params.sram_banks}
        if offchip:
            servers["offchip"] = offchip
        self.monitors = Monitors(n_layers, servers)
        self.queue = WriteQueue(
            env, params.write_queue_depth_units, *params.drain_watermarks, self.monitors
        )
        in_order = params.scheduler == "in_order"
        self.banks = {k: [BankQueues(env, in_order) for _ in range(n)] for k, n in servers.items()}
        self.writes = Completion(env, n_layers)
        self.reads = Completion(env, n_layers)

    def written(self, layer: int, units: int) -> None:
        """Called by a bank when ``units`` of ``layer`` are written."""
        if self.writes.done(layer, units):
            self.monitors.done_ns[layer] = self.env.now


def bank(env: simpy.Environment, system: MemorySystem, kind: str, index: int):
    """Serve one bank, one timeout per burst (process; idles when nothing waits)."""
    queues = system.banks[kind][index]
    key = (kind, index)
    mon = system.monitors
    holds_queue = kind == "rram"  # SRAM writes are posted; they hold no write-queue entry
    write_queue = system.queue
    while True:
        item = queues.next(holds_queue and write_queue.draining)
        if item is None:
            yield queues.wait()
            continue
        layer, units, service_ns, is_read = item
        yield env.timeout(service_ns)
        mon.units[key] += units
        mon.bursts[key] += 1
        if is_read:
            mon.busy_read_ns[key] += service_ns
            system.reads.done(layer, units)
            continue
        mon.busy_write_ns[key] += service_ns
        if holds_queue:
            write_queue.release(units)
        system.written(layer, units)


def _post(system: MemorySystem, kind: str, layer: int, bursts: Bursts, is_read: bool) -> None:
    """Post bursts that hold no write-queue entry (reads, SRAM writes) to their banks."""
    banks = system.banks[kind]
    count = system.reads if is_read else system.writes
    for b, u, s in zip(bursts.bank.tolist(), bursts.units.tolist(), bursts.service_ns.tolist()):
        count.expect(layer, u)
        banks[b].put((layer, u, s, is_read))


def processor(env: simpy.Environment, system: MemorySystem, layers: Sequence[LayerWork]):
    """Run the layers in order: read, compute, issue the writes, (without overlap) wait for them."""
    overlap = system.params.overlap
    queue = system.queue
    rram_banks = system.banks["rram"]
    for work in layers:
        start_ns = env.now
        stall_read_ns = 0.0
        if work.reads:
            for kind, bursts in work.reads:
                _post(system, kind, work.index, bursts, True)
            waiter = system.reads.wait(work.index)
            if waiter is not None:
                yield waiter
                stall_read_ns = env.now - start_ns
        if work.compute_ns > 0:
            yield env.timeout(work.compute_ns)
        _post(system, "sram", work.index, work.sram, False)
        stall_queue_ns = 0.0
        rram = work.rram
        for b, u, s in zip(rram.bank.tolist(), rram.units.tolist(), rram.service_ns.tolist()):
            system.writes.expect(work.index, u)
            wait = queue.put(u)
            if wait is not None:  # queue full: the processor stalls until entries free up
                t_ns = env.now
                yield wait
                stall_queue_ns += env.now - t_ns
            rram_banks[b].put((work.index, u, s, False))
        issued_ns = env.now
        stall_dependency_ns = 0.0
        if not overlap:
            waiter = system.writes.wait(work.index)
            if waiter is not None:
                yield waiter
                stall_dependency_ns = env.now - issued_ns
        system.monitors.layer_rows.append(
            {
                "start_ns": start_ns,
                "stall_read_ns": stall_read_ns,
                "compute_ns": work.compute_ns,
                "stall_queue_ns": stall_queue_ns,
                "stall_dependency_ns": stall_dependency_ns,
                "issued_ns": issued_ns,
            }
        )
