"""Speed of the simgpu simulator against numba's CUDA simulator, side by side in one run.

    python benchmarks/bench_simgpu.py            (needs `pip install numba` for the comparison)

Both simulators run the same two kernels: saxpy, and a 128-thread shared-memory
tree reduction with barriers. numba's simulator runs one Python thread per CUDA
thread, so it gets a small grid; hal gets a big one; the figure compared is
simulated threads per second (wall clock, simulator included). Also prints the
peak memory of a 16M-thread saxpy launch (ru_maxrss of a fresh subprocess), and
the simulated device time of that launch, labelled as the model's estimate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

import hal
from hal.kernel.samples import reduce128, saxpy

ROOT = Path(__file__).resolve().parents[1]
SAXPY_THREADS = 1 << 24
REDUCE_BLOCKS = 8192
NUMBA_SAXPY_THREADS = 2048
NUMBA_REDUCE_BLOCKS = 4


NUMBA_SCRIPT = f"""
import json, time
import numpy as np
from numba import cuda, float32

@cuda.jit
def saxpy(a, x, y, n):
    i = cuda.grid(1)
    if i < n:
        y[i] = a * x[i] + y[i]

@cuda.jit
def reduce128(x, out):
    buf = cuda.shared.array(128, float32)
    t = cuda.threadIdx.x
    buf[t] = x[cuda.grid(1)]
    cuda.syncthreads()
    s = 64
    while s > 0:
        if t < s:
            buf[t] = buf[t] + buf[t + s]
        cuda.syncthreads()
        s //= 2
    if t == 0:
        out[cuda.blockIdx.x] = buf[0]

n = {NUMBA_SAXPY_THREADS}
x = np.arange(n, dtype=np.float32); y = np.ones(n, np.float32)
saxpy[1, 32](np.float32(2), x[:32], y[:32], 32)
t = time.perf_counter(); saxpy[n // 256, 256](np.float32(2), x, y, n); saxpy_s = time.perf_counter() - t
b = {NUMBA_REDUCE_BLOCKS}
xr = np.ones(b * 128, np.float32); out = np.zeros(b, np.float32)
t = time.perf_counter(); reduce128[b, 128](xr, out); reduce_s = time.perf_counter() - t
assert out[0] == 128.0
print(json.dumps({{"saxpy": n / saxpy_s, "reduce": b * 128 / reduce_s}}))
"""

PEAK_SCRIPT = """
import resource, sys
sys.path.insert(0, {bench!r})
import numpy as np
import hal
from bench_simgpu import saxpy, register, SAXPY_THREADS as n
register()
dev = hal.device("simgpu", preset="h100")
x = dev.array(np.ones(n, np.float32)); y = dev.array(np.ones(n, np.float32))
saxpy[n // 256, 256](2.0, x, y, n)
dev.synchronize()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def numba_rates() -> dict[str, float] | None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run([sys.executable, "-c", NUMBA_SCRIPT], env=env, capture_output=True, text=True)
    if proc.returncode:
        print(f"numba's CUDA simulator did not run (pip install numba): {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def hal_rates(dev: hal.Device) -> tuple[dict[str, float], float]:
    n = SAXPY_THREADS
    x = dev.array(np.ones(n, np.float32))
    y = dev.array(np.ones(n, np.float32))
    saxpy[1, 32](2.0, x, y, 32)  # compile outside the timing
    dev.synchronize()
    with hal.profile() as prof:
        t = time.perf_counter()
        saxpy[n // 256, 256](2.0, x, y, n)
        dev.synchronize()
        saxpy_s = time.perf_counter() - t
    device_s = prof.records[-1].device_s
    x.free()
    y.free()
    xr = dev.array(np.ones(REDUCE_BLOCKS * 128, np.float32))
    out = dev.empty((REDUCE_BLOCKS,), np.float32)
    reduce128[1, 128](xr, out)
    dev.synchronize()
    t = time.perf_counter()
    reduce128[REDUCE_BLOCKS, 128](xr, out)
    dev.synchronize()
    reduce_s = time.perf_counter() - t
    assert out.numpy()[0] == 128.0
    return {"saxpy": n / saxpy_s, "reduce": REDUCE_BLOCKS * 128 / reduce_s}, device_s


def peak_bytes() -> int:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins"),
                                                       os.environ.get("PYTHONPATH", "")]))
    script = PEAK_SCRIPT.format(bench=str(Path(__file__).resolve().parent))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return int(proc.stdout.strip().splitlines()[-1])


def register() -> None:
    """Register the plugin in-process unless an installed entry point provides it."""
    if not any(ep.name == "simgpu" for ep in entry_points(group="hal")):
        import hal_simgpu

        hal.register_plugin(hal_simgpu, "simgpu")


def main() -> None:
    register()
    dev = hal.device("simgpu", preset="h100")
    theirs = numba_rates()
    ours, device_s = hal_rates(dev)
    print(f"{'kernel':<10} {'hal simgpu threads/s':>22} {'numba cudasim threads/s':>25} {'ratio':>10}")
    for name in ("saxpy", "reduce"):
        other = f"{theirs[name]:>25,.0f}" if theirs else f"{'n/a':>25}"
        ratio = f"{ours[name] / theirs[name]:>9,.0f}x" if theirs else f"{'n/a':>10}"
        print(f"{name:<10} {ours[name]:>22,.0f} {other} {ratio}")
    gbps = 12 * SAXPY_THREADS / device_s / 1e9
    print(f"saxpy {SAXPY_THREADS} threads on {dev.info.name}: {device_s * 1e6:.1f} us simulated, "
          f"{gbps:.0f} GB/s ({gbps / (0.9 * 3350):.2f} of 0.9 x 3350 GB/s peak) "
          f"[{dev.info.model}]")
    print(f"peak memory of a {SAXPY_THREADS}-thread saxpy process: {peak_bytes() / 2**30:.2f} GiB (limit 4 GiB)")


if __name__ == "__main__":
    main()
