"""The kernels measured on real GPUs (benchmarks/gpu/measure_h100.py), as simgpu launches.

One definition for test_validation.py and benchmarks/validate_simgpu.py: each row is a key of
the measured JSON files, a label, the error band the model claims for it, and the launch that
reproduces it (same kernel, grid and block as the CUDA C twin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import hal

from . import kernels as k

N = 1 << 24
M = 1 << 20

REGULAR = 0.30
"""Bandwidth-sized regular kernels (>= 65536 blocks, footprint over the L2): within +-30%."""
WIDE = 2.0
"""Small launches and atomics: within a factor of 2. Small launches (4096 blocks, a few us) are
dominated by the event-timed launch overhead, which varies between runs of the same script, and
measure_h100.py repeats them with their data still in L2 (the model assumes a cold L2). Atomics
on a few hot addresses contend in a few L2 slices, which the model (a device-wide rate plus a
per-address serial chain) does not see: the 1024-bin histogram runs at ~0.5x the modelled rate."""

Simulation = Callable[[hal.Device], hal.ProfileRecord]


@dataclass(frozen=True)
class Row:
    label: str
    band: float
    """:data:`REGULAR` (a relative band) or :data:`WIDE` (a factor)."""
    simulate: Simulation

    def within(self, ratio: float) -> bool:
        if self.band == REGULAR:
            return 1 - REGULAR <= ratio <= 1 + REGULAR
        return 1 / WIDE <= ratio <= WIDE


def _time(dev: hal.Device, kernel: Any, grid: int, block: int, *args: Any) -> hal.ProfileRecord:
    with hal.profile() as prof:
        kernel[grid, block, dev.default_queue](*args)
    return prof.records[-1]


def _f32(dev: hal.Device, n: int) -> hal.Array:
    return dev.empty((n,), np.float32)


def _saxpy(n: int) -> Simulation:
    return lambda d: _time(d, k.saxpy, n // 256, 256, 2.0, _f32(d, n), _f32(d, n), n)


def _strided(m: int, s: int) -> Simulation:
    return lambda d: _time(d, k.strided, m // 256, 256, _f32(d, m * s), _f32(d, m), s, m)


def _reduce128(d: hal.Device) -> hal.ProfileRecord:
    return _time(d, k.reduce128, N // 128, 128, _f32(d, N), _f32(d, N // 128))


def _bank_stride(s: int) -> Simulation:
    return lambda d: _time(d, k.bank_stride, 4096, 256, _f32(d, 4096 * 256), s)


def _histogram(spread: int) -> Simulation:
    """16M atomic increments of bin ``i % spread``."""
    return lambda d: _time(d, k.histogram, N // 256, 256, d.array(np.arange(N, dtype=np.int32) % spread),
                           d.zeros((1024,), np.int32), N)


ROWS: dict[str, Row] = {
    **{f"saxpy_{n}": Row(f"saxpy n={n >> 20}M ({n // 256} x 256)", REGULAR, _saxpy(n)) for n in (N, 4 * N)},
    **{f"strided_{m}_{s}": Row(f"strided m={m >> 20}M s={s} ({m // 256} x 256)", band, _strided(m, s))
       for m, band in ((N, REGULAR), (M, WIDE)) for s in (1, 2, 4, 8, 16, 32)},
    f"reduce128_{N}": Row("reduce128 n=16M (131072 x 128)", REGULAR, _reduce128),
    **{f"bank_stride_4096x256_{s}": Row(f"bank_stride s={s} (4096 x 256)", WIDE, _bank_stride(s))
       for s in (1, 2, 32, 33)},
    f"histogram_{N}_same": Row("histogram, 16M atomics on one bin", WIDE, _histogram(1)),
    f"histogram_{N}_spread": Row("histogram, 16M atomics over 1024 bins", WIDE, _histogram(1024)),
}
"""Measured key -> row."""


def predict(dev: hal.Device) -> dict[str, hal.ProfileRecord]:
    """Every row simulated once on ``dev`` (buffers freed as each launch completes)."""
    return {key: row.simulate(dev) for key, row in ROWS.items()}
