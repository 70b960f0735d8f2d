"""SimGpuDevice: exact results from the reference interpreter, time from the SIMT model."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from hal.backend import Command, DeviceInfo, Dim3, Executable, Feature, GraphImpl, kernel_args
from hal.kernel import interpreter, ir
from hal.sim import SimDevice

from . import _model
from ._executable import SimGpuExecutable
from ._options import Options
from ._presets import MODEL_VERSION, Preset
from ._races import RaceDetector, Where
from ._tracer import GlobalBuffer, SimGpuTracer

_FEATURES = frozenset({
    Feature.KERNELS, Feature.F64, Feature.I64, Feature.ATOMICS, Feature.SHARED_MEMORY, Feature.BARRIERS,
    Feature.LOCAL_ARRAYS, Feature.MULTI_DIM, Feature.BOUNDS_CHECKS, Feature.SIMULATED_TIMING, Feature.SUBGROUPS,
    Feature.F16, Feature.BF16, Feature.SMALL_INTS,
})

SUBGROUP_SIZE = 32
"""A subgroup is a warp: ``hal.shuffle`` is ``__shfl_sync`` (see README, "Collectives")."""


class SimGpuDevice(SimDevice):
    """One simulated GPU; ``preset`` holds every parameter the model uses."""

    host_visible = False

    def __init__(self, index: int, preset: Preset, options: Options) -> None:
        self.index = index
        self.preset = preset
        self.options = options
        self.checked = options.checked if options.checked is not None else os.environ.get("HAL_CHECK") == "1"
        self._info: DeviceInfo | None = None

    def info(self) -> DeviceInfo:
        if self._info is None:
            p = self.preset
            self._info = DeviceInfo(
                name=p.name, backend="simgpu", index=self.index, kind="gpu", vendor="NVIDIA (simulated)",
                memory_bytes=p.memory_bytes, compute_units=p.sms, max_block_size=p.max_threads_per_block,
                max_block_dims=(1024, 1024, 64), warp_size=32, subgroup_size=SUBGROUP_SIZE, shared_memory_bytes=p.shared_per_block,
                features=_FEATURES, simulated=True, host_visible=False,
                peak_flops=p.fp32_flops, peak_bandwidth=p.dram_bandwidth,
                model=f"{p.model} (analytic estimate; min DRAM transfer {self.options.min_dram_transfer} B)")
        return self._info

    def compile(self, kernel: ir.Kernel) -> Executable:
        return SimGpuExecutable(kernel, self.preset)

    def build_graph(self, commands: Sequence[Command]) -> GraphImpl:
        from ._graph import SimGpuGraph

        return SimGpuGraph(self, commands)

    def transfer_seconds(self, kind: str, nbytes: int) -> float:
        return _model.transfer_seconds(self.preset, kind, nbytes)

    def execute(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any]) -> tuple[float, dict[str, Any]]:
        assert isinstance(exe, SimGpuExecutable)
        kernel, p = exe.kernel, self.preset
        buffers = {param.name: GlobalBuffer(id(arg.buffer), arg.offset, arg.buffer.nbytes)
                   for param, arg in zip(kernel.params, args, strict=True) if param.pointer}
        races = RaceDetector(Where(kernel.name, kernel.source_file, grid, block)) if self.checked else None
        tracer = SimGpuTracer(buffers, exe.shared_base, self.options.min_dram_transfer, races,
                              exe.constant_division_lines)
        interpreter.run(kernel, grid, block, kernel_args(kernel, args), tracer=tracer, subgroup_size=SUBGROUP_SIZE)
        tracer.finish()
        tpb = block[0] * block[1] * block[2]
        blocks = grid[0] * grid[1] * grid[2]
        counts = tracer.counts(blocks, tpb)
        occ = _model.occupancy(p, tpb, exe.shared_bytes, exe.registers)
        est = _model.kernel_time(p, counts, occ)
        return est.seconds, {
            "cycles": est.cycles, "dram_bytes": est.dram_bytes, "sectors": counts.sectors,
            "warp_instructions": counts.warp_instructions, "bank_conflicts": counts.bank_conflicts,
            "atomic_collisions": counts.atomic_collisions, "occupancy": occ.occupancy,
            "waves": math.ceil(blocks / (occ.blocks_per_sm * p.sms)), "bound": est.bound,
            "registers": occ.registers, "occupancy_limiter": occ.limiter,
            "model": f"{p.model} (analytic estimate)", "model_version": MODEL_VERSION,
        }
