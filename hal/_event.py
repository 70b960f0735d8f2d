"""Event: a marker in a queue; other queues can wait on it, and two events time what ran between."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import DeviceTimeout, InvalidArgumentError
from .backend import EventImpl

if TYPE_CHECKING:
    from ._device import Device
    from ._queue import Queue


class Event:
    __slots__ = ("device", "impl", "queue", "_token")

    def __init__(self, device: Device, impl: EventImpl, queue: Queue | None = None) -> None:
        self.device = device
        self.impl = impl
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
        return self.impl.time() - earlier.impl.time()

    def __repr__(self) -> str:
        return f"<hal.Event on {self.device.spec} {'done' if self.query() else 'pending'}>"
