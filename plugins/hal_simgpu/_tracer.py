"""The interpreter Tracer of simgpu: per-warp counters for the timing model (and races, when checked).

All work is per event and vectorised over the chunk's warps; nothing loops over
threads. See README.md ("What is counted") for the exact rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hal.kernel.types import ScalarType

from ._model import PIPES, LaunchCounts, Traffic
from ._presets import SECTOR_BYTES
from ._races import RaceDetector
from ._warps import WarpLayout, bank_ways, firsts, max_multiplicity, sorted_rows

Cost = tuple[tuple[int, float], ...]
"""(pipe index in PIPES, warp instructions) pairs of one IR instruction."""

_FP, _FP64, _INT, _SFU, _LSU = range(5)
_FLOAT_MATH = {  # instruction expansion of libdevice's IEEE-accurate functions (approximate, README)
    "div": ((1, 4.0),), "sqrt": ((1, 4.0),), "floordiv": ((0, 4.0),), "mod": ((0, 4.0),),
    "exp": ((1, 8.0),), "log": ((1, 8.0),), "tanh": ((1, 10.0),),
    "sin": ((1, 20.0),), "cos": ((1, 20.0),), "pow": ((1, 24.0),),
    "exp2": ((1, 2.0),), "log2": ((1, 4.0),), "log10": ((1, 8.0),), "log1p": ((1, 12.0),),
    "expm1": ((1, 12.0),), "rsqrt": ((1, 4.0),), "tan": ((2, 24.0),), "atan": ((1, 20.0),),
    "atan2": ((2, 26.0),), "asin": ((2, 22.0),), "acos": ((2, 22.0),), "sinh": ((2, 12.0),),
    "cosh": ((2, 12.0),), "erf": ((1, 16.0),), "erfc": ((2, 24.0),), "hypot": ((1, 10.0),),
}
_INT_HEAVY = {"floordiv": 20.0, "mod": 20.0, "pow": 10.0}
WARP_STEPS = 5
"""log2(32): shuffle-and-combine steps of a warp reduction (README, "Collectives")."""
CONSTANT_DIVISION = 3.0
"""Integer ``//``/``%`` by a constant: ``nvcc`` multiplies by a magic reciprocal instead of dividing
(Granlund & Montgomery 1994): about three instructions (multiply-high, shift, sign fix-up; fewer for 2**k)."""


def _cost(name: str, type_: ScalarType, constant_divisor: bool = False) -> Cost:
    """Pipe costs of an op event (name and the type it computes in).

    Branches use no pipe, only an issue slot: they run on the convergence-barrier
    unit, not the integer ALU (Nsight Compute's pipeline list: ``cbu``).
    """
    if name == "branch":
        return ()
    if name == "cast":
        return ((_SFU, 1.0),) if type_.is_float else ((_INT, 1.0),)
    if type_.is_float:
        pipe = _FP64 if type_ is ScalarType.F64 else _FP
        extra = _FLOAT_MATH.get(name)
        if extra is None:
            return ((pipe, 1.0),)
        sfu, fp = extra[0]
        if type_ is ScalarType.F64:  # no f64 MUFU: a longer FP64 sequence seeded by one MUFU op
            return ((_SFU, 1.0), (_FP64, 2.0 * fp + 2.0))
        return ((_SFU, float(sfu)), (_FP, fp)) if sfu else ((_FP, fp),)
    wide = 2.0 if type_ in (ScalarType.I64, ScalarType.U64) else 1.0
    heavy = CONSTANT_DIVISION if constant_divisor and name in ("floordiv", "mod") else _INT_HEAVY.get(name)
    if heavy is not None:
        return ((_INT, heavy * wide * wide),)
    return ((_INT, wide * (2.0 if name == "mul" and wide > 1 else 1.0)),)


@dataclass(frozen=True)
class GlobalBuffer:
    """Where a pointer argument lives: its allocation (for footprints) and byte offset in it."""

    key: int
    offset: int
    nbytes: int


class SimGpuTracer:
    """Collects :class:`LaunchCounts` over one launch."""

    def __init__(self, buffers: dict[str, GlobalBuffer], shared_base: dict[str, int], segment: int,
                 races: RaceDetector | None, constant_division_lines: frozenset[int]) -> None:
        self.buffers = buffers
        self.shared_base = shared_base
        """Word offset of each shared array inside the block's shared memory (for banks)."""
        self.constant_division_lines = constant_division_lines
        """Source lines whose integer divisions all divide by a constant (see :data:`CONSTANT_DIVISION`)."""
        self.segment_shift = segment.bit_length() - 1 - (SECTOR_BYTES.bit_length() - 1)
        self.segment = segment
        self.races = races
        self.pipes = [0.0] * len(PIPES)
        self.warp_instructions = 0.0
        self.load_rounds = 0
        self.sectors = 0
        self.requests = [0, 0]  # reads, writes (segments)
        self.bank_conflicts = 0
        self.atomic_collisions = 0
        self.global_atomics = 0
        self.atomic_chain = 0
        self._touched: dict[tuple[int, bool], np.ndarray] = {}
        self._atomic_hits: dict[int, np.ndarray] = {}
        self._costs: dict[tuple[str, ScalarType, bool], tuple[Cost, float]] = {}
        self._round_line = -1
        self.layout = WarpLayout(1, 32)
        self.groups, self.tpg = 1, 32

    # ----------------------------------------------------------- Tracer protocol
    def begin_chunk(self, group_ids: np.ndarray, threads_per_group: int) -> None:
        self.layout = WarpLayout(len(group_ids), threads_per_group)
        self.groups, self.tpg = len(group_ids), threads_per_group
        self._round_line = -1
        if self.races is not None:
            self.races.begin_chunk(group_ids, threads_per_group)

    def op(self, line: int, name: str, type: ScalarType, mask: np.ndarray) -> None:
        if line != self._round_line:
            self._round_line = -1
        key = (name, type, line in self.constant_division_lines)
        cached = self._costs.get(key)
        if cached is None:
            cost = _cost(*key)
            cached = self._costs[key] = (cost, sum(c for _, c in cost) or 1.0)  # a branch: one issue slot
        warps = self.layout.count(mask)
        if warps:
            for pipe, count in cached[0]:
                self.pipes[pipe] += warps * count
            self.warp_instructions += warps * cached[1]

    def memory(self, line: int, space: str, buffer: str, index: np.ndarray, mask: np.ndarray,
               store: bool, itemsize: int) -> None:
        full = np.count_nonzero(mask) == mask.size
        if space == "global":
            self._global(buffer, index, mask, full, itemsize, store)
            if not store and line != self._round_line:
                self.load_rounds += self.layout.count(mask)
            self._round_line = line
            return
        if line != self._round_line:
            self._round_line = -1
        if space == "shared":
            ways = bank_ways(self._shared_words(buffer, index, itemsize), self.layout, mask, full)
            base = np.where(ways > 0, 2 if itemsize == 8 else 1, 0)  # 64-bit words: two wavefronts at least
            waves = np.maximum(ways, base)
            self.bank_conflicts += int((waves - base).sum())
            self._issue(int(waves.sum()))
            if self.races is not None:
                self.races.access(line, buffer, index, mask, store)
        else:
            self._issue(self.layout.count(mask))

    def atomic(self, line: int, space: str, buffer: str, index: np.ndarray, mask: np.ndarray,
               itemsize: int) -> None:
        if line != self._round_line:
            self._round_line = -1
        full = np.count_nonzero(mask) == mask.size
        if space == "global":
            addr = self._addresses(buffer, index, itemsize)
            rows = sorted_rows(self.layout.rows(addr, mask, full))
            self._global(buffer, index, mask, full, itemsize, True)
            self._global(buffer, index, mask, full, itemsize, False, count_issue=False)
            self.global_atomics += int(np.count_nonzero(mask))
            self._chain(buffer, index[mask] if not full else index, itemsize)
        else:
            rows = sorted_rows(self.layout.rows(self._shared_words(buffer, index, itemsize), mask, full))
        hits = max_multiplicity(rows)
        self.atomic_collisions += int(np.maximum(hits - 1, 0).sum())
        self._issue(int(hits.sum()) - (self.layout.count(mask) if space == "global" else 0))

    def collective(self, line: int, scope: str, op: str, type: ScalarType, mask: np.ndarray) -> None:
        """A subgroup (warp) or work-group collective, as CUDA code compiles it (README, "Collectives")."""
        self._round_line = -1
        warps = self.layout.count(mask)
        if not warps:
            return
        step = self._reduce_step(op, type)
        if op.startswith("shuffle") or op in ("any", "all", "ballot"):
            self._issue(warps)  # one SHFL or VOTE per warp
            return
        self._issue(warps * WARP_STEPS)  # the butterfly: log2(32) SHFL, each followed by one op
        self._charge(step, warps * WARP_STEPS)
        if scope == "subgroup":
            return
        # each warp's lane 0 stores its partial, a barrier, the first warp reduces the partials, a barrier,
        # and every warp reads the result (a broadcast: one wavefront); the interpreter reported one barrier
        groups = int(np.count_nonzero(mask.reshape(self.groups, -1).any(axis=1)))
        levels = max(-(-self.tpg // 32) - 1, 0).bit_length()  # log2 of the warps per block, rounded up
        self._issue(2 * warps + groups * (2 + levels))
        self._charge(step, groups * levels)
        self.warp_instructions += warps  # the second barrier: an issue slot per warp

    def _reduce_step(self, op: str, type_: ScalarType) -> Cost:
        name = op.removeprefix("reduce_") if op.startswith("reduce_") else \
            "add" if op.startswith("scan_") else "select"
        key = (name, type_, False)
        cached = self._costs.get(key)
        if cached is None:
            cost = _cost(*key)
            cached = self._costs[key] = (cost, sum(c for _, c in cost) or 1.0)
        return cached[0]

    def _charge(self, cost: Cost, times: int) -> None:
        for pipe, count in cost:
            self.pipes[pipe] += times * count
            self.warp_instructions += times * count

    def barrier(self, line: int, mask: np.ndarray) -> None:
        self._round_line = -1
        self.warp_instructions += self.layout.count(mask)  # an issue slot: BAR runs on the cbu, like a branch
        if self.races is not None:
            self.races.barrier(mask)

    # ------------------------------------------------------------------ parts
    def _issue(self, warp_instructions: int) -> None:
        self.pipes[_LSU] += warp_instructions
        self.warp_instructions += warp_instructions

    def _addresses(self, buffer: str, index: np.ndarray, itemsize: int) -> np.ndarray:
        return index.astype(np.int64) * itemsize + self.buffers[buffer].offset

    def _shared_words(self, buffer: str, index: np.ndarray, itemsize: int) -> np.ndarray:
        """Word address in the block's shared memory (int32: shared memory is at most a few 100 KB)."""
        words = index.astype(np.int32, copy=False)
        if itemsize != 4:
            words = words * itemsize >> 2
        return words + np.int32(self.shared_base[buffer])

    def _global(self, buffer: str, index: np.ndarray, mask: np.ndarray, full: bool, itemsize: int,
                store: bool, count_issue: bool = True) -> None:
        """Sectors and min-transfer segments of one warp access; marks the segments' footprint."""
        rows = sorted_rows(self.layout.rows(self._addresses(buffer, index, itemsize) >> 5, mask, full))
        new = firsts(rows)
        if count_issue:
            self.sectors += int(np.count_nonzero(new))
            self._issue(self.layout.count(mask))
        segs = rows >> self.segment_shift if self.segment_shift else rows
        seg_new = firsts(segs) if self.segment_shift else new
        hit = segs[seg_new]
        self.requests[store] += hit.size
        buf = self.buffers[buffer]
        touched = self._touched.get((buf.key, store))
        if touched is None:
            touched = self._touched[buf.key, store] = np.zeros(buf.nbytes // self.segment + 2, bool)
        touched[hit] = True

    def _chain(self, buffer: str, index: np.ndarray, itemsize: int) -> None:
        buf = self.buffers[buffer]
        hits = self._atomic_hits.get(buf.key)
        if hits is None:
            hits = self._atomic_hits[buf.key] = np.zeros(buf.nbytes // itemsize + 1, np.int64)
        addr = self._addresses(buffer, index, itemsize) // itemsize
        np.add.at(hits, addr, 1)

    # ------------------------------------------------------------------ result
    def finish(self) -> None:
        """End of launch: the last chunk's race check."""
        if self.races is not None:
            self.races.flush(None)

    def counts(self, blocks: int, threads_per_block: int) -> LaunchCounts:
        fp = {store: 0 for store in (False, True)}
        union: dict[int, np.ndarray] = {}
        for (key, store), touched in self._touched.items():
            fp[store] += int(np.count_nonzero(touched))
            union[key] = touched | union[key] if key in union else touched
        traffic = Traffic(self.segment, self.requests[0], self.requests[1], fp[False], fp[True],
                          sum(int(np.count_nonzero(u)) for u in union.values()))
        chain = max((int(h.max()) for h in self._atomic_hits.values()), default=0)
        return LaunchCounts(
            blocks=blocks, threads_per_block=threads_per_block,
            pipe_instructions=dict(zip(PIPES, self.pipes, strict=True)), warp_instructions=int(self.warp_instructions),
            load_rounds=self.load_rounds, sectors=self.sectors, traffic=traffic,
            bank_conflicts=self.bank_conflicts, atomic_collisions=self.atomic_collisions,
            global_atomics=self.global_atomics, atomic_chain=chain)
