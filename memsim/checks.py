"""Range checks for numbers users pass in: probabilities, positive and non-negative floats.

Every probability anywhere in memsim, ``policies`` and ``workloads`` is checked here, so a bad
value reads the same wherever it is given (scikit-learn's style)::

    The 'p01' parameter must be a float in [0, 1]. Got -1.
    The 'p_bf' parameter of RRAMCell must be a float in (0, 0.5). Got 0.7.

Bools, non-numbers, NaN and infinities are refused. Intervals other than ``[low, high]``
(for instance ``(0, 0.5)``) are given with ``low_open``/``high``/``high_open``.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

from memsim.config import check_range

__all__ = [
    "check_non_negative",
    "check_positive",
    "check_probabilities",
    "check_probability",
    "probability_message",
]


def _number(x: float) -> str:
    return f"{x:g}"


def probability_message(
    name: str,
    value: object,
    *,
    owner: str | None = None,
    low_open: bool = False,
    high: float = 1.0,
    high_open: bool = False,
    what: str = "a float",
) -> str:
    """The house-style message for a value that is not a probability in the interval."""
    interval = f"{'(' if low_open else '['}0, {_number(high)}{')' if high_open else ']'}"
    of = f" of {owner}" if owner else ""
    return f"The '{name}' parameter{of} must be {what} in {interval}. Got {value!r}."


def check_probability(
    name: str,
    value: Any,
    *,
    owner: str | None = None,
    low_open: bool = False,
    high: float = 1.0,
    high_open: bool = False,
) -> float:
    """``value`` as a float after checking that it is a probability in ``[0, high]``.

    Parameters
    ----------
    name : str
        The parameter's name, quoted in the message.
    value : object
        What the user gave.
    owner : str, optional
        The class or function the parameter belongs to ("... parameter of WriteVerify ...").
    low_open, high, high_open : optional
        The interval: ``[0, 1]`` by default; ``low_open=True, high=0.5, high_open=True`` is
        ``(0, 0.5)``.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        For a bool or a value that is not a real number.
    ValueError
        For NaN, an infinity or a value outside the interval.
    """
    msg = probability_message(
        name, value, owner=owner, low_open=low_open, high=high, high_open=high_open
    )
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real | np.number):
        raise TypeError(msg)
    p = float(value)
    if math.isnan(p) or p < 0.0 or (low_open and p == 0.0) or p > high or (high_open and p == high):
        raise ValueError(msg)
    return p


def check_probabilities(name: str, values: Any, *, owner: str | None = None) -> np.ndarray:
    """``values`` (any shape) as a float64 array after checking each is a probability in [0, 1].

    The message names the first offending entry and its index. Raises ``TypeError`` for bools
    or non-numeric input and ``ValueError`` for NaN or values outside [0, 1].
    """
    if isinstance(values, bool | np.bool_):
        raise TypeError(probability_message(name, values, owner=owner))
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or arr.dtype.kind not in "iuf":
        raise TypeError(probability_message(name, values, owner=owner, what="an array of floats"))
    arr = arr.astype(np.float64, copy=False)
    bad = ~((arr >= 0.0) & (arr <= 1.0))  # NaN compares False: caught here too
    if bad.any():
        if arr.ndim == 0:
            raise ValueError(probability_message(name, float(arr), owner=owner))
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = index[0] if len(index) == 1 else index
        of = f" of {owner}" if owner else ""
        raise ValueError(
            f"The '{name}' parameter{of} must hold floats in [0, 1]. "
            f"Got {float(arr[index])!r} at index {where}."
        )
    return arr


def check_positive(owner: str, name: str, value: float) -> None:
    """``value`` must be a finite float > 0."""
    check_range(owner, name, value, low=0.0, low_open=True, high=math.inf, high_open=True)


def check_non_negative(owner: str, name: str, value: float) -> None:
    """``value`` must be a finite float >= 0."""
    check_range(owner, name, value, low=0.0, high=math.inf, high_open=True)
