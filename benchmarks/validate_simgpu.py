"""hal_simgpu's H100 preset against a real H100: predicted vs measured time, kernel by kernel.

    python benchmarks/validate_simgpu.py [benchmarks/gpu/h100_measured.json]

The measured file comes from benchmarks/gpu/measure_h100.py (CuPy, CUDA events, best of 20)
run on an NVIDIA H100 80GB HBM3 SXM; the same kernels, grids and blocks run here on
simgpu:1 and the model's simulated time is printed beside the real one. Simulated times
are analytic estimates (see plugins/hal_simgpu/README.md); the model claims about +-30% on
regular kernels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import hal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "simgpu"))
import kernels as k  # noqa: E402  (the tests' kernels: the CUDA twins are in measure_h100.py)


def simulated(dev: hal.Device, kernel: Any, grid: int, block: int, *args: Any) -> float:
    with hal.profile() as prof:
        kernel[grid, block, dev.default_queue](*args)
    return prof.records[-1].device_s


def main(path: str) -> None:
    real = json.loads(Path(path).read_text())
    measured = real["results"]
    dev = hal.device("simgpu:1")
    rows: list[tuple[str, float, float]] = []
    for n in (1 << 24, 1 << 26):
        x, y = dev.empty((n,), np.float32), dev.empty((n,), np.float32)
        rows.append((f"saxpy n={n}", simulated(dev, k.saxpy, n // 256, 256, 2.0, x, y, n), measured[f"saxpy_{n}"]))
        x.free(), y.free()
    for m in (1 << 20, 1 << 24):
        y = dev.empty((m,), np.float32)
        for s in (1, 2, 4, 8, 16, 32):
            x = dev.empty((m * s,), np.float32)
            rows.append((f"strided m={m} s={s}", simulated(dev, k.strided, m // 256, 256, x, y, s, m),
                         measured[f"strided_{m}_{s}"]))
            x.free()
        y.free()
    n = 1 << 24
    x, part = dev.empty((n,), np.float32), dev.empty((n // 128,), np.float32)
    rows.append(("reduce128 n=16M", simulated(dev, k.reduce128, n // 128, 128, x, part), measured[f"reduce128_{n}"]))
    out = dev.empty((4096 * 256,), np.float32)
    for s in (1, 2, 32, 33):
        rows.append((f"bank_stride s={s}", simulated(dev, k.bank_stride, 4096, 256, out, s),
                     measured[f"bank_stride_4096x256_{s}"]))
    bins = dev.zeros((1024,), np.int32)
    for name, data in (("same", np.zeros(n, np.int32)), ("spread", np.arange(n, dtype=np.int32) % 1024)):
        rows.append((f"histogram {name} bin", simulated(dev, k.histogram, n // 256, 256, dev.array(data), bins, n),
                     measured[f"histogram_{n}_{name}"]))

    print(f"{dev.info.name}, {dev.info.model}\nmeasured on: {real['device']} (CuPy {real['cupy']})\n")
    print(f"{'kernel':<26} {'model us':>10} {'real us':>10} {'model/real':>11}")
    for name, model_s, real_s in rows:
        print(f"{name:<26} {model_s * 1e6:10.1f} {real_s * 1e6:10.1f} {model_s / real_s:11.2f}")
    regular = [m / r for name, m, r in rows if name.startswith(("saxpy", "strided m=16777216", "reduce"))]
    print(f"\nregular, bandwidth-sized kernels: model/real from {min(regular):.2f} to {max(regular):.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).parent / "gpu" / "h100_measured.json"))
