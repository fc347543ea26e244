"""The ``per_layer`` policy: each write point (layer) gets its own policy and storage format.

A real design protects where it matters. ``PerLayer`` holds ordered ``(pattern, policy)``
rules and a ``default``; the write point named ``name`` is stored with the policy of the first
rule whose pattern equals ``name`` or matches it as a glob (:func:`fnmatch.fnmatchcase`,
``features.*``), else with ``default``. From TOML::

    {kind = "per_layer", default = "baseline",
     layers = {"classifier" = "ecc_secded", "features.*" = {kind = "write_verify", max_extra_rounds = 1}}}

``default = "ideal"`` stores the unnamed layers without noise and without cost (the
per-layer sensitivity study isolates one layer this way; such a policy cannot be costed).

How each stage uses it:

* accuracy side: :meth:`policy_for` gives each write point its policy; noisy inference asks
  that policy for the point's channel (:func:`memsim.experiment.layers.layer_channels`).
  :meth:`channel` alone is the default's channel (there is no point name there).
* cost side: :meth:`plan` dispatches on the record's name, so the memory model counts each
  layer's writes with that layer's policy.
* formats: the network keeps the requested format; a layer whose policy stores ``int8`` in a
  float network has its activation write stored as int8 codes (per-tensor affine,
  calibrated), its weights stay float. Other format changes per layer are refused.

Names are checked against a network's write points with :meth:`check_names` (a pattern that
matches no write point is an error listing the names).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Unpack

from policies.base import Policy
from policies.stage import register

if TYPE_CHECKING:
    from memsim.device.params import DeviceParams
    from memsim.noise.channel import Channel, ChannelOptions
    from memsim.noise.rates import Rates
    from memsim.timing.plan import WritePlan
    from memsim.trace.records import WriteRecord

#: The ``default`` that stores unnamed layers ideally (no noise, no cost).
IDEAL = "ideal"

#: Storage formats a layer may switch to inside a float network.
LAYER_FORMATS = ("int8",)


def _default_policy() -> Policy:
    from policies.impl.baseline import Baseline

    return Baseline()


@register("per_layer")
@dataclass(frozen=True)
class PerLayer(Policy):
    """Per-write-point policies (see the module notes).

    Parameters
    ----------
    default : Policy or None
        Policy of write points no rule names; None stores them ideally (no noise, no cost).
    layers : tuple of (str, Policy)
        Ordered rules: a write-point name or glob pattern and its policy.
    """

    default: Policy | None = field(default_factory=_default_policy)
    layers: tuple[tuple[str, Policy], ...] = ()

    def __post_init__(self) -> None:
        rules = tuple((str(pattern), policy) for pattern, policy in self.layers)
        object.__setattr__(self, "layers", rules)
        for pattern, policy in rules:
            if not pattern:
                raise ValueError("A per-layer rule needs a non-empty write-point name or pattern.")
            if not isinstance(policy, Policy) or isinstance(policy, PerLayer):
                raise TypeError(
                    f"The policy of layer '{pattern}' must be a (non per-layer) policy. Got {policy!r}."
                )
        if self.default is not None and not isinstance(self.default, Policy):
            raise TypeError(f"'default' must be a policy or None. Got {self.default!r}.")
        patterns = [p for p, _ in rules]
        dupes = sorted({p for p in patterns if patterns.count(p) > 1})
        if dupes:
            raise ValueError(f"Per-layer rules name '{dupes[0]}' twice.")

    # ------------------------------------------------------------------ names
    def policy_for(self, name: str) -> Policy | None:
        """The policy of write point ``name`` (None: stored ideally)."""
        for pattern, policy in self.layers:
            if name == pattern or fnmatchcase(name, pattern):
                return policy
        return self.default

    def check_names(self, names: Iterable[str]) -> None:
        """Raise ``ValueError`` if a rule matches none of the write points ``names``."""
        names = list(names)
        for pattern, _ in self.layers:
            if not any(n == pattern or fnmatchcase(n, pattern) for n in names):
                close = difflib.get_close_matches(pattern, names, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ValueError(
                    f"Per-layer policy: '{pattern}' matches no write point.{hint} "
                    f"Write points: {', '.join(names)}."
                )

    def policies(self) -> list[Policy]:
        """Every distinct policy used (the default first when it is not ideal)."""
        out = [] if self.default is None else [self.default]
        for _, policy in self.layers:
            if policy not in out:
                out.append(policy)
        return out

    # ------------------------------------------------------------------ Policy
    def describe(self) -> str:
        default = IDEAL if self.default is None else self.default.describe()
        rules = ", ".join(f"{p}: {q.describe()}" for p, q in self.layers)
        return f"per_layer(default={default}{'; ' + rules if rules else ''})"

    def validate(self, fmt: str) -> None:
        for policy in self.policies():
            policy.validate(fmt)
            stored = policy.storage_format(fmt)
            if stored != fmt and not (stored in LAYER_FORMATS and fmt != "int8"):
                raise ValueError(
                    f"Per-layer policy: '{policy.describe()}' stores {stored}, but inside a {fmt} "
                    f"network a layer can only switch to {', '.join(LAYER_FORMATS)}."
                )

    def storage_format(self, fmt: str) -> str:
        """The network's format: layers switching to int8 are stored per write point."""
        return fmt

    def layer_format(self, name: str, fmt: str) -> str:
        """The format write point ``name`` is stored in inside a ``fmt`` network."""
        policy = self.policy_for(name)
        return fmt if policy is None else policy.storage_format(fmt)

    def channel(
        self, fmt: str, p01: Rates, p10: Rates | None = None, **options: Unpack[ChannelOptions]
    ) -> Channel:
        """The default's channel (layers are resolved by :meth:`policy_for`)."""
        if self.default is None:
            from memsim.noise.channel import Noiseless

            return Noiseless()
        return self.default.channel(fmt, p01, p10, **options)

    def plan(self, record: WriteRecord, device: DeviceParams) -> WritePlan:
        """The write plan of ``record`` under its layer's policy."""
        policy = self.policy_for(record.name)
        if policy is None:
            raise ValueError(
                f"Layer '{record.name}' is stored ideally (default = \"{IDEAL}\") and has no cost."
            )
        return policy.plan(record, device)
