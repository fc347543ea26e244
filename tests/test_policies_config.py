"""Building policies from names, tables, lists and files; bad input gets clear errors."""

from __future__ import annotations

import pytest

from memsim.config import ConfigError
from memsim.registry import UnknownNameError
from policies import (
    POLICIES,
    Compose,
    EccSecded,
    FormatChange,
    Policy,
    SramExponent,
    WriteVerify,
    config_names,
    default_policies,
    get_policy,
)


def test_name_table_list_and_plus_forms():
    assert get_policy("ecc_secded") == EccSecded()
    assert get_policy({"kind": "write_verify", "max_extra_rounds": 2}) == WriteVerify(2)
    both = get_policy(
        [{"kind": "format", "to": "int8"}, {"kind": "write_verify", "max_extra_rounds": 2}]
    )
    assert both == Compose((FormatChange("int8"), WriteVerify(2)))
    assert get_policy("sram_exponent + ecc_secded") == Compose((SramExponent(), EccSecded()))
    assert get_policy(
        {"kind": "compose", "stages": ["sram_exponent", "ecc_secded"]}
    ).describe() == ("sram_exponent + ecc_secded")
    policy = WriteVerify(1)
    assert get_policy(policy) is policy


def test_composition_decides_every_slot_once():
    policy = get_policy(["int8", {"kind": "write_verify", "max_extra_rounds": 2}])
    assert policy.storage_format("float32") == "int8"
    assert policy.spec.verify == WriteVerify(2)
    nested = get_policy([policy, "data_comparison_write"])
    assert nested.spec.comparison is not None and nested.spec.format == FormatChange("int8")


def test_named_configs_load():
    assert {"int8", "sram_exponent_ecc", "int8_write_verify_2"} <= set(config_names())
    for name in config_names():
        assert get_policy(name).describe()
    assert get_policy("int8_write_verify_2").storage_format("float32") == "int8"


def test_default_policies_cover_every_parameterless_kind():
    defaults = default_policies()
    assert "baseline" in defaults and "ecc_secded" in defaults and "int8" in defaults
    assert "format" not in defaults  # needs 'to'


def test_unknown_policy_lists_names_and_suggests():
    with pytest.raises(UnknownNameError) as info:
        get_policy("write_verfy")
    msg = str(info.value)
    assert "Did you mean 'write_verify'?" in msg
    for name in POLICIES.names():
        assert name in msg
    assert "int8_write_verify_2" in msg  # named configs are listed too


def test_unknown_policy_suggests_by_prefix():
    with pytest.raises(UnknownNameError, match="Did you mean 'ecc_secded'"):
        get_policy("ecc")


def test_unknown_kind_in_a_table_names_the_key():
    with pytest.raises(ConfigError, match=r"'stages\[1\]\.kind'.*Did you mean 'ecc_secded'"):
        get_policy({"kind": "compose", "stages": ["baseline", {"kind": "ecc_sec"}]})


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('kind = "write_verify"\nmax_extra_round = 2\n')
    with pytest.raises(
        ConfigError, match=r"'max_extra_round' in .*mine\.toml.*Did you mean 'max_extra_rounds'"
    ):
        get_policy(str(path))


