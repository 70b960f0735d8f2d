"""OpenCLDevice and OpenCLBuffer: one OpenCL device in a context of its own, memory as cl.Buffer.

DeviceInfo and the features come from the device's own queries: fp64 from ``cl_khr_fp64``, 64-bit
atomics from ``cl_khr_int64_base_atomics`` (without it a kernel using them is refused at compile),
work-group memory and size limits from ``CL_DEVICE_LOCAL_MEM_SIZE`` / ``MAX_WORK_*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyopencl as cl

from hal.backend import Buffer, DeviceImpl, DeviceInfo, Feature, OutOfMemoryError, dtypes_for

from ._compiler import checked
from ._queue import OpenCLQueue

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hal.backend import Command, GraphImpl
    from hal.kernel import ir

    from ._compiler import OpenCLKernel

PAD = 64
"""Bytes allocated past every buffer: a bounds-checked access that faulted continues at element 0
of its argument, which then exists even for an empty view at the end of an allocation."""
_KINDS = {cl.device_type.CPU: "cpu", cl.device_type.GPU: "gpu", cl.device_type.ACCELERATOR: "accelerator"}


def all_devices() -> list[cl.Device]:
    """Every device of every platform, in the ICD's order (what ``opencl:N`` numbers)."""
    return [d for p in cl.get_platforms() for d in p.get_devices()]


class OpenCLBuffer(Buffer[cl.Buffer]):
    """``handle`` is the cl.Buffer; device memory is not host-addressable here."""

    def __init__(self, handle: cl.Buffer, nbytes: int) -> None:
        self.handle = handle
        self.nbytes = nbytes


class OpenCLDevice(DeviceImpl[OpenCLBuffer]):
    def __init__(self, index: int) -> None:
        self.index = index
        self.device = all_devices()[index]
        self.context = cl.Context([self.device])
        extensions = set(self.device.extensions.split())
        self.fp64 = "cl_khr_fp64" in extensions
        self.int64_atomics = "cl_khr_int64_base_atomics" in extensions

    def info(self) -> DeviceInfo:
        d = self.device
        features = {Feature.KERNELS, Feature.I64, Feature.ATOMICS, Feature.BARRIERS, Feature.LOCAL_ARRAYS,
                    Feature.MULTI_DIM, Feature.SUBGROUPS, Feature.F16, Feature.BF16,  # f16/bf16: ushort bits
                    Feature.SMALL_INTS}
        if self.fp64:
            features.add(Feature.F64)
        if d.local_mem_size > 0:
            features.add(Feature.SHARED_MEMORY)
        if checked():
            features.add(Feature.BOUNDS_CHECKS)
        base = ("bool", "int8", "uint8", "int32", "uint32", "int64", "float32") + (("float64",) if self.fp64 else ())
        dtypes = dtypes_for(features, base)
        kind = next((k for t, k in _KINDS.items() if d.type & t), "accelerator")
        sizes = tuple(min(s, 2**31 - 1) for s in d.max_work_item_sizes[:3])
        return DeviceInfo(
            name=d.name.strip(), backend="opencl", index=self.index, kind=kind, vendor=d.vendor.strip(),  # type: ignore[arg-type]
            memory_bytes=d.global_mem_size, compute_units=d.max_compute_units,
            max_block_size=d.max_work_group_size, max_block_dims=sizes,  # type: ignore[arg-type]
            warp_size=1 if kind == "cpu" else 32, subgroup_size=1, shared_memory_bytes=d.local_mem_size, dtypes=dtypes,
            features=frozenset(features), simulated=False, host_visible=False)

    def allocate(self, nbytes: int) -> OpenCLBuffer:
        try:
            return OpenCLBuffer(cl.Buffer(self.context, cl.mem_flags.READ_WRITE, nbytes + PAD), nbytes)
        except (cl.MemoryError, cl.LogicError) as exc:
            raise OutOfMemoryError(f"opencl: cannot allocate {nbytes} bytes on {self.device.name.strip()} ({exc}); "
                                   "free arrays or use smaller ones") from None

    def free(self, buffer: OpenCLBuffer) -> None:
        buffer.handle.release()

    def create_queue(self) -> OpenCLQueue:
        return OpenCLQueue(self)

    def build_graph(self, commands: Sequence[Command]) -> GraphImpl:
        from ._graph import OpenCLGraph

        return OpenCLGraph(commands)

    def compile(self, kernel: ir.Kernel) -> OpenCLKernel:
        from ._compiler import compile_kernel

        return compile_kernel(self, kernel)
