"""Contract tests run on every registered policy (a new one is tested the moment it registers).

Invariants from STYLE.md / issue 5: with zero device error the channel changes no bit; a larger
verify budget never raises the residual error and never lowers the energy; every plan is a valid
WritePlan whose bits add up; sram_exponent never flips a sign or exponent bit.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from helpers import activation_record, random_values, same_bits, words_of

import policies
from memsim.device import load_device
from memsim.formats import get_format
from memsim.trace.records import WriteRecord
from policies import POLICIES, Stage, get_policy
from policies.accuracy import cell_error_probs

#: Parameters for registered kinds that have required fields (a new kind with required
#: fields must add an example here, or the contract test fails and says so).
EXAMPLES = {
    "format": {"to": "float16"},
    "compose": {"stages": ["sram_exponent", "ecc_secded"]},
}

FORMATS = ("float32", "float16", "bfloat16", "float64", "int8")


def example(kind: str) -> policies.Policy:
    cls = POLICIES.get(kind)
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if required and kind not in EXAMPLES:
        pytest.fail(f"policy '{kind}' has required fields {required}: add an example to EXAMPLES")
    return get_policy({"kind": kind, **EXAMPLES.get(kind, {})})


def everything() -> list[str]:
    return sorted(set(POLICIES.names()) | set(policies.config_names()))


def as_policy(name: str) -> policies.Policy:
    return example(name) if name in POLICIES else get_policy(name)


random_tensor = random_values


def bits_of(x: torch.Tensor) -> np.ndarray:
    return words_of(x).astype(get_format(x.dtype).np_uint)


@pytest.fixture(scope="module")
def device():
    return load_device()


def record(fmt: str, ones: float = 0.3, numel: int = 96) -> WriteRecord:
    return activation_record(fmt, numel, ones=ones)


def storable(policy: policies.Policy, fmt: str) -> bool:
    try:
        policy.validate(fmt)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("name", everything())
@pytest.mark.parametrize("fmt", FORMATS)
def test_zero_device_error_changes_no_bit(name, fmt):
    policy = as_policy(name)
    if not storable(policy, fmt):
        pytest.skip(f"{name} cannot store {fmt}")
    if not policy.follows_sweep:
        pytest.skip(f"{name} uses its own programming condition's error, not the device's")
    stored = policy.storage_format(fmt)
    x = random_tensor(stored)
    before = x.clone()
    channel = policy.channel(fmt, 0.0, 0.0)
    out = channel.apply_(x, seed=1)
    assert out is x
    assert same_bits(x, before)


@pytest.mark.parametrize("name", everything())
def test_channel_corrupts_at_large_error(name):
    """The counterpart of the zero-error test: the channel is not noiseless by accident."""
    policy = as_policy(name)
    fmt = "float32" if storable(policy, "float32") else "int8"
    stored = policy.storage_format(fmt)
    x = random_tensor(stored, n=4000)
    before = x.clone()
    policy.channel(fmt, 0.4, 0.4).apply_(x, seed=2)  # survives 8 verify pulses
    assert not same_bits(x, before)


@pytest.mark.parametrize("name", everything())
def test_plan_is_consistent(name, device):
    policy = as_policy(name)
    fmt = "float32" if storable(policy, "float32") else "int8"
    rec = record(fmt)
    plan = policy.plan(rec, device)
    width = get_format(policy.storage_format(fmt)).width
    assert plan.name == rec.name and plan.record_index == rec.index
    # every stored bit is somewhere: SRAM or RRAM (plus 8 check cells per 64 under ECC)
    data_bits = rec.numel * width - plan.sram_bits
    coded = isinstance(policy, Stage) and policy.spec.coding is not None
    check_cells = 8 * -(-data_bits // 64) if coded else 0
    assert plan.rram_bits == data_bits + check_cells
    assert plan.total_energy_pj > 0
    assert all(v >= 0 for v in plan.energy_pj.values())
    assert plan.expected_rounds >= 1
    assert policy.describe()


@pytest.mark.parametrize("name", [n for n in everything() if n != "write_verify"])
def test_larger_verify_budget_never_raises_error_nor_lowers_energy(name, device):
    policy = as_policy(name)
    spec = policy.spec if isinstance(policy, Stage) else None
    if spec is None or spec.verify is not None:
        pytest.skip(f"{name} fixes its own verify budget")
    fmt = "float32" if storable(policy, "float32") else "int8"
    stored = policy.storage_format(fmt)
    errors, energies = [], []
    for k in range(5):
        combined = get_policy([policy, {"kind": "write_verify", "max_extra_rounds": k}])
        q01, q10 = cell_error_probs(combined.spec, stored, 1e-2, 3e-2)
        errors.append(np.concatenate([q01, q10]))
        energies.append(combined.plan(record(fmt), device).total_energy_pj)
    for k in range(4):
        assert np.all(errors[k + 1] <= errors[k])
        assert energies[k + 1] >= energies[k]
    assert np.all(errors[4] < errors[0])  # and verifying does help
    assert energies[4] > energies[0]  # and verify reads and re-pulses cost energy


@pytest.mark.parametrize("fmt", ("float32", "float16", "bfloat16", "float64"))
@pytest.mark.parametrize("spec", ["sram_exponent", "sram_msb", "sram_exponent+ecc_secded"])
def test_sram_exponent_never_flips_sign_or_exponent(spec, fmt):
    policy = get_policy(spec)
    f = get_format(fmt)
    protected = 1 + len(f.fields["exponent"])
    x = random_tensor(fmt, n=2000)
    before = bits_of(x).view(f.np_uint)
    policy.channel(fmt, 0.3, 0.3).apply_(x, seed=5)
    diff = bits_of(x).view(f.np_uint) ^ before
    top = diff >> f.np_uint.type(f.width - protected)
    assert not top.any()
    assert diff.any()  # the mantissa did get flipped


def test_sram_exponent_on_int8_is_refused():
    with pytest.raises(ValueError, match=r"sram_exponent.*int8"):
        get_policy("sram_exponent").validate("int8")
    with pytest.raises(ValueError, match=r"'format\(to=int8\)' and 'sram_exponent'.*int8"):
        get_policy([{"kind": "format", "to": "int8"}, "sram_exponent"])


def _kinds_without_parameters() -> list[str]:
    return [k for k, p in policies.default_policies().items() if k in POLICIES and k != "compose"]


@pytest.mark.parametrize("pair", list(itertools.combinations(_kinds_without_parameters(), 2)))
def test_every_pair_composes_or_names_the_conflict(pair, device):
    try:
        policy = get_policy(list(pair))
    except ValueError as exc:
        assert "cannot be combined" in str(exc) and all(p in str(exc) for p in pair)
        return
    fmt = "float32" if storable(policy, "float32") else "int8"
    stored = policy.storage_format(fmt)
    if policy.follows_sweep:
        x = random_tensor(stored)
        before = x.clone()
        policy.channel(fmt, 0.0).apply_(x, seed=0)
        assert same_bits(x, before)
    plan = policy.plan(record(fmt), device)
    assert plan.total_energy_pj > 0


def test_pair_check_both_composes_and_refuses():
    # The pair test above must not pass by refusing everything: pairs of policies that decide
    # different things compose, and two policies deciding the same thing are refused.
    pairs = list(itertools.combinations(_kinds_without_parameters(), 2))
    outcomes = {}
    for pair in pairs:
        try:
            get_policy(list(pair))
            outcomes[pair] = "composed"
        except ValueError:
            outcomes[pair] = "refused"
    assert (
        outcomes.get(("write_verify", "ecc_secded"), outcomes.get(("ecc_secded", "write_verify")))
        == "composed"
    )
    assert sum(v == "composed" for v in outcomes.values()) >= len(pairs) // 4
    assert "refused" in outcomes.values()
