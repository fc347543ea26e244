"""Configs as data: TOML into frozen dataclasses, errors naming key, value and file."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from memsim.config import (
    ConfigError,
    build,
    check_choice,
    check_range,
    load_toml,
    loads_toml,
    to_dict,
)


@dataclass(frozen=True)
class Inner:
    t_pulse_ns: float
    label: str = "x"


@dataclass(frozen=True)
class Outer:
    n_banks: int
    inner: Inner
    grid: tuple[float, ...] = (1e-3,)
    note: str | None = None
    flags: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_range("Outer", "n_banks", self.n_banks, kind=int, low=1)


def test_build_nested_and_coerces_types():
    cfg = build(Outer, {"n_banks": 4, "inner": {"t_pulse_ns": 10}, "grid": [1e-4, 1e-2]})
    assert cfg.inner.t_pulse_ns == 10.0 and isinstance(cfg.inner.t_pulse_ns, float)
    assert cfg.grid == (1e-4, 1e-2)
    assert to_dict(cfg)["grid"] == [1e-4, 1e-2]


def test_unknown_key_names_path_file_and_suggests():
    with pytest.raises(ConfigError) as exc:
        build(Outer, {"n_banks": 4, "inner": {"t_puls_ns": 10}}, source="mem.toml")
    msg = str(exc.value)
    assert "'inner.t_puls_ns'" in msg and "mem.toml" in msg and "t_pulse_ns" in msg


def test_missing_key_is_named():
    with pytest.raises(ConfigError, match="Missing key 'inner'"):
        build(Outer, {"n_banks": 4})


def test_wrong_type_names_key_and_value():
    with pytest.raises(ConfigError, match=r"'n_banks'.*integer.*'four'"):
        build(Outer, {"n_banks": "four", "inner": {"t_pulse_ns": 1}})
    with pytest.raises(ConfigError, match="true or false"):
        build(Outer, {"n_banks": 1, "inner": {"t_pulse_ns": 1}, "flags": {"a": 1}})


def test_range_check_from_post_init_becomes_config_error():
    with pytest.raises(
        ConfigError, match=r"The 'n_banks' parameter of Outer must be an int in \[1, inf\). Got 0."
    ):
        build(Outer, {"n_banks": 0, "inner": {"t_pulse_ns": 1}}, source="f.toml")


def test_malformed_toml_reports_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('a = 1\nb = "unterminated\n')
    with pytest.raises(ConfigError, match=r"bad.toml.*line 2"):
        load_toml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")
    assert loads_toml("x = 2")["x"] == 2


@pytest.mark.parametrize("value", [float("nan"), -1.0, 2.0, True])
def test_check_range_rejects(value):
    with pytest.raises((ValueError, TypeError)):
        check_range("Thing", "p", value, low=0.0, high=1.0)


def test_an_unbounded_range_takes_no_infinity_unless_allowed():
    check_range("train", "lr", 1e9, low=0.0, low_open=True)
    for value in (float("inf"), float("-inf")):
        with pytest.raises(ValueError, match=r"must be a float in \(0\.0, inf\)\. Got -?inf"):
            check_range("train", "lr", value, low=0.0, low_open=True)
    check_range("Thing", "budget", float("inf"), low=0.0, allow_inf=True)
    with pytest.raises(ValueError, match=r"\[0\.0, inf\]\. Got nan"):
        check_range("Thing", "budget", float("nan"), low=0.0, allow_inf=True)


def test_check_range_open_bounds_and_choice():
    check_range("Thing", "p", 1.0, low=0.0, high=1.0, low_open=True)
    with pytest.raises(ValueError, match=r"\(0.0, 1.0\]"):
        check_range("Thing", "p", 0.0, low=0.0, high=1.0, low_open=True)
    with pytest.raises(ValueError, match="one of"):
        check_choice("Thing", "mode", "z", ["a", "b"])
