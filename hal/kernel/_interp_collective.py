"""Subgroup and work-group collectives in the reference interpreter: their exact semantics.

What :class:`hal.kernel.ir.Collective` promises, vectorised over a chunk (whole work-groups,
threads group-major in linear local id order):

* subgroups are aligned runs of ``S`` linear local ids (the last one of a group may be partial);
* ``shuffle`` reads lane ``lane`` of the caller's subgroup, and a lane that does not exist there
  (negative, ``>= S``, or past a partial subgroup's end) gives the caller its own value;
* reductions combine in one fixed tree (:func:`tree_reduce`), the same for every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

REDUCERS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "reduce_add": np.add, "reduce_max": np.maximum, "reduce_min": np.minimum,
}
"""The IR's ``add`` (wrapping for integers), and its NaN-propagating ``max``/``min``."""


def tree_reduce(op: str, rows: np.ndarray, lengths: np.ndarray | int) -> np.ndarray:
    """Reduce each row's first ``lengths`` values in the IR's tree order; one result per row.

    For ``s = 1, 2, 4, ...`` while ``s < n``: ``x[i] = x[i] op x[i + s]`` for each ``i`` that is a
    multiple of ``2 s`` with ``i + s < n``; the result is ``x[0]``. Values past a row's length
    are never combined into it (they may be anything).
    """
    fn = REDUCERS[op]
    x = rows.copy()
    width = x.shape[1]
    n = np.asarray(lengths)[..., None] if np.ndim(lengths) else int(lengths)
    s = 1
    while s < width:
        lhs = np.arange(0, width - s, 2 * s)
        combined = fn(x[:, lhs], x[:, lhs + s])
        x[:, lhs] = combined if isinstance(n, int) and lhs[-1] + s < n else \
            np.where(lhs + s < n, combined, x[:, lhs])
        s *= 2
    return x[:, 0]


@dataclass(frozen=True)
class Subgroups:
    """How the threads of a chunk split into subgroups of ``size`` lanes."""

    size: int
    tpg: int
    """Threads per work-group."""

    @property
    def per_group(self) -> int:
        return -(-self.tpg // self.size)

    def lane(self, local_linear: np.ndarray) -> np.ndarray:
        """``subgroup_local_id`` of each thread (given its linear local id)."""
        return (local_linear % self.size).astype(np.int32)

    def lanes_of(self, local_linear: np.ndarray) -> np.ndarray:
        """How many lanes the subgroup of each thread has (``size`` except in a partial last one)."""
        first = local_linear - local_linear % self.size
        lanes: np.ndarray = np.minimum(self.size, self.tpg - first).astype(np.int32)
        return lanes

    def padded(self, values: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
        """A chunk's per-thread values as rows of ``size`` (one per subgroup), and each row's length."""
        s, k = self.size, self.per_group
        rows = np.zeros((groups, k * s), values.dtype)
        rows[:, :self.tpg] = values.reshape(groups, self.tpg)
        lengths = np.full(k, s, np.int64)
        lengths[-1] = self.tpg - (k - 1) * s
        return rows.reshape(groups * k, s), np.tile(lengths, groups)

    def reduce(self, op: str, values: np.ndarray, groups: int) -> np.ndarray:
        """Each thread's subgroup reduction."""
        rows, lengths = self.padded(values, groups)
        per_subgroup = tree_reduce(op, rows, lengths).reshape(groups, self.per_group)
        return np.repeat(per_subgroup, self.size, axis=1)[:, :self.tpg].reshape(-1)

    def shuffle(self, values: np.ndarray, local_linear: np.ndarray, source_lane: np.ndarray) -> np.ndarray:
        """``values`` of lane ``source_lane`` of each thread's subgroup; its own where that lane does not exist."""
        lane = local_linear % self.size
        exists = (source_lane >= 0) & (source_lane < self.lanes_of(local_linear))
        index = np.arange(len(values)) - lane + np.where(exists, source_lane, lane)
        out: np.ndarray = np.where(exists, values[index], values)
        return out

    def vote(self, op: str, values: np.ndarray, groups: int) -> np.ndarray:
        """``any``/``all`` of each thread's subgroup (bool), or its ``ballot`` (u64 of lane bits)."""
        rows, lengths = self.padded(values.astype(bool), groups)
        present = np.arange(self.size) < lengths[:, None]
        if op == "ballot":
            bits = np.left_shift(np.uint64(1), np.arange(self.size, dtype=np.uint64))
            per = np.asarray(np.where(rows & present, bits, np.uint64(0)).sum(axis=1, dtype=np.uint64))
        elif op == "any":
            per = np.asarray((rows & present).any(axis=1))
        else:
            per = np.asarray((rows | ~present).all(axis=1))
        out: np.ndarray = np.repeat(per.reshape(groups, self.per_group), self.size, axis=1)[:, :self.tpg].reshape(-1)
        return out

    def scan(self, op: str, values: np.ndarray, local_linear: np.ndarray) -> np.ndarray:
        """Each thread's inclusive (exclusive) sum over the lanes up to (before) its own, in the IR's
        Hillis-Steele order: for s = 1, 2, 4, ... while s < S, x[i] = x[i - s] + x[i] for lanes i >= s."""
        lane = local_linear % self.size
        x = values.copy()
        s = 1
        while s < self.size:
            has = lane >= s
            shifted = np.where(has, np.roll(x, s), x)
            x = np.where(has, np.add(shifted, x), x)
            s *= 2
        if op == "scan_exclusive_add":
            x = np.where(lane >= 1, np.roll(x, 1), np.zeros_like(x))
        return x

    def divergent(self, mask: np.ndarray, groups: int) -> int | None:
        """The first chunk thread of a subgroup that only partly reached a collective (None: none did)."""
        rows, lengths = self.padded(mask, groups)
        count = np.count_nonzero(rows, axis=1)
        bad = (count != 0) & (count != lengths)
        if not bad.any():
            return None
        r = int(np.argmax(bad))
        g, k = divmod(r, self.per_group)
        return g * self.tpg + k * self.size + int(np.argmin(rows[r, :lengths[r]]))


def group_reduce(op: str, values: np.ndarray, groups: int, tpg: int) -> np.ndarray:
    """Each thread's work-group reduction."""
    per_group = tree_reduce(op, values.reshape(groups, tpg), tpg)
    return np.repeat(per_group, tpg)
