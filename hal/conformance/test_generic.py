"""Generic kernels: one source specialised per launch over dtype variables and ``hal.Const`` values.

The core specialises; the device under test compiles and runs each specialisation as an
ordinary kernel, so these check that it keeps them apart (one per dtype, one per constant).
"""

from __future__ import annotations

import numpy as np
import pytest

import hal

from ._compare import assert_allclose, assert_array_equal

pytestmark = pytest.mark.feature("kernels")
T = hal.dtype_var("T")


@hal.kernel
def axpy(a: T, x: hal.Ptr[T], y: hal.Ptr[T], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i] + T(1)


def launch(device, kernel, n, *args, block=64):
    kernel[(n + block - 1) // block, block, device.default_queue](*args)
    device.default_queue.synchronize()


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint32])
def test_generic_over_dtypes(device, dtype):
    n = 300
    x = np.arange(n).astype(dtype)
    y = np.full(n, 3, dtype)
    dy = device.array(y)
    launch(device, axpy, n, 2, device.array(x), dy, n)
    assert_array_equal(dy, (dtype(2) * x + y + dtype(1)).astype(dtype), what=f"axpy over {np.dtype(dtype)}")


@pytest.mark.feature("f64")
def test_generic_f64_keeps_precision(device):
    x = np.full(10, 1.0 + 2.0**-40)
    dy = device.zeros((10,), np.float64)
    launch(device, axpy, 10, 1.0, device.array(x), dy, 10)
    assert_array_equal(dy, x + 1.0, what="axpy over float64 (an f32 specialisation would round)")


@hal.kernel
def block_sum(x: hal.Ptr[T], out: hal.Ptr[T], BLOCK: hal.Const[hal.i32]):
    tile = hal.shared(T, BLOCK)
    lid = hal.local_id(0)
    tile[lid] = x[hal.global_id(0)]
    hal.barrier()
    if lid == 0:
        acc: T = 0
        for k in range(BLOCK):
            acc += tile[k]
        out[hal.group_id(0)] = acc


@pytest.mark.feature("shared_memory")
@pytest.mark.feature("barriers")
@pytest.mark.parametrize("block", [32, 96])
def test_const_parameter_sizes_shared_memory_and_loops(device, block):
    x = np.random.default_rng(block).integers(-100, 100, 4 * block).astype(np.int32)
    out = device.zeros((4,), np.int32)
    block_sum[4, block, device.default_queue](device.array(x), out, block)
    device.default_queue.synchronize()
    assert_array_equal(out, x.reshape(4, block).sum(axis=1), what=f"sum of each block of {block}")


def test_specialize_ahead_of_time(device):
    exe = device.compile(axpy.specialize(T=hal.f32))
    x = device.array(np.ones(8, np.float32))
    y = device.zeros((8,), np.float32)
    exe[1, 8, device.default_queue](0.5, x, y, 8)
    device.default_queue.synchronize()
    assert_allclose(y, 1.5, rtol=0, atol=0, what="a specialisation compiled ahead of time")
