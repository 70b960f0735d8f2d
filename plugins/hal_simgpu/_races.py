"""Shared-memory race detection for checked mode.

A race: two threads of one work-group touch the same shared word between two
barriers, at least one of them writing (atomics excepted). The interpreter
runs a chunk in lockstep, so results stay deterministic; this finds the code
that would be wrong on a real GPU. Accesses are logged per barrier interval
and checked with one sort when a group passes a barrier or the chunk ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hal.backend import DeviceFault


@dataclass(frozen=True)
class Where:
    """What a fault message needs to name threads and lines."""

    kernel: str
    source_file: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]

    def xyz(self, linear: int, dims: tuple[int, int, int]) -> str:
        x, y, z = linear % dims[0], linear // dims[0] % dims[1], linear // (dims[0] * dims[1])
        return f"({x}, {y}, {z})"


class RaceDetector:
    """Logs shared accesses of one chunk; raises DeviceFault at the first racing word."""

    def __init__(self, where: Where) -> None:
        self.where = where
        self._log: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]] = {}
        self.group_ids = np.zeros(0, np.int64)
        self.tpg = 1

    def begin_chunk(self, group_ids: np.ndarray, tpg: int) -> None:
        self.flush(None)
        self.group_ids, self.tpg = group_ids, tpg

    def access(self, line: int, buffer: str, index: np.ndarray, mask: np.ndarray, store: bool) -> None:
        tid = np.flatnonzero(mask)
        if tid.size:
            entry = (tid, index[tid].astype(np.int64), np.full(tid.size, store), np.full(tid.size, line, np.int32))
            self._log.setdefault(buffer, []).append(entry)

    def barrier(self, mask: np.ndarray) -> None:
        """Close the interval of every group with a thread at this barrier."""
        self.flush(np.asarray(mask.reshape(-1, self.tpg).any(axis=1)))

    def flush(self, groups: np.ndarray | None) -> None:
        """Check (and forget) the logged accesses of ``groups`` (a bool per chunk group; None: all)."""
        for buffer, entries in list(self._log.items()):
            tid, idx, write, line = (np.concatenate(parts) for parts in zip(*entries, strict=True))
            if groups is None:
                done = np.ones(tid.size, bool)
            else:
                done = groups[tid // self.tpg]
            self._check(buffer, tid[done], idx[done], write[done], line[done])
            keep = ~done
            if keep.any():
                self._log[buffer] = [(tid[keep], idx[keep], write[keep], line[keep])]
            else:
                del self._log[buffer]

    def _check(self, buffer: str, tid: np.ndarray, idx: np.ndarray, write: np.ndarray, line: np.ndarray) -> None:
        if not write.any():
            return
        key = (tid // self.tpg) * (int(idx.max()) + 1) + idx
        order = np.lexsort((tid, key))
        key, tid, write, line, idx = key[order], tid[order], write[order], line[order], idx[order]
        start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        end = np.r_[start[1:], key.size] - 1
        racy = np.logical_or.reduceat(write, start) & (tid[start] != tid[end])
        if racy.any():
            s = int(start[np.argmax(racy)])
            e = int(end[np.argmax(racy)]) + 1
            w = s + int(np.argmax(write[s:e]))
            o = s + int(np.argmax(tid[s:e] != tid[w]))
            raise self._fault(buffer, int(idx[w]), (int(tid[w]), int(line[w]), True),
                              (int(tid[o]), int(line[o]), bool(write[o])))

    def _fault(self, buffer: str, index: int, first: tuple[int, int, bool], second: tuple[int, int, bool]) -> DeviceFault:
        w = self.where
        group = int(self.group_ids[first[0] // self.tpg])
        who = [f"local thread {w.xyz(t % self.tpg, w.block)} {'writes' if store else 'reads'} it at line {ln}"
               for t, ln, store in (first, second)]
        return DeviceFault(
            f"kernel '{w.kernel}' at {w.source_file or '<unknown>'}:{first[1]}: shared-memory race on "
            f"{buffer}[{index}] in work-group {w.xyz(group, w.grid)}: {who[0]}, and {who[1]}, with no "
            f"hal.barrier() between them; add a barrier between the accesses or use a hal.atomic_* operation")
