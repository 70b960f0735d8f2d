"""CpuQueue and CpuEvent: thin Python over the C runtime's queues (csrc/hal_runtime.c).

Every enqueue is one cffi call (which releases the GIL) plus a few attribute
lookups; the C side copies the command into the queue's ring and returns its
sequence number, which is all an event or a profiling trace needs.

A command holds raw pointers: host arrays of reads and writes, and a kernel's
entry point and name (its shared object must stay loaded). The queue keeps
those objects tagged with the command's sequence number and drops each only
once the worker has passed it, whichever thread synchronises.
"""

from __future__ import annotations

import ctypes
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import numpy as np

from hal.backend import CommandTrace, DeviceFault, Dim3, EventImpl, InvalidHandleError, OutOfMemoryError, QueueImpl

from ._runtime import ffi, lib

if TYPE_CHECKING:
    from ._device import CpuBuffer, CpuDevice

_copy_at = lib.hal_queue_copy_at
_fill_at = lib.hal_queue_fill_at
_launch_bytes = lib.hal_queue_launch_bytes
_from_buffer = ffi.from_buffer
_ALL = 2**64 - 1
"""A sequence number past any submitted one: hal_queue_wait_host then waits for the last."""
EXIT_WAIT_S = 2.0
"""At interpreter exit, how long closing a queue waits for its commands, then as long again for
the running launches to stop once aborted; past that the queue is left to the process's end."""
_KEEP_MAX = 2048
"""Kept objects past which an enqueue first drops those of completed commands. Twice the C ring
(1024 pending commands at most), so that most of them have completed by then."""

T = TypeVar("T")


class CpuExecutable(Protocol):
    """What ``CpuQueue.launch`` needs of a compiled kernel (hal_kernel_abi.h is the contract).

    A CpuKernel also carries ``cpu_target`` (see :func:`launch_target`); ``launch`` stores it on
    any other executable at its first launch."""

    entry: Any
    """cffi function pointer to ``void entry(const hal_launch *, int64_t begin, int64_t end)``."""
    cpu_target: tuple[Any, Any]
    """Made by :func:`launch_target` at the first launch of an executable that lacks it."""

    def pack(self, args: Sequence[Any]) -> bytes:
        """The launch arguments as 8-byte slots in parameter order (hal_kernel_abi.h)."""
        ...


def launch_target(exe: Any) -> tuple[Any, Any]:
    """``(entry, where)`` as ``hal_queue_launch_bytes`` takes them: the entry cast to the runtime's
    ``hal_kernel_fn`` and the kernel's name for fault messages (NULL: none). A CpuKernel has it as
    ``cpu_target``; any other executable gets it made once and stored on it under that name."""
    target = (ffi.cast("hal_kernel_fn", exe.entry), ffi.NULL)
    exe.cpu_target = target
    return target


def _take_done(items: deque[tuple[int, T]], done: int) -> list[tuple[int, T]]:
    """Remove and return the items at the front of ``items`` whose command ``done`` covers.

    Lock-free, for any number of threads: an item taken out and found pending goes back to the
    front, so an item leaves only once its command completed (an item appended late, behind a
    newer one, waits for that one)."""
    taken = []
    while items:
        try:
            item = items.popleft()
        except IndexError:  # another thread took the last one
            break
        if item[0] > done:
            items.appendleft(item)
            break
        taken.append(item)
    return taken


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

    def wait(self, timeout: float) -> bool:
        handle = self.queue.handle
        return handle is None or bool(lib.hal_queue_wait_host_for(handle, self.seq, timeout))

    def time(self) -> float:
        """CLOCK_MONOTONIC seconds when the marker ran (the queue keeps the last 65536)."""
        times = self.queue.times(self.seq)
        if times is None:
            raise InvalidHandleError("cpu: the time of this event is gone (its queue was closed or ran more "
                                     "than 65536 commands since); call elapsed() sooner")
        return times[1]


