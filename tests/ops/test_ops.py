"""Every operator against numpy, through dispatch (``hal.ops``) and forced portable
(``hal.ops.portable``), on every device that runs kernels; small shapes keep the
interpreter fast."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import hal

DTYPES = [np.float32, np.float64]
NAMESPACES = {"dispatched": hal.ops, "portable": hal.ops.portable}


def tol(dtype: Any) -> dict[str, float]:
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


BINARY: dict[str, Callable[..., Any]] = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                                         "div": np.divide, "maximum": np.maximum, "minimum": np.minimum}
UNARY: dict[str, Callable[..., Any]] = {
    "relu": lambda x: np.maximum(x, 0), "gelu": gelu, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh, "exp": np.exp, "log": np.log, "sqrt": np.sqrt}


@pytest.fixture(params=list(NAMESPACES))
def ops(request: pytest.FixtureRequest) -> Any:
    return NAMESPACES[request.param]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise(kernel_device: hal.Device, ops: Any, dtype: Any, rng: np.random.Generator) -> None:
    a = rng.standard_normal((3, 50)).astype(dtype)
    b = rng.uniform(0.5, 2.0, (3, 50)).astype(dtype)
    da, db = kernel_device.array(a), kernel_device.array(b)
    for name, ref in BINARY.items():
        fn = getattr(ops, name)
        np.testing.assert_allclose(fn(da, db).numpy(), ref(a, b), **tol(dtype), err_msg=name)
        np.testing.assert_allclose(fn(da, 1.5).numpy(), ref(a, dtype(1.5)), **tol(dtype), err_msg=name)
        np.testing.assert_allclose(fn(1.5, db).numpy(), ref(dtype(1.5), b), **tol(dtype), err_msg=name)
    for name, ref in UNARY.items():
        x = b if name in ("log", "sqrt") else a
        out = getattr(ops, name)(kernel_device.array(x))
        assert out.dtype == dtype
        np.testing.assert_allclose(out.numpy(), ref(x), **tol(dtype), err_msg=name)


def test_elementwise_in_place_and_special_values(kernel_device: hal.Device, ops: Any) -> None:
    x = np.array([np.nan, -np.inf, -1.0, 0.0, 2.0, np.inf], np.float32)
    dx = kernel_device.array(x)
    assert ops.maximum(dx, 0.0, dx) is dx
    np.testing.assert_array_equal(dx.numpy(), np.maximum(x, 0))
    # one rounding of libm's expf may differ from numpy's: compare to float32 tolerance
    np.testing.assert_allclose(ops.sigmoid(kernel_device.array(x)).numpy(), 1 / (1 + np.exp(-x)), rtol=2e-7)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions(kernel_device: hal.Device, ops: Any, dtype: Any, rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 300, 2)).astype(dtype)
    dx = kernel_device.array(x)
    for name in ("sum", "max", "mean"):
        for axis in (0, 1, -1, None):
            got = getattr(ops, name)(dx, axis).numpy()
            np.testing.assert_allclose(got, getattr(np, name)(x, axis=axis), rtol=1e-4 if dtype == np.float32
                                       else 1e-12, atol=1e-4 if dtype == np.float32 else 1e-12,
                                       err_msg=f"{name} axis={axis}")


def test_reduce_empty_axis(kernel_device: hal.Device, ops: Any) -> None:
    dx = kernel_device.empty((2, 0), np.float32)
    np.testing.assert_array_equal(ops.sum(dx, 1).numpy(), [0, 0])
    with pytest.raises(hal.InvalidArgumentError, match="empty axis"):
        ops.max(dx, 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_portable_reductions_of_few_long_lines_in_chunks(kernel_device: hal.Device, monkeypatch: pytest.MonkeyPatch,
                                                        dtype: Any, rng: np.random.Generator) -> None:
    """Few long contiguous lines reduce in two passes (chunks, then each line's chunks); small
    chunks here, so that short lines take that path, with a partial last chunk."""
    from hal.ops._portable import reduce

    monkeypatch.setattr(reduce, "CHUNK_LOADS", 2)
    x = rng.standard_normal((3, 1500)).astype(dtype)
    dx = kernel_device.array(x)
    for name in ("sum", "max", "mean"):
        for axis in (None, 1):
            got = getattr(hal.ops.portable, name)(dx, axis).numpy()
            np.testing.assert_allclose(got, getattr(np, name)(x, axis=axis), **tol(dtype), err_msg=f"{name} {axis}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_portable_reductions_along_leading_axes(kernel_device: hal.Device, dtype: Any,
                                                rng: np.random.Generator) -> None:
    """Lines far apart run one work-item per line: whole groups of lines, then a partial one."""
    x = rng.standard_normal((2, 9, 300)).astype(dtype)
    dx = kernel_device.array(x)
    for name in ("sum", "max", "mean"):
        for axis in (0, 1):
            got = getattr(hal.ops.portable, name)(dx, axis).numpy()
            np.testing.assert_allclose(got, getattr(np, name)(x, axis=axis), **tol(dtype), err_msg=f"{name} {axis}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax(kernel_device: hal.Device, ops: Any, dtype: Any, rng: np.random.Generator) -> None:
    x = (rng.standard_normal((4, 37)) * 30).astype(dtype)
    x[0, 0] = 1000  # exp overflows unless the max is subtracted first
    for axis in (0, 1):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        got = ops.softmax(kernel_device.array(x), axis).numpy()
        np.testing.assert_allclose(got, e / e.sum(axis=axis, keepdims=True), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm(kernel_device: hal.Device, ops: Any, dtype: Any, trans_a: bool, trans_b: bool,
              rng: np.random.Generator) -> None:
    m, k, n = 19, 21, 35  # not multiples of any tile
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    da, db = kernel_device.array(a), kernel_device.array(b)
    ref = (a.T if trans_a else a) @ (b.T if trans_b else b)
    got = ops.gemm(da, db, trans_a=trans_a, trans_b=trans_b)
    assert got.shape == (m, n) and got.dtype == dtype
    np.testing.assert_allclose(got.numpy(), ref, **tol(dtype))
    dc = kernel_device.array(c)
    assert ops.gemm(da, db, dc, alpha=-2, beta=0.5, trans_a=trans_a, trans_b=trans_b) is dc
    np.testing.assert_allclose(dc.numpy(), -2 * ref + 0.5 * c, **tol(dtype))


@pytest.mark.parametrize("multi_dim", [True, False])
@pytest.mark.parametrize("m,k,n", [(32, 16, 48), (5, 3, 7), (33, 40, 17)])
def test_portable_gemm_tiles_edges_and_launch_shapes(kernel_device: hal.Device, monkeypatch: pytest.MonkeyPatch,
                                                     multi_dim: bool, m: int, k: int, n: int,
                                                     rng: np.random.Generator) -> None:
    """Only interior tiles and whole K slabs; only edges and a partial slab; both. With a 2-D launch,
    and with the 1-D one that devices without multi_dim get."""
    if not multi_dim:
        supports = kernel_device.supports
        monkeypatch.setattr(kernel_device, "supports", lambda f: f != "multi_dim" and supports(f))
        assert not kernel_device.supports("multi_dim")
    for trans_a, trans_b in [(False, False), (True, True)]:
        a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
        c = rng.standard_normal((m, n)).astype(np.float32)
        ref = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
        dc = kernel_device.array(c)
        hal.ops.portable.gemm(kernel_device.array(a), kernel_device.array(b), dc, alpha=1.5, beta=-0.5,
                              trans_a=trans_a, trans_b=trans_b)
        np.testing.assert_allclose(dc.numpy(), 1.5 * ref - 0.5 * c, rtol=1e-5, atol=1e-4)


def test_gemm_beta_zero_ignores_nan_in_out(kernel_device: hal.Device, ops: Any) -> None:
    a = np.eye(3, dtype=np.float32)
    out = kernel_device.array(np.full((3, 3), np.nan, np.float32))
    ops.gemm(kernel_device.array(a), kernel_device.array(a), out)
    np.testing.assert_array_equal(out.numpy(), a)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride,padding", [(1, 0), ((2, 1), 1), (2, (0, 2))])
def test_conv2d(kernel_device: hal.Device, ops: Any, dtype: Any, stride: Any, padding: Any,
                rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3, 9, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    got = ops.conv2d(kernel_device.array(x), kernel_device.array(w), stride, padding).numpy()
    np.testing.assert_allclose(got, conv2d_ref(x, w, stride, padding), **tol(dtype))


def conv2d_ref(x: np.ndarray, w: np.ndarray, stride: Any, padding: Any) -> np.ndarray:
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    r, s = w.shape[2:]
    p, q = (xp.shape[2] - r) // sh + 1, (xp.shape[3] - s) // sw + 1
    out = np.zeros((x.shape[0], w.shape[0], p, q), x.dtype)
    for i in range(p):
        for j in range(q):
            out[:, :, i, j] = np.einsum("nchw,kchw->nk", xp[:, :, i * sh:i * sh + r, j * sw:j * sw + s], w)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_transpose(kernel_device: hal.Device, ops: Any, dtype: Any, rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    dx = kernel_device.array(x)
    for axes in (None, (1, 2, 0), (0, 2, 1), (-1, 0, 1)):
        np.testing.assert_array_equal(ops.transpose(dx, axes).numpy(), np.transpose(x, axes))
    m = x[0]
    np.testing.assert_array_equal(ops.transpose(kernel_device.array(m)).numpy(), m.T)
