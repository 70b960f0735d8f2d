"""The suite's array comparisons: a failure says how many elements differ, where the first ones are,
what they hold and the largest error, in one line."""

from __future__ import annotations

import numpy as np
import pytest

import hal
from hal.conformance import assert_allclose, assert_array_equal


def test_a_mismatch_is_summarised() -> None:
    got = np.arange(1000, dtype=np.float32)
    want = got.copy()
    want[[3, 500, 999]] += [1.0, 2.0, 0.5]
    with pytest.raises(AssertionError) as info:
        assert_array_equal(got, want, what="y")
    assert str(info.value) == ("y: 3 of 1000 elements differ (shape (1000,), float32); first: [3] got 3.0 want 4.0, "
                               "[500] got 500.0 want 502.0, [999] got 999.0 want 999.5; max abs error 2")


def test_only_the_first_five_are_listed_with_their_indices() -> None:
    with pytest.raises(AssertionError, match=r"^x: 12 of 12 elements differ \(shape \(3, 4\), int32\); first: "
                                             r"\[0, 0\] got 0 want -1, .*\[1, 0\] got 4 want -1; max abs error 12$"):
        assert_array_equal(np.arange(12, dtype=np.int32).reshape(3, 4), -1, what="x")


def test_equal_nans_infinities_and_tolerances_pass() -> None:
    assert_array_equal(np.array([np.nan, np.inf, -0.0]), np.array([np.nan, np.inf, 0.0]))
    assert_allclose(np.float32([1.0, 2.0]), [1.0 + 1e-7, 2.0], rtol=1e-6, atol=0.0)
    with pytest.raises(AssertionError, match="1 of 2 elements differ"):
        assert_allclose(np.float32([1.0, 2.0]), [1.0 + 1e-5, 2.0], rtol=1e-6, atol=0.0)


def test_shapes_must_match() -> None:
    with pytest.raises(AssertionError, match=r"^result: shape \(4,\), expected \(5,\)$"):
        assert_array_equal(np.zeros(4), np.zeros(5))


def test_device_arrays_are_read_back(fake: hal.Device) -> None:
    assert_array_equal(fake.array(np.arange(4, dtype=np.int32)), [0, 1, 2, 3])
    with pytest.raises(AssertionError, match=r"\[2\] got 2 want 7"):
        assert_array_equal(fake.array(np.arange(4, dtype=np.int32)), [0, 1, 7, 3])
