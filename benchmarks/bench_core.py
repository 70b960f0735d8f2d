"""Issue-level figures of the core API on the CPU device, measured side by side in one run.

    python benchmarks/bench_core.py

Targets (2-core machine): 64 MiB float32 `dev.array(h)` >= 1.3x `h.copy()`, `x.numpy()` >= 1.1x
`h.copy()`, device-to-device `q.copy` >= 1.5x `numpy.copyto`; enqueue cost of a small copy/fill
against a bare cffi call; `import hal; hal.devices()` in a fresh process at most 30 ms more than `import numpy`.
Prints ratios (numpy time / hal time: above 1 means hal is faster); asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import hal


def best(fn: Callable[[], Any], repeat: int = 9, number: int = 1) -> float:
    """Fastest of ``repeat`` timings of ``number`` calls, per call (min filters other tenants)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def row(label: str, numpy_s: float, hal_s: float, target: float | None) -> None:
    ratio = numpy_s / hal_s
    verdict = "" if target is None else ("  ok" if ratio >= target else f"  BELOW target {target}x")
    print(f"{label:<44} numpy {numpy_s * 1e3:8.2f} ms   hal {hal_s * 1e3:8.2f} ms   {ratio:5.2f}x{verdict}")


def bandwidth(dev: hal.Device) -> None:
    n = 64 * 1024 * 1024 // 4
    h = np.random.default_rng(0).random(n, dtype=np.float32)
    q = dev.default_queue
    x = dev.array(h)
    y = dev.empty((n,), np.float32)
    dst = np.empty_like(h)

    def to_device() -> None:
        dev.array(h).free()

    def to_host() -> None:
        x.numpy()

    def d2d() -> None:
        q.copy(y, x)
        q.synchronize()

    print("64 MiB float32 on", dev.spec, f"({dev.info.name})")
    row("dev.array(h)  vs h.copy()", best(h.copy), best(to_device), 1.3)
    row("x.numpy()     vs h.copy()", best(h.copy), best(to_host), 1.1)
    row("q.copy(d2d)   vs numpy.copyto", best(lambda: np.copyto(dst, h)), best(d2d), 1.5)


def enqueue(dev: hal.Device) -> None:
    from hal_cpu._runtime import lib  # the bare cffi call to compare with

    q = dev.queue()
    a, b = dev.empty((16,), np.float32), dev.empty((16,), np.float32)
    bare = best(lambda: lib.hal_cpu_count(), number=20000)
    n = 2000
    copy = best(lambda: q.copy(a, b), number=n, repeat=5)
    q.synchronize()
    fill = best(lambda: q.fill(a, 1.0), number=n, repeat=5)
    q.synchronize()
    print(f"\nenqueue cost: bare cffi call {bare * 1e6:.2f} us; q.copy {copy * 1e6:.2f} us "
          f"({copy / bare:.1f}x); q.fill {fill * 1e6:.2f} us ({fill / bare:.1f}x)")


def import_time(repeat: int = 9) -> None:
    """Fresh processes, alternating: ``import numpy`` alone, then ``import numpy; import hal; hal.devices()``
    (every extra installed, as ``pip install -e ".[test,demo]"`` leaves them). hal's own cost is the
    difference of the two medians; each process times its own CPU time (interpreter start-up excluded;
    CPU time, so that other processes on a busy machine do not count)."""
    clock = "import time; t = time.process_time(); {}; print(time.process_time() - t)"
    codes = {"numpy": clock.format("import numpy"), "hal": clock.format("import numpy; import hal; hal.devices()")}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    runs: dict[str, list[float]] = {"numpy": [], "hal": []}
    for i in range(repeat + 1):  # the first round writes the bytecode cache, as any first import does
        for name, code in codes.items():
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
            if i:
                runs[name].append(float(out.stdout))
    med = {name: statistics.median(v) for name, v in runs.items()}
    extra = sorted(h - n for h, n in zip(runs["hal"], runs["numpy"]))
    print(f"\nimport numpy alone: median {med['numpy'] * 1e3:.0f} ms (range {min(runs['numpy']) * 1e3:.0f}-"
          f"{max(runs['numpy']) * 1e3:.0f}); import numpy; import hal; hal.devices(): median {med['hal'] * 1e3:.0f} ms "
          f"(range {min(runs['hal']) * 1e3:.0f}-{max(runs['hal']) * 1e3:.0f})")
    print(f"hal's own start-up: {(med['hal'] - med['numpy']) * 1e3:.0f} ms over numpy (pairs: "
          f"{extra[0] * 1e3:.0f}-{extra[-1] * 1e3:.0f} ms; ratio {med['hal'] / med['numpy']:.2f}x; target <= 30 ms)")


if __name__ == "__main__":
    cpu = hal.device("cpu")
    bandwidth(cpu)
    enqueue(cpu)
    import_time()
