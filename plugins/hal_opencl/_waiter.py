"""Waiter: bounded waits for cl.Events, which OpenCL cannot bound itself.

``clWaitForEvents`` has no time limit, and a thread blocked in it cannot be interrupted, so the
core's waits (``drain(slice)``, which keeps Ctrl-C and ``synchronize(timeout=)`` working) cannot
call it directly. A queue's Waiter thread makes that call instead and sets a ``threading.Event``
the caller waits on with a time limit. Measured on PoCL, the two alternatives were worse: polling
the event's status with 0.5 ms sleeps made a tiny launch and synchronize take 0.5 ms and a 3 ms
saxpy up to 15 % longer; pyopencl's completion callbacks woke the waiter 0.2-1.2 ms late.
"""

from __future__ import annotations

import queue
import threading
import time

import pyopencl as cl

_COMPLETE = cl.command_execution_status.COMPLETE
SPIN_S = 30e-6
"""How long a wait polls before it hands the event to the thread: a tiny kernel is over by then,
and the two thread switches (about 15 us on PoCL here) are saved."""


def done(event: cl.Event) -> bool:
    return bool(event.command_execution_status <= _COMPLETE)  # negative: failed, also over


class Waiter:
    """One daemon thread (started at the first wait that blocks) serving waits in order."""

    def __init__(self) -> None:
        self._requests: queue.SimpleQueue[tuple[cl.Event, threading.Event] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._watched: tuple[cl.Event, threading.Event] | None = None
        self._thread: threading.Thread | None = None

    def wait(self, event: cl.Event, timeout: float) -> bool:
        """True once ``event`` is over (complete or failed); False if ``timeout`` s passed first."""
        spin_end = time.perf_counter() + min(SPIN_S, timeout)
        while not done(event):
            if time.perf_counter() >= spin_end:
                break
        else:
            return True
        with self._lock:
            watched = self._watched
            if watched is None or watched[0] is not event:  # a repeated slice of one wait reuses its request
                watched = self._watched = (event, threading.Event())
                self._requests.put(watched)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name="hal-opencl-waiter", daemon=True)
                    self._thread.start()
        return watched[1].wait(timeout)

    def close(self) -> None:
        """End the thread after the waits already asked for."""
        with self._lock:
            if self._thread is not None:
                self._requests.put(None)
                self._thread = None

    def _serve(self) -> None:
        while (request := self._requests.get()) is not None:
            event, over = request
            try:
                event.wait()
            except cl.Error:  # a failed command: the queue's synchronize reports it
                pass
            over.set()
