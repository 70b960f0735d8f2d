"""EventImpl: a marker in a queue's command stream."""

from __future__ import annotations

from abc import ABC, abstractmethod


class EventImpl(ABC):
    """A marker that a :class:`QueueImpl` hands out from ``record()``. The core calls it from any
    thread, possibly while the queue enqueues: keep it thread-safe."""

    @abstractmethod
    def query(self) -> bool:
        """True once every command enqueued before the marker has completed. Never blocks."""

    @abstractmethod
    def synchronize(self) -> None:
        """Block until ``query()`` is true."""

    @abstractmethod
    def time(self) -> float:
        """Device-clock seconds when the marker completed (simulated seconds on a simulated
        device); only differences matter. Called only after ``synchronize``."""

    def wait(self, timeout: float) -> bool:
        """Optional (1.1): block at most ``timeout`` seconds; True once ``query()`` is true.

        The core waits in slices through it so that Ctrl-C and ``timeout=`` work; the
        default blocks until done, which is correct but not interruptible."""
        self.synchronize()
        return True
