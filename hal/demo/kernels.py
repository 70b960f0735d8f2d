"""The framework's own kernels (and the bench's), written once in hal's kernel language.

Each replaces two to four ``hal.ops`` launches (launches cost most on simulated
devices). A device that runs no kernels (the NPU) rejects them with
``UnsupportedError`` at compile time, before anything is enqueued, and the
placer picks the next implementation or the fallback device.
"""

from __future__ import annotations

from typing import Any

import hal
from hal import Ptr, f32, i32

BLOCK = 128


@hal.kernel
def bias_add(z: Ptr[f32], b: Ptr[f32], out: Ptr[f32], n: i32, cols: i32):
    i = hal.global_id(0)
    if i < n:
        out[i] = z[i] + b[i % cols]


@hal.kernel
def bias_relu(z: Ptr[f32], b: Ptr[f32], out: Ptr[f32], n: i32, cols: i32):
    i = hal.global_id(0)
    if i < n:
        out[i] = hal.max(z[i] + b[i % cols], f32(0))


@hal.kernel
def relu_grad(dh: Ptr[f32], h: Ptr[f32], out: Ptr[f32], n: i32):
    i = hal.global_id(0)
    if i < n:
        out[i] = dh[i] if h[i] > f32(0) else f32(0)


@hal.kernel
def softmax_xent(z: Ptr[f32], t: Ptr[f32], loss: Ptr[f32], dz: Ptr[f32], rows: i32, cols: i32, inv_rows: f32):
    """One thread per row: loss[r] = -sum t log softmax(z), dz = (softmax(z) - t) / rows."""
    r = hal.global_id(0)
    if r < rows:
        base = r * cols
        m = z[base]
        for j in range(1, cols):
            m = hal.max(m, z[base + j])
        s = f32(0)
        for j in range(cols):
            s += hal.exp(z[base + j] - m)
        log_s = hal.log(s)
        acc = f32(0)
        for j in range(cols):
            shifted = z[base + j] - m
            acc += t[base + j] * (log_s - shifted)
            dz[base + j] = (hal.exp(shifted) / s - t[base + j]) * inv_rows
        loss[r] = acc


@hal.kernel
def sgd_momentum(w: Ptr[f32], v: Ptr[f32], g: Ptr[f32], w_out: Ptr[f32], v_out: Ptr[f32], lr: f32, mu: f32,
                 n: i32):
    """v' = mu v + g; w' = w - lr v' (PyTorch's SGD momentum, dampening 0)."""
    i = hal.global_id(0)
    if i < n:
        vn = mu * v[i] + g[i]
        v_out[i] = vn
        w_out[i] = w[i] - lr * vn


@hal.kernel
def saxpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        out[i] = a * x[i] + y[i]


@hal.kernel
def empty(n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        pass


def launch(kernel: Any, threads: int, *args: object, device: hal.Device) -> None:
    """``kernel`` over ``threads`` work-items, 1-D, on the device's default queue (where hal.ops run)."""
    block = min(BLOCK, device.info.max_block_size)
    kernel[(threads + block - 1) // block, block, device.default_queue](*args)
