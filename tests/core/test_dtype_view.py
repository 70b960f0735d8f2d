"""``x.view(dtype)`` reinterprets bytes as numpy does: the shape is kept, the last axis scaled."""

from __future__ import annotations

import numpy as np
import pytest

import hal


@pytest.mark.parametrize("shape", [(2, 3, 4), (6,), (4, 0), (3, 8)])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.float32, np.float64, np.int64])
def test_view_shape_and_bytes_match_numpy(fake: hal.Device, shape: tuple[int, ...], dtype: type) -> None:
    host = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    x = fake.array(host)
    try:
        expected = host.view(dtype)
    except ValueError:
        with pytest.raises(hal.InvalidArgumentError, match="divisor"):
            x.view(dtype)
        return
    v = x.view(dtype)
    assert v.shape == expected.shape and v.dtype == expected.dtype
    np.testing.assert_array_equal(v.numpy(), expected)


def test_view_errors_are_numpys(fake: hal.Device) -> None:
    x = fake.array(np.zeros((2, 3), np.int8))
    with pytest.raises(ValueError, match="larger dtype, its size must be a divisor of the total size"):
        x.view(np.int64)
    with pytest.raises(ValueError, match="0d array"):
        fake.array(np.int32(5)).view(np.int8)
    assert fake.array(np.int32(5)).view(np.float32).shape == ()
    with pytest.raises(hal.InvalidArgumentError, match="aligned"):
        fake.alloc(16)[2:14].view(np.int32)  # 12 bytes from byte 2: whole elements, not aligned
    with pytest.raises(hal.InvalidArgumentError, match="not a dtype"):
        x.view("nonsense")


def test_views_of_rows_and_raw_memory(fake: hal.Device) -> None:
    raw = fake.alloc(32)
    assert raw.view(np.float32).shape == (8,)
    x = fake.array(np.arange(12, dtype=np.int32).reshape(3, 4))
    row = x[1].view(np.uint8)
    assert row.shape == (16,) and row.offset == 16
    np.testing.assert_array_equal(row.numpy(), np.arange(12, dtype=np.int32).reshape(3, 4)[1].view(np.uint8))
    fake.default_queue.fill(x.view(np.uint8)[2], 0)  # the third row's bytes, through a byte view
    np.testing.assert_array_equal(x.numpy()[2], [0, 0, 0, 0])
