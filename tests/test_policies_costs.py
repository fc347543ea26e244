"""Plans against closed forms (records with ones_fraction 0/1 make expected counts exact),
and each policy's noise model against its formula."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from memsim.device import count_transitions, load_condition, load_device
from memsim.formats import get_format
from memsim.noise.channel import BitFlip
from memsim.trace.records import WriteRecord
from policies import BinaryChannel, exact_energy_pj, get_policy, secded
from policies.costs import check_bit_counts

# A deterministic bit pattern per float32 word (MSB first): every element stores exactly this.
PATTERN32 = np.array([int(c) for c in "10110010011100001111010100101101"], dtype=float)


@pytest.fixture(scope="module")
def device():
    """The default bundle with SET and RESET energies made different, to tell them apart."""
    base = load_device()
    cond = dataclasses.replace(base.condition, e_set_pj=0.5, e_reset_pj=0.2)
    return dataclasses.replace(base, condition=cond)


def record(pattern: np.ndarray = PATTERN32, numel: int = 37, fmt: str = "float32") -> WriteRecord:
    return WriteRecord(
        3,
        "conv1",
        "Conv2d",
        "activation",
        (numel,),
        numel,
        fmt,
        len(pattern),
        0,
        tuple(pattern),
        0.0,
    )


def words_of(pattern: np.ndarray, numel: int) -> np.ndarray:
    """The stored uint32 words of a tensor whose every element has bit pattern ``pattern``."""
    value = int("".join(str(int(b)) for b in pattern), 2)
    return np.full(numel, value, dtype=np.uint32)


def test_plain_write_energy_is_the_closed_form(device):
    plan = get_policy("baseline").plan(record(), device)
    ones = 37 * PATTERN32.sum()
    zeros = 37 * 32 - ones
    assert plan.rram_bits == 37 * 32 and plan.sram_bits == 0
    assert plan.energy_pj["rram_set"] == pytest.approx(ones * 0.5)
    assert plan.energy_pj["rram_reset"] == pytest.approx(zeros * 0.2)
    periphery = 37 * 32 * device.condition.e_write_periphery_pj_per_bit  # every written bit
    assert device.condition.e_write_periphery_pj_per_bit > 0
    assert plan.energy_pj["write_periphery"] == pytest.approx(periphery)
    assert plan.total_energy_pj == pytest.approx(ones * 0.5 + zeros * 0.2 + periphery)
    assert plan.rounds_pmf == (1.0,) and plan.t_verify_ns == 0
    # the same count from the device's transition counter on the materialised words
    words = words_of(PATTERN32, 37)
    exact = exact_energy_pj(words, words, device.condition, scheme="plain")
    assert exact["rram_set"] == pytest.approx(plan.energy_pj["rram_set"])
    assert exact["rram_reset"] == pytest.approx(plan.energy_pj["rram_reset"])


def test_dcw_pulses_nothing_when_content_repeats(device):
    plan = get_policy("data_comparison_write").plan(record(), device)
    words = words_of(PATTERN32, 37)
    exact = exact_energy_pj(words, words, device.condition)  # scheme="dcw"
    assert plan.energy_pj["rram_set"] == exact["rram_set"] == 0
    assert plan.energy_pj["rram_reset"] == exact["rram_reset"] == 0
    assert plan.energy_pj["pre_read"] == pytest.approx(exact["pre_read"])
    assert plan.energy_pj["pre_read"] == pytest.approx(37 * 32 * device.condition.e_read_pj_per_bit)
    shadow = get_policy("dcw_shadow").plan(record(), device)
    assert shadow.total_energy_pj == 0


def test_dcw_expected_transitions_from_statistics(device):
    """Old and new independent with the same per-bit statistics: n01 = n10 = Σ numel f (1 - f)."""
    f = np.linspace(0.05, 0.95, 32)
    plan = get_policy("data_comparison_write").plan(record(f, numel=100), device)
    n01 = 100 * np.sum(f * (1 - f))
    assert plan.energy_pj["rram_set"] == pytest.approx(n01 * 0.5)
    assert plan.energy_pj["rram_reset"] == pytest.approx(n01 * 0.2)
    baseline = get_policy("baseline").plan(record(f, numel=100), device)
    assert plan.energy_pj["rram_set"] < baseline.energy_pj["rram_set"]


def _latency(plan, trace_record) -> float:
    """Deterministic latency of one write on one bank, no overlap, no reads."""
    from memsim.timing import MemoryParams, simulate
    from memsim.trace.records import make_trace

    trace = make_trace("t", trace_record.format, [trace_record])
    params = MemoryParams(n_banks=1, overlap=False, reads=False)
    return simulate([plan], trace, params, seed=0, deterministic=True).latency_ns


def test_dcw_unit_that_changes_nothing_takes_no_pulse_round(device):
    """Sources §6: a comparison write of a word that does not change pulses nothing and takes
    no pulse time; the access and the pre-read remain. Before, every unit took a round."""
    from memsim.timing import MemoryParams
    from memsim.timing.mapping import rram_unit_ns

    for rec in (record(numel=640), record(np.zeros(32), numel=640)):  # repeating, all zero
        rec = dataclasses.replace(rec, index=0)  # the trace's only record
        dcw = get_policy("data_comparison_write").plan(rec, device)
        base = get_policy("baseline").plan(rec, device)
        assert dcw.unchanged_unit_prob == 1 and dcw.expected_rounds == 0
        params = MemoryParams(n_banks=1, overlap=False, reads=False)
        t_pre = device.condition.t_read_ns
        assert dcw.n_units == 320 and rram_unit_ns(dcw, params) == params.t_access_ns + t_pre
        assert _latency(dcw, rec) == pytest.approx(320 * (params.t_access_ns + t_pre))
        t_pulse = device.condition.t_pulse_ns
        assert _latency(base, rec) == pytest.approx(320 * (params.t_access_ns + t_pulse))
        # With a shadow copy the controller knows nothing changed: the unit is not accessed.
        shadow = get_policy("dcw_shadow").plan(rec, device)
        assert shadow.t_pre_read_ns == 0 and _latency(shadow, rec) == 0


@pytest.mark.parametrize(
    ("spec", "rram_bits_per_element"),
    [("data_comparison_write", 32), ("ecc_secded+data_comparison_write", 32),
     ("sram_exponent+data_comparison_write", 23)],
)  # fmt: skip
def test_dcw_unchanged_units_closed_form(device, spec, rram_bits_per_element):
    """A unit is unchanged when its old and new data are both zero: ``z^(2·64/m)`` with ``z``
    the zero fraction and ``m`` the RRAM bits per element; 64 data bits per unit, with SECDED's
    8 check bits too (72-bit units)."""
    f = np.linspace(0.05, 0.45, 32)
    rec = dataclasses.replace(record(f, numel=1000), zero_fraction=0.6)
    plan = get_policy(spec).plan(rec, device)
    p = 0.6 ** (2 * 64 / rram_bits_per_element)
    assert plan.unchanged_unit_prob == pytest.approx(p, rel=1e-12)
    assert plan.expected_rounds == pytest.approx(1 - p)
    assert get_policy("baseline").plan(rec, device).unchanged_unit_prob == 0


def test_dcw_unchanged_units_are_drawn_at_their_probability(device):
    """Sampled rounds: the share of units with no round is Binomial(n, p); the deterministic
    mode gives the mean."""
    from memsim.timing import MemoryParams
    from memsim.timing.mapping import rram_bursts, rram_round_ns, rram_unit_ns

    f = np.full(32, 0.3)
    rec = dataclasses.replace(record(f, numel=40000), zero_fraction=0.7)
    plan = get_policy("data_comparison_write").plan(rec, device)
    p = plan.unchanged_unit_prob
    assert p == pytest.approx(0.7**4)
    params = MemoryParams(n_banks=1, overlap=False, reads=False, burst_units=1)
    drawn = rram_bursts(plan, params, 0, np.random.default_rng(5))
    zero = int((drawn.rounds == 0).sum())
    assert len(drawn) == plan.n_units == 20000
    assert binomtest(zero, plan.n_units, p).pvalue > 1e-3
    mean = rram_bursts(plan, params, 0, None, deterministic=True)
    assert mean.rounds == pytest.approx(np.full(plan.n_units, 1 - p))
    # pre-read: every unit is accessed and read; shadow copy: only the changed ones
    unit, round_ns = rram_unit_ns(plan, params), rram_round_ns(plan, params)
    assert drawn.service_ns == pytest.approx(unit + drawn.rounds * round_ns)
    shadow = get_policy("dcw_shadow").plan(rec, device)
    shadowed = rram_bursts(shadow, params, 0, np.random.default_rng(5))
    unit = rram_unit_ns(shadow, params)
    assert shadowed.service_ns == pytest.approx((shadowed.rounds > 0) * (unit + round_ns))


def test_write_verify_after_dcw_prices_the_units_that_change(device):
    """The rounds of a verified comparison write are those of a unit that changes: its
    expected pulsed cells divided by the probability that it changes."""
    f = np.full(32, 0.3)
    rec = dataclasses.replace(record(f, numel=1000), zero_fraction=0.7)
    spec = {"kind": "write_verify", "max_extra_rounds": 3}
    plan = get_policy(["data_comparison_write", spec]).plan(rec, device)
    p = 0.7**4
    n_changed = round(64 * 0.3 * 0.7 / (1 - p))  # SET cells per changed unit (= RESET)
    model = device.write_verify(3)
    expected = model.rounds_pmf_mixed(device.condition.cell, n_changed, n_changed)
    assert plan.unchanged_unit_prob == pytest.approx(p)
    assert np.allclose(plan.rounds_pmf, expected)
    assert plan.expected_rounds == pytest.approx((1 - p) * np.dot(np.arange(1, 5), expected))


@pytest.mark.parametrize(
    ("spec", "devices", "written"),
    [("baseline", 1, 1.0), ({"kind": "write_verify", "max_extra_rounds": 3}, 1, 1.0),
     ("two_t_two_r", 2, 1.0), ("data_comparison_write", 1, 1 - 0.6**4),
     ("ecc_secded", 1, 1.0)],
)  # fmt: skip
def test_write_periphery_is_paid_once_per_written_device(device, spec, devices, written):
    """The write periphery costs every written device once, whatever the verify rounds; a
    comparison write pays it only for the units that change."""
    f = np.linspace(0.05, 0.45, 32)
    rec = dataclasses.replace(record(f, numel=1000), zero_fraction=0.6)
    plan = get_policy(spec).plan(rec, device)
    per_bit = device.condition.e_write_periphery_pj_per_bit
    expected = plan.rram_bits * devices * written * per_bit
    assert plan.energy_pj["write_periphery"] == pytest.approx(expected, rel=1e-12)
    if spec == "ecc_secded":  # check cells are written too
        assert plan.rram_bits == 1000 * 32 * 72 // 64


def test_exact_energy_counts_transitions_bit_by_bit(device):
    rng = np.random.default_rng(0)
    old = rng.integers(0, 2**32, 500, dtype=np.uint64).astype(np.uint32)
    new = rng.integers(0, 2**32, 500, dtype=np.uint64).astype(np.uint32)
    o = np.unpackbits(old.view(np.uint8))
    n = np.unpackbits(new.view(np.uint8))
    n01, n10 = int(np.sum((o == 0) & (n == 1))), int(np.sum((o == 1) & (n == 0)))
    e = exact_energy_pj(old, new, device.condition)
    assert e["rram_set"] == pytest.approx(n01 * 0.5)
    assert e["rram_reset"] == pytest.approx(n10 * 0.2)
    assert e["pre_read"] == pytest.approx(o.size * device.condition.e_read_pj_per_bit)
    assert count_transitions(old, new).n_changed == n01 + n10


@pytest.mark.parametrize("spec", ["ecc_secded", "sram_exponent+ecc_secded"])
@pytest.mark.parametrize("numel", [37, 64, 1])
def test_ecc_plan_counts_check_bits_exactly(spec, numel, device):
    policy = get_policy(spec)
    n_sram = 9 if "sram" in spec else 0
    plan = policy.plan(record(numel=numel), device)
    # closed form: build the RRAM bit stream, pad, encode every word
    stream = np.tile(PATTERN32[n_sram:].astype(np.uint8), numel)
    n_words = -(-stream.size // 64)
    padded = np.zeros(n_words * 64, dtype=np.uint8)
    padded[: stream.size] = stream
    codewords = secded.encode(padded.reshape(n_words, 64))
    ones = int(stream.sum()) + int(codewords[:, 64:].sum())
    cells = stream.size + 8 * n_words
    assert plan.rram_bits == cells
    assert plan.unit_bits == 72
    assert plan.sram_bits == numel * n_sram
    assert plan.energy_pj["rram_set"] == pytest.approx(ones * 0.5)
    assert plan.energy_pj["rram_reset"] == pytest.approx((cells - ones) * 0.2)
    assert plan.energy_pj["ecc"] == pytest.approx(n_words * device.secded.e_encode_pj)
    assert plan.energy_pj["sram"] == pytest.approx(numel * n_sram * device.sram.e_write_pj_per_bit)
    assert plan.t_ecc_ns == device.secded.t_encode_ns


def test_all_ones_data_has_all_zero_check_bits(device):
    """Every Hsiao row has 26 data ones (even), so an all-ones word has zero check bits."""
    plan = get_policy("ecc_secded").plan(record(np.ones(32), numel=2), device)
    assert plan.energy_pj["rram_set"] == pytest.approx(64 * 0.5)
    assert plan.energy_pj["rram_reset"] == pytest.approx(8 * 0.2)


@pytest.mark.parametrize("k", [1, 3])
def test_write_verify_energy_and_rounds(k, device):
    plan = get_policy({"kind": "write_verify", "max_extra_rounds": k}).plan(record(), device)
    model = device.write_verify(k)
    cell = device.condition.cell
    ones = 37 * PATTERN32.sum()
    zeros = 37 * 32 - ones
    a_set, a_reset = model.attempt_probs(cell, "set"), model.attempt_probs(cell, "reset")
    pulses_set = model.expected_pulses(a_set.p_wrong, a_set.q_verify)
    pulses_reset = model.expected_pulses(a_reset.p_wrong, a_reset.q_verify)
    assert plan.energy_pj["rram_set"] == pytest.approx(ones * pulses_set * 0.5)
    assert plan.energy_pj["rram_reset"] == pytest.approx(zeros * pulses_reset * 0.2)
    assert plan.energy_pj["verify_read"] == pytest.approx(
        (ones * pulses_set + zeros * pulses_reset) * device.condition.e_read_pj_per_bit
    )
    n_set_unit = round(64 * PATTERN32.mean())
    expected = model.rounds_pmf_mixed(cell, n_set_unit, 64 - n_set_unit)
    assert np.allclose(plan.rounds_pmf, expected)
    assert len(plan.rounds_pmf) == k + 1
    assert plan.t_verify_ns == device.condition.t_read_ns


def test_write_verify_with_zero_extra_rounds_is_the_baseline(device):
    wv0 = get_policy({"kind": "write_verify", "max_extra_rounds": 0}).plan(record(), device)
    base = get_policy("baseline").plan(record(), device)
    assert wv0 == base


def test_two_t_two_r_pulses_two_devices_per_bit(device):
    plan = get_policy("two_t_two_r").plan(record(), device)
    bits = 37 * 32
    assert plan.devices_per_bit == 2 and plan.rram_bits == bits
    assert plan.energy_pj["rram_set"] == pytest.approx(bits * 0.5)
    assert plan.energy_pj["rram_reset"] == pytest.approx(bits * 0.2)
    dcw = get_policy("two_t_two_r+data_comparison_write").plan(record(), device)
    assert dcw.energy_pj["rram_set"] == 0
    assert dcw.energy_pj["pre_read"] == pytest.approx(2 * bits * device.condition.e_read_pj_per_bit)


def test_low_energy_uses_its_condition(device):
    cond = load_condition("low_energy")
    plan = get_policy("low_energy").plan(record(), device)
    ones = 37 * PATTERN32.sum()
    assert plan.energy_pj["rram_set"] == pytest.approx(ones * cond.e_set_pj)
    assert plan.t_pulse_ns == cond.t_pulse_ns


def test_format_change_counts_target_bits(device):
    plan = get_policy("int8").plan(record(), device)
    assert plan.rram_bits == 37 * 8
    bf16 = get_policy("bfloat16").plan(record(), device)
    assert bf16.energy_pj["rram_set"] == pytest.approx(37 * PATTERN32[:16].sum() * 0.5)


def test_binary_stores_one_cell_per_element(device):
    rec = record(np.array([1.0]), numel=50, fmt="binary")
    plan = get_policy("binary").plan(rec, device)
    assert plan.rram_bits == 50
    assert plan.energy_pj["rram_set"] == pytest.approx(50 * 0.5)


# --- accuracy side: each stage's formula ------------------------------------------------------


def test_write_verify_channel_has_residual_error():
    channel = get_policy({"kind": "write_verify", "max_extra_rounds": 2}).channel(
        "float16", 1e-2, 4e-2
    )
    assert isinstance(channel, BitFlip)
    assert np.allclose(channel.p01_vector, 1e-6)
    assert np.allclose(channel.p10_vector, 4e-2**3)


def test_sram_msb_protects_the_first_n_bits():
    channel = get_policy({"kind": "sram_msb", "n": 3}).channel("int8", 0.1)
    assert channel.p01_vector.tolist() == [0, 0, 0] + [0.1] * 5


def test_two_t_two_r_maps_the_condition_p_bf_to_its_differential_error():
    nominal = load_condition("nominal")
    channel = get_policy("two_t_two_r").channel("float32", nominal.p_bf)
    assert channel.p01_vector[0] == pytest.approx(nominal.p_2t2r(), rel=1e-6)
    assert channel.p01_vector[0] < nominal.p_bf


def test_low_energy_scales_the_swept_p():
    nominal, low = load_condition("nominal"), load_condition("low_energy")
    channel = get_policy("low_energy").channel("float32", nominal.p_bf)
    assert channel.p01_vector[0] == pytest.approx(low.p01, rel=1e-6)
    fixed = get_policy("low_energy_fixed").channel("float32", 0.0)
    assert fixed.p10_vector[0] == pytest.approx(low.p10)


def test_binary_channel_flips_each_direction_with_its_probability():
    plus = torch.ones(20000)
    minus = -torch.ones(20000)
    BinaryChannel(0.1, 0.0).apply_(plus, seed=1)
    assert torch.all(plus == 1)  # p10 = 0: a stored +1 never flips
    BinaryChannel(0.1, 0.0).apply_(minus, seed=1)
    flips = int((minus == 1).sum())
    assert binomtest(flips, 20000, 0.1).pvalue > 1e-3
    assert set(minus.unique().tolist()) <= {-1.0, 1.0}


def test_binary_policy_channel_on_pm1_tensor():
    x = torch.where(torch.rand(5000, generator=torch.Generator().manual_seed(0)) < 0.5, -1.0, 1.0)
    y = x.clone()
    get_policy("binary").channel("float32", 0.05).apply_(y, seed=3)
    flips = int((x != y).sum())
    assert binomtest(flips, 5000, 0.05).pvalue > 1e-3
    assert get_format("binary").width == 1


def test_ladder_is_mapped_like_p_and_stays_nested():
    """Common random numbers through a transforming policy: flips at the smaller p are a subset."""
    policy = get_policy({"kind": "write_verify", "max_extra_rounds": 1})
    grid = [0.05, 0.2]
    x = torch.randn(20000, generator=torch.Generator().manual_seed(0))
    out = []
    for p in grid:
        y = x.clone()
        policy.channel("float32", p, p, ladder=grid).apply_(y, seed=9)
        out.append(y.view(torch.int32) ^ x.view(torch.int32))
    small, large = out
    assert torch.any(small != 0)
    assert torch.all((small & ~large) == 0)


@settings(max_examples=40, deadline=None)
@given(
    pattern=st.lists(st.integers(0, 1), min_size=1, max_size=64),
    numel=st.integers(0, 300),
)
def test_periodic_check_bit_count_equals_dense_encoding(pattern, numel):
    """The plan's shortcut (one period of words) against encoding every word."""
    f = np.array(pattern, dtype=float)
    ones, transitions = check_bit_counts(f, numel)
    stream = np.tile(f.astype(np.uint8), numel)
    n_words = -(-stream.size // 64)
    padded = np.zeros(n_words * 64, dtype=np.uint8)
    padded[: stream.size] = stream
    expected = int(secded.check_bits(padded.reshape(n_words, 64)).sum()) if n_words else 0
    assert ones == expected
    assert transitions == 0
