"""The device: its description, memory (a Buffer over the driver's handle), queues and compiler."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hal.backend import Buffer, DeviceImpl, DeviceInfo, Executable, Feature, OutOfMemoryError
from hal.kernel import ir

from . import driver
from .queue import RuntimeQueue


class RuntimeOptions(BaseModel):
    """``hal.device("runtime", memory_gib=...)``: validated here, unknown options refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    memory_gib: int = Field(default=1, ge=1, description="device memory the driver reports")


class RuntimeBuffer(Buffer[driver.Memory]):
    """``handle`` is the driver's allocation; the host cannot address it (``host_array()`` is None)."""

    def __init__(self, memory: driver.Memory, nbytes: int) -> None:
        self.handle = memory
        self.nbytes = nbytes


class RuntimeExecutable(Executable):
    def __init__(self, kernel: ir.Kernel) -> None:
        self.kernel = kernel  # a real backend keeps its compiled module here, too


class RuntimeDevice(DeviceImpl[RuntimeBuffer]):
    def __init__(self, index: int, options: RuntimeOptions) -> None:
        self.index = index
        self.options = options

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            name="Example runtime device", backend="runtime", index=self.index, kind="gpu", vendor="Example Corp",
            memory_bytes=self.options.memory_gib << 30, compute_units=1, max_block_size=1024, warp_size=32,
            shared_memory_bytes=48 * 1024,
            features=frozenset({Feature.KERNELS, Feature.F64, Feature.I64, Feature.ATOMICS, Feature.SHARED_MEMORY,
                                Feature.BARRIERS, Feature.LOCAL_ARRAYS, Feature.MULTI_DIM, Feature.BOUNDS_CHECKS}))

    def allocate(self, nbytes: int) -> RuntimeBuffer:
        try:
            return RuntimeBuffer(driver.Memory(nbytes), nbytes)
        except MemoryError:
            raise OutOfMemoryError(f"runtime: cannot allocate {nbytes} bytes; free arrays first") from None

    def free(self, buffer: RuntimeBuffer) -> None:
        buffer.handle.bytes = buffer.handle.bytes[:0]  # cuMemFree

    def create_queue(self) -> RuntimeQueue:
        return RuntimeQueue()

    def compile(self, kernel: ir.Kernel) -> RuntimeExecutable:
        return RuntimeExecutable(kernel)  # lower kernel (typed IR) to your ISA here
