"""Which executor a run gets: local workers (:mod:`memsim.experiment.executor`) or Ray actors
(:mod:`memsim.experiment.ray_executor`), by its :class:`~memsim.experiment.config.RunOptions`.

Every study that evaluates points (the experiment's sweep, the mixed-policy search, the
binarized-network study) builds its executor here, so none ignores ``run.executor``. Ray itself
is imported only when a run asks for it.
"""

from __future__ import annotations

from memsim.experiment.config import RunOptions
from memsim.experiment.executor import Executor, make_executor
from memsim.experiment.ray_executor import RayExecutor, require_ray


def check_executor(run: RunOptions) -> None:
    """Refuse, before anything is written, a run whose executor cannot start (Ray missing)."""
    if run.executor == "ray":
        require_ray()


def executor_for(run: RunOptions) -> Executor:
    """The executor ``run`` asks for: ``run.workers`` Ray actors (on the cluster at
    ``run.address``, ``run.gpus_per_point`` of a GPU each), else :func:`make_executor`."""
    if run.executor == "ray":
        return RayExecutor(run.workers, address=run.address, gpus_per_point=run.gpus_per_point)
    return make_executor(run.workers)
