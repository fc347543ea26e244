"""Plug-ins named by an experiment config: lookup, compatibility checks and the curves to run.

Sits between the config (:mod:`memsim.experiment.config`) and the runs. An experiment names
workloads, formats, policies, masks, a device and programming conditions by registry name;
:func:`check_plugins` resolves each at load time so a bad name fails before anything runs, and
:func:`pairs_of` / :func:`curves_of` list the combinations the experiment runs (those left out
by ``incompatible = "skip"`` are described by :func:`skipped_combinations`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memsim.config import ConfigError, where_text
from memsim.experiment.config import DEFAULT_CALIBRATION_IMAGES, Curve
from memsim.inference.int8 import INT_FORMATS

if TYPE_CHECKING:
    from memsim.experiment.config import ExperimentConfig, PolicySpec


def check_plugins(config: ExperimentConfig, source: Any = None) -> None:
    """Check that every named workload, format, policy and preset exists and fits together."""
    from memsim.formats import get_format, resolve_bits
    from memsim.inference.network import INFERENCE_FORMATS

    for i, fmt in enumerate(config.formats):
        try:
            get_format(fmt)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where_text(f'formats[{i}]', source)}: {exc}") from None
        if fmt not in INFERENCE_FORMATS:
            raise ConfigError(
                f"{where_text(f'formats[{i}]', source)}: noisy inference supports "
                f"{', '.join(INFERENCE_FORMATS)}. Got {fmt!r}."
            )
        for j, mask in enumerate(config.masks):
            try:
                resolve_bits(fmt, mask_bits(mask))
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"{where_text(f'masks[{j}]', source)} for format {fmt}: {exc}"
                ) from None
    for i, wspec in enumerate(config.workloads):
        _check_lookup(f"workloads[{i}]", source, lambda w=wspec: _workload_registry().get(w.name))
        if wspec.checkpoint is not None and "checkpoint" in dict(wspec.options):
            raise ConfigError(
                f"{where_text(f'workloads[{i}]', source)} names a checkpoint twice (checkpoint "
                "and options.checkpoint; the first would win): keep one."
            )
        # Options are checked by building the workload (cheap: nothing is loaded yet).
        _check_lookup(f"workloads[{i}].options", source, lambda w=wspec: _build_workload(w))
    _check_lookup("sweep.engine", source, lambda: _engine(config.sweep.engine))
    for i, spec in enumerate(config.policies):
        policy = _check_lookup(f"policies[{i}]", source, lambda s=spec: make_policy(s))
        errors = []
        for fmt in config.formats:
            try:
                policy.validate(fmt)
            except (ValueError, TypeError) as exc:
                errors.append(exc)
        if errors and (config.incompatible == "error" or len(errors) == len(config.formats)):
            raise ConfigError(f"{where_text(f'policies[{i}]', source)}: {errors[0]}")
    if any(m != "all" for m in config.masks):
        _check_masks(config, source)
    _check_lookup("device", source, lambda: load_condition_device(config.device, None))
    for i, cond in enumerate(config.conditions):
        _check_lookup(
            f"conditions[{i}]", source, lambda c=cond: load_condition_device(config.device, c)
        )
    ref = config.report.reference.condition
    if ref and not config.conditions:
        own = load_condition_device(config.device, None).condition.name
        if ref != own:
            raise ConfigError(
                f"{where_text('report.reference.condition', source)} must name a condition of "
                f"the run; with no 'conditions' listed that is the device's own, {own!r}. "
                f"Got {ref!r}."
            )
    # Checked even when memory.enabled is false: a bad name is an error wherever it is.
    _check_lookup("memory.preset", source, lambda: load_memory_params(config.memory.preset))
    n_points = len(curves_of(config)) * len(config.grid.ps()) * config.sweep.repeats
    if n_points > MAX_POINTS:
        raise ConfigError(
            f"{where_text('sweep.repeats', source)}: the experiment has {n_points:,} points "
            f"(curves × grid × repeats); at most {MAX_POINTS:,} are allowed."
        )


#: The most points one experiment may plan (a larger sweep is a typo, not a study).
MAX_POINTS = 10_000_000


def check_files(config: ExperimentConfig, source: Any = None) -> None:
    """Check the files a run reads (workload checkpoints) exist; called before a run starts.

    Kept apart from :func:`check_plugins`: a config may name a checkpoint that is trained later.
    """
    for i, spec in enumerate(config.workloads):
        if spec.checkpoint is not None and not Path(spec.checkpoint).is_file():
            raise ConfigError(
                f"{where_text(f'workloads[{i}].checkpoint', source)}: checkpoint file "
                f"{spec.checkpoint} does not exist."
            )


def check_images(config: ExperimentConfig, source: Any = None) -> None:
    """Every count of images a run reads asks for no more than its split holds, where the
    split's size is known without loading it (:meth:`workloads.base.Workload.check_count`;
    data that is not here yet is reported when a run loads it): ``sweep.images`` and, where
    the memory model runs, ``memory.trace_images`` of ``sweep.split``, and an explicit ``sweep.calibration_images``
    of the training split where a curve stores an integer format (the only ones calibrated;
    the default count takes a smaller split whole, see :func:`calibration_images`)."""
    split = config.sweep.split
    asks = [("sweep.images", split, config.sweep.images or None)]
    if config.memory.enabled:  # the only reader (a search refuses the memory model off)
        asks.append(("memory.trace_images", split, config.memory.trace_images))
    calibration = config.sweep.calibration_images
    if calibration != DEFAULT_CALIBRATION_IMAGES and any(
        _calibrates(make_policy(p), f) for p, f in pairs_of(config)
    ):
        asks.append(("sweep.calibration_images", "train", calibration))
    for spec in config.workloads:
        workload = _build_workload(spec)
        for key, split_name, count in asks:
            try:
                workload.check_count(split_name, count)
            except ValueError as exc:
                raise ConfigError(f"{where_text(key, source)}: {exc}") from None


def calibration_images(
    workload: Any,
    count: int | None,
    key: str = "'sweep.calibration_images'",
    default: int = DEFAULT_CALIBRATION_IMAGES,
):
    """The training images int8/int4 ranges are calibrated on: ``count`` of them, refused
    beyond the split (:meth:`workloads.base.Workload.samples`), except the ``default`` count
    (``count`` None or equal to it), which takes the whole split where it holds fewer (a
    small custom data set keeps working without a setting it never chose)."""
    if count is None or count == default:
        return workload.dataset("train", limit=default)[0]
    return workload.samples("train", count, key)[0]


def _calibrates(policy: Any, fmt: str) -> bool:
    """Whether ``policy`` stores any write of a ``fmt`` network in a calibrated format (a
    per-layer policy reports the network's format; its layers' policies say what they store)."""
    inner = policy.policies() if callable(getattr(policy, "policy_for", None)) else []
    return any(q.storage_format(fmt) in INT_FORMATS for q in [policy, *inner])


def _build_workload(spec):
    from workloads import get_workload

    return get_workload(spec.name, **dict(spec.options))


def _engine(name: str):
    from memsim.noise.engines import engine_by_name

    return engine_by_name(name)


def _check_masks(config: ExperimentConfig, source: Any) -> None:
    """Masks restrict plain bit flips; a policy with another channel (ECC) cannot take one."""
    for j, mask in enumerate(config.masks):
        errors = []
        pairs = pairs_of(config)
        for spec, fmt in pairs:
            try:
                mask_channel_check(make_policy(spec), fmt, mask)
            except (ValueError, TypeError) as exc:
                errors.append(exc)
        if errors and (config.incompatible == "error" or len(errors) == len(pairs)):
            raise ConfigError(f"{where_text(f'masks[{j}]', source)}: {errors[0]}")


def mask_channel_check(policy: Any, fmt: str, mask: str) -> None:
    """Raise ``ValueError`` if ``mask`` cannot restrict ``policy``'s channel for ``fmt``."""
    if mask != "all":
        if callable(getattr(policy, "policy_for", None)):
            raise ValueError(
                f"Noisy-bit mask '{mask}' cannot restrict a per-layer policy (a mask per layer "
                "is the layer's own policy)."
            )
        make_channel(policy, policy.storage_format(fmt), mask, 1e-3, 1e-3)


