"""Per-layer policies in experiments: each write point's channel, and its name checked.

A policy with a ``policy_for(name)`` method (``policies.impl.per_layer.PerLayer``) stores each
write point with its own policy. :func:`layer_channel_for` turns it into the per-point channel
callable noisy inference takes (:func:`memsim.inference.network.resolve_channels`); a layer
switched to int8 inside a float network goes through :class:`memsim.inference.mixed.Int8Write`.
The memory model needs nothing here: the policy's ``plan`` dispatches on the record's name.
:func:`memsim.experiment.load.check_layer_names` refuses rules that name no write point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memsim.experiment.plugins import make_channel
from memsim.inference.taps import WritePoint


def is_per_layer(policy: Any) -> bool:
    """Whether ``policy`` assigns policies per write point."""
    return callable(getattr(policy, "policy_for", None))


def layer_channel_for(
    policy: Any,
    fmt: str,
    p01: float,
    p10: float,
    *,
    engine: str = "auto",
    int8_qparams: Callable[[], dict] | None = None,
) -> Callable[[WritePoint], Any]:
    """The channel of each write point of a ``fmt`` network under a per-layer ``policy``.

    ``int8_qparams`` returns the int8 parameters of every write point by index (called only
    if some layer is stored as int8 in a float network).
    """
    from memsim.inference.mixed import Int8Write

    cache: dict[int, Any] = {}

    def for_point(wp: WritePoint):
        if wp.index in cache:
            return cache[wp.index]
        sub = policy.policy_for(wp.name)
        if sub is None:
            ch = None
        else:
            stored = sub.storage_format(fmt)
            ch = make_channel(sub, stored, "all", p01, p10, engine)
            if stored != fmt:
                if int8_qparams is None:
                    raise ValueError(
                        f"Layer '{wp.name}' is stored as {stored} in a {fmt} network: "
                        "calibration inputs are needed."
                    )
                ch = Int8Write(int8_qparams()[wp.index], None if ch.is_noiseless else ch)
        cache[wp.index] = ch
        return ch

    return for_point


def write_point_names(
    model: Any, example: Any, *, granularity: str, noisy_input: bool
) -> list[str]:
    """Names of the activation write points of ``model`` at ``granularity`` (found on
    ``example``)."""
    from memsim.inference.network import NoisyNetwork

    net = NoisyNetwork(model, "float32", granularity=granularity, noisy_input=noisy_input)
    return [wp.name for wp in net.write_points(example)]
