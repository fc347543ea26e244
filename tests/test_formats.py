"""Storage formats: lookup by name/dtype and resolution of noisy-bit specifications."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from memsim.formats import FORMATS, FirstNoisy, get_format, resolve_bits

FIELD_SIZES = {
    "float64": (1, 11, 52),
    "float32": (1, 8, 23),
    "float16": (1, 5, 10),
    "bfloat16": (1, 8, 7),
}


@pytest.mark.parametrize("name", FORMATS)
def test_lookup_by_name_and_dtype(name):
    fmt = get_format(name)
    assert fmt.name == name and get_format(fmt) is fmt
    if fmt.torch_dtype is not None:
        assert get_format(fmt.torch_dtype) is fmt
        assert torch.empty(0, dtype=fmt.int_view).element_size() * 8 == fmt.width
        assert np.dtype(fmt.np_uint).itemsize * 8 == fmt.width


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8, np.int64, np.float16])
def test_lookup_by_numpy_dtype(dtype):
    assert get_format(np.dtype(dtype)).width == np.dtype(dtype).itemsize * 8


def test_unknown_name_lists_known_formats_and_suggests():
    with pytest.raises(ValueError, match="Did you mean 'float32'.*Known formats"):
        get_format("flaot32")


@pytest.mark.parametrize(
    "dtype", [torch.bool, torch.complex64, np.dtype(bool), np.dtype(np.complex128)]
)
def test_unsupported_dtypes(dtype):
    with pytest.raises(TypeError, match="Unsupported dtype"):
        get_format(dtype)


@pytest.mark.parametrize("name,sizes", FIELD_SIZES.items())
def test_float_fields(name, sizes):
    sign, exponent, mantissa = (resolve_bits(name, f) for f in ("sign", "exponent", "mantissa"))
    assert (sign.sum(), exponent.sum(), mantissa.sum()) == sizes
    assert sign[0] and exponent[1 : 1 + sizes[1]].all() and mantissa[-1]


@pytest.mark.parametrize("name", FORMATS)
def test_fields_partition_the_word(name):
    fmt = get_format(name)
    masks = [resolve_bits(fmt, f) for f in fmt.fields]
    assert (np.sum(masks, axis=0) == 1).all()


def test_integer_fields():
    assert resolve_bits("int8", "sign").tolist() == [True] + [False] * 7
    assert resolve_bits("int8", "magnitude").sum() == 7
    assert resolve_bits("uint8", "magnitude").all()
    with pytest.raises(ValueError, match="unknown field 'sign' for uint8"):
        resolve_bits("uint8", "sign")


@pytest.mark.parametrize("spec", [None, "all", ["all"]])
def test_everything(spec):
    assert resolve_bits("float16", spec).all()


@given(name=st.sampled_from(list(FORMATS)), data=st.data())
def test_first_noisy_protects_the_leading_bits(name, data):
    width = get_format(name).width
    k = data.draw(st.integers(0, width))
    expected = np.arange(width) >= k
    assert np.array_equal(resolve_bits(name, FirstNoisy(k)), expected)
    assert np.array_equal(resolve_bits(name, f"first_noisy:{k}"), expected)


@given(name=st.sampled_from(list(FORMATS)), data=st.data())
def test_positions_and_masks_round_trip(name, data):
    width = get_format(name).width
    positions = data.draw(st.lists(st.integers(0, width - 1), max_size=2 * width))
    mask = resolve_bits(name, positions)
    assert set(np.flatnonzero(mask)) == set(positions)
    assert np.array_equal(resolve_bits(name, mask), mask)
    assert np.array_equal(resolve_bits(name, range(width)), np.ones(width, bool))


@given(name=st.sampled_from(list(FORMATS)), data=st.data())
def test_fields_combine_as_a_union(name, data):
    fmt = get_format(name)
    chosen = data.draw(st.lists(st.sampled_from(list(fmt.fields)), unique=True))
    expected = np.zeros(fmt.width, bool)
    for f in chosen:
        expected[list(fmt.fields[f])] = True
    assert np.array_equal(resolve_bits(fmt, chosen), expected)


@pytest.mark.parametrize(
    "spec,error,words",
    [
        ([32], ValueError, "out of range"),
        ([-1], ValueError, "out of range"),
        ("exponant", ValueError, "unknown field"),
        (FirstNoisy(33), ValueError, "out of range"),
        ("first_noisy:x", ValueError, "integer"),
        (np.ones(31, bool), ValueError, "length 32"),
        (5, TypeError, "single integer"),
        ([1.5], TypeError, "neither"),
        (object(), TypeError, "bits must"),
    ],
)
def test_bad_bit_specifications(spec, error, words):
    with pytest.raises(error, match=words):
        resolve_bits("float32", spec)


def test_fp8_fields_and_special_encodings():
    e4m3, e5m2 = get_format("float8_e4m3"), get_format("float8_e5m2")
    assert e4m3.fields == {"sign": (0,), "exponent": (1, 2, 3, 4), "mantissa": (5, 6, 7)}
    assert e5m2.fields == {"sign": (0,), "exponent": (1, 2, 3, 4, 5), "mantissa": (6, 7)}
    assert get_format(torch.float8_e4m3fn) is e4m3 and e5m2.bytes_per_element == 1

    def read(fmt, codes):
        raw = torch.tensor(codes, dtype=torch.uint8).view(fmt.torch_dtype)
        return raw.float().tolist()

    # E4M3: S.1111.111 is the only NaN; the rest of the all-ones exponent are numbers.
    nan, top, big, neg_nan = read(e4m3, [0x7F, 0x7E, 0x78, 0xFF])
    assert math.isnan(nan) and math.isnan(neg_nan) and (top, big) == (448.0, 256.0)
    # E5M2 follows IEEE 754: all-ones exponent is inf (mantissa 0) or NaN.
    inf, nan5, top5 = read(e5m2, [0x7C, 0x7D, 0x7B])
    assert inf == math.inf and math.isnan(nan5) and top5 == 57344.0


def test_flipping_e4m3_reaches_nan_only_through_the_nan_pattern():
    from memsim.noise import flip

    x = torch.tensor([0x7E] * 4000, dtype=torch.uint8).view(torch.float8_e4m3fn)
    y = flip(x, 0.5, bits=[7], seed=3)  # flip the last mantissa bit: 448 ↔ NaN
    codes = y.view(torch.uint8)
    values = y.float()
    assert torch.equal(torch.isnan(values), codes == 0x7F)
    assert 0 < int((codes == 0x7F).sum()) < 4000
    assert bool((values[codes == 0x7E] == 448.0).all())
