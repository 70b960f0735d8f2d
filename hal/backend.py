"""The vendor interface: the few abstract classes a backend plugin implements.

A plugin module declares ``api_version = (major, minor)`` and implements the
``hal_backends`` hook (see :mod:`hal.hookspecs`) returning :class:`Backend`
instances. The core validates every argument before it reaches these
classes (sizes, dtypes, devices, bounds of copies, launch limits, kernel
features against ``DeviceInfo.features``), so implementations never repeat
those checks: they do the work.

Object graph: ``Backend`` -> ``DeviceImpl`` -> ``Buffer`` / ``QueueImpl`` /
``Executable``; a ``QueueImpl`` hands out ``EventImpl`` markers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    import numpy as np
    from pydantic import BaseModel

    from ._info import DeviceInfo
    from .kernel.ir import Kernel

API_VERSION = (1, 1)
"""The vendor interface's version: a plugin with the same major and a minor <= this loads.

1.1 added optional methods, each with a default that keeps 1.0 plugins correct:
``QueueImpl.idle/drain/abort``, ``EventImpl.wait`` and ``DeviceImpl.host_cache_bytes/
release_host_cache``; launch arguments became immutable :class:`ArgBuffer` snapshots."""

Dim3 = tuple[int, int, int]


@dataclass
class CommandTrace:
    """One profiled command. The core creates it when profiling is on; the backend fills
    ``device_s`` (and ``counters``, ``wall_s`` if it knows better) before the queue's
    ``synchronize`` returns."""

    name: str
    kind: str
    device: str
    grid: Dim3 | None = None
    block: Dim3 | None = None
    nbytes: int = 0
    wall_start: float = 0.0
    wall_s: float = 0.0
    device_start: float = 0.0
    device_s: float = 0.0
    counters: dict[str, Any] = field(default_factory=dict)


class Buffer(ABC):
    """A raw device allocation of ``nbytes`` bytes."""

    nbytes: int

    def host_array(self) -> np.ndarray | None:
        """A uint8 numpy view of the memory if the host can address it directly, else None.

        Host-visible backends return it; the core then serves ``__dlpack__`` and
        zero-copy paths from it.
        """
        return None


class ArgBuffer(Protocol):
    """What a pointer argument of a launch looks like to a backend: an immutable snapshot taken
    when the launch was enqueued, so it stays valid after the user frees the Array (the core's
    pool reuses the memory only once the queue has passed the launch)."""

    buffer: Buffer
    offset: int
    """Byte offset of element 0 inside ``buffer``."""
    size: int
    """Number of elements."""


class EventImpl(ABC):
    """A marker in a queue's command stream."""

    @abstractmethod
    def query(self) -> bool:
        """True once every command enqueued before the marker has completed."""

    @abstractmethod
    def synchronize(self) -> None:
        """Block until ``query()`` is true."""

    @abstractmethod
    def time(self) -> float:
        """Device-clock seconds when the marker completed (simulated seconds on a
        simulated device). Called only after ``synchronize``."""

    def wait(self, timeout: float) -> bool:
        """Optional (1.1): block at most ``timeout`` seconds; True once ``query()`` is true.

        The core waits in slices through it so that Ctrl-C and ``timeout=`` work; the
        default blocks until done, which is correct but not interruptible."""
        self.synchronize()
        return True


class Executable(ABC):
    """A kernel compiled for one device."""

    kernel: Kernel

    def report(self) -> Any:
        """Backend-specific compile report (the FPGA's synthesis report, say); None if none."""
        return None


