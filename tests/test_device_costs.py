"""SECDED word failure, SRAM costs and data-dependent write energy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memsim.device import (
    SECDEDParams,
    SRAMParams,
    TransitionCounts,
    count_transitions,
    load_condition,
    write_energy_breakdown,
    write_energy_pj,
)


@pytest.mark.parametrize("p", [3e-3, 1e-2, 4e-2])
def test_secded_word_failure_matches_simulation_of_72_bit_words(p):
    ecc = SECDEDParams()
    n_words = 200_000
    rng = np.random.default_rng(5)
    errors = (rng.random((n_words, ecc.codeword_bits)) < p).sum(axis=1)
    est = np.mean(errors >= 2)
    exact = ecc.word_failure(p)
    assert abs(est - exact) < 4 * math.sqrt(exact * (1 - exact) / n_words)


def test_secded_word_failure_reference_values_and_small_p_limit():
    ecc = SECDEDParams()
    # sources §7.3 table
    assert ecc.word_failure(1e-4) == pytest.approx(2.5e-5, rel=0.02)
    assert ecc.word_failure(1e-2) == pytest.approx(0.16, rel=0.02)
    assert ecc.word_failure(4e-2) == pytest.approx(0.79, rel=0.01)
    # tiny p: C(72, 2) p^2 without cancellation
    assert ecc.word_failure(1e-9) == pytest.approx(2556e-18, rel=1e-6)
    assert ecc.word_failure(0.0) == 0.0 and ecc.word_failure(1.0) == 1.0
    assert np.allclose(
        ecc.word_failure(np.array([1e-4, 1e-2])), [ecc.word_failure(1e-4), ecc.word_failure(1e-2)]
    )


def test_secded_overhead_and_bad_parameters():
    ecc = SECDEDParams(e_encode_pj=0.25)
    assert ecc.codeword_bits == 72 and ecc.overhead_fraction == 0.125
    assert ecc.extra_cells(64) == 8 and ecc.extra_cells(65) == 16 and ecc.extra_cells(0) == 0
    with pytest.raises(ValueError, match="check_bits"):
        SECDEDParams(data_bits=64, check_bits=7)
    with pytest.raises(ValueError, match="e_decode_pj"):
        SECDEDParams(e_decode_pj=-1.0)
    for p in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError, match="'p'"):
            ecc.word_failure(p)


def test_sram_params_validate_and_price_bits():
    sram = SRAMParams(0.1, 0.2, 1.0)
    assert sram.write_energy_pj(9) == pytest.approx(1.8)
    with pytest.raises(ValueError, match="t_access_ns"):
        SRAMParams(0.1, 0.1, 0.0)
    with pytest.raises(ValueError, match="e_read_pj_per_bit"):
        SRAMParams(-0.1, 0.1, 1.0)


def naive_counts(old, new, width, mask=None):
    counts = {"01": 0, "10": 0, "00": 0, "11": 0}
    for o, w in zip(old.ravel().tolist(), new.ravel().tolist()):
        for b in range(width):
            if mask is not None and not (mask >> b) & 1:
                continue
            counts[f"{(o >> b) & 1}{(w >> b) & 1}"] += 1
    return TransitionCounts(counts["01"], counts["10"], counts["00"], counts["11"])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_count_transitions_matches_a_bit_by_bit_count(dtype):
    rng = np.random.default_rng(3)
    width = np.dtype(dtype).itemsize * 8
    old = rng.integers(0, np.iinfo(dtype).max, size=50, dtype=dtype, endpoint=True)
    new = rng.integers(0, np.iinfo(dtype).max, size=50, dtype=dtype, endpoint=True)
    assert count_transitions(old, new) == naive_counts(old, new, width)
    mask = 0b1011_0110
    assert count_transitions(old, new, mask=mask) == naive_counts(old, new, width, mask)
    per_word = count_transitions(old, new, per_word=True)
    assert per_word.n01.shape == (50,) and int(per_word.n_cells.sum()) == 50 * width
    assert np.all(per_word.n_cells == width)


def test_count_transitions_rejects_signed_or_mixed_dtypes():
    with pytest.raises(TypeError, match="old"):
        count_transitions(np.array([1], np.int32), np.array([1], np.int32))
    with pytest.raises(TypeError, match="dtype"):
        count_transitions(np.array([1], np.uint8), np.array([1], np.uint16))


def test_write_energy_formulas_of_each_scheme():
    cond = load_condition("nominal")
    e_s, e_r, e_rd = cond.e_set_pj, cond.e_reset_pj, cond.e_read_pj_per_bit
    c = TransitionCounts(n01=3, n10=5, n00=20, n11=4)
    assert write_energy_pj(c, cond, "plain") == pytest.approx(7 * e_s + 25 * e_r)
    assert write_energy_pj(c, cond, "dcw") == pytest.approx(3 * e_s + 5 * e_r + 32 * e_rd)
    assert write_energy_pj(c, cond, "2t2r") == pytest.approx(8 * (e_s + e_r) + 64 * e_rd)
    assert write_energy_pj(c, cond, "2t2r_plain") == pytest.approx(32 * (e_s + e_r))
    parts = write_energy_breakdown(c, cond, "dcw")
    assert set(parts) == {"rram_set", "rram_reset", "pre_read"}
    with pytest.raises(ValueError, match="scheme"):
        write_energy_pj(c, cond, "flip_n_write")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=30))
def test_dcw_pulses_only_changed_cells_and_plain_pulses_all(pairs):
    old = np.array([a for a, _ in pairs], dtype=np.uint8)
    new = np.array([b for _, b in pairs], dtype=np.uint8)
    cond = load_condition("nominal")
    c = count_transitions(old, new)
    dcw = write_energy_breakdown(c, cond, "dcw")
    plain = write_energy_breakdown(c, cond, "plain")
    changed = int(np.bitwise_count(old ^ new).sum())
    assert dcw["rram_set"] + dcw["rram_reset"] == pytest.approx(
        changed * cond.e_set_pj
    )  # E_SET = E_RESET here
    assert plain["rram_set"] + plain["rram_reset"] == pytest.approx(8 * len(pairs) * cond.e_set_pj)
    assert c.n01 == int(np.bitwise_count(~old & new).sum())
