"""Measure, on a real NVIDIA GPU, the kernels that hal_simgpu's model is validated against.

Runs with CuPy only (no hal needed on the GPU machine) and writes one JSON file:

    python3 benchmarks/gpu/measure_h100.py OUT.json

Each kernel is the CUDA C twin of a kernel in tests/simgpu/kernels.py, launched with
the same grid and block; times are the best of 20 CUDA-event timings after warm-up.
benchmarks/validate_simgpu.py compares these figures with the model's predictions.
"""

from __future__ import annotations

import json
import sys

import cupy as cp

SOURCE = r"""
extern "C" __global__ void saxpy(float a, const float *x, float *y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}
extern "C" __global__ void strided(const float *x, float *y, int s, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[(long long)i * s];
}
extern "C" __global__ void reduce128(const float *x, float *out) {
    __shared__ float buf[128];
    int t = threadIdx.x;
    buf[t] = x[blockIdx.x * blockDim.x + t];
    __syncthreads();
    for (int s = 64; s > 0; s /= 2) {
        if (t < s) buf[t] = buf[t] + buf[t + s];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = buf[0];
}
extern "C" __global__ void bank_stride(float *out, int s) {
    __shared__ float buf[1024];
    int t = threadIdx.x;
    buf[t * s % 1024] = (float)t;
    __syncthreads();
    out[blockIdx.x * blockDim.x + t] = buf[t * s % 1024];
}
extern "C" __global__ void histogram(const int *x, int *bins, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) atomicAdd(&bins[x[i]], 1);
}
extern "C" __global__ void empty() {}
"""


def timed(kernel, grid, block, args, repeat: int = 20) -> float:
    """Best seconds of ``repeat`` launches (CUDA events), after two warm-ups."""
    start, end = cp.cuda.Event(), cp.cuda.Event()
    for _ in range(2):
        kernel(grid, block, args)
    best = float("inf")
    for _ in range(repeat):
        start.record()
        kernel(grid, block, args)
        end.record()
        end.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(start, end) / 1e3)
    return best


def main(path: str) -> None:
    mod = cp.RawModule(code=SOURCE)
    k = {name: mod.get_function(name) for name in
         ("saxpy", "strided", "reduce128", "bank_stride", "histogram", "empty")}
    props = cp.cuda.runtime.getDeviceProperties(0)
    out: dict = {"device": props["name"].decode(), "sms": props["multiProcessorCount"],
                 "cupy": cp.__version__, "runtime": cp.cuda.runtime.runtimeGetVersion(), "results": {}}
    res = out["results"]
    for n in (1 << 24, 1 << 26):
        x = cp.ones(n, cp.float32)
        y = cp.ones(n, cp.float32)
        res[f"saxpy_{n}"] = timed(k["saxpy"], (n // 256,), (256,), (cp.float32(2.0), x, y, cp.int32(n)))
    for m in (1 << 20, 1 << 24):
        y = cp.empty(m, cp.float32)
        for s in (1, 2, 4, 8, 16, 32):
            x = cp.ones(m * s, cp.float32)
            res[f"strided_{m}_{s}"] = timed(k["strided"], (m // 256,), (256,), (x, y, cp.int32(s), cp.int32(m)))
            del x
    n = 1 << 24
    x = cp.ones(n, cp.float32)
    part = cp.empty(n // 128, cp.float32)
    res[f"reduce128_{n}"] = timed(k["reduce128"], (n // 128,), (128,), (x, part))
    o = cp.empty(4096 * 256, cp.float32)
    for s in (1, 2, 32, 33):
        res[f"bank_stride_4096x256_{s}"] = timed(k["bank_stride"], (4096,), (256,), (o, cp.int32(s)))
    bins = cp.zeros(1024, cp.int32)
    for name, data in (("same", cp.zeros(n, cp.int32)), ("spread", cp.arange(n, dtype=cp.int32) % 1024)):
        res[f"histogram_{n}_{name}"] = timed(k["histogram"], (n // 256,), (256,), (data, bins, cp.int32(n)))
    res["empty_1x32"] = timed(k["empty"], (1,), (32,), ())
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
