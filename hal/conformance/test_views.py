"""Views at a byte offset (``x[i]``, ``x[a:b]``) in every command: copies (source and destination),
host writes and reads, fills, kernel arguments and native operators must honour the offset and touch
nothing outside the view. Rows are 12 bytes (5 for int8), so offsets are not multiples of 8, 16 or 64.
"""

from __future__ import annotations

import numpy as np
import pytest

import hal
from hal.kernel.samples import saxpy

from ._compare import assert_allclose, assert_array_equal

ROWS, COLS = 8, 3


def _matrix(device: hal.Device, sign: float = 1.0) -> tuple[hal.Array, np.ndarray]:
    host = sign * np.arange(1, ROWS * COLS + 1, dtype=np.float32).reshape(ROWS, COLS)
    return device.array(host), host


def test_copies_between_views(device: hal.Device) -> None:
    x, xh = _matrix(device)
    y, yh = _matrix(device, -1.0)
    q = device.queue()
    q.copy(y[5:7], x[1:3])  # source at 12 bytes, destination at 60
    q.copy(y[0], x[6])  # source at 72, destination at 0
    q.copy(x[7], y[2])  # source at 24, destination at 84
    q.synchronize()
    yh[5:7], yh[0] = xh[1:3], xh[6]
    xh[7] = yh[2]
    assert_array_equal(y, yh, what="y after copies between views")
    assert_array_equal(x, xh, what="x after a copy into its last row")
    q.close()


def test_host_transfers_of_views(device: hal.Device) -> None:
    x, xh = _matrix(device)
    q = device.queue()
    row = np.array([100, 101, 102], np.float32)
    q.copy(x[3], row)  # host write at 36 bytes
    rows = np.empty((2, COLS), np.float32)
    q.copy(rows, x[5:7])  # host read at 60 bytes
    xh[3] = row
    assert_array_equal(rows, xh[5:7], what="host read of x[5:7]")
    assert_array_equal(x[3].numpy(), row, what="x[3] read back")
    assert_array_equal(x, xh, what="x after a host write into x[3]")
    q.close()


def test_fills_of_views(device: hal.Device) -> None:
    x, xh = _matrix(device)
    q = device.queue()
    q.fill(x[2:4], -1.0)
    q.fill(x[7], 5.0)
    small = device.array(np.arange(45, dtype=np.int8).reshape(9, 5))
    q.fill(small[3:5], -3)  # an int8 fill at 15 bytes, 10 bytes long
    q.synchronize()
    xh[2:4], xh[7] = -1.0, 5.0
    assert_array_equal(x, xh, what="x after fills of x[2:4] and x[7]")
    want = np.arange(45, dtype=np.int8).reshape(9, 5)
    want[3:5] = -3
    assert_array_equal(small, want, what="int8 array after a fill of rows 3:5")
    q.close()


@pytest.mark.feature("kernels")
def test_kernel_arguments_at_offsets(device: hal.Device) -> None:
    x, xh = _matrix(device)
    q = device.queue()
    saxpy[1, COLS, q](2.0, x[1], x[6], COLS)  # x at 12 bytes, y at 72
    saxpy[1, 2 * COLS, q](-1.0, x[4:6], x[2:4], 2 * COLS)  # a two-row view: x at 48, y at 24
    q.synchronize()
    xh[6] = 2 * xh[1] + xh[6]
    xh[2:4] = -xh[4:6] + xh[2:4]
    assert_array_equal(x, xh, what="x after kernels on its rows")
    q.close()


@pytest.mark.feature("tensor_ops")
def test_operators_on_views(device: hal.Device) -> None:
    rng = np.random.default_rng(7)
    ah = rng.standard_normal((6, 5)).astype(np.float32)
    bh = rng.standard_normal((5, 4)).astype(np.float32)
    a, b = device.array(ah), device.array(bh)
    out = device.array(np.full((4, 4), 9.0, np.float32))
    hal.ops.gemm(a[3:], b, out[1:])  # a at 60 bytes, out at 16
    want = np.full((4, 4), 9.0)
    want[1:] = ah[3:].astype(np.float64) @ bh
    assert_allclose(out, want, rtol=1e-5, atol=1e-5, what="gemm of a[3:] into out[1:]")
