"""memsim: noisy-RRAM activation storage for neural networks, accuracy next to what it costs.

Data flow: workload → write trace → policy → (noise channel → noisy inference → accuracy)
and (write plans → SimPy memory model → energy, latency) → joint report.

The public API (imported lazily, so that ``import memsim`` and ``memsim --help`` stay fast):

=======================  ==================================================================
``load_experiment``      read and validate an experiment config (TOML) → config, run options
``run_experiment``       run it: sweeps, memory model, fits, report, into a results folder
``RunOptions``           where and how to run (output folder, workers, device)
``flip`` / ``flip_``     exact independent bit flips on a tensor's stored bits
``BitFlip``              the noise channel of plain bit flips, as policies produce it
``NoisyNetwork``         a model whose every write goes through a noise channel
``trace_model``          the write trace of one inference (``Trace`` of ``WriteRecord``)
``simulate``             one inference's write plans on the SimPy memory model
``plan_trace``           a policy's write plans for every record of a trace
``get_policy``           a memory policy by name, table or list
``get_workload``         a registered workload (model, data, checkpoint)
=======================  ==================================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name → the module that defines it.
_API = {
    "load_experiment": "memsim.experiment.load",
    "run_experiment": "memsim.experiment.run",
    "RunOptions": "memsim.experiment.config",
    "ExperimentConfig": "memsim.experiment.config",
    "flip": "memsim.noise.api",
    "flip_": "memsim.noise.api",
    "BitFlip": "memsim.noise.channel",
    "NoisyNetwork": "memsim.inference.network",
    "trace_model": "memsim.trace.capture",
    "Trace": "memsim.trace.records",
    "WriteRecord": "memsim.trace.records",
    "simulate": "memsim.timing.simulate",
    "plan_trace": "memsim.timing.simulate",
    "get_policy": "policies.loading",
    "get_workload": "workloads.base",
}

__all__ = [
    "BitFlip",
    "ExperimentConfig",
    "NoisyNetwork",
    "RunOptions",
    "Trace",
    "WriteRecord",
    "__version__",
    "flip",
    "flip_",
    "get_policy",
    "get_workload",
    "load_experiment",
    "plan_trace",
    "run_experiment",
    "simulate",
    "trace_model",
]

if TYPE_CHECKING:
    from memsim.experiment.config import ExperimentConfig, RunOptions
    from memsim.experiment.load import load_experiment
    from memsim.experiment.run import run_experiment
    from memsim.inference.network import NoisyNetwork
    from memsim.noise.api import flip, flip_
    from memsim.noise.channel import BitFlip
    from memsim.timing.simulate import plan_trace, simulate
    from memsim.trace.capture import trace_model
    from memsim.trace.records import Trace, WriteRecord
    from policies.loading import get_policy
    from workloads.base import get_workload


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'memsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
