"""A per-device caching allocator, after CuPy's memory pool.

Freed memory goes back to size-binned free lists and is reused, so a loop
that allocates and frees does not pay the backend (or the OS) each time. A
block freed while queues still have work in flight is parked until markers
recorded on those queues complete (stream-ordered reuse without a sync).
The capacity check counts what the pool caches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidHandleError, OutOfMemoryError
from .backend import Buffer, DeviceImpl, EventImpl

ROUND = 512
"""Allocation granularity in bytes: requests are rounded up to it and binned by size."""


@dataclass(frozen=True)
class MemoryStats:
    """``dev.memory_stats()``: bytes handed out, bytes cached for reuse, high-water mark, capacity,
    and host memory the backend caches for transfers (``x.numpy()`` results, staging)."""

    in_use: int
    cached: int
    peak: int
    capacity: int
    host_cached: int = 0


class Block:
    """One allocation handed out by the pool; Arrays, their views and host exports share it.

    ``exports`` counts live host views (DLPack, ``_export_view``): while any exists, a
    released block keeps its memory (``orphan``) and the last view returns it to the pool.

    An ``adopted`` block is memory of another library imported without a copy (``dev.asarray``):
    its buffer keeps the producer alive; releasing it never frees it or caches it for reuse: the
    pool drops the reference once the queued commands that may use it have completed.
    ``readonly``: the producer does not allow writes (a JAX array), so no command writes it.
    """

    __slots__ = ("buffer", "size", "pool", "exports", "orphan", "adopted", "readonly", "__weakref__")

    def __init__(self, buffer: Buffer[Any], size: int, pool: MemoryPool, adopted: bool = False,
                 readonly: bool = False) -> None:
        self.buffer: Buffer[Any] | None = buffer
        self.size = size
        self.pool = pool
        self.exports = 0
        self.orphan: Buffer[Any] | None = None
        self.adopted = adopted
        self.readonly = readonly

    def release(self) -> bool:
        """Return the memory to the pool (once no host view uses it); False if already released."""
        with _EXPORTS:
            buffer, self.buffer = self.buffer, None
            if buffer is None:
                return False
            if self.exports:
                self.orphan = buffer
                return True
        self.pool.give_back(buffer, self.size, self.adopted)
        return True

    def export(self) -> Buffer[Any]:
        """Count one more host view of the memory; returns the buffer it views."""
        with _EXPORTS:
            buffer = self.buffer
            if buffer is None:
                raise InvalidHandleError("this array was freed; allocate a new one")
            self.exports += 1
            return buffer

    def unexport(self) -> None:
        """A host view went away; the last one of a released block gives its memory back (through
        ``drop``: this runs from a finalizer, possibly inside the pool's own locked code)."""
        with _EXPORTS:
            self.exports -= 1
            orphan = self.orphan if not self.exports else None
            if orphan is not None:
                self.orphan = None
        if orphan is not None:
            self.pool.drop(orphan, self.size, self.adopted)

    def __del__(self) -> None:
        # An Array dropped without free() still returns its memory (no export holds the block).
        buffer, self.buffer = self.buffer, None
        if buffer is not None:
            self.pool.drop(buffer, self.size, self.adopted)


_EXPORTS = threading.Lock()
"""Guards ``Block.buffer/exports/orphan``; held for a few assignments only, never around a backend
call or an allocation, so a finalizer can take it whatever the interrupted code holds."""


class MemoryPool:
    def __init__(self, impl: DeviceImpl[Any], capacity: int, device_name: str,
                 pending_events: Callable[[], list[EventImpl]]) -> None:
        self._impl = impl
        self._capacity = capacity
        self._name = device_name
        self._pending_events = pending_events
        self._lock = threading.Lock()
        self._bins: dict[int, list[Buffer[Any]]] = {}
        self._parked: list[tuple[Buffer[Any], int, list[EventImpl]]] = []
        self._in_use = 0
        self._cached = 0
        self._peak = 0
        self._dropped: list[tuple[Buffer[Any], int, bool]] = []
        """Memory of blocks collected by the garbage collector, returned at the next pool call."""
        self._retiring: list[tuple[Buffer[Any], list[EventImpl]]] = []
        """Adopted buffers released while queues had work in flight: dropped once it completed."""

    def adopt(self, buffer: Buffer[Any], readonly: bool) -> Block:
        """A block over memory the backend adopted (``DeviceImpl.adopt_host``); not counted as the
        pool's, never freed or reused by it."""
        return Block(buffer, buffer.nbytes, self, adopted=True, readonly=readonly)

    def drop(self, buffer: Buffer[Any], size: int, adopted: bool = False) -> None:
        """``give_back`` for finalizers: a collection can run inside the pool's locked code (a
        backend call that allocates), so this only appends (atomic) and the next pool call
        returns the memory, behind markers of the queues busy by then (later, so still safe)."""
        self._dropped.append((buffer, size, adopted))

    def _reclaim(self) -> None:
        while self._dropped:
            try:
                buffer, size, adopted = self._dropped.pop()
            except IndexError:  # another thread took the last one
                return
            self.give_back(buffer, size, adopted)

    def reap(self) -> None:
        """Return what finalizers dropped and let go of adopted memory no queued command uses any
        more (the device calls it after waiting for its queues)."""
        if self._dropped:
            self._reclaim()
        if self._retiring:
            with self._lock:
                self._unpark()

    def allocate(self, nbytes: int) -> Block:
        size = -(-max(nbytes, 1) // ROUND) * ROUND
        if self._dropped:
            self._reclaim()
        with self._lock:
            if self._parked or self._retiring:
                self._unpark()
            free = self._bins.get(size)
            if free:
                buffer = free.pop()
                self._cached -= size
            else:
                if self._in_use + self._cached + size > self._capacity:
                    self._drop_cache()
                if self._in_use + size > self._capacity:
                    raise OutOfMemoryError(
                        f"cannot allocate {format_bytes(nbytes)} on {self._name}: {format_bytes(self._in_use)} of "
                        f"{format_bytes(self._capacity)} are in use; free arrays you no longer need (x.free()) "
                        f"or use smaller ones")
                try:
                    buffer = self._impl.allocate(size)
                except OutOfMemoryError:
                    self._drop_cache()
                    buffer = self._impl.allocate(size)
            self._in_use += size
            self._peak = max(self._peak, self._in_use)
        return Block(buffer, size, self)

    def give_back(self, buffer: Buffer[Any], size: int, adopted: bool = False) -> None:
        events = self._pending_events()
        if adopted:  # not the pool's memory: keep the reference only while queued work may use it
            with self._lock:
                if self._retiring:
                    self._unpark()
                if events:
                    self._retiring.append((buffer, events))
            return
        with self._lock:
            self._in_use -= size
            self._cached += size
            if events:
                self._parked.append((buffer, size, events))
            else:
                self._bins.setdefault(size, []).append(buffer)

    def _unpark(self) -> None:
        self._retiring = [(buffer, events) for buffer, events in self._retiring
                          if not all(e.query() for e in events)]
        still = []
        for buffer, size, events in self._parked:
            if all(e.query() for e in events):
                self._bins.setdefault(size, []).append(buffer)
            else:
                still.append((buffer, size, events))
        self._parked = still

    def _drop_cache(self) -> None:
        for size, buffers in self._bins.items():
            for buffer in buffers:
                self._impl.free(buffer)
                self._cached -= size
        self._bins.clear()

    def release_cache(self) -> int:
        """Return every cached block to the backend (waiting for parked ones); bytes released."""
        self._reclaim()
        with self._lock:
            for _, _, events in self._parked:
                for e in events:
                    e.synchronize()
            self._unpark()
            before = self._cached
            self._drop_cache()
            return before - self._cached

    def stats(self) -> MemoryStats:
        self.reap()
        with self._lock:
            return MemoryStats(self._in_use, self._cached, self._peak, self._capacity)


def format_bytes(n: int) -> str:
    """``n`` bytes as a short human-readable size (B, KiB, MiB, ...)."""
    if abs(n) < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if abs(size) < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"
