"""Composable policies: every built-in policy is a *stage* that fills one slot of a storage spec.

Composition is the point of this module (docs/design.md §5: "policies compose"). A policy does not
compute its noise and costs alone; it states one decision about how bits are stored, in one
of these slots of a :class:`StorageSpec`:

==============  ==========================================  ==============================
slot            decision                                    policies
==============  ==========================================  ==============================
``format``      what is stored (float16, int8, binary, …)    ``format``, ``binary``
``placement``   leading bits of each word kept in SRAM      ``sram_msb``, ``sram_exponent``
``coding``      error-correcting code over the RRAM bits    ``ecc_secded``
``cell``        how a bit is held (1T1R or 2T2R)            ``two_t_two_r``
``verify``      write-verify budget                         ``write_verify``
``comparison``  which cells are pulsed (all or changed)     ``data_comparison_write``
``condition``   programming condition of the pulses         ``low_energy``
==============  ==========================================  ==============================

A single policy fills one slot; ``compose`` (:class:`policies.impl.compose.Compose`) folds a list
of stages into one spec, so ``[format(to=int8), write_verify(2)]`` and
``[sram_exponent, ecc_secded]`` are just two filled slots. Two stages claiming the same slot
is an error naming both; ``baseline`` fills nothing (single pulse, every bit in RRAM, the
device's own condition), so it is the identity of composition.

The accuracy side (:mod:`policies.accuracy`) asks the stages for their error probabilities and
the cost side (:mod:`policies.costs`) asks them for their cost terms, so every combination gets
one consistent noise model and plan and neither side branches on policy kinds.
Outside packages can write stages too (subclass :class:`Stage`, set ``slot`` and provide
what the readers of that slot use, below), or plain :class:`policies.base.Policy` subclasses
that compute ``channel``/``plan`` themselves (those do not compose).

What the readers ask of the stage in each slot:

* ``format``: ``to`` (the stored format name);
* ``placement``: ``sram_bits_for(fmt) -> int`` (``ValueError`` if it cannot store ``fmt``);
* ``coding``: ``cost_terms(cost)`` (the accuracy side implements SECDED (72,64), the one code);
* ``cell``: ``error_probs(q01, q10, condition_stage)`` and ``cost_terms(cost)``;
* ``verify``: ``error_probs(q01, q10)`` and ``cost_terms(cost)``;
* ``comparison``: ``cost_terms(cost)``;
* ``condition``: ``error_probs(q01, q10)``, ``cost_terms(cost)``, ``load()``, ``p_source``.

``cost_terms`` takes and returns a :class:`policies.costs.WriteCost` (the terms of one traced
tensor so far), replacing the terms the stage decides; the slots are asked in the order of
:data:`policies.costs.COST_ORDER`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, Unpack

from memsim.formats import get_format
from policies.base import POLICIES, Policy
from policies.costs import WriteCost, build_plan

if TYPE_CHECKING:
    import numpy as np

    from memsim.device import ProgrammingCondition
    from memsim.device.params import DeviceParams
    from memsim.noise.channel import Channel, ChannelOptions
    from memsim.noise.rates import Rates
    from memsim.timing.plan import WritePlan
    from memsim.trace.records import WriteRecord

SLOTS = ("format", "placement", "coding", "cell", "verify", "comparison", "condition")

_SLOT_WORDS = {
    "format": "the storage format",
    "placement": "which bits go to SRAM",
    "coding": "the error-correcting code",
    "cell": "the cell type",
    "verify": "the write-verify budget",
    "comparison": "which cells are pulsed",
    "condition": "the programming condition",
}


def register(name: str):
    """Class decorator: register a policy class under ``name`` and record it as its ``kind``."""

    def add(cls: type[Policy]) -> type[Policy]:
        cls.kind = name
        POLICIES.register(name)(cls)
        return cls

    return add


# What the readers of each slot ask of the stage in it (the list in the module notes); the
# built-in stages of policies.impl are checked against these statically there.


class SlotStage(Protocol):
    """Any stage in a slot: named in messages."""

    def describe(self) -> str: ...


class CostStage(SlotStage, Protocol):
    def cost_terms(self, cost: WriteCost) -> WriteCost:
        """``cost`` with the terms this stage decides replaced."""
        ...


class FormatStage(SlotStage, Protocol):
    @property
    def to(self) -> str:
        """The stored format's name."""
        ...


class PlacementStage(SlotStage, Protocol):
    def sram_bits_for(self, fmt: str) -> int:
        """Leading bits of a ``fmt`` word kept in SRAM; ``ValueError`` if it cannot store it."""
        ...


