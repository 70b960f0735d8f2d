"""The device: host memory, kernels on hal's reference interpreter.

Replace ``execute`` with your device's launch, ``allocate`` with its allocator
and ``transfer_seconds`` with its real link, and keep the rest. Everything the
core validates (arguments, dtypes, launch limits, kernel features) never
reaches this file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hal import Feature
from hal.backend import Dim3, Executable
from hal.kernel import interpreter, ir
from hal.sim import SimDevice, kernel_args


class ExampleOptions(BaseModel):
    """``hal.device("example", bandwidth=...)``: options are validated here, unknown ones refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    bandwidth: float = Field(default=10e9, gt=0, description="bytes/s of the modelled memory and link")


class ExampleExecutable(Executable):
    def __init__(self, kernel: ir.Kernel) -> None:
        self.kernel = kernel


class ExampleDevice(SimDevice):
    """One device; its time model is deliberately simple: bytes / bandwidth + 5 us per launch."""

    host_visible = True

    def __init__(self, options: ExampleOptions) -> None:
        self.options = options

    def info(self) -> Any:
        from hal import DeviceInfo

        return DeviceInfo(
            name="Example interpreter device", backend="example", kind="gpu", vendor="Example Corp",
            memory_bytes=1 << 30, compute_units=1, max_block_size=1024, warp_size=32,
            shared_memory_bytes=48 * 1024, simulated=True, host_visible=True,
            model="example-model v1 (bytes/bandwidth + 5 us per launch)",
            features=frozenset({Feature.KERNELS, Feature.F64, Feature.I64, Feature.ATOMICS,
                                Feature.SHARED_MEMORY, Feature.BARRIERS, Feature.LOCAL_ARRAYS,
                                Feature.MULTI_DIM, Feature.HOST_VISIBLE, Feature.BOUNDS_CHECKS,
                                Feature.SIMULATED_TIMING}))

    def compile(self, kernel: ir.Kernel) -> Executable:
        return ExampleExecutable(kernel)

    def transfer_seconds(self, kind: str, nbytes: int) -> float:
        return nbytes / self.options.bandwidth

    def execute(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any]) -> tuple[float, dict[str, Any]]:
        interpreter.run(exe.kernel, grid, block, kernel_args(exe.kernel, args))
        moved = sum(a.size * p.type.np_dtype.itemsize for p, a in zip(exe.kernel.params, args) if p.pointer)
        return 5e-6 + moved / self.options.bandwidth, {"bytes": moved}
