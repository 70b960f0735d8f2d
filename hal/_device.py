"""Device: memory, queues and compiled kernels of one device of one backend."""

from __future__ import annotations

import math
import operator
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from ._capture import Guard
from ._errors import HalError, InvalidArgumentError, InvalidHandleError, UnsupportedError
from ._features import feature_of_dtype, parse_feature
from ._launch import CompiledKernel
from ._memory import Array
from ._plugins import open_device
from ._pool import MemoryPool, MemoryStats
from ._queue import Queue, track
from .backend import Backend, DeviceImpl, EventImpl
from .kernel._narrow import astype, is_half

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
        self._impl: DeviceImpl[Any] | None = None
        self._info: DeviceInfo | None = None
        self._pool_: MemoryPool | None = None
        self._default_queue: Queue | None = None
        self._creation_queue: Queue | None = None
        self._queues: weakref.WeakSet[Queue] = weakref.WeakSet()
        self._made = 0  # queues made, for their names
        self._dtypes: dict[Any, np.dtype[Any]] = {}
        self._lock = threading.RLock()
        self._forked = False
        self._hazards = _hazard_tracker(spec)
        _ALL.add(self)

    @property
    def impl(self) -> DeviceImpl[Any]:
        """The backend's device object, opened on first use (listing devices opens none)."""
        if self._impl is None:
            with self._lock:
                if self._impl is None:
                    self._impl = open_device(self.backend, self.index, self.options, self.spec)
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
        """An array of zeros, ready on every queue."""
        return self.full(shape, 0, dtype)

    def full(self, shape: Any, value: Any, dtype: Any = np.float32) -> Array:
        """An array filled with ``value``, ready on every queue (the fill has completed)."""
        arr = self.empty(shape, dtype)
        return self._initialised(arr, lambda q: q.fill(arr, value))

    def array(self, data: Any, dtype: Any = None) -> Array:
        """Copy host data (anything numpy converts) to a new device array, ready on every queue;
        returns when the data has been read. A strided source is made contiguous first."""
        if isinstance(data, Array):
            host = data.numpy()
        else:
            try:  # numbers for a 16-bit float are read at full precision, then rounded once (hal's rule)
                host = np.asarray(data, dtype=None if is_half(dtype) else dtype)
            except (TypeError, ValueError, OverflowError) as exc:
                raise InvalidArgumentError(f"cannot make a device array from {type(data).__name__}: {exc}") from None
        if dtype is not None and host.dtype != np.dtype(dtype):
            host = astype(host, np.dtype(dtype))
        self._check_dtype(host.dtype)
        host = np.require(host, requirements="C")  # 0-d stays 0-d (ascontiguousarray makes it 1-d)
        arr = Array(self, self._pool.allocate(host.nbytes), 0, host.shape, host.dtype)
        return self._initialised(arr, lambda q: q.write(arr, host))

    def asarray(self, obj: Any, dtype: Any = None, *, copy: bool | None = None) -> Array:
        """``obj`` as an array of this device, as ``numpy.asarray``: host memory of numpy, PyTorch,
        JAX (anything with DLPack or the buffer protocol) is shared without a copy where this
        device can address it (``cpu``) and it is C-contiguous, aligned, of a supported dtype
        (``dtype`` None or the same); else it is copied. ``copy=True`` always copies;
        ``copy=False`` never does and raises :class:`hal.ZeroCopyError` saying why. A shared
        array keeps the producer alive as long as it or any view or export of it lives; see
        docs/memory-model.md for when the producer sees the device's writes."""
        from ._interop import asarray

        return asarray(self, obj, dtype, copy)

    def _adopt(self, memory: np.ndarray, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array | None:
        """An array over host memory that another library owns (C-contiguous, aligned, of a dtype
        this device stores), or None when the backend cannot adopt host memory."""
        if not self.info.host_visible:
            return None
        raw = memory.reshape(-1).view(np.uint8)
        buffer = self.impl.adopt_host(raw)
        if buffer is None:
            return None
        arr = Array(self, self._pool.adopt(buffer, readonly=not raw.flags.writeable), 0, shape, dtype)
        if self._hazards is not None:
            self._hazards.created(arr)
        return arr

    def _adopt_device(self, address: int, shape: tuple[int, ...], dtype: np.dtype[Any], owner: Any,
                      readonly: bool, stream: int | None) -> Array | None:
        """An array over CUDA memory that another library owns, or None when the backend does not
        address CUDA memory (``DeviceImpl.adopt_device``)."""
        nbytes = math.prod(shape) * dtype.itemsize
        buffer = self.impl.adopt_device(address, nbytes, owner, stream)
        if buffer is None:
            return None
        arr = Array(self, self._pool.adopt(buffer, readonly=readonly), 0, shape, dtype)
        if self._hazards is not None:
            self._hazards.created(arr)
        return arr

    def _initialised(self, arr: Array, enqueue: Callable[[Queue], None]) -> Array:
        """``arr`` once ``enqueue(q)`` has run to completion on the creation queue: a queue of the
        core's own, so creation waits for its own fill or copy only, never behind the user's
        work on the default queue."""
        q = self._creation_queue
        if q is None:
            q = self._own_queue("_creation_queue", "creation queue")
        enqueue(q)
        q.synchronize()
        if self._hazards is not None:
            self._hazards.created(arr)
        return arr

    def _own_queue(self, attr: str, name: str) -> Queue:
        """The queue in attribute ``attr``, made (and registered) by the first thread to ask."""
        with self._lock:
            q: Queue | None = getattr(self, attr)
            if q is None:
                q = self._register(Queue(self, self.impl.create_queue(), name))
                setattr(self, attr, q)
            return q

    def memory_stats(self) -> MemoryStats:
        """Bytes in use by arrays, cached in the pool for reuse, the peak of in-use, capacity, and
        the host memory the backend caches for transfers."""
        return replace(self._pool.stats(), host_cached=self.impl.host_cache_bytes())

    def release_cache(self) -> int:
        """Give the pool's cached memory back to the backend and free the backend's host cache;
        returns the bytes released."""
        return self._pool.release_cache() + self.impl.release_host_cache()

    def _check_dtype(self, dtype: Any) -> np.dtype[Any]:
        try:
            known = self._dtypes.get(dtype)
        except TypeError:  # unhashable spelling (a list of fields, say): checked below, not cached
            known = None
        if known is not None:
            return known
        try:
            dt: np.dtype[Any] = np.dtype(dtype)
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{dtype!r} is not a dtype; use e.g. numpy.float32") from None
        if dt.fields is not None or dt.subdtype is not None:
            raise InvalidArgumentError(f"{dtype!r} is a structured or sub-array dtype; hal arrays hold one scalar "
                                       f"dtype: {', '.join(self.info.dtypes)}")
        if dt.name not in self.info.dtypes and dt != np.uint8:  # raw bytes are always storable
            feature = feature_of_dtype(dt.name)
            hint = "" if feature is None or feature in self.info.features else (
                f" (it does not declare the {feature.value!r} feature; pick a device that does, "
                f"e.g. [d for d in hal.devices() if d.supports({feature.value!r})], or convert on the host)")
            raise InvalidArgumentError(f"{self.info.name} does not store {dt.name} arrays{hint}; supported dtypes: "
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
        if q._capture is not None:  # another thread captures the default queue: read beside it
            q = self._creation_queue or self._own_queue("_creation_queue", "creation queue")
        q.read(out, arr)
        q.synchronize()

    def _live_queues(self) -> list[Queue]:
        with self._lock:
            return list(self._queues)

    def _pending_events(self) -> list[EventImpl]:
        """Markers on every queue with work in flight: a freed block is reused once they pass."""
        markers = (q._if_busy(lambda q: q.impl.record()) for q in self._live_queues())
        return [m for m in markers if m is not None]

    # ------------------------------------------------------------ queues
    def queue(self, name: str | None = None) -> Queue:
        """A new in-order asynchronous queue (``name`` appears in errors and hazard reports)."""
        with self._lock:
            self._made += 1
            label = name if name is not None else f"queue {self._made}"
        return track(self._register(Queue(self, self.impl.create_queue(), str(label))))

    def _register(self, q: Queue) -> Queue:
        with self._lock:
            self._queues.add(q)
        return q

    @property
    def default_queue(self) -> Queue:
        q = self._default_queue
        return q if q is not None else self._own_queue("_default_queue", "default queue")

    def synchronize(self, timeout: float | None = None) -> None:
        """Wait for every queue of the device; raise the first pending DeviceFault. ``timeout``
        (seconds) is a time limit for the whole device, as in ``Queue.synchronize``."""
        self._sync_all(timeout)

    def _sync_all(self, timeout: float | None = None) -> None:
        """Wait for every queue with work in flight (all work enqueued before this call)."""
        if isinstance(self._hazards, Guard):  # captures are open
            capture = self._hazards.by_thread.get(threading.get_ident())
            if capture is not None:
                raise capture.refuse("a host read or device-wide synchronize",
                                     "read after the capture (and after g.launch())")
        errors = []
        deadline = None if timeout is None else time.monotonic() + timeout
        for q in self._live_queues():
            try:
                q._if_busy(lambda q: q.synchronize(None if deadline is None else max(0.0, deadline - time.monotonic())))
            except HalError as exc:  # every queue still gets drained
                errors.append(exc)
        if self._hazards is not None:
            self._hazards.host_wait_all()
        if self._pool_ is not None:
            self._pool_.reap()
        if errors:
            raise errors[0]

    def _forget_queue(self, q: Queue) -> None:
        with self._lock:
            self._queues.discard(q)

    # ------------------------------------------------------------ fork
    def _orphan(self) -> None:
        """In a child process after fork(): the parent's threads and driver state are gone, so
        everything opened before fails with a clear error instead of hanging."""
        self._forked = True
        self._lock = threading.RLock()
        if self._pool_ is not None:
            self._pool_._lock = threading.Lock()
        stub = _Forked(self.spec)
        for q in list(self._queues):  # no lock: the child has one thread
            q.impl = stub  # type: ignore[assignment]
            q._keep_lock = threading.Lock()
            if q._finalizer is not None:
                q._finalizer.detach()
        self._impl = stub  # type: ignore[assignment]

    def _raise_forked(self) -> NoReturn:
        raise InvalidHandleError(_forked_message(self.spec))

    # ------------------------------------------------------------ kernels
    def compile(self, kernel: Any) -> CompiledKernel:
        """Compile ahead of time (launches compile on first use otherwise); errors surface here.
        The result is cached on the kernel object, so it lives as long as the kernel does."""
        cache: dict[Device, CompiledKernel] | None = getattr(kernel, "_compiled", None)
        compiled = cache.get(self) if cache is not None else None
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
        if cache is not None:
            cache[self] = compiled
        return compiled

    def __repr__(self) -> str:
        return f"<hal.Device {self.spec}: {self.info.name}>"


class _Forked:
    """Stands in for the backend objects of a device opened before fork(): any use raises."""

    def __init__(self, spec: str) -> None:
        self._spec = spec

    def __getattr__(self, name: str) -> Any:
        raise InvalidHandleError(_forked_message(self._spec))


def _forked_message(spec: str) -> str:
    return (f"{spec} was opened before this process forked; its queues and memory belong to the parent. "
            f"Open devices in the child (hal.device({spec.split('(')[0]!r}) returns a fresh one there) or "
            "start workers with the 'spawn' method")


_ALL: weakref.WeakSet[Device] = weakref.WeakSet()
"""Every Device of this process, for the fork handler."""


def _after_fork_in_child() -> None:
    from . import _pool

    _pool._EXPORTS = threading.Lock()
    for dev in list(_ALL.data):  # type: ignore[attr-defined]
        dev = dev()
        if dev is not None:
            dev._orphan()
    from . import _lookup

    _lookup._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _hazard_tracker(spec: str) -> Any:
    """The cross-queue hazard tracker of a device under HAL_CHECK=1, else None (nothing to pay)."""
    from . import _hazards

    return _hazards.HazardTracker(spec) if _hazards.enabled() else None


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