def mask_bits(mask: str) -> Any:
    """A mask string as the ``bits`` argument of :func:`memsim.formats.resolve_bits`."""
    if mask == "all":
        return None
    if mask.startswith("first_noisy:"):
        return mask
    return [part.strip() for part in mask.split("+")]


def make_policy(spec: PolicySpec):
    """The policy object for a spec (registry lookup; tables carry ``kind``)."""
    from policies import get_policy

    return get_policy(spec.spec)


def load_memory_params(preset: str):
    """Memory-system parameters for a preset name or file (its technology preset is checked)."""
    from memsim.cost import load_technology
    from memsim.timing import load_memory_params as load

    params = load(preset)
    load_technology(params.technology)
    return params


def load_condition_device(device: str, condition: str | None):
    """The device bundle ``device`` with programming condition ``condition`` (``None``: its own)."""
    from memsim.device import load_device

    return load_device(device, condition=condition)


def _workload_registry():
    from workloads import WORKLOADS

    return WORKLOADS


def _check_lookup(key: str, source: Any, fn):
    try:
        return fn()
    except ConfigError as exc:
        raise ConfigError(f"{where_text(key, source)}: {exc}") from None
    except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        raise ConfigError(f"{where_text(key, source)}: {exc}") from None


def stored_formats(config: ExperimentConfig) -> list[str]:
    """The formats the experiment's networks store, sorted: each policy's storage of each format
    it runs (``format(to=...)`` may store an int8 sweep as float16)."""
    return sorted({make_policy(spec).storage_format(fmt) for spec, fmt in pairs_of(config)})