class ConditionStage(CostStage, Protocol):
    @property
    def p_source(self) -> str: ...

    def load(self) -> ProgrammingCondition: ...

    def error_probs(self, q01: np.ndarray, q10: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class CellStage(CostStage, Protocol):
    def error_probs(
        self, q01: np.ndarray, q10: np.ndarray, condition_stage: ConditionStage | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


class VerifyStage(CostStage, Protocol):
    def error_probs(self, q01: np.ndarray, q10: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class StorageSpec:
    """The decisions of a (composed) policy: each slot holds the stage that decided it."""

    format: FormatStage | None = None
    placement: PlacementStage | None = None
    coding: CostStage | None = None
    cell: CellStage | None = None
    verify: VerifyStage | None = None
    comparison: CostStage | None = None
    condition: ConditionStage | None = None

    def claim(self, slot: str, stage: Stage) -> StorageSpec:
        """This spec with ``slot`` decided by ``stage``; a slot decided twice is an error."""
        if slot not in SLOTS:
            raise ValueError(f"Unknown policy slot '{slot}'. Known slots: {', '.join(SLOTS)}.")
        holder = getattr(self, slot)
        if holder is not None:
            raise ValueError(
                f"Policies '{holder.describe()}' and '{stage.describe()}' cannot be combined: "
                f"both decide {_SLOT_WORDS[slot]}."
            )
        # The slot is a runtime name, so mypy cannot pick its protocol here; the built-in
        # stages are checked against their slot's protocol in policies/impl/__init__.py.
        return dataclasses.replace(self, **{slot: stage})  # type: ignore[arg-type]

    @property
    def follows_sweep(self) -> bool:
        """False when a stage replaces the swept device error by its own (``channel`` ignores p)."""
        return self.condition is None or self.condition.p_source != "condition"

    def stages(self) -> list[Stage]:
        """The stages that decided something, in slot order."""
        return [getattr(self, s) for s in SLOTS if getattr(self, s) is not None]

    # --- derived decisions -----------------------------------------------------------------

    def stored_format(self, fmt: str) -> str:
        """What is stored when the network asks for ``fmt`` (idempotent)."""
        get_format(fmt)
        return fmt if self.format is None else self.format.to

    def validate(self, fmt: str) -> str:
        """Check the whole combination for tensors requested as ``fmt``; return the stored format."""
        stored = self.stored_format(fmt)
        if self.placement is not None:
            self.sram_bits(stored)
        if self.coding is not None and get_format(stored).packed:
            raise ValueError(
                f"Policy '{self.coding.describe()}' codes whole stored words; {stored} packs "
                f"{8 // get_format(stored).width} codes per byte, which it does not support."
            )
        return stored

    def sram_bits(self, stored: str) -> int:
        """Leading bits of each stored word kept in SRAM (0 without a placement stage)."""
        if self.placement is None:
            return 0
        try:
            return self.placement.sram_bits_for(stored)
        except ValueError as exc:
            if self.format is None:
                raise
            raise ValueError(
                f"Policies '{self.format.describe()}' and '{self.placement.describe()}' cannot be "
                f"combined: {exc}"
            ) from None


class Stage(Policy):
    """A composable policy: it decides one slot (``slot``) of a :class:`StorageSpec`.

    Call order (as for every policy): ``validate`` → ``storage_format`` → ``channel`` /
    ``plan``; all four are derived from ``configure`` through the spec, so a stage only says
    what it decides. ``channel`` and ``plan`` accept the requested or the stored format
    (format changes are idempotent).
    """

    #: The slot this stage decides (``None``: decides nothing, like ``baseline``).
    slot: ClassVar[str | None] = None

    def configure(self, spec: StorageSpec) -> StorageSpec:
        """Return ``spec`` with this stage's decision added (conflicts raise ``ValueError``)."""
        return spec if self.slot is None else spec.claim(self.slot, self)

    @property
    def spec(self) -> StorageSpec:
        """The storage decisions of this policy (all stages, for a composition)."""
        return self.configure(StorageSpec())

    @property
    def follows_sweep(self) -> bool:
        return self.spec.follows_sweep

    def describe(self) -> str:
        """``kind(field=value, …)`` listing only the fields that differ from their defaults."""
        if not dataclasses.is_dataclass(self):
            return self.name
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default is dataclasses.MISSING or value != default:
                parts.append(f"{f.name}={value}")
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    def validate(self, fmt: str) -> None:
        self.spec.validate(fmt)

    def storage_format(self, fmt: str) -> str:
        return self.spec.stored_format(fmt)

    def channel(
        self, fmt: str, p01: Rates, p10: Rates | None = None, **options: Unpack[ChannelOptions]
    ) -> Channel:
        from policies.accuracy import build_channel

        return build_channel(self.spec, fmt, p01, p10, **options)

    def plan(self, record: WriteRecord, device: DeviceParams) -> WritePlan:
        return build_plan(self.spec, record, device)
