"""The one project-wide Numba decorator for hot kernels.

Every kernel in memsim is compiled through :func:`jit` so that compilation options live in one
place: ``nopython`` mode, ``cache=True`` (compiled machine code is stored next to the source and
reused by later processes, so a sweep does not pay compile time per worker), ``nogil`` so
kernels can run in threads, and no ``fastmath`` (kernels compare probabilities exactly).
:func:`prefetch_write` (a cache hint) and :func:`as_pointer` (raw memory for ``numba.carray``)
are the low-level helpers kernels share.

Numba decides whether a cached kernel is fresh from its own source file only, but memsim's
kernels inline helpers from other files (``blocks._bit_slot`` into ``ladder.py``, ...): after
an edit or an upgrade in place, a stale kernel would keep drawing the old flips. Here every
memsim kernel's freshness stamp also covers the sources of all kernel files
(:func:`kernel_sources_digest`), so a change to any of them recompiles them all, and each
such *era* of the sources has cache files of its own (the digest is in their names): Numba
numbers a function's data files 1, 2, ... whatever the stamp, so without it a process still
running older code could overwrite a data file that a newer index points to, and the next run
would load machine code compiled from other sources. Other eras' files of a kernel are deleted
when it is next cached.

Importing this module starts Numba's threading layer (``numba.get_num_threads``). Numba
starts it when it compiles a parallel kernel or loads one from its cache, but not when it
loads a cached kernel that only *calls* a parallel one (memsim's per-write entries call the
parallel block and ladder kernels): that kernel then enters an unstarted thread pool and the
process crashes (numba/numba#8578). It happens when the calling kernel was compiled in a
process that had loaded the parallel one from the cache, e.g. after a process (a test, a worker
of another run) that called the parallel kernel without that caller.

Processes that compile at the same time (a sweep's workers on a fresh install, the nodes of a
cluster sharing the repository) save into the same index files. Numba reads an index, adds
its entry and writes it back without a lock, so concurrent saves lose each other's entries
and can map one signature (or one node's CPU) to a data file another process rewrote with a
different overload. Saves of memsim's kernels therefore hold an exclusive lock on their cache
folder (:func:`_locked_save`, ``fcntl.flock``; where that is unavailable, saves are as
Numba's).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, overload

import numba
from llvmlite import ir
from numba import types
from numba.core import caching, cgutils
from numba.extending import intrinsic

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "fastmath": False}


def _start_numba_threads() -> None:
    """Start Numba's threading layer (see the module doc; ~40 ms, once) and keep torch's thread
    count: where Numba's OpenMP pool shares torch's OpenMP runtime, starting it sets that
    runtime's thread count to ``NUMBA_NUM_THREADS``, so a ``torch.set_num_threads`` made
    before would be lost. They share it even where torch ships a libgomp of its own (2.14.1
    does): Numba's omppool asks for the system's ``libgomp.so.1.0.0`` by file name, so both
    copies may be mapped, but its calls bind to the copy torch loaded first into the global
    scope, and a torch loaded later reuses the copy already loaded (its ``libgomp.so.1`` is
    that copy's soname). One pool either way (tests/test_denormals.py)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    numba.get_num_threads()
    if torch is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


_start_numba_threads()


@overload
def jit(func: F, **options: Any) -> F: ...


@overload
def jit(func: None = None, **options: Any) -> Callable[[F], F]: ...


def jit(func: F | None = None, **options: Any) -> F | Callable[[F], F]:
    """Compile ``func`` with Numba in nopython mode using memsim's options.

    Usable bare (``@jit``) or with extra Numba options (``@jit(inline="always")``); options given
    here override the project defaults.
    """
    merged = {**_OPTIONS, **options}

    def wrap(f: F) -> F:
        return numba.njit(**merged)(f)

    return wrap(func) if func is not None else wrap


@intrinsic
def prefetch_write(typingctx, arr, index):  # noqa: ARG001 (Numba's intrinsic signature)
    """Hint the CPU to bring ``arr[index]`` into cache for writing; no effect on results.

    Compiles to LLVM's ``llvm.prefetch`` (x86 ``prefetchw``): unlike a plain load it never
    blocks the core waiting for memory and never faults, so a kernel can ask for the words it
    will modify a little later and keep computing meanwhile. Only usable inside jitted code.
    """

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, i32(1), i32(3), i32(1)])  # write, keep in all caches, data
        return context.get_dummy_value()

    return types.void(arr, index), codegen


