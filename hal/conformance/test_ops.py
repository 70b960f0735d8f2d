"""Native tensor operators (``tensor_ops``) and int8 gemm with int32 accumulation (``int8``) against
numpy. The kernel language has no int8 type, so int8 kernels are not tested; int8 storage is (by
test_memory and test_views, on every device that stores int8)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import hal

from ._compare import assert_allclose, assert_array_equal

F32_TOL = dict(rtol=1e-4, atol=1e-4)  # float32 sums of a few dozen products


@pytest.mark.feature("tensor_ops")
def test_gemm_with_transposes_alpha_and_beta(device: hal.Device) -> None:
    rng = np.random.default_rng(3)
    m, k, n = 33, 20, 17
    at = rng.standard_normal((k, m)).astype(np.float32)  # stored transposed
    bt = rng.standard_normal((n, k)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    out = device.array(c)
    hal.ops.gemm(device.array(at), device.array(bt), out, alpha=1.5, beta=0.5, trans_a=True, trans_b=True)
    a64, b64 = at.T.astype(np.float64), bt.T.astype(np.float64)
    assert_allclose(out, 1.5 * a64 @ b64 + 0.5 * c, **F32_TOL, what="1.5 * a.T @ b.T + 0.5 * c")
    plain = hal.ops.gemm(device.array(np.ascontiguousarray(at.T)), device.array(np.ascontiguousarray(bt.T)))
    assert_allclose(plain, a64 @ b64, **F32_TOL, what="a @ b")


def _conv2d_reference(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """Cross-correlation (no kernel flip), as deep-learning frameworks define conv2d, in float64."""
    (ph, pw), (sh, sw) = padding, stride
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(padded, w.shape[2:], axis=(2, 3))[:, :, ::sh, ::sw]
    return np.einsum("ncpqrs,kcrs->nkpq", windows, w.astype(np.float64))


@pytest.mark.feature("tensor_ops")
def test_conv2d_with_stride_and_padding(device: hal.Device) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    out = hal.ops.conv2d(device.array(x), device.array(w), stride=(2, 1), padding=(1, 0))
    want = _conv2d_reference(x, w, (2, 1), (1, 0))
    assert out.shape == want.shape
    assert_allclose(out, want, **F32_TOL, what="conv2d, stride (2, 1), padding (1, 0)")


@pytest.mark.feature("int8")
def test_int8_gemm_accumulates_in_int32_and_wraps(device: hal.Device) -> None:
    rng = np.random.default_rng(5)
    m, k, n = 24, 64, 40
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    a[0], b[:, 0] = -128, -128  # the largest product sum: 64 * 2**14
    c = rng.integers(-(2**31), 2**31, (m, n), dtype=np.int32)
    out = device.array(c)
    hal.ops.gemm(device.array(a), device.array(b), out, alpha=3001, beta=-2)  # alpha * sum passes 2**31
    exact = 3001 * (a.astype(np.int64) @ b.astype(np.int64)) - 2 * c.astype(np.int64)
    assert_array_equal(out, exact.astype(np.int32), what="3001 * a @ b - 2 * c, wrapped to int32")
    plain = hal.ops.gemm(device.array(a), device.array(b))
    assert plain.dtype == np.int32
    assert_array_equal(plain, (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32), what="a @ b")
