"""Graphs against eager launches: host cost per node of a chain of tiny cached kernels, side by side.

    python benchmarks/bench_graphs.py [N] [--devices=cpu,simgpu,opencl]

For each device, a chain of N one-work-group kernels (plus one copy and one fill) is enqueued
eagerly and, captured once, replayed with ``g.launch(q)``. Two figures per side: the enqueue cost
per node (the host returns before the work is done; what a decode step pays N times) and the cost
per node including the queue's synchronize, and a whole replay against one tiny command and its
synchronize (for ``remote``: one empty round trip to the worker). Targets (issue 23): cpu replay
<= 0.3 us per node and >= 8x the eager enqueue; remote replay <= 1.5x one empty round trip. Best of 7 rounds of 20 repetitions, the queue drained between
repetitions (untimed for the enqueue figure); asserts nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

import hal


@hal.kernel
def _bump(x: hal.Ptr[hal.f32], a: hal.f32, n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] * a + 1.0


def best(fn: Callable[[], None], after: Callable[[], None], rounds: int = 7, number: int = 20) -> float:
    """Fastest round's mean seconds per ``fn()``, with ``after()`` (untimed) after each call, so that
    the queue never fills up and an enqueue never waits for the device."""
    times = []
    for _ in range(rounds):
        total = 0.0
        for _ in range(number):
            t0 = time.perf_counter()
            fn()
            total += time.perf_counter() - t0
            after()
        times.append(total / number)
    return min(times)


def measure(spec: str, n: int) -> None:
    dev = hal.device(spec)
    q = dev.queue()
    x, y = dev.zeros((64,), np.float32), dev.zeros((64,), np.float32)
    dev.compile(_bump)

    def eager() -> None:
        for _ in range(n):
            _bump[1, 64, q](x, 0.5, 64)
        q.copy(y, x)
        q.fill(x, 0.0)

    with q.capture() as g:
        eager()
    nodes = len(g.nodes)

    def replay() -> None:
        g.launch(q)

    for fn in (eager, replay):  # warm up (compiles, pools), then check they agree
        fn()
    q.synchronize()

    def synced(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            fn()
            q.synchronize()
        return run

    enq_e, enq_r = best(eager, q.synchronize), best(replay, q.synchronize)
    all_e, all_r = best(synced(eager), lambda: None), best(synced(replay), lambda: None)
    trip = best(synced(lambda: q.fill(y[:1], 0.0)), lambda: None)
    us = 1e6 / nodes
    print(f"{spec:<10} {nodes:5d} nodes  enqueue/node: eager {enq_e * us:8.3f} us  replay {enq_r * us:8.3f} us  "
          f"{enq_e / enq_r:6.1f}x   with synchronize: eager {all_e * us:8.3f} us  replay {all_r * us:8.3f} us  "
          f"{all_e / all_r:6.1f}x   whole replay = {all_r / trip:5.2f} x one tiny command + synchronize "
          f"({trip * 1e6:.1f} us)")


def main(argv: list[str]) -> None:
    n = int(next((a for a in argv if a.isdigit()), 100))
    specs = next((a.split("=", 1)[1] for a in argv if a.startswith("--devices=")), "cpu,simgpu,opencl").split(",")
    print(f"chain of {n} tiny kernels + a copy + a fill, per node (best of 7 rounds x 20)")
    for spec in specs:
        try:
            measure(spec, n)
        except hal.HalError as exc:
            print(f"{spec:<10} skipped: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
