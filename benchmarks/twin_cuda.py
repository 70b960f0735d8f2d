"""The simulated GPU and its real twin: the same kernels, grids and blocks on ``cuda:0`` and on the
simgpu preset that models that part, model time over real time for each.

    python benchmarks/twin_cuda.py [--json FILE]

The rows are tests/simgpu/validation_rows.py's (saxpy, strided reads, a shared-memory reduction,
bank conflicts, atomics), written once in the kernel language, so the real side runs hal's own
CUDA code, not a hand-written twin. Real times are CUDA events around each launch (best of 3, the
first run discarded: it loads the modules); the model claims +-30% on the regular rows, a factor
of 2 on the others (the band column). Prints; never asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import hal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.simgpu.validation_rows import REGULAR, ROWS, predict  # noqa: E402

TWINS = {"H100": "simgpu:1", "H200": "simgpu:2", "A100": "simgpu:0"}
"""A real part's name contains the key -> the simgpu device whose preset models it."""


def main(out: Path | None) -> None:
    real = hal.device("cuda:0")
    twin = next((spec for part, spec in TWINS.items() if part in real.info.name), "simgpu:2")
    model = predict(hal.device(twin))
    runs = [predict(real) for _ in range(4)][1:]
    print(f"real: {real.info.name} (driver {real.info.driver_version}); model: {hal.device(twin).info.model}\n")
    print(f"{'kernel':<42} {'model us':>10} {'real us':>10} {'model/real':>11}  band")
    results = {}
    for key, row in ROWS.items():
        real_s = min(run[key].device_s for run in runs)
        ratio = model[key].device_s / real_s
        band = "+-30%" if row.band == REGULAR else "x2"
        print(f"{row.label:<42} {model[key].device_s * 1e6:10.1f} {real_s * 1e6:10.1f} {ratio:11.2f}  {band} "
              f"{'ok' if row.within(ratio) else 'OUT'}")
        results[key] = {"model_s": model[key].device_s, "real_s": real_s, "ratio": ratio}
    if out is not None:
        out.write_text(json.dumps({"device": real.info.name, "driver": real.info.driver_version, "twin": twin,
                                   "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    main(parser.parse_args().json)