def pairs_of(config: ExperimentConfig) -> list[tuple[PolicySpec, str]]:
    """The (policy, format) pairs the experiment runs: those the policy can store."""
    pairs = []
    for spec in config.policies:
        policy = make_policy(spec)
        for fmt in config.formats:
            try:
                policy.validate(fmt)
            except (ValueError, TypeError):
                continue  # left out by incompatible = "skip" (load refused it otherwise)
            pairs.append((spec, fmt))
    return pairs


def skipped_combinations(config: ExperimentConfig) -> list[str]:
    """Human-readable policy × format (× mask) combinations left out, with the reason."""
    skipped = []
    for spec in config.policies:
        policy = make_policy(spec)
        for fmt in config.formats:
            try:
                policy.validate(fmt)
            except (ValueError, TypeError) as exc:
                skipped.append(f"{spec.label} × {fmt}: {exc}")
                continue
            for mask in config.masks:
                try:
                    mask_channel_check(policy, fmt, mask)
                except (ValueError, TypeError) as exc:
                    skipped.append(f"{spec.label} × {fmt} × mask {mask}: {exc}")
    return skipped


def curves_of(config: ExperimentConfig) -> list:
    """Every workload × format × policy × mask curve of the experiment, in config order."""
    pairs = {(s.label, f): s for s, f in pairs_of(config)}
    masks_ok = {}
    for (label, fmt), spec in pairs.items():
        for mask in config.masks:
            try:
                mask_channel_check(make_policy(spec), fmt, mask)
                masks_ok[label, fmt, mask] = True
            except (ValueError, TypeError):
                continue  # left out by incompatible = "skip" (load refused it otherwise)
    return [
        Curve(w.label, fmt, p.label, mask)
        for w in config.workloads
        for fmt in config.formats
        for p in config.policies
        for mask in config.masks
        if masks_ok.get((p.label, fmt, mask))
    ]


def make_channel(policy, fmt: str, mask: str, p01: float, p10: float, engine: str = "auto"):
    """The policy's channel for one noise level, restricted to a noisy-bit mask."""
    from memsim.formats import resolve_bits

    channel = policy.channel(fmt, p01, p10)
    if engine != "auto" and is_bitflip(channel):
        channel = dataclasses.replace(channel, engine=engine)
    bits = mask_bits(mask)
    if bits is None or getattr(channel, "is_noiseless", False):
        return channel
    if not is_bitflip(channel):
        raise ValueError(
            f"Noisy-bit mask '{mask}' needs a policy whose writes are plain bit flips; "
            f"{type(channel).__name__} (from policy {type(policy).__name__}) is not."
        )
    # Positions the policy already keeps safe (e.g. in SRAM) stay safe; the mask protects more.
    noisy = resolve_bits(channel.fmt, channel.bits) & resolve_bits(channel.fmt, bits)
    return dataclasses.replace(channel, bits=noisy)


def is_bitflip(channel: Any) -> bool:
    from memsim.noise.channel import BitFlip

    return isinstance(channel, BitFlip)
