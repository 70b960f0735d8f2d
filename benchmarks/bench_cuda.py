"""hal's CUDA backend against CuPy and bare cuda.core, side by side in one run on one GPU.

* saxpy 64M f32: hal's kernel language vs the same kernel hand-written in CUDA C, as a CuPy
  ``RawKernel`` and launched through cuda.core (target >= 0.95x);
* launch of a tiny cached kernel, host time per launch: hal vs a bare ``cuda.core.launch``
  (target <= 1.3x);
* device-to-device copy of 1 GiB: ``q.copy`` vs CuPy's and vs cuda.core's ``Buffer.copy_to``
  (target >= 0.95x).

CuPy is optional (a GPU machine without a network may lack it): without it the CuPy rows say so
and the cuda.core rows remain, the same NVRTC cubin and ``cuLaunchKernel`` a ``RawKernel`` is.
Device times are CUDA events around each command (median of REPS after a warm-up). Prints a table
and writes JSON (``--json FILE``) with the device, driver and date; never asserts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from cuda.core import Device, EventOptions, LaunchConfig, Program, ProgramOptions, launch

import hal
from hal.kernel.samples import saxpy

try:
    import cupy
except ImportError:
    cupy = None

N = 64 << 20
COPY_BYTES = 1 << 30
REPS = 20
LAUNCHES = 5000
HAND = r"""extern "C" __global__ void saxpy(float a, const float *x, float *y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] = a * x[i] + y[i]; }
extern "C" __global__ void tiny(int *p) { if (blockIdx.x * blockDim.x + threadIdx.x == 0) p[0] += 1; }"""


@hal.kernel
def tiny(p: hal.Ptr[hal.i32]):
    if hal.global_id(0) == 0:
        p[0] += 1


def cupy_time(fn: Callable[[], Any]) -> float:
    """Median seconds of ``fn`` on CuPy's current stream, by CUDA events."""
    fn()
    times = []
    for _ in range(REPS):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) * 1e-3)
    return statistics.median(times)


def core_time(fn: Callable[[], Any], stream: Any) -> float:
    """Median seconds of ``fn`` on a cuda.core stream, by its timing events."""
    fn()
    times = []
    timed = EventOptions(timing_enabled=True)
    for _ in range(REPS):
        start = stream.record(options=timed)
        fn()
        end = stream.record(options=timed)
        end.sync()
        times.append((end - start) * 1e-3)
    return statistics.median(times)


def hal_time(fn: Callable[[], Any], queue: hal.Queue) -> float:
    """Median seconds of ``fn`` on ``queue``, by hal events (CUDA events)."""
    fn()
    times = []
    for _ in range(REPS):
        start = queue.record()
        fn()
        end = queue.record()
        end.synchronize()
        times.append(end.elapsed(start))
    return statistics.median(times)


def host_per_launch(fn: Callable[[], Any], sync: Callable[[], Any]) -> float:
    """Median host seconds per call over 5 batches of LAUNCHES (the GPU drains between batches)."""
    fn()
    sync()
    batches = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(LAUNCHES):
            fn()
        batches.append((time.perf_counter() - t) / LAUNCHES)
        sync()
    return statistics.median(batches)


def main(out: Path | None) -> None:
    dev = hal.device("cuda:0")
    q = dev.default_queue
    info = dev.info
    rows: dict[str, dict[str, float]] = {}
    device = Device(0)
    device.set_current()
    stream = device.create_stream()
    module = Program(HAND, "c++", ProgramOptions(arch=f"sm_{device.arch}", fma=False)).compile("cubin")

    def row(name: str, hal_value: float, reference: float, ratio: float, target: float) -> None:
        rows[name] = {"hal": hal_value, "reference": reference, "ratio": ratio, "target": target}

    # saxpy 64M f32, 12 bytes per element
    x, y = dev.array(np.ones(N, np.float32)), dev.array(np.ones(N, np.float32))
    t_hal = hal_time(lambda: saxpy[N // 256, 256, q](2.0, x, y, N), q)
    gbs = 12 * N / 1e9
    bx, by = device.allocate(4 * N, stream=stream), device.allocate(4 * N, stream=stream)
    k_saxpy, grid = module.get_kernel("saxpy"), LaunchConfig(grid=N // 256, block=256)
    t_core = core_time(lambda: launch(stream, grid, k_saxpy, np.float32(2.0), bx, by, np.int32(N)), stream)
    row("saxpy 64M f32 (GB/s) vs cuda.core", gbs / t_hal, gbs / t_core, t_core / t_hal, 0.95)
    if cupy is not None:
        cx, cy = cupy.ones(N, cupy.float32), cupy.ones(N, cupy.float32)
        k_cupy = cupy.RawModule(code=HAND, options=("--fmad=false",)).get_function("saxpy")
        t_cupy = cupy_time(lambda: k_cupy((N // 256,), (256,), (np.float32(2.0), cx, cy, np.int32(N))))
        row("saxpy 64M f32 (GB/s) vs CuPy", gbs / t_hal, gbs / t_cupy, t_cupy / t_hal, 0.95)

    # a tiny cached kernel: host time per launch
    p = dev.zeros((1,), np.int32)
    t_hal_launch = host_per_launch(lambda: tiny[1, 32, q](p), q.synchronize)
    buf, k_tiny, one = device.allocate(4, stream=stream), module.get_kernel("tiny"), LaunchConfig(grid=1, block=32)
    t_launch = host_per_launch(lambda: launch(stream, one, k_tiny, buf), stream.sync)
    row("tiny launch (us per launch, host)", t_hal_launch * 1e6, t_launch * 1e6, t_hal_launch / t_launch, 1.3)

    # device-to-device copy, 1 GiB (read + write counted)
    n = COPY_BYTES // 4
    a, b = dev.empty((n,), np.float32), dev.empty((n,), np.float32)
    t_hal_copy = hal_time(lambda: q.copy(b, a), q)
    gbs = 2 * COPY_BYTES / 1e9
    ba, bb = device.allocate(COPY_BYTES, stream=stream), device.allocate(COPY_BYTES, stream=stream)
    t_core_copy = core_time(lambda: ba.copy_to(bb, stream=stream), stream)
    row("copy 1 GiB device-to-device (GB/s) vs cuda.core", gbs / t_hal_copy, gbs / t_core_copy,
        t_core_copy / t_hal_copy, 0.95)
    if cupy is not None:
        ca, cb = cupy.empty(n, cupy.float32), cupy.empty(n, cupy.float32)
        t_cupy_copy = cupy_time(lambda: cupy.copyto(cb, ca))
        row("copy 1 GiB device-to-device (GB/s) vs CuPy", gbs / t_hal_copy, gbs / t_cupy_copy,
            t_cupy_copy / t_hal_copy, 0.95)

    cupy_version = cupy.__version__ if cupy is not None else "not installed (CuPy rows left out)"
    print(f"{info.name}, driver {info.driver_version}, CuPy {cupy_version}, {datetime.date.today().isoformat()}")
    print(f"{'measure':<50} {'hal':>10} {'reference':>10} {'ratio':>7} {'target':>7}")
    for name, r in rows.items():
        print(f"{name:<50} {r['hal']:10.2f} {r['reference']:10.2f} {r['ratio']:7.2f} {r['target']:7.2f}")
    print("ratio: hal's speed over the reference's (>= target is met; for the launch, hal's time over the "
          "reference's, <= target is met)")
    if out is not None:
        out.write_text(json.dumps({"device": info.name, "driver": info.driver_version, "cupy": cupy_version,
                                   "date": datetime.date.today().isoformat(), "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    main(parser.parse_args().json)
