"""Queue: an in-order, asynchronous stream of copies, fills and launches on one device.

Enqueue calls return before the work is done; several queues run at once; a
queue may be used from several Python threads. Faults of a command surface
as ``DeviceFault`` at the queue's next ``synchronize`` (or any call that
waits for it, like ``x.numpy()``) and the queue keeps working.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _profile
from ._errors import InvalidArgumentError, InvalidHandleError
from ._event import Event
from ._launch import CompiledKernel
from ._memory import Array
from .backend import CommandTrace, QueueImpl

if TYPE_CHECKING:
    from ._device import Device


class Queue:
    __slots__ = ("device", "impl", "_keep", "dirty", "_closed", "_lock", "__weakref__")

    def __init__(self, device: Device, impl: QueueImpl) -> None:
        self.device = device
        self.impl = impl
        self._keep: list[Any] = []  # host arrays the queue reads or writes asynchronously
        self.dirty = False  # work enqueued since the last synchronize
        self._closed = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------ commands
    def copy(self, dst: Array | np.ndarray, src: Array | np.ndarray, *, blocking: bool = True) -> None:
        """Copy ``src`` into ``dst`` (same shape and dtype). Either side may be a host ndarray;
        such copies wait for completion unless ``blocking=False`` (then keep the host array
        unchanged until the queue is synchronised). Arrays of another device go through the host."""
        device = self.device
        if (type(dst) is Array and type(src) is Array and dst.device is device and src.device is device
                and dst.shape == src.shape and dst.dtype == src.dtype and not self._closed):
            if dst.nbytes:  # the common case, checked in one expression: device to device
                self.dirty = True
                self.impl.copy(dst.buffer, dst.offset, src.buffer, src.offset, src.nbytes,
                               self._trace("copy", "copy_d2d", dst.nbytes) if _profile.ACTIVE else None)
            return
        self._check_open()
        d_is, s_is = isinstance(dst, Array), isinstance(src, Array)
        if not (d_is or s_is):
            raise InvalidArgumentError("q.copy needs at least one hal.Array; use numpy.copyto for host copies")
        _check_same(dst, src)
        if d_is and s_is:
            self._copy_across_devices(dst, src)  # type: ignore[arg-type]  # same device: the fast path above
            return
        if d_is:
            host = _host_source(src, dst)  # type: ignore[arg-type]
            self._on_this_device(dst, "dst")  # type: ignore[arg-type]
            self.write(dst, host)  # type: ignore[arg-type]
        else:
            self._on_this_device(src, "src")  # type: ignore[arg-type]
            host = _host_dest(dst)  # type: ignore[arg-type]
            self.read(host, src)  # type: ignore[arg-type]
        if blocking:
            self.synchronize()

    def _copy_across_devices(self, dst: Array, src: Array) -> None:
        """Arrays of two devices (of different backends too): through the host, done for the user."""
        if dst.device is not self.device and src.device is not self.device:
            raise InvalidArgumentError(f"q.copy on {self.device.spec} needs dst or src on that device; "
                                       f"got {dst.device.spec} and {src.device.spec}")
        host = src.numpy()
        queue = self if dst.device is self.device else dst.device.default_queue
        queue.write(dst, host)
        if queue is not self:
            queue.synchronize()

    def write(self, dst: Array, host: np.ndarray) -> None:
        """Enqueue host -> device of a C-contiguous host array with dst's nbytes (no checks of
        shape: the public ``copy`` did them)."""
        if dst.nbytes:
            raw = host.reshape(-1).view(np.uint8)
            self._keep.append(host)
            self.dirty = True
            self.impl.write(dst.buffer, dst.offset, raw,
                            self._trace("write", "copy_h2d", dst.nbytes) if _profile.ACTIVE else None)

    def read(self, host: np.ndarray, src: Array) -> None:
        """Enqueue device -> host into a C-contiguous, writable host array of src's nbytes."""
        if src.nbytes:
            raw = host.reshape(-1).view(np.uint8)
            self._keep.append(host)
            self.dirty = True
            self.impl.read(raw, src.buffer, src.offset,
                           self._trace("read", "copy_d2h", src.nbytes) if _profile.ACTIVE else None)

    def fill(self, arr: Array, value: Any) -> None:
        """Set every element of ``arr`` to ``value`` (which must be representable in its dtype)."""
        self._check_open()
        self._on_this_device(arr, "arr")
        key = (arr.dtype, type(value), value)
        pattern = _PATTERNS.get(key)
        if pattern is None:
            pattern = _fill_pattern(arr, value)
            if len(_PATTERNS) < 1024:
                _PATTERNS[key] = pattern
        if arr.nbytes:
            self.dirty = True
            self.impl.fill(arr.buffer, arr.offset, arr.nbytes, pattern,
                           self._trace("fill", "fill", arr.nbytes) if _profile.ACTIVE else None)

    def launch(self, kernel: Any, grid: Any, block: Any, *args: Any) -> None:
        """Run ``kernel`` on ``grid`` work-groups of ``block`` work-items; same as
        ``kernel[grid, block, q](*args)``."""
        device = self.device
        compiled = kernel if type(kernel) is CompiledKernel else device._compiled.get(kernel)
        if compiled is None or compiled.device is not device:
            compiled = device.compile(kernel)
        g, b = compiled.dims(grid, block)
        bound = compiled.bind(args)
        if self._closed:
            self._check_open()
        if g[0] and g[1] and g[2]:
            self.dirty = True
            self.impl.launch(compiled.impl, g, b, bound,
                             self._trace(compiled.name, "kernel", 0, g, b) if _profile.ACTIVE else None)

    # ------------------------------------------------------------ ordering
    def record(self) -> Event:
        """A marker after everything enqueued so far."""
        self._check_open()
        return Event(self.device, self.impl.record())

    def wait(self, event: Event) -> None:
        """Later commands of this queue wait until ``event`` completes (the host does not block;
        an event of another device is waited for by the host)."""
        self._check_open()
        if not isinstance(event, Event):
            raise InvalidArgumentError(f"q.wait takes a hal.Event (from q.record()), got {type(event).__name__}")
        if event.device is self.device:
            self.impl.wait(event.impl)
        else:
            event.synchronize()

    def synchronize(self) -> None:
        """Wait for all enqueued work; raise the first ``DeviceFault`` it met, if any."""
        if self._closed:
            return
        try:
            self.impl.synchronize()
        finally:
            self._keep.clear()
            self.dirty = False

    def close(self) -> None:
        """Drain the queue and release it; later use raises InvalidHandleError."""
        if self._closed or self is self.device._default_queue:
            return
        self.synchronize()
        self._closed = True
        self.device._forget_queue(self)
        self.impl.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise InvalidHandleError(f"this queue of {self.device.spec} was closed; create one with dev.queue()")

    def _on_this_device(self, arr: Array, name: str) -> None:
        if arr.device is not self.device:
            raise InvalidArgumentError(f"{name} lives on {arr.device.spec}, but this queue runs on "
                                       f"{self.device.spec}; use a queue of {arr.device.spec}")
        arr.buffer  # noqa: B018 - raises InvalidHandleError when freed

    def command_trace(self, name: str, kind: str, nbytes: int = 0) -> CommandTrace | None:
        """Announce a backend-defined command (a native operator, say) about to be enqueued on
        this queue: marks the queue busy (so waits and the pool see it) and returns its trace,
        or None when no profile is open; the backend fills the trace like any other."""
        self.dirty = True
        return self._trace(name, kind, nbytes) if _profile.ACTIVE else None

    def _trace(self, name: str, kind: str, nbytes: int, grid: Any = None, block: Any = None) -> CommandTrace:
        trace = CommandTrace(name, kind, self.device.spec, grid, block, nbytes, wall_start=time.perf_counter())
        for prof in _profile.ACTIVE:
            prof.add(trace, self)
        return trace

    def __repr__(self) -> str:
        return f"<hal.Queue on {self.device.spec}{' (closed)' if self._closed else ''}>"


