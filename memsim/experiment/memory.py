"""The cost side of an experiment: energy, latency, area and standby per inference.

Sits after the accuracy sweep in :func:`memsim.experiment.run.run_experiment`. :func:`memory_table`
traces each workload × stored format (:mod:`memsim.trace.capture`, weights included), plans every
activation write with each policy on each programming condition's device, adds the inference
reads (:mod:`memsim.timing.reads`) and runs the SimPy memory model (:func:`memsim.timing.simulate`);
area and standby come from the policy's footprint (:mod:`memsim.cost`). The result is the tidy
``memory.csv`` table the report reads (columns in ``docs/results.md``).

Total energy per inference = write energy (pulses, verify reads, pre-reads, SRAM, ECC encode)
+ read energy (RRAM, SRAM, off-chip, ECC decode) + standby energy (leakage × latency).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memsim.experiment.plugins import (
    calibration_images,
    load_condition_device,
    load_memory_params,
    make_policy,
    pairs_of,
)
from memsim.inference.int8 import INT_FORMATS

if TYPE_CHECKING:
    from memsim.experiment.config import ExperimentConfig


def cost_columns(trace, plans, result, params, tech) -> dict[str, float]:
    """The read, area, standby and total columns of one ``memory.csv`` row (module notes)."""
    from memsim.cost import area, footprint, idle_power_nw, leakage_nw, standby_energy_pj
    from memsim.timing import READ_CATEGORIES

    fp = footprint(trace, plans, params)
    size = area(fp, tech)
    leak_nw = leakage_nw(fp, tech)
    standby_pj = standby_energy_pj(leak_nw, result.latency_ns)
    total_pj = result.energy_pj + result.read_energy_pj + standby_pj
    read = dict(zip(result.read_energy["category"], result.read_energy["energy_pj"]))
    busy = result.utilisation("rram")
    return {
        "read_energy_pj_per_inference": float(result.read_energy_pj),
        **{f"energy_{c}_pj": float(read.get(c, 0.0)) for c in READ_CATEGORIES},
        "read_stall_ns_per_inference": float(result.stall_read_ns),
        "rram_read_utilisation": busy["read_utilisation"],
        "rram_write_utilisation": busy["write_utilisation"],
        "standby_energy_pj_per_inference": float(standby_pj),
        "leakage_power_uw": leak_nw * 1e-3,
        "idle_power_uw": idle_power_nw(fp, tech) * 1e-3,
        "total_energy_pj_per_inference": float(total_pj),
        "area_mm2": size.total_mm2,
        "area_rram_mm2": size.rram_mm2,
        "area_sram_mm2": size.sram_mm2,
        "area_logic_mm2": size.logic_mm2,
        "rram_devices": fp.rram_devices,
        "sram_bits": fp.sram_bits,
        "energy_delay_pj_ns": float(total_pj * result.latency_ns),
        "energy_delay_area_pj_ns_mm2": float(total_pj * result.latency_ns * size.total_mm2),
    }


#: Columns that follow one simulated inference's latency, and the columns of their spread.
SPREAD_COLUMNS = {
    "latency_ns_per_inference": "latency_ns_sd",
    "standby_energy_pj_per_inference": "standby_energy_pj_sd",
    "total_energy_pj_per_inference": "total_energy_pj_sd",
    "energy_delay_pj_ns": "energy_delay_pj_ns_sd",
    "energy_delay_area_pj_ns_mm2": "energy_delay_area_pj_ns_mm2_sd",
}


def relative_spreads(row: Mapping[str, Any], rel_latency: float) -> dict[str, float]:
    """Relative spread, to first order, of each ``memory.csv`` column that moves with the
    latency draw, given the latency's own (``latency_ns_sd / latency``): standby is leakage ×
    latency, so it moves as the latency does, and the total energy by its standby share of
    that. Columns not listed (write and read energy, area) do not move. A product of columns
    moves by the sum of its factors' relative spreads, since one draw moves them all."""
    total = float(row.get("total_energy_pj_per_inference", math.nan))
    standby = float(row.get("standby_energy_pj_per_inference", 0.0))
    return {
        "latency_ns_per_inference": rel_latency,
        "standby_energy_pj_per_inference": rel_latency,
        "total_energy_pj_per_inference": standby * rel_latency / total if total > 0 else 0.0,
    }


def derived_sds(row: Mapping[str, Any]) -> dict[str, float]:
    """Standard deviations of the columns that follow the latency draw, from ``latency_ns_sd``
    (:func:`relative_spreads`); the total energy moves by its standby term's spread."""
    latency, sd = float(row["latency_ns_per_inference"]), float(row["latency_ns_sd"])
    rel = relative_spreads(row, sd / latency if latency > 0 else 0.0)
    standby_sd = float(row["standby_energy_pj_per_inference"]) * rel["latency_ns_per_inference"]
    rel_delay = rel["total_energy_pj_per_inference"] + rel["latency_ns_per_inference"]
    return {
        "standby_energy_pj_sd": standby_sd,
        "total_energy_pj_sd": standby_sd,
        "energy_delay_pj_ns_sd": float(row["energy_delay_pj_ns"]) * rel_delay,
        "energy_delay_area_pj_ns_mm2_sd": float(row["energy_delay_area_pj_ns_mm2"]) * rel_delay,
    }


