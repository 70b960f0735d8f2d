"""OpenCLQueue and OpenCLEvent: an in-order command queue with profiling, and its cl.Events.

Every command returns its cl.Event; the queue keeps the last one (``idle``, ``drain``) and, for
profiled commands, (event, trace) pairs whose device times it fills at the next synchronize. A
cross-queue wait is a barrier with an event wait list. Kernels that can fault write the queue's
fault record (hal.kernel.simt); ``synchronize`` reads it after such launches and raises the
first fault as a DeviceFault naming kernel, line and thread. Each queue launches through kernel
objects of its own (:class:`Bound`) and waits with time limits through its :class:`Waiter`.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyopencl as cl

from hal.backend import CommandTrace, DeviceFault, Dim3, EventImpl, HalError, OutOfMemoryError, QueueImpl, Waiter
from hal.kernel import simt

if TYPE_CHECKING:
    from ._compiler import OpenCLKernel
    from ._device import OpenCLBuffer, OpenCLDevice

_OUT_OF_MEMORY = {cl.status_code.MEM_OBJECT_ALLOCATION_FAILURE, cl.status_code.OUT_OF_RESOURCES,
                  cl.status_code.OUT_OF_HOST_MEMORY}


def _hal_error(exc: cl.Error, what: str) -> HalError:
    """A pyopencl error as the hal error a user can act on (drivers allocate lazily, so running out
    of memory can surface at an enqueue or a finish, not only at allocation)."""
    code = exc.code if isinstance(exc.code, int) else None
    if isinstance(exc, cl.MemoryError) or code in _OUT_OF_MEMORY:
        return OutOfMemoryError(f"opencl: {what}: the device ran out of memory or resources ({exc}); free "
                                "arrays, use smaller ones, or smaller work-groups")
    return DeviceFault(f"opencl: {what} failed: {exc}")


_COMPLETE = cl.command_execution_status.COMPLETE
BOUND_LIMIT = 32
"""Kernel objects a queue keeps for reuse, least recently launched dropped first: each holds its
program (PoCL: a loaded shared object, about 2 MB and a few memory maps), which would otherwise
live as long as the queue, and the default queue lives as long as the device."""


def done(event: cl.Event) -> bool:
    return bool(event.command_execution_status <= _COMPLETE)  # negative: failed, also over


_wait_for_events = ctypes.CDLL("libOpenCL.so.1").clWaitForEvents  # discovery found it (_backend)
_wait_for_events.argtypes = (ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p))
_wait_for_events.restype = ctypes.c_int


def _block(event: cl.Event) -> None:
    """The Waiter thread's blocking wait, through ctypes rather than pyopencl. The thread is a
    daemon, and Python ends a daemon thread that comes back to take the GIL during interpreter
    finalization with pthread_exit: unwinding through pyopencl's C++ frames (noexcept) there is
    std::terminate, "terminate called without an active exception", so a kernel that ended while
    the interpreter exited aborted the process. A failed command's status is the queue's
    synchronize's to report."""
    _wait_for_events(1, ctypes.byref(ctypes.c_void_p(event.int_ptr)))


class Bound:
    """A queue's own kernel object of a built program, with the argument values it last set: a
    launch sets only the slots that changed (pyopencl's invoker sets all of them, 0.5-10 us each),
    and queues never share argument slots, so launches on different queues never wait for each other."""

    def __init__(self, exe: OpenCLKernel, faults: cl.Buffer) -> None:
        self.kernel = cl.Kernel(exe.program, exe.source.entry)
        layout = exe.layout
        buffers = (*layout.buffers, len(layout.codes))  # the fault record is a buffer too
        self.packs = [None if slot in buffers else struct.Struct("=" + code)
                      for slot, code in enumerate(layout.entry_codes)]
        self.last: list[Any] = [None] * len(self.packs)
        self.kernel.set_arg(len(layout.codes), faults)
        self.last[len(layout.codes)] = faults

    def set(self, values: Sequence[Any]) -> None:
        """Set ``values`` (one per slot); a scalar is compared by its bytes (-0.0 is not 0.0)."""
        kernel, last = self.kernel, self.last
        for slot, (value, pack) in enumerate(zip(values, self.packs)):
            if pack is None:
                if value is not last[slot]:
                    kernel.set_arg(slot, value)
                    last[slot] = value
            else:
                data = pack.pack(value)
                if data != last[slot]:
                    kernel._set_arg_buf(slot, data)  # type: ignore[attr-defined]  # pyopencl's invokers use it; set_arg takes ~9 us
                    last[slot] = data


class OpenCLEvent(EventImpl):
    def __init__(self, event: cl.Event, waiter: Waiter[cl.Event]) -> None:
        self.event = event
        self.waiter = waiter

    def query(self) -> bool:
        return done(self.event)

    def synchronize(self) -> None:
        self.event.wait()

    def wait(self, timeout: float) -> bool:
        return self.waiter.wait(self.event, timeout)

    def time(self) -> float:
        return float(self.event.profile.end) * 1e-9


