"""Simulated int8 gemm throughput of the accel NPU against its peak, per preset, side by side.

Runs a real ``hal.ops.gemm`` (exact int32 result) on each preset and reads the
profile record: ``achieved/peak`` includes DMA stalls, ``array/peak`` is the
stall-free SCALE-Sim figure. Simulated time is an analytic estimate
(hal_accel model, see plugins/hal_accel/README.md), so every run prints the same numbers.

    PYTHONPATH=.:plugins python benchmarks/bench_accel.py [M N K]
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import hal_accel
import numpy as np
from hal_accel._presets import MODEL_VERSION, PRESETS

import hal


def main(argv: list[str]) -> None:
    if not any(ep.name == "accel" for ep in entry_points(group="hal")):
        hal.register_plugin(hal_accel, "accel")
    m, n, k = (int(v) for v in argv) if argv else (8192, 4096, 1536)
    rng = np.random.default_rng(0)
    a_host = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b_host = rng.integers(-128, 128, (k, n), dtype=np.int8)
    print(f"int8 gemm {m}x{k} @ {k}x{n} -> int32 (analytic estimate, hal_accel model v{MODEL_VERSION})")
    print(f"{'preset':<14} {'peak TOPS':>10} {'achieved TOPS':>14} {'achieved/peak':>14} {'array/peak':>11} "
          f"{'stall %':>8}")
    for preset in PRESETS.values():
        dev = hal.device("accel", preset=preset.name)
        a, b = dev.array(a_host), dev.array(b_host)
        with hal.profile() as prof:
            out = hal.ops.gemm(a, b)
        (rec,) = [r for r in prof.records if r.name == "gemm"]
        c = rec.counters
        achieved = 2 * c["macs"] / rec.device_s
        array = c["macs"] / (preset.rows * preset.cols * c["compute_cycles"])
        print(f"{preset.name:<14} {preset.peak_ops / 1e12:>10.2f} {achieved / 1e12:>14.2f} "
              f"{achieved / preset.peak_ops:>14.3f} {array:>11.3f} {100 * c['stall_cycles'] / c['cycles']:>7.1f}%")
        for arr in (a, b, out):
            arr.free()


if __name__ == "__main__":
    main(sys.argv[1:])
