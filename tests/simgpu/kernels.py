"""Kernels the simgpu tests launch (kernels are compiled from source, so they live in a file)."""

import hal
from hal.kernel.samples import reduce128, saxpy, strided  # noqa: F401 - the tests use them as k.*


@hal.kernel
def bank_stride(out: hal.Ptr[hal.f32], s: hal.i32):
    buf = hal.shared(hal.f32, 1024)
    t = hal.local_id(0)
    buf[t * s % 1024] = hal.f32(t)
    hal.barrier()
    out[hal.global_id(0)] = buf[t * s % 1024]


@hal.kernel
def histogram(x: hal.Ptr[hal.i32], bins: hal.Ptr[hal.i32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        hal.atomic_add(bins, x[i], 1)


@hal.kernel
def racy(out: hal.Ptr[hal.f32]):
    buf = hal.shared(hal.f32, 64)
    t = hal.local_id(0)
    buf[t] = hal.f32(t)
    out[hal.global_id(0)] = buf[(t + 1) % 64]


@hal.kernel
def race_free(out: hal.Ptr[hal.f32]):
    buf = hal.shared(hal.f32, 64)
    t = hal.local_id(0)
    buf[t] = hal.f32(t)
    hal.barrier()
    out[hal.global_id(0)] = buf[(t + 1) % 64]
    hal.atomic_add(buf, 0, 1.0)


@hal.kernel
def oob(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    x[i + n] = 1.0


@hal.kernel
def too_much_shared(x: hal.Ptr[hal.f32]):
    buf = hal.shared(hal.f32, 100000)
    buf[hal.local_id(0)] = 1.0
    x[0] = buf[0]


@hal.kernel
def everything(x: hal.Ptr[hal.f64], y: hal.Ptr[hal.i64], n: hal.i32):
    i = hal.global_id(0)
    tmp = hal.local(hal.f64, 4)
    for k in range(4):
        tmp[k] = hal.f64(k) * x[i]
    acc = 0.0
    j = 0
    while j < 4:
        acc += hal.sqrt(hal.abs(tmp[j])) + hal.exp(-tmp[j] * 0.01)
        j += 1
    x[i] = acc if i % 3 != 0 else hal.fma(acc, 2.0, 1.0)
    y[i] = (hal.i64(i) * 7) // 3 % 5 - (y[i] << 2)
