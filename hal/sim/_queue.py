"""SimQueue: commands run in order on a worker thread; a simulated clock measures them.

The clock advances by each command's modelled duration, so ``Event.elapsed``
reports what the modelled hardware would take, independent of how fast the
host simulates it. Faults are kept and raised by the next ``synchronize``.

All queues of a device share one time base: a command cannot start before the
latest device time the host has waited for (``SimDevice.host_now``), as on real
hardware where work submitted after a synchronisation starts after it. Queues
with work in flight at once overlap (each is modelled as if it had the device).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import DeviceFault, HalError
from ..backend import CommandTrace, Dim3, EventImpl, Executable, QueueImpl
from ..kernel.interpreter import ABORT

if TYPE_CHECKING:
    from ._device import HostBuffer, SimDevice

Work = Callable[[], "tuple[float, dict[str, Any]]"]


class SimEvent(EventImpl):
    __slots__ = ("queue", "seq", "stamp")

    def __init__(self, queue: SimQueue, seq: int) -> None:
        self.queue = queue
        self.seq = seq
        self.stamp = 0.0

    def query(self) -> bool:
        return self.queue.completed >= self.seq

    def synchronize(self) -> None:
        self.wait(None)

    def wait(self, timeout: float | None) -> bool:
        if not self.queue.wait_for(self.seq, timeout):
            return False
        self.queue.device.observe(self.stamp)
        return True

    def time(self) -> float:
        return self.stamp


class SimQueue(QueueImpl["HostBuffer"]):
    def __init__(self, device: SimDevice) -> None:
        self.device = device
        self.clock = 0.0
        self.submitted = 0
        self.completed = 0
        self._work: collections.deque[tuple[Work, CommandTrace | None, float]] = collections.deque()
        self._cond = threading.Condition()
        self._fault: BaseException | None = None
        self._closed = False
        self._abort: threading.Event | None = None
        """Set to stop the running command (the interpreter checks it in ``while`` loops)."""
        self._running: str | None = None
        """The kernel the worker thread runs now (a timeout names it)."""
        self._thread = threading.Thread(target=self._serve, name="hal-sim-queue", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ enqueue
    def submit(self, work: Work, trace: CommandTrace | None = None) -> int:
        """Enqueue a backend-defined command: ``work()`` runs in order on the worker thread and
        returns (simulated seconds, counters); it may raise DeviceFault. Returns its sequence number."""
        with self._cond:
            self.submitted += 1
            self._work.append((work, trace, self.device.host_now))
            self._cond.notify_all()
            return self.submitted

    def copy(self, dst: HostBuffer, dst_offset: int, src: HostBuffer, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None:
        def work() -> tuple[float, dict[str, Any]]:
            dst.handle[dst_offset:dst_offset + nbytes] = src.handle[src_offset:src_offset + nbytes]
            return self.device.transfer_seconds("copy_d2d", nbytes), {"bytes": nbytes}
        self.submit(work, trace)

    def write(self, dst: HostBuffer, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        def work() -> tuple[float, dict[str, Any]]:
            dst.handle[dst_offset:dst_offset + src.nbytes] = src
            return self.device.transfer_seconds("copy_h2d", src.nbytes), {"bytes": src.nbytes}
        self.submit(work, trace)

    def read(self, dst: np.ndarray, src: HostBuffer, src_offset: int, trace: CommandTrace | None) -> None:
        def work() -> tuple[float, dict[str, Any]]:
            dst[...] = src.handle[src_offset:src_offset + dst.nbytes]
            return self.device.transfer_seconds("copy_d2h", dst.nbytes), {"bytes": dst.nbytes}
        self.submit(work, trace)

    def fill(self, dst: HostBuffer, offset: int, nbytes: int, pattern: bytes, trace: CommandTrace | None) -> None:
        unit = np.dtype(f"u{len(pattern)}")
        value = np.frombuffer(pattern, dtype=unit)[0]

        def work() -> tuple[float, dict[str, Any]]:
            region = dst.handle[offset:offset + nbytes]
            region.view(unit)[...] = value
            return self.device.transfer_seconds("fill", nbytes), {"bytes": nbytes}
        self.submit(work, trace)

    def launch(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any],
               trace: CommandTrace | None) -> None:
        name = exe.kernel.name

        def work() -> tuple[float, dict[str, Any]]:
            self._running = name
            try:
                return self.device.execute(exe, grid, block, args)
            finally:
                self._running = None
        self.submit(work, trace)

    def record(self) -> EventImpl:
        event: SimEvent | None = None

        def work() -> tuple[float, dict[str, Any]]:
            assert event is not None
            event.stamp = self.clock
            return 0.0, {}
        with self._cond:
            event = SimEvent(self, self.submitted + 1)
            self.submit(work)
        return event

    def wait(self, event: EventImpl) -> None:
        assert isinstance(event, SimEvent)

        def work() -> tuple[float, dict[str, Any]]:
            event.queue.wait_for(event.seq, None)  # a device-side wait: the host observes nothing
            self.clock = max(self.clock, event.stamp)
            return 0.0, {}
        self.submit(work)

    # ------------------------------------------------------------ completion
    def wait_for(self, seq: int, timeout: float | None) -> bool:
        """Block until command ``seq`` completed (at most ``timeout`` seconds); True when it has."""
        with self._cond:
            return self._cond.wait_for(lambda: self.completed >= seq, timeout)

    def idle(self) -> bool:
        return self.completed >= self.submitted and self._fault is None

    def drain(self, timeout: float | None) -> bool:
        with self._cond:
            done = self._cond.wait_for(lambda: self.completed >= self.submitted, timeout)
            clock = self.clock
        if done:
            self.device.observe(clock)
        return done

    def abort(self) -> bool:
        """Stop the running kernel at its next ``while`` iteration or work-group chunk (a DeviceFault
        for the next synchronize); the worker thread then serves later commands as usual."""
        with self._cond:
            stop, running = self._abort, self._running
        if stop is None or running is None:
            return False
        stop.set()
        return True

    def running(self) -> str | None:
        return self._running

    def synchronize(self) -> None:
        self.drain(None)
        with self._cond:
            fault, self._fault = self._fault, None
        if fault is not None:
            raise fault

    def close(self) -> None:
        self.synchronize()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._work and not self._closed:
                    self._cond.wait()
                if not self._work:
                    return
                work, trace, floor = self._work.popleft()
            self.clock = max(self.clock, floor)
            start_wall, start_clock = time.perf_counter(), self.clock
            stop = threading.Event()
            with self._cond:
                self._abort = stop
            token = ABORT.set(stop)
            try:
                seconds, counters = work()
            except HalError as exc:
                seconds, counters = 0.0, {"fault": str(exc)}
                self._keep_fault(exc)
            except Exception as exc:  # a simulator bug must not hang the queue
                seconds, counters = 0.0, {"fault": repr(exc)}
                self._keep_fault(DeviceFault(f"simulator error in {self.device.info().name}: {exc!r}"))
            finally:
                ABORT.reset(token)
                with self._cond:
                    self._abort = None
            del work  # the closure holds the command's buffers: not while the queue idles (shared memory)
            self.clock += seconds
            if trace is not None:
                trace.wall_start, trace.wall_s = start_wall, time.perf_counter() - start_wall
                trace.device_start, trace.device_s = start_clock, seconds
                trace.counters.update(counters)
            with self._cond:
                self.completed += 1
                self._cond.notify_all()

    def _keep_fault(self, exc: BaseException) -> None:
        with self._cond:
            if self._fault is None:
                self._fault = exc
