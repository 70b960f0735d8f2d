"""OpenCLGraph: a replayed graph whose kernel nodes only enqueue.

pyopencl has no ``cl_khr_command_buffer``, so a replay still enqueues each node, but every kernel
node gets, per queue, a kernel object of its own with its arguments set once, when the graph first
runs there: a replay skips the argument packing and ``clSetKernelArg`` calls an eager launch makes.
Kernels that can fault (they number their launches for the queue's fault record), copies and fills
go through the queue's own methods.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyopencl as cl

from hal.backend import Command, GraphImpl, LaunchCommand, QueueReplay

from ._queue import Bound

if TYPE_CHECKING:
    from ._queue import OpenCLQueue

_enqueue = cl.enqueue_nd_range_kernel


class OpenCLGraph(GraphImpl):
    def __init__(self, commands: Sequence[Command]) -> None:
        self._commands = tuple(commands)
        self._steps: weakref.WeakKeyDictionary[OpenCLQueue, list[Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _for(self, queue: OpenCLQueue) -> list[Any]:
        steps = self._steps.get(queue)
        if steps is None:
            steps = []
            for c in self._commands:
                if type(c) is LaunchCommand and not c.exe.source.can_fault:  # type: ignore[attr-defined]
                    exe = c.exe
                    bound = Bound(exe, queue.faults)  # type: ignore[arg-type]
                    bound.set([*exe.layout.values(c.args), queue.faults, 0])  # type: ignore[attr-defined]
                    size = tuple(g * b for g, b in zip(c.grid, c.block))
                    steps.append((bound.kernel, size, c.block))
                else:
                    steps.append(QueueReplay([c]))
            with self._lock:
                steps = self._steps.setdefault(queue, steps)
        return steps

    def launch(self, queue: OpenCLQueue) -> None:  # type: ignore[override]
        cq = queue.queue
        for step in self._for(queue):
            if type(step) is tuple:
                kernel, size, block = step
                queue._issue(lambda: _enqueue(cq, kernel, size, block), None)  # noqa: B023 - called at once
            else:
                step.launch(queue)
