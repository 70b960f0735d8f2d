"""Probe, on a real NVIDIA GPU, the parameters hal_simgpu's H100 preset measures (CuPy only):

    python3 benchmarks/gpu/probe_h100.py OUT.json

* ``empty_GxB``: an empty kernel over G blocks of B threads. ``empty_1x32`` is the launch
  latency as CUDA events see it; the big grids give the front end's block dispatch rate
  ((time - launch latency) / G), whatever the block size.
* ``strided_1M_S_{warm,cold}``: measure_h100.py's small strided rows with the data left in
  L2 across repetitions (as measure_h100.py runs them) and with L2 flushed before each (as the
  model assumes: every launch starts from DRAM).
* ``hist_same_lanesL``: 16M threads, L lanes per warp doing atomicAdd on one address: whether
  same-address atomics serialise per lane or per warp request.
* ``hist_spread_B``: 16M atomics spread over B addresses.
* ``notree_B`` / ``copy_B``: reduce128 without its tree, and a plain copy, with B-thread blocks.

Times are the best of 20 CUDA-event timings (5 for the slow same-address rows) after two warm-ups.
"""

from __future__ import annotations

import json
import sys

import cupy as cp

SOURCE = r"""
extern "C" __global__ void empty() {}
extern "C" __global__ void strided(const float *x, float *y, int s, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[(long long)i * s];
}
extern "C" __global__ void hist(const int *x, int *bins, int n, int lanes) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && (threadIdx.x & 31) < lanes) atomicAdd(&bins[x[i]], 1);
}
extern "C" __global__ void notree(const float *x, float *out) {
    extern __shared__ float buf[];
    int t = threadIdx.x;
    buf[t] = x[blockIdx.x * blockDim.x + t];
    __syncthreads();
    if (t == 0) out[blockIdx.x] = buf[0];
}
extern "C" __global__ void copy(const float *x, float *y) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    y[i] = x[i];
}
"""


def main(path: str) -> None:
    mod = cp.RawModule(code=SOURCE)
    k = {name: mod.get_function(name) for name in ("empty", "strided", "hist", "notree", "copy")}
    flush = cp.empty(256 << 20, cp.uint8)  # 5x the L2

    def timed(kernel, grid, block, args, repeat=20, cold=False, shared=0) -> float:  # noqa: ANN001
        start, end = cp.cuda.Event(), cp.cuda.Event()
        for _ in range(2):
            kernel(grid, block, args, shared_mem=shared)
        best = float("inf")
        for _ in range(repeat):
            if cold:
                flush.fill(1)
            start.record()
            kernel(grid, block, args, shared_mem=shared)
            end.record()
            end.synchronize()
            best = min(best, cp.cuda.get_elapsed_time(start, end) / 1e3)
        return best

    props = cp.cuda.runtime.getDeviceProperties(0)
    out: dict = {"device": props["name"].decode(), "sms": props["multiProcessorCount"],
                 "cupy": cp.__version__, "runtime": cp.cuda.runtime.runtimeGetVersion(), "results": {}}
    res = out["results"]
    for g, b in ((1, 32), (132, 128), (65536, 256), (131072, 128), (262144, 64), (524288, 32), (1 << 20, 128)):
        res[f"empty_{g}x{b}"] = timed(k["empty"], (g,), (b,), ())
    m = 1 << 20
    y = cp.empty(m, cp.float32)
    for s in (1, 2, 4, 8, 16, 32):
        x = cp.ones(m * s, cp.float32)
        args = (x, y, cp.int32(s), cp.int32(m))
        res[f"strided_1M_{s}_warm"] = timed(k["strided"], (m // 256,), (256,), args)
        res[f"strided_1M_{s}_cold"] = timed(k["strided"], (m // 256,), (256,), args, cold=True)
        del x
    n = 1 << 24
    x, y = cp.ones(n, cp.float32), cp.empty(n, cp.float32)
    for b in (128, 256):
        res[f"notree_{b}"] = timed(k["notree"], (n // b,), (b,), (x, y), shared=4 * b)
        res[f"copy_{b}"] = timed(k["copy"], (n // b,), (b,), (x, y))
    bins = cp.zeros(1 << 20, cp.int32)
    zeros = cp.zeros(n, cp.int32)
    for lanes in (1, 8, 32):
        res[f"hist_same_lanes{lanes}"] = timed(k["hist"], (n // 256,), (256,),
                                               (zeros, bins, cp.int32(n), cp.int32(lanes)), repeat=5)
    for spread in (32, 1024, 32768, 1 << 20):
        data = cp.arange(n, dtype=cp.int32) % spread
        res[f"hist_spread_{spread}"] = timed(k["hist"], (n // 256,), (256,), (data, bins, cp.int32(n), cp.int32(32)))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
