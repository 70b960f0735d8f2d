"""Remote devices and collectives on Ray, measured side by side in one run.

Run: python benchmarks/bench_collectives.py   (needs hal-sdk[distributed]; starts a local Ray cluster)
Prints figures and ratios; asserts nothing (the machine is shared, timings wander).

* bring-up: a local Ray cluster started by hal and two remote devices ready to use;
* all-reduce of 64 MiB over remote:0 and remote:1 (``hal.collective``, a ring worker to worker)
  against a hand-written all-reduce between two Ray actors through the object store: each
  returns its array, each adds the other's (target: hal at least 0.8x its speed);
* the same 64 MiB all-reduce compressed to int8 (with error feedback): the bytes each device
  moved against f32's (target <= 0.27x) and the largest error against the stated bound (n + 1
  half-scales: ``hal.collective.compression``), with both wall times;
* 1,000 tiny launches on a remote device: the cost per command against a local launch plus
  one round trip per batch (target: within 3x).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

os.environ.setdefault("HAL_REMOTE", "cpu,cpu")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import hal  # noqa: E402 - after the environment it reads
from hal.demo.kernels import empty  # noqa: E402

MIB64 = 64 << 20
REPEAT = 7


def timed(fn: Callable[[], Any], repeat: int = REPEAT) -> list[float]:
    """Wall seconds of each of ``repeat`` calls, after one untimed warm-up call."""
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def interleaved(a: Callable[[], Any], b: Callable[[], Any], repeat: int = REPEAT) -> tuple[list[float], list[float]]:
    """Wall seconds of ``repeat`` calls of each, alternating (after one untimed call of each), so
    that whatever else the machine does weighs on both alike."""
    a(), b()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, out in zip((a, b), times):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return times


def bring_up() -> tuple[hal.Device, hal.Device]:
    t0 = time.perf_counter()
    d0 = hal.device("remote:0")
    d0.info  # noqa: B018 - opens it: Ray starts, the worker starts and opens its device
    t1 = time.perf_counter()
    d1 = hal.device("remote:1")
    d1.info  # noqa: B018
    t2 = time.perf_counter()
    print(f"bring-up       two remote devices in {t2 - t0:5.2f} s: Ray cluster + first worker {t1 - t0:5.2f} s, "
          f"second worker {t2 - t1:5.2f} s")
    return d0, d1


def all_reduce(d0: hal.Device, d1: hal.Device) -> None:
    import ray

    @ray.remote(num_cpus=0)
    class Holder:
        """The hand-written reference: an array per actor, exchanged through the object store."""

        def __init__(self, n: int) -> None:
            self.x = np.ones(n, np.float32)

        def get(self) -> np.ndarray:
            return self.x

        def add(self, other: np.ndarray) -> None:
            np.add(self.x, other, out=self.x)

    n = MIB64 // 4
    a, b = Holder.remote(n), Holder.remote(n)

    def by_hand() -> None:
        xa, xb = a.get.remote(), b.get.remote()
        ray.get([a.add.remote(xb), b.add.remote(xa)])

    x0, x1 = d0.array(np.ones(n, np.float32)), d1.array(np.ones(n, np.float32))
    ref, ours = interleaved(by_hand, lambda: hal.collective.all_reduce([x0, x1]))
    ok = np.array_equal(x0.numpy()[:4], np.full(4, 2.0 ** (REPEAT + 1), np.float32))  # doubled each time
    print(f"all-reduce     64 MiB over 2 remote devices: hal median {statistics.median(ours) * 1e3:6.1f} ms "
          f"(min {min(ours) * 1e3:5.1f}), by hand through the object store median "
          f"{statistics.median(ref) * 1e3:6.1f} ms (min {min(ref) * 1e3:5.1f}); hal at "
          f"{statistics.median(ref) / statistics.median(ours):4.2f}x its speed by medians, "
          f"{min(ref) / min(ours):4.2f}x by the best runs (target >= 0.8x){'' if ok else ' WRONG'}")


def compressed(d0: hal.Device, d1: hal.Device) -> None:
    n = MIB64 // 4
    rng = np.random.default_rng(0)
    data = [rng.standard_normal(n).astype(np.float32) for _ in range(2)]
    x0, x1 = d0.array(data[0]), d1.array(data[1])
    r0, r1 = d0.zeros((n,), np.float32), d1.zeros((n,), np.float32)
    with hal.profile() as prof:
        t0 = time.perf_counter()
        hal.collective.all_reduce([x0, x1], compress="int8", residuals=[r0, r1])
        t1 = time.perf_counter()
    int8_bytes = max(r.nbytes for r in prof.records if r.kind == "collective")
    error = float(np.abs(x0.numpy() - (data[0].astype(np.float64) + data[1])).max())
    peaks = sum(float(np.abs(x).max()) for x in data)
    bound = peaks / 254 * (2 + 1 / 127)  # two ranks' encodings and the sum's
    y0, y1 = d0.array(data[0]), d1.array(data[1])
    with hal.profile() as prof:
        t2 = time.perf_counter()
        hal.collective.all_reduce([y0, y1])
        t3 = time.perf_counter()
    f32_bytes = max(r.nbytes for r in prof.records if r.kind == "collective")
    print(f"int8           64 MiB all-reduce over 2 remote devices: {int8_bytes / 2**20:5.1f} MiB moved per device "
          f"against f32's {f32_bytes / 2**20:5.1f} MiB: {int8_bytes / f32_bytes:5.3f}x (target <= 0.27x); largest "
          f"error {error:.4f}, bound {bound:.4f} ({'within' if error <= bound else 'OUTSIDE'}); wall "
          f"{(t1 - t0) * 1e3:6.1f} ms against f32's {(t3 - t2) * 1e3:6.1f} ms (one run each, on loopback)")


def launches(remote: hal.Device) -> None:
    local = hal.device("cpu")

    def burst(dev: hal.Device, n: int) -> Callable[[], None]:
        q = dev.default_queue

        def run() -> None:
            for _ in range(n):
                empty[1, 1, q](1)
            q.synchronize()
        return run

    local_s = min(timed(burst(local, 1000))) / 1000
    round_trip = statistics.median(timed(burst(remote, 1), 50))
    sender = remote.impl.sender
    before = sender._seq
    remote_s = min(timed(burst(remote, 1000)))
    batches = (sender._seq - before) / (REPEAT + 1)
    budget = 1000 * local_s + batches * round_trip
    print(f"launches       1,000 tiny launches on {remote.spec}: {remote_s / 1000 * 1e6:5.1f} us per command "
          f"in {batches:.0f} batches; local launch {local_s * 1e6:4.1f} us, round trip {round_trip * 1e3:4.2f} ms: "
          f"{remote_s / budget:4.2f}x a local launch plus a round trip per batch (target <= 3x)")


def main() -> None:
    d0, d1 = bring_up()
    all_reduce(d0, d1)
    compressed(d0, d1)
    launches(d0)


if __name__ == "__main__":
    main()
