"""Native operators: exact results against numpy, profile counters from the model, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hal_accel._model import gemm_cycles

import hal

RNG = np.random.default_rng(7)


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _i8(*shape: int) -> np.ndarray:
    return RNG.integers(-128, 128, shape, dtype=np.int8)


@pytest.mark.parametrize(("trans_a", "trans_b"), [(False, False), (True, False), (False, True), (True, True)])
def test_float32_gemm_matches_numpy(accel: hal.Device, trans_a: bool, trans_b: bool) -> None:
    a, b, c = _f32(70, 300), _f32(300, 45), _f32(70, 45)
    ha, hb = (a.T.copy() if trans_a else a), (b.T.copy() if trans_b else b)
    out = accel.array(c)
    hal.ops.gemm(accel.array(ha), accel.array(hb), out, alpha=0.5, beta=2.0, trans_a=trans_a, trans_b=trans_b)
    np.testing.assert_allclose(out.numpy(), 0.5 * (a @ b) + 2.0 * c, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("k", [100, 1024, 1500])  # float32 exact up to 1024, float64 beyond
def test_int8_gemm_is_bit_exact(accel: hal.Device, k: int) -> None:
    a, b, c = _i8(33, k), _i8(k, 17), RNG.integers(-2**31, 2**31, (33, 17), dtype=np.int32)
    out = accel.array(c)
    hal.ops.gemm(accel.array(a), accel.array(b), out, alpha=3, beta=-2)
    expected = (3 * (a.astype(np.int64) @ b.astype(np.int64)) - 2 * c.astype(np.int64)).astype(np.int32)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_int8_gemm_wraps_like_int32_hardware(accel: hal.Device) -> None:
    a, b = np.full((2, 2048), -128, np.int8), np.full((2048, 2), -128, np.int8)
    out = hal.ops.gemm(accel.array(a), accel.array(b), alpha=2**20)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.numpy(), np.full((2, 2), (2**20 * 2048 * 16384) % 2**32, np.int64)
                                  .astype(np.uint32).view(np.int32))


def _conv_reference(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], pad: tuple[int, int]) -> np.ndarray:
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    k, _, r, s = w.shape
    p = (xp.shape[2] - r) // stride[0] + 1
    q = (xp.shape[3] - s) // stride[1] + 1
    out = np.zeros((x.shape[0], k, p, q))
    for i in range(p):
        for j in range(q):
            patch = xp[:, :, i * stride[0]:i * stride[0] + r, j * stride[1]:j * stride[1] + s]
            out[:, :, i, j] = np.einsum("ncrs,kcrs->nk", patch, w)
    return out


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_conv2d_matches_a_direct_convolution(accel: hal.Device, stride: object, padding: object) -> None:
    x, w = _f32(2, 3, 11, 9), _f32(4, 3, 3, 3)
    with hal.profile() as prof:
        out = hal.ops.conv2d(accel.array(x), accel.array(w), stride=stride, padding=padding)
    st = stride if isinstance(stride, tuple) else (stride, stride)
    pd = padding if isinstance(padding, tuple) else (padding, padding)
    np.testing.assert_allclose(out.numpy(), _conv_reference(x, w, st, pd), rtol=1e-5, atol=1e-5)
    (rec,) = [r for r in prof.records if r.name == "conv2d"]
    p, q = out.shape[2:]
    assert rec.counters["macs"] == 2 * p * q * 4 * 27
    assert rec.counters["im2col_bytes"] == 2 * p * q * 27 * 4


def test_elementwise_ops_match_numpy(accel: hal.Device) -> None:
    a, b = _f32(1000), _f32(1000)
    da, db = accel.array(a), accel.array(b)
    np.testing.assert_array_equal(hal.ops.add(da, db).numpy(), a + b)
    np.testing.assert_array_equal(hal.ops.sub(da, db).numpy(), a - b)
    np.testing.assert_array_equal(hal.ops.mul(2.5, db).numpy(), np.float32(2.5) * b)
    np.testing.assert_array_equal(hal.ops.maximum(da, db).numpy(), np.maximum(a, b))
    np.testing.assert_array_equal(hal.ops.minimum(da, 0.0).numpy(), np.minimum(a, 0))
    np.testing.assert_array_equal(hal.ops.relu(da).numpy(), np.maximum(a, 0))
    np.testing.assert_allclose(hal.ops.tanh(da).numpy(), np.tanh(a), rtol=1e-6)
    big = accel.array(np.array([-200.0, 0.0, 200.0], np.float32))
    np.testing.assert_allclose(hal.ops.sigmoid(big).numpy(), [0.0, 0.5, 1.0], rtol=1e-6)
    hal.ops.relu(da, out=da)  # in place
    np.testing.assert_array_equal(da.numpy(), np.maximum(a, 0))


@pytest.mark.parametrize("op", ["exp", "div", "softmax", "sum"])
def test_operators_beyond_the_hardware_are_refused(accel: hal.Device, op: str) -> None:
    x = accel.array(_f32(8))
    args = (x, x) if op == "div" else (x,)
    with pytest.raises(hal.UnsupportedError, match=op) as info:
        getattr(hal.ops, op)(*args)
    assert accel.info.name in str(info.value) and "accel:0" in str(info.value)
    np.testing.assert_array_equal(hal.ops.add(x, x).numpy(), 2 * x.numpy())  # still works


def test_profile_counters_follow_scalesim(small: hal.Device) -> None:
    a, b = small.array(_f32(256, 256)), small.array(_f32(256, 128))
    q = small.queue()
    with hal.profile() as prof:
        e0 = q.record()
        out = hal.ops.gemm(a, b, queue=q)
        e1 = q.record()
    (rec,) = [r for r in prof.records if r.name == "gemm"]
    c = rec.counters
    assert c["compute_cycles"] == gemm_cycles(256, 128, 256, 32, 32, "os") == 10_175
    assert c["cycles"] == c["compute_cycles"] + c["stall_cycles"] and c["stall_cycles"] > 0
    assert c["folds"] == 32 and c["macs"] == 256 * 128 * 256 and c["dataflow"] == "os"
    assert c["dram_bytes"] == (256 * 256 + 256 * 128 + 256 * 128) * 4
    assert c["utilization"] == pytest.approx(c["macs"] / (32 * 32 * c["cycles"]))
    assert "analytic estimate" in c["model"] and "32x32" in c["model"]
    assert rec.device_s == pytest.approx(c["cycles"] / 700e6)
    assert e1.elapsed(e0) == pytest.approx(rec.device_s)
    np.testing.assert_allclose(out.numpy(), a.numpy() @ b.numpy(), rtol=1e-5, atol=1e-4)  # other queue: waited for


def test_elementwise_counters_come_from_the_vector_unit(accel: hal.Device) -> None:
    x = accel.array(_f32(256 * 64))
    with hal.profile() as prof:
        hal.ops.relu(x)
    c = prof.records[-1].counters
    assert c["compute_cycles"] == 64 and c["macs"] == 0 and c["dram_bytes"] == 2 * x.nbytes