def test_stage_list_in_a_file(tmp_path):
    path = tmp_path / "combo.toml"
    path.write_text(
        'description = "x"\n[[stages]]\nkind = "format"\nto = "float16"\n[[stages]]\nkind = "ecc_secded"\n'
    )
    assert get_policy(path).describe() == "format(to=float16) + ecc_secded"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"kind": "write_verify", "max_extra_rounds": -1},
            r"The 'max_extra_rounds' parameter of write_verify must be an int in \[0, 64\]\. Got -1\.",
        ),
        (
            {"kind": "write_verify", "misread_prob": 1.5},
            r"The 'misread_prob' parameter of write_verify must be a float in \[0, 1\]\. Got 1\.5\.",
        ),
        ({"kind": "format", "to": "int4"}, r"The 'to' parameter of format must be one of"),
        ({"kind": "sram_msb", "n": -2}, r"The 'n' parameter of sram_msb must be an int"),
        ({"kind": "low_energy", "p_source": "dice"}, r"The 'p_source' parameter of low_energy"),
        ({"kind": "low_energy", "condition": "nope"}, r"Unknown programming condition 'nope'"),
        (
            {"kind": "two_t_two_r", "sigma_sa_ln": -0.1},
            r"The 'sigma_sa_ln' parameter of two_t_two_r",
        ),
        (
            {"kind": "write_verify", "max_extra_rounds": "two"},
            r"'max_extra_rounds'.*must be an integer",
        ),
    ],
)
def test_bad_parameter_values(config, message):
    with pytest.raises((ConfigError, ValueError, TypeError), match=message):
        get_policy(config)


def test_missing_required_key():
    with pytest.raises(ConfigError, match=r"Missing key 'to'"):
        get_policy("format")


def test_incompatible_compositions_name_both_policies():
    with pytest.raises(
        ValueError,
        match=r"'write_verify\(max_extra_rounds=1\)' and 'write_verify\(max_extra_rounds=2\)'",
    ):
        get_policy(
            [
                {"kind": "write_verify", "max_extra_rounds": 1},
                {"kind": "write_verify", "max_extra_rounds": 2},
            ]
        )
    with pytest.raises(ValueError, match=r"'format\(to=int8\)' and 'binary'.*storage format"):
        get_policy(["int8", "binary"])
    with pytest.raises(ValueError, match=r"'sram_exponent' and 'sram_msb\(n=4\)'"):
        get_policy(["sram_exponent", {"kind": "sram_msb", "n": 4}])
    with pytest.raises(
        ValueError, match=r"'format\(to=int8\)' and 'sram_exponent'.*cannot store int8"
    ):
        get_policy(["int8", "sram_exponent"])
    with pytest.raises(ValueError, match=r"'binary' and 'sram_exponent'.*binary"):
        get_policy(["binary", "sram_exponent"])


def test_sram_msb_wider_than_the_word():
    with pytest.raises(ValueError, match=r"sram_msb\(n=12\)' cannot store int8.*8"):
        get_policy({"kind": "sram_msb", "n": 12}).validate("int8")


def test_bad_spec_types():
    with pytest.raises(TypeError, match="A policy must be"):
        get_policy(3)
    with pytest.raises(ValueError, match="empty list"):
        get_policy([])
    with pytest.raises(ConfigError, match="does not exist"):
        get_policy("missing/policy.toml")


class _Custom(Policy):
    """A policy computing its own channel and plan (not a composable stage)."""

    def channel(self, fmt, p01, p10=None, **options):
        raise NotImplementedError

    def plan(self, record, device):
        raise NotImplementedError


def test_only_stages_compose():
    with pytest.raises(TypeError, match=r"Stage 1 of compose must be a composable policy"):
        get_policy(["baseline", _Custom()])
    assert get_policy(_Custom()).name == "_Custom"


def test_follows_sweep():
    assert get_policy("low_energy").follows_sweep
    assert not get_policy("low_energy_fixed").follows_sweep
    assert not get_policy(["low_energy_fixed", "ecc_secded"]).follows_sweep


def test_describe_round_trips_through_get_policy():
    for name, policy in default_policies().items():
        assert get_policy(policy.describe()) == policy, name
    assert get_policy("write_verify(2)") == WriteVerify(2)
    assert get_policy("format(to=int8) + write_verify(max_extra_rounds=1)") == Compose(
        (FormatChange("int8"), WriteVerify(1))
    )
    with pytest.raises(ConfigError, match="too many arguments"):
        get_policy("ecc_secded(3)")
    with pytest.raises(UnknownNameError, match="Did you mean 'write_verify'"):
        get_policy("write_verif(2)")
