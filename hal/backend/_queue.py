"""QueueImpl: an in-order, asynchronous command stream, and the profiling record of one command."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic

from ._memory import B

if TYPE_CHECKING:
    import numpy as np

    from ._event import EventImpl
    from ._program import Executable

Dim3 = tuple[int, int, int]
"""A grid (work-groups per dimension) or a block (work-items per dimension), always 3-D."""


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


class QueueImpl(ABC, Generic[B]):
    """An in-order, asynchronous command stream over the backend's buffers ``B``.

    Enqueue calls return before the work is done; commands run in the order they were
    enqueued. Faults met while running are kept and raised (as ``DeviceFault``) by the next
    ``synchronize``; later commands still run. The core may call one queue from several
    threads (it never enqueues on a queue while closing it): guard shared state. Offsets and
    sizes are bytes and already checked against the buffers; ``trace`` is None unless
    profiling is on.
    """

    @abstractmethod
    def copy(self, dst: B, dst_offset: int, src: B, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None:
        """Device to device, within this device (the regions never overlap)."""

    @abstractmethod
    def write(self, dst: B, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        """Host to device of ``src.nbytes`` bytes. ``src`` is a C-contiguous uint8 array, kept
        alive and unchanged by the core until a later ``synchronize`` returns."""

    @abstractmethod
    def read(self, dst: np.ndarray, src: B, src_offset: int, trace: CommandTrace | None) -> None:
        """Device to host of ``dst.nbytes`` bytes into the C-contiguous, writable uint8 array
        ``dst`` (kept alive by the core until a later ``synchronize`` returns)."""

    @abstractmethod
    def fill(self, dst: B, offset: int, nbytes: int, pattern: bytes, trace: CommandTrace | None) -> None:
        """Repeat ``pattern`` (1, 2, 4 or 8 bytes; ``nbytes`` and ``offset`` are multiples of it)."""

    @abstractmethod
    def launch(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any],
               trace: CommandTrace | None) -> None:
        """Run ``exe`` (from this device's ``compile``). ``args`` follow ``exe.kernel.params``: an
        :class:`ArgBuffer` for each pointer parameter, a Python int/float/bool already
        range-checked for each scalar. ``grid`` and ``block`` are within ``DeviceInfo``'s limits."""

    @abstractmethod
    def record(self) -> EventImpl:
        """A marker after every command enqueued so far."""

    @abstractmethod
    def wait(self, event: EventImpl) -> None:
        """Commands enqueued after this call wait until ``event`` (of any queue of this device)
        completes; the host does not block."""

    @abstractmethod
    def synchronize(self) -> None:
        """Block until all enqueued work is done; then raise the first pending fault, if any."""

    def close(self) -> None:  # noqa: B027 - optional: most queues have nothing to release
        """Optional: release the queue's resources. The core calls it once, after a
        ``synchronize`` (or when the queue is collected), and never uses the queue again."""

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

    def running(self) -> str | None:
        """Optional (1.7): the name of the kernel this queue runs now, which a timeout names (None:
        not known, and the core names the last kernel enqueued)."""
        return None
