"""Comparing outputs (``gru_onnx.check.compare``): tolerances, NaN and infinity, curves per
time step over samples of different lengths, and two properties over random arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gru_onnx.check.compare import compare


def test_compare_counts_elements_beyond_atol_plus_rtol():
    ref = np.array([[1.0, 2.0], [3.0, 100.0]])
    act = ref + np.array([[1e-6, 3e-4], [0.0, 5e-3]])
    c = compare("y", [ref], [act], atol=1e-5, rtol=1e-4, time_axis=0)
    # 3e-4 > 1e-5 + 1e-4 * 2 fails; 5e-3 <= 1e-5 + 1e-4 * 100 passes although it is the largest
    assert c.mismatches == 1 and not c.passed
    assert c.worst_index == (1, 1) and c.max_abs == pytest.approx(5e-3)
    assert c.per_step_max_abs == pytest.approx((3e-4, 5e-3))
    assert c.first_failing_step == 0


def test_relative_error_is_floored_at_atol():
    c = compare("y", [np.array([0.0, 1e-300])], [np.array([1e-6, 1e-300 + 1e-6])], atol=1e-5, rtol=0)
    assert c.passed and c.max_rel == pytest.approx(1e-6 / 1e-5)


def test_nan_and_inf_in_the_same_place_are_equal():
    ref = np.array([1.0, np.nan, np.inf, -np.inf])
    c = compare("y", [ref], [ref.copy()], atol=0, rtol=0)
    assert c.passed and c.max_abs == 0 and c.nan_mismatch is None
    c = compare("y", [ref], [np.array([1.0, 2.0, np.inf, np.inf])], atol=1, rtol=1)
    assert not c.passed and c.nan_mismatch == (1,) and c.mismatches == 2 and math.isinf(c.max_abs)


def test_samples_aggregate_and_curves_of_different_lengths():
    ref_a, ref_b = np.zeros((3, 2)), np.zeros((5, 2))
    act_a, act_b = ref_a.copy(), ref_b.copy()
    act_a[2, 1] = 1e-3
    act_b[4, 0] = 2e-3
    c = compare("y", [ref_a, ref_b], [act_a, act_b], atol=1e-5, rtol=0, time_axis=0)
    assert c.worst_sample == 1 and c.worst_index == (4, 0) and c.mismatches == 2
    assert c.per_step_max_abs == pytest.approx((0, 0, 1e-3, 0, 2e-3))
    assert c.first_failing_step == 2


finite = arrays(np.float64, st.integers(1, 20), elements=st.floats(-1e6, 1e6))


anything = arrays(np.float64, st.integers(1, 20), elements=st.floats(allow_nan=True, allow_infinity=True))


@given(anything)
@settings(max_examples=200, deadline=None)
def test_an_array_always_matches_itself(x):
    c = compare("y", [x], [x.copy()], atol=0.0, rtol=0.0, time_axis=0)
    assert c.passed and c.max_abs == 0 and c.mismatches == 0


@given(finite, st.floats(1e-3, 10.0))
@settings(max_examples=200, deadline=None)
def test_a_shift_beyond_tolerance_always_fails(x, shift):
    atol, rtol = 1e-4, 1e-4
    bump = atol + rtol * np.abs(x) + shift * (1 + np.abs(x)) * 1e-3
    c = compare("y", [x], [x + bump], atol=atol, rtol=rtol, time_axis=0)
    assert not c.passed and c.mismatches == x.size and c.first_failing_step == 0
