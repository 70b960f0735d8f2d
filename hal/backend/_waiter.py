"""Waiter: bounded waits on drivers whose own waits are unbounded (OpenCL, CUDA).

The core waits through ``QueueImpl.drain(slice)`` and ``EventImpl.wait(timeout)`` so that Ctrl-C
and ``synchronize(timeout=)`` keep working; ``clWaitForEvents`` or ``cuStreamSynchronize`` have
no time limit, and a thread blocked in one cannot be interrupted. A Waiter polls the driver for
a few microseconds (a short command is over by then), then hands the wait to a thread of its own
that blocks in the driver and sets a ``threading.Event`` the caller waits on with its time limit.
Measured on PoCL, the alternatives were worse: polling with 0.5 ms sleeps made a tiny launch and
synchronize take 0.5 ms and a 3 ms saxpy up to 15 % longer; pyopencl's completion callbacks
woke the caller 0.2-1.2 ms late.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

SPIN_S = 30e-6
"""How long a wait polls before it hands its token to the thread (two thread switches, about
15 us on PoCL here, saved for short commands)."""


class Waiter(Generic[T]):
    """Bounded waits for tokens (events, streams) of one queue, served in order by one daemon
    thread started at the first wait that blocks. ``done(token)`` must not block; ``block(token)``
    blocks until the token's work is over and reports nothing (the queue's synchronize does)."""

    def __init__(self, done: Callable[[T], bool], block: Callable[[T], None]) -> None:
        self._done, self._block = done, block
        self._requests: queue.SimpleQueue[tuple[T, threading.Event] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._watched: tuple[T, threading.Event] | None = None
        self._thread: threading.Thread | None = None

    def wait(self, token: T, timeout: float) -> bool:
        """True once ``token``'s work is over; False if ``timeout`` s passed first."""
        spin_end = time.perf_counter() + min(SPIN_S, timeout)
        while not self._done(token):
            if time.perf_counter() >= spin_end:
                break
        else:
            return True
        with self._lock:
            watched = self._watched
            if watched is None or watched[0] is not token or watched[1].is_set():  # the next slice of one wait
                watched = self._watched = (token, threading.Event())  # reuses its request
                self._requests.put(watched)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name="hal-waiter", daemon=True)
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
            token, over = request
            self._block(token)
            over.set()
