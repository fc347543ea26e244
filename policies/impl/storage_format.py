"""The ``format`` policy: store activations in another format (a policy dimension).

Fills the ``format`` slot of a storage spec (:mod:`policies.stage`): ``storage_format(fmt)``
returns the target, the accuracy side flips bits of the target format, the cost side counts
the target's bits per element. Composes with every other stage, e.g.
``[{kind="format", to="int8"}, {kind="write_verify", max_extra_rounds=2}]``. Binarized storage
is its own policy (``binary``), since it changes the network, not only the format.
"""

from __future__ import annotations

from dataclasses import dataclass

from memsim.config import check_choice
from policies.stage import Stage, register

#: Formats this policy can switch to.
TARGETS = ("float64", "float32", "float16", "bfloat16", "int8")


@register("format")
@dataclass(frozen=True)
class FormatChange(Stage):
    """Store tensors as ``to`` whatever format the network asks for.

    Parameters
    ----------
    to : str
        One of ``float64``, ``float32``, ``float16``, ``bfloat16``, ``int8``.
    """

    to: str

    slot = "format"

    def __post_init__(self) -> None:
        check_choice("format", "to", self.to, TARGETS)
