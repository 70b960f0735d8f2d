"""Execution state of the reference interpreter: one launch, and one chunk of its work-groups.

A chunk holds whole work-groups, threads ordered group-major: chunk thread ``t``
is local linear id ``t % threads_per_group`` of work-group ``g0 + t //
threads_per_group``. That order is the reference order (increasing linear
global thread id, see :func:`linear_thread_id`), which is what makes a
duplicate store or a colliding atomic resolve the same way on every backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import DeviceFault
from . import ir
from ._interp_collective import Subgroups

if TYPE_CHECKING:
    from .interpreter import Tracer

Mask = np.ndarray | None
"""The threads of a chunk that execute a statement: None when all do, else a bool array."""

Dim3 = tuple[int, int, int]


def linear_thread_id(group: Dim3, local: Dim3, grid: Dim3, block: Dim3) -> int:
    """The reference order of threads: linear group id * threads per group + linear local id.

    Linear ids are x-fastest (``x + nx * (y + ny * z)``); for a 1-D launch this is ``global_id(0)``.
    """
    g = group[0] + grid[0] * (group[1] + grid[1] * group[2])
    loc = local[0] + block[0] * (local[1] + block[1] * local[2])
    return g * block[0] * block[1] * block[2] + loc


class Launch:
    """What every chunk of one launch shares: sizes, and per-thread templates built once."""

    def __init__(self, kernel: ir.Kernel, grid: Dim3, block: Dim3, groups_per_chunk: int,
                 subgroup_size: int = 1) -> None:
        self.kernel = kernel
        self.grid = grid
        self.block = block
        self.tpg = block[0] * block[1] * block[2]
        self.num_groups = grid[0] * grid[1] * grid[2]
        self.groups_per_chunk = groups_per_chunk
        n = groups_per_chunk * self.tpg
        loc = np.arange(self.tpg, dtype=np.int32)
        local = (loc % block[0], loc // block[0] % block[1], loc // (block[0] * block[1]))
        self.local_ids = tuple(np.tile(v, groups_per_chunk) for v in local)
        self.local_linear = np.tile(loc, groups_per_chunk)
        self.subgroups = Subgroups(subgroup_size, self.tpg)
        self.group_row = np.repeat(np.arange(groups_per_chunk, dtype=np.int32), self.tpg)
        self.thread_arange = np.arange(n, dtype=np.int32)
        self.one_dim = grid[1] == grid[2] == 1 and block[1] == block[2] == 1
        self.scalars: dict[tuple[str, int], np.generic] = {}
        for d in range(3):
            self.scalars["local_size", d] = np.int32(block[d])
            self.scalars["num_groups", d] = np.int32(grid[d])
            self.scalars["global_size", d] = np.int32(grid[d] * block[d])
        self.scalars["subgroup_size", 0] = np.int32(subgroup_size)

    def where(self, line: int) -> str:
        """``kernel 'name' at file:line``: the prefix of every fault message."""
        return f"kernel '{self.kernel.name}' at {self.kernel.source_file or '<unknown>'}:{line}"


class Chunk:
    """The state of consecutive work-groups ``[g0, g1)`` executing in lockstep."""

    def __init__(self, launch: Launch, g0: int, g1: int, env: dict[str, Any],
                 buffers: dict[str, np.ndarray], tracer: Tracer | None) -> None:
        self.launch = launch
        self.g0 = g0
        self.groups = g1 - g0
        self.tpg = launch.tpg
        self.n = self.groups * launch.tpg
        self.env = env
        self.buffers = buffers
        self.tracer = tracer
        self.frames: list[tuple[list[Mask], list[Mask]]] = []
        """Per enclosing loop: the masks of threads that broke, and that continued."""
        self.loop_state: dict[int, list[Any]] = {}
        """Per compiled ``For``: [trip counts, next value of the variable, step]."""
        self.while_trips: dict[int, int] = {}
        """Per compiled ``While``: the iteration it is on (its progress check reads it)."""
        self.while_suspect: dict[int, int] = {}
        """Per compiled ``While``: the iteration whose memory the progress check compares too (the one
        after an iteration that left every variable as it was)."""
        self.empty = np.zeros(self.n, bool)
        self._cache: dict[Any, Any] = {}

    # ------------------------------------------------------------ thread indices
    def thread_index(self, kind: str, dim: int) -> Any:
        """``hal.<kind>(dim)`` for every thread of the chunk (an i32 array, or a scalar when uniform)."""
        key = (kind, dim)
        value = self.launch.scalars.get(key)
        if value is not None:
            return value
        value = self._cache.get(key)
        if value is None:
            value = self._cache[key] = self._compute_index(kind, dim)
        return value

    def _compute_index(self, kind: str, dim: int) -> Any:
        launch, n = self.launch, self.n
        if kind == "local_id":
            return launch.local_ids[dim][:n]
        if kind == "subgroup_local_id":
            return launch.subgroups.lane(launch.local_linear[:n])
        if kind == "global_id" and launch.one_dim:
            return launch.thread_arange[:n] + np.int32(self.g0 * launch.tpg) if dim == 0 else np.int32(0)
        if kind == "group_id" and launch.grid[1] == launch.grid[2] == 1:
            return launch.group_row[:n] + np.int32(self.g0) if dim == 0 else np.int32(0)
        if kind == "group_id":
            gx, gy, _ = launch.grid
            g = np.arange(self.g0, self.g0 + self.groups, dtype=np.int64)
            coord = (g % gx, g // gx % gy, g // (gx * gy))[dim].astype(np.int32)
            return np.repeat(coord, self.tpg)
        if kind == "global_id":
            return self.thread_index("group_id", dim) * np.int32(launch.block[dim]) + launch.local_ids[dim][:n]
        raise ValueError(f"unknown thread index {kind!r}")

    def row_base(self, size: int, per_thread: bool) -> np.ndarray:
        """Flat offset of each thread's row in a chunk-wide array: its work-group's (shared) or its own (local)."""
        key = ("base", size, per_thread)
        base = self._cache.get(key)
        if base is None:
            rows = self.launch.thread_arange[:self.n] if per_thread else self.launch.group_row[:self.n]
            base = self._cache[key] = rows.astype(np.intp) * size
        return base

    def full(self, mask: Mask) -> np.ndarray:
        """``mask`` as a bool array even when all threads are active (for tracers)."""
        if mask is not None:
            return mask
        full = self._cache.get("full")
        if full is None:
            full = self._cache["full"] = np.ones(self.n, bool)
        return full

    # ------------------------------------------------------------------ faults
    def describe(self, t: int) -> str:
        """Chunk thread ``t`` as global, group and local ids (x, y, z)."""
        bx, by, _ = self.launch.block
        gx, gy, _ = self.launch.grid
        g, loc = self.g0 + t // self.tpg, t % self.tpg
        group = (g % gx, g // gx % gy, g // (gx * gy))
        local = (loc % bx, loc // bx % by, loc // (bx * by))
        glob = tuple(group[d] * self.launch.block[d] + local[d] for d in range(3))
        return f"thread global {_xyz(glob)} (group {_xyz(group)}, local {_xyz(local)})"

    def fault(self, line: int, message: str) -> DeviceFault:
        return DeviceFault(f"{self.launch.where(line)}: {message}")

    def first(self, mask: Mask) -> int:
        """The first (lowest reference-order) thread of a non-empty mask."""
        return 0 if mask is None else int(np.argmax(mask))


def _xyz(v: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(x)) for x in v) + ")"
