"""The analytic timing model: SCALE-Sim's first-order fold formulas plus double-buffered DMA.

Pure functions of shapes and a :class:`~._presets.Preset`; nothing here touches
data. The README's "Timing model" section states the same formulas with their
sources and expected error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ._presets import Dataflow, Preset


def gemm_folds(m: int, n: int, k: int, rows: int, cols: int, dataflow: Dataflow) -> tuple[int, int]:
    """(folds, cycles per fold) of an ``m x k`` by ``k x n`` gemm on a ``rows x cols`` array.

    SCALE-Sim (Samajdar et al., ISPASS 2020): the operand held in the array is
    cut into array-sized folds; each fold fills the array (R or 2R cycles),
    streams the other operand through it (C + T - 2 cycles for T streamed rows).
    """
    if dataflow == "ws":  # weights (k x n) stay; the m rows of the input stream
        return math.ceil(k / rows) * math.ceil(n / cols), 2 * rows + cols + m - 2
    if dataflow == "is":  # inputs (k x m) stay; the n columns of the weights stream
        return math.ceil(k / rows) * math.ceil(m / cols), 2 * rows + cols + n - 2
    if dataflow == "os":  # outputs (m x n) stay; the k-long reduction streams
        return math.ceil(m / rows) * math.ceil(n / cols), rows + cols + k - 2
    raise ValueError(f"unknown dataflow {dataflow!r}; use 'ws', 'os' or 'is'")


def gemm_cycles(m: int, n: int, k: int, rows: int, cols: int, dataflow: Dataflow) -> int:
    """Stall-free cycles of the gemm: ``folds * cycles_per_fold - 1`` (SCALE-Sim's first-order figure)."""
    if m == 0 or n == 0 or k == 0:
        return 0
    folds, per_fold = gemm_folds(m, n, k, rows, cols, dataflow)
    return folds * per_fold - 1


def dma_stall(folds: int, per_fold: float, dma_cycles: int) -> int:
    """Cycles the array waits for DMA when ``dma_cycles`` of traffic spread evenly over ``folds``.

    Double buffering: fold 1's operands load before the array starts (a
    prologue of one fold's share); afterwards fold i computes while fold i+1's
    operands move, so each later fold takes max(compute, dma).
    """
    if dma_cycles == 0:
        return 0
    if folds == 0:
        return dma_cycles
    share = dma_cycles / folds
    return math.ceil(share + (folds - 1) * max(0.0, share - per_fold))


@dataclass(frozen=True)
class Estimate:
    """The modelled cost of one command; ``counters()`` is what ``hal.profile()`` records."""

    compute_cycles: int
    """Stall-free cycles of the array (or vector unit)."""
    stall_cycles: int
    """Cycles spent waiting for DRAM."""
    dma_cycles: int
    """Cycles the DRAM traffic takes at the preset's bandwidth (overlapped with compute)."""
    folds: int
    macs: int
    dram_bytes: int
    work: int
    """Units of useful work (MACs, or vector elements) for the utilization figure."""
    capacity: int
    """Units of work the engine can do per cycle (R*C MACs, or vector lanes)."""
    extra: tuple[tuple[str, Any], ...] = ()

    @property
    def cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles

    @property
    def utilization(self) -> float:
        """Useful work over what the engine could have done in ``cycles`` (stalls included)."""
        return self.work / (self.capacity * self.cycles) if self.cycles else 0.0

    def seconds(self, part: Preset) -> float:
        return self.cycles / part.clock_hz

    def counters(self, part: Preset) -> dict[str, Any]:
        return {"cycles": self.cycles, "compute_cycles": self.compute_cycles, "dma_cycles": self.dma_cycles,
                "stall_cycles": self.stall_cycles, "utilization": self.utilization, "folds": self.folds,
                "macs": self.macs, "dram_bytes": self.dram_bytes, "dataflow": part.dataflow,
                "model": part.describe(), **dict(self.extra)}


def gemm_estimate(m: int, n: int, k: int, part: Preset, *, in_itemsize: int, out_itemsize: int,
                  reads_out: bool, extra: tuple[tuple[str, Any], ...] = ()) -> Estimate:
    """A gemm on the array, its operands streamed from DRAM through the unified buffer.

    DRAM traffic: the stationary-side operand and the output move once (the output
    twice when ``reads_out``, i.e. beta != 0); the operand that each sweep of
    the loop nest re-streams (the input for ws, the weights for os and is) moves
    once if it fits in half the unified buffer (the other half double-buffers
    tiles), else once per sweep.
    """
    rows, cols, flow = part.rows, part.cols, part.dataflow
    compute = gemm_cycles(m, n, k, rows, cols, flow)
    folds, per_fold = gemm_folds(m, n, k, rows, cols, flow) if compute else (0, 0)
    a_bytes, b_bytes = m * k * in_itemsize, k * n * in_itemsize
    sweeps = {"ws": math.ceil(n / cols), "os": math.ceil(m / rows), "is": math.ceil(m / cols)}[flow]
    resident = part.unified_buffer_bytes // 2
    if flow == "ws":
        a_bytes *= 1 if a_bytes <= resident else sweeps
    else:
        b_bytes *= 1 if b_bytes <= resident else sweeps
    dram = a_bytes + b_bytes + m * n * out_itemsize * (2 if reads_out else 1)
    dma = math.ceil(dram / part.dram_bytes_per_cycle)
    macs = m * n * k
    return Estimate(compute, dma_stall(folds, per_fold, dma), dma, folds, macs, dram, macs,
                    rows * cols, extra)


def vector_estimate(elements: int, dram_bytes: int, part: Preset) -> Estimate:
    """An elementwise op on the vector unit: one element per lane per cycle, operands streamed
    from DRAM in chunks of half the unified buffer, double-buffered like the array's folds."""
    lanes = part.vector_lanes
    compute = math.ceil(elements / lanes)
    folds = max(1, math.ceil(dram_bytes / (part.unified_buffer_bytes // 2)))
    dma = math.ceil(dram_bytes / part.dram_bytes_per_cycle)
    return Estimate(compute, dma_stall(folds, compute / folds, dma), dma, folds, 0, dram_bytes, elements, lanes)
