"""The one project-wide Numba decorator for hot kernels.

Every kernel in memsim is compiled through :func:`jit` so that compilation options live in one
place: ``nopython`` mode, ``cache=True`` (compiled machine code is stored next to the source and
reused by later processes, so a sweep does not pay compile time per worker), ``nogil`` so
kernels can run in threads, and no ``fastmath`` (kernels compare probabilities exactly).
:func:`prefetch_write` is the one low-level helper kernels share (a cache hint, see there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "fastmath": False}


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
