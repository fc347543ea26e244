"""Capacity a policy needs on chip for one inference: activations (peak live) and weights.

Activations: while a layer computes, its input and its output are stored together, so the
buffer must hold, at its peak over the trace, two consecutive activation tensors as the
policy stores them (:func:`peak_live`: RRAM devices and SRAM bits, each at its own peak).
A configured capacity (``MemoryParams.activation_capacity_bits``, in bits of the traced
format) replaces the peak; each technology's share of it scales with the policy's stored
cells per traced bit over the whole trace.

Weights: every ``weight``/``bias`` record of the trace, stored plainly, in the memory that
``MemoryParams.weight_memory`` names (off chip: no on-chip capacity).
"""

from __future__ import annotations

from collections.abc import Iterable

from memsim.cost.area import Footprint
from memsim.timing.params import MemoryParams
from memsim.timing.plan import WritePlan
from memsim.trace.records import Trace

WEIGHT_ROLES = ("weight", "bias")


def stored_cells(plan: WritePlan) -> tuple[int, int]:
    """RRAM devices and SRAM bits (shadow copies included) of one planned tensor."""
    return plan.rram_bits * plan.devices_per_bit, plan.sram_bits + plan.shadow_bits


def peak_live(trace: Trace, plans: Iterable[WritePlan]) -> tuple[int, int]:
    """Peak over consecutive planned tensors of (RRAM devices, SRAM bits) stored together."""
    by_index = {p.record_index: p for p in plans}
    peak_rram = peak_sram = 0
    previous = (0, 0)
    for record in trace.records:
        plan = by_index.get(record.index)
        if plan is None:
            continue
        current = stored_cells(plan)
        peak_rram = max(peak_rram, previous[0] + current[0])
        peak_sram = max(peak_sram, previous[1] + current[1])
        previous = current
    return peak_rram, peak_sram


def weight_bits(trace: Trace) -> int:
    """Bits of every weight and bias of the trace (0 if the trace has no weight records)."""
    return sum(r.total_bits for r in trace.records if r.role in WEIGHT_ROLES)


def footprint(trace: Trace, plans: Iterable[WritePlan], params: MemoryParams) -> Footprint:
    """What the policy behind ``plans`` keeps on chip for ``trace`` (module notes)."""
    plans = list(plans)
    if params.activation_capacity_bits:
        traced = sum(trace.records[p.record_index].total_bits for p in plans)
        cells = [stored_cells(p) for p in plans]
        scale = params.activation_capacity_bits / traced if traced else 0.0
        rram = round(scale * sum(c[0] for c in cells))
        sram = round(scale * sum(c[1] for c in cells))
    else:
        rram, sram = peak_live(trace, plans)
    weights = weight_bits(trace)
    if params.weight_memory == "rram":
        rram += weights
    elif params.weight_memory == "sram":
        sram += weights
    logic = tuple(sorted({block for p in plans for block in p.logic}))
    return Footprint(
        rram_devices=int(rram), sram_bits=int(sram), logic=logic, n_banks=params.n_banks
    )
