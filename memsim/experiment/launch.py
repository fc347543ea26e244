"""Which executor a run gets: local workers (:mod:`memsim.experiment.executor`) or Ray actors
(:mod:`memsim.experiment.ray_executor`), by its :class:`~memsim.experiment.config.RunOptions`.

Every study that evaluates points (the experiment's sweep, the mixed-policy search, the
binarized-network study) checks its run options with :func:`check_executor` and builds its
executor with :func:`executor_for` before it writes anything, so none ignores ``run.executor``
and a run that cannot start (Ray missing, a cluster that does not answer or cannot place the
workers, a device the workers lack) leaves no output behind. Ray itself is imported only when a
run asks for it.
"""

from __future__ import annotations

from memsim.compute import resolve_device
from memsim.experiment.config import RunOptions, SweepConfig
from memsim.experiment.executor import Executor, make_executor
from memsim.experiment.ray_executor import (
    RayExecutor,
    check_address,
    check_ray_device,
    require_ray,
    worker_device,
)


def check_executor(run: RunOptions, sweep: SweepConfig | None = None) -> str:
    """Refuse a run whose executor cannot start, before anything is written; return the torch
    device its workers compute on (``auto`` resolved: record and use this one). With the
    experiment's ``sweep``, also what of it that device cannot do: its bit-flip engine
    (:func:`check_engine`), and ``flush_denormals`` off the CPU
    (:func:`~memsim.inference.denormals.check_flush_device`).

    Local runs need ``run.device`` on this machine. Ray runs need Ray, a device the workers can
    use with their GPU share (:func:`~memsim.experiment.ray_executor.check_ray_device`; the
    driver itself may have no GPU), and a cluster address that answers. Whether the workers fit
    on the cluster is known once connected: :class:`RayExecutor` checks it.
    """
    run.check_combination()
    if run.executor != "ray":
        device = str(resolve_device(run.device))
    else:
        check_ray_device(run.device, run.gpus_per_point)
        require_ray()
        check_address(run.address)
        device = worker_device(run.device, run.gpus_per_point)
    if sweep is not None:
        check_engine(sweep.engine, device)
        if sweep.flush_denormals:
            from memsim.inference.denormals import check_flush_device

            check_flush_device(device)
    return device


def check_engine(engine: str, device: str) -> None:
    """Refuse a bit-flip engine that cannot run on ``device`` (``numba`` on CUDA) before anything
    is written, not at the first write of the first point."""
    import torch

    from memsim.noise.engines import get_engine

    try:
        get_engine(engine, torch.device(device))
    except ValueError as exc:
        raise ValueError(f"Engine {engine!r} on device {device!r}: {exc}") from None


def executor_for(run: RunOptions) -> Executor:
    """The executor ``run`` asks for: ``run.workers`` Ray actors (on the cluster at
    ``run.address``, ``run.gpus_per_point`` of a GPU each), else :func:`make_executor`."""
    if run.executor == "ray":
        return RayExecutor(run.workers, address=run.address, gpus_per_point=run.gpus_per_point)
    return make_executor(run.workers)
