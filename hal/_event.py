"""Event: a marker in a queue; other queues can wait on it, and two events time what ran between."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import DeviceTimeout, InvalidArgumentError
from .backend import EventImpl, QueueImpl

if TYPE_CHECKING:
    from ._device import Device
    from ._queue import Queue


class Event:
    __slots__ = ("device", "impl", "mark", "queue", "_token")

    def __init__(self, device: Device, impl: EventImpl, mark: int = 0, queue: Queue | None = None) -> None:
        self.device = device
        self.impl = impl
        self.mark = mark
        """Position in its queue's :class:`Timeline` (which compile stalls lie between two events)."""
        self.queue = queue
        self._token: Any = None  # the hazard tracker's snapshot under HAL_CHECK=1

    def query(self) -> bool:
        """True once everything enqueued before the event has completed."""
        return self.impl.query()

    def synchronize(self, timeout: float | None = None) -> None:
        """Block until the event completes; ``timeout`` (seconds) raises ``DeviceTimeout`` when it
        runs out (the work goes on). Ctrl-C interrupts the wait."""
        from ._queue import wait_until

        if self.device._forked:
            self.device._raise_forked()
        wait_until(self.impl.wait, timeout, self._timed_out, self.device)
        hazards = self.device._hazards
        if hazards is not None and self.queue is not None:
            hazards.host_wait(self.queue, self._token)

    def _timed_out(self, timeout: float) -> DeviceTimeout:
        where = f" on {self.queue!r}" if self.queue is not None else ""
        return DeviceTimeout(f"the event{where} did not complete within {timeout:g} s; the work before it goes "
                             "on (q.synchronize(timeout=...) sets a time limit that aborts it)")

    def elapsed(self, earlier: Event) -> float:
        """Seconds between ``earlier`` and this event on the device's clock (simulated on a
        simulated device). Waits for both."""
        if not isinstance(earlier, Event):
            raise InvalidArgumentError(f"elapsed() takes another hal.Event, got {type(earlier).__name__}")
        if earlier.device is not self.device:
            raise InvalidArgumentError(f"cannot time events of two devices ({earlier.device.spec} and "
                                       f"{self.device.spec}): their clocks differ")
        earlier.synchronize()
        self.synchronize()
        seconds = self.impl.time() - earlier.impl.time()
        if self.queue is not None and self.queue is earlier.queue:
            first, last = sorted((earlier.mark, self.mark))
            seconds -= math.copysign(self.queue._timeline.stalls(first, last), seconds)
        return seconds

    def __repr__(self) -> str:
        return f"<hal.Event on {self.device.spec} {'done' if self.query() else 'pending'}>"


T = TypeVar("T")


@dataclass(frozen=True)
class _Stall:
    """A compile during which the queue ran dry: it waited for the host, not for device work."""

    start: int
    end: int
    before: EventImpl
    after: EventImpl

    def seconds(self) -> float:
        return self.after.time() - self.before.time()


class Timeline:
    """A queue's record of compile stalls, so that ``Event.elapsed`` counts device time only.

    A kernel compiles at its first launch on a device, on the host, while the queue may have
    nothing left to run: the queue then sits idle until the launch arrives. Markers bracket the
    compile; nothing of this thread's lies between them on the queue, so the span between them is
    exactly the idle time the compile caused (zero when earlier work kept the queue busy past the
    compile's end), and it is left out of the elapsed time of events recorded before and after it.
    (Asking the queue whether it drained instead raced with drivers that run a marker only when
    the queue is flushed: PoCL.) Marks (one counter, under
    a lock, taken with each event's and each bracket's marker) say which stalls lie between two
    events. Another thread enqueueing on the same queue during the compile adds its commands'
    time to the span, so a shared queue should compile ahead of timing (``dev.compile``)."""

    __slots__ = ("_lock", "_next", "_stalls")

    KEEP = 1024
    """Stalls remembered per queue (one per kernel compiled at a launch on the queue)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 1
        self._stalls: list[_Stall] = []

    def record(self, impl: QueueImpl[Any]) -> tuple[EventImpl, int]:
        """A marker and its mark (an event's)."""
        with self._lock:
            mark, self._next = self._next, self._next + 1
            return impl.record(), mark

    def stalled(self, impl: QueueImpl[Any], work: Callable[[], T]) -> T:
        """``work()`` (a compile), bracketed by markers on ``impl``."""
        before, start = self.record(impl)
        result = work()
        with self._lock:
            end, self._next = self._next, self._next + 1
            self._stalls.append(_Stall(start, end, before, impl.record()))
            del self._stalls[:-self.KEEP]
        return result

    def stalls(self, first: int, last: int) -> float:
        """Seconds of stalls that lie between marks ``first`` and ``last``."""
        with self._lock:
            inside = [s for s in self._stalls if first < s.start and s.end < last]
        return sum(s.seconds() for s in inside)
