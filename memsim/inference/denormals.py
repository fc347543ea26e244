"""Subnormal floats flushed to zero on the CPU: a processor that reads and makes no subnormals.

A flip of a low bit of a stored ``+0.0`` (a large share of activations after a ReLU) makes a
subnormal float, and some processors, Intel's among them, take a microcode assist of some
hundred cycles for every arithmetic instruction that reads or makes one. On the development
machine (an Intel Xeon with AVX-512) noisy VGG-A inference cost 1.68× clean at p = 1e-3 and
2.84× at 1e-2 (``benchmarks/noisy_inference.py``), against 1.02-1.05× and 1.10-1.15× on the
machines before it: the layers reading the flipped tensors, not the flips, took the time.

:func:`denormals_flushed` sets the x86 *flush-to-zero* and *denormals-are-zero* modes (MXCSR)
for the calling thread and for every thread of the OpenMP runtime torch computes on (through
``GOMP_parallel``, which GNU's and Intel's runtimes export): a
subnormal input counts as zero and a subnormal result becomes zero, as on processors that never
handle subnormals. It changes the arithmetic, not the flips: a stored subnormal is still the
flipped word, and ``nonfinite_fraction`` is unchanged. A subnormal is below 1.2e-38 (float32),
far under the rounding of any sum it joins with normal values, so accuracies rarely move (no
point of the golden run did); where they do, the processor modelled is the other one. So it is
a modelling option (``sweep.flush_denormals``, part of an experiment's identity), off by
default.

CPU only: CUDA kernels keep subnormals unless compiled otherwise, and torch has no switch for
them (:func:`check_flush_device`).
"""

from __future__ import annotations

import ctypes
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

#: Markers of an OpenMP runtime among the process's loaded libraries (GNU's and Intel's; both
#: export ``GOMP_parallel``).
_RUNTIMES = ("libgomp", "libiomp", "libomp")

_LOCK = threading.Lock()
_BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def check_flush_device(device: str | torch.device, key: str = "sweep.flush_denormals") -> None:
    """Refuse flushing subnormals where memsim cannot: a device other than the CPU, or a CPU
    without the flush modes (``torch.set_flush_denormal`` reports them)."""
    dev = torch.device(device)
    if dev.type != "cpu":
        raise ValueError(
            f"{key} = true flushes subnormal floats on the CPU only; device {str(device)!r} "
            "keeps them (torch has no switch for CUDA kernels). Leave it false there."
        )
    if not Path("/proc/self/maps").exists():
        raise ValueError(
            f"{key} = true needs Linux: memsim reaches torch's CPU threads through the OpenMP "
            "runtimes that /proc/self/maps lists. Leave it false."
        )
    if not _supported():
        raise ValueError(
            f"{key} = true: this processor has no flush-to-zero / denormals-are-zero mode "
            "that torch can set. Leave it false."
        )


def _supported() -> bool:
    # Setting the main thread's mode to what it is now reports whether the modes exist.
    return bool(torch.set_flush_denormal(flushing()))


def flushing() -> bool:
    """Whether the calling thread flushes subnormals (a subnormal times 1 comes out 0)."""
    tiny = torch.tensor([1e-40], dtype=torch.float32)
    return bool((tiny * 1.0).item() == 0.0)


def set_flush(on: bool) -> None:
    """Flush subnormals (``on``) or keep them, in the calling thread and in every thread of
    the OpenMP runtime torch computes on (:func:`_runtimes`; threads it starts later copy the
    calling thread's mode)."""
    with _LOCK:
        if not torch.set_flush_denormal(on):
            raise ValueError(
                "This processor has no flush-to-zero / denormals-are-zero mode that torch can set."
            )

        def body(_: int | None) -> None:
            torch.set_flush_denormal(on)

        callback = _BODY(body)  # kept alive until every thread has run it
        for parallel in _parallel_entries():
            parallel(callback, None, 0, 0)  # 0 threads: the runtime's current team size


@lru_cache(maxsize=1)
def _parallel_entries() -> tuple[Callable[..., None], ...]:
    """``GOMP_parallel`` of each of :func:`_runtimes`, typed for :data:`_BODY` callbacks (looked
    up once per process: a network switches the mode twice per forward pass)."""
    entries = []
    for path in _runtimes():
        parallel = ctypes.CDLL(path).GOMP_parallel
        parallel.argtypes = [_BODY, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        parallel.restype = None
        entries.append(parallel)
    return tuple(entries)


@lru_cache(maxsize=1)
def _runtimes() -> tuple[str, ...]:
    """The OpenMP runtimes torch's CPU kernels may run on: the copy torch ships where it is
    loaded, else every one loaded. Numba's kernels run on the same one (:mod:`memsim.jit`).

    PERF: read once per process (``/proc/self/maps`` takes ~7 ms to read; a network enters
    :func:`denormals_flushed` once per forward pass)."""
    maps = Path("/proc/self/maps")
    found = set()
    for line in maps.read_text().splitlines():
        path = line.rsplit(maxsplit=1)[-1] if line.strip() else ""
        if path.startswith("/") and any(r in Path(path).name for r in _RUNTIMES):
            found.add(path)
    # Where torch's own copy is loaded, the system's copy may be mapped too (Numba's omppool
    # names it), but no call binds to it: waking it would start a team of threads that only
    # compete for cores with the first's, still spinning (~8 ms per switch).
    own = sorted(p for p in found if Path(p).is_relative_to(Path(torch.__file__).parent))
    return tuple(own or sorted(found))


#: A CPU that multiplies subnormal floats this many times slower than normal ones is worth a
#: hint (:func:`subnormal_slowdown`). The development machine's Intel Xeon: ~48×, and noisy
#: float32 VGG-A inference 1.7-2.8× slower than with subnormals flushed.
SLOW_SUBNORMALS = 4.0


@lru_cache(maxsize=1)
def subnormal_slowdown() -> float:
    """How many times slower this CPU multiplies subnormal float32 values than normal ones, on
    the calling thread in its present mode (about 1 where subnormals cost nothing extra, or
    where they are flushed); measured once per process, ~5 ms (least of 15 passes over 64K
    values each, NumPy on one thread)."""
    n = 1 << 16
    out = np.empty(n, np.float32)

    def least(value: float) -> float:
        x = np.full(n, value, np.float32)
        best = math.inf
        for _ in range(15):
            start = time.perf_counter()
            np.multiply(x, np.float32(1.5), out=out)
            best = min(best, time.perf_counter() - start)
        return best

    normal = least(1.0)
    return least(1e-40) / max(normal, 1e-9)


@contextmanager
def denormals_flushed(on: bool = True) -> Iterator[None]:
    """Flush subnormals inside the block when ``on`` (:func:`set_flush`); the mode the calling
    thread had is put back on every thread afterwards. ``on = False`` changes nothing."""
    if not on:
        yield
        return
    before = flushing()
    if not before:
        set_flush(True)
    try:
        yield
    finally:
        if not before:
            set_flush(False)
