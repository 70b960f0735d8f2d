"""hal_simgpu's presets against real GPUs: predicted vs measured time, kernel by kernel.

    python benchmarks/validate_simgpu.py [--preset h100|h200] [MEASURED.json]

The measured file comes from benchmarks/gpu/measure_h100.py (CuPy, CUDA events, best of 20)
run on the real part (default: benchmarks/gpu/<preset>_measured.json: an H100 80GB HBM3 SXM,
an H200 SXM); the same kernels, grids and blocks (tests/simgpu/validation_rows.py) run here on
the preset's device (simgpu:1, simgpu:2) and the model's simulated time is printed beside the
real one. Simulated times are analytic estimates (see plugins/hal_simgpu/README.md); the model
claims about +-30% on regular kernels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import hal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.simgpu.validation_rows import REGULAR, ROWS, predict  # noqa: E402

GPU = Path(__file__).parent / "gpu"
DEVICES = {"h100": "simgpu:1", "h200": "simgpu:2"}
"""Measured parts -> the simgpu device whose preset models them."""


def main(preset: str, path: Path) -> None:
    real = json.loads(path.read_text())
    measured = real["results"]
    dev = hal.device(DEVICES[preset])
    predicted = predict(dev)
    print(f"{dev.info.name}, {dev.info.model}\nmeasured on: {real['device']} (CuPy {real['cupy']})\n")
    print(f"{'kernel':<42} {'model us':>10} {'real us':>10} {'model/real':>11}  bound   band")
    regular: list[float] = []
    for key, row in ROWS.items():
        model_s, real_s = predicted[key].device_s, measured[key]
        ratio = model_s / real_s
        band = "+-30%" if row.band == REGULAR else "x2"
        ok = "ok" if row.within(ratio) else "OUT"
        print(f"{row.label:<42} {model_s * 1e6:10.1f} {real_s * 1e6:10.1f} {ratio:11.2f}  "
              f"{predicted[key].counters['bound']:<7} {band} {ok}")
        if row.band == REGULAR:
            regular.append(ratio)
    print(f"\nregular, bandwidth-sized kernels: model/real from {min(regular):.2f} to {max(regular):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(DEVICES), default="h100")
    parser.add_argument("measured", nargs="?", type=Path, help="default: benchmarks/gpu/<preset>_measured.json")
    args = parser.parse_args()
    main(args.preset, args.measured or GPU / f"{args.preset}_measured.json")
