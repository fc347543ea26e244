"""Configs as data: TOML text into frozen dataclasses, with errors that name the key and file.

Every stage of memsim (device presets, memory-system parameters, policies, experiments) is
configured from TOML. This module is the one place that turns parsed TOML into typed objects:

* ``load_toml(path)`` parses a file; a syntax error becomes a :class:`ConfigError` carrying the
  file name and line number.
* ``build(cls, data, where=...)`` builds a (frozen) dataclass from a mapping. Unknown keys and
  missing required keys are errors naming the dotted path and listing the valid keys; values are
  coerced to the annotated type (int, float, str, bool, tuples, nested dataclasses, ``X | None``).
* ``check_range`` / ``check_choice`` give range errors in one house style.
* ``to_toml(data)`` is the way back: plain data as TOML text that loads to the same data
  (``toml_value(v)`` for one value, as messages quote an override).

Configs never go through ``eval``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: A dataclass type (what :func:`build` builds).
D = TypeVar("D", bound="DataclassInstance")

#: The top-level folder holding shipped presets and experiment configs.
CONFIG_DIR = Path(
    os.environ.get("MEMSIM_CONFIGS", Path(__file__).resolve().parent.parent / "configs")
)


class ConfigError(ValueError):
    """A config file or mapping is malformed; the message names the key and the file."""


def where_text(where: str, source: str | os.PathLike | None) -> str:
    """Format a location as ``'key.sub' in file.toml`` for messages."""
    loc = f"'{where}'" if where else "the top level"
    return f"{loc} in {source}" if source else loc


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a TOML file; a syntax error names the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:  # message carries "(at line N, column M)"
        raise ConfigError(f"Malformed TOML in {path}: {exc}") from None


def preset_path(name_or_path: str | os.PathLike, directory: Path, kind: str) -> Path:
    """A shipped preset's file (``directory/<name>.toml``) or the given TOML path.

    A name without a ``.toml`` suffix or a path separator that is not an existing file is a
    preset name; an unknown one is a :class:`ConfigError` listing the known presets.
    """
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.suffix == ".toml" or os.sep in text or path.is_file():
        return path
    path = directory / f"{text}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.toml"))) or "none"
        raise ConfigError(
            f"Unknown {kind} preset '{text}'. Known presets: {known} (in {directory}), "
            "or give the path of a .toml file."
        )
    return path


def loads_toml(text: str, source: str = "<string>") -> dict[str, Any]:
    """Parse TOML text; a syntax error names the source and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Malformed TOML in {source}: {exc}") from None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str, source: Any) -> Any:
    """Coerce a parsed TOML value to the annotated type ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where, source)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(
            f"{where_text(where, source)} must be one of "
            f"{' | '.join(_type_name(a) for a in args)}. Got {value!r}."
        )
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(
                f"{where_text(where, source)} must be one of {list(args)}. Got {value!r}."
            )
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return build(tp, value, where=where, source=source)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise ConfigError(f"{where_text(where, source)} must be a list. Got {value!r}.")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = args[0]
            return tuple(_coerce(v, item, f"{where}[{i}]", source) for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(
                    f"{where_text(where, source)} must have {len(args)} entries. Got {len(value)}."
                )
            return tuple(
                _coerce(v, a, f"{where}[{i}]", source) for i, (v, a) in enumerate(zip(args, value))
            )
        item = args[0] if args else Any
        out = [_coerce(v, item, f"{where}[{i}]", source) for i, v in enumerate(value)]
        return out if origin is list or tp is list else tuple(out)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where_text(where, source)} must be a table. Got {value!r}.")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(v, vt, f"{where}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where_text(where, source)} must be true or false. Got {value!r}.")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where_text(where, source)} must be an integer. Got {value!r}.")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where_text(where, source)} must be a number. Got {value!r}.")
        value = float(value)
        if math.isnan(value):
            raise ConfigError(f"{where_text(where, source)} must not be NaN.")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where_text(where, source)} must be a string. Got {value!r}.")
        return value
    if tp in (Path, os.PathLike):
        if not isinstance(value, str | os.PathLike):
            raise ConfigError(f"{where_text(where, source)} must be a path string. Got {value!r}.")
        return Path(value)
    return value


def build(cls: type[D], data: Mapping[str, Any], *, where: str = "", source: Any = None) -> D:
    """Build dataclass ``cls`` from ``data``, checking keys and types.

    Parameters
    ----------
    cls : dataclass type
        The target. Its ``__post_init__`` may raise ``ValueError`` for range checks; that is
        re-raised as :class:`ConfigError` with the location prefixed.
    data : mapping
        Parsed TOML (or any dict).
    where : str
        Dotted path of ``data`` inside its file, for messages.
    source : path-like, optional
        The file the data came from, for messages.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where_text(where, source)} must be a table. Got {data!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        path = f"{where}.{key}" if where else key
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"Unknown key {where_text(path, source)}.{hint} Valid keys: {', '.join(sorted(fields))}."
        )
    kwargs = {}
    for name, f in fields.items():
        path = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], path, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(
                f"Missing key {where_text(path, source)}. Required keys: "
                f"{', '.join(n for n, g in fields.items() if g.default is dataclasses.MISSING and g.default_factory is dataclasses.MISSING)}."
            )
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        # A range check names its parameter ("The 'limit' parameter of ..."): the message then
        # names the key in its table ('train.limit'), not only the table.
        named = re.match(r"The '(\w+)' parameter", str(exc))
        key = f"{where}.{named[1]}" if where and named and named[1] in fields else where
        raise ConfigError(f"{where_text(key, source)}: {exc}") from None