class CpuQueue(QueueImpl["CpuBuffer"]):
    """One C queue, served by its own worker thread."""

    handle: Any = None

    def __init__(self, device: CpuDevice) -> None:
        handle = lib.hal_queue_create()
        if handle == ffi.NULL:
            raise OutOfMemoryError("cpu: cannot create a queue (no memory or thread for its worker); "
                                   "close queues you no longer use")
        self.device = device
        self.handle: Any = ffi.gc(handle, lib.hal_queue_destroy)
        """cdata ``hal_queue *`` (destroyed by close, or when collected); None once closed."""
        self._keep: deque[tuple[int, Any]] = deque()
        """(seq, object) of what pending commands point to: host arrays, executables."""
        self._traces: deque[tuple[int, CommandTrace]] = deque()
        self._times = ffi.new("double[2]")
        self._fault = ffi.new("char[]", lib.HAL_FAULT_MESSAGE)

    def __del__(self) -> None:
        # Drain before the kept objects go: collected in a reference cycle, they could go first.
        self.close()

    # ------------------------------------------------------------ commands
    def copy(self, dst: CpuBuffer, dst_offset: int, src: CpuBuffer, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None:
        seq = _copy_at(self.handle, dst.handle, dst_offset, src.handle, src_offset, nbytes)
        if trace is not None:
            self._traces.append((seq, trace))

    def write(self, dst: CpuBuffer, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        host = _from_buffer(src)
        seq = _copy_at(self.handle, dst.handle, dst_offset, host, 0, src.nbytes)
        keep = self._keep
        keep.append((seq, host))
        if len(keep) > _KEEP_MAX:
            self._release_done()
        if trace is not None:
            self._traces.append((seq, trace))

    def read(self, dst: np.ndarray, src: CpuBuffer, src_offset: int, trace: CommandTrace | None) -> None:
        host = _from_buffer(dst)  # the core passes a writable array
        seq = _copy_at(self.handle, host, 0, src.handle, src_offset, dst.nbytes)
        keep = self._keep
        keep.append((seq, host))
        if len(keep) > _KEEP_MAX:
            self._release_done()
        if trace is not None:
            self._traces.append((seq, trace))

    def fill(self, dst: CpuBuffer, offset: int, nbytes: int, pattern: bytes, trace: CommandTrace | None) -> None:
        seq = _fill_at(self.handle, dst.handle, offset, nbytes, pattern, len(pattern))
        if trace is not None:
            self._traces.append((seq, trace))

    def launch(self, exe: CpuExecutable, grid: Dim3, block: Dim3, args: Sequence[Any],  # type: ignore[override]
               trace: CommandTrace | None) -> None:
        try:
            fn, where = exe.cpu_target
        except AttributeError:
            fn, where = launch_target(exe)
        packed = exe.pack(args)
        seq = _launch_bytes(self.handle, fn, grid, block, packed, len(packed), where)
        keep = self._keep
        keep.append((seq, exe))
        if len(keep) > _KEEP_MAX:
            self._release_done()
        if trace is not None:
            self._traces.append((seq, trace))

    def keep(self, seq: int, obj: Any) -> None:
        """Hold ``obj`` until command ``seq`` has completed (a graph whose commands point into it)."""
        keep = self._keep
        keep.append((seq, obj))
        if len(keep) > _KEEP_MAX:
            self._release_done()

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
        if self._keep or self._traces:
            self._release_done()
        if lib.hal_queue_take_fault(self.handle, self._fault, len(self._fault)):
            raise DeviceFault(ffi.string(self._fault).decode("utf-8", "replace"))

    def idle(self) -> bool:
        handle = self.handle
        return handle is None or bool(lib.hal_queue_idle(handle))

    def drain(self, timeout: float) -> bool:
        handle = self.handle
        if handle is None:
            return True
        if not lib.hal_queue_wait_host_for(handle, _ALL, timeout):
            return False
        self._release_done()
        return True

    def abort(self) -> bool:
        handle = self.handle
        return handle is not None and bool(lib.hal_queue_abort(handle))

    def _release_done(self) -> None:
        """Drop what completed commands kept alive, and give their profiled commands their run
        times on the worker thread (device time = wall time here)."""
        handle = self.handle
        done = lib.hal_queue_completed(handle) if handle is not None else _ALL
        _take_done(self._keep, done)
        for seq, trace in _take_done(self._traces, done):
            times = self.times(seq)
            if times is not None:
                trace.wall_start = trace.device_start = times[0]
                trace.wall_s = trace.device_s = times[1] - times[0]

    def close(self) -> None:
        """Drain and destroy the C queue (joins its worker thread). At interpreter exit a kernel
        that never ends must not keep the process alive: see :func:`_settle_at_exit`."""
        handle = self.handle
        if handle is not None:
            if sys.is_finalizing() and not _settle_at_exit(handle):
                ffi.gc(handle, None)  # destroying it would join a worker that never returns
                # and the running kernel's object must stay loaded (the interpreter's teardown
                # would dlclose it under the worker): what the commands use lives on to the end
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(self._keep))
                self.handle = None
                return
            lib.hal_queue_wait_host(handle, _ALL)
            self._release_done()  # while the times of traced commands are still there
            ffi.release(handle)
            self.handle = None
            self._keep.clear()  # drained (or, in a fork child, a parent's queue whose commands never run here)


def _settle_at_exit(handle: Any) -> bool:
    """Give the queue's commands :data:`EXIT_WAIT_S` to finish, then abort what still runs (a
    ``while`` loop stops at its next iteration) for as long again; False if it is still busy."""
    if lib.hal_queue_wait_host_for(handle, _ALL, EXIT_WAIT_S):
        return True
    deadline = time.monotonic() + EXIT_WAIT_S
    while time.monotonic() < deadline:
        lib.hal_queue_abort(handle)
        if lib.hal_queue_wait_host_for(handle, _ALL, 0.05):
            return True
    return False
