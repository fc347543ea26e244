"""Experiments: config → points → executor → results store → report.

=====================  ===========================================================
``config``             the TOML experiment config, validated into frozen dataclasses
``load``               reading a config file and resolving its plug-in names
``plugins``            resolving workload, policy, device and memory names in a config
``points``             one accuracy point: its task, seed and evaluation
``adaptive``           the adaptive sweep that places points where the curve drops
``executor``           serial and process-pool executors (``submit``/``next_done``)
``store``              the append-only results store and its folder
``memory``             the cost side: traces on the SimPy memory model, ``memory.csv``
``run``                orchestration: ``run_experiment``
=====================  ===========================================================
"""

from memsim.experiment.config import ExperimentConfig, RunOptions
from memsim.experiment.load import load_experiment
from memsim.experiment.run import run_experiment

__all__ = ["ExperimentConfig", "RunOptions", "load_experiment", "run_experiment"]