def memory_table(
    config: ExperimentConfig, conditions: Sequence[Mapping[str, Any]], *, progress: bool = False
):
    """Energy and latency per inference for each workload × format × policy × condition.

    Traces each workload once per stored format on ``memory.trace_images`` real inputs, plans
    every record with each policy on each programming condition's device, and simulates.

    A row is one simulated inference. Where pulse rounds are random, ``memory.latency_draws``
    inferences are simulated (the row's first, then seeds derived from it) and
    ``latency_ns_sd`` is the spread of their latencies: the uncertainty of the row's latency as
    an estimate of the mean, and how much one inference's differs from the next. The columns
    that follow from the latency (stall, standby, total energy, energy-delay) are the first
    inference's and vary with it.
    """
    import statistics

    import pandas as pd
    from tqdm.auto import tqdm

    from memsim.cost import load_technology
    from memsim.experiment.points import load_workload
    from memsim.rng import child_seed
    from memsim.timing import ENERGY_CATEGORIES, plan_trace, simulate
    from memsim.timing.reads import read_plans
    from memsim.trace.capture import trace_model

    params = load_memory_params(config.memory.preset)
    tech = load_technology(params.technology)
    devices = {
        c["condition"]: load_condition_device(config.device, cond)
        for c, cond in zip(conditions, config.conditions or (None,))
    }
    rows = []
    traces: dict = {}
    pairs = pairs_of(config)
    bar = tqdm(
        total=len(config.workloads) * len(pairs) * len(devices),
        desc="memory",
        unit="sim",
        disable=not progress,
    )
    for wspec in config.workloads:
        workload, model = load_workload(wspec)
        x, _ = workload.samples(
            config.sweep.split, config.memory.trace_images, "'memory.trace_images'"
        )
        for pspec, fmt in pairs:
            policy = make_policy(pspec)
            stored = policy.storage_format(fmt)
            if (wspec.label, stored) not in traces:
                calibration = None
                if stored in INT_FORMATS:
                    calibration = calibration_images(workload, config.sweep.calibration_images)
                traces[wspec.label, stored] = trace_model(
                    model,
                    x,
                    stored,
                    workload_name=wspec.label,
                    granularity=config.granularity_of(wspec),
                    noisy_input=config.sweep.noisy_input,
                    calibration=calibration,
                    include_weights=True,
                )
            trace = traces[wspec.label, stored]
            for cond, device in devices.items():
                plans = plan_trace(policy, trace, device)
                reads = read_plans(trace, plans, device, params) if params.reads else None
                seed = child_seed(config.seed, "memory", wspec.label, fmt, pspec.label, cond)
                res = simulate(plans, trace, params, seed=seed, reads=reads)
                draws = config.memory.latency_draws if any(p.random_rounds for p in plans) else 1
                latencies = [res.latency_ns] + [
                    simulate(
                        plans, trace, params, seed=child_seed(seed, "draw", d), reads=reads
                    ).latency_ns
                    for d in range(1, draws)
                ]
                bar.update(1)
                energy = dict(zip(res.energy["category"], res.energy["energy_pj"]))
                rram = res.banks[res.banks["memory"] == "rram"]
                rows.append(
                    {
                        "workload": wspec.label,
                        "format": fmt,
                        "policy": pspec.label,
                        "condition": cond,
                        "stored_format": stored,
                        "energy_pj_per_inference": float(res.energy_pj),
                        "latency_ns_per_inference": float(res.latency_ns),
                        # exact arithmetic: equal draws give 0, not a rounding residue
                        "latency_ns_sd": statistics.stdev(latencies) if draws > 1 else 0.0,
                        "latency_draws": draws,
                        "compute_ns_per_inference": float(res.compute_ns),
                        "stall_ns_per_inference": float(res.stall_ns),
                        "rram_utilisation": float(rram["utilisation"].mean()) if len(rram) else 0.0,
                        "written_bits_per_inference": int(trace.written_bits),
                        "granularity": trace.meta.get("granularity", ""),
                        "written_elements_per_inference": int(trace.written_elements),
                        **{f"energy_{c}_pj": float(energy.get(c, 0.0)) for c in ENERGY_CATEGORIES},
                        **cost_columns(trace, plans, res, params, tech),
                    }
                )
                rows[-1].update(derived_sds(rows[-1]))
    bar.close()
    return pd.DataFrame(rows)


def writes_table(config: ExperimentConfig):
    """The write points of each workload at its granularity: one row per kind of write.

    Columns: ``workload``, ``granularity`` (what was used: ``module`` when ``op`` fell back),
    ``fallback`` (why, or empty), ``kind`` (the producing module's class or the operation),
    ``writes`` (write points of that kind per inference) and ``elements_per_image``.
    Write points do not depend on the storage format; they are found on two float32 inputs.
    """
    import warnings

    import pandas as pd

    from memsim.experiment.points import load_workload
    from memsim.inference.graph import make_taps

    rows = []
    for wspec in config.workloads:
        workload, model = load_workload(wspec)
        x, _ = workload.dataset(config.sweep.split, limit=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the fallback is a column
            taps = make_taps(
                model.float().eval(),
                x.float(),
                config.granularity_of(wspec),
                noisy_input=config.sweep.noisy_input,
            )
        kinds: dict[str, list[int]] = {}
        for wp in taps.points:
            count = kinds.setdefault(wp.module_type, [0, 0])
            count[0] += 1
            count[1] += wp.numel
        for kind, (writes, elements) in kinds.items():
            rows.append(
                {
                    "workload": wspec.label,
                    "granularity": taps.granularity,
                    "fallback": taps.fallback,
                    "kind": kind,
                    "writes": writes,
                    "elements_per_image": elements,
                }
            )
    return pd.DataFrame(
        rows,
        columns=["workload", "granularity", "fallback", "kind", "writes", "elements_per_image"],
    )
