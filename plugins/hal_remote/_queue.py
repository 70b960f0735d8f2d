"""RemoteQueue and RemoteEvent: commands batched for the worker, completion from its replies.

Batching works like Nagle's algorithm: when nothing of the queue is in flight, its first
command leaves at once (the worker starts right away); while a batch is in flight, later
commands gather and leave together when its reply arrives, when the batch is full, or when
something must wait for them (a drain, an event wait). So a stream of small commands pays
about one round trip per batch, not per command.

Replies arrive on Ray's callback thread; they are processed in order under the queue's
condition: reads land in their host arrays, events get their times, faults are kept for the
next ``synchronize``. ``idle()`` compares commands pushed with commands completed, so it is
never true early, whichever thread looks.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from hal.backend import CommandTrace, Dim3, EventImpl, Executable, HalError, QueueImpl

from ._cluster import SLICE
from ._protocol import (
    CLOSE,
    COPY,
    FILL,
    INLINE_BYTES,
    LAUNCH,
    MAX_COMMANDS,
    MAX_INLINE,
    READ,
    RECORD,
    TRACE,
    WAIT,
    WRITE,
    BatchResult,
    unpack_error,
)

if TYPE_CHECKING:
    from ._device import RemoteBuffer, RemoteDevice, RemoteExecutable
    from ._sender import Sender

_REPLY_THREADS: set[int] = set()
"""Threads that have delivered replies: waiting for a reply there would wait forever."""
_registering = threading.local()
"""Set while a thread registers a reply callback, which runs at once if the reply is there."""
Side = tuple[int, Any]
"""What the driver keeps of a command until its reply: (READ, host array), (RECORD, event),
(TRACE, trace) or (WAIT, event)."""


class RemoteEvent(EventImpl):
    """A RECORD in a queue's stream; done once the worker replied to its batch."""

    __slots__ = ("queue", "id", "sent", "done", "passed", "stamp")

    def __init__(self, queue: RemoteQueue) -> None:
        self.queue = queue
        self.id = queue.device.new_id()
        self.sent = False
        self.done = False
        self.passed = False
        """Another queue's WAIT on this event has completed: the event has, though its own queue's
        reply (with its time) may still be on its way."""
        self.stamp = 0.0

    def query(self) -> bool:
        if not (self.done or self.sent):
            self.queue.device.sender.kick(self.queue)  # nobody may ever drain this queue
        return self.done or self.passed or self.queue.device.dead is not None

    def wait(self, timeout: float | None) -> bool:
        if not (self.done or self.sent):
            self.queue.device.sender.send(self.queue)
        return self.queue.wait_for(lambda: self.done, timeout)

    def synchronize(self) -> None:
        while not self.wait(SLICE):
            pass

    def time(self) -> float:
        return self.stamp

    def __del__(self) -> None:
        self.queue.device.sender.forgotten.append(self.id)


class _Sent:
    """A batch between its send and its reply."""

    __slots__ = ("count", "side", "result")

    def __init__(self, count: int, side: list[Side]) -> None:
        self.count = count
        self.side = side
        self.result: BatchResult | BaseException | None = None


