"""Graph commands: a captured command stream, validated and packed once, as backends replay it.

``with q.capture() as g`` records what would have been enqueued on ``q`` as these commands; their
arguments are exactly what the ``QueueImpl`` methods of the same name take (checked by the core at
capture, never again). A replay hands them to the queue one by one, unless the device builds a
native form with ``DeviceImpl.build_graph`` (API 1.6), which replays them all at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ._program import Executable
    from ._queue import CommandTrace, Dim3, QueueImpl


@dataclass(frozen=True, slots=True)
class LaunchCommand:
    """``QueueImpl.launch(exe, grid, block, args, None)``: ``args`` already bound (ArgBuffers, scalars)."""

    exe: Executable
    grid: Dim3
    block: Dim3
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class CopyCommand:
    """``QueueImpl.copy(dst, dst_offset, src, src_offset, nbytes, None)``."""

    dst: Any
    dst_offset: int
    src: Any
    src_offset: int
    nbytes: int


@dataclass(frozen=True, slots=True)
class FillCommand:
    """``QueueImpl.fill(dst, offset, nbytes, pattern, None)``."""

    dst: Any
    offset: int
    nbytes: int
    pattern: bytes


@dataclass(frozen=True, slots=True)
class WriteCommand:
    """``QueueImpl.write(dst, offset, data, None)``: host data taken at capture, owned by the graph (so it
    stays alive and unchanged for every replay)."""

    dst: Any
    offset: int
    data: np.ndarray


@dataclass(frozen=True, slots=True)
class CallCommand:
    """A native operator recorded with its operands: ``call(queue)`` enqueues it on a backend queue."""

    name: str
    call: Callable[[QueueImpl[Any]], None]


Command = LaunchCommand | CopyCommand | FillCommand | WriteCommand | CallCommand


class GraphImpl(ABC):
    """A device's native form of a command list (``DeviceImpl.build_graph``, API 1.6): one C call,
    a CUDA graph, an OpenCL command buffer. The core calls it from any thread, on any queue of the
    device that built it, several at once: keep it thread-safe."""

    @abstractmethod
    def launch(self, queue: QueueImpl[Any]) -> None:
        """Enqueue every command, in order, on ``queue``: asynchronous and ordered with the queue's
        other commands exactly as if each had been enqueued on its own; faults surface at the
        queue's next ``synchronize`` as usual."""


class QueueReplay(GraphImpl):
    """The form every backend gets: each command through the queue's own method, from tuples packed
    once (a replay pays one call per command, no checks, no lookups). Backends may reuse it for the
    commands their native form does not cover."""

    def __init__(self, commands: Sequence[Command]) -> None:
        self.commands = tuple(commands)
        self._packed = tuple(_pack(c) for c in self.commands)

    def launch(self, queue: QueueImpl[Any]) -> None:
        methods = _methods(queue)
        for index, args in self._packed:
            methods[index](*args)


def enqueue(queue: QueueImpl[Any], c: Command, trace: CommandTrace | None = None) -> None:
    """``c`` through ``queue``'s method of its kind, as a replay runs each command (``trace`` for
    the profiler, where the caller keeps one per command)."""
    index, args = _pack(c, trace)
    _methods(queue)[index](*args)


def _methods(queue: QueueImpl[Any]) -> tuple[Callable[..., None], ...]:
    return queue.launch, queue.copy, queue.fill, queue.write, lambda call: call(queue)


def _pack(c: Command, trace: CommandTrace | None = None) -> tuple[int, tuple[Any, ...]]:
    if type(c) is LaunchCommand:
        return 0, (c.exe, c.grid, c.block, c.args, trace)
    if type(c) is CopyCommand:
        return 1, (c.dst, c.dst_offset, c.src, c.src_offset, c.nbytes, trace)
    if type(c) is FillCommand:
        return 2, (c.dst, c.offset, c.nbytes, c.pattern, trace)
    if type(c) is WriteCommand:
        return 3, (c.dst, c.offset, c.data, trace)
    assert isinstance(c, CallCommand)
    return 4, (c.call,)
