"""Simulated timing models count the bytes of what a kernel moves: an f16 or i8 copy moves half or a
quarter of an f32 one's DRAM bytes, and is not slower."""

from __future__ import annotations

import numpy as np
import pytest

import hal

T = hal.dtype_var("T")


@hal.kernel
def copy(x: hal.Ptr[T], y: hal.Ptr[T], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = x[i]


def modelled(device: hal.Device, kernel: hal.KernelFunction, dtype: type, n: int) -> tuple[float, int]:
    x, y = device.zeros((n,), dtype), device.empty((n,), dtype)
    with hal.profile() as prof:
        kernel[n // 256, 256, device.default_queue](x, y, n)
        device.default_queue.synchronize()
    (record,) = [r for r in prof.records if r.name == kernel.name]
    return record.device_s, int(record.counters["dram_bytes"])


@pytest.mark.parametrize("spec", ["simgpu", "fpga"])
def test_dram_bytes_follow_the_itemsize(spec: str) -> None:
    device, n = hal.device(spec), 1 << 18
    t32, b32 = modelled(device, copy, np.float32, n)
    t16, b16 = modelled(device, copy, np.float16, n)
    t8, b8 = modelled(device, copy, np.int8, n)
    assert b32 == 2 * n * 4
    assert (b16, b8) == (b32 // 2, b32 // 4)
    assert t8 <= t16 <= t32
