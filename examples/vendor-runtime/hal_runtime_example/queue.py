"""QueueImpl over a driver stream and EventImpl over a driver event.

Every command is enqueued on the stream and returns at once; faults stay on the stream until the
next ``synchronize`` raises them as ``DeviceFault``. Profiled commands (``trace`` not None) get
their device time on the stream's thread, before any synchronize can return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hal.backend import (
    CommandTrace,
    DeviceFault,
    Dim3,
    EventImpl,
    Executable,
    HalError,
    QueueImpl,
    interpret,
    kernel_args,
)

from . import driver

if TYPE_CHECKING:
    from .device import RuntimeBuffer


def device_bytes(buffer: RuntimeBuffer) -> np.ndarray:
    """What the reference interpreter reads and writes for ``buffer``: the driver's memory."""
    return buffer.handle.bytes


class RuntimeEvent(EventImpl):
    def __init__(self, event: driver.Event) -> None:
        self.event = event

    def query(self) -> bool:
        return self.event.stream.completed >= self.event.seq

    def synchronize(self) -> None:
        self.event.stream.wait(self.event.seq, None)

    def wait(self, timeout: float) -> bool:
        return self.event.stream.wait(self.event.seq, timeout)

    def time(self) -> float:
        return self.event.stamp


class RuntimeQueue(QueueImpl["RuntimeBuffer"]):
    def __init__(self) -> None:
        self.stream = driver.Stream()

    def enqueue(self, command: Callable[[], None], trace: CommandTrace | None) -> None:
        """Run ``command`` in stream order, timing it for the profile when asked."""
        if trace is None:
            self.stream.enqueue(command)
            return

        def timed() -> None:
            trace.device_start = start = time.perf_counter()
            try:
                command()
            finally:
                trace.device_s = trace.wall_s = time.perf_counter() - start
        self.stream.enqueue(timed)

    def copy(self, dst: RuntimeBuffer, dst_offset: int, src: RuntimeBuffer, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None:
        def command() -> None:
            dst.handle.bytes[dst_offset:dst_offset + nbytes] = src.handle.bytes[src_offset:src_offset + nbytes]
        self.enqueue(command, trace)

    def write(self, dst: RuntimeBuffer, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        def command() -> None:  # src stays alive and unchanged until a synchronize: no copy needed
            dst.handle.bytes[dst_offset:dst_offset + src.nbytes] = src
        self.enqueue(command, trace)

    def read(self, dst: np.ndarray, src: RuntimeBuffer, src_offset: int, trace: CommandTrace | None) -> None:
        def command() -> None:
            dst[...] = src.handle.bytes[src_offset:src_offset + dst.nbytes]
        self.enqueue(command, trace)

    def fill(self, dst: RuntimeBuffer, offset: int, nbytes: int, pattern: bytes, trace: CommandTrace | None) -> None:
        unit = np.frombuffer(pattern, np.dtype(f"u{len(pattern)}"))[0]

        def command() -> None:
            dst.handle.bytes[offset:offset + nbytes].view(unit.dtype)[...] = unit
        self.enqueue(command, trace)

    def launch(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any],
               trace: CommandTrace | None) -> None:
        self.enqueue(lambda: interpret(exe.kernel, grid, block, kernel_args(exe.kernel, args, device_bytes)), trace)

    def record(self) -> RuntimeEvent:
        return RuntimeEvent(driver.Event(self.stream))

    def wait(self, event: EventImpl) -> None:
        assert isinstance(event, RuntimeEvent)
        other = event.event
        self.stream.enqueue(lambda: other.stream.wait(other.seq, None))  # cuStreamWaitEvent

    def synchronize(self) -> None:
        self.stream.wait(self.stream.submitted, None)
        error = self.stream.take_error()
        if isinstance(error, HalError):
            raise error
        if error is not None:
            raise DeviceFault(f"runtime: a command failed: {error!r}") from error

    def idle(self) -> bool:
        return self.stream.completed >= self.stream.submitted and not self.stream.has_error()

    def drain(self, timeout: float) -> bool:
        return self.stream.wait(self.stream.submitted, timeout)

    def close(self) -> None:
        self.stream.destroy()
