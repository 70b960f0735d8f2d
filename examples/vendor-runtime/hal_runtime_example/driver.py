"""A stand-in for a vendor SDK: device memory, in-order command streams on worker threads, events.

Replace it with your SDK's bindings (cffi, ctypes, pybind11): hal's side of the plugin only needs
calls of this shape, which CUDA (cuMemAlloc, cuStream*, cuEvent*) and OpenCL (clCreateBuffer,
command queues, cl_event) both have.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np


class Memory:
    """A device allocation (cuMemAlloc): here host bytes the program cannot map."""

    def __init__(self, nbytes: int) -> None:
        self.bytes = np.zeros(nbytes, np.uint8)


class Stream:
    """An in-order command stream (cuStream): commands run one by one on the stream's thread.

    The first exception a command raises is kept until ``take_error``; later commands still run."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._work: deque[Callable[[], None]] = deque()
        self.submitted = 0
        self.completed = 0
        self._error: BaseException | None = None
        self._closed = False
        threading.Thread(target=self._run, name="runtime-stream", daemon=True).start()

    def enqueue(self, command: Callable[[], None]) -> int:
        """Queue ``command``; returns its sequence number."""
        with self._cond:
            self._work.append(command)
            self.submitted += 1
            self._cond.notify_all()
            return self.submitted

    def wait(self, seq: int, timeout: float | None) -> bool:
        """Block until command ``seq`` completed (at most ``timeout`` s); True when it has."""
        with self._cond:
            return self._cond.wait_for(lambda: self.completed >= seq, timeout)

    def take_error(self) -> BaseException | None:
        with self._cond:
            error, self._error = self._error, None
            return error

    def has_error(self) -> bool:
        return self._error is not None

    def destroy(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._work or self._closed)
                if not self._work:
                    return
                command = self._work.popleft()
            try:
                command()
            except BaseException as exc:  # a fault of the device, kept for the host
                with self._cond:
                    self._error = self._error or exc
            with self._cond:
                self.completed += 1
                self._cond.notify_all()


class Event:
    """A marker (cuEventRecord): completes, with a timestamp, when the stream reaches it."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.stamp = 0.0
        self.seq = stream.enqueue(self._reached)

    def _reached(self) -> None:
        self.stamp = time.perf_counter()
