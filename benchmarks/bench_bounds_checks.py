"""What OpenCL's default bounds checks cost: the same kernels built checked (the default) and
unchecked (``HAL_CHECK=0``), run side by side in one process on opencl:0, interleaved.

* saxpy 16M f32 (memory-bound: two loads and a store per element, each checked);
* a 3-point stencil 16M f32 (three loads per element);
* a mat-vec 2048x2048 f32 (a loop of two loads per step: the checks sit in the inner loop).
Prints best-of-N times and unchecked/checked ratios (1.00: free); never asserts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import hal

N = 1 << 24
M = 2048
REPS = 7


def kernels() -> dict[str, Any]:
    """Fresh kernel objects (a kernel keeps what it compiled to, so each mode needs its own)."""

    @hal.kernel
    def saxpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
        i = hal.global_id(0)
        if i < n:
            y[i] = a * x[i] + y[i]

    @hal.kernel
    def stencil(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
        i = hal.global_id(0)
        if i > 0 and i < n - 1:
            y[i] = (x[i - 1] + x[i] + x[i + 1]) * 0.25

    @hal.kernel
    def matvec(a: hal.Ptr[hal.f32], x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], m: hal.i32):
        i = hal.global_id(0)
        if i < m:
            acc = hal.f32(0.0)
            for j in range(m):
                acc += a[i * m + j] * x[j]
            y[i] = acc

    return {"saxpy": saxpy, "stencil": stencil, "matvec": matvec}


def compiled(dev: hal.Device, check: str | None) -> dict[str, Any]:
    """The kernels compiled with ``HAL_CHECK`` set to ``check`` (None: unset, the default)."""
    old = os.environ.pop("HAL_CHECK", None)
    if check is not None:
        os.environ["HAL_CHECK"] = check
    try:
        built = kernels()
        for k in built.values():
            assert dev.compile(k).report()["checked"] == (check != "0")
        return built
    finally:
        os.environ.pop("HAL_CHECK", None)
        if old is not None:
            os.environ["HAL_CHECK"] = old


def best(fn: Callable[[], None], dev: hal.Device) -> float:
    fn()
    dev.synchronize()
    times = []
    for _ in range(REPS):
        t = time.perf_counter()
        fn()
        dev.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    dev = hal.device("opencl:0")
    rng = np.random.default_rng(0)
    x, y = dev.array(rng.random(N, np.float32)), dev.array(rng.random(N, np.float32))
    a, v, w = dev.array(rng.random(M * M, np.float32)), dev.array(rng.random(M, np.float32)), dev.zeros((M,), np.float32)
    modes = {"checked (default)": compiled(dev, None), "unchecked (HAL_CHECK=0)": compiled(dev, "0")}
    runs: dict[str, Callable[[dict[str, Any]], None]] = {
        "saxpy 16M f32": lambda k: k["saxpy"][N // 256, 256](2.0, x, y, N),
        "stencil 16M f32": lambda k: k["stencil"][N // 256, 256](x, y, N),
        "matvec 2048x2048 f32": lambda k: k["matvec"][M // 64, 64](a, v, w, M),
    }
    print(f"{dev.info.name}: best of {REPS}, interleaved")
    print(f"{'kernel':<22}{'checked ms':>12}{'unchecked ms':>14}{'unchecked/checked':>19}")
    for name, run in runs.items():
        t = {mode: 1e30 for mode in modes}
        for _ in range(3):  # interleave the modes so that drift hits both
            for mode, built in modes.items():
                t[mode] = min(t[mode], best(lambda built=built, run=run: run(built), dev))
        checked, unchecked = t["checked (default)"], t["unchecked (HAL_CHECK=0)"]
        print(f"{name:<22}{checked * 1e3:>12.2f}{unchecked * 1e3:>14.2f}{unchecked / checked:>19.2f}")


if __name__ == "__main__":
    main()