class OpenCLQueue(QueueImpl["OpenCLBuffer"]):
    def __init__(self, device: OpenCLDevice) -> None:
        self.queue = cl.CommandQueue(device.context, device.device,
                                     properties=cl.command_queue_properties.PROFILING_ENABLE)
        self.faults = cl.Buffer(device.context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                                hostbuf=np.zeros(simt.FAULT_WORDS, np.int32))
        self._lock = threading.Lock()
        self._last: cl.Event | None = None
        self._traces: list[tuple[cl.Event, CommandTrace]] = []
        self._faulting: list[OpenCLKernel] = []
        """Launches since the last synchronize whose kernels can write the fault record, by number."""
        self._bound: OrderedDict[OpenCLKernel, Bound] = OrderedDict()
        """The kernel objects of the last BOUND_LIMIT executables launched here, oldest first."""
        self._waiter: Waiter[cl.Event] = Waiter(done, _block)

    def _issue(self, enqueue: Callable[[], cl.Event], trace: CommandTrace | None) -> None:
        """Enqueue and note the event under one lock: ``_last`` must be the queue's newest command
        (threads sharing the queue would otherwise leave an older one there, and ``idle`` lie)."""
        with self._lock:
            try:
                event = self._last = enqueue()
            except cl.Error as exc:
                raise _hal_error(exc, "enqueue") from None
            if trace is not None:
                self._traces.append((event, trace))

    # ------------------------------------------------------------ commands
    def copy(self, dst: OpenCLBuffer, dst_offset: int, src: OpenCLBuffer, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None:
        self._issue(lambda: cl.enqueue_copy(self.queue, dst.handle, src.handle, byte_count=nbytes,
                                            src_offset=src_offset, dst_offset=dst_offset), trace)

    def write(self, dst: OpenCLBuffer, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        self._issue(lambda: cl.enqueue_copy(self.queue, dst.handle, src, dst_offset=dst_offset, is_blocking=False),
                    trace)

    def read(self, dst: np.ndarray, src: OpenCLBuffer, src_offset: int, trace: CommandTrace | None) -> None:
        self._issue(lambda: cl.enqueue_copy(self.queue, dst, src.handle, src_offset=src_offset, is_blocking=False),
                    trace)

    def fill(self, dst: OpenCLBuffer, offset: int, nbytes: int, pattern: bytes, trace: CommandTrace | None) -> None:
        self._issue(lambda: cl.enqueue_fill_buffer(self.queue, dst.handle, np.frombuffer(pattern, np.uint8), offset,
                                                   nbytes), trace)

    def launch(self, exe: OpenCLKernel, grid: Dim3, block: Dim3, args: Sequence[Any],  # type: ignore[override]
               trace: CommandTrace | None) -> None:
        values = exe.layout.values(args)
        size = (grid[0] * block[0], grid[1] * block[1], grid[2] * block[2])

        def enqueue() -> cl.Event:  # under the queue's lock
            number = 0
            if exe.source.can_fault:
                number = len(self._faulting)
                self._faulting.append(exe)
            bound = self._bound.get(exe)
            if bound is None:
                bound = self._bound[exe] = Bound(exe, self.faults)
                if len(self._bound) > BOUND_LIMIT:
                    self._bound.popitem(last=False)  # an enqueued launch keeps its kernel itself
            else:
                self._bound.move_to_end(exe)
            bound.set([*values, self.faults, number])
            return cl.enqueue_nd_range_kernel(self.queue, bound.kernel, size, block)
        self._issue(enqueue, trace)

    # ------------------------------------------------------------ ordering
    def record(self) -> OpenCLEvent:
        with self._lock:
            event = self._last = cl.enqueue_marker(self.queue)
        return OpenCLEvent(event, self._waiter)

    def wait(self, event: EventImpl) -> None:
        assert isinstance(event, OpenCLEvent)
        with self._lock:
            self._last = cl.enqueue_barrier(self.queue, wait_for=[event.event])

    def synchronize(self) -> None:
        try:
            self.queue.finish()
        except cl.Error as exc:
            raise _hal_error(exc, "synchronize") from None
        self._settle()

    def idle(self) -> bool:
        with self._lock:
            last, pending = self._last, bool(self._faulting or self._traces)
        return not pending and (last is None or done(last))

    def drain(self, timeout: float) -> bool:
        self.queue.flush()
        with self._lock:
            last = self._last
        return last is None or self._waiter.wait(last, timeout)

    def close(self) -> None:
        self.queue.finish()
        self._waiter.close()
        with self._lock:
            self._settle_traces()
            self._faulting.clear()
            self._bound.clear()  # the kernel objects, and the buffers they last had set

    def _settle(self) -> None:
        """After a finish: give profiled commands their device times, then raise the first fault."""
        with self._lock:
            self._settle_traces()
            faulting, self._faulting = self._faulting, []
        if not faulting:
            return
        record = np.zeros(simt.FAULT_WORDS, np.int32)
        cl.enqueue_copy(self.queue, record, self.faults, is_blocking=True)
        fault = simt.first_fault(record, faulting)
        if fault is not None:
            cl.enqueue_fill_buffer(self.queue, self.faults, np.zeros(1, np.int32), 0, record.nbytes).wait()
            raise fault

    def _settle_traces(self) -> None:
        for event, trace in self._traces:
            start, end = event.profile.start * 1e-9, event.profile.end * 1e-9
            trace.device_start, trace.device_s = start, end - start
        self._traces.clear()
