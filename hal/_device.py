"""Device: memory, queues and compiled kernels of one device of one backend."""

from __future__ import annotations

import math
import operator
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from ._errors import InvalidArgumentError, UnsupportedError
from ._features import parse_feature
from ._launch import CompiledKernel
from ._memory import Array
from ._pool import MemoryPool, MemoryStats
from ._queue import Queue
from .backend import Backend, DeviceImpl, EventImpl

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._info import DeviceInfo


class Device:
    """One device. Get it with ``hal.device("<backend>[:<index>]", **options)``."""

    def __init__(self, backend: Backend, index: int, options: BaseModel | None, spec: str) -> None:
        self.backend = backend
        self.index = index
        self.options = options
        self.spec = spec
        self._impl: DeviceImpl | None = None
        self._info: DeviceInfo | None = None
        self._pool_: MemoryPool | None = None
        self._default_queue: Queue | None = None
        self._queue_refs: list[weakref.ref[Queue]] = []
        self._dtypes: dict[Any, np.dtype[Any]] = {}
        self._compiled: dict[Any, CompiledKernel] = {}
        self._lock = threading.RLock()

    @property
    def impl(self) -> DeviceImpl:
        """The backend's device object, opened on first use (listing devices opens none)."""
        if self._impl is None:
            with self._lock:
                if self._impl is None:
                    self._impl = self.backend.open_device(self.index, self.options)
        return self._impl

    # ------------------------------------------------------------ description
    @property
    def info(self) -> DeviceInfo:
        """The frozen :class:`hal.DeviceInfo` of this device."""
        if self._info is None:
            self._info = self.impl.info()
        return self._info

    def supports(self, feature: str) -> bool:
        """Whether the device declares ``feature`` (a :class:`hal.Feature` name)."""
        return parse_feature(feature) in self.info.features

    # ------------------------------------------------------------ memory
    @property
    def _pool(self) -> MemoryPool:
        if self._pool_ is None:
            with self._lock:
                if self._pool_ is None:
                    self._pool_ = MemoryPool(self.impl, self.info.memory_bytes, self.spec, self._pending_events)
        return self._pool_

    def alloc(self, nbytes: int) -> Array:
        """Raw memory: a 1-D uint8 Array of ``nbytes`` bytes (``.view(dtype)`` reinterprets it)."""
        size = _count(nbytes, "nbytes")
        return Array(self, self._pool.allocate(size), 0, (size,), np.dtype(np.uint8))

    def empty(self, shape: Any, dtype: Any = np.float32) -> Array:
        """An uninitialised array."""
        dims = _shape(shape)
        dt = self._check_dtype(dtype)
        nbytes = math.prod(dims) * dt.itemsize
        return Array(self, self._pool.allocate(nbytes), 0, dims, dt)

    def zeros(self, shape: Any, dtype: Any = np.float32) -> Array:
        arr = self.empty(shape, dtype)
        self.default_queue.fill(arr, 0)
        return arr

    def full(self, shape: Any, value: Any, dtype: Any = np.float32) -> Array:
        arr = self.empty(shape, dtype)
        self.default_queue.fill(arr, value)
        return arr

    def array(self, data: Any, dtype: Any = None) -> Array:
        """Copy host data (anything numpy converts) to a new device array; returns when the
        data has been read. A strided source is made contiguous first, never misread."""
        if isinstance(data, Array):
            host = data.numpy()
        else:
            try:
                host = np.asarray(data, dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError(f"cannot make a device array from {type(data).__name__}: {exc}") from None
        if dtype is not None and host.dtype != np.dtype(dtype):
            host = host.astype(dtype)
        self._check_dtype(host.dtype)
        host = np.ascontiguousarray(host)
        arr = Array(self, self._pool.allocate(host.nbytes), 0, host.shape, host.dtype)
        q = self.default_queue
        q.write(arr, host)
        q.synchronize()
        return arr

    def memory_stats(self) -> MemoryStats:
        """Bytes in use by arrays, cached in the pool for reuse, the peak of in-use, and capacity."""
        return self._pool.stats()

    def release_cache(self) -> int:
        """Give the pool's cached memory back to the backend; returns the bytes released."""
        return self._pool.release_cache()

    def _check_dtype(self, dtype: Any) -> np.dtype[Any]:
        known = self._dtypes.get(dtype)
        if known is not None:
            return known
        try:
            dt: np.dtype[Any] = np.dtype(dtype)
        except TypeError:
            raise InvalidArgumentError(f"{dtype!r} is not a dtype; use e.g. numpy.float32") from None
        if dt.name not in self.info.dtypes and dt != np.uint8:  # raw bytes are always storable
            raise InvalidArgumentError(f"{self.info.name} does not store {dt.name} arrays; supported dtypes: "
                                       f"{', '.join(self.info.dtypes)}")
        try:
            self._dtypes[dtype] = dt
        except TypeError:  # unhashable spelling of a dtype: fine, just not cached
            pass
        return dt

    def _read_into(self, out: np.ndarray, arr: Array) -> None:
        arr.buffer  # noqa: B018 - InvalidHandleError before any waiting
        self._sync_all()
        q = self.default_queue
        q.read(out, arr)
        q.synchronize()

    def _live_queues(self) -> list[Queue]:
        queues = [q for q in (r() for r in self._queue_refs) if q is not None]
        if len(queues) != len(self._queue_refs):
            self._queue_refs = [weakref.ref(q) for q in queues]
        return queues

    def _pending_events(self) -> list[EventImpl]:
        """Markers on every queue with work in flight: a freed block is reused once they pass."""
        return [q.impl.record() for q in self._live_queues() if q.dirty]

    # ------------------------------------------------------------ queues
    def queue(self) -> Queue:
        """A new in-order asynchronous queue."""
        q = Queue(self, self.impl.create_queue())
        self._queue_refs.append(weakref.ref(q))
        return q

    @property
    def default_queue(self) -> Queue:
        q = self._default_queue
        if q is None:
            with self._lock:
                if self._default_queue is None:
                    self._default_queue = Queue(self, self.impl.create_queue())
                    self._queue_refs.append(weakref.ref(self._default_queue))
                q = self._default_queue
        return q

    def synchronize(self) -> None:
        """Wait for every queue of the device; raise the first pending DeviceFault."""
        self._sync_all()

    def _sync_all(self) -> None:
        errors = []
        for q in self._live_queues():
            if q.dirty:
                try:
                    q.synchronize()
                except Exception as exc:  # every queue still gets drained
                    errors.append(exc)
        if errors:
            raise errors[0]

    def _forget_queue(self, q: Queue) -> None:
        self._queue_refs = [r for r in self._queue_refs if r() is not q and r() is not None]

    # ------------------------------------------------------------ kernels
    def compile(self, kernel: Any) -> CompiledKernel:
        """Compile ahead of time (launches compile on first use otherwise); errors surface here."""
        compiled = self._compiled.get(kernel)
        if compiled is not None:
            return compiled
        kernel_ir = getattr(kernel, "ir", None)
        if kernel_ir is None:
            raise InvalidArgumentError(f"dev.compile takes a @hal.kernel function, got {type(kernel).__name__}")
        from .kernel.analysis import required_features

        missing = sorted(f.value for f in required_features(kernel_ir) - self.info.features)
        if missing:
            raise UnsupportedError(f"kernel {kernel_ir.name!r} needs {', '.join(missing)}, which "
                                   f"{self.info.name} ({self.spec}) does not support", feature=missing[0])
        if kernel_ir.shared_bytes > self.info.shared_memory_bytes:
            raise InvalidArgumentError(
                f"kernel {kernel_ir.name!r} uses {kernel_ir.shared_bytes} bytes of hal.shared memory per "
                f"work-group; {self.info.name} provides {self.info.shared_memory_bytes}; use smaller arrays")
        compiled = CompiledKernel(self, kernel, kernel_ir, self.impl.compile(kernel_ir))
        self._compiled[kernel] = compiled
        return compiled

    def __repr__(self) -> str:
        return f"<hal.Device {self.spec}: {self.info.name}>"


def _count(n: Any, what: str) -> int:
    try:
        value = operator.index(n)
    except TypeError:
        raise InvalidArgumentError(f"{what} must be an integer, got {n!r}") from None
    if value < 0:
        raise InvalidArgumentError(f"{what} must be >= 0, got {value}")
    return value


def _shape(shape: Any) -> tuple[int, ...]:
    items = shape if isinstance(shape, (tuple, list)) else (shape,)
    return tuple(_count(d, "every dimension of a shape") for d in items)
