"""The CPU plugin's native gemm (plugins/hal_cpu/_ops.py): numpy's BLAS on the arrays' own memory."""

from __future__ import annotations

import numpy as np
import pytest
from hal_cpu._ops import host_gemm, serves

import hal
from hal.backend import Operand
from hal.ops._dispatch import dispatcher


@pytest.fixture
def cpu_native(cpu: hal.Device) -> hal.Device:
    chosen = dispatcher.choice("gemm", cpu)
    assert chosen is not None and chosen.fn is host_gemm, "hal_cpu's hal_ops hook must return its host gemm"
    return cpu


def test_simulated_devices_are_not_served(interp: hal.Device) -> None:
    assert not serves(interp.info)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("alpha,beta", [(1, 0), (-0.5, 0), (2, 1), (1.5, -0.25)])
def test_gemm_matches_numpy(cpu_native: hal.Device, dtype: type, trans_a: bool, trans_b: bool, alpha: float,
                            beta: float) -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((33, 17) if trans_a else (17, 33)).astype(dtype)
    b = rng.standard_normal((9, 33) if trans_b else (33, 9)).astype(dtype)
    c = rng.standard_normal((17, 9)).astype(dtype)
    out = cpu_native.array(c)
    hal.ops.gemm(cpu_native.array(a), cpu_native.array(b), out, alpha=alpha, beta=beta, trans_a=trans_a,
                 trans_b=trans_b)
    ref = alpha * ((a.T if trans_a else a) @ (b.T if trans_b else b)) + beta * c
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_gemm_on_views_and_after_queued_work(cpu_native: hal.Device) -> None:
    """Offsets inside a block are honoured, and earlier commands of the queue land first."""
    raw = cpu_native.empty((64,), np.float32)
    a, b = raw.reshape(8, 8), cpu_native.array(np.eye(8, dtype=np.float32))
    q = cpu_native.queue()
    q.fill(raw, 2.0)
    out = hal.ops.gemm(a, b, queue=q)
    np.testing.assert_array_equal(out.numpy(), np.full((8, 8), 2.0, np.float32))


def test_int8_gemm_wraps_like_int32_accumulation(cpu_native: hal.Device) -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (6, 40), dtype=np.int8)
    b = rng.integers(-128, 128, (40, 7), dtype=np.int8)
    c = rng.integers(-1000, 1000, (6, 7), dtype=np.int32)
    da, db, out = cpu_native.array(a), cpu_native.array(b), cpu_native.array(c)
    ref = (3 * (a.astype(np.int64) @ b.astype(np.int64)) - c).astype(np.int32)
    if cpu_native.supports("int8"):
        hal.ops.gemm(da, db, out, alpha=3, beta=-1)
    else:  # the device does not declare int8: the public op refuses it, the native itself still works
        with pytest.raises(hal.UnsupportedError, match="int8"):
            hal.ops.gemm(da, db)
        da_, db_, out_ = (Operand(x.buffer, x.offset, x.shape, x.dtype) for x in (da, db, out))
        host_gemm(cpu_native.default_queue.impl, da_, db_, out_, alpha=3, beta=-1, trans_a=False, trans_b=False,
                  trace=None)
    np.testing.assert_array_equal(out.numpy(), ref)


def test_profiled_native_gemm(cpu_native: hal.Device) -> None:
    a = cpu_native.array(np.ones((4, 4), np.float32))
    with hal.profile() as prof:
        hal.ops.gemm(a, a)
    (record,) = [r for r in prof.records if r.name == "gemm"]
    assert record.kind == "op" and record.device_s > 0
