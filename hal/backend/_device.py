"""DeviceImpl: one device of a backend: its description, memory, queues and compiler."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic

from ._memory import B

if TYPE_CHECKING:
    import numpy as np

    from .._info import DeviceInfo
    from ..kernel.ir import Kernel
    from ._graph import Command, GraphImpl
    from ._program import Executable
    from ._queue import QueueImpl


class DeviceImpl(ABC, Generic[B]):
    """One device, opened by ``Backend.open_device``; its buffers are ``B``. The core calls it from
    any thread: ``allocate``, ``free`` and ``compile`` may run at once."""

    @abstractmethod
    def info(self) -> DeviceInfo:
        """The device's description; called once and cached by the core."""

    @abstractmethod
    def allocate(self, nbytes: int) -> B:
        """Fresh memory of ``nbytes`` > 0 bytes (the core's pool caches and reuses it, and calls
        this only when the pool cannot serve). Raise ``OutOfMemoryError``."""

    @abstractmethod
    def free(self, buffer: B) -> None:
        """Return memory that no queued command uses any more (the core waited for them)."""

    @abstractmethod
    def create_queue(self) -> QueueImpl[B]:
        """A new queue (``dev.queue()``; the device's default queue is the first one)."""

    def compile(self, kernel: Kernel) -> Executable:
        """Compile a kernel whose features the device declares (called once per kernel and device).
        Raise ``CompileError`` or ``UnsupportedError`` (naming the construct) for what this backend
        cannot build. The default refuses: a device without ``Feature.KERNELS`` keeps it."""
        from .._errors import UnsupportedError

        raise UnsupportedError(f"{self.info().name} does not run kernels", feature="kernels")

    def host_buffer(self, nbytes: int) -> np.ndarray | None:
        """Optional: a C-contiguous uint8 host array that transfers from this device fill
        fastest (page-locked or recycled memory, as cudaMallocHost or a caching host
        allocator); ``x.numpy()`` returns a view of it. None: the core uses ``numpy.empty``."""
        return None

    def host_cache_bytes(self) -> int:
        """Optional (1.1): bytes of host memory the backend caches for transfers (counted by
        ``dev.memory_stats().host_cached``)."""
        return 0

    def release_host_cache(self) -> int:
        """Optional (1.1): free that host cache (``dev.release_cache()``); bytes released."""
        return 0

    def adopt_host(self, memory: np.ndarray) -> B | None:
        """Optional (1.3): a buffer over host memory that another library owns (``dev.asarray``,
        ``hal.from_dlpack`` without a copy): ``memory`` is a C-contiguous uint8 array of at least
        one byte, aligned for its elements, read-only where the producer forbids writes (the core
        then refuses every command that writes it). The buffer must hold ``memory`` (which keeps
        the producer alive) and address it directly, with ``host_array()`` returning it; the core
        never passes it to ``free`` nor reuses it. None (the default): this device cannot address
        host memory, so the core copies instead."""
        return None

    def adopt_device(self, address: int, nbytes: int, owner: Any, stream: int | None) -> B | None:
        """Optional (1.3): a buffer over CUDA device memory that another library owns (CuPy, PyTorch,
        JAX, Numba: ``__cuda_array_interface__``): ``nbytes`` > 0 bytes at ``address``. Order it first:
        ``stream`` is the producer's stream with pending writes (None: nothing pending). The buffer
        must hold ``owner`` (which keeps the memory allocated); the core never frees it nor reuses it.
        Raise InvalidArgumentError when the memory is another device's. None (the default): this
        device does not address CUDA memory."""
        return None

    def build_graph(self, commands: Sequence[Command]) -> GraphImpl | None:
        """Optional (1.6): a native form of a captured command list (``with q.capture() as g``),
        built once and launched at every ``g.launch(q)`` on any queue of this device. The commands
        were checked at capture; their buffers and host data stay alive as long as the result.
        None (the default): the core replays them through the queue's own methods, which is
        correct for every backend; a native form only makes a replay cheaper."""
        return None
