"""Row-wise softmax and layer normalisation, written once with work-group reductions, generic over f32/f64.

One work-group per row: each work-item folds a strided slice of the row, then
``hal.group_reduce_max`` / ``hal.group_reduce_add`` combine the slices (every work-item gets
the result; the reduction is also a barrier). ``T = hal.dtype_var("T")`` makes each kernel
generic: a launch with float32 arrays compiles (once) the f32 specialisation, float64 the f64 one.

    python examples/softmax_layernorm.py                 # cpu, simgpu, fpga, opencl (where present)
    python examples/softmax_layernorm.py simgpu:1 cpu    # chosen devices

Prints the largest error against numpy per device and dtype; exits 1 if one is out of tolerance.
"""

from __future__ import annotations

import math
import sys

import numpy as np

import hal

T = hal.dtype_var("T")
BLOCK = 128
"""Work-items per row."""
TOLERANCE = {np.dtype(np.float32): 2e-6, np.dtype(np.float64): 1e-14}
"""Relative to the row's scale: a few roundings of exp and of the reductions."""


@hal.kernel
def softmax(x: hal.Ptr[T], y: hal.Ptr[T], cols: hal.i32):
    base = hal.group_id(0) * cols
    lid = hal.local_id(0)
    step = hal.local_size(0)
    m = T(-math.inf)
    for c in range(lid, cols, step):
        m = hal.max(m, x[base + c])
    row_max = hal.group_reduce_max(m)
    s = T(0)
    for c in range(lid, cols, step):
        s += hal.exp(x[base + c] - row_max)
    total = hal.group_reduce_add(s)
    for c in range(lid, cols, step):
        y[base + c] = hal.exp(x[base + c] - row_max) / total


@hal.kernel
def layernorm(x: hal.Ptr[T], gamma: hal.Ptr[T], beta: hal.Ptr[T], y: hal.Ptr[T], cols: hal.i32, eps: T):
    base = hal.group_id(0) * cols
    lid = hal.local_id(0)
    step = hal.local_size(0)
    s = T(0)
    for c in range(lid, cols, step):
        s += x[base + c]
    mean = hal.group_reduce_add(s) / T(cols)
    q = T(0)
    for c in range(lid, cols, step):
        d = x[base + c] - mean
        q += d * d
    inv = T(1) / hal.sqrt(hal.group_reduce_add(q) / T(cols) + eps)
    for c in range(lid, cols, step):
        y[base + c] = (x[base + c] - mean) * inv * gamma[c] + beta[c]


def softmax_numpy(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def layernorm_numpy(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    out: np.ndarray = (x - mean) / np.sqrt(var + eps) * gamma + beta
    return out


def run(device: hal.Device, dtype: type, rows: int = 8, cols: int = 300) -> dict[str, float]:
    """Both kernels on ``device`` in ``dtype``: the largest error against numpy (relative to 1)."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((rows, cols)) * 3).astype(dtype)
    gamma, beta = rng.standard_normal(cols).astype(dtype), rng.standard_normal(cols).astype(dtype)
    q = device.default_queue
    dx, dy = device.array(x.ravel()), device.empty((rows * cols,), dtype)
    softmax[rows, BLOCK, q](dx, dy, cols)
    errors = {"softmax": float(np.abs(dy.numpy().reshape(rows, cols) - softmax_numpy(x)).max())}
    eps = 1e-5
    layernorm[rows, BLOCK, q](dx, device.array(gamma), device.array(beta), dy, cols, eps)
    want = layernorm_numpy(x.astype(np.float64), gamma, beta, eps)
    errors["layernorm"] = float(np.abs(dy.numpy().reshape(rows, cols) - want).max() / np.abs(want).max())
    return errors


def default_devices() -> list[hal.Device]:
    """One device of each bundled kernel backend that is present here."""
    found = []
    for spec in ("cpu", "simgpu", "fpga", "opencl"):
        try:
            found.append(hal.device(spec))
        except hal.HalError:
            continue
    return found


def main(argv: list[str]) -> int:
    devices = [hal.device(spec) for spec in argv] if argv else default_devices()
    ok = True
    for device in devices:
        if not (device.supports("kernels") and device.supports("subgroups")):
            print(f"{device.spec:10s} skipped: no kernels with collectives")
            continue
        for dtype in (np.float32, np.float64):
            if dtype is np.float64 and not device.supports("f64"):
                continue
            errors = run(device, dtype)
            good = all(e <= TOLERANCE[np.dtype(dtype)] * 10 for e in errors.values())
            ok &= good
            text = "  ".join(f"{k} {v:.2e}" for k, v in errors.items())
            print(f"{device.spec:10s} {np.dtype(dtype).name:8s} max error: {text}  {'ok' if good else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
