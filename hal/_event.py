"""Event: a marker in a queue; other queues can wait on it, and two events time what ran between."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import InvalidArgumentError
from .backend import EventImpl

if TYPE_CHECKING:
    from ._device import Device


class Event:
    __slots__ = ("device", "impl")

    def __init__(self, device: Device, impl: EventImpl) -> None:
        self.device = device
        self.impl = impl

    def query(self) -> bool:
        """True once everything enqueued before the event has completed."""
        return self.impl.query()

    def synchronize(self) -> None:
        self.impl.synchronize()

    def elapsed(self, earlier: Event) -> float:
        """Seconds between ``earlier`` and this event on the device's clock (simulated on a
        simulated device). Waits for both."""
        if not isinstance(earlier, Event):
            raise InvalidArgumentError(f"elapsed() takes another hal.Event, got {type(earlier).__name__}")
        if earlier.device is not self.device:
            raise InvalidArgumentError(f"cannot time events of two devices ({earlier.device.spec} and "
                                       f"{self.device.spec}): their clocks differ")
        earlier.impl.synchronize()
        self.impl.synchronize()
        return self.impl.time() - earlier.impl.time()

    def __repr__(self) -> str:
        return f"<hal.Event on {self.device.spec} {'done' if self.query() else 'pending'}>"
