"""A caching host allocator for the arrays that ``x.numpy()`` returns.

Fresh host memory costs a page fault and a zeroing per 4 KiB page on first touch,
which is most of the time of a large device-to-host copy. Like CuPy's pinned memory
pool and PyTorch's caching host allocator, this pool keeps the pages of host
arrays the program has dropped and hands them out again: the numpy array holds a
cffi pointer whose destructor returns its block here instead of freeing it.
"""

from __future__ import annotations

import threading

import numpy as np

from ._runtime import ffi, lib

PAGE = 4096
MIN_BYTES = 1 << 20
"""Smaller arrays come from numpy: their page faults are few, and numpy's allocator is faster."""


class HostPool:
    def __init__(self, limit: int) -> None:
        self._free: dict[int, list[object]] = {}
        self._cached = 0
        self._limit = limit
        self._lock = threading.Lock()

    def take(self, nbytes: int) -> np.ndarray | None:
        """A uint8 array of ``nbytes`` backed by recycled memory, or None below MIN_BYTES."""
        if nbytes < MIN_BYTES:
            return None
        size = -(-nbytes // PAGE) * PAGE
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

    def _give_back(self, ptr: object, size: int) -> None:
        with self._lock:
            if self._cached + size <= self._limit:
                self._free.setdefault(size, []).append(ptr)
                self._cached += size
                return
        lib.hal_free(ptr)
