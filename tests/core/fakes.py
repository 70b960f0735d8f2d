"""A minimal in-process backend on the hal.sim toolkit, for testing the core without plugins."""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from typing import Any

import hal
from hal._features import Feature
from hal._info import DeviceInfo
from hal.backend import Backend, DeviceImpl, Dim3, Executable, hookimpl, kernel_args
from hal.sim import SimDevice


class FakeExecutable(Executable):
    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel


class FakeDevice(SimDevice):
    """Host-backed memory; 1 GB/s copies; kernels run on the reference interpreter."""

    def __init__(self, index: int, memory_bytes: int, host_visible: bool) -> None:
        self.index = index
        self.memory_bytes = memory_bytes
        self.host_visible = host_visible

    def info(self) -> DeviceInfo:
        return DeviceInfo(name=f"Fake device {self.index}", backend="fake", index=self.index, kind="gpu",
                          vendor="hal tests", memory_bytes=self.memory_bytes, compute_units=1,
                          max_block_size=256, warp_size=32, shared_memory_bytes=4096, simulated=True,
                          host_visible=self.host_visible,
                          features=frozenset({Feature.KERNELS, Feature.SHARED_MEMORY, Feature.BARRIERS,
                                              Feature.ATOMICS, Feature.SIMULATED_TIMING, Feature.MULTI_DIM}))

    def transfer_seconds(self, kind: str, nbytes: int) -> float:
        return nbytes / 1e9

    def compile(self, kernel: Any) -> Executable:
        return FakeExecutable(kernel)

    def execute(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any]) -> tuple[float, dict[str, Any]]:
        from hal.kernel.interpreter import run

        run(exe.kernel, grid, block, kernel_args(exe.kernel, args))
        threads = grid[0] * grid[1] * grid[2] * block[0] * block[1] * block[2]
        return threads * 1e-9, {"threads": threads}


class FakeBackend(Backend):
    name = "fake"
    version = "1.0"

    def __init__(self, count: int = 2, memory_bytes: int = 1 << 20) -> None:
        self.count = count
        self.memory_bytes = memory_bytes

    def device_count(self) -> int:
        return self.count

    def open_device(self, index: int, options: Any) -> DeviceImpl:
        return FakeDevice(index, self.memory_bytes, host_visible=index == 0)


def register_backend(make: Callable[[], Backend], plugin: str) -> None:
    """Register an in-process plugin providing ``make()``'s backend, as an entry point would."""
    module = types.ModuleType(f"hal_{plugin}_tests")
    module.api_version = hal.API_VERSION  # type: ignore[attr-defined]

    @hookimpl
    def hal_backends() -> list[Backend]:
        return [make()]

    module.hal_backends = hal_backends  # type: ignore[attr-defined]
    hal.register_plugin(module, plugin)
