"""Kernels on the CPU device against an OpenMP C reference and numpy, measured side by side in one run.

    PYTHONPATH=.:plugins python benchmarks/bench_kernels.py [--n 16777216] [--gemm 1024]

Compiles its own reference (``gcc -O3 -march=native -fopenmp``) and prints, for 1 and then 2
threads (``HAL_CPU_THREADS`` / ``omp_set_num_threads``; one child process each), best-of times
and ratios (reference time / hal time: above 1 means hal is faster):

* saxpy, one element per work-item, against an OpenMP ``parallel for simd`` loop;
* a GPU-style sum (64 groups x 256 work-items, each loops with a grid stride, then a
  shared-memory tree) against an OpenMP ``simd reduction`` loop;
* the coalesced block reduction below against ``numpy.sum``;
* a 16x16 shared-memory tiled sgemm against numpy's matmul (BLAS);
* the portable ``hal.ops`` kernels (gemm, sum, softmax) against numpy;

then the launch cost of a tiny cached kernel (vs a bare cffi call), and compile times (cold,
and cached in a fresh process). Never a timed assertion: the figures are printed.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import hal
from hal.kernel.samples import saxpy

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 256


def _wire_compiler() -> None:
    """Until hal_cpu's device calls its compiler itself (then this does nothing)."""
    from hal_cpu import _compiler
    from hal_cpu._device import CpuDevice

    from hal.backend import DeviceImpl

    if CpuDevice.compile is DeviceImpl.compile:
        CpuDevice.compile = lambda self, kernel: _compiler.compile_kernel(kernel)  # type: ignore[method-assign]


_wire_compiler()


@hal.kernel
def block_sum(x: hal.Ptr[hal.f32], partial: hal.Ptr[hal.f32], n: hal.i32, per_thread: hal.i32):
    """Each work-group sums per_thread * 256 consecutive elements (coalesced: work-item t reads
    elements t, t + 256, ...), then a shared-memory tree with barriers."""
    sh = hal.shared(hal.f32, 256)
    lid = hal.local_id(0)
    base = hal.group_id(0) * 256 * per_thread
    acc = hal.f32(0)
    for k in range(per_thread):
        j = base + k * 256 + lid
        if j < n:
            acc += x[j]
    sh[lid] = acc
    hal.barrier()
    s = 128
    while s > 0:
        if lid < s:
            sh[lid] += sh[lid + s]
        hal.barrier()
        s //= 2
    if lid == 0:
        partial[hal.group_id(0)] = sh[0]


@hal.kernel
def grid_sum(x: hal.Ptr[hal.f32], partial: hal.Ptr[hal.f32], n: hal.i32):
    """GPU-style: each work-item sums a grid-strided share, then a shared-memory tree per group."""
    sh = hal.shared(hal.f32, 256)
    lid = hal.local_id(0)
    acc = hal.f32(0)
    for i in range(hal.global_id(0), n, hal.global_size(0)):
        acc += x[i]
    sh[lid] = acc
    hal.barrier()
    s = 128
    while s > 0:
        if lid < s:
            sh[lid] += sh[lid + s]
        hal.barrier()
        s //= 2
    if lid == 0:
        partial[hal.group_id(0)] = sh[0]


@hal.kernel
def sgemm16(a: hal.Ptr[hal.f32], b: hal.Ptr[hal.f32], c: hal.Ptr[hal.f32], n: hal.i32):
    """16x16 shared-memory tiled C = A @ B (n a multiple of 16), the textbook GPU kernel."""
    ta = hal.shared(hal.f32, 256)
    tb = hal.shared(hal.f32, 256)
    tx = hal.local_id(0)
    ty = hal.local_id(1)
    row = hal.group_id(1) * 16 + ty
    col = hal.group_id(0) * 16 + tx
    acc = hal.f32(0)
    for t in range(0, n, 16):
        ta[ty * 16 + tx] = a[row * n + t + tx]
        tb[ty * 16 + tx] = b[(t + ty) * n + col]
        hal.barrier()
        for k in range(16):
            acc += ta[ty * 16 + k] * tb[k * 16 + tx]
        hal.barrier()
    c[row * n + col] = acc


@hal.kernel
def tiny(x: hal.Ptr[hal.f32]):
    x[hal.global_id(0)] = 1.0