def _check_same(dst: Any, src: Any) -> None:
    d_shape, s_shape = getattr(dst, "shape", None), getattr(src, "shape", None)
    d_type, s_type = getattr(dst, "dtype", None), getattr(src, "dtype", None)
    if d_shape is None or s_shape is None:
        raise InvalidArgumentError(f"q.copy takes hal.Arrays or numpy arrays, got {type(dst).__name__} and "
                                   f"{type(src).__name__}")
    if tuple(d_shape) != tuple(s_shape) or d_type != s_type:
        raise InvalidArgumentError(f"q.copy needs the same shape and dtype on both sides: dst is {tuple(d_shape)} "
                                   f"{d_type}, src is {tuple(s_shape)} {s_type}; reshape or convert first")
    for side in (dst, src):
        if isinstance(side, Array):
            side.buffer  # noqa: B018 - InvalidHandleError when freed


def _host_source(src: np.ndarray, dst: Array) -> np.ndarray:
    if not isinstance(src, np.ndarray):
        raise InvalidArgumentError(f"q.copy source must be a hal.Array or numpy.ndarray, got {type(src).__name__}")
    return np.ascontiguousarray(src)  # a strided view is copied, never misread


def _host_dest(dst: np.ndarray) -> np.ndarray:
    if not isinstance(dst, np.ndarray):
        raise InvalidArgumentError(f"q.copy destination must be a hal.Array or numpy.ndarray, "
                                   f"got {type(dst).__name__}")
    if not dst.flags.c_contiguous or not dst.flags.writeable:
        raise InvalidArgumentError("q.copy into a host array needs a C-contiguous, writable numpy array; "
                                   "copy into np.empty(shape, dtype) and assign from it")
    return dst


_PATTERNS: dict[tuple[Any, type, Any], bytes] = {}
"""Fill patterns already checked and encoded, by (dtype, type of value, value)."""


def _fill_pattern(arr: Array, value: Any) -> bytes:
    dtype = arr.dtype
    if isinstance(value, (bool, np.bool_)) or dtype.kind == "b":
        ok = isinstance(value, (bool, np.bool_, int, np.integer)) and int(value) in (0, 1)
    elif dtype.kind in "iu":
        ok = isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating))
                                                      and float(value).is_integer())
        ok = ok and np.iinfo(dtype).min <= int(value) <= np.iinfo(dtype).max
    else:
        ok = isinstance(value, (int, float, np.integer, np.floating))
    if not ok:
        raise InvalidArgumentError(f"cannot fill a {dtype} array with {value!r}: the value is not "
                                   f"representable in {dtype}")
    return np.array(value).astype(dtype).tobytes()
