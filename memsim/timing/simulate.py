"""Simulate the writes of one traced inference: plans + trace + machine → :class:`MemoryResult`.

Where it sits: the last step of the cost side (docs/design.md §6). Inputs are the trace (execution
order and operation counts), one :class:`~memsim.timing.plan.WritePlan` per written record
(from a policy) and :class:`~memsim.timing.params.MemoryParams`. Pulse rounds are drawn per
write unit, vectorised per tensor, from a generator derived from ``seed`` and the record
index, so a result depends only on its inputs and seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd
import simpy

from memsim import rng as rng_mod
from memsim.timing.mapping import (
    Bursts,
    read_bursts,
    rram_bursts,
    sram_bursts,
    write_addresses,
)
from memsim.timing.model import SERVERS, LayerWork, MemorySystem, bank, processor
from memsim.timing.params import MemoryParams
from memsim.timing.plan import ENERGY_CATEGORIES, READ_CATEGORIES, ReadPlan, WritePlan
from memsim.timing.result import MemoryResult
from memsim.trace.records import Trace, WriteRecord

if TYPE_CHECKING:
    from memsim.device.params import DeviceParams


def _index_plans(plans: Iterable[WritePlan], trace: Trace) -> dict[int, WritePlan]:
    by_index: dict[int, WritePlan] = {}
    for plan in plans:
        if not isinstance(plan, WritePlan):
            raise TypeError(f"plans must be WritePlan objects. Got {type(plan).__name__}.")
        if not 0 <= plan.record_index < len(trace):
            raise ValueError(
                f"WritePlan '{plan.name}' has record_index {plan.record_index}, but the trace "
                f"has {len(trace)} records."
            )
        # WritePlan allows zero times (no verify, no ECC); a write itself must take time.
        if plan.n_units and plan.t_pulse_ns <= 0:
            raise ValueError(
                f"WritePlan '{plan.name}': t_pulse_ns must be positive for RRAM writes. "
                f"Got {plan.t_pulse_ns}."
            )
        if plan.n_sram_units and plan.t_sram_ns <= 0:
            raise ValueError(
                f"WritePlan '{plan.name}': t_sram_ns must be positive for SRAM writes. "
                f"Got {plan.t_sram_ns}."
            )
        if plan.record_index in by_index:
            raise ValueError(
                f"Two write plans for trace record {plan.record_index} ('{plan.name}')."
            )
        by_index[plan.record_index] = plan
    return by_index


def _index_reads(reads: Iterable[ReadPlan], trace: Trace) -> dict[int, list[ReadPlan]]:
    by_index: dict[int, list[ReadPlan]] = {}
    for read in reads:
        if not isinstance(read, ReadPlan):
            raise TypeError(f"reads must be ReadPlan objects. Got {type(read).__name__}.")
        if not 0 <= read.record_index < len(trace):
            raise ValueError(
                f"ReadPlan '{read.name}' has record_index {read.record_index}, but the trace "
                f"has {len(trace)} records."
            )
        by_index.setdefault(read.record_index, []).append(read)
    return by_index


def _layer_work(
    trace: Trace,
    plans: dict[int, WritePlan],
    reads: dict[int, list[ReadPlan]],
    params: MemoryParams,
    seed: int | None,
    deterministic: bool,
) -> list[LayerWork]:
    works = []
    addresses = write_addresses(len(trace), plans)
    for i, record in enumerate(trace.records):
        plan = plans.get(i)
        if plan is None:
            rram = sram = Bursts.empty()
        else:
            rram_first, sram_first = addresses[i]
            gen = None if deterministic else rng_mod.generator(seed, "timing", "rounds", i)
            rram = rram_bursts(plan, params, rram_first, gen, deterministic=deterministic)
            sram = sram_bursts(plan, params, sram_first)
        layer_reads = [(r.memory, read_bursts(r, params)) for r in reads.get(i, ()) if r.units]
        works.append(
            LayerWork(
                i, record.name, record.ops / params.throughput_ops_per_ns, rram, sram, layer_reads
            )
        )
    return works


def simulate(
    plans: Iterable[WritePlan],
    trace: Trace,
    params: MemoryParams | None = None,
    *,
    seed: int | None,
    deterministic: bool = False,
    reads: Iterable[ReadPlan] | None = None,
) -> MemoryResult:
    """Simulate one trace's compute and writes on a memory system.

    Parameters
    ----------
    plans : iterable of WritePlan
        At most one plan per trace record, matched by ``record_index``; records without a
        plan only compute (their tensor is not written to the simulated memory).
    trace : Trace
        The records in execution order; ``record.ops`` gives compute time.
    params : MemoryParams, optional
        The machine (default: ``MemoryParams()``, the ``default`` preset's values).
    seed : int or None
        Run seed; each record's rounds come from ``memsim.rng.generator(seed, "timing",
        "rounds", index)``. Required keyword so that results are reproducible by default.
    deterministic : bool
        Give every unit its expected number of rounds instead of a sampled one (closed forms).
    reads : iterable of ReadPlan, optional
        The inference reads (:func:`memsim.timing.reads.read_plans`); each layer waits for
        its reads before it computes. ``None``: the write-only model.

    Returns
    -------
    MemoryResult

    Notes
    -----
    With one bank, ``overlap = false``, no SRAM bits and deterministic rounds, the latency is
    exactly ``sum_i ops_i / throughput + sum_i n_i × (t_ecc + t_access + passes × E[R] ×
    (t_pulse + t_verify))`` for the ``n_i`` units of record ``i``. With ``B`` banks and unit
    interleaving the write term of record ``i`` becomes ``ceil(n_i / B) × (...)``: ``n_i / B``
    plus a tail of at most one unit time. Reads add, per layer and with no contention, the
    time its busiest bank needs for the layer's reads (one bank: the sum of the read times).
    """
    params = MemoryParams() if params is None else params
    if not isinstance(params, MemoryParams):
        raise TypeError(f"params must be a MemoryParams. Got {type(params).__name__}.")
    if not isinstance(trace, Trace):
        raise TypeError(f"trace must be a memsim.trace.records.Trace. Got {type(trace).__name__}.")
    by_index = _index_plans(plans, trace)
    read_index = _index_reads(() if reads is None else reads, trace)
    works = _layer_work(trace, by_index, read_index, params, seed, deterministic)
    offchip = int(any(r.memory == "offchip" for rs in read_index.values() for r in rs))

    env = simpy.Environment()
    system = MemorySystem(env, params, len(works), offchip=offchip)
    for kind, servers in system.banks.items():
        for b in range(len(servers)):
            env.process(bank(env, system, kind, b))
    env.process(processor(env, system, works))
    env.run()
    # SimPy numbers every scheduled event from one counter: its next value is the count.
    events = next(env._eid) if hasattr(env, "_eid") else -1
    return _result(
        env.now, works, by_index, read_index, system, params, seed, deterministic, events
    )


def _result(
    latency_ns, works, plans, reads, system, params, seed, deterministic, events
) -> MemoryResult:
    mon = system.monitors
    columns = [
        "start_ns",
        "stall_read_ns",
        "compute_ns",
        "stall_queue_ns",
        "stall_dependency_ns",
        "issued_ns",
    ]
    layers = pd.DataFrame(mon.layer_rows, columns=columns, dtype=float)
    layers.insert(0, "index", [w.index for w in works])
    layers.insert(1, "name", [w.name for w in works])
    rram_units = np.array([int(w.rram.units.sum()) for w in works], dtype=np.int64)
    sram_units = np.array([int(w.sram.units.sum()) for w in works], dtype=np.int64)
    done = np.array(mon.done_ns)
    # A record without writes is "written" when the processor has issued it.
    layers["writes_done_ns"] = np.where(rram_units + sram_units > 0, done, layers["issued_ns"])
    layers["rram_units"] = rram_units
    layers["sram_units"] = sram_units
    layers["bursts"] = [len(w.rram) + len(w.sram) for w in works]
    rounds = np.array([float(w.rram.rounds.sum()) for w in works])
    layers["rounds_mean"] = rounds / np.maximum(rram_units, 1)
    for cat in ENERGY_CATEGORIES:
        layers[f"energy_{cat}_pj"] = [
            float(plans[w.index].energy_pj.get(cat, 0.0)) if w.index in plans else 0.0
            for w in works
        ]
    for cat in READ_CATEGORIES:
        layers[f"energy_{cat}_pj"] = [
            float(sum(r.energy_pj.get(cat, 0.0) for r in reads.get(w.index, ()))) for w in works
        ]
    read_energy = _by_category(layers, READ_CATEGORIES)
    energy = _by_category(layers, ENERGY_CATEGORIES)
    keys = sorted(mon.busy_write_ns, key=lambda k: (SERVERS.index(k[0]), k[1]))
    busy_read = np.array([mon.busy_read_ns[k] for k in keys])
    busy_write = np.array([mon.busy_write_ns[k] for k in keys])
    busy = busy_read + busy_write

    def share(x: np.ndarray) -> np.ndarray:
        return x / latency_ns if latency_ns > 0 else np.zeros(len(keys))

    banks = pd.DataFrame(
        {
            "memory": [k[0] for k in keys],
            "bank": [k[1] for k in keys],
            "busy_ns": busy,
            "units": [mon.units[k] for k in keys],
            "bursts": [mon.bursts[k] for k in keys],
            "utilisation": share(busy),
            "busy_read_ns": busy_read,
            "busy_write_ns": busy_write,
            "read_utilisation": share(busy_read),
            "write_utilisation": share(busy_write),
        }
    )
    t = np.append(np.asarray(mon.queue_t_ns), latency_ns)
    level = np.asarray(mon.queue_level, dtype=float)
    queue_mean = float(np.dot(np.diff(t), level) / latency_ns) if latency_ns > 0 else 0.0
    stall_q = float(layers["stall_queue_ns"].sum())
    stall_d = float(layers["stall_dependency_ns"].sum())
    stall_r = float(layers["stall_read_ns"].sum())
    return MemoryResult(
        latency_ns=float(latency_ns),
        compute_ns=float(layers["compute_ns"].sum()),
        stall_ns=stall_q + stall_d + stall_r,
        stall_queue_ns=stall_q,
        stall_dependency_ns=stall_d,
        queue_mean_units=queue_mean,
        queue_max_units=int(level.max()),
        events=int(events),
        energy_pj=float(energy["energy_pj"].sum()),
        layers=layers,
        banks=banks,
        energy=energy,
        params=params,
        seed=seed,
        deterministic=deterministic,
        stall_read_ns=stall_r,
        read_energy_pj=float(read_energy["energy_pj"].sum()),
        read_energy=read_energy,
    )


#: Trace roles written per inference (weights are programmed once, not per inference).
WRITTEN_ROLES = ("activation", "input")


class Planner(Protocol):
    """What :func:`plan_trace` asks of a policy (every :class:`policies.base.Policy` is one)."""

    def plan(self, record: WriteRecord, device: DeviceParams) -> WritePlan: ...


def _by_category(layers: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    """Energy per category summed over layers, with each category's share of the total."""
    by_cat = layers[[f"energy_{cat}_pj" for cat in categories]].sum().to_numpy()
    total = float(by_cat.sum())
    return pd.DataFrame(
        {
            "category": list(categories),
            "energy_pj": by_cat,
            "share": by_cat / total if total > 0 else np.zeros(len(by_cat)),
        }
    )


def plan_trace(
    policy: Planner, trace: Trace, device: DeviceParams, *, roles: Iterable[str] = WRITTEN_ROLES
) -> list[WritePlan]:
    """Ask ``policy`` for the write plan of every record of ``trace`` whose role is in ``roles``.

    Parameters
    ----------
    policy : policies.base.Policy
        Anything with ``plan(record, device) -> WritePlan``.
    trace : Trace
        The records to plan.
    device : memsim.device.DeviceParams
        The device parameters the policy reads.
    roles : iterable of str
        Record roles to plan; by default activations and the input.
    """
    roles = tuple(roles)
    plans = []
    for record in trace.records:
        if record.role in roles:
            plan = policy.plan(record, device)
            if not isinstance(plan, WritePlan):
                raise TypeError(
                    f"{type(policy).__name__}.plan returned {type(plan).__name__} for record "
                    f"'{record.name}'; expected a WritePlan."
                )
            plans.append(plan)
    return plans
