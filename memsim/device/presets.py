"""Finding and reading device presets: named TOML files under ``configs/device/``.

Shared by the programming-condition table (``conditions.py``) and the device bundle
(``params.py``). A preset is named by its file stem; a path to any TOML file works too.
Keys carry their units in their names (``t_pulse_ns``), so a key written without its unit is
reported as such instead of as a plain unknown key.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from memsim.config import CONFIG_DIR, ConfigError, build, load_toml, where_text

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

D = TypeVar("D", bound="DataclassInstance")

#: Folder of device bundles (``default.toml``); programming conditions live in ``conditions/``.
DEVICE_DIR = CONFIG_DIR / "device"
CONDITION_DIR = DEVICE_DIR / "conditions"


def preset_names(folder: Path) -> list[str]:
    """Stems of the ``*.toml`` files in ``folder``, sorted."""
    return sorted(p.stem for p in folder.glob("*.toml")) if folder.is_dir() else []


def looks_like_path(name: str | os.PathLike) -> bool:
    text = os.fspath(name)
    return text.endswith(".toml") or os.sep in text or "/" in text


def resolve(name_or_path: str | os.PathLike, folder: Path, kind: str) -> Path:
    """The file of preset ``name_or_path``; unknown names list the known ones."""
    if looks_like_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"{kind} file {path} does not exist.")
        return path
    if not isinstance(name_or_path, str):
        raise TypeError(f"A {kind} must be given by name or path. Got {name_or_path!r}.")
    path = folder / f"{name_or_path}.toml"
    if path.is_file():
        return path
    known = preset_names(folder)
    close = difflib.get_close_matches(name_or_path, known, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"Unknown {kind} '{name_or_path}'.{hint} Known: {', '.join(known) or 'none'} (in {folder})."
    )


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass inside an annotation such as ``X`` or ``X | None``."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if isinstance(arg, type) and dataclasses.is_dataclass(arg):
                return arg
    return None


def check_units(cls: type, data: Mapping[str, Any], *, where: str = "", source: Any = None) -> None:
    """Raise ConfigError for keys that name a field but leave out its unit suffix.

    ``t_pulse = 10`` where the field is ``t_pulse_ns`` is almost surely a missing unit; say so
    and name the unit-carrying key. Other unknown keys are left to :func:`memsim.config.build`.
    """
    if not isinstance(data, Mapping):
        return
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in fields:
            with_unit = [f for f in fields if f.startswith(f"{key}_")]
            if with_unit:
                raise ConfigError(
                    f"Key {where_text(path, source)} has no unit in its name: "
                    f"write '{with_unit[0]}' (units live in key names)."
                )
            continue
        inner = _dataclass_of(hints[key])
        if inner is not None:
            check_units(inner, value, where=path, source=source)


def build_checked(cls: type[D], data: Mapping[str, Any], *, source: Any) -> D:
    """:func:`memsim.config.build` after the missing-unit check."""
    check_units(cls, data, source=source)
    return build(cls, data, source=source)


def read_named(path: Path) -> dict[str, Any]:
    """Parse a preset file; its ``name`` defaults to the file stem and must match it if given."""
    data = load_toml(path)
    name = data.setdefault("name", path.stem)
    if name != path.stem and path.parent.resolve() in (
        DEVICE_DIR.resolve(),
        CONDITION_DIR.resolve(),
    ):
        raise ConfigError(
            f"Key 'name' in {path} must match the file name '{path.stem}'. Got {name!r}."
        )
    return data
