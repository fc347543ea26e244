"""Contract tests run on every registered policy (a new one is tested the moment it registers).

The contract the README states for any policy (a ``policies.base.Policy`` subclass with
``channel`` and ``plan``): with zero device error the channel changes no bit; at a large error
it does change bits; every plan is a valid WritePlan for its record that places every stored
bit (redundancy may add bits) with non-negative energies; a policy is labelled by its registered
name. These hold for outside policies too (a plain ``Policy`` and a three-copy policy are
registered at test time below). Built-in storage stages are checked further: their bits add up
exactly, a larger verify budget never raises the residual error nor lowers the energy, every pair
composes or names the conflict, and sram_exponent never flips a sign or exponent bit.
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
from memsim.noise.channel import BitFlip
from memsim.timing.plan import WritePlan
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
    if not dataclasses.is_dataclass(cls):
        return cls()
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


def check_zero_error(policy: policies.Policy, fmt: str) -> None:
    stored = policy.storage_format(fmt)
    x = random_tensor(stored)
    before = x.clone()
    channel = policy.channel(fmt, 0.0, 0.0)
    out = channel.apply_(x, seed=1)
    assert out is x
    assert same_bits(x, before)


def check_corrupts(policy: policies.Policy) -> None:
    fmt = "float32" if storable(policy, "float32") else "int8"
    x = random_tensor(policy.storage_format(fmt), n=4000)
    before = x.clone()
    policy.channel(fmt, 0.4, 0.4).apply_(x, seed=2)  # survives 8 verify pulses
    assert not same_bits(x, before)


def check_plan(policy: policies.Policy, device) -> None:
    fmt = "float32" if storable(policy, "float32") else "int8"
    rec = record(fmt)
    plan = policy.plan(rec, device)
    width = get_format(policy.storage_format(fmt)).width
    assert isinstance(plan, WritePlan)
    assert plan.name == rec.name and plan.record_index == rec.index
    # Every stored bit is somewhere, SRAM or RRAM; redundancy and codes may add RRAM bits.
    assert 0 <= plan.sram_bits <= rec.numel * width
    assert plan.rram_bits >= rec.numel * width - plan.sram_bits
    assert plan.total_energy_pj > 0
    assert all(v >= 0 for v in plan.energy_pj.values())
    # A unit pulses at least once, unless it changes no cell (a comparison write skips it).
    assert plan.expected_rounds >= 1 - plan.unchanged_unit_prob
    assert 0 <= plan.unchanged_unit_prob < 1  # random data: some units change
    assert policy.describe()


@pytest.mark.parametrize("name", everything())
@pytest.mark.parametrize("fmt", FORMATS)
def test_zero_device_error_changes_no_bit(name, fmt):
    policy = as_policy(name)
    if not storable(policy, fmt):
        pytest.skip(f"{name} cannot store {fmt}")
    if not policy.follows_sweep:
        pytest.skip(f"{name} uses its own programming condition's error, not the device's")
    check_zero_error(policy, fmt)


@pytest.mark.parametrize("name", everything())
def test_channel_corrupts_at_large_error(name):
    """The counterpart of the zero-error test: the channel is not noiseless by accident."""
    check_corrupts(as_policy(name))


@pytest.mark.parametrize("name", everything())
def test_plan_is_consistent(name, device):
    check_plan(as_policy(name), device)


@pytest.mark.parametrize("name", [n for n in everything() if isinstance(as_policy(n), Stage)])
def test_stage_bits_add_up_exactly(name, device):
    policy = as_policy(name)
    fmt = "float32" if storable(policy, "float32") else "int8"
    rec = record(fmt)
    plan = policy.plan(rec, device)
    width = get_format(policy.storage_format(fmt)).width
    # every stored bit is somewhere: SRAM or RRAM (plus 8 check cells per 64 under ECC)
    data_bits = rec.numel * width - plan.sram_bits
    check_cells = 8 * -(-data_bits // 64) if policy.spec.coding is not None else 0
    assert plan.rram_bits == data_bits + check_cells


@dataclasses.dataclass(frozen=True)
class PlainPolicy(policies.Policy):
    """An outside policy as the README allows: only ``channel`` and ``plan``."""

    def channel(self, fmt, p01, p10=None, **options):
        return BitFlip(fmt, p01, p10)

    def plan(self, record, device):
        width = get_format(record.format).width
        bits = record.numel * width
        return WritePlan(record.name, record.index, rram_bits=bits, energy_pj={"rram_set": bits})


@dataclasses.dataclass(frozen=True)
class ThreeCopies(PlainPolicy):
    """Each bit stored three times and read by majority vote."""

    def channel(self, fmt, p01, p10=None, **options):
        def majority(p):
            return 3 * p**2 - 2 * p**3

        return BitFlip(fmt, majority(p01), majority(p01 if p10 is None else p10))

    def plan(self, record, device):
        one = super().plan(record, device)
        energy = {k: 3 * v for k, v in one.energy_pj.items()}
        return dataclasses.replace(one, rram_bits=3 * one.rram_bits, energy_pj=energy)


@pytest.fixture
def outside_policies():
    added = {"outside_plain": PlainPolicy, "outside_three_copies": ThreeCopies}
    for name, cls in added.items():
        POLICIES.register(name, cls)
    yield added
    for name in added:
        POLICIES._items.pop(name, None)


def test_contract_holds_for_outside_policies(outside_policies, device):
    for name in outside_policies:
        assert name in everything()
        policy = as_policy(name)
        assert policy.name == name and policy.describe() == name  # its registered name
        for fmt in FORMATS:
            check_zero_error(policy, fmt)
        check_corrupts(policy)
        check_plan(policy, device)


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
    return [
        k
        for k, p in policies.default_policies().items()
        if k in POLICIES and k != "compose" and isinstance(p, Stage)
    ]


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
