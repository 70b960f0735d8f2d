"""RemoteGraph: a captured graph that lives in the worker; a replay is one command on the wire."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hal.backend import Command, CopyCommand, FillCommand, GraphImpl, LaunchCommand, WriteCommand

from ._protocol import COPY, FILL, GRAPH, LAUNCH, WRITE

if TYPE_CHECKING:
    from ._device import RemoteDevice
    from ._queue import RemoteQueue


def wire(commands: Sequence[Command]) -> list[tuple[Any, ...]] | None:
    """The commands as the worker's batches carry them; None when one cannot travel (a native
    operator runs in this process: the core then replays node by node through the queue)."""
    out: list[tuple[Any, ...]] = []
    for c in commands:
        if type(c) is LaunchCommand:
            pointers = c.exe.pointers  # type: ignore[attr-defined]
            out.append((LAUNCH, c.exe.id, c.grid, c.block,  # type: ignore[attr-defined]
                        [(a.buffer.handle, a.offset, a.size) if p else a for p, a in zip(pointers, c.args)]))
        elif type(c) is CopyCommand:
            out.append((COPY, c.dst.handle, c.dst_offset, c.src.handle, c.src_offset, c.nbytes))
        elif type(c) is FillCommand:
            out.append((FILL, c.dst.handle, c.offset, c.nbytes, c.pattern))
        elif type(c) is WriteCommand:
            out.append((WRITE, c.dst.handle, c.offset, c.data.tobytes()))
        else:
            return None
    return out


class RemoteGraph(GraphImpl):
    def __init__(self, device: RemoteDevice, gid: int) -> None:
        self.device = device
        self.id = gid

    def launch(self, queue: RemoteQueue) -> None:  # type: ignore[override]
        queue._push((GRAPH, self.id), None)

    def __del__(self) -> None:
        self.device.sender.forgotten.append(self.id)
