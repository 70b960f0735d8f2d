"""CPU runtime figures: large copy/fill bandwidth against numpy, and what one enqueue costs.

Run: PYTHONPATH=.:plugins python benchmarks/bench_runtime.py
Prints ratios; asserts nothing (the machine is shared, timings wander).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cffi
import numpy as np
from hal_cpu._device import CpuDevice
from hal_cpu._runtime import ffi, lib

ROOT = Path(__file__).resolve().parents[1]
NOOP_C = '#include "hal_kernel_abi.h"\nvoid k_noop(const hal_launch *l, int64_t b, int64_t e) { (void)l; (void)b; (void)e; }\n'


def best_of(fn: Callable[[], Any], number: int, repeat: int = 15, after: Callable[[], Any] | None = None) -> float:
    """Time of one call of ``fn`` in the fastest of ``repeat`` runs of ``number`` calls (``after``
    untimed): the minimum filters out the other tenants of a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
        if after is not None:
            after()
    return best


def bandwidth() -> None:
    n = 64 << 20
    src = np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8)
    dst = np.zeros_like(src)
    ps, pd = ffi.from_buffer(src), ffi.from_buffer(dst)
    t_hal = best_of(lambda: lib.hal_copy(pd, ps, n), 1, 20)
    t_np = best_of(lambda: np.copyto(dst, src), 1, 20)
    print(f"copy 64 MiB   hal_copy {n / t_hal / 1e9:6.1f} GB/s   numpy.copyto {n / t_np / 1e9:6.1f} GB/s"
          f"   ratio {t_np / t_hal:4.2f}x  ({lib.hal_cpu_count()} threads)")
    t_hal = best_of(lambda: lib.hal_fill(pd, n, b"\x07\x00\x00\x00", 4), 1, 20)
    view = dst.view(np.uint32)
    t_np = best_of(lambda: view.fill(7), 1, 20)
    print(f"fill 64 MiB   hal_fill {n / t_hal / 1e9:6.1f} GB/s   ndarray.fill {n / t_np / 1e9:6.1f} GB/s"
          f"   ratio {t_np / t_hal:4.2f}x")


def noop_kernel() -> Any:
    """A kernel that does nothing, built with gcc (None where there is no compiler)."""
    tmp = Path(tempfile.mkdtemp())
    (tmp / "noop.c").write_text(NOOP_C)
    try:
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-I", str(ROOT / "csrc"), "noop.c", "-o", "noop.so"],
                       cwd=tmp, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    kffi = cffi.FFI()
    kffi.cdef("typedef struct hal_launch hal_launch; void k_noop(const hal_launch *, int64_t, int64_t);")
    return kffi.dlopen(str(tmp / "noop.so")).k_noop


class NoopExe:
    """The executable protocol of CpuQueue.launch, with packing done once: it belongs to the
    compiler, so the figure below is the queue's own cost."""

    def __init__(self, entry: Any, packed: bytes) -> None:
        self.entry = entry
        self.packed = packed

    def pack(self, args: Sequence[Any]) -> bytes:
        return self.packed


def enqueue_costs() -> None:
    dev = CpuDevice()
    q = dev.create_queue()
    h = q.handle
    a, b = dev.allocate(64), dev.allocate(64)
    host = np.zeros(64, np.uint8)
    sync = q.synchronize
    number, repeat = 1000, 60  # short batches: fewer than a queue's 1024 slots, so none waits

    rows: list[tuple[str, float]] = [
        ("bare cffi call (hal_queue_submitted)", best_of(lambda: lib.hal_queue_submitted(h), number, repeat, after=sync)),
        ("cffi hal_queue_marker", best_of(lambda: lib.hal_queue_marker(h), number, repeat, after=sync)),
        ("cffi hal_queue_copy_at (64 B)",
         best_of(lambda: lib.hal_queue_copy_at(h, a.handle, 0, b.handle, 0, 64), number, repeat, after=sync)),
        ("CpuQueue.copy (64 B)", best_of(lambda: q.copy(a, 0, b, 0, 64, None), number, repeat, after=sync)),
        ("CpuQueue.fill (64 B)", best_of(lambda: q.fill(a, 0, 64, b"\0\0\0\0", None), number, repeat, after=sync)),
        ("CpuQueue.write (64 B)", best_of(lambda: q.write(a, 0, host, None), number, repeat, after=sync)),
        ("CpuQueue.read (64 B)", best_of(lambda: q.read(host, a, 0, None), number, repeat, after=sync)),
        ("CpuQueue.record", best_of(q.record, number, repeat, after=sync)),
    ]
    entry = noop_kernel()
    if entry is not None:
        exe, args = NoopExe(entry, bytes(24)), [a, 7]
        rows.append(("CpuQueue.launch (noop, 3 slots, pack aside)",
                     best_of(lambda: q.launch(exe, (1, 1, 1), (64, 1, 1), args, None), number, repeat, after=sync)))
    rows.append(("numpy.copyto (64 B), for scale", best_of(lambda: np.copyto(host, host), number, repeat)))
    bare = rows[0][1]
    print(f"\n{'enqueue (one command, Python thread)':42s} {'us':>7s} {'x bare call':>12s}")
    for name, t in rows:
        print(f"{name:42s} {t * 1e6:7.3f} {t / bare:11.1f}x")
    print(f"C time of an enqueue (marker - bare call): {(rows[1][1] - bare) * 1e6:.3f} us")
    q.synchronize()
    t_sync = best_of(q.synchronize, number, repeat)
    print(f"CpuQueue.synchronize on an idle queue: {t_sync * 1e6:.3f} us")
    q.close()


if __name__ == "__main__":
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    bandwidth()
    enqueue_costs()
