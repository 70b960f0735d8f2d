"""hal's CUDA backend against CuPy and a bare cuda.core launch, side by side in one run on one GPU.

* saxpy 64M f32: hal's kernel language vs the same kernel as a CuPy ``RawKernel`` (target >= 0.95x);
* launch of a tiny cached kernel, host time per launch: hal vs a bare ``cuda.core.launch``
  (target <= 1.3x);
* device-to-device copy of 1 GiB: ``q.copy`` vs CuPy's (target >= 0.95x).

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

import cupy
import numpy as np
from cuda.core import Device, LaunchConfig, Program, ProgramOptions, launch

import hal
from hal.kernel.samples import saxpy

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

    # saxpy 64M f32, 12 bytes per element
    x, y = dev.array(np.ones(N, np.float32)), dev.array(np.ones(N, np.float32))
    t_hal = hal_time(lambda: saxpy[N // 256, 256, q](2.0, x, y, N), q)
    cx, cy = cupy.ones(N, cupy.float32), cupy.ones(N, cupy.float32)
    module = cupy.RawModule(code=HAND, options=("--fmad=false",))
    k_saxpy = module.get_function("saxpy")
    t_cupy = cupy_time(lambda: k_saxpy((N // 256,), (256,), (np.float32(2.0), cx, cy, np.int32(N))))
    rows["saxpy 64M f32 (GB/s)"] = {"hal": 12 * N / t_hal / 1e9, "reference": 12 * N / t_cupy / 1e9,
                                    "ratio": t_cupy / t_hal, "target": 0.95}

    # a tiny cached kernel: host time per launch
    p = dev.zeros((1,), np.int32)
    t_hal_launch = host_per_launch(lambda: tiny[1, 32, q](p), q.synchronize)
    device = Device(0)
    device.set_current()
    stream = device.create_stream()
    kernel = Program(HAND, "c++", ProgramOptions(arch=f"sm_{device.arch}")).compile("cubin").get_kernel("tiny")
    buf = device.allocate(4, stream=stream)
    config = LaunchConfig(grid=1, block=32)
    t_core = host_per_launch(lambda: launch(stream, config, kernel, buf), stream.sync)
    rows["tiny launch (us per launch, host)"] = {"hal": t_hal_launch * 1e6, "reference": t_core * 1e6,
                                                 "ratio": t_hal_launch / t_core, "target": 1.3}

    # device-to-device copy, 1 GiB (read + write counted)
    n = COPY_BYTES // 4
    a, b = dev.empty((n,), np.float32), dev.empty((n,), np.float32)
    t_hal_copy = hal_time(lambda: q.copy(b, a), q)
    ca, cb = cupy.empty(n, cupy.float32), cupy.empty(n, cupy.float32)
    t_cupy_copy = cupy_time(lambda: cupy.copyto(cb, ca))
    rows["copy 1 GiB device-to-device (GB/s)"] = {"hal": 2 * COPY_BYTES / t_hal_copy / 1e9,
                                                  "reference": 2 * COPY_BYTES / t_cupy_copy / 1e9,
                                                  "ratio": t_cupy_copy / t_hal_copy, "target": 0.95}

    print(f"{info.name}, driver {info.driver_version}, CuPy {cupy.__version__}, "
          f"{datetime.date.today().isoformat()}")
    print(f"{'measure':<38} {'hal':>10} {'reference':>10} {'ratio':>7} {'target':>7}")
    for name, r in rows.items():
        print(f"{name:<38} {r['hal']:10.2f} {r['reference']:10.2f} {r['ratio']:7.2f} {r['target']:7.2f}")
    print("ratio: hal's speed over the reference's (>= target is met; for the launch, hal's time over the "
          "reference's, <= target is met)")
    if out is not None:
        out.write_text(json.dumps({"device": info.name, "driver": info.driver_version, "cupy": cupy.__version__,
                                   "date": datetime.date.today().isoformat(), "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    main(parser.parse_args().json)
