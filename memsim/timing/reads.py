"""Inference reads: what each layer reads before it computes, as :class:`ReadPlan` objects.

Where it sits: beside the write plans, before :func:`memsim.timing.simulate`. A layer (an
activation record of the trace) reads

* its **input activations**: the stored output of the previous activation or input record,
  as the policy stored it (the producer's :class:`WritePlan`: its RRAM units with their
  devices, check bits and ECC decode, and its SRAM bits), from the banks the writes went to.
  The first layer's input, when the trace has no ``input`` record, comes from outside the
  modelled memory. Networks are read as a chain (a residual branch's second input is not
  modelled);
* its **weights**: every ``weight``/``bias`` record of the trace named ``<layer>.<param>``
  (the trace must include weights, ``trace_model(..., include_weights=True)``), stored plainly
  (one device per bit, no policy) in ``MemoryParams.weight_memory``: RRAM banks, SRAM banks
  or the off-chip channel, in accesses of :func:`rram_word_bits`, ``device.sram.word_bits``
  or :data:`OFFCHIP_WORD_BITS`. Each weight is read once per inference.

Read energy per bit and read times come from the device bundle (the programming condition's
``e_read_pj_per_bit``/``t_read_ns``, the SRAM's, the off-chip memory's); the RRAM read of a
unit takes ``t_access_ns + passes × t_read_ns + t_decode_ns`` with as many passes as its write
(``unit_bits × devices_per_bit`` over ``write_width_bits`` sense/drive columns).
"""

from __future__ import annotations

from typing import Any

from memsim.timing.mapping import passes, write_addresses
from memsim.timing.params import MemoryParams
from memsim.timing.plan import ReadPlan, WritePlan
from memsim.trace.records import Trace

#: Record roles whose tensors a later layer reads as its input.
ACTIVATION_ROLES = ("activation", "input")

#: Record roles read as weights.
WEIGHT_ROLES = ("weight", "bias")

#: Bits per access of the off-chip channel: the 64-bit DDR channel whose per-word time and
#: per-64-bit read energy the device bundle's ``[offchip]`` prices (docs/sources.md §9:
#: DRAMSim3 DDR4_8Gb_x8_3200, ZigZag tpu_like.yaml DRAM 700 pJ per 64 bits) [V].
OFFCHIP_WORD_BITS = 64

#: RRAM bits per weight read when the device bundle sets no ``unit_bits``: the 64-bit word of
#: NVMExplorer's runs (WordWidth 64) and NVMain's RRAM config (BusWidth 64), docs/sources.md
#: §1 row 19 [V]. The policies' RRAM write unit follows the same rule (``policies.costs``),
#: so weights are read in the units activations are written in.
RRAM_WORD_BITS = 64


def rram_word_bits(device: Any) -> int:
    """RRAM bits per access on ``device``: its ``unit_bits`` if it sets one, else
    :data:`RRAM_WORD_BITS`."""
    return int(getattr(device, "unit_bits", RRAM_WORD_BITS))


def activation_reads(
    trace: Trace, plans: dict[int, WritePlan], params: MemoryParams
) -> list[ReadPlan]:
    """Each activation record reads the stored output of the activation record before it."""
    addresses = write_addresses(len(trace), plans)
    reads = []
    producer: int | None = None
    for record in trace.records:
        if record.role not in ACTIVATION_ROLES:
            continue
        if record.role == "activation" and producer is not None and producer in plans:
            plan = plans[producer]
            rram_first, sram_first = addresses[producer]
            energy = plan.read_energy_pj
            if plan.n_units:
                unit_ns = (
                    params.t_access_ns + passes(plan, params) * plan.t_read_ns + plan.t_decode_ns
                )
                reads.append(
                    ReadPlan(
                        name=plan.name,
                        record_index=record.index,
                        memory="rram",
                        units=plan.n_units,
                        t_unit_ns=unit_ns,
                        first_unit=rram_first,
                        energy_pj={
                            k: float(energy.get(k, 0.0)) for k in ("read_rram", "ecc_decode")
                        },
                    )
                )
            if plan.n_sram_units:
                reads.append(
                    ReadPlan(
                        name=plan.name,
                        record_index=record.index,
                        memory="sram",
                        units=plan.n_sram_units,
                        t_unit_ns=plan.t_sram_ns,
                        first_unit=sram_first,
                        energy_pj={"read_sram": float(energy.get("read_sram", 0.0))},
                    )
                )
        producer = record.index
    return reads


def weight_reads(trace: Trace, device: Any, params: MemoryParams) -> list[ReadPlan]:
    """The weight reads of every layer, from ``params.weight_memory`` (module notes)."""
    layers = {r.name: r.index for r in trace.records if r.role == "activation"}
    memory = params.weight_memory
    cond = device.condition
    reads = []
    next_unit = 0
    for record in trace.records:
        if record.role not in WEIGHT_ROLES:
            continue
        layer = layers.get(record.name.rpartition(".")[0])
        if layer is None:
            continue
        bits = record.total_bits
        if memory == "rram":
            word = rram_word_bits(device)
            units = -(-bits // word)
            unit_ns = params.t_access_ns + -(-word // params.write_width_bits) * cond.t_read_ns
            energy = {"read_rram": bits * cond.e_read_pj_per_bit}
        elif memory == "sram":
            units = -(-bits // device.sram.word_bits)
            unit_ns = device.sram.t_access_ns
            energy = {"read_sram": bits * device.sram.e_read_pj_per_bit}
        else:
            units = -(-bits // OFFCHIP_WORD_BITS)
            unit_ns = device.offchip.t_word_ns
            energy = {"read_offchip": bits * device.offchip.e_read_pj_per_bit}
        reads.append(
            ReadPlan(
                name=record.name,
                record_index=layer,
                memory=memory,
                units=units,
                t_unit_ns=unit_ns,
                first_unit=next_unit,
                energy_pj=energy,
                kind="weight",
            )
        )
        next_unit += units
    return reads


def read_plans(
    trace: Trace, plans: list[WritePlan], device: Any, params: MemoryParams
) -> list[ReadPlan]:
    """Every inference read of ``trace`` (activations under the policy's plans, and weights)."""
    by_index = {p.record_index: p for p in plans}
    return activation_reads(trace, by_index, params) + weight_reads(trace, device, params)
