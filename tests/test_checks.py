"""The one probability check: house-style messages, and NaN, infinities, bools, non-numbers refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memsim.checks import check_probabilities, check_probability


def test_message_names_the_parameter_and_the_value():
    with pytest.raises(ValueError) as err:
        check_probability("p01", -1)
    assert str(err.value) == "The 'p01' parameter must be a float in [0, 1]. Got -1."
    with pytest.raises(
        ValueError,
        match=r"^The 'p_bf' parameter of RRAMCell must be a float in \(0, 0.5\)\. Got 0.5\.$",
    ):
        check_probability("p_bf", 0.5, owner="RRAMCell", low_open=True, high=0.5, high_open=True)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1.0000001, -1e-300])
def test_out_of_range_and_nan_are_value_errors(bad):
    with pytest.raises(ValueError, match="'p'"):
        check_probability("p", bad)


@pytest.mark.parametrize("bad", [True, np.bool_(False), "0.1", None, [0.1], np.array(0.1)])
def test_bools_and_non_numbers_are_type_errors(bad):
    with pytest.raises(TypeError, match="'p'"):
        check_probability("p", bad)


@pytest.mark.parametrize("good", [0, 1, 0.0, 1.0, 0.25, np.float32(0.5), np.int64(1)])
def test_probabilities_pass_as_floats(good):
    out = check_probability("p", good)
    assert type(out) is float and out == float(good)


def test_open_ends_are_open():
    with pytest.raises(ValueError):
        check_probability("q", 0.0, low_open=True)
    with pytest.raises(ValueError):
        check_probability("q", 1.0, high_open=True)
    assert check_probability("q", 1e-300, low_open=True) == 1e-300


def test_arrays_name_the_first_bad_entry():
    with pytest.raises(ValueError, match=r"Got nan at index 2\."):
        check_probabilities("p01", [0.0, 0.5, math.nan, -1.0])
    with pytest.raises(ValueError, match=r"Got -1\.0 at index \(1, 0\)\."):
        check_probabilities("p01", [[0.0], [-1.0]])
    with pytest.raises(TypeError):
        check_probabilities("p01", np.array([True, False]))
    assert check_probabilities("p01", [0, 1]).dtype == np.float64
