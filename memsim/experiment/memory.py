"""The cost side of an experiment: energy and latency per inference from the memory model.

Sits after the accuracy sweep in :func:`memsim.experiment.run.run_experiment`. :func:`memory_table`
traces each workload × stored format (:mod:`memsim.trace.capture`), plans every write record with each
policy on each programming condition's device, and runs the SimPy memory model
(:func:`memsim.timing.simulate`); the result is the tidy ``memory.csv`` table the report reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from memsim.experiment.plugins import (
    load_condition_device,
    load_memory_params,
    make_policy,
    pairs_of,
)

if TYPE_CHECKING:
    from memsim.experiment.config import ExperimentConfig


def memory_table(
    config: ExperimentConfig, conditions: Sequence[Mapping[str, Any]], *, progress: bool = False
):
    """Energy and latency per inference for each workload × format × policy × condition.

    Traces each workload once per stored format on ``memory.trace_images`` real inputs, plans
    every record with each policy on each programming condition's device, and simulates.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from memsim.experiment.points import load_workload
    from memsim.rng import child_seed
    from memsim.timing import ENERGY_CATEGORIES, simulate
    from memsim.trace.capture import trace_model

    params = load_memory_params(config.memory.preset)
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
        x, _ = workload.dataset(config.sweep.split, limit=config.memory.trace_images)
        for pspec, fmt in pairs:
            policy = make_policy(pspec)
            stored = policy.storage_format(fmt)
            if (wspec.label, stored) not in traces:
                calibration = None
                if stored == "int8":
                    calibration = workload.dataset("train", limit=config.sweep.calibration_images)[
                        0
                    ]
                traces[wspec.label, stored] = trace_model(
                    model,
                    x,
                    stored,
                    workload_name=wspec.label,
                    fused=config.sweep.fused,
                    noisy_input=config.sweep.noisy_input,
                    calibration=calibration,
                )
            trace = traces[wspec.label, stored]
            for cond, device in devices.items():
                plans = [policy.plan(r, device) for r in trace.records]
                seed = child_seed(config.seed, "memory", wspec.label, fmt, pspec.label, cond)
                res = simulate(plans, trace, params, seed=seed)
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
                        "compute_ns_per_inference": float(res.compute_ns),
                        "stall_ns_per_inference": float(res.stall_ns),
                        "rram_utilisation": float(rram["utilisation"].mean()) if len(rram) else 0.0,
                        "written_bits_per_inference": int(trace.written_bits),
                        **{f"energy_{c}_pj": float(energy.get(c, 0.0)) for c in ENERGY_CATEGORIES},
                    }
                )
    bar.close()
    return pd.DataFrame(rows)
