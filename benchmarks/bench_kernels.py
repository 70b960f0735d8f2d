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
and cached in a fresh process). Last, the CPU backend's two kinds of compiler side by side: this
machine's gcc against the ``ziglang`` wheel's zig cc (``hal-sdk[compiler]``), cold compile time of
the four kernels above (fresh processes, empty caches, alternating) and each kernel's speed built
by each, interleaved in one process (``--compilers`` runs only that). Never a timed assertion:
the figures are printed.
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
    parser.add_argument("--compilers", action="store_true", help="only gcc against zig cc")
    parser.add_argument("--cold-compile", metavar="HAL_CC", help=argparse.SUPPRESS)  # a child of compilers()
    args = parser.parse_args()
    if args.cold_compile:
        cold_compile_child()
        return
    if args.threads:
        with tempfile.TemporaryDirectory() as workdir:
            kernels(args.n, args.gemm, args.threads, workdir)
        return
    if not args.compilers:
        per_thread_children(__file__, ["--n", str(args.n), "--gemm", str(args.gemm)])
    compilers(args.n, args.gemm)


COMPARED = ("saxpy", "grid_sum", "block_sum", "sgemm16")
"""The kernels whose builds by each compiler are compared."""


def two_compilers() -> tuple[str, str] | None:
    """(gcc, zig cc) as HAL_CC settings, or None (printed why) where one is missing."""
    import importlib.util
    import shutil

    from hal_cpu import _cc

    gcc, zig = shutil.which("gcc"), _cc._zig(importlib.util.find_spec)
    if gcc is None or zig is None:
        print(f"gcc against zig cc: needs both ({'no gcc' if gcc is None else 'no ziglang'}); "
              "pip install 'hal-sdk[compiler]'")
        return None
    return gcc, " ".join(zig)


def cold_compile_child() -> None:
    """In a fresh process with an empty cache (HAL_CC set by the parent): seconds to build COMPARED."""
    dev = hal.device("cpu")
    kernels = [globals()[name] for name in COMPARED]
    assert dev.info and all(k.ir for k in kernels)  # the device's description and the parses: not compile time
    t = time.perf_counter()
    for kernel in kernels:
        dev.compile(kernel)
    print(time.perf_counter() - t)


def compilers(n: int, m: int, rounds: int = 3) -> None:
    """gcc against zig cc: cold compile time (ratio zig / gcc: the target is <= 1.5) and each kernel's
    time built by each (ratio gcc time / zig time: the target is >= 0.9), at the default threads."""
    found = two_compilers()
    if found is None:
        return
    from hal_cpu import _compiler

    from hal._launch import CompiledKernel

    colds: dict[str, list[float]] = {cc: [] for cc in found}
    for _ in range(rounds):
        for cc in found:
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, HAL_CC=cc, HAL_CACHE_DIR=cache, PYTHONPATH=os.pathsep.join(
                    [str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]))
                out = subprocess.run([sys.executable, __file__, "--cold-compile", cc], env=env, capture_output=True,
                                     text=True, check=True).stdout
                colds[cc].append(float(out.split()[-1]))
    dev = hal.device("cpu")
    q = dev.default_queue
    builds: dict[str, dict[str, CompiledKernel]] = {}
    saved = dict(os.environ)
    for cc in found:  # one process, both builds: the toolchain is found again for each
        os.environ["HAL_CC"] = cc
        _compiler._toolchain = None
        builds[cc] = {name: CompiledKernel(dev, globals()[name], globals()[name].ir,
                                           _compiler.compile_kernel(globals()[name].ir)) for name in COMPARED}
        print(f"{'compiler':<34} {cc}: {_compiler.toolchain().identity.version}")
    os.environ.clear()
    os.environ.update(saved)
    _compiler._toolchain = None
    g, z = (colds[cc] for cc in found)
    print(f"{'cold compile of ' + ', '.join(COMPARED):<34} gcc {min(g) * 1e3:7.0f}-{max(g) * 1e3:.0f} ms   "
          f"zig cc {min(z) * 1e3:7.0f}-{max(z) * 1e3:.0f} ms   ratio zig/gcc {min(z) / min(g):5.2f}x (best of {rounds})")

    rng = np.random.default_rng(0)
    x, y = (dev.array(rng.standard_normal(n).astype(np.float32)) for _ in range(2))
    partial = dev.empty((64,), np.float32)
    per_thread = 256
    groups = (n + BLOCK * per_thread - 1) // (BLOCK * per_thread)
    a, b, c = (dev.array(rng.standard_normal((m, m)).astype(np.float32)) for _ in range(3))
    launches = {
        "saxpy": ((n + BLOCK - 1) // BLOCK, BLOCK, (np.float32(2.0), x, y, n)),
        "grid_sum": (64, BLOCK, (x, partial, n)),
        "block_sum": (groups, BLOCK, (x, dev.empty((groups,), np.float32), n, per_thread)),
        "sgemm16": ((m // 16, m // 16), (16, 16), (a, b, c, m)),
    }
    for name in COMPARED:
        grid, block, args = launches[name]

        def run(cc: str, name: str = name, grid: object = grid, block: object = block,
                args: tuple[object, ...] = args) -> Callable[[], None]:
            def go() -> None:
                q.launch(builds[cc][name], grid, block, *args)
                q.synchronize()
            return go
        ratios = []
        times: tuple[float, float] = (0.0, 0.0)
        for _ in range(rounds):
            times = side_by_side(run(found[1]), run(found[0]), 3)
            ratios.append(times[1] / times[0])
        print(f"{'kernel ' + name:<34} gcc {times[1] * 1e3:9.3f} ms   zig cc {times[0] * 1e3:9.3f} ms   "
              f"speed zig/gcc {min(ratios):4.2f}-{max(ratios):4.2f}x ({rounds} rounds)", flush=True)


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
