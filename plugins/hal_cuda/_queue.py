"""CudaQueue and CudaEvent: a non-blocking CUDA stream, and timing events on it.

Commands are driver calls on the stream (``cuMemcpy*Async``, ``cuMemsetD*Async``,
``cuLaunchKernel``); ``idle`` is ``cuStreamQuery``, so nothing is recorded per command; bounded waits go through a
Waiter blocked in ``cuStreamSynchronize``/``cuEventSynchronize`` on its own thread. A
cross-queue wait is ``cuStreamWaitEvent``. Profiled commands are bracketed by two timing events
whose times the next synchronize gives to their traces. Kernels that can fault write the queue's
fault record (hal.kernel.simt); ``synchronize`` reads it after such launches and raises the first
fault as a DeviceFault naming kernel, line and thread.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from cuda.bindings import driver
from cuda.core import EventOptions

from hal.backend import CommandTrace, Dim3, EventImpl, QueueImpl, Waiter
from hal.kernel import simt

from ._driver import R, check, core_error, error, make_current

if TYPE_CHECKING:
    from ._compiler import CudaKernel
    from ._device import CudaBuffer, CudaDevice

TIMED = EventOptions(timing_enabled=True)
"""Every event records device time: ``Event.elapsed`` and profiles read it."""


class CudaEvent(EventImpl):
    def __init__(self, event: Any, device: CudaDevice, waiter: Waiter[CudaEvent | None]) -> None:
        self.event = event
        self.device = device
        self.waiter = waiter

    def query(self) -> bool:
        return bool(self.event.is_done)

    def synchronize(self) -> None:
        make_current(self.device.context)
        try:
            self.event.sync()
        except Exception as exc:  # cuda.core's CUDAError: a fault of the work before the event
            raise core_error(exc, "waiting for an event") from None

    def wait(self, timeout: float) -> bool:
        return self.waiter.wait(self, timeout)

    def time(self) -> float:
        return float(self.event - self.device.epoch) * 1e-3


class CudaQueue(QueueImpl["CudaBuffer"]):
    def __init__(self, device: CudaDevice) -> None:
        self.device = device
        self.stream = device.device.create_stream()
        self.handle = self.stream.handle
        self.faults = device.allocate(simt.FAULT_WORDS * 4)
        check(driver.cuMemsetD32Async(self.faults.handle, 0, simt.FAULT_WORDS, self.handle), "cuMemsetD32Async")
        self._lock = threading.Lock()
        self._traces: list[tuple[Any, Any, CommandTrace]] = []
        self._faulting: list[CudaKernel] = []
        """Launches since the last synchronize whose kernels can write the fault record, by number."""
        self._waiter: Waiter[CudaEvent | None] = Waiter(self._over, self._block)
        """Bounded waits for an event, or for the whole stream (the token None)."""

    def _over(self, token: CudaEvent | None) -> bool:
        if token is not None:
            return token.query()
        return bool(driver.cuStreamQuery(self.handle)[0] != R.CUDA_ERROR_NOT_READY)

    def _block(self, token: CudaEvent | None) -> None:
        """On the waiter's thread (the context made current there): errors are the synchronize's to report."""
        make_current(self.device.context)
        if token is None:
            driver.cuStreamSynchronize(self.handle)
        else:
            driver.cuEventSynchronize(token.event.handle)

    def _begin(self, trace: CommandTrace | None) -> Any:
        make_current(self.device.context)
        return None if trace is None else self.stream.record(options=TIMED)

    def _end(self, start: Any, trace: CommandTrace | None) -> None:
        if trace is not None:
            end = self.stream.record(options=TIMED)
            with self._lock:
                self._traces.append((start, end, trace))

    # ------------------------------------------------------------ commands
    def copy(self, dst: CudaBuffer, dst_offset: int, src: CudaBuffer, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None:
        start = self._begin(trace)
        check(driver.cuMemcpyDtoDAsync(dst.handle + dst_offset, src.handle + src_offset, nbytes, self.handle),
              "cuMemcpyDtoDAsync")
        self._end(start, trace)

    def write(self, dst: CudaBuffer, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        start = self._begin(trace)
        check(driver.cuMemcpyHtoDAsync(dst.handle + dst_offset, src.ctypes.data, src.nbytes, self.handle),
              "cuMemcpyHtoDAsync")
        self._end(start, trace)

    def read(self, dst: np.ndarray, src: CudaBuffer, src_offset: int, trace: CommandTrace | None) -> None:
        start = self._begin(trace)
        check(driver.cuMemcpyDtoHAsync(dst.ctypes.data, src.handle + src_offset, dst.nbytes, self.handle),
              "cuMemcpyDtoHAsync")
        self._end(start, trace)

    def fill(self, dst: CudaBuffer, offset: int, nbytes: int, pattern: bytes, trace: CommandTrace | None) -> None:
        start = self._begin(trace)
        at, size = dst.handle + offset, len(pattern)
        if size == 8 and pattern[:4] != pattern[4:]:  # two interleaved 32-bit fills with a pitch of 8 bytes
            for half in (0, 4):
                word = int.from_bytes(pattern[half:half + 4], "little")
                check(driver.cuMemsetD2D32Async(at + half, 8, word, 1, nbytes // 8, self.handle), "cuMemsetD2D32Async")
        else:
            size = min(size, 4)
            value = int.from_bytes(pattern[:size], "little")
            memset = {1: driver.cuMemsetD8Async, 2: driver.cuMemsetD16Async, 4: driver.cuMemsetD32Async}[size]
            check(memset(at, value, nbytes // size, self.handle), "cuMemsetD*Async")
        self._end(start, trace)

    def launch(self, exe: CudaKernel, grid: Dim3, block: Dim3, args: Sequence[Any],  # type: ignore[override]
               trace: CommandTrace | None) -> None:
        values = exe.layout.values(args)
        number = 0
        if exe.source.can_fault:
            with self._lock:
                number = len(self._faulting)
                self._faulting.append(exe)
        start = self._begin(trace)
        with exe.lock:  # the argument block is shared: pack and launch together (the driver copies it)
            exe.params.pack(values, self.faults.handle, number)
            err, = driver.cuLaunchKernel(exe.function, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                         0, self.handle, exe.params.address, 0)
        if err != R.CUDA_SUCCESS:
            raise error(err, f"launch of kernel '{exe.kernel.name}'")
        self._end(start, trace)

    # ------------------------------------------------------------ ordering
    def record(self) -> CudaEvent:
        make_current(self.device.context)
        try:
            return CudaEvent(self.stream.record(options=TIMED), self.device, self._waiter)
        except Exception as exc:  # cuda.core's CUDAError
            raise core_error(exc, "recording an event") from None

    def wait(self, event: EventImpl) -> None:
        assert isinstance(event, CudaEvent)
        make_current(self.device.context)
        try:
            self.stream.wait(event.event)
        except Exception as exc:  # cuda.core's CUDAError
            raise core_error(exc, "a cross-queue wait") from None

    def synchronize(self) -> None:
        make_current(self.device.context)
        check(driver.cuStreamSynchronize(self.handle), "synchronize")
        self._settle()

    def idle(self) -> bool:
        with self._lock:
            if self._faulting or self._traces:
                return False
        err, = driver.cuStreamQuery(self.handle)
        return bool(err == R.CUDA_SUCCESS)

    def drain(self, timeout: float) -> bool:
        return self._waiter.wait(None, timeout)

    def close(self) -> None:
        make_current(self.device.context)
        check(driver.cuStreamSynchronize(self.handle), "synchronize")
        with self._lock:
            self._settle_traces()
            self._faulting.clear()
        self._waiter.close()
        self.device.free(self.faults)
        self.stream.close()

    def _settle(self) -> None:
        """After a synchronize: give profiled commands their device times, then raise the first fault."""
        with self._lock:
            self._settle_traces()
            faulting, self._faulting = self._faulting, []
        if not faulting:
            return
        record = np.zeros(simt.FAULT_WORDS, np.int32)
        check(driver.cuMemcpyDtoH(record.ctypes.data, self.faults.handle, record.nbytes), "cuMemcpyDtoH")
        fault = simt.first_fault(record, faulting)
        if fault is not None:
            check(driver.cuMemsetD32(self.faults.handle, 0, simt.FAULT_WORDS), "cuMemsetD32")
            raise fault

    def _settle_traces(self) -> None:
        epoch = self.device.epoch
        for start, end, trace in self._traces:
            trace.device_start, trace.device_s = (start - epoch) * 1e-3, (end - start) * 1e-3
        self._traces.clear()