_OPENMP_C = r"""
#include <omp.h>
#include <stdint.h>
void ref_threads(int t) { omp_set_num_threads(t); }
void ref_saxpy(float a, const float *x, float *y, int64_t n) {
    #pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) y[i] = a * x[i] + y[i];
}
float ref_sum(const float *x, int64_t n) {
    float s = 0;
    #pragma omp parallel for simd reduction(+:s) schedule(static)
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}
"""


def openmp_reference(workdir: str) -> ctypes.CDLL:
    """The reference loops, built as the issue states: gcc -O3 -march=native -fopenmp."""
    src, so = Path(workdir, "ref.c"), Path(workdir, "ref.so")
    src.write_text(_OPENMP_C)
    subprocess.run(["gcc", "-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", str(src), "-o", str(so)],
                   check=True)
    lib = ctypes.CDLL(str(so))
    fp = ctypes.POINTER(ctypes.c_float)
    lib.ref_saxpy.argtypes = [ctypes.c_float, fp, fp, ctypes.c_int64]
    lib.ref_sum.argtypes = [fp, ctypes.c_int64]
    lib.ref_sum.restype = ctypes.c_float
    return lib


def best(fn: Callable[[], object], repeat: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def side_by_side(ours: Callable[[], object], theirs: Callable[[], object], rounds: int = 5) -> tuple[float, float]:
    """Best of interleaved rounds, so both see the same machine load."""
    a, b = [], []
    for _ in range(rounds):
        a.append(best(ours, 2))
        b.append(best(theirs, 2))
    return min(a), min(b)


def row(name: str, ours: float, theirs: float, other: str, unit: str = "ms", scale: float = 1e3) -> None:
    print(f"{name:<34} hal {ours * scale:9.3f} {unit}   {other:<16} {theirs * scale:9.3f} {unit}   "
          f"ratio {theirs / ours:5.2f}x", flush=True)


def kernels(n: int, m: int, threads: int, workdir: str) -> None:
    """Every case at ``threads`` threads (this process's pool was started with that many)."""
    dev = hal.device("cpu")
    q = dev.default_queue
    ref = openmp_reference(workdir)
    ref.ref_threads(threads)
    fp = ctypes.POINTER(ctypes.c_float)
    print(f"--- {threads} thread(s): {dev.info.name}; n = {n} float32", flush=True)

    rng = np.random.default_rng(0)
    xh = rng.standard_normal(n).astype(np.float32)
    yh = rng.standard_normal(n).astype(np.float32)
    yr = yh.copy()
    x, y = dev.array(xh), dev.array(yh)
    grid = (n + BLOCK - 1) // BLOCK

    def hal_saxpy() -> None:
        saxpy[grid, BLOCK](np.float32(2.0), x, y, n)
        q.synchronize()
    row("saxpy, 1 element per work-item", *side_by_side(
        hal_saxpy, lambda: ref.ref_saxpy(2.0, xh.ctypes.data_as(fp), yr.ctypes.data_as(fp), n)),
        "OpenMP for simd")

    partial, total = dev.empty((64,), np.float32), dev.empty((1,), np.float32)

    def hal_grid_sum() -> None:
        grid_sum[64, BLOCK](x, partial, n)
        grid_sum[1, BLOCK](partial, total, 64)
        q.synchronize()
    hal_grid_sum()
    check = float(xh.sum(dtype=np.float64))
    rel = abs(float(total.numpy()[0]) - check) / float(np.abs(xh).sum())
    row(f"sum, grid-stride (rel err {rel:.0e})", *side_by_side(
        hal_grid_sum, lambda: ref.ref_sum(xh.ctypes.data_as(fp), n)), "OpenMP reduction")

    per_thread = 256  # 256 work-groups of 64 Ki elements: enough for the pool, few shared-memory trees
    groups = (n + BLOCK * per_thread - 1) // (BLOCK * per_thread)
    bpartial = dev.empty((groups,), np.float32)

    def hal_block_sum() -> None:
        block_sum[groups, BLOCK](x, bpartial, n, per_thread)
        block_sum[1, BLOCK](bpartial, total, groups, (groups + BLOCK - 1) // BLOCK)
        q.synchronize()
    row("sum, coalesced blocks", *side_by_side(hal_block_sum, lambda: np.sum(xh)), "numpy.sum")

    ah, bh = (rng.standard_normal((m, m)).astype(np.float32) for _ in range(2))
    ch = np.empty((m, m), np.float32)
    a, b, c = dev.array(ah), dev.array(bh), dev.empty((m, m), np.float32)

    def hal_sgemm() -> None:
        sgemm16[(m // 16, m // 16), (16, 16)](a, b, c, m)
        q.synchronize()
    ours, theirs = side_by_side(hal_sgemm, lambda: np.matmul(ah, bh, out=ch), 3)
    np.testing.assert_allclose(c.numpy(), ch, rtol=1e-3, atol=1e-2)
    flop = 2.0 * m ** 3
    print(f"{'sgemm 16x16 tiles, ' + str(m):<34} hal {flop / ours / 1e9:9.1f} GF/s   {'numpy matmul':<16} "
          f"{flop / theirs / 1e9:9.1f} GF/s   ratio {theirs / ours:5.2f}x", flush=True)

    def op(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            fn()
            dev.synchronize()
        return run
    ops = hal.ops.portable
    row(f"hal.ops portable gemm {m}", *side_by_side(op(lambda: ops.gemm(a, b, c)),
                                                     lambda: np.matmul(ah, bh, out=ch), 3), "numpy matmul")
    row("hal.ops portable sum", *side_by_side(op(lambda: ops.sum(x)), lambda: np.sum(xh)), "numpy.sum")
    rows = dev.array(xh.reshape(-1, 4096))
    smax = dev.empty(rows.shape, np.float32)

    def np_softmax() -> None:
        h = xh.reshape(-1, 4096)
        e = np.exp(h - h.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
    row("hal.ops portable softmax rows 4096", *side_by_side(op(lambda: ops.softmax(rows, out=smax)), np_softmax),
        "numpy")

    if threads > 1:
        launch_cost(dev)
        compile_times()


def launch_cost(dev: hal.Device) -> None:
    q = dev.default_queue
    small = dev.zeros((1,), np.float32)
    dev.compile(tiny)
    launches = 20000

    def many() -> None:
        for _ in range(launches):
            tiny[1, 1](small)
        q.synchronize()
    from hal_cpu._runtime import lib

    def bare() -> None:
        now = lib.hal_now
        for _ in range(launches):
            now()
    per_launch, per_call = best(many, 3) / launches, best(bare, 3) / launches
    print(f"{'launch of a tiny cached kernel':<34} hal {per_launch * 1e6:9.3f} us   {'bare cffi call':<16} "
          f"{per_call * 1e6:9.3f} us   ratio {per_launch / per_call:5.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1 << 24)
    parser.add_argument("--gemm", type=int, default=1024, help="sgemm size (a multiple of 16)")
    parser.add_argument("--threads", type=int, default=0, help="run at this many threads only (a child)")
    args = parser.parse_args()
    if args.threads:
        with tempfile.TemporaryDirectory() as workdir:
            kernels(args.n, args.gemm, args.threads, workdir)
        return
    per_thread_children(__file__, ["--n", str(args.n), "--gemm", str(args.gemm)])


def per_thread_children(script: str, argv: list[str]) -> None:
    """Run ``script argv --threads T`` for 1, then 2 threads, each in a child process whose hal and
    OpenMP use T threads (the pools size themselves once, at start-up)."""
    for threads in (1, 2):
        env = dict(os.environ, HAL_CPU_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        subprocess.run([sys.executable, script, *argv, "--threads", str(threads)], env=env, check=True)


_CHILD = textwrap.dedent("""
    import sys, time
    t0 = time.perf_counter()
    import hal
    from benchmarks.bench_kernels import saxpy
    dev = hal.device("cpu")
    dev.info  # the device's description (pydantic) is built on first use: not compile time
    t1 = time.perf_counter()
    saxpy.ir
    t2 = time.perf_counter()
    dev.compile(saxpy)
    t3 = time.perf_counter()
    print(t3 - t1, t2 - t1)
""")


def compile_times() -> None:
    """Cold: an empty cache, in this process. Cached: a fresh process finds the object on disk."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, HAL_CACHE_DIR=cache, PYTHONPATH=os.pathsep.join(
            [str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what users get: imports from cached bytecode
        run = [sys.executable, "-c", _CHILD]
        cold = float(subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.split()[0])
        cached, parse = min(tuple(map(float, subprocess.run(run, env=env, capture_output=True, text=True,
                                                            check=True).stdout.split())) for _ in range(3))
    print(f"{'compile saxpy (dev.compile)':<34} cold {cold * 1e3:8.1f} ms   cached, fresh process "
          f"{cached * 1e3:6.2f} ms = frontend parse {parse * 1e3:.2f} + key, verify, load {(cached - parse) * 1e3:.2f}")


if __name__ == "__main__":
    main()
