"""Reference kernels in the kernel language: the ones hal's docs, conformance suite,
benchmarks and timing-model validation all run, defined once so every figure refers to
the same code (benchmarks/gpu/measure_h100.py holds their CUDA C twins).
"""

from __future__ import annotations

import hal.kernel as hk


@hk
def saxpy(a: hk.f32, x: hk.Ptr[hk.f32], y: hk.Ptr[hk.f32], n: hk.i32):
    """y = a * x + y: the bandwidth-bound kernel every device is measured with."""
    i = hk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


@hk
def strided(x: hk.Ptr[hk.f32], y: hk.Ptr[hk.f32], s: hk.i32, n: hk.i32):
    """y[i] = x[i * s]: coalescing falls apart as the stride grows."""
    i = hk.global_id(0)
    if i < n:
        y[i] = x[i * s]


@hk
def reduce128(x: hk.Ptr[hk.f32], out: hk.Ptr[hk.f32]):
    """Per-group sums of 128 elements: a shared-memory tree with a barrier per level."""
    buf = hk.shared(hk.f32, 128)
    t = hk.local_id(0)
    buf[t] = x[hk.global_id(0)]
    hk.barrier()
    s = 64
    while s > 0:
        if t < s:
            buf[t] = buf[t] + buf[t + s]
        hk.barrier()
        s = s // 2
    if t == 0:
        out[hk.group_id(0)] = buf[0]
