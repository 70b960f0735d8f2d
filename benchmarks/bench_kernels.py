"""Kernels on the CPU device against numpy and bare cffi, measured side by side in one run.

    PYTHONPATH=.:plugins python benchmarks/bench_kernels.py [--n 16777216]

Prints, for each case, both timings (best of several runs) and their ratio:
saxpy (kernel vs ``a * x + y``), a shared-memory/barrier reduction (kernel vs
``numpy.sum``), the launch cost of a tiny cached kernel (vs a bare cffi call),
and compile times (cold, and cached in a fresh process).
"""

from __future__ import annotations

import argparse
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
def tiny(x: hal.Ptr[hal.f32]):
    x[hal.global_id(0)] = 1.0


def best(fn: Callable[[], object], repeat: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def row(name: str, ours: float, theirs: float, other: str, unit: str = "ms", scale: float = 1e3) -> None:
    print(f"{name:<34} hal {ours * scale:9.3f} {unit}   {other:<14} {theirs * scale:9.3f} {unit}   "
          f"speed-up {theirs / ours:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1 << 24)
    n = parser.parse_args().n
    dev = hal.device("cpu")
    q = dev.default_queue
    print(f"device: {dev.info.name} ({dev.info.compute_units} cores); n = {n} float32")

    rng = np.random.default_rng(0)
    xh = rng.standard_normal(n).astype(np.float32)
    yh = rng.standard_normal(n).astype(np.float32)
    x, y = dev.array(xh), dev.array(yh)
    dev.compile(saxpy)
    grid = (n + BLOCK - 1) // BLOCK

    def hal_saxpy() -> None:
        saxpy[grid, BLOCK](np.float32(2.0), x, y, n)
        q.synchronize()
    row("saxpy (kernel language)", best(hal_saxpy), best(lambda: np.float32(2.0) * xh + yh), "numpy a*x+y")

    per_thread = 256  # 256 work-groups of 64 Ki elements: enough for the pool, few shared-memory trees
    groups = (n + BLOCK * per_thread - 1) // (BLOCK * per_thread)
    partial, total = dev.empty((groups,), np.float32), dev.empty((1,), np.float32)

    def hal_sum() -> None:
        block_sum[groups, BLOCK](x, partial, n, per_thread)
        block_sum[1, BLOCK](partial, total, groups, (groups + BLOCK - 1) // BLOCK)
        q.synchronize()
    hal_sum()
    rel = abs(float(total.numpy()[0]) - float(xh.sum(dtype=np.float64))) / float(np.abs(xh).sum())
    row(f"reduction, barriers (rel err {rel:.0e})", best(hal_sum), best(lambda: np.sum(xh)), "numpy.sum")

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
    print(f"{'launch of a tiny cached kernel':<34} hal {per_launch * 1e6:9.3f} us   {'bare cffi call':<14} "
          f"{per_call * 1e6:9.3f} us   ratio {per_launch / per_call:5.1f}x")

    compile_times()


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
