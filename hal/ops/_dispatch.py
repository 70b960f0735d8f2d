"""Operator dispatch: which implementation runs ``hal.ops.<op>`` on a device, chosen once.

Native implementations arrive from the ``hal_ops`` hook of plugins (:class:`hal.backend.NativeOp`,
called on the backend's own queue and buffers: the contract is in :mod:`hal.backend._ops`) or
from :func:`register` (:class:`OpImpl`, called on hal's own Arrays and Queue). For each
``(op, device)`` the highest-priority native whose ``backends``/``accepts`` match wins; without
one, the portable kernel-language implementation runs on any device that declares
``Feature.KERNELS``; otherwise the op raises ``UnsupportedError``. The choice is cached, so a call
pays one dict lookup. Nothing falls back at call time: an ``UnsupportedError`` from the chosen
implementation reaches the caller.

An :class:`OpImpl`'s ``fn`` takes the vendor signatures of :mod:`hal.backend._ops` with hal
objects instead: no leading queue, each ``Operand`` a C-contiguous ``hal.Array``, and
``queue=`` (a ``hal.Queue`` of the operands' device) instead of ``trace=``; for example
``fn(a, b, out, *, alpha, beta, trans_a, trans_b, queue)`` for gemm and
``fn(op_name, a, b, out, *, queue)`` for the binary family.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import InvalidArgumentError, UnsupportedError
from .._features import Feature
from ..backend import FAMILIES, FAMILY_OF, NativeOp, Operand

if TYPE_CHECKING:
    from .._device import Device
    from .._queue import Queue

__all__ = ["FAMILIES", "FAMILY_OF", "OpImpl", "dispatcher", "register", "unregister"]


@dataclass(frozen=True)
class OpImpl(NativeOp):
    """An in-process implementation (tests, notebooks, frameworks) called on hal's own objects:
    ``hal.Array`` operands, ``queue=`` a ``hal.Queue``; ``accepts`` gets the ``hal.Device``.
    Plugins return :class:`hal.backend.NativeOp` instead (vendor API 1.2)."""

    def serves(self, op: str, device: Device) -> bool:
        return (self.names(op) and (self.backends is None or device.backend.name in self.backends)
                and (self.accepts is None or bool(self.accepts(device))))


def _serves(impl: NativeOp, op: str, device: Device) -> bool:
    if isinstance(impl, OpImpl):
        return impl.serves(op, device)
    return (impl.names(op) and (impl.backends is None or device.backend.name in impl.backends)
            and (impl.accepts is None or bool(impl.accepts(device.info))))


def _on_backend_objects(op: str, fn: Callable[..., None]) -> Callable[..., None]:
    """A NativeOp's ``fn`` behind the OpImpl signature: the command announced to the queue (hazard
    checks, profile), then ``fn`` on the backend's queue with each Array as an Operand."""
    from .._memory import Array

    def call(*args: Any, queue: Queue, **params: Any) -> None:
        arrays = [a for a in args if type(a) is Array]
        trace = queue.command_trace(op, "op", sum(a.nbytes for a in arrays), reads=arrays[:-1],
                                    writes=arrays[-1:])
        operands = [Operand(a.buffer, a.offset, a.shape, a.dtype) if type(a) is Array else a for a in args]
        if queue._capture is not None:  # recorded: replayed on whichever backend queue launches the graph
            queue._capture.call(op, lambda impl: fn(impl, *operands, trace=None, **params), (args, params))
            return
        fn(queue.impl, *operands, trace=trace, **params)
    return call


class Dispatcher:
    """The natives known in this process and the per-(op, device) choice made from them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registered: list[NativeOp] = []
        self._warned: set[int] = set()
        self._cache: dict[tuple[str, Device], Callable[..., Any]] = {}

    def register(self, impl: NativeOp) -> NativeOp:
        """Add a native in-process (tests, notebooks); choices made before are recomputed."""
        if not isinstance(impl, NativeOp):
            raise InvalidArgumentError(f"hal.ops.register takes a hal.ops.OpImpl (or a hal.backend.NativeOp), "
                                       f"got {type(impl).__name__}")
        with self._lock:
            self._registered.append(impl)
            self._cache.clear()
        return impl

    def unregister(self, impl: NativeOp) -> None:
        """Remove a native added with :meth:`register`."""
        with self._lock:
            if impl not in self._registered:
                raise InvalidArgumentError(f"{impl!r} was not registered with hal.ops.register")
            self._registered.remove(impl)
            self._cache.clear()

    def clear_cache(self) -> None:
        """Forget every choice (after plugins were added in-process); the next call chooses again."""
        with self._lock:
            self._cache.clear()

    def lookup(self, op: str, device: Device) -> Callable[..., Any]:
        """The implementation of ``op`` on ``device`` (cached after the first call)."""
        fn = self._cache.get((op, device))
        if fn is None:
            fn = self._choose(op, device)
            with self._lock:
                self._cache[(op, device)] = fn
        return fn

    def choice(self, op: str, device: Device) -> NativeOp | None:
        """The native that serves ``op`` on ``device``, or None when the portable kernel does."""
        from .._plugins import registry

        best: tuple[int, int, int] | None = None
        chosen: NativeOp | None = None
        plugged = registry.ops_impls()
        for impl in plugged:
            if isinstance(impl, OpImpl) and id(impl) not in self._warned:
                self._warned.add(id(impl))
                warnings.warn(f"the hal_ops hook of {getattr(impl.fn, '__module__', '?')} returned a hal.ops.OpImpl "
                              f"for {impl.op!r}, the vendor API 1.0 convention (hal Arrays and Queues), deprecated "
                              f"since 1.2: return hal.backend.NativeOp, called on the backend's own queue and "
                              f"buffers", DeprecationWarning, stacklevel=2)
        for order, impl in enumerate([*plugged, *self._registered]):
            if not isinstance(impl, NativeOp) or not _serves(impl, op, device):
                continue
            key = (impl.priority, impl.op == op, order)
            if best is None or key > best:
                best, chosen = key, impl
        return chosen

    def portable_for(self, op: str, device: Device) -> Callable[..., Any]:
        """The portable implementation, or UnsupportedError when the device runs no kernels."""
        if Feature.KERNELS not in device.info.features:
            raise UnsupportedError(f"hal.ops.{op} cannot run on {device.info.name} ({device.spec}): it runs no "
                                   f"kernels and no plugin provides a native {op}", feature=Feature.KERNELS.value)
        from ._portable import PORTABLE  # kernels are built on first use only

        return PORTABLE[FAMILY_OF[op]]

    def _choose(self, op: str, device: Device) -> Callable[..., Any]:
        native = self.choice(op, device)
        if native is None:
            return self.portable_for(op, device)
        if isinstance(native, OpImpl):
            return native.fn
        return _on_backend_objects(op, native.fn)


dispatcher = Dispatcher()
register = dispatcher.register
unregister = dispatcher.unregister
