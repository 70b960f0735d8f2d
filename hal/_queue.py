"""Queue: an in-order, asynchronous stream of copies, fills and launches on one device.

Enqueue calls return before the work is done; several queues run at once; a
queue may be used from several Python threads. Faults of a command surface
as ``DeviceFault`` at the queue's next ``synchronize`` (or any call that
waits for it, like ``x.numpy()``) and the queue keeps working.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from . import _profile
from ._errors import DeviceTimeout, InvalidArgumentError, InvalidHandleError, shown
from ._event import Event, Timeline
from ._launch import CompiledKernel
from ._memory import Array
from .backend import CommandTrace, QueueImpl
from .kernel._narrow import astype

if TYPE_CHECKING:
    from ._capture import Capture
    from ._device import Device
    from ._graph import Capturing

T = TypeVar("T")


class Queue:
    __slots__ = ("device", "impl", "name", "_keep", "_kept", "_keep_lock", "_closed", "_last_kernel", "_hazards",
                 "_finalizer", "_closing", "_timeline", "_capture", "__weakref__")

    def __init__(self, device: Device, impl: QueueImpl[Any], name: str) -> None:
        self.device = device
        self.impl = impl
        self.name = name
        self._keep: list[tuple[int, Any]] = []  # (ticket, host array) the queue reads or writes asynchronously
        self._kept = 0  # tickets handed out
        self._keep_lock = threading.Lock()
        self._closed = False
        self._last_kernel: str | None = None  # named by a timeout
        self._hazards = device._hazards
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._closing = threading.Lock()
        """Held while the core looks at the backend queue from outside (``_if_busy``) and while it
        closes it, so no thread calls into a backend queue that another thread has closed."""
        self._timeline = Timeline()
        self._capture: Capture | None = None
        """The open ``capture()`` of this queue, if any (its Recorder is ``impl`` meanwhile)."""

    # ------------------------------------------------------------ commands
    def copy(self, dst: Array | np.ndarray, src: Array | np.ndarray, *, blocking: bool = True) -> None:
        """Copy ``src`` into ``dst`` (same shape and dtype). Either side may be a host ndarray;
        such copies wait for completion unless ``blocking=False`` (then keep the host array
        unchanged until the queue is synchronised). Arrays of another device go through the host."""
        device = self.device
        if (type(dst) is Array and type(src) is Array and dst.device is device and src.device is device
                and dst.shape == src.shape and dst.dtype == src.dtype and not self._closed and not dst._block.readonly):
            if dst.nbytes:  # the common case, checked in one expression: device to device
                if dst._block is src._block and abs(dst.offset - src.offset) < dst.nbytes:
                    self._copy_overlapping(dst, src)
                    return
                if self._hazards is not None:
                    self._hazards.command(self, "copy", (src,), (dst,))
                self.impl.copy(dst.buffer, dst.offset, src.buffer, src.offset, src.nbytes,
                               self._trace("copy", "copy_d2d", dst.nbytes) if _profile.ACTIVE else None)
            return
        self._check_open()
        d_is, s_is = isinstance(dst, Array), isinstance(src, Array)
        if not (d_is or s_is):
            raise InvalidArgumentError("q.copy needs at least one hal.Array; use numpy.copyto for host copies")
        _check_same(dst, src)
        if d_is:
            dst._check_writable("q.copy")  # type: ignore[union-attr]
        if d_is and s_is:
            self._copy_across_devices(dst, src)  # type: ignore[arg-type]  # same device: the fast path above
            return
        if blocking and self._capture is not None:
            raise self._capture.refuse("a blocking host copy", "pass blocking=False to record a host-to-device "
                                       "copy (its data is taken now); read device data after the capture")
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

    def _copy_overlapping(self, dst: Array, src: Array) -> None:
        """``q.copy`` of regions that share bytes is memmove: dst ends up with what src held before.
        Backends copy between disjoint regions only, so it goes through a temporary (freed in
        stream order: its memory is reused only after both copies); the same region is already
        in place."""
        if dst.offset != src.offset:
            staging = self.device.empty(src.shape, src.dtype)
            self.copy(staging, src)
            self.copy(dst, staging)
            staging.free()

    def _copy_across_devices(self, dst: Array, src: Array) -> None:
        """Arrays of two devices (of different backends too): through the host, done for the user."""
        if self._capture is not None:
            raise self._capture.refuse("a copy between two devices", "it goes through the host now; copy "
                                       "before the capture or after g.launch()")
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
            if self._hazards is not None:
                self._hazards.command(self, "host-to-device copy", (), (dst,))
            self.impl.write(dst.buffer, dst.offset, host.reshape(-1).view(np.uint8),
                            self._trace("write", "copy_h2d", dst.nbytes) if _profile.ACTIVE else None)
            self._keep_until_synchronized(host)

    def read(self, host: np.ndarray, src: Array) -> None:
        """Enqueue device -> host into a C-contiguous, writable host array of src's nbytes."""
        if src.nbytes:
            if self._hazards is not None:
                self._hazards.command(self, "device-to-host copy", (src,), ())
            self.impl.read(host.reshape(-1).view(np.uint8), src.buffer, src.offset,
                           self._trace("read", "copy_d2h", src.nbytes) if _profile.ACTIVE else None)
            self._keep_until_synchronized(host)

    def _keep_until_synchronized(self, host: np.ndarray) -> None:
        """Hold ``host`` until a synchronize that began after this enqueue returned (API 1.0
        backends rely on it); tickets keep a concurrent synchronize from dropping it early."""
        with self._keep_lock:
            self._kept += 1
            self._keep.append((self._kept, host))

    def fill(self, arr: Array, value: Any) -> None:
        """Set every element of ``arr`` to ``value`` (which must be representable in its dtype)."""
        self._check_open()
        self._on_this_device(arr, "arr")
        arr._check_writable("q.fill")
        key = _pattern_key(arr.dtype, value)
        pattern = _PATTERNS.get(key) if key is not None else None
        if pattern is None:
            pattern = _fill_pattern(arr, value)
            if key is not None and len(_PATTERNS) < 1024:
                _PATTERNS[key] = pattern
        if arr.nbytes:
            if self._hazards is not None:
                self._hazards.command(self, "fill", (), (arr,))
            self.impl.fill(arr.buffer, arr.offset, arr.nbytes, pattern,
                           self._trace("fill", "fill", arr.nbytes) if _profile.ACTIVE else None)

    def launch(self, kernel: Any, grid: Any, block: Any, *args: Any) -> None:
        """Run ``kernel`` on ``grid`` work-groups of ``block`` work-items; same as
        ``kernel[grid, block, q](*args)``."""
        device = self.device
        try:
            compiled = kernel._compiled.get(device)
        except AttributeError:
            compiled = kernel if type(kernel) is CompiledKernel else None
        if compiled is None or compiled.device is not device:
            specializer = getattr(kernel, "specializer", None)
            if specializer is not None:  # a generic kernel: its specialisation for these arguments
                kernel, args = specializer.select(args)
                compiled = kernel._compiled.get(device)
            if compiled is None:
                compiled = (device.compile(kernel) if self._closed else
                            self._timeline.stalled(self.impl, lambda: device.compile(kernel)))
        g, b = compiled.dims(grid, block)
        bound = compiled.bind(args)
        if self._closed:
            self._check_open()
        if g[0] and g[1] and g[2]:
            if self._hazards is not None:
                self._hazards.launch(self, compiled.ir, args)
            self._last_kernel = compiled.name
            self.impl.launch(compiled.impl, g, b, bound,
                             self._trace(compiled.name, "kernel", 0, g, b) if _profile.ACTIVE else None)

    # ------------------------------------------------------------ ordering
    def record(self) -> Event:
        """A marker after everything enqueued so far."""
        self._check_open()
        if self._capture is not None:
            raise self._capture.refuse("q.record()", "order around the whole graph instead: "
                                       "g.launch(q); q2.wait(q.record())")
        event = Event(self.device, *self._timeline.record(self.impl), self)
        if self._hazards is not None:
            event._token = self._hazards.record(self)
        return event

    def wait(self, event: Event) -> None:
        """Later commands of this queue wait until ``event`` completes (the host does not block;
        an event of another device is waited for by the host)."""
        self._check_open()
        if self._capture is not None:
            raise self._capture.refuse("q.wait(event)", "wait before the graph instead: q.wait(e); g.launch(q)")
        if not isinstance(event, Event):
            raise InvalidArgumentError(f"q.wait takes a hal.Event (from q.record()), got {type(event).__name__}")
        if event.device is self.device:
            self.impl.wait(event.impl)
            if self._hazards is not None:
                self._hazards.wait(self, event._token)
        else:
            event.synchronize()

    def synchronize(self, timeout: float | None = None) -> None:
        """Wait for all enqueued work; raise the first ``DeviceFault`` it met, if any.

        ``timeout`` (seconds) is a time limit: when it runs out, the running kernel is aborted
        where the backend can (the next synchronize reports it as a ``DeviceFault``), and
        ``DeviceTimeout`` names the queue and its last kernel. Ctrl-C interrupts the wait."""
        if self._closed:
            return
        if self._capture is not None and self._capture.thread == threading.get_ident():
            raise self._capture.refuse("q.synchronize()", "synchronize after the capture")
        with self._keep_lock:
            ticket = self._kept
        wait_until(self.impl.drain, timeout, self._timed_out, self.device)
        try:
            self.impl.synchronize()
        finally:
            with self._keep_lock:
                done = next((i for i, (t, _) in enumerate(self._keep) if t > ticket), len(self._keep))
                del self._keep[:done]
            if self._hazards is not None:
                self._hazards.host_wait(self)

    def capture(self) -> Capturing:
        """``with q.capture() as g:`` records the kernels, copies, fills and ``hal.ops`` calls enqueued
        on this queue (checked as usual, run never) into the :class:`hal.Graph` ``g``; ``g.launch()``
        replays them. Host reads, synchronisation and events inside are a ``hal.CaptureError``."""
        from ._graph import Capturing

        return Capturing(self)

    def abort(self) -> bool:
        """Stop the command running on this queue where the backend can (cpu: at the kernel's next
        work-group or ``while`` iteration); the next synchronize raises it as a ``DeviceFault`` and
        later commands run as usual. False when nothing was aborted (or the backend cannot)."""
        self._check_open()
        return self.impl.abort()

    def _timed_out(self, timeout: float) -> DeviceTimeout:
        running = self.impl.running()
        aborted = self.impl.abort()
        kernel = (f"; it is running kernel {running!r}" if running else
                  f"; its last kernel is {self._last_kernel!r}" if self._last_kernel else "")
        then = ("the running command was aborted and the next synchronize reports it; later commands run "
                "as usual" if aborted else
                f"{self.device.info.name} cannot abort a running command: it keeps running, and a later "
                "synchronize waits for it")
        return DeviceTimeout(f"{self!r} did not finish within {timeout:g} s{kernel}; {then}")

    def close(self) -> None:
        """Drain the queue and release it; later use raises InvalidHandleError."""
        if self._closed or self is self.device._default_queue:
            return
        with self._closing:
            if self._closed:
                return
            self.synchronize()
            self._closed = True
            self.device._forget_queue(self)
            self.impl.close()
        if self._finalizer is not None:
            self._finalizer.detach()

    def _if_busy(self, then: Callable[[Queue], T]) -> T | None:
        """``then(self)`` if the queue is open and has work in flight, else None; the queue cannot
        be closed meanwhile (device-wide waits and the pool call this on every queue)."""
        with self._closing:
            if self._closed or self.impl.idle():
                return None
            return then(self)

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

    def command_trace(self, name: str, kind: str, nbytes: int = 0, reads: Sequence[Array] = (),
                      writes: Sequence[Array] = ()) -> CommandTrace | None:
        """Announce a backend-defined command (a native operator, say) about to be enqueued on
        this queue, with the arrays it reads and writes (checked for hazards under HAL_CHECK=1);
        returns its trace, or None when no profile is open; the backend fills it like any other."""
        for arr in writes:
            arr._check_writable(name)
        if self._hazards is not None:
            self._hazards.command(self, name, reads, writes)
        return self._trace(name, kind, nbytes) if _profile.ACTIVE else None

    def _trace(self, name: str, kind: str, nbytes: int, grid: Any = None, block: Any = None) -> CommandTrace | None:
        if self._capture is not None:
            return None  # recorded, not run: its replays are profiled
        trace = CommandTrace(name, kind, self.device.spec, grid, block, nbytes, wall_start=time.perf_counter())
        for prof in _profile.ACTIVE:
            prof.add(trace, self)
        return trace

    def __repr__(self) -> str:
        return f"<hal.Queue {self.name} of {self.device.spec}{' (closed)' if self._closed else ''}>"


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
    return np.require(src, requirements="C")  # a strided view is copied, never misread; 0-d stays 0-d


