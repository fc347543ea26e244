"""Range checks shared by the device dataclasses (house-style messages from memsim.config)."""

from __future__ import annotations

import math

from memsim.config import check_range


def check_positive(owner: str, name: str, value: float) -> None:
    """``value`` must be a finite float > 0."""
    check_range(owner, name, value, low=0.0, low_open=True, high=math.inf, high_open=True)


def check_non_negative(owner: str, name: str, value: float) -> None:
    """``value`` must be a finite float >= 0."""
    check_range(owner, name, value, low=0.0, high=math.inf, high_open=True)


def check_probability(owner: str, name: str, value: float) -> None:
    """``value`` must be a probability in [0, 1]."""
    check_range(owner, name, value, low=0.0, high=1.0)
