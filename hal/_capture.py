"""Capture: while ``with q.capture() as g`` is open, what would be enqueued on ``q`` is recorded.

Nothing on the eager path pays for it. Two objects are swapped in for the capture's duration:
``q.impl`` becomes a :class:`Recorder` (the queue calls it exactly where it would have called the
backend, with arguments already checked and packed), and the device's hazard hook (which every
command path announces itself to, with the hal Arrays it reads and writes) becomes a
:class:`Guard`, which hands those Arrays to the capture and refuses, with a :class:`CaptureError`,
what a capture cannot record: a command of the capturing thread on another queue of the device, a
command of another thread on the captured queue. Host reads and synchronisation are refused by the
queue and the device (``Capture.refuse``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import HalError
from ._hazards import pointer_modes
from ._memory import _Export
from .backend import CallCommand, Command, CopyCommand, EventImpl, FillCommand, LaunchCommand, QueueImpl, WriteCommand

if TYPE_CHECKING:
    from ._device import Device
    from ._graph import Node
    from ._memory import Array
    from ._queue import Queue
    from .kernel import ir


class CaptureError(HalError):
    """Something that a capture (``with q.capture() as g``) cannot record was asked for inside it: a
    host read, a synchronisation, an event, a command on another queue; the message says what to do.
    The capture goes on: the refused call changed nothing."""


class Capture:
    """One open capture: its queue, thread, and what has been recorded so far."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.thread = threading.get_ident()
        self.commands: list[Command] = []
        self.nodes: list[Node] = []
        self.keep: dict[int, _Export] = {}
        """The blocks used so far, held from their first use: freed or dropped, they stay allocated."""
        self._pending: tuple[str, tuple[Array, ...], tuple[Array, ...], Any] | None = None

    # ------------------------------------------------------------ from the hazard hook
    def note(self, what: str, reads: Sequence[Array], writes: Sequence[Array], launch: Any = None) -> None:
        """The arrays of the command the queue is about to hand the recorder."""
        self._pending = (what, tuple(reads), tuple(writes), launch)

    def add(self, command: Command, kind: str, grid: Any = None, block: Any = None, op: Any = None) -> None:
        from ._graph import Node

        what, reads, writes, launch = self._pending or ("", (), (), None)
        self._pending = None
        name = launch[0].name if launch is not None else what
        for arr in (*reads, *writes):
            if id(arr._block) not in self.keep:
                self.keep[id(arr._block)] = _Export(arr._block)
        self.commands.append(command)
        self.nodes.append(Node(kind, name, grid, block, reads, writes, launch[0] if launch else None,
                               tuple(launch[1]) if launch else (), op))

    def call(self, name: str, call: Callable[[QueueImpl[Any]], None], op: tuple[tuple[Any, ...], dict[str, Any]]) -> None:
        """A native operator (``hal.ops`` on a backend's own objects): replayed as ``call(backend queue)``."""
        self.add(CallCommand(name, call), "op", op=op)

    def refuse(self, what: str, instead: str) -> CaptureError:
        return CaptureError(f"{what} inside the capture of {self.queue!r}: a capture records commands and runs "
                            f"none of them, so there is nothing to wait for or read yet; {instead}")


class Recorder(QueueImpl[Any]):
    """Stands in for the captured queue's backend queue: commands become graph commands; waits and
    markers (which the pool and other threads still ask for) go to the real queue."""

    def __init__(self, real: QueueImpl[Any], capture: Capture) -> None:
        self.real = real
        self.capture = capture

    def copy(self, dst: Any, dst_offset: int, src: Any, src_offset: int, nbytes: int, trace: Any) -> None:
        self.capture.add(CopyCommand(dst, dst_offset, src, src_offset, nbytes), "copy")

    def write(self, dst: Any, dst_offset: int, src: np.ndarray, trace: Any) -> None:
        self.capture.add(WriteCommand(dst, dst_offset, src.copy()), "write")  # the data as it is now

    def read(self, dst: np.ndarray, src: Any, src_offset: int, trace: Any) -> None:
        raise self.capture.refuse("a device-to-host copy", "read the array after the capture (and after g.launch())")

    def fill(self, dst: Any, offset: int, nbytes: int, pattern: bytes, trace: Any) -> None:
        self.capture.add(FillCommand(dst, offset, nbytes, pattern), "fill")

    def launch(self, exe: Any, grid: Any, block: Any, args: Sequence[Any], trace: Any) -> None:
        self.capture.add(LaunchCommand(exe, grid, block, tuple(args)), "kernel", grid, block)

    def record(self) -> EventImpl:
        return self.real.record()

    def wait(self, event: EventImpl) -> None:
        self.real.wait(event)

    def synchronize(self) -> None:
        self.real.synchronize()

    def idle(self) -> bool:
        return self.real.idle()

    def drain(self, timeout: float) -> bool:
        return self.real.drain(timeout)

    def abort(self) -> bool:
        return self.real.abort()

    def close(self) -> None:
        self.real.close()


class Guard:
    """The device's hazard hook while captures are open: the captured queue's commands go to its
    capture, commands that would escape a capture are refused, the rest reach the real tracker."""

    def __init__(self, device: Device, tracker: Any) -> None:
        self.device = device
        self.tracker = tracker
        self.by_queue: dict[int, Capture] = {}
        self.by_thread: dict[int, Capture] = {}

    def _route(self, queue: Queue) -> Capture | None:
        cap = self.by_queue.get(id(queue))
        me = threading.get_ident()
        if cap is not None and cap.queue is queue:
            if cap.thread != me:
                raise CaptureError(f"{queue!r} is being captured by another thread; a captured queue takes "
                                   "commands from the capturing thread only: use a queue of your own "
                                   "(dev.queue()) in this thread")
            return cap
        mine = self.by_thread.get(me)
        if mine is not None and queue is not self.device._creation_queue:
            raise CaptureError(f"a command on {queue!r} while this thread captures {mine.queue!r}: a capture "
                               f"records its own queue only, and this command would run now instead; enqueue it "
                               f"on the captured queue, or after the capture")
        return None

    def command(self, queue: Queue, what: str, reads: Sequence[Array], writes: Sequence[Array]) -> None:
        cap = self._route(queue)
        if cap is not None:
            cap.note(what, reads, writes)
        elif self.tracker is not None:
            self.tracker.command(queue, what, reads, writes)

    def launch(self, queue: Queue, kernel: ir.Kernel, args: Sequence[Any]) -> None:
        cap = self._route(queue)
        if cap is None:
            if self.tracker is not None:
                self.tracker.launch(queue, kernel, args)
            return
        reads: list[Array] = []
        writes: list[Array] = []
        for mode, arg in zip(pointer_modes(kernel), args):
            if mode is not None and hasattr(arg, "_block"):
                (writes if mode else reads).append(arg)
        cap.note(f"kernel {kernel.name!r}", reads, writes, (kernel, args))

    def __getattr__(self, name: str) -> Any:
        """Everything else (record, wait, host waits, created arrays) is the real tracker's business."""
        tracker = self.__dict__["tracker"]
        if tracker is None:
            return _nothing
        return getattr(tracker, name)


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None
