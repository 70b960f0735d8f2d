"""SimGpuGraph: a replayed graph as the model sees it, one graph launch instead of a launch per kernel.

A CUDA graph pays the launch path once: its first kernel node costs ``launch_latency_s`` like any
launch, every later one ``graph_node_latency_s`` (the preset documents the figure). Copies, fills and
native operators keep their eager model. Results are the eager ones: the nodes run exactly as
enqueued one by one, through the queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hal.backend import Command, GraphImpl, LaunchCommand, QueueReplay

if TYPE_CHECKING:
    from hal.sim import SimQueue

    from ._device import SimGpuDevice


class SimGpuGraph(GraphImpl):
    def __init__(self, device: SimGpuDevice, commands: Sequence[Command]) -> None:
        self._device = device
        self._steps = [c if type(c) is LaunchCommand else QueueReplay([c]) for c in commands]

    def launch(self, queue: SimQueue) -> None:  # type: ignore[override]
        first = True
        for step in self._steps:
            if type(step) is LaunchCommand:
                queue.submit(self._node(step, first))
                first = False
            else:
                step.launch(queue)  # type: ignore[union-attr]

    def _node(self, c: LaunchCommand, first: bool) -> Any:
        device = self._device

        def work() -> tuple[float, dict[str, Any]]:
            seconds, counters = device.execute(c.exe, c.grid, c.block, c.args)
            if not first:
                p = device.preset
                seconds += p.graph_node_latency_s - p.launch_latency_s
            return seconds, {**counters, "graph_node": True}
        return work