class QueueImpl(ABC):
    """An in-order, asynchronous command stream: enqueue calls return before the work is done.

    Faults met while running commands are kept and raised (as ``DeviceFault``)
    by the next ``synchronize``; later commands still run.
    """

    @abstractmethod
    def copy(self, dst: Buffer, dst_offset: int, src: Buffer, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None: ...

    @abstractmethod
    def write(self, dst: Buffer, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        """Host to device. ``src`` is a C-contiguous uint8 array, kept alive by the core until
        the queue is synchronised."""

    @abstractmethod
    def read(self, dst: np.ndarray, src: Buffer, src_offset: int, trace: CommandTrace | None) -> None:
        """Device to host into the C-contiguous uint8 array ``dst``."""

    @abstractmethod
    def fill(self, dst: Buffer, offset: int, nbytes: int, pattern: bytes,
             trace: CommandTrace | None) -> None:
        """Repeat ``pattern`` (1, 2, 4 or 8 bytes; ``nbytes`` is a multiple of it)."""

    @abstractmethod
    def launch(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any],
               trace: CommandTrace | None) -> None:
        """Run ``exe``. ``args`` follow ``exe.kernel.params``: an :class:`ArgBuffer` for each
        pointer parameter, a Python int/float/bool already range-checked for each scalar."""

    @abstractmethod
    def record(self) -> EventImpl: ...

    @abstractmethod
    def wait(self, event: EventImpl) -> None:
        """Commands enqueued after this call wait until ``event`` (of any queue of the device)."""

    @abstractmethod
    def synchronize(self) -> None:
        """Block until all enqueued work is done; then raise the first pending fault, if any."""

    def close(self) -> None:  # noqa: B027 - optional: most queues have nothing to release
        """Release the queue's resources after draining it."""

    def idle(self) -> bool:
        """Optional (1.1): True when every command enqueued so far has completed and no fault
        waits to be raised. Must never say True early; the default (False) makes the core
        synchronise the queue on every host read, which is correct but slower."""
        return False

    def drain(self, timeout: float) -> bool:
        """Optional (1.1): block at most ``timeout`` seconds for the enqueued work; True when it
        is done (faults stay for ``synchronize``). The core waits in slices through it so that
        Ctrl-C and ``synchronize(timeout=...)`` work; the default blocks until done."""
        self.synchronize()
        return True

    def abort(self) -> bool:
        """Optional (1.1): stop the running command early, as a fault that the next
        ``synchronize`` raises; later commands still run. False when the backend cannot."""
        return False


class DeviceImpl(ABC):
    """One device of a backend."""

    @abstractmethod
    def info(self) -> DeviceInfo:
        """The device's description; called once and cached by the core."""

    @abstractmethod
    def allocate(self, nbytes: int) -> Buffer:
        """Fresh memory (the core's pool caches and reuses it). Raise ``OutOfMemoryError``."""

    @abstractmethod
    def free(self, buffer: Buffer) -> None:
        """Return memory that no queued command uses any more."""

    @abstractmethod
    def create_queue(self) -> QueueImpl: ...

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

    def compile(self, kernel: Kernel) -> Executable:
        """Compile a kernel whose features the device declares. Raise ``CompileError`` or
        ``UnsupportedError`` (naming the construct) for what this backend cannot build."""
        from ._errors import UnsupportedError

        raise UnsupportedError(f"{self.info().name} does not run kernels", feature="kernels")


@dataclass(frozen=True)
class KnownFailure:
    """A conformance test this backend is known to fail: run as a strict xfail, so an
    unexpected pass fails the run and the list cannot rot."""

    test: str
    """Test id or fnmatch glob, e.g. ``"test_kernels.py::test_atomics*"``."""
    reason: str
    device: str | None = None
    """Only on devices whose ``DeviceInfo.name`` matches this glob (None: all)."""


class Backend(ABC):
    """A family of devices (one plugin may register several backends)."""

    name: ClassVar[str]
    """Used in device specs: ``hal.device("<name>:<index>")``."""
    version: ClassVar[str] = "0"
    Options: ClassVar[type[BaseModel] | None] = None
    """Pydantic model of the options ``hal.device(name, **options)`` accepts (extra="forbid")."""
    known_failures: ClassVar[tuple[KnownFailure, ...]] = ()
    """Conformance tests expected to fail (see :class:`KnownFailure`)."""

    @abstractmethod
    def device_count(self) -> int:
        """How many devices exist (cheap: called by ``hal.devices()``)."""

    @abstractmethod
    def open_device(self, index: int, options: BaseModel | None) -> DeviceImpl:
        """Create device ``index`` with validated options (None when the caller gave none)."""
