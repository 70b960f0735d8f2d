"""hal.ops on the CPU device, measured side by side with numpy in one run.

Prints three figures:

* ``gemm``: ``numpy.matmul`` time / ``hal.ops.gemm`` time (float32, 1024 and 2048);
  the target is >= 0.95 (the native calls the BLAS numpy links, zero copy).
* ``portable gemm``: the same ratio for the kernel-language tiled gemm
  (``hal.ops.portable.gemm``): no target, reported for reference.
* ``add overhead``: microseconds that ``hal.ops.add`` adds to a raw launch of the
  same kernel with the same arguments (64 float32); the target is <= 10 us. Also
  the bare validation + dispatch cost, measured against a no-op native.

Run: ``PYTHONPATH=.:plugins python benchmarks/bench_ops.py``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import hal
from hal.ops._portable.elementwise import binary_kernel


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_gemm(dev: hal.Device, n: int, repeat: int, portable: bool) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    ref = np.empty((n, n), np.float32)
    da, db, dc = dev.array(a), dev.array(b), dev.empty((n, n), np.float32)
    gemm = hal.ops.portable.gemm if portable else hal.ops.gemm

    def run_hal() -> None:
        gemm(da, db, dc)
        dev.synchronize()

    t_np, t_hal = [], []
    for _ in range(repeat):  # interleaved, so both see the same machine load
        t_np.append(best_of(lambda: np.matmul(a, b, out=ref), 1))
        t_hal.append(best_of(run_hal, 1))
    np.testing.assert_allclose(dc.numpy(), ref, rtol=1e-3, atol=1e-2)
    return min(t_np), min(t_hal)


def per_call(fn: Callable[[], object], sync: Callable[[], None], calls: int, repeat: int) -> float:
    def loop() -> None:
        for _ in range(calls):
            fn()
        sync()
    return best_of(loop, repeat) / calls


def bench_add(dev: hal.Device, repeat: int) -> tuple[float | None, float]:
    """(hal.ops.add minus a raw launch, validation+dispatch against a no-op native), in seconds."""
    x, y, out = dev.array(np.ones(64, np.float32)), dev.array(np.ones(64, np.float32)), dev.empty((64,))
    q = dev.default_queue
    overhead: float | None = None
    if dev.supports("kernels"):
        try:
            kernel = binary_kernel("add", hal.f32)
            raw = kernel[1, 64, q]
            t_raw = per_call(lambda: raw(x, y, 0.0, 0, out, 64), q.synchronize, 2000, repeat)
            t_ops = per_call(lambda: hal.ops.add(x, y, out), q.synchronize, 2000, repeat)
            overhead = t_ops - t_raw
        except hal.UnsupportedError:
            pass
    noop = hal.ops.register(hal.ops.OpImpl("add", lambda *args, **kwargs: None, priority=1 << 30))
    try:
        t_call = per_call(lambda: hal.ops.add(x, y, out), lambda: None, 20000, repeat)
        t_none = per_call(lambda: None, lambda: None, 20000, repeat)
    finally:
        hal.ops.unregister(noop)
    return overhead, t_call - t_none


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--portable-sizes", type=int, nargs="*", default=[256, 1024])
    args = parser.parse_args()
    dev = hal.device("cpu")
    print(f"device: {dev.info.name} ({dev.spec}), numpy {np.__version__}")
    for n in args.sizes:
        t_np, t_hal = bench_gemm(dev, n, args.repeat, portable=False)
        print(f"gemm {n}x{n} f32: numpy {t_np * 1e3:8.2f} ms, hal.ops.gemm {t_hal * 1e3:8.2f} ms, "
              f"ratio {t_np / t_hal:.3f} (target >= 0.95)")
    for n in args.portable_sizes:
        try:
            t_np, t_hal = bench_gemm(dev, n, max(1, args.repeat // 2), portable=True)
        except hal.UnsupportedError as exc:
            print(f"portable gemm {n}x{n} f32: n/a ({exc})")
            break
        print(f"portable gemm {n}x{n} f32: numpy {t_np * 1e3:8.2f} ms, portable {t_hal * 1e3:8.2f} ms, "
              f"ratio {t_np / t_hal:.4f} (no target)")
    overhead, dispatch = bench_add(dev, args.repeat)
    shown = "n/a (the CPU device runs no kernels yet)" if overhead is None else f"{overhead * 1e6:.2f} us"
    print(f"hal.ops.add(64 f32) over a raw launch: {shown} (target <= 10 us)")
    print(f"hal.ops.add validation + dispatch (no-op native): {dispatch * 1e6:.2f} us")


if __name__ == "__main__":
    main()