class RemoteQueue(QueueImpl["RemoteBuffer"]):
    def __init__(self, device: RemoteDevice) -> None:
        self.device = device
        self.id = device.new_id()
        self._lock = threading.RLock()  # a finalizer may record on this queue while it is held
        self._batch: list[tuple[Any, ...]] = []
        self._side: list[Side] = []
        self._inline = 0
        self._pushed = 0
        self._completed = 0
        self._inflight: deque[_Sent] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._fault: HalError | None = None

    # ------------------------------------------------------------ commands
    def copy(self, dst: RemoteBuffer, dst_offset: int, src: RemoteBuffer, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None:
        self._push((COPY, dst.handle, dst_offset, src.handle, src_offset, nbytes), trace)

    def write(self, dst: RemoteBuffer, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        data = src.tobytes() if src.nbytes < INLINE_BYTES else src  # large: Ray's object store, no pickling
        self._push((WRITE, dst.handle, dst_offset, data), trace, inline=src.nbytes)

    def read(self, dst: np.ndarray, src: RemoteBuffer, src_offset: int, trace: CommandTrace | None) -> None:
        self._push((READ, src.handle, src_offset, dst.nbytes), trace, (READ, dst))

    def fill(self, dst: RemoteBuffer, offset: int, nbytes: int, pattern: bytes, trace: CommandTrace | None) -> None:
        self._push((FILL, dst.handle, offset, nbytes, pattern), trace)

    def launch(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any],
               trace: CommandTrace | None) -> None:
        remote = cast("RemoteExecutable", exe)
        wire = [(a.buffer.handle, a.offset, a.size) if p else a for p, a in zip(remote.pointers, args)]
        self._push((LAUNCH, remote.id, grid, block, wire), trace)

    def record(self) -> RemoteEvent:
        event = RemoteEvent(self)
        if self.device.dead is not None:  # nothing will run any more: the marker is passed
            event.done = True
        else:
            self._push((RECORD, event.id), None, (RECORD, event), kick=True)  # the pool records in finalizers
        return event

    def wait(self, event: EventImpl) -> None:
        assert isinstance(event, RemoteEvent)
        if event.done:
            return
        if not event.sent and event.queue is not self:
            self.device.sender.send(event.queue)  # its RECORD reaches the worker before our WAIT
        self._push((WAIT, event.id), None, (WAIT, event))  # the event stays known until WAIT is sent

    def _push(self, command: tuple[Any, ...], trace: CommandTrace | None, side: Side | None = None,
              inline: int = 0, kick: bool = False) -> None:
        """Add a command to the batch. ``kick``: leave the sending to the sender thread (a caller
        that may be a finalizer, where no Ray call may run)."""
        device = self.device
        if device.dead is not None:
            raise device.gone()
        if trace is not None:
            command = (TRACE, command, trace)
        with self._lock:
            self._batch.append(command)
            if side is not None:
                self._side.append(side)
            if trace is not None:
                self._side.append((TRACE, trace))
            self._pushed += 1
            self._inline += inline
            full = len(self._batch) >= MAX_COMMANDS or self._inline >= MAX_INLINE
        if full or not self._inflight:  # the first command leaves at once: the worker starts now
            if kick:
                device.sender.kick(self)
            else:
                device.sender.send(self, block=False)

    # ------------------------------------------------------------ sending and replies
    def send(self, sender: Sender) -> None:
        """Send what gathered (the sender's lock is held); a lost device becomes this queue's fault."""
        fresh_batch: list[tuple[Any, ...]] = []
        fresh_side: list[Side] = []
        with self._lock:
            batch, self._batch = self._batch, fresh_batch
            side, self._side = self._side, fresh_side
            self._inline = 0
        if not batch:
            return
        sent = _Sent(len(batch), side)
        try:
            ref = sender.submit(self.id, batch)
        except HalError as exc:
            with self._cond:
                sent.result = exc
                self._complete(sent)
                self._cond.notify_all()
            return
        for kind, obj in side:
            if kind == RECORD:
                obj.sent = True
        self._inflight.append(sent)
        _registering.active = True
        try:
            ref.future().add_done_callback(partial(self._arrived, sent))
        finally:
            _registering.active = False

    def _arrived(self, sent: _Sent, future: Any) -> None:
        """Ray's callback thread: a reply (or the worker's death) for ``sent``."""
        if not getattr(_registering, "active", False):
            _REPLY_THREADS.add(threading.get_ident())
        try:
            result: BatchResult | BaseException = future.result()
        except BaseException as exc:
            result = exc
        with self._cond:
            sent.result = result
            while self._inflight and self._inflight[0].result is not None:
                self._complete(self._inflight.popleft())
            self._cond.notify_all()
        if self._batch:
            self.device.sender.kick(self)  # what gathered meanwhile leaves now

    def _complete(self, sent: _Sent) -> None:
        """Apply one reply, in order (the condition is held)."""
        result = sent.result
        fault: HalError | None = None
        if isinstance(result, BatchResult):
            reads, times, traces = iter(result.reads), iter(result.times), iter(result.traces)
            for kind, obj in sent.side:
                if kind == READ:
                    data = next(reads)
                    if data.nbytes == obj.nbytes:  # else the worker refused the read; its error follows
                        np.copyto(obj, data)
                elif kind == RECORD:
                    obj.stamp, obj.done = next(times), True
                elif kind == WAIT:
                    obj.passed = True
                elif kind == TRACE:
                    done = next(traces)
                    obj.wall_s, obj.device_start, obj.device_s = done.wall_s, done.device_start, done.device_s
                    obj.counters.update(done.counters)
            if result.fault is not None:
                fault = unpack_error(result.fault, self.device.name)
        elif isinstance(result, HalError):
            fault = result
        else:
            assert result is not None
            fault = self.device.failed(result)
        if fault is not None and self._fault is None:
            self._fault = fault
        self._completed += sent.count

    # ------------------------------------------------------------ waiting
    def wait_for(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Block until ``done()`` (checked under the condition) or ``timeout``; a lost device is a
        DeviceFault (raised at once: nothing it had to do will happen)."""
        with self._cond:
            if self._cond.wait_for(lambda: done() or self.device.dead is not None, timeout) and not done():
                raise self.device.gone()
            return done()

    def idle(self) -> bool:
        """False on a lost device: its synchronize raises, every time (the core skips idle queues)."""
        pushed = self._pushed  # first: a command pushed meanwhile may only make this False
        return self._completed >= pushed and self._fault is None and self.device.dead is None

    def drain(self, timeout: float | None) -> bool:
        target = self._pushed  # commands complete in order: waiting for a count covers them all
        if self._completed >= target:
            return True
        if self._batch:
            self.device.sender.send(self)
        self.device.check()
        try:
            return self.wait_for(lambda: self._completed >= target, timeout)
        except HalError:  # a lost device: synchronize raises it
            return True

    def synchronize(self) -> None:
        while not self.drain(SLICE):
            pass
        with self._cond:
            fault, self._fault = self._fault, None
            if fault is None and self.device.dead is not None:  # sticky: every later synchronize too
                fault, self._completed = self.device.gone(), self._pushed  # the rest will never run
        if fault is not None:
            raise fault

    def abort(self) -> bool:
        device = self.device
        return device.dead is None and bool(device.call(device.worker.abort.remote(self.id)))

    def close(self) -> None:
        """Called by the core after a synchronize, or by the finalizer of a dropped queue: as on
        every backend, the work enqueued before it completes before it returns (the core's host
        reads and its pool count on that, since they no longer see the queue). The worker then
        releases its queue. Two threads cannot wait: Ray's callback thread (it delivers the replies
        itself) and a thread collecting the queue in the middle of a send (the batch being sent
        may not have left, and the worker takes batches in order); there the sender thread sends
        the last batch and nothing waits."""
        if self.device.dead is not None:
            return
        self._push((CLOSE,), None, kick=True)
        if threading.get_ident() not in _REPLY_THREADS and not self.device.sender.sending_here():
            while not self.drain(SLICE):
                pass
