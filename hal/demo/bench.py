"""``hal bench``: standard micro-benchmarks on every device, through one API.

copy (host->device, device->host), saxpy, reduction, gemm and launch overhead.
Each reports the best wall time of a few repeats; on a simulated device also
the simulated time of the same commands (events on the device clock) and the
achieved fraction of the model's peak (bandwidth for memory-bound work,
FLOP/s for gemm). On the CPU device the same work done by numpy gives a ratio.
A device that cannot run a benchmark reports why (no silent fallback: a
benchmark measures the device it names).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import hal

from .kernels import empty, saxpy
from .placement import Impl, Op, Placer, Tensor
from .report import size, table


def _saxpy_kernel(dev: hal.Device, x: hal.Array, y: hal.Array, *, a: float) -> hal.Array:
    out = dev.empty(x.shape, np.float32)
    block = min(256, dev.info.max_block_size)
    saxpy[(x.size + block - 1) // block, block, dev.default_queue](a, x, y, out, x.size)
    return out


def _saxpy_ops(dev: hal.Device, x: hal.Array, y: hal.Array, *, a: float) -> hal.Array:
    out: hal.Array = hal.ops.mul(x, a)
    hal.ops.add(out, y, out=out)
    return out


def _launch_kernel(dev: hal.Device, x: hal.Array) -> hal.Array:
    empty[1, 1, dev.default_queue](0)  # no array argument: name the queue
    return x


OPS: dict[str, Op] = {
    "saxpy": Op("saxpy", (Impl("kernel", _saxpy_kernel, (saxpy,)), Impl("hal.ops mul+add", _saxpy_ops))),
    "reduce": Op("reduce", (Impl("hal.ops.sum", lambda dev, x: hal.ops.sum(x)),)),
    "gemm": Op("gemm", (Impl("hal.ops.gemm", lambda dev, a, b: hal.ops.gemm(a, b)),)),
    "launch": Op("launch", (Impl("empty kernel", _launch_kernel, (empty,)),
                            Impl("hal.ops.relu of 1 element", lambda dev, x: hal.ops.relu(x)))),
}


@dataclass(frozen=True)
class Sizes:
    copy_bytes: int = 16 << 20
    saxpy_n: int = 1 << 20
    reduce_n: int = 1 << 20
    gemm_n: int = 256
    launches: int = 50
    repeats: int = 3


@dataclass(frozen=True)
class BenchPoint:
    """One benchmark on one device. ``flops``/``nbytes`` are the work's ideal counts (for the
    roofline); ``sim_s`` is simulated time (analytic estimate) or None on a real device."""

    device: str
    bench: str
    impl: str
    flops: float
    nbytes: float
    wall_s: float
    sim_s: float | None
    peak_fraction: float | None = None
    numpy_ratio: float | None = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.sim_s if self.sim_s is not None else self.wall_s


def peaks(dev: hal.Device) -> tuple[float | None, float | None]:
    """The model's peak FLOP/s and memory bytes/s, where the device's info declares them."""
    return getattr(dev.info, "peak_flops", None), getattr(dev.info, "peak_bandwidth", None)


def _timed(dev: hal.Device, run: Callable[[], Any], repeats: int) -> tuple[float, float | None]:
    """Best wall time and best device-clock time over ``repeats`` (after one warm-up)."""
    q = dev.default_queue
    run()
    q.synchronize()
    best_wall, best_dev = float("inf"), float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        e0 = q.record()
        run()
        e1 = q.record()
        q.synchronize()
        best_wall = min(best_wall, time.perf_counter() - start)
        best_dev = min(best_dev, e1.elapsed(e0))
    return best_wall, best_dev if dev.info.simulated else None


def _repeat(run: Callable[[], Any], count: int) -> Callable[[], None]:
    def many() -> None:
        for _ in range(count):
            run()
    return many


def _numpy_time(run: Callable[[], Any], repeats: int) -> float:
    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def bench_device(dev: hal.Device, sizes: Sizes) -> list[BenchPoint]:
    rng = np.random.default_rng(0)
    peak_flops, peak_bw = peaks(dev)
    placer = Placer(dev, fallback=dev)  # a benchmark measures this device only: nothing falls back
    points: list[BenchPoint] = []
    nf = sizes.copy_bytes // 4
    host = rng.random(nf, dtype=np.float32)
    back = np.empty_like(host)
    x_copy = dev.empty((nf,), np.float32)
    sx, sy = rng.random(sizes.saxpy_n, dtype=np.float32), rng.random(sizes.saxpy_n, dtype=np.float32)
    rx = rng.random(sizes.reduce_n, dtype=np.float32)
    ga, gb = (rng.random((sizes.gemm_n,) * 2, dtype=np.float32) for _ in range(2))
    n3 = float(sizes.gemm_n) ** 3
    cases: list[tuple[str, float, float, Callable[[], Any] | None, Op | None, list[np.ndarray], dict[str, Any],
                      Callable[[], Any]]] = [
        ("copy h2d", 0, sizes.copy_bytes, lambda: dev.default_queue.copy(x_copy, host, blocking=False), None,
         [], {}, lambda: np.copyto(back, host)),
        ("copy d2h", 0, sizes.copy_bytes, lambda: dev.default_queue.copy(back, x_copy, blocking=False), None,
         [], {}, lambda: np.copyto(back, host)),
        ("saxpy", 2 * sizes.saxpy_n, 12 * sizes.saxpy_n, None, OPS["saxpy"], [sx, sy], {"a": 2.0},
         lambda: 2.0 * sx + sy),
        ("reduce", sizes.reduce_n, 4 * sizes.reduce_n, None, OPS["reduce"], [rx], {}, lambda: rx.sum()),
        ("gemm", 2 * n3, 12 * sizes.gemm_n ** 2, None, OPS["gemm"], [ga, gb], {}, lambda: ga @ gb),
        ("launch", 0, 0, None, OPS["launch"], [np.zeros(1, np.float32)], {}, lambda: np.add(back[:1], 1)),
    ]
    for name, flops, nbytes, direct, op, inputs, params, reference in cases:
        impl = "copy"
        try:
            if op is not None:
                tensors = [Tensor(dev.array(a)) for a in inputs]
                placer(op, *tensors, **params)  # choose (and warm up) the implementation
                impl = placer.placements[op.name].impl
                run = _repeat(functools.partial(placer, op, *tensors, **params), 1)
            else:
                assert direct is not None
                run = direct
            count = sizes.launches if name == "launch" else 1
            wall, sim = _timed(dev, _repeat(run, count), sizes.repeats)
            wall, sim = wall / count, (sim / count if sim is not None else None)
        except hal.UnsupportedError as exc:
            points.append(BenchPoint(dev.spec, name, "-", flops, nbytes, 0.0, None, error=str(exc).split(":")[0]))
            continue
        seconds = sim if sim is not None else wall
        fraction = None
        if dev.info.simulated and seconds > 0:
            if name == "gemm" and peak_flops:
                fraction = flops / seconds / peak_flops
            elif name != "launch" and peak_bw:
                fraction = nbytes / seconds / peak_bw
        ratio = None
        if not dev.info.simulated and dev.info.kind == "cpu":
            ratio = wall / _numpy_time(reference, sizes.repeats * 3)
        points.append(BenchPoint(dev.spec, name, impl, flops, nbytes, wall, sim, fraction, ratio))
    return points


def run_bench(specs: Sequence[str] | None, sizes: Sizes) -> list[BenchPoint]:
    devices = [hal.device(s) for s in specs] if specs else hal.devices()
    return [p for dev in devices for p in bench_device(dev, sizes)]


def _rate(p: BenchPoint) -> str:
    s = p.seconds
    if p.bench == "launch" or s <= 0:
        return "-"
    if p.bench == "gemm":
        return f"{p.flops / s / 1e9:.2f} GFLOP/s"
    return f"{size(p.nbytes / s)}/s"


def summary(points: Sequence[BenchPoint]) -> str:
    rows = []
    for p in points:
        if p.error:
            rows.append([p.device, p.bench, "-", "-", "-", "-", "-", "-", f"unsupported ({p.error})"])
            continue
        rows.append([p.device, p.bench, p.impl, f"{p.wall_s * 1e6:.1f}",
                     f"{p.sim_s * 1e6:.3g}" if p.sim_s is not None else "-", _rate(p),
                     f"{p.peak_fraction:.1%}" if p.peak_fraction is not None else "-",
                     f"{p.numpy_ratio:.2f}x" if p.numpy_ratio is not None else "-", ""])
    return (table(["device", "benchmark", "implementation", "wall us", "sim us*", "rate", "of peak",
                   "vs numpy", "note"], rows)
            + "\n\n* simulated time: analytic estimate of the device's model (see `hal devices`); rate uses"
              " simulated time where there is one; launch: per launch; 'vs numpy': hal wall / numpy wall"
              " on the same work (lower is better)")


def to_json(points: Sequence[BenchPoint], sizes: Sizes) -> dict[str, Any]:
    return {"sizes": asdict(sizes), "points": [asdict(p) for p in points]}
