"""Graph: a sequence of commands captured once on a queue and replayed at a fraction of their cost.

``with q.capture() as g:`` records the kernels, copies, fills and ``hal.ops`` calls enqueued on
``q`` (each checked and packed as if it had been enqueued); ``g.launch(q2)`` replays them, as one
asynchronous command, on any queue of the device. The arrays a graph uses stay allocated as long as
the graph lives, even if they are freed or dropped. docs/memory-model.md states the rules.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _profile
from ._capture import Capture, CaptureError, Guard, Recorder
from ._errors import InvalidArgumentError
from ._memory import Array
from .backend import CallCommand, Command, CopyCommand, FillCommand, GraphImpl, LaunchCommand, QueueReplay, WriteCommand

if TYPE_CHECKING:
    from ._device import Device
    from ._memory import _Export
    from ._queue import Queue
    from .kernel import ir


@dataclass(frozen=True)
class Node:
    """One recorded command (``g.nodes``): ``kind`` is "kernel", "copy", "fill", "write" (host data
    taken at capture) or "op" (a native ``hal.ops`` operator); the arrays it reads and writes."""

    kind: str
    name: str
    grid: tuple[int, int, int] | None
    block: tuple[int, int, int] | None
    reads: tuple[Array, ...]
    writes: tuple[Array, ...]
    kernel: ir.Kernel | None = None
    """A kernel node's IR (what ``g.save`` writes)."""
    args: tuple[Any, ...] = ()
    """A kernel node's arguments as passed (Arrays and scalars)."""
    op: tuple[tuple[Any, ...], dict[str, Any]] | None = None
    """An op node's arguments and parameters in the ``hal.ops`` implementation convention."""

    def __repr__(self) -> str:
        where = f" grid={self.grid} block={self.block}" if self.grid is not None else ""
        return f"<hal.graph node {self.kind} {self.name!r}{where} reads={len(self.reads)} writes={len(self.writes)}>"


