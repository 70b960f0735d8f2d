"""Sender: sends the batches of a remote device's queues to its worker, in one order, from any thread.

Batches get their sequence numbers under one lock, and the worker enqueues them in that order:
that is what makes an event recorded in one queue's batch exist before another queue's batch
waits for it. A send that must be done before a call returns (a drain, an event wait, a
dropped queue's last batch) takes the lock in the calling thread; the lock is reentrant and
a number is taken before its call, so a queue collected in the middle of a send can send too
(the worker orders by number, not by arrival). A send that the pool's markers, freed memory
or Ray's callback thread ask for (the next batch once the previous one came back) goes to the
device's sender thread through a ``SimpleQueue``, which is safe to fill from anywhere, so no
Ray call runs inside a Ray callback.
"""

from __future__ import annotations

import threading
from collections import deque
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._device import RemoteDevice
    from ._queue import RemoteQueue

FORGET_BATCH = 1024
"""Forgotten events ride along with the next batch; this many are sent on their own."""


class Sender:
    def __init__(self, device: RemoteDevice) -> None:
        self.device = device
        self.frees: deque[int] = deque()
        """Buffer ids to free in the worker."""
        self.forgotten: deque[int] = deque()
        """Event ids the driver dropped (appended by ``RemoteEvent.__del__``)."""
        self._lock = threading.RLock()  # a queue collected inside a send may send its last batch
        self._holder: int | None = None
        """The thread inside ``send``, if any."""
        self._depth = 0
        self._seq = 0
        self._wanted: deque[RemoteQueue] = deque()
        self._kicks: SimpleQueue[RemoteQueue | None] = SimpleQueue()
        threading.Thread(target=self._serve, name=f"hal {device.name} sender", daemon=True).start()

    def kick(self, queue: RemoteQueue | None = None) -> None:
        """Have the sender thread send ``queue``'s batch, and pending frees, soon (safe anywhere)."""
        self._kicks.put(queue)

    def send(self, queue: RemoteQueue | None = None, block: bool = True) -> None:
        """Send ``queue``'s batch, and whatever else waits, before returning. Without ``block``,
        when another send holds the lock, the sender thread sends it soon."""
        if queue is not None:
            self._wanted.append(queue)
        if not self._lock.acquire(blocking=block):
            self.kick()
            return
        self._holder, self._depth = threading.get_ident(), self._depth + 1
        try:
            while self._wanted:
                self._wanted.popleft().send(self)
            device = self.device
            device.check()
            if (self.frees or len(self.forgotten) >= FORGET_BATCH) and device.dead is None:
                try:
                    device.worker.release.remote(_take(self.frees), _take(self.forgotten))
                except Exception as exc:  # Ray refused the call: nothing reaches this worker any more
                    device.kill(exc)
        finally:
            self._depth -= 1
            if not self._depth:
                self._holder = None
            self._lock.release()

    def sending_here(self) -> bool:
        """Whether this thread is inside a send: a batch of it may not have left yet, so nothing
        here may wait for a reply (the worker takes batches in order)."""
        return self._holder == threading.get_ident()

    def submit(self, qid: int, batch: list[tuple[Any, ...]]) -> Any:
        """Send one queue's batch with the next sequence number (the lock is held); its reply's ref.
        Raises the device's DeviceFault when the worker or the cluster is gone."""
        device = self.device
        device.check()
        if device.dead is not None:
            raise device.gone()
        seq = self._seq
        self._seq += 1  # before the call: a send nested in it (a finalizer) takes the next number
        try:
            return device.worker.submit.remote(seq, qid, batch, _take(self.frees), _take(self.forgotten))
        except Exception as exc:  # Ray refused the call: nothing reaches this worker any more
            raise device.kill(exc) from exc

    def _serve(self) -> None:
        while True:
            self.send(self._kicks.get())


def _take(items: deque[int]) -> list[int]:
    """Empty ``items`` (which other threads may append to meanwhile) into a list."""
    out = []
    while items:
        out.append(items.popleft())
    return out
