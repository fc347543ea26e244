"""The one project-wide Numba decorator for hot kernels.

Every kernel in memsim is compiled through :func:`jit` so that compilation options live in one
place: ``nopython`` mode, ``cache=True`` (compiled machine code is stored next to the source and
reused by later processes, so a sweep does not pay compile time per worker), ``nogil`` so
kernels can run in threads, and no ``fastmath`` (kernels compare probabilities exactly).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "fastmath": False}


def jit(func: F | None = None, **options: Any) -> F | Callable[[F], F]:
    """Compile ``func`` with Numba in nopython mode using memsim's options.

    Usable bare (``@jit``) or with extra Numba options (``@jit(inline="always")``); options given
    here override the project defaults.
    """
    merged = {**_OPTIONS, **options}

    def wrap(f: F) -> F:
        return numba.njit(**merged)(f)

    return wrap(func) if func is not None else wrap
