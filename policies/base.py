"""The policy interface: how a tensor's bits are stored, and what that does and costs.

A policy answers two questions for every tensor written (docs/design.md §5):

(a) accuracy side: given the device's raw single-pulse flip probabilities, what channel
    corrupts the stored tensor (``channel``);
(b) cost side: what write operations the tensor needs (``plan``, a :class:`WritePlan`).

Call order: ``validate(fmt)`` once (incompatible compositions raise ``ValueError``),
``storage_format(fmt)`` to know what is stored, then ``channel(...)`` for noisy inference and
``plan(record, device)`` for each trace record. Policies are frozen dataclasses with pure
methods: no SimPy, no global random state. Register with ``@POLICIES.register("name")``; outside
packages use the ``memsim.policies`` entry-point group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Unpack

from memsim.registry import Registry

if TYPE_CHECKING:
    from memsim.device.params import DeviceParams
    from memsim.noise.channel import Channel, ChannelOptions
    from memsim.noise.rates import Rates
    from memsim.timing.plan import WritePlan
    from memsim.trace.records import WriteRecord


def _record_kind(name: str, cls: object) -> None:
    """A policy class registered any way (decorator, ``POLICIES.register``, entry point) is
    labelled by its registered name."""
    if isinstance(cls, type) and issubclass(cls, Policy) and not cls.__dict__.get("kind"):
        cls.kind = name


POLICIES: Registry[type[Policy]] = Registry(
    "policy", entry_point_group="memsim.policies", on_add=_record_kind
)


class Policy(ABC):
    """Base class of memory policies (see the module docstring for the call order)."""

    #: Registry name; set by :func:`policies.register` (``""`` for unregistered classes).
    kind: ClassVar[str] = ""

    @property
    def name(self) -> str:
        """Registry name of this policy (the class name if it was never registered)."""
        return self.kind or type(self).__name__

    def describe(self) -> str:
        """Short label for tables and messages, e.g. ``write_verify(max_extra_rounds=2)``."""
        return self.name

    @property
    def follows_sweep(self) -> bool:
        """False when ``channel`` ignores the swept ``p01``/``p10`` (fixed device noise)."""
        return True

    def validate(self, fmt: str) -> None:
        """Raise ``ValueError`` if this policy cannot store tensors of format ``fmt``."""

    def storage_format(self, fmt: str) -> str:
        """The format actually stored when the network asks for ``fmt`` (format-change policies)."""
        return fmt

    @abstractmethod
    def channel(
        self, fmt: str, p01: Rates, p10: Rates | None = None, **options: Unpack[ChannelOptions]
    ) -> Channel:
        """Accuracy-side noise for tensors stored as ``fmt`` when one device write pulse flips a
        stored 0 with probability ``p01`` and a stored 1 with ``p10`` (``None``: symmetric)."""

    @abstractmethod
    def plan(self, record: WriteRecord, device: DeviceParams) -> WritePlan:
        """Cost-side write operations for one traced tensor on ``device`` (a memory/device
        parameter set from ``memsim.device``)."""
