"""Views along the first axis: ``x[i]`` and ``x[a:b]`` share memory at a byte offset."""

from __future__ import annotations

import numpy as np
import pytest

import hal
from hal.kernel.samples import saxpy


@pytest.mark.parametrize("spec", ["cpu", "simgpu"])
def test_row_and_slice_views_share_memory(spec: str) -> None:
    dev = hal.device(spec)
    host = np.arange(24, dtype=np.float32).reshape(6, 4)
    x = dev.array(host)
    np.testing.assert_array_equal(x[2].numpy(), host[2])
    np.testing.assert_array_equal(x[-1].numpy(), host[-1])
    np.testing.assert_array_equal(x[1:4].numpy(), host[1:4])
    np.testing.assert_array_equal(x[4:].numpy(), host[4:])
    assert x[5:2].shape == (0, 4) and x[2].offset == 2 * 4 * 4
    assert [float(row.numpy()[0]) for row in x] == list(host[:, 0])  # iteration stops at the end
    q = dev.queue()
    q.fill(x[1:3], -1.0)
    saxpy[1, 4, q](2.0, x[0], x[5], 4)  # y at a non-zero offset
    q.copy(x[4], x[0])
    q.synchronize()
    expected = host.copy()
    expected[1:3] = -1.0
    expected[5] = 2 * host[0] + host[5]
    expected[4] = host[0]
    np.testing.assert_array_equal(x.numpy(), expected)


def test_bad_indices_are_hal_errors() -> None:
    dev = hal.device("cpu")
    x = dev.zeros((3, 2), np.float32)
    with pytest.raises(hal.InvalidArgumentError, match="out of range"):
        x[3]
    with pytest.raises(IndexError):
        x[-4]
    with pytest.raises(hal.InvalidArgumentError, match="step 1"):
        x[::2]
    with pytest.raises(hal.InvalidArgumentError, match="one axis"):
        x[0, 1]
    with pytest.raises(hal.InvalidArgumentError, match="0-d"):
        dev.array(np.float32(1))[0]
    for flag in (True, False, np.True_):  # numpy adds an axis, operator.index gave row 1 or 0
        with pytest.raises(hal.InvalidArgumentError, match=r"a boolean is not a row number; index with an int") as info:
            x[flag]
        assert isinstance(info.value, IndexError)
    assert x[1].offset == 8
    x.free()
    with pytest.raises(hal.InvalidHandleError):
        x[0]
