"""Kernels of the fpga tests (kernels are compiled from their source file)."""

from __future__ import annotations

import hal
from hal.kernel.samples import saxpy  # noqa: F401 - the tests use it as k.saxpy


@hal.kernel
def add20(a: hal.Ptr[hal.i32], b: hal.Ptr[hal.i32], c: hal.Ptr[hal.i32]):
    for i in range(20):
        c[i] = a[i] + b[i]


@hal.kernel
def accumulate(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32):
    s = hal.f32(0.0)
    for i in range(n):
        s += x[i]
    out[0] = s


@hal.kernel
def reverse_blocks(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
    tile = hal.shared(hal.f32, 64)
    t = hal.local_id(0)
    tile[t] = x[hal.global_id(0)]
    hal.barrier()
    y[hal.global_id(0)] = tile[63 - t]


@hal.kernel
def triangle(out: hal.Ptr[hal.i32]):
    i = hal.global_id(0)
    s = 0
    for j in range(i):
        s += j
    out[i] = s


@hal.kernel
def collatz(x: hal.Ptr[hal.i32], steps: hal.Ptr[hal.i32]):
    i = hal.global_id(0)
    v = x[i]
    k = 0
    while v != 1:
        v = v // 2 if v % 2 == 0 else 3 * v + 1
        k += 1
    steps[i] = k


@hal.kernel
def histogram(x: hal.Ptr[hal.i32], bins: hal.Ptr[hal.i32]):
    hal.atomic_add(bins, x[hal.global_id(0)], 1)
