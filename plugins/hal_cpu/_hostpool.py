"""A caching host allocator for the arrays that ``x.numpy()`` returns.

Fresh host memory costs a page fault and a zeroing per 4 KiB page on first touch,
which is most of the time of a large device-to-host copy. Like CuPy's pinned memory
pool and PyTorch's caching host allocator, this pool keeps the pages of host
arrays the program has dropped and hands them out again: the numpy array holds a
cffi pointer whose destructor returns its block here instead of freeing it.

Blocks come in size classes (eight per power of two), so arrays of near sizes share
them and a program reading arrays of ever-changing sizes reuses its blocks instead
of caching one per size; what the pool caches is capped, counted and releasable.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import numpy as np

from ._runtime import ffi, lib

PAGE = 4096
MIN_BYTES = 1 << 20
"""Smaller arrays come from numpy: their page faults are few, and numpy's allocator is faster."""
CLASS_BITS = 3
"""2**CLASS_BITS size classes per power of two: a block wastes less than 1/8 of its bytes."""


def size_class(nbytes: int) -> int:
    """The block size that serves ``nbytes``: the next multiple of 1/8 of its power of two (whole pages)."""
    step = max(PAGE, 1 << (nbytes.bit_length() - 1 - CLASS_BITS))
    return -(-nbytes // step) * step


def default_limit() -> int:
    """What a device's pool caches at most: 1/16 of the RAM, and never more than 1 GiB."""
    return min(int(lib.hal_physical_memory()) // 16, 1 << 30)


class HostPool:
    def __init__(self, limit: int) -> None:
        self._free: dict[int, list[Any]] = {}
        self._cached = 0
        self._limit = limit
        self._lock = threading.RLock()
        """Reentrant: a block's destructor (``_give_back``) may run from a garbage collection that
        an allocation inside the lock triggered."""
        _pools.add(self)

    def take(self, nbytes: int) -> np.ndarray | None:
        """A uint8 array of ``nbytes`` backed by recycled memory, or None below MIN_BYTES."""
        if nbytes < MIN_BYTES:
            return None
        size = size_class(nbytes)
        with self._lock:
            blocks = self._free.get(size)
            ptr = blocks.pop() if blocks else None
            if ptr is not None:
                self._cached -= size
        if ptr is None:
            ptr = lib.hal_alloc(size)
            if ptr == ffi.NULL:
                return None  # numpy.empty then raises MemoryError its own way
        owned = ffi.gc(ptr, lambda p, size=size: self._give_back(p, size), size)
        return np.frombuffer(ffi.buffer(owned, size), np.uint8)[:nbytes]

    def cached_bytes(self) -> int:
        """Bytes of dropped arrays kept for reuse."""
        return self._cached

    def release(self) -> int:
        """Free every cached block; the bytes freed."""
        with self._lock:
            free, self._free = self._free, {}
            released, self._cached = self._cached, 0
        for blocks in free.values():
            for ptr in blocks:
                lib.hal_free(ptr)
        return released

    def _give_back(self, ptr: Any, size: int) -> None:
        with self._lock:
            if self._cached + size <= self._limit:
                self._free.setdefault(size, []).append(ptr)
                self._cached += size
                return
        lib.hal_free(ptr)

    def _after_fork_in_child(self) -> None:
        """A fresh lock (another thread may have held this one at fork) and a recount of the cache."""
        self._lock = threading.RLock()
        self._cached = sum(size * len(blocks) for size, blocks in self._free.items())


_pools: weakref.WeakSet[HostPool] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pool in list(_pools):
        pool._after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
