"""The ``binary`` policy: 1-bit values of binarized networks, one cell per element.

Fills the ``format`` slot of a storage spec with ``binary`` (:mod:`policies.stage`). Tensors
hold ±1 values (a float tensor); the stored bit is 1 for +1 (value >= 0) and 0 for −1.

Accuracy side: :class:`policies.channels.BinaryChannel` flips signs, a stored −1 with ``p01``
and a stored +1 with ``p10``. Cost side: one RRAM cell per element.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.stage import Stage, register


@register("binary")
@dataclass(frozen=True)
class Binary(Stage):
    """Store one bit per element (binarized activations or weights)."""

    slot = "format"

    @property
    def to(self) -> str:
        return "binary"