class Graph:
    """Commands captured on one queue (``with q.capture() as g``), replayable on any queue of its device."""

    def __init__(self, queue: Queue) -> None:
        self.device: Device = queue.device
        self.queue = queue
        self.nodes: tuple[Node, ...] = ()
        self._commands: tuple[Command, ...] = ()
        self._impl: GraphImpl | None = None
        self._keep: tuple[_Export, ...] = ()
        self._reads: tuple[Array, ...] = ()
        self._writes: tuple[Array, ...] = ()
        self._host_data: tuple[Any, ...] = ()

    # ------------------------------------------------------------ replay
    def launch(self, queue: Queue | None = None) -> None:
        """Replay every command, in order, on ``queue`` (default: the queue it was captured on), as one
        asynchronous command ordered like any other; faults surface at that queue's next synchronize.
        Inside another capture, the nodes are recorded into that one."""
        from ._queue import Queue

        q = self.queue if queue is None else queue
        if type(q) is not Queue or q.device is not self.device:
            where = f"a queue of {q.device.spec}" if type(q) is Queue else type(q).__name__
            raise InvalidArgumentError(f"g.launch takes a hal.Queue of {self.device.spec} (where the graph was "
                                       f"captured), got {where}; rebuild the graph for that device with "
                                       f"g.save(path, inputs=True) and hal.Graph.load(path, device=...)")
        impl = self._impl
        if impl is None:
            raise CaptureError("this graph is still being captured (or its capture failed); launch it after the "
                               "`with q.capture() as g:` block has ended without an error")
        q._check_open()
        capture = q._capture
        if capture is not None:
            self._inline(q, capture)
            return
        hazards = q._hazards
        if hazards is not None:
            hazards.command(q, f"graph of {len(self.nodes)} nodes", self._reads, self._writes)
        if _profile.ACTIVE:
            self._profiled(q)
        else:
            impl.launch(q.impl)
        if self._host_data:  # as for any host-to-device copy: kept until a later synchronize
            q._keep_until_synchronized(self._host_data)  # type: ignore[arg-type]

    def _inline(self, q: Queue, capture: Capture) -> None:
        if capture.thread != threading.get_ident():
            raise CaptureError(f"{q!r} is being captured by another thread; launch the graph on a queue of your own")
        capture.commands.extend(self._commands)
        capture.nodes.extend(self.nodes)
        for export in self._keep:  # the outer graph holds the memory too: this one may go first
            capture.keep.setdefault(id(export._block), export)

    def _profiled(self, q: Queue) -> None:
        """A replay under ``hal.profile()``: node by node, each with its own record."""
        impl = q.impl
        for node, c in zip(self.nodes, self._commands):
            if type(c) is LaunchCommand:
                impl.launch(c.exe, c.grid, c.block, c.args, q._trace(node.name, "kernel", 0, c.grid, c.block))
            elif type(c) is CopyCommand:
                impl.copy(c.dst, c.dst_offset, c.src, c.src_offset, c.nbytes, q._trace("copy", "copy_d2d", c.nbytes))
            elif type(c) is FillCommand:
                impl.fill(c.dst, c.offset, c.nbytes, c.pattern, q._trace("fill", "fill", c.nbytes))
            elif type(c) is WriteCommand:
                impl.write(c.dst, c.offset, c.data, q._trace("write", "copy_h2d", c.data.nbytes))
            else:
                assert isinstance(c, CallCommand)
                c.call(impl)

    # ------------------------------------------------------------ files
    def save(self, path: str | Path, *, inputs: bool = False) -> Path:
        """Write the graph as a portable file: kernels as IR, arrays as shape and dtype, and with
        ``inputs=True`` the current data of every array the graph reads before writing it (so
        ``hal.verify`` can replay it). Waits for the device's pending work."""
        from ._graphfile import save

        path = Path(path)
        save(self, path, inputs)
        return path

    @staticmethod
    def load(path: str | Path, device: Any = None) -> Graph:
        """Rebuild a saved graph on ``device`` (a Device or a spec; default ``hal.device()``): its
        arrays are allocated there (holding the saved inputs; zeros elsewhere) and its kernels compiled
        there. The arrays are ``g.arrays``."""
        from ._graphfile import load

        graph: Graph = load(Path(path), device)
        return graph

    @property
    def arrays(self) -> tuple[Array, ...]:
        """Every distinct array the nodes use, in order of first use."""
        seen: dict[int, Array] = {}
        for node in self.nodes:
            for arr in (*node.reads, *node.writes):
                seen.setdefault(id(arr), arr)
        return tuple(seen.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        state = "" if self._impl is not None else " (capturing)"
        return f"<hal.Graph of {len(self.nodes)} nodes on {self.device.spec}{state}>"


class Capturing:
    """The context manager ``q.capture()`` returns; its ``__enter__`` gives the Graph being recorded."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.graph = Graph(queue)
        self._capture: Capture | None = None

    def __enter__(self) -> Graph:
        q = self.queue
        q._check_open()
        device = q.device
        with device._lock:
            if q._capture is not None:
                raise CaptureError(f"{q!r} is already being captured; end that capture first")
            guard = device._hazards if isinstance(device._hazards, Guard) else Guard(device, device._hazards)
            me = threading.get_ident()
            if me in guard.by_thread:
                raise CaptureError(f"this thread already captures {guard.by_thread[me].queue!r}; one capture per "
                                   "thread at a time (launch a finished graph inside a capture to nest it)")
            capture = self._capture = Capture(q)
            guard.by_queue[id(q)] = guard.by_thread[me] = capture
            if device._hazards is not guard:
                device._hazards = guard
                for other in device._live_queues():
                    other._hazards = guard
            q.impl = Recorder(q.impl, capture)
            q._capture = capture
        return self.graph

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        q, capture = self.queue, self._capture
        assert capture is not None
        device = q.device
        with device._lock:
            recorder = q.impl
            if isinstance(recorder, Recorder):
                q.impl = recorder.real
            q._capture = None
            guard = device._hazards
            if isinstance(guard, Guard):
                guard.by_queue.pop(id(q), None)
                guard.by_thread.pop(capture.thread, None)
                if not guard.by_queue:
                    device._hazards = guard.tracker
                    for other in device._live_queues():
                        other._hazards = guard.tracker
        if exc_type is None:
            _finish(self.graph, capture)


def _finish(graph: Graph, capture: Capture) -> None:
    """Freeze what was recorded and build the device's replayable form."""
    graph.nodes = tuple(capture.nodes)
    graph._commands = tuple(capture.commands)
    graph._keep = tuple(capture.keep.values())
    graph._host_data = tuple(c.data for c in graph._commands if type(c) is WriteCommand)
    graph._reads = tuple(a for n in graph.nodes for a in n.reads)
    graph._writes = tuple(a for n in graph.nodes for a in n.writes)
    native = graph.device.impl.build_graph(graph._commands) if graph._commands else None
    graph._impl = native if native is not None else QueueReplay(graph._commands)


__all__ = ["Graph", "Node", "Capturing", "CaptureError"]
