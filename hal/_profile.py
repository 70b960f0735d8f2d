"""``hal.profile()``: one record per command, and a Perfetto/Chrome trace.

Profiling costs nothing when off: queues test one module-level list. When
on, each enqueue carries a :class:`~hal.backend.CommandTrace` that the backend
fills (device time, counters) by the time its queue is synchronised.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backend import CommandTrace

if TYPE_CHECKING:
    from ._queue import Queue

ACTIVE: list[Profile] = []
"""Open profiles (innermost last); empty when profiling is off."""
_lock = threading.Lock()


@dataclass(frozen=True)
class ProfileRecord:
    """One command: what ran where, how long on the host clock and on the device clock."""

    name: str
    kind: str
    device: str
    queue: int
    grid: tuple[int, int, int] | None
    block: tuple[int, int, int] | None
    nbytes: int
    start_s: float
    wall_s: float
    device_start_s: float
    device_s: float
    counters: dict[str, Any] = field(default_factory=dict)


class Profile:
    """Context manager collecting :class:`ProfileRecord` s of every command enqueued inside it."""

    def __init__(self) -> None:
        self._pending: list[tuple[CommandTrace, Queue]] = []
        self.records: list[ProfileRecord] = []

    def __enter__(self) -> Profile:
        with _lock:
            ACTIVE.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            ACTIVE.remove(self)
        queues = {id(q): q for _, q in self._pending}
        for q in queues.values():
            q.synchronize()
        self.records.extend(
            ProfileRecord(t.name, t.kind, t.device, id(q), t.grid, t.block, t.nbytes, t.wall_start,
                          t.wall_s, t.device_start, t.device_s, dict(t.counters))
            for t, q in self._pending)
        self._pending.clear()

    def add(self, trace: CommandTrace, queue: Queue) -> None:
        self._pending.append((trace, queue))

    def summary(self) -> str:
        """A plain-text table: one line per command name with count and total times."""
        rows: dict[tuple[str, str], list[float]] = {}
        for r in self.records:
            acc = rows.setdefault((r.device, r.name), [0, 0.0, 0.0])
            acc[0] += 1
            acc[1] += r.wall_s
            acc[2] += r.device_s
        lines = [f"{'device':<24} {'command':<24} {'count':>6} {'wall ms':>10} {'device ms':>10}"]
        for (dev, name), (n, wall, dev_s) in sorted(rows.items()):
            lines.append(f"{dev:<24} {name:<24} {int(n):>6} {wall * 1e3:>10.3f} {dev_s * 1e3:>10.3f}")
        return "\n".join(lines)

    def save(self, path: str | Path) -> None:
        """Write a Chrome trace-event JSON file (opens in ui.perfetto.dev and chrome://tracing).

        One process per device, one track per queue, on the device's clock
        (simulated seconds on a simulated device).
        """
        pids = {dev: i + 1 for i, dev in enumerate(sorted({r.device for r in self.records}))}
        events: list[dict[str, Any]] = [
            {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": dev}}
            for dev, pid in pids.items()]
        for r in self.records:
            args: dict[str, Any] = {"kind": r.kind, "wall_s": r.wall_s, **r.counters}
            if r.grid:
                args["grid"], args["block"] = list(r.grid), list(r.block or ())
            if r.nbytes:
                args["bytes"] = r.nbytes
            events.append({"name": r.name, "cat": r.kind, "ph": "X", "pid": pids[r.device],
                           "tid": r.queue % 100000, "ts": r.device_start_s * 1e6,
                           "dur": max(r.device_s * 1e6, 0.001), "args": _jsonable(args)})
        import json  # only here: not part of ``import hal``

        Path(path).write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ns"}))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def profile() -> Profile:
    """``with hal.profile() as prof:`` records every command enqueued inside the block."""
    return Profile()