@intrinsic
def as_pointer(typingctx, address):  # noqa: ARG001 (Numba's intrinsic signature)
    """The memory at the integer ``address`` as a ``void*``, for ``numba.carray(ptr, shape,
    dtype)``. Only usable inside jitted code; the caller keeps that memory alive and sized.

    PERF: the kernels of a write take its tensor's ``data_ptr()`` instead of a NumPy view:
    right after a layer, ``Tensor.numpy()`` and an array argument's dispatch cost ~50 us
    together, an integer ~10 (see :mod:`memsim.noise.writes`).
    """
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


#: The files whose compiled kernels memsim caches: this one and every kernel module.
_PACKAGE = Path(__file__).resolve().parent
KERNEL_SOURCES = (
    "jit.py", "noise/binomial.py", "noise/blocks.py", "noise/kernels.py", "noise/ladder.py",
    "noise/writes.py",
)  # fmt: skip


def kernel_sources_digest(paths: Iterable[Path]) -> bytes:
    """SHA-256 over the names and contents of ``paths`` (a missing file counts as empty)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.digest()


@lru_cache(maxsize=1)
def _memsim_kernels_digest() -> bytes:
    return kernel_sources_digest(_PACKAGE / name for name in KERNEL_SOURCES)


class _WholeKernelStamp:
    """A Numba cache locator whose freshness stamp adds :func:`kernel_sources_digest` of memsim's
    kernel files to the function's own (everything else is the wrapped locator's)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_source_stamp(self) -> Any:
        return (self._inner.get_source_stamp(), _memsim_kernels_digest())

    def get_disambiguator(self) -> str:
        """The function's own (its line) and the era's: part of every cache file's name."""
        return f"{self._inner.get_disambiguator()}-{era_tag()}"


def era_tag() -> str:
    """The tag of this era of memsim's kernel sources in cache file names (16 hex digits)."""
    return _memsim_kernels_digest().hex()[:16]


def _drop_other_eras(cache_path: Path, fullname: str) -> None:
    """Delete the cache files of ``fullname`` (``module.qualname``) from other eras.

    A process of another era that still reads them finds a file missing, which Numba treats
    as not cached (it compiles again).
    """
    tag = era_tag()
    for path in cache_path.glob(f"{fullname}-*.nb[ic]"):
        if f"-{tag}." not in path.name:
            with contextlib.suppress(OSError):  # gone already, or not ours to delete
                path.unlink()


class _MemsimKernelLocator:
    """First in Numba's locator list: for memsim's own files, the locator Numba would pick
    (in-tree, ``NUMBA_CACHE_DIR``, ...) wrapped in :class:`_WholeKernelStamp`; others pass."""

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        if not Path(py_file).resolve().is_relative_to(_PACKAGE):
            return None
        locators: list[Any] = caching.CacheImpl._locator_classes
        for locator in locators:
            if locator is cls:
                continue
            inner = locator.from_function(py_func, py_file)
            if inner is not None:
                fullname = f"{Path(py_file).stem}.{py_func.__qualname__}"
                _drop_other_eras(Path(inner.get_cache_path()), fullname)
                return _WholeKernelStamp(inner)
        return None


_LOCATORS: list[Any] = caching.CacheImpl._locator_classes
if _MemsimKernelLocator not in _LOCATORS:
    _LOCATORS.insert(0, _MemsimKernelLocator)


_LOCK_FILE = "memsim-kernels.lock"
# Numba's own save, kept on its class so that a re-import never wraps the wrapper.
if not hasattr(caching.IndexDataCacheFile, "_memsim_unlocked_save"):
    caching.IndexDataCacheFile._memsim_unlocked_save = caching.IndexDataCacheFile.save  # type: ignore[attr-defined]
_UNLOCKED_SAVE = caching.IndexDataCacheFile._memsim_unlocked_save  # type: ignore[attr-defined]


@contextlib.contextmanager
def cache_folder_lock(folder: str) -> Iterator[None]:
    """Hold an exclusive lock on a cache ``folder`` (a lock file in it) for the block's span;
    without one where the platform or the file system has no locks."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    with open(os.path.join(folder, _LOCK_FILE), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network mounts)
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _locked_save(self: Any, key: Any, data: Any) -> None:
    """Numba's ``IndexDataCacheFile.save`` (read the index, add the entry, write the index and
    the data), under :func:`cache_folder_lock` for memsim's kernels (their file names carry
    the era tag); other libraries' saves are left as they are."""
    if f"-{era_tag()}." not in os.path.basename(self._index_path):
        return _UNLOCKED_SAVE(self, key, data)
    with cache_folder_lock(self._cache_path):
        return _UNLOCKED_SAVE(self, key, data)


caching.IndexDataCacheFile.save = _locked_save  # type: ignore[method-assign]
