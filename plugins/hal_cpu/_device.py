"""CpuDevice and CpuBuffer: host memory from the C runtime's aligned allocator."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

import numpy as np

from hal.backend import Buffer, DeviceImpl, Executable, Feature, OutOfMemoryError, checked_mode

from ._hostpool import HostPool, default_limit
from ._queue import CpuQueue
from ._runtime import ffi, lib

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hal.backend import Command, DeviceInfo, GraphImpl
    from hal.kernel import ir

_FEATURES = frozenset({
    Feature.KERNELS, Feature.F64, Feature.I64, Feature.ATOMICS, Feature.SHARED_MEMORY, Feature.BARRIERS,
    Feature.LOCAL_ARRAYS, Feature.MULTI_DIM, Feature.HOST_VISIBLE, Feature.INT8, Feature.SUBGROUPS,
    Feature.F16, Feature.BF16, Feature.SMALL_INTS,
})
"""Bounds checks are declared only in checked mode (HAL_CHECK=1), where kernels are compiled with them."""
_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty where there is none, as on macOS)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


class CpuBuffer(Buffer[Any]):
    """``nbytes`` of 64-byte aligned host memory; ``handle`` (cdata ``void *`` from ``hal_alloc``) is
    what the C runtime's calls take."""

    def __init__(self, ptr: Any, nbytes: int, host: np.ndarray | None = None) -> None:
        self.handle = ptr
        self.nbytes = nbytes
        self.address = int(ffi.cast("uintptr_t", ptr))
        """The same pointer as an int (for DLPack and debugging)."""
        self._host: np.ndarray | None = host

    @classmethod
    def adopt(cls, memory: np.ndarray) -> CpuBuffer:
        """A buffer over host memory another library owns; ``memory``, held as ``host_array()``,
        keeps it (and its producer) alive as long as the buffer lives."""
        return cls(ffi.cast("void *", memory.ctypes.data), memory.nbytes, memory)

    def host_array(self) -> np.ndarray:
        """Zero-copy uint8 view of the memory, made once."""
        if self._host is None:
            self._host = np.frombuffer(ffi.buffer(self.handle, self.nbytes), np.uint8)
        return self._host


class CpuDevice(DeviceImpl[CpuBuffer]):
    """The host as a device: memory is host-visible, kernels run on the runtime's thread pool."""

    def __init__(self, index: int = 0) -> None:
        self.index = index
        self.host_pool = HostPool(limit=default_limit())

    def info(self) -> DeviceInfo:
        from hal.backend import DeviceInfo  # pydantic loads on first use, not at plugin import

        cpu = _cpuinfo()
        name = cpu.get("model name") or platform.processor() or platform.machine() or "cpu"
        vendor_id = cpu.get("vendor_id", "")
        return DeviceInfo(
            name=name, backend="cpu", index=self.index, kind="cpu",
            vendor=_VENDORS.get(vendor_id, vendor_id or platform.machine() or "unknown"),
            memory_bytes=int(lib.hal_physical_memory()), compute_units=int(lib.hal_cpu_count()),
            max_block_size=1024, max_block_dims=(1024, 1024, 64), warp_size=1, subgroup_size=1,
            shared_memory_bytes=64 * 1024, simulated=False, host_visible=True,
            features=_FEATURES | {Feature.BOUNDS_CHECKS} if checked_mode() else _FEATURES,
        )

    def allocate(self, nbytes: int) -> CpuBuffer:
        ptr = lib.hal_alloc(nbytes)
        if ptr == ffi.NULL:
            raise OutOfMemoryError(f"cpu: cannot allocate {nbytes} bytes of host memory; "
                                   "free arrays or use smaller ones")
        return CpuBuffer(ptr, nbytes)

    def free(self, buffer: CpuBuffer) -> None:
        lib.hal_free(buffer.handle)
        buffer.handle = ffi.NULL
        buffer._host = None

    def adopt_host(self, memory: np.ndarray) -> CpuBuffer:
        return CpuBuffer.adopt(memory)

    def host_buffer(self, nbytes: int) -> np.ndarray | None:
        return self.host_pool.take(nbytes)

    def host_cache_bytes(self) -> int:
        return self.host_pool.cached_bytes()

    def release_host_cache(self) -> int:
        return self.host_pool.release()

    def create_queue(self) -> CpuQueue:
        return CpuQueue(self)

    def build_graph(self, commands: Sequence[Command]) -> GraphImpl:
        from ._graph import CpuGraph

        return CpuGraph(commands)

    def compile(self, kernel: ir.Kernel) -> Executable:
        from ._compiler import compile_kernel

        return compile_kernel(kernel)
