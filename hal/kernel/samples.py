"""Reference kernels in the kernel language: the ones hal's docs, conformance suite,
benchmarks and timing-model validation all run, defined once so every figure refers to
the same code (benchmarks/gpu/measure_h100.py holds their CUDA C twins).
"""

from __future__ import annotations

import hal


@hal.kernel
def saxpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
    """y = a * x + y: the bandwidth-bound kernel every device is measured with."""
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


@hal.kernel
def strided(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], s: hal.i32, n: hal.i32):
    """y[i] = x[i * s]: coalescing falls apart as the stride grows."""
    i = hal.global_id(0)
    if i < n:
        y[i] = x[i * s]


@hal.kernel
def reduce128(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32]):
    """Per-group sums of 128 elements: a shared-memory tree with a barrier per level."""
    buf = hal.shared(hal.f32, 128)
    t = hal.local_id(0)
    buf[t] = x[hal.global_id(0)]
    hal.barrier()
    s = 64
    while s > 0:
        if t < s:
            buf[t] = buf[t] + buf[t + s]
        hal.barrier()
        s = s // 2
    if t == 0:
        out[hal.group_id(0)] = buf[0]
