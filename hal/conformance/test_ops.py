"""Operators against numpy: the portable kernel-language implementations (``hal.ops.portable``)
on every device that runs kernels, native tensor operators (``tensor_ops``), and int8 gemm with
int32 accumulation (``int8``). The kernel language has no int8 type, so int8 kernels are not
tested; int8 storage is (by test_memory and test_views, on every device that stores int8)."""

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


# ---------------------------------------------------------------- portable operators
FLOAT_TYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64", marks=pytest.mark.feature("f64"))]


def _tolerance(dtype: type) -> dict[str, float]:
    return F32_TOL if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.feature("kernels")
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_portable_gemm_tiles_edges_and_transposes(device: hal.Device, dtype: type) -> None:
    """Every transpose pair, with sizes that leave partial tiles in all three dimensions."""
    rng = np.random.default_rng(6)
    m, k, n = 37, 21, 19
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    want = 1.5 * a.astype(np.float64) @ b.astype(np.float64) - 0.5 * c
    for trans_a in (False, True):
        for trans_b in (False, True):
            out = device.array(c)
            hal.ops.portable.gemm(device.array(np.ascontiguousarray(a.T) if trans_a else a),
                                  device.array(np.ascontiguousarray(b.T) if trans_b else b), out,
                                  alpha=1.5, beta=-0.5, trans_a=trans_a, trans_b=trans_b)
            assert_allclose(out, want, **_tolerance(dtype), what=f"gemm trans_a={trans_a} trans_b={trans_b}")


@pytest.mark.feature("kernels")
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_portable_reductions_along_every_axis(device: hal.Device, dtype: type) -> None:
    """Short lines, lines far apart, and a few long lines (reduced in two passes)."""
    rng = np.random.default_rng(8)
    for shape in ((3, 300, 2), (2, 20000)):
        x = rng.standard_normal(shape).astype(dtype)
        dx = device.array(x)
        for name in ("sum", "max", "mean"):
            for axis in (*range(len(shape)), None):
                want = getattr(np, name)(x.astype(np.float64), axis=axis)
                rtol = 1e-4 if dtype == np.float32 else 1e-11
                assert_allclose(getattr(hal.ops.portable, name)(dx, axis), want, rtol=rtol, atol=rtol * 10,
                                what=f"{name} of {shape} along axis {axis}")


@pytest.mark.feature("kernels")
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
def test_portable_softmax_subtracts_the_maximum(device: hal.Device, dtype: type) -> None:
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((4, 37)) * 30).astype(dtype)
    x[0, 0] = 1000  # exp(1000) overflows unless the line's maximum is subtracted first
    for axis in (0, 1):
        e = np.exp(x.astype(np.float64) - x.max(axis=axis, keepdims=True))
        assert_allclose(hal.ops.portable.softmax(device.array(x), axis), e / e.sum(axis=axis, keepdims=True),
                        **_tolerance(dtype), what=f"softmax along axis {axis}")


@pytest.mark.feature("kernels")
def test_portable_elementwise_operators_and_special_values(device: hal.Device) -> None:
    x = np.array([np.nan, -np.inf, -1.5, -0.0, 0.0, 2.0, np.inf], np.float32)
    dx = device.array(x)
    assert_array_equal(hal.ops.portable.add(dx, 1.5), x + np.float32(1.5), what="x + 1.5")
    assert_array_equal(hal.ops.portable.mul(dx, dx), x * x, what="x * x")
    assert_array_equal(hal.ops.portable.maximum(dx, 0.0), np.maximum(x, np.float32(0)), what="maximum(x, 0)")
    assert_array_equal(hal.ops.portable.relu(dx), np.maximum(x, np.float32(0)), what="relu(x)")
    finite = np.array([-3.0, -0.5, 0.0, 0.25, 4.0], np.float32)
    assert_allclose(hal.ops.portable.exp(device.array(finite)), np.exp(finite), rtol=2e-7, atol=0, what="exp(x)")
    assert_allclose(hal.ops.portable.tanh(device.array(finite)), np.tanh(finite), rtol=2e-7, atol=1e-7,
                    what="tanh(x)")