def _host_dest(dst: np.ndarray) -> np.ndarray:
    if not isinstance(dst, np.ndarray):
        raise InvalidArgumentError(f"q.copy destination must be a hal.Array or numpy.ndarray, "
                                   f"got {type(dst).__name__}")
    if not dst.flags.c_contiguous or not dst.flags.writeable:
        raise InvalidArgumentError("q.copy into a host array needs a C-contiguous, writable numpy array; "
                                   "copy into np.empty(shape, dtype) and assign from it")
    return dst


_PATTERNS: dict[tuple[Any, type, Any], bytes] = {}
"""Fill patterns already checked and encoded, by :func:`_pattern_key`."""


def _pattern_key(dtype: np.dtype[Any], value: Any) -> tuple[Any, type, Any] | None:
    """A cache key that tells apart every value with a different pattern: -0.0 is not 0.0 and
    NaNs are not cached; None for values that are not plain hashable scalars."""
    kind = type(value)
    if kind is float or isinstance(value, np.floating):
        if value != value or (value == 0 and math.copysign(1.0, value) < 0):
            return None
    elif not (kind is int or kind is bool or isinstance(value, (np.integer, np.bool_))):
        return None
    return (dtype, kind, value)


def track(queue: Queue) -> Queue:
    """Close ``queue``'s backend queue when it is dropped without ``close()`` (its worker thread,
    C queue, ... would otherwise live on); the default queue lives as long as its device."""
    def close(impl: QueueImpl[Any] = queue.impl) -> None:
        try:
            impl.close()
        except Exception:  # a fault nobody can receive any more: the queue is gone
            pass
    queue._finalizer = weakref.finalize(queue, close)
    queue._finalizer.atexit = False  # at exit, a kernel that never ends must not block the interpreter
    return queue


