"""CpuGraph: a captured graph as arrays of C commands, replayed by one call into the C runtime.

``g.launch(q)`` costs one cffi call per run of kernels, copies and fills (a native operator, which
runs in Python, splits the runs); the arguments were packed into 8-byte slots once, when the graph
was built. The queue keeps the graph until the worker has passed its commands, whose pointers (entry
points, kernel names, host data) point into objects the graph holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hal.backend import CallCommand, Command, CopyCommand, FillCommand, GraphImpl, LaunchCommand, WriteCommand

from ._queue import launch_target
from ._runtime import ffi, lib

if TYPE_CHECKING:
    from ._queue import CpuQueue

_submit = lib.hal_queue_submit_graph


class CpuGraph(GraphImpl):
    def __init__(self, commands: Sequence[Command]) -> None:
        self._keep: list[Any] = []  # packed arguments, host data, executables: what the C commands point to
        self._segments: list[tuple[Any, int] | CallCommand] = []
        run: list[Command] = []
        for c in commands:
            if type(c) is CallCommand:
                self._flush(run)
                self._segments.append(c)
            else:
                run.append(c)
        self._flush(run)

    def _flush(self, run: list[Command]) -> None:
        if not run:
            return
        cmds = ffi.new("hal_graph_cmd[]", len(run))
        for d, c in zip(cmds, run):
            if type(c) is LaunchCommand:
                exe = c.exe
                try:
                    fn, where = exe.cpu_target  # type: ignore[attr-defined]
                except AttributeError:
                    fn, where = launch_target(exe)
                packed = ffi.from_buffer(exe.pack(c.args))  # type: ignore[attr-defined]
                self._keep += (packed, exe)
                d.kind, d.fn, d.where, d.args, d.nbytes = lib.HAL_GRAPH_LAUNCH, fn, where, packed, len(packed)
                d.grid, d.block = c.grid, c.block
            elif type(c) is CopyCommand:
                d.kind, d.dst, d.dst_offset, d.src, d.src_offset, d.nbytes = (
                    lib.HAL_GRAPH_COPY, c.dst.handle, c.dst_offset, c.src.handle, c.src_offset, c.nbytes)
            elif type(c) is WriteCommand:
                host = ffi.from_buffer(c.data)
                self._keep.append(host)
                d.kind, d.dst, d.dst_offset, d.src, d.src_offset, d.nbytes = (
                    lib.HAL_GRAPH_COPY, c.dst.handle, c.offset, host, 0, c.data.nbytes)
            else:
                assert type(c) is FillCommand
                d.kind, d.dst, d.dst_offset, d.nbytes, d.pattern_size = (
                    lib.HAL_GRAPH_FILL, c.dst.handle, c.offset, c.nbytes, len(c.pattern))
                ffi.memmove(ffi.addressof(d, "pattern"), c.pattern, len(c.pattern))
        self._segments.append((cmds, len(run)))
        run.clear()

    def launch(self, queue: CpuQueue) -> None:  # type: ignore[override]
        handle = queue.handle
        seq = 0
        for segment in self._segments:
            if type(segment) is tuple:
                seq = _submit(handle, segment[0], segment[1])
            else:
                segment.call(queue)  # type: ignore[union-attr]
        if seq:
            queue.keep(seq, self)
