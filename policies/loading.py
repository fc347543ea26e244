"""Turning what a user writes (a name, a TOML table, a list, a file) into a policy object.

Experiments, sweeps and the CLI call :func:`get_policy`. Accepted forms:

* a registered name: ``"write_verify"`` (the policy with its default parameters);
* a named config: ``"int8_wv2"`` → ``configs/policies/int8_wv2.toml``, or a path to a TOML file;
* names joined by ``+``: ``"sram_exponent+ecc_secded"`` (a composition);
* the call form that :meth:`Policy.describe` prints: ``"write_verify(max_extra_rounds=2)"``,
  ``"write_verify(2)"`` (positional arguments fill the fields in order), so
  ``get_policy(p.describe()) == p``;
* a table: ``{kind = "write_verify", max_extra_rounds = 2}``; ``{kind = "compose", stages = [...]}``;
* a list of any of these: a composition, stage by stage;
* a :class:`policies.base.Policy` instance (returned as is).

A policy file holds one table (``kind = ...`` plus fields) or ``stages = [...]``, and an
optional ``description``. Unknown names list the registered policies and the named configs
and suggest the closest; unknown keys name the key and the file (:func:`memsim.config.build`).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from memsim.config import CONFIG_DIR, ConfigError, build, load_toml, where_text
from memsim.registry import UnknownNameError
from policies.base import POLICIES, Policy

#: Folder of named policy configs.
POLICY_CONFIG_DIR = CONFIG_DIR / "policies"


def config_names() -> list[str]:
    """Names of the shipped policy configs (file stems in ``configs/policies``)."""
    return (
        sorted(p.stem for p in POLICY_CONFIG_DIR.glob("*.toml"))
        if POLICY_CONFIG_DIR.is_dir()
        else []
    )


def policy_names() -> list[str]:
    """Registered policy kinds followed by the named configs."""
    return POLICIES.names() + [n for n in config_names() if n not in POLICIES]


def _unknown(name: str) -> UnknownNameError:
    known = POLICIES.names()
    configs = config_names()
    close = (
        difflib.get_close_matches(name, known + configs, n=1)
        or [n for n in known + configs if n.startswith(name) or name in n][:1]
    )
    hint = f" Did you mean '{close[0]}'?" if close else ""
    listed = (
        f" Named policy configs ({POLICY_CONFIG_DIR}): {', '.join(configs)}." if configs else ""
    )
    return UnknownNameError(
        f"Unknown policy '{name}'.{hint} Known policies: {', '.join(known)}.{listed}"
    )


_CALL = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\((.*)\)$", re.S)


def _value(text: str) -> Any:
    """A call-form argument: a TOML value, Python's True/False/None, or a bare string."""
    if text in ("True", "False"):
        return text == "True"
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _from_call(text: str, where: str, source: Any) -> Policy | None:
    """``kind(a=1, b=x)`` or ``kind(1)`` as a policy; ``None`` if ``text`` is not a call."""
    match = _CALL.match(text)
    if match is None:
        return None
    kind, args = match.group(1), match.group(2).strip()
    if kind not in POLICIES:
        raise _unknown(kind)
    cls = POLICIES.get(kind)
    fields: list[str] = (
        [f.name for f in dataclasses.fields(cls) if f.init] if dataclasses.is_dataclass(cls) else []
    )
    data: dict[str, Any] = {"kind": kind}
    for i, arg in enumerate(a.strip() for a in args.split(",") if a.strip()):
        key, eq, value = arg.partition("=")
        if eq:
            data[key.strip()] = _value(value.strip())
        elif i < len(fields):
            data[fields[i]] = _value(arg)
        else:
            raise ConfigError(f"{where_text(where, source)}: too many arguments in '{text}'.")
    return _from_table(data, where, source)


def load_policy_file(path: str | os.PathLike) -> Policy:
    """A policy from a TOML file (see the module notes)."""
    path = Path(path)
    data = load_toml(path)
    data.pop("description", None)
    if "kind" not in data and "stages" not in data:
        raise ConfigError(f"Policy file {path} needs a 'kind' key or a 'stages' list.")
    if "kind" not in data:
        data["kind"] = "compose"
    return get_policy(data, source=path)


