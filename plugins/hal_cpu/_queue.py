"""CpuQueue and CpuEvent: thin Python over the C runtime's queues (csrc/hal_runtime.c).

Every enqueue is one cffi call (which releases the GIL) plus a few attribute
lookups; the C side copies the command into the queue's ring and returns its
sequence number, which is all an event or a profiling trace needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from hal._errors import DeviceFault, InvalidHandleError, OutOfMemoryError
from hal.backend import Buffer, CommandTrace, Dim3, EventImpl, QueueImpl

from ._runtime import ffi, lib

if TYPE_CHECKING:
    from ._device import CpuDevice

_copy_at = lib.hal_queue_copy_at
_fill_at = lib.hal_queue_fill_at
_launch_bytes = lib.hal_queue_launch_bytes
_from_buffer = ffi.from_buffer
_ALL = 2**64 - 1
"""A sequence number past any submitted one: hal_queue_wait_host then waits for the last."""


class CpuExecutable(Protocol):
    """What ``CpuQueue.launch`` needs of a compiled kernel (hal_kernel_abi.h is the contract)."""

    entry: Any
    """cffi function pointer to ``void entry(const hal_launch *, int64_t begin, int64_t end)``."""

    def pack(self, args: Sequence[Any]) -> bytes:
        """The launch arguments as 8-byte slots in parameter order (hal_kernel_abi.h)."""
        ...


class CpuEvent(EventImpl):
    """A marker: the queue's sequence number of a ``hal_queue_marker`` command."""

    def __init__(self, queue: CpuQueue, seq: int) -> None:
        self.queue = queue
        self.seq = seq

    def query(self) -> bool:
        handle = self.queue.handle
        return handle is None or lib.hal_queue_completed(handle) >= self.seq

    def synchronize(self) -> None:
        handle = self.queue.handle
        if handle is not None:
            lib.hal_queue_wait_host(handle, self.seq)

    def time(self) -> float:
        """CLOCK_MONOTONIC seconds when the marker ran (the queue keeps the last 65536)."""
        times = self.queue.times(self.seq)
        if times is None:
            raise InvalidHandleError("cpu: the time of this event is gone (its queue was closed or ran more "
                                     "than 65536 commands since); call elapsed() sooner")
        return times[1]


class CpuQueue(QueueImpl):
    """One C queue, served by its own worker thread."""

    def __init__(self, device: CpuDevice) -> None:
        handle = lib.hal_queue_create()
        if handle == ffi.NULL:
            raise OutOfMemoryError("cpu: cannot create a queue (no memory or thread for its worker); "
                                   "close queues you no longer use")
        self.device = device
        self.handle: Any = ffi.gc(handle, lib.hal_queue_destroy)
        """cdata ``hal_queue *`` (destroyed when collected, or by close); None once closed."""
        self._entries = device.entries
        self._keep: list[Any] = []
        self._traces: list[tuple[int, CommandTrace]] = []
        self._times = ffi.new("double[2]")
        self._fault = ffi.new("char[]", lib.HAL_FAULT_MESSAGE)

    # ------------------------------------------------------------ commands
    def copy(self, dst: Buffer, dst_offset: int, src: Buffer, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None:
        seq = _copy_at(self.handle, dst.ptr, dst_offset, src.ptr, src_offset, nbytes)  # type: ignore[attr-defined]
        if trace is not None:
            self._traces.append((seq, trace))

    def write(self, dst: Buffer, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        host = _from_buffer(src)
        seq = _copy_at(self.handle, dst.ptr, dst_offset, host, 0, src.nbytes)  # type: ignore[attr-defined]
        self._keep.append(host)  # after the enqueue: a concurrent synchronize cannot drop it early
        if trace is not None:
            self._traces.append((seq, trace))

    def read(self, dst: np.ndarray, src: Buffer, src_offset: int, trace: CommandTrace | None) -> None:
        host = _from_buffer(dst)  # the core passes a writable array
        seq = _copy_at(self.handle, host, 0, src.ptr, src_offset, dst.nbytes)  # type: ignore[attr-defined]
        self._keep.append(host)
        if trace is not None:
            self._traces.append((seq, trace))

    def fill(self, dst: Buffer, offset: int, nbytes: int, pattern: bytes, trace: CommandTrace | None) -> None:
        seq = _fill_at(self.handle, dst.ptr, offset, nbytes, pattern, len(pattern))  # type: ignore[attr-defined]
        if trace is not None:
            self._traces.append((seq, trace))

    def launch(self, exe: CpuExecutable, grid: Dim3, block: Dim3, args: Sequence[Any],  # type: ignore[override]
               trace: CommandTrace | None) -> None:
        fn = self._entries.get(exe)
        if fn is None:
            fn = self._entries[exe] = ffi.cast("hal_kernel_fn", exe.entry)
        packed = exe.pack(args)
        seq = _launch_bytes(self.handle, fn, grid, block, packed, len(packed))
        if trace is not None:
            self._traces.append((seq, trace))

    # ------------------------------------------------------------ ordering
    def record(self) -> CpuEvent:
        return CpuEvent(self, lib.hal_queue_marker(self.handle))

    def wait(self, event: EventImpl) -> None:
        other = cast(CpuEvent, event).queue.handle
        if other is not None:  # a closed queue has drained: nothing to wait for
            lib.hal_queue_wait(self.handle, other, cast(CpuEvent, event).seq)

    def times(self, seq: int) -> tuple[float, float] | None:
        """(start, end) CLOCK_MONOTONIC seconds of command ``seq``, or None once forgotten."""
        if self.handle is None or not lib.hal_queue_times(self.handle, seq, self._times, self._times + 1):
            return None
        return self._times[0], self._times[1]

    def synchronize(self) -> None:
        lib.hal_queue_wait_host(self.handle, _ALL)
        self._keep.clear()
        if self._traces:
            self._resolve_traces()
        if lib.hal_queue_take_fault(self.handle, self._fault, len(self._fault)):
            raise DeviceFault(ffi.string(self._fault).decode("utf-8", "replace"))

    def _resolve_traces(self) -> None:
        """Give each profiled command its run time on the worker thread (device time = wall time here)."""
        traces, self._traces = self._traces, []
        for seq, trace in traces:
            times = self.times(seq)
            if times is not None:
                trace.wall_start = trace.device_start = times[0]
                trace.wall_s = trace.device_s = times[1] - times[0]

    def close(self) -> None:
        """Drain and destroy the C queue (joins its worker thread)."""
        if self.handle is not None:
            ffi.release(self.handle)
            self.handle = None