def to_dict(obj: Any) -> Any:
    """A dataclass (possibly nested) as plain TOML-friendly data (tuples become lists, paths str)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def check_range(
    owner: str,
    name: str,
    value: Any,
    *,
    kind: type = float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> None:
    """Raise ``ValueError`` in the house style if ``value`` is not a ``kind`` in the interval.

    Floats must be finite (an unbounded interval is open: ``inf`` is no learning rate or
    tolerance) unless ``allow_inf``.

    Example message: "The 'max_rounds' parameter of WriteVerify must be an int in [0, 64]. Got -1."
    """
    lo = "(" if low_open or (low is None and not allow_inf) else "["
    hi = ")" if high_open or (high is None and not allow_inf) else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    article = "an" if kind is int else "a"
    kind_name = "int" if kind is int else "float"
    msg = f"The '{name}' parameter of {owner} must be {article} {kind_name} in {interval}. Got {value!r}."
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | _np_integer()):
            raise TypeError(msg)
    else:
        if isinstance(value, bool) or not isinstance(value, int | float | _np_number()):
            raise TypeError(msg)
        if math.isnan(float(value)) or (math.isinf(float(value)) and not allow_inf):
            raise ValueError(msg)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(msg)
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(msg)


def check_choice(owner: str, name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ``ValueError`` if ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(
            f"The '{name}' parameter of {owner} must be one of {list(choices)}. Got {value!r}."
        )


def _np_integer():
    import numpy as np

    return np.integer


def _np_number():
    import numpy as np

    return np.number


# --------------------------------------------------------------------------- TOML out


def to_toml(data: Mapping[str, Any]) -> str:
    """Plain data as TOML text (scalars and arrays first, then one ``[table]`` per mapping)."""
    lines: list[str] = []
    _toml_table(data, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_table(data: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping) and v is not None}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    if path:
        lines += ["", f"[{'.'.join(path)}]"]
    lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in scalars.items()]
    for k, v in tables.items():
        _toml_table(v, [*path, _toml_key(k)], lines)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string: characters outside the BMP stay literal (TOML has no surrogates)."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    """One value as TOML text (what ``--set key=<value>`` would take to give it)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return (
            repr(v)
            if math.isfinite(v)
            else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
        )
    if isinstance(v, str | Path):
        return _toml_string(str(v))
    if isinstance(v, Mapping):
        return (
            "{"
            + ", ".join(f"{_toml_key(k)} = {toml_value(x)}" for k, x in v.items() if x is not None)
            + "}"
        )
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"Cannot write {v!r} as TOML.")
