"""Compile stalls and event marks (hal._event.Timeline): which host waits ``Event.elapsed`` leaves out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hal._event import Timeline


@dataclass
class _Marker:
    at: float
    done: bool

    def query(self) -> bool:
        return self.done

    def time(self) -> float:
        return self.at


class _Queue:
    """A backend queue whose markers run at ``now`` and are complete unless ``busy``."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy = False
        self.markers: list[_Marker] = []

    def record(self) -> _Marker:
        marker = _Marker(self.now, not self.busy)
        self.markers.append(marker)
        return marker


def test_a_compile_on_an_idle_queue_is_left_out() -> None:
    q, t = _Queue(), Timeline()
    _, first = t.record(q)  # type: ignore[arg-type]

    def compile() -> str:
        q.now += 5.0
        return "exe"

    assert t.stalled(q, compile) == "exe"  # type: ignore[arg-type]
    q.now += 1.0
    _, last = t.record(q)  # type: ignore[arg-type]
    assert t.stalls(first, last) == 5.0
    assert t.stalls(first, first) == 0.0


def test_a_compile_while_the_queue_ran_work_is_not_a_stall() -> None:
    q, t = _Queue(), Timeline()
    _, first = t.record(q)  # type: ignore[arg-type]
    q.busy = True
    t.stalled(q, lambda: None)  # type: ignore[arg-type]
    _, last = t.record(q)  # type: ignore[arg-type]
    assert t.stalls(first, last) == 0.0


def test_events_recorded_during_a_compile_do_not_count_it() -> None:
    """Another thread's event inside the bracket: neither interval it bounds holds the whole stall,
    so none is subtracted (an elapsed time never goes negative)."""
    q, t = _Queue(), Timeline()
    _, first = t.record(q)  # type: ignore[arg-type]
    inside: list[Any] = []

    def compile() -> None:
        q.now += 2.0
        inside.append(t.record(q)[1])  # type: ignore[arg-type]
        q.now += 3.0

    t.stalled(q, compile)  # type: ignore[arg-type]
    _, last = t.record(q)  # type: ignore[arg-type]
    assert t.stalls(first, inside[0]) == 0.0 and t.stalls(inside[0], last) == 0.0
    assert t.stalls(first, last) == 5.0


def test_only_the_latest_stalls_are_kept() -> None:
    q, t = _Queue(), Timeline()
    for _ in range(Timeline.KEEP + 10):
        t.stalled(q, lambda: None)  # type: ignore[arg-type]
    assert len(t._stalls) == Timeline.KEEP
