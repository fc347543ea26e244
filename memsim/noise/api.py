"""The public bit-flip operator: ``flip``, ``flip_`` and ``flip_coupled``.

Noisy inference and policies call these at every write point (usually through
:class:`memsim.noise.channel.BitFlip`). This module validates arguments, reinterprets the
caller's tensor or array as same-width integers (never converting values), resolves the noisy
bits and a possible ladder into :class:`~memsim.noise.rates.Layer` objects, and hands the words
to an engine from :mod:`memsim.noise.engines`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch

from memsim.formats import StorageFormat, get_format, resolve_bits
from memsim.noise.bits import int_view_dtype, signed_numpy_dtype
from memsim.noise.engines import Engine, get_engine
from memsim.noise.rates import LadderLayers, Layer, Rates, ladder_layers, rate_vector

Array = torch.Tensor | np.ndarray
#: A tensor or an array: functions taking one return the same kind.
A = TypeVar("A", torch.Tensor, np.ndarray)
_CPU = torch.device("cpu")


def flip(
    x: A,
    p01: Rates,
    p10: Rates | None = None,
    *,
    bits: object = None,
    engine: str = "auto",
    seed: int | None = None,
    ladder: Sequence[object] | None = None,
) -> A:
    """Return a copy of ``x`` whose stored bits flipped independently (docs/design.md §3).

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        float64/32/16, bfloat16, int8, uint8, int16, int32 or int64; any shape and strides.
    p01 : float or sequence of float
        Probability that a stored 0 reads as 1: a scalar, or one value per bit position
        (length = the format's width, most significant bit first).
    p10 : float or sequence of float, optional
        Probability that a stored 1 reads as 0; ``None`` means ``p10 = p01`` (symmetric).
    bits : optional
        Noisy positions, anything :func:`memsim.formats.resolve_bits` accepts (positions,
        ``FirstNoisy(k)``, field names such as ``"mantissa"``); other positions never flip.
    engine : str
        ``"auto"`` (Numba on CPU, torch elsewhere), ``"numba"``, ``"torch"`` or ``"reference"``.
    seed : int, optional
        Same seed and engine ⇒ same flips. ``None`` draws fresh entropy on every call.
    ladder : sequence, optional
        Common-random-numbers grid (see :mod:`memsim.noise`); ``(p01, p10)`` must be one of its
        entries.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        A new tensor/array of the same type, dtype, shape and device.

    Raises
    ------
    TypeError
        Unsupported ``x`` or dtype (bool, complex), non-numeric probabilities, bad ``seed``.
    ValueError
        Probabilities outside [0, 1] or NaN, per-position vectors of the wrong length, bad
        ``bits``, an unknown engine or one that cannot run on ``x``'s device, a bad ladder.
    """
    _format_of(x)  # a TypeError before any copy for what cannot be flipped
    if isinstance(x, torch.Tensor):
        with torch.no_grad():  # a same-dtype copy moves bytes: NaN payloads survive
            t = x.detach().clone(memory_format=torch.contiguous_format)
        return flip_(t, p01, p10, bits=bits, engine=engine, seed=seed, ladder=ladder)
    a = np.array(x, copy=True, order="C")
    return flip_(a, p01, p10, bits=bits, engine=engine, seed=seed, ladder=ladder)


def flip_(
    x: A,
    p01: Rates,
    p10: Rates | None = None,
    *,
    bits: object = None,
    engine: str = "auto",
    seed: int | None = None,
    ladder: Sequence[object] | None = None,
) -> A:
    """In-place :func:`flip`: corrupt the stored bits of ``x`` itself and return ``x``.

    Non-contiguous tensors and arrays are modified in place too (through a contiguous working
    copy that is written back). A read-only NumPy array is a ``ValueError``.
    """
    fmt = _format_of(x)
    device = x.device if isinstance(x, torch.Tensor) else _CPU
    eng = get_engine(engine, device)
    layers = _layers(fmt, p01, p10, bits, seed, ladder)
    return apply_layers_(x, fmt, eng, layers)


def apply_layers_(x: A, fmt: StorageFormat, eng: Engine, layers: Sequence[Layer]) -> A:
    """Let ``eng`` flip ``x`` (of format ``fmt``) in place with validated ``layers``; return ``x``.

    The step of :func:`flip_` after argument checking, for callers that validated once and write
    many times (:class:`memsim.noise.channel.BitFlip`): ``eng`` must run on ``x``'s device and
    the layers' rate vectors have ``fmt.width`` entries.
    """
    empty = x.size == 0 if isinstance(x, np.ndarray) else x.numel() == 0
    if isinstance(layers, LadderLayers):
        noiseless = layers.is_noiseless  # without building the layers
    else:
        noiseless = all(layer.is_noiseless for layer in layers)
    if empty or noiseless:
        return x
    with _words(x, fmt) as words:
        eng.apply_(words, fmt, layers)
    return x


def flip_coupled(
    x: A,
    ps: Sequence[Rates],
    p10s: Sequence[Rates] | None = None,
    *,
    bits: object = None,
    engine: str = "auto",
    seed: int | None = None,
) -> list[A]:
    """Copies of ``x`` flipped at each setting of a p grid, with nested flip patterns.

    Entry ``i`` is flipped with ``(ps[i], p10s[i])`` (``p10s=None``: symmetric), exactly
    Bernoulli per bit; the flips of a smaller setting are a subset of those of a larger one
    (common random numbers, see :mod:`memsim.noise`). Settings may come in any order but must be
    comparable (elementwise ordered).

    Returns
    -------
    list
        One new tensor/array per entry of ``ps``, in the same order.
    """
    if isinstance(ps, str) or not isinstance(ps, Sequence | np.ndarray) or len(ps) == 0:
        raise ValueError(f"ps must be a non-empty sequence of probabilities. Got {ps!r}.")
    if p10s is None:
        p10s = ps
    elif len(p10s) != len(ps):
        raise ValueError(f"p10s must have one entry per entry of ps ({len(ps)}). Got {len(p10s)}.")
    fmt = _format_of(x)
    totals = [
        float(rate_vector(fmt, a, f"ps[{i}]").sum() + rate_vector(fmt, b, f"p10s[{i}]").sum())
        for i, (a, b) in enumerate(zip(ps, p10s))
    ]
    order = sorted(range(len(ps)), key=totals.__getitem__)
    ladder = [(ps[i], p10s[i]) for i in order]
    base = check_seed(seed) if seed is not None else secrets.randbits(63)  # one draw couples all
    return [
        flip(x, a, b, bits=bits, engine=engine, seed=base, ladder=ladder) for a, b in zip(ps, p10s)
    ]


def _format_of(x: object) -> StorageFormat:
    if isinstance(x, torch.Tensor | np.ndarray):
        return get_format(x.dtype)
    raise TypeError(f"x must be a torch.Tensor or numpy.ndarray. Got {type(x).__name__}.")


def check_seed(seed: object) -> int:
    """``seed`` as an int in [0, 2**64 - 1] (what every engine's generator takes whole; the
    CLI and :func:`memsim.rng.child_seed` take the same range); ``TypeError``/``ValueError``
    naming ``seed`` otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int or None. Got {seed!r}.")
    if not 0 <= seed <= 2**64 - 1:
        raise ValueError(f"seed must be an int in [0, 2**64 - 1]. Got {seed}.")
    return int(seed)


def _layers(fmt: StorageFormat, p01, p10, bits, seed, ladder) -> Sequence[Layer]:
    mask = resolve_bits(fmt, bits)
    r01 = rate_vector(fmt, p01, "p01") * mask
    r10 = r01 if p10 is None else rate_vector(fmt, p10, "p10") * mask
    base = secrets.randbits(63) if seed is None else check_seed(seed)
    if ladder is None:
        return [Layer(r01, r10, base)]
    return ladder_layers(fmt, r01, r10, mask, ladder, base)


@contextmanager
def _words(x: Array, fmt: StorageFormat) -> Iterator[torch.Tensor]:
    """A 1-D contiguous integer tensor over ``x``'s stored words; writes reach ``x``."""
    if isinstance(x, np.ndarray):
        if not x.flags.writeable:
            raise ValueError(
                "x is a read-only array; flip_ needs to write to it (use flip for a copy)."
            )
        ints = x.view(signed_numpy_dtype(fmt))
        if ints.flags.c_contiguous:
            yield torch.from_numpy(ints.reshape(-1))
            return
        work = np.ascontiguousarray(ints)
        yield torch.from_numpy(work.reshape(-1))
        ints[...] = work
        return
    # A detached view shares the storage and is never tracked by autograd (no no_grad needed).
    view = x.detach().view(int_view_dtype(fmt))
    if view.is_contiguous():
        yield view.view(-1)
        return
    contiguous = view.contiguous()
    yield contiguous.view(-1)
    view.copy_(contiguous)