def wait_until(drain: Callable[[float], bool], timeout: float | None,
               timed_out: Callable[[float], Exception], device: Device) -> None:
    """Wait through ``drain(slice)`` in slices of at most 0.1 s, so that Ctrl-C (raised by Python
    between slices) and ``timeout`` work even while a backend blocks in C."""
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout >= 0):
        raise InvalidArgumentError(f"timeout is a number of seconds >= 0 (or None to wait forever), got {timeout!r}")
    deadline = None if timeout is None else time.monotonic() + timeout
    step = 0.1 if timeout is None else min(0.1, timeout)
    while not drain(step):
        if device._forked:
            device._raise_forked()
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise timed_out(timeout)  # type: ignore[arg-type]
            step = min(0.1, left)


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
    pattern = _cast(value, dtype) if ok else None
    if pattern is None:
        raise InvalidArgumentError(f"cannot fill a {dtype} array with {shown(value)}: the value is not "
                                   f"representable in {dtype}; pass one within the dtype's range")
    return pattern.tobytes()


def _cast(value: Any, dtype: np.dtype[Any]) -> np.ndarray | None:
    """``value`` in ``dtype``; None for a finite number that only overflows to an infinity there
    (``2**1030`` in float64, ``1e300`` in float32)."""
    with np.errstate(over="ignore"):
        try:
            cast = astype(np.array(float(value) if isinstance(value, int) and dtype.kind not in "iub" else value), dtype)
        except OverflowError:  # a Python int beyond float64
            return None
    if np.isinf(cast.astype(np.float64)) and math.isfinite(value):
        return None
    return cast
