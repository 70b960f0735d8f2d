"""The GPU-style grid-stride sum (issue 15's headline case) alone, against OpenMP C and numpy in one run.

    python benchmarks/bench_grid_sum.py [--n 16777216] [--rounds 5]

For 1 and then 2 threads (one child process each, ``HAL_CPU_THREADS`` / ``omp_set_num_threads``):
best-of times of ``grid_sum`` from :mod:`benchmarks.bench_kernels` (64 groups x 256 work-items,
each loops with a grid stride, then a shared-memory tree; a second one-group launch adds the 64
partial sums), of the OpenMP ``simd reduction`` loop the benchmark compiles itself
(``gcc -O3 -march=native -fopenmp``) and of ``numpy.sum``, interleaved so that all three see the
same machine load; then the ratios (reference time / hal time: above 1 means hal is faster).
Only uses what ``main`` already had, so pointing ``PYTHONPATH`` at another checkout measures that
checkout's emitter against the same references. Never a timed assertion.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import tempfile
from pathlib import Path

import numpy as np

import hal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_kernels import BLOCK, best, grid_sum, openmp_reference, per_thread_children  # noqa: E402


def measure(n: int, rounds: int, threads: int, workdir: str) -> None:
    dev = hal.device("cpu")
    q = dev.default_queue
    ref = openmp_reference(workdir)
    ref.ref_threads(threads)
    fp = ctypes.POINTER(ctypes.c_float)
    xh = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    x = dev.array(xh)
    partial, total = dev.empty((64,), np.float32), dev.empty((1,), np.float32)

    def ours() -> None:
        grid_sum[64, BLOCK](x, partial, n)
        grid_sum[1, BLOCK](partial, total, 64)
        q.synchronize()
    ours()
    rel = abs(float(total.numpy()[0]) - float(xh.sum(dtype=np.float64))) / float(np.abs(xh).sum())
    times: dict[str, list[float]] = {"hal": [], "openmp": [], "numpy": []}
    for _ in range(rounds):
        times["hal"].append(best(ours, 2))
        times["openmp"].append(best(lambda: ref.ref_sum(xh.ctypes.data_as(fp), n), 2))
        times["numpy"].append(best(lambda: np.sum(xh), 2))
    h, o, s = (min(times[k]) for k in ("hal", "openmp", "numpy"))
    print(f"{threads} thread(s), n = {n}: grid-stride sum hal {h * 1e3:7.3f} ms (rel err {rel:.0e})   "
          f"OpenMP simd reduction {o * 1e3:7.3f} ms   numpy.sum {s * 1e3:7.3f} ms   "
          f"ratio vs OpenMP {o / h:5.2f}x   vs numpy {s / h:5.2f}x", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1 << 24)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="run at this many threads only (a child)")
    args = parser.parse_args()
    if args.threads:
        with tempfile.TemporaryDirectory() as workdir:
            measure(args.n, args.rounds, args.threads, workdir)
        return
    per_thread_children(__file__, ["--n", str(args.n), "--rounds", str(args.rounds)])


if __name__ == "__main__":
    main()