def _from_table(data: Mapping[str, Any], where: str, source: Any) -> Policy:
    data = dict(data)
    if "kind" not in data:
        if "stages" not in data:
            raise ConfigError(
                f"Missing key {where_text(f'{where}.kind' if where else 'kind', source)}: name a policy."
            )
        data["kind"] = "compose"
    kind = data.pop("kind")
    try:
        cls = POLICIES.get(kind)
    except UnknownNameError as exc:
        raise ConfigError(
            f"{where_text(f'{where}.kind' if where else 'kind', source)}: {exc}"
        ) from None
    if kind == "compose":
        stages = data.pop("stages", [])
        if data:
            key = next(iter(data))
            raise ConfigError(
                f"Unknown key {where_text(f'{where}.{key}' if where else key, source)}. Valid keys: kind, stages."
            )
        if isinstance(stages, str) or not isinstance(stages, Sequence):
            raise ConfigError(
                f"{where_text(f'{where}.stages' if where else 'stages', source)} must be a list. Got {stages!r}."
            )
        return _compose(stages, f"{where}.stages" if where else "stages", source)
    if kind == "per_layer":
        return _per_layer(data, where, source)
    if not dataclasses.is_dataclass(cls):
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where_text(where, source)}: {exc}") from None
    return build(cls, data, where=where, source=source)


def _compose(items: Sequence[Any], where: str, source: Any) -> Policy:
    from policies.impl.compose import Compose

    stages = tuple(
        get_policy(item, where=f"{where}[{i}]", source=source) for i, item in enumerate(items)
    )
    try:
        # Compose checks that each item is a Stage (its TypeError becomes a ConfigError here).
        return Compose(stages)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        if source is None and not where:
            raise
        raise ConfigError(f"{where_text(where, source)}: {exc}") from None


def _per_layer(data: Mapping[str, Any], where: str, source: Any) -> Policy:
    """``{kind = "per_layer", default = ..., layers = {pattern = policy, ...}}``."""
    from policies.impl.per_layer import IDEAL, PerLayer

    data = dict(data)
    prefix = f"{where}." if where else ""
    unknown = [k for k in data if k not in ("default", "layers")]
    if unknown:
        raise ConfigError(
            f"Unknown key {where_text(prefix + unknown[0], source)}. Valid keys: kind, default, layers."
        )
    layers = data.get("layers", {})
    if not isinstance(layers, Mapping):
        raise ConfigError(
            f"{where_text(prefix + 'layers', source)} must be a table of write-point name or "
            f"pattern = policy. Got {layers!r}."
        )
    default = data.get("default", "baseline")
    rules = tuple(
        (str(pattern), get_policy(spec, where=f"{prefix}layers.{pattern}", source=source))
        for pattern, spec in layers.items()
    )
    base = (
        None if default == IDEAL else get_policy(default, where=f"{prefix}default", source=source)
    )
    try:
        return PerLayer(default=base, layers=rules)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where_text(where or 'per_layer', source)}: {exc}") from None


def get_policy(spec: Any, *, where: str = "", source: Any = None) -> Policy:
    """The policy named or described by ``spec`` (see the module notes).

    Parameters
    ----------
    spec : str, mapping, sequence or Policy
    where, source : optional
        Location of ``spec`` inside a config file, for error messages.

    Raises
    ------
    UnknownNameError
        An unknown name (registered policies and named configs are listed).
    ConfigError
        Unknown keys, bad values, a malformed file (key and file named).
    ValueError
        Incompatible compositions (both policies named).
    """
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, str | os.PathLike):
        text = os.fspath(spec).strip()
        if "+" in text:
            return _compose([part.strip() for part in text.split("+")], where, source)
        if text in POLICIES:
            return _from_table({"kind": text}, where, source)
        called = _from_call(text, where, source)
        if called is not None:
            return called
        if text.endswith(".toml") or os.sep in text:
            if not Path(text).is_file():
                raise ConfigError(f"Policy file {text} does not exist.")
            return load_policy_file(text)
        if (POLICY_CONFIG_DIR / f"{text}.toml").is_file():
            return load_policy_file(POLICY_CONFIG_DIR / f"{text}.toml")
        raise _unknown(text)
    if isinstance(spec, Mapping):
        return _from_table(spec, where, source)
    if isinstance(spec, Sequence):
        if len(spec) == 0:
            raise ValueError(
                "An empty list of policies: name at least one (for example 'baseline')."
            )
        return _compose(list(spec), where, source)
    raise TypeError(f"A policy must be a name, a table, a list of them or a Policy. Got {spec!r}.")


def default_policies() -> dict[str, Policy]:
    """One policy per registered kind that needs no parameters, then every named config.

    This is the set benchmarks and overview tables run ("every default policy"); ``compose``
    and ``format`` (which need parameters) appear through the named configs.
    """
    out: dict[str, Policy] = {}
    for kind in POLICIES.names():
        cls = POLICIES.get(kind)
        if kind in ("compose", "per_layer") or not dataclasses.is_dataclass(cls):
            continue
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.init
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if not required:
            out[kind] = cls()
    for name in config_names():
        out.setdefault(name, load_policy_file(POLICY_CONFIG_DIR / f"{name}.toml"))
    return out
