"""Per-warp views of per-thread arrays, and the per-warp reductions the model needs.

The interpreter hands the tracer one value per chunk thread, groups back to
back. Warps are 32 consecutive local ids of one group, so a group whose size
is not a multiple of 32 ends in a partial warp: :class:`WarpLayout` pads each
group to whole warps, and every reduction here works row-wise on an
``(warps, 32)`` array with ``-1`` in inactive lanes. Sorting a 32-wide row
replaces ``np.unique`` (which cannot work per row).
"""

from __future__ import annotations

import numpy as np

INACTIVE = -1


class WarpLayout:
    """How the chunk's threads fall into warps of 32."""

    def __init__(self, groups: int, threads_per_group: int) -> None:
        self.n = groups * threads_per_group
        per_group = -(-threads_per_group // 32)
        self.warps = groups * per_group
        self.pad: np.ndarray | None = None
        if threads_per_group % 32:
            lane = np.arange(self.n)
            self.pad = (lane // threads_per_group) * per_group * 32 + lane % threads_per_group

    def active_warps(self, mask: np.ndarray) -> np.ndarray:
        """Bool per warp: at least one lane active."""
        if self.pad is not None:
            padded = np.zeros(self.warps * 32, bool)
            padded[self.pad] = mask
            mask = padded
        words = np.ascontiguousarray(mask).view(np.uint64).reshape(-1, 4)
        active: np.ndarray = (words[:, 0] | words[:, 1] | words[:, 2] | words[:, 3]) != 0
        return active

    def count(self, mask: np.ndarray) -> int:
        """Warps with at least one active lane."""
        active = np.count_nonzero(mask)
        if active == self.n:
            return self.warps
        if active == 0:
            return 0
        return int(np.count_nonzero(self.active_warps(mask)))

    def rows(self, values: np.ndarray, mask: np.ndarray, full: bool) -> np.ndarray:
        """``values`` as ``(warps, 32)`` with INACTIVE in inactive and padding lanes."""
        if not full:
            values = np.where(mask, values, INACTIVE)
        return self.raw_rows(values)

    def raw_rows(self, values: np.ndarray) -> np.ndarray:
        """``values`` as ``(warps, 32)``, every lane kept (padding lanes INACTIVE)."""
        if self.pad is None:
            return values.reshape(-1, 32)
        out = np.full(self.warps * 32, INACTIVE, values.dtype)
        out[self.pad] = values
        return out.reshape(-1, 32)


def sorted_rows(rows: np.ndarray) -> np.ndarray:
    """Each row ascending; skips the sort when every row already is (coalesced accesses)."""
    if rows.shape[0] == 0 or bool((rows[:, 1:] >= rows[:, :-1]).all()):
        return rows
    return np.sort(rows, axis=1)


def firsts(srows: np.ndarray) -> np.ndarray:
    """Bool per element of row-sorted ``srows``: the first active occurrence of its value in its row."""
    new = np.empty(srows.shape, bool)
    new[:, 0] = True
    np.not_equal(srows[:, 1:], srows[:, :-1], out=new[:, 1:])
    new &= srows != INACTIVE
    return new


def max_multiplicity(srows: np.ndarray) -> np.ndarray:
    """Per row of row-sorted ``srows``: the most active lanes sharing one value (0 for an idle row)."""
    flat = srows.ravel()
    start = np.ones(flat.size, bool)
    np.not_equal(flat[1:], flat[:-1], out=start[1:])
    start[::32] = True
    at = np.flatnonzero(start)
    lengths = np.diff(np.append(at, flat.size))
    live = flat[at] != INACTIVE
    best = np.zeros(srows.shape[0], np.int64)
    np.maximum.at(best, at[live] // 32, lengths[live])
    return best


def bank_ways(words: np.ndarray, layout: WarpLayout, mask: np.ndarray, full: bool, banks: int = 32) -> np.ndarray:
    """Per warp: the most distinct words its active lanes touch in one bank (0 for an idle warp).

    Fast path: a warp whose lanes (inactive ones included) span fewer than ``banks`` words cannot
    conflict. Only the other warps pay for the sort and the per-bank count.
    """
    rows = layout.raw_rows(words)
    active = np.ones(rows.shape[0], bool) if full else layout.active_warps(mask)
    if layout.pad is None:
        span = rows.max(axis=1) - rows.min(axis=1)
    else:
        span = np.where(rows == INACTIVE, rows.max(axis=1, keepdims=True), rows)
        span = span.max(axis=1) - span.min(axis=1)
    slow = active & (span >= banks)
    ways = active.astype(np.int64)
    if slow.any():
        lanes = rows[slow]
        if not full:
            lanes = np.where(layout.raw_rows(mask)[slow], lanes, INACTIVE)
        srows = np.sort(lanes, axis=1)
        first = firsts(srows)
        row = np.nonzero(first)[0]
        key = row * banks + srows[first] % banks
        ways[slow] = np.bincount(key, minlength=srows.shape[0] * banks).reshape(-1, banks).max(axis=1)
    return ways
