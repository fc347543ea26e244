"""Accuracy side of a storage spec: the channel that corrupts a stored tensor.

Reads a :class:`policies.stage.StorageSpec` (what a possibly composed policy decided) and
the device's raw single-pulse flip probabilities ``p01``/``p10`` (the swept noise level),
and returns the :class:`memsim.noise.channel.Channel` that noisy inference applies at every
write. The per-cell error probability goes through the slots in write order:

1. ``condition`` (low energy): the condition's own ``p01``/``p10`` replace the swept ones,
   or scale them (see :class:`policies.impl.low_energy.LowEnergy`);
2. ``cell`` (2T2R): the single-ended error is mapped to the differential read's error
   (see :class:`policies.impl.two_t_two_r.TwoTTwoR`);
3. ``verify``: the residual error after ``max_extra_rounds`` re-pulses
   (:meth:`memsim.device.verify.WriteVerify.residual_error`, per direction);
4. ``placement``: positions kept in SRAM are noiseless;
5. ``coding``: SECDED codewords over the RRAM bits (:class:`policies.channels.SECDEDChannel`),
   else independent flips (:class:`memsim.noise.channel.BitFlip`), or sign flips for binary
   values (:class:`policies.channels.BinaryChannel`).

``data_comparison_write`` does not change the channel: a cell it leaves unpulsed keeps the
resistance of an earlier write of the same value, drawn from the same distributions, so it
reads wrong with the same probability (the shadow copy, not a pre-read, decides what to
pulse). Every stage with zero error yields a channel that changes no bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

import numpy as np

from memsim.formats import get_format
from memsim.noise.channel import BitFlip, Channel, per_position
from policies.channels import BinaryChannel, SECDEDChannel

if TYPE_CHECKING:
    from memsim.noise.channel import ChannelOptions
    from memsim.noise.rates import Rates
    from policies.stage import StorageSpec


def cell_error_probs(
    spec: StorageSpec, stored: str, p01: object, p10: object
) -> tuple[np.ndarray, np.ndarray]:
    """Per-position error probabilities of one written cell after steps 1–3 of the module notes.

    ``p01``/``p10`` (``None``: symmetric) are a probability or one per position, checked here
    (ladder entries arrive unchecked). Returns two float64 vectors of the stored format's width.
    """
    q01 = per_position(stored, p01, "p01")
    q10 = per_position(stored, p01 if p10 is None else p10, "p10")
    if spec.condition is not None:
        q01, q10 = spec.condition.error_probs(q01, q10)
    if spec.cell is not None:
        q01, q10 = spec.cell.error_probs(q01, q10, spec.condition)
    if spec.verify is not None:
        q01, q10 = spec.verify.error_probs(q01, q10)
    return q01, q10


def _uniform(name: str, values: np.ndarray, owner: str) -> float:
    if values.size and not np.all(values == values[0]):
        raise ValueError(
            f"{owner} needs one {name} for all RRAM bit positions. Got {values.tolist()}."
        )
    return float(values[0]) if values.size else 0.0


def build_channel(
    spec: StorageSpec,
    fmt: str,
    p01: Rates,
    p10: Rates | None = None,
    **options: Unpack[ChannelOptions],
) -> Channel:
    """The channel for tensors requested as ``fmt`` under ``spec`` (see the module notes).

    Parameters
    ----------
    spec : StorageSpec
    fmt : str
        Requested or stored format (format changes are idempotent).
    p01, p10 : float or per-position sequence
        Raw single-pulse flip probabilities (``p10=None``: symmetric).
    **options
        ``engine`` and ``ladder`` (common random numbers; entries in swept-``p`` terms, mapped
        like ``p01``/``p10``) for :class:`memsim.noise.channel.BitFlip`. The SECDED and binary
        channels draw their own sparse flips and ignore them (exact statistics for every
        ``p``, without the coupling).
    """
    stored = spec.validate(fmt)
    width = get_format(stored).width
    q01, q10 = cell_error_probs(spec, stored, p01, p10)
    mask = np.ones(width, dtype=bool)
    mask[: spec.sram_bits(stored)] = False
    if spec.coding is not None:
        owner = spec.coding.describe()
        return SECDEDChannel(
            stored, _uniform("p01", q01[mask], owner), _uniform("p10", q10[mask], owner), bits=mask
        )
    if stored == "binary":
        return BinaryChannel(float(q01[0] * mask[0]), float(q10[0] * mask[0]))
    unknown = sorted(set(options) - {"engine", "ladder"})
    if unknown:
        raise TypeError(f"Unknown channel option(s) {unknown}. Known: ['engine', 'ladder'].")
    ladder = options.get("ladder")
    if ladder is not None:
        # The ladder is given in swept-p terms: move every entry through the same (monotone)
        # steps, so the coupled flips stay nested and (q01, q10) is one of the entries.
        entries = [e if isinstance(e, tuple | list) and len(e) == 2 else (e, e) for e in ladder]
        ladder = tuple(cell_error_probs(spec, stored, a, b) for a, b in entries)
    return BitFlip(stored, q01, q10, bits=mask, engine=options.get("engine", "auto"), ladder=ladder)
