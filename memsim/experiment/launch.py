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
from memsim.experiment.config import ExperimentConfig, RunOptions, SweepConfig
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


#: Compute dtypes by the exponent width they share: a subnormal of a stored format is one in the
#: dtype it computes in when both have the same exponent range (float16 and FP8 subnormals are
#: normal in float32, where a CPU computes them; int formats dequantize to normal values).
_EXPONENT_RANGE = {"float32": 8, "bfloat16": 8, "float64": 11}


def subnormal_hint(config: ExperimentConfig, run: RunOptions) -> str | None:
    """A one-line hint where this CPU is slow on subnormal floats and a local run computes a
    stored float format in a dtype where its flipped zeros stay subnormal, with subnormals kept
    (``sweep.flush_denormals`` off): flips of a stored zero's low bits make them, and every
    layer that reads them pays. ``None`` elsewhere (another device, Ray workers on other
    machines, flushing on, no such format, a CPU that does not care). Measures once per process
    (:func:`~memsim.inference.denormals.subnormal_slowdown`, ~5 ms)."""
    sweep = config.sweep
    if sweep.flush_denormals or run.executor != "local":
        return None
    if str(resolve_device(run.device)) != "cpu":
        return None
    from memsim.experiment.plugins import stored_formats

    def computes_in(fmt: str) -> str:
        return fmt if sweep.compute_dtype == "storage" else sweep.compute_dtype

    prone = [
        fmt
        for fmt in stored_formats(config)
        if fmt in _EXPONENT_RANGE and _EXPONENT_RANGE.get(computes_in(fmt)) == _EXPONENT_RANGE[fmt]
    ]
    if not prone:
        return None
    from memsim.inference.denormals import SLOW_SUBNORMALS, subnormal_slowdown

    slowdown = subnormal_slowdown()
    if slowdown < SLOW_SUBNORMALS:
        return None
    return (
        f"this CPU multiplies subnormal floats {slowdown:.0f}x slower than normal ones, and "
        f"flipped zeros of {', '.join(prone)} make them: on such a CPU noisy VGG-A inference ran "
        "1.7-2.8x slower at p = 1e-3 to 1e-2 than with them flushed (small networks lose little). "
        "--flush-denormals (sweep.flush_denormals = true) models a processor that flushes them "
        "to zero (part of the experiment's identity; see the README)."
    )
