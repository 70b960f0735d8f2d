"""Launch timing: the design's pipelines charged with the trip counts a launch actually ran.

Trip counts are often known only at run time (``range(n)``, ``while``), so the
reference interpreter runs with a tracer that counts, per loop, the iterations
of every work-item: the interpreter reports one ``branch`` per loop test, and a
loop entered by a work-item for ``t`` iterations tests ``t + 1`` times. A
work-item that leaves by ``break``/``return`` skips its last test, so its last
iteration is not counted (an underestimate of one iteration per early exit).

Then, summed over every entry of a loop by a work-item (``E`` entries that ran
at least once, ``T`` iterations in all): pipelined ``depth * E + II * (T - E)``,
which is ``depth + II * (trips - 1)`` per entry; unpipelined ``depth * T``.
The work-item loop streams all ``N`` work-items of the launch through its
pipeline (``depth + II * (N - 1)``); with barriers each work-group's
work-items pass once per phase (``depth + phases * II * (group size - 1)``
per group); a work-item body holding loops runs work-items one after another.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hal.kernel.types import ScalarType

from ._synth import Design


class LoopTracer:
    """A :class:`hal.kernel.interpreter.Tracer` counting loop iterations, barriers and DRAM bytes."""

    def __init__(self, design: Design) -> None:
        self.lines = {p.line: p.lines for p in design.loops}
        self.entries = dict.fromkeys(self.lines, 0)
        self.trips = dict.fromkeys(self.lines, 0)
        self.dram_bytes = 0
        self.barriers = 0
        """Barrier crossings of a whole work-group, summed over work-groups."""
        self._tpg = 1
        self._open: dict[int, int] = {}
        """Loops of the chunk inside an entry: line -> tests seen in this entry."""

    def _at(self, line: int) -> None:
        """An instruction at ``line``: every open loop that does not contain it has been left."""
        if self._open:
            for loop in [o for o in self._open if line not in self.lines[o]]:
                del self._open[loop]

    def begin_chunk(self, group_ids: np.ndarray, threads_per_group: int) -> None:
        self._open.clear()
        self._tpg = threads_per_group

    def op(self, line: int, name: str, type: ScalarType, mask: np.ndarray) -> None:
        self._at(line)
        if name != "branch" or line not in self.lines:
            return
        test = self._open.get(line, -1) + 1
        self._open[line] = test
        if test:
            active = int(np.count_nonzero(mask))
            self.trips[line] += active
            if test == 1:
                self.entries[line] += active

    def memory(self, line: int, space: str, buffer: str, index: np.ndarray, mask: np.ndarray,
               store: bool, itemsize: int) -> None:
        self._at(line)
        if space == "global":
            self.dram_bytes += int(np.count_nonzero(mask)) * itemsize

    def atomic(self, line: int, space: str, buffer: str, index: np.ndarray, mask: np.ndarray,
               itemsize: int) -> None:
        self._at(line)

    def barrier(self, line: int, mask: np.ndarray) -> None:
        self._at(line)
        self.barriers += int(np.count_nonzero(mask)) // self._tpg


@dataclass(frozen=True)
class LoopRun:
    """One loop over a launch: entries that ran at least once, iterations in all, cycles."""

    line: int
    entries: int
    trips: int
    cycles: int


@dataclass(frozen=True)
class LaunchTiming:
    """Cycles and seconds of one launch (an analytic estimate)."""

    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    workitem_cycles: int
    loops: tuple[LoopRun, ...]
    cycles: int
    dram_bytes: int
    compute_s: float
    memory_s: float
    kernel_s: float
    """max(compute, memory) plus the host-side launch cost."""

    @property
    def bound(self) -> str:
        return "memory" if self.memory_s > self.compute_s else "compute"


def launch_timing(design: Design, tracer: LoopTracer, grid: tuple[int, int, int], block: tuple[int, int, int],
                  clock_hz: float, dram_bytes_s: float, launch_s: float) -> LaunchTiming:
    groups, tpg = math.prod(grid), math.prod(block)
    wi = design.workitems
    if not wi.pipelined:
        wi_cycles = groups * tpg * wi.depth
    elif design.barriers:
        wi_cycles = groups * wi.depth + (groups + tracer.barriers) * wi.ii * (tpg - 1)
    else:
        wi_cycles = wi.cycles(groups * tpg)
    runs = []
    for p in design.loops:
        e, t = tracer.entries[p.line], tracer.trips[p.line]
        cycles = p.depth * e + p.ii * (t - e) if p.pipelined else p.depth * t
        runs.append(LoopRun(p.line, e, t, cycles))
    cycles = wi_cycles + sum(r.cycles for r in runs)
    compute_s, memory_s = cycles / clock_hz, tracer.dram_bytes / dram_bytes_s
    return LaunchTiming(grid, block, wi_cycles, tuple(runs), cycles, tracer.dram_bytes, compute_s, memory_s,
                        max(compute_s, memory_s) + launch_s)
