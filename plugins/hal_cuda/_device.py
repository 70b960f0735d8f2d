"""CudaDevice and CudaBuffer: one GPU's primary context, memory from its stream-ordered pool.

Memory comes from cuda.core's ``DeviceMemoryResource`` (the driver's default pool of the device,
``cuMemAllocFromPoolAsync``), allocated and freed on a stream of the device's own that the
allocation waits for, so a new buffer is usable from every queue at once (hal's creation rule) and
a freed one returns to the pool only after the core has waited for every queue that used it.
DeviceInfo comes from the device's attributes.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from cuda.bindings import driver
from cuda.core import Device, DeviceMemoryResource

from hal.backend import Buffer, DeviceImpl, DeviceInfo, Feature, InvalidArgumentError, checked_mode

from ._driver import check, core_error, make_current, name
from ._queue import TIMED, CudaQueue

if TYPE_CHECKING:
    from hal.kernel import ir

    from ._compiler import CudaKernel

PAD = 64
"""Bytes allocated past every buffer: a bounds-checked access that faulted continues at element 0
of its argument, which then exists even for an empty view at the end of an allocation."""
_A = driver.CUdevice_attribute
_FP32_LANES = {(7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128, (9, 0): 128,
               (10, 0): 128, (12, 0): 128}
"""FP32 lanes per multiprocessor by compute capability (CUDA C Programming Guide, "Arithmetic Instructions")."""


class CudaBuffer(Buffer[int]):
    """``handle`` is the device address; ``owner`` the cuda.core Buffer that returns it to the pool
    (or, for memory of another library, the object that keeps it allocated)."""

    def __init__(self, owner: Any, nbytes: int, address: int | None = None) -> None:
        self.owner = owner
        self.handle = int(owner.handle) if address is None else address
        self.nbytes = nbytes

    def device_address(self) -> int:
        return self.handle


class CudaDevice(DeviceImpl[CudaBuffer]):
    def __init__(self, index: int) -> None:
        self.index = index
        self.device = Device(index)
        self.device.set_current()
        self.context = self.device.context.handle
        self.cu_device = check(driver.cuDeviceGet(index), "cuDeviceGet")
        major, minor = self.device.compute_capability
        self.capability = (int(major), int(minor))
        self.arch = f"sm_{major}{minor}"
        self.max_group_size = self.attribute("MAX_THREADS_PER_BLOCK")
        self.memory = DeviceMemoryResource(self.device)
        self.alloc_stream = self.device.create_stream()
        self._alloc_lock = threading.Lock()
        self.epoch = self.alloc_stream.record(options=TIMED)
        """The zero of this device's event clock: event times are differences to it."""
        self.epoch.sync()

    def attribute(self, name: str) -> int:
        """A device attribute; 0 where this driver no longer reports it (the clock rates, in CUDA 13)."""
        err, value = driver.cuDeviceGetAttribute(getattr(_A, f"CU_DEVICE_ATTRIBUTE_{name}"), self.cu_device)
        return int(value) if err == driver.CUresult.CUDA_SUCCESS else 0

    def info(self) -> DeviceInfo:
        a = self.attribute
        features = {Feature.KERNELS, Feature.F64, Feature.I64, Feature.ATOMICS, Feature.SHARED_MEMORY,
                    Feature.BARRIERS, Feature.LOCAL_ARRAYS, Feature.MULTI_DIM, Feature.SUBGROUPS, Feature.F16, Feature.BF16,
                    Feature.SMALL_INTS}
        if checked_mode():
            features.add(Feature.BOUNDS_CHECKS)
        sms, clock_khz = a("MULTIPROCESSOR_COUNT"), a("CLOCK_RATE")
        lanes = _FP32_LANES.get(self.capability)
        version = int(check(driver.cuDriverGetVersion(), "cuDriverGetVersion"))
        return DeviceInfo(
            name=self.device.name, backend="cuda", index=self.index, kind="gpu", vendor="NVIDIA",
            memory_bytes=int(check(driver.cuDeviceTotalMem(self.cu_device), "cuDeviceTotalMem")),
            compute_units=sms, max_block_size=a("MAX_THREADS_PER_BLOCK"),
            max_block_dims=(a("MAX_BLOCK_DIM_X"), a("MAX_BLOCK_DIM_Y"), a("MAX_BLOCK_DIM_Z")),
            max_grid_dims=(a("MAX_GRID_DIM_X"), a("MAX_GRID_DIM_Y"), a("MAX_GRID_DIM_Z")),
            warp_size=a("WARP_SIZE"), subgroup_size=a("WARP_SIZE"), shared_memory_bytes=a("MAX_SHARED_MEMORY_PER_BLOCK"),
            features=frozenset(features), simulated=False, host_visible=False,
            driver_version=f"{version // 1000}.{version % 1000 // 10} ({self.arch})",
            peak_flops=2.0 * sms * lanes * clock_khz * 1e3 if lanes and clock_khz else None,
            peak_bandwidth=2.0 * a("MEMORY_CLOCK_RATE") * 1e3 * a("GLOBAL_MEMORY_BUS_WIDTH") / 8 or None)

    def allocate(self, nbytes: int) -> CudaBuffer:
        make_current(self.context)
        try:
            with self._alloc_lock:
                owner = self.memory.allocate(nbytes + PAD, stream=self.alloc_stream)
                self.alloc_stream.sync()
        except Exception as exc:  # cuda.core raises CUDAError naming the CUresult
            raise core_error(exc, f"allocating {nbytes} bytes on {self.device.name}") from None
        return CudaBuffer(owner, nbytes)

    def free(self, buffer: CudaBuffer) -> None:
        make_current(self.context)
        with self._alloc_lock:
            buffer.owner.close(self.alloc_stream)

    def adopt_device(self, address: int, nbytes: int, owner: Any, stream: int | None) -> CudaBuffer:
        make_current(self.context)
        err, ordinal = driver.cuPointerGetAttribute(
            driver.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, address)
        if err != driver.CUresult.CUDA_SUCCESS:
            raise InvalidArgumentError(f"cuda: address {address:#x} is not CUDA memory the driver knows "
                                       f"({name(err)}); pass a CuPy, PyTorch or JAX array that lives on a GPU")
        if int(ordinal) != self.index:
            raise InvalidArgumentError(f"this memory is on cuda:{int(ordinal)}, not cuda:{self.index}; import it on "
                                       f"hal.device('cuda:{int(ordinal)}')")
        if stream is not None:  # the producer's pending writes first (CUDA Array Interface v3)
            check(driver.cuStreamSynchronize(driver.CUstream(stream)), "the producer's stream")
        return CudaBuffer(owner, nbytes, address)

    def create_queue(self) -> CudaQueue:
        make_current(self.context)
        return CudaQueue(self)

    def compile(self, kernel: ir.Kernel) -> CudaKernel:
        from ._compiler import compile_kernel

        return compile_kernel(self, kernel)
