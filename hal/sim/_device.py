"""SimDevice: a device whose memory is numpy arrays and whose time comes from a model."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._errors import OutOfMemoryError
from ..backend import Buffer, DeviceImpl, Dim3, Executable, QueueImpl


class HostBuffer(Buffer[np.ndarray]):
    """Device memory simulated by a numpy byte array (``handle``); host-visible only if the device says so."""

    __slots__ = ("nbytes", "handle", "visible")

    def __init__(self, nbytes: int, visible: bool, memory: np.ndarray | None = None) -> None:
        self.nbytes = nbytes
        self.handle = np.empty(nbytes, dtype=np.uint8) if memory is None else memory
        self.visible = visible

    @property
    def data(self) -> np.ndarray:
        """API 1.0's name of ``handle``."""
        return self.handle

    def host_array(self) -> np.ndarray | None:
        return self.handle if self.visible else None


_FREED = np.empty(0, dtype=np.uint8)


class SimDevice(DeviceImpl[HostBuffer]):
    """Base of simulated devices: memory and queues here, cost model and execution in the subclass.

    Times are simulated seconds; each queue keeps its own clock, and waiting on
    another queue's event moves the clock forward to that event's time.
    """

    host_visible = False
    host_now = 0.0
    """The latest simulated time the host has waited for: later work starts no earlier."""

    def observe(self, seconds: float) -> None:
        """The host waited until ``seconds`` of device time (a synchronize, an event)."""
        if seconds > self.host_now:
            self.host_now = seconds

    def allocate(self, nbytes: int) -> HostBuffer:
        try:
            return HostBuffer(nbytes, self.host_visible)
        except MemoryError:
            raise OutOfMemoryError(f"the host has no memory left to simulate {nbytes} bytes of "
                                   f"{self.info().name} memory; free arrays first") from None

    def free(self, buffer: HostBuffer) -> None:
        buffer.handle = _FREED

    def adopt_host(self, memory: np.ndarray) -> HostBuffer | None:
        """A host-visible simulated device keeps its memory in numpy arrays: the producer's will do."""
        return HostBuffer(memory.nbytes, True, memory) if self.host_visible else None

    def create_queue(self) -> QueueImpl[HostBuffer]:
        from ._queue import SimQueue

        return SimQueue(self)

    @abstractmethod
    def transfer_seconds(self, kind: str, nbytes: int) -> float:
        """Simulated time of a ``copy_h2d``, ``copy_d2h``, ``copy_d2d`` or ``fill`` of ``nbytes``."""

    @abstractmethod
    def execute(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any]) -> tuple[float, dict[str, Any]]:
        """Run a launch (exact results) and return its simulated seconds and counters.
        Raise ``DeviceFault`` for faults; runs on the queue's worker thread."""
