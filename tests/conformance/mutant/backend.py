"""The reference backend: a correct, realistic device that any planted bug (``bugs.py``) breaks.

Its memory sits behind opaque handles (the host cannot address it), each queue has a worker
thread and each command occupies it for a modelled time, ``LATENCY + bytes / BANDWIDTH``: a
command reads its inputs when it starts and its results land when it ends, as DMA does, so a
missing wait or an early event shows as stale data instead of passing by luck. Kernels run on
hal's reference interpreter. ``mutant:0`` keeps wall-clock time; ``mutant:1`` is a simulated
device whose clock advances by the modelled time.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hal.backend import (
    Backend,
    Buffer,
    CommandTrace,
    DeviceFault,
    DeviceImpl,
    DeviceInfo,
    Dim3,
    EventImpl,
    Executable,
    Feature,
    HalError,
    OutOfMemoryError,
    QueueImpl,
    interpret,
    kernel_args,
)
from hal.kernel import ir

from .bugs import active

MEMORY = 64 << 20
"""Declared memory."""
RESERVED = 1 << 20
"""What the device keeps for itself: allocations fail this much before the declared capacity."""
LATENCY = 100e-6
BANDWIDTH = 2e9
THREAD_SECONDS = 1e-9
MODEL = "mutant model v1: 100 us + bytes / 2 GB/s + 1 ns per kernel thread (analytic estimate)"
FEATURES = frozenset({Feature.KERNELS, Feature.F64, Feature.I64, Feature.ATOMICS, Feature.SHARED_MEMORY,
                      Feature.BARRIERS, Feature.LOCAL_ARRAYS, Feature.MULTI_DIM, Feature.BOUNDS_CHECKS,
                      Feature.TENSOR_OPS, Feature.INT8})

Land = Callable[[], None]
"""What a command does when it ends (write its result); None when it did everything at its start."""


class Handle(Buffer[int]):
    """An allocation: a handle number the device resolves, not memory the host can see."""

    def __init__(self, handle: int, nbytes: int) -> None:
        self.handle = handle
        self.nbytes = nbytes


@dataclass(frozen=True)
class AtZero:
    """A pointer argument moved to byte 0 of its buffer (what launch_offset does)."""

    buffer: Buffer[Any]
    offset: int
    size: int


class MutantExecutable(Executable):
    def __init__(self, kernel: ir.Kernel) -> None:
        self.kernel = kernel
        self.first_scalars: dict[int, Any] | None = None  # what stale_scalars keeps


@dataclass
class Command:
    """One command of a queue: ``start()`` runs when the queue reaches it and returns what to do when it
    ends (``Land``), after its modelled time."""

    start: Callable[[], Land | None]
    nbytes: int = 0
    threads: int = 0
    trace: CommandTrace | None = None
    timed: bool = True
    """False for markers and waits: they take no device time."""


class MutantEvent(EventImpl):
    __slots__ = ("queue", "seq", "stamp")

    def __init__(self, queue: MutantQueue, seq: int) -> None:
        self.queue = queue
        self.seq = seq
        self.stamp = 0.0

    def query(self) -> bool:
        return self.queue.reached(self.seq)

    def wait(self, timeout: float | None) -> bool:
        with self.queue.cond:
            return self.queue.cond.wait_for(lambda: self.queue.reached(self.seq), timeout)

    def synchronize(self) -> None:
        self.wait(None)

    def time(self) -> float:
        return 0.0 if active("zero_event_times") else self.stamp


class MutantQueue(QueueImpl[Handle]):
    def __init__(self, device: MutantDevice) -> None:
        self.device = device
        self.cond = threading.Condition()
        self.submitted = self.started = self.completed = 0
        self.clock = 0.0
        self._work: collections.deque[Command] = collections.deque()
        self._fault: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="hal-mutant-queue", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ commands
    def submit(self, command: Command) -> None:
        """Enqueue a command (native operators use this too)."""
        with self.cond:
            self.submitted += 1
            self._work.append(command)
            self.cond.notify_all()

    def copy(self, dst: Handle, dst_offset: int, src: Handle, src_offset: int, nbytes: int,
             trace: CommandTrace | None) -> None:
        dst_at = 0 if active("copy_dst_offset") else dst_offset
        src_at = 0 if active("copy_src_offset") else src_offset

        def start() -> Land:
            data = self.device.bytes(src, src_at, nbytes).copy()

            def land() -> None:
                self.device.bytes(dst, dst_at, nbytes)[...] = data
            return land
        self.submit(Command(start, nbytes, trace=trace))

    def write(self, dst: Handle, dst_offset: int, src: np.ndarray, trace: CommandTrace | None) -> None:
        at = 0 if active("write_offset") else dst_offset

        def start() -> Land:
            data = src.copy()

            def land() -> None:
                self.device.bytes(dst, at, data.nbytes)[...] = data
                if active("stale_reads"):
                    self.device.shadow[dst.handle] = self.device.bytes(dst, 0, dst.nbytes).copy()
            return land
        self.submit(Command(start, src.nbytes, trace=trace))

    def read(self, dst: np.ndarray, src: Handle, src_offset: int, trace: CommandTrace | None) -> None:
        at = 0 if active("read_offset") else src_offset

        def start() -> Land:
            shadow = self.device.shadow.get(src.handle) if active("stale_reads") else None
            data = (self.device.bytes(src, at, dst.nbytes) if shadow is None else shadow[at:at + dst.nbytes]).copy()

            def land() -> None:
                dst[...] = data
            return land
        self.submit(Command(start, dst.nbytes, trace=trace))

    def fill(self, dst: Handle, offset: int, nbytes: int, pattern: bytes, trace: CommandTrace | None) -> None:
        at = 0 if active("fill_offset") else offset
        if active("one_byte_fill"):
            pattern = pattern[:1] * len(pattern)
        unit = np.dtype(f"u{len(pattern)}")
        value = np.frombuffer(pattern, unit)[0]

        def start() -> Land:
            def land() -> None:
                self.device.bytes(dst, at, nbytes).view(unit)[...] = value
            return land
        self.submit(Command(start, nbytes, trace=trace))

    def launch(self, exe: Executable, grid: Dim3, block: Dim3, args: Sequence[Any],
               trace: CommandTrace | None) -> None:
        assert isinstance(exe, MutantExecutable)
        kernel = exe.kernel
        if active("stale_scalars"):
            if exe.first_scalars is None:
                exe.first_scalars = {i: a for i, (p, a) in enumerate(zip(kernel.params, args)) if not p.pointer}
            args = [exe.first_scalars.get(i, a) for i, a in enumerate(args)]
        if active("launch_offset"):
            args = [AtZero(a.buffer, 0, a.size) if p.pointer else a for p, a in zip(kernel.params, args)]
        nbytes = sum(a.size * p.type.np_dtype.itemsize for p, a in zip(kernel.params, args) if p.pointer)
        threads = grid[0] * grid[1] * grid[2] * block[0] * block[1] * block[2]

        def start() -> None:
            interpret(kernel, grid, block, kernel_args(kernel, args, self.device.storage))
        self.submit(Command(start, nbytes, threads, trace))

    def record(self) -> EventImpl:
        with self.cond:  # the marker's number is the next one (the condition's lock is reentrant)
            event = MutantEvent(self, self.submitted + 1)

            def start() -> None:
                event.stamp = self.now()
            self.submit(Command(start, timed=False))
        return event

    def wait(self, event: EventImpl) -> None:
        assert isinstance(event, MutantEvent)
        if active("noop_wait"):
            return

        def start() -> None:
            event.synchronize()
            if self.device.simulated:
                self.clock = max(self.clock, event.stamp)
        self.submit(Command(start, timed=False))

    # ------------------------------------------------------------ completion
    def reached(self, seq: int) -> bool:
        """Whether command ``seq`` completed (with early_events: whether the one before it started)."""
        return self.completed >= seq or (active("early_events") and self.started >= seq - 1)

    def now(self) -> float:
        return self.clock if self.device.simulated else time.perf_counter()

    def idle(self) -> bool:
        return active("idle_lies") or (self.completed >= self.submitted and self._fault is None)

    def drain(self, timeout: float | None) -> bool:
        if active("noop_synchronize"):
            return True
        with self.cond:
            return self.cond.wait_for(lambda: self.completed >= self.submitted, timeout)

    def synchronize(self) -> None:
        self.drain(None)
        with self.cond:
            fault, self._fault = self._fault, None
        if fault is not None:
            raise fault

    def close(self) -> None:
        with self.cond:
            self._closed = True
            self.cond.notify_all()
        if threading.current_thread() is not self._thread:  # a finalizer may run on the worker itself
            self._thread.join()

    def _serve(self) -> None:
        while True:
            with self.cond:
                while not self._work and not self._closed:
                    self.cond.wait()
                if not self._work:
                    return
                command = self._work.popleft()
                self.started += 1
                self.cond.notify_all()
            self._run(command)
            with self.cond:
                self.completed += 1
                self.cond.notify_all()

    def _run(self, command: Command) -> None:
        begin = time.perf_counter()
        land = None
        try:
            land = command.start()
        except HalError as exc:
            if not active("swallowed_faults"):
                self._keep(exc)
        except Exception as exc:  # a backend bug must not hang the queue
            self._keep(DeviceFault(f"mutant device error: {exc!r}"))
        if not command.timed:
            return
        model = self.device.seconds(command.nbytes, command.threads)
        left = model - (time.perf_counter() - begin)
        if left > 0:
            time.sleep(left)
        if land is not None:
            land()
        wall = time.perf_counter() - begin
        took, started = wall, begin
        if self.device.simulated:
            took = wall if active("timing_wallclock") else model
            started, self.clock = self.clock, self.clock + took
        trace = command.trace
        if trace is not None:
            trace.wall_start, trace.wall_s = begin, wall
            if not active("device_s"):
                trace.device_start, trace.device_s = started, took
            if not active("no_counters"):
                trace.counters.update(bytes=command.nbytes, threads=command.threads)

    def _keep(self, exc: BaseException) -> None:
        with self.cond:
            if self._fault is None:
                self._fault = exc


class MutantDevice(DeviceImpl[Handle]):
    def __init__(self, index: int) -> None:
        self.index = index
        self.simulated = index == 1
        self.memory: dict[int, np.ndarray] = {}
        self.shadow: dict[int, np.ndarray] = {}  # stale_reads' host-side copies
        self.used = 0
        self._next = 1
        self._lock = threading.Lock()

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            name=f"Mutant reference device{' (simulated)' if self.simulated else ''}", backend="mutant",
            index=self.index, kind="gpu", vendor="hal tests", memory_bytes=MEMORY, compute_units=1,
            max_block_size=1024, warp_size=32, shared_memory_bytes=48 * 1024, simulated=self.simulated,
            model=MODEL if self.simulated else None,
            features=FEATURES | {Feature.SIMULATED_TIMING} if self.simulated else FEATURES)

    def seconds(self, nbytes: int, threads: int) -> float:
        """The modelled time of a command moving ``nbytes`` (and running ``threads`` kernel threads)."""
        if active("timing_flat") and self.simulated:
            return LATENCY
        return LATENCY + nbytes / BANDWIDTH + threads * THREAD_SECONDS

    # ------------------------------------------------------------ memory
    def allocate(self, nbytes: int) -> Handle:
        with self._lock:
            handle, self._next = self._next, self._next + 1
            if self.used + nbytes > MEMORY - RESERVED:  # the pool checks MEMORY; the reserve is ours
                if active("oom_wrong_error"):
                    raise RuntimeError("MUTANT_ERROR_OUT_OF_DEVICE_MEMORY")
                alias = next((m for m in self.memory.values() if m.nbytes >= nbytes), None)
                if not active("no_oom") or alias is None:
                    raise OutOfMemoryError(f"mutant device: {nbytes} bytes do not fit; {self.used} of "
                                           f"{MEMORY - RESERVED} usable bytes are in use")
                self.memory[handle] = alias[:nbytes]
                return Handle(handle, nbytes)
            self.memory[handle] = np.empty(nbytes, np.uint8)
            self.used += nbytes
        return Handle(handle, nbytes)

    def free(self, buffer: Handle) -> None:
        with self._lock:
            storage = self.memory.pop(buffer.handle)
            self.shadow.pop(buffer.handle, None)
            if storage.base is None:  # not an alias
                self.used -= storage.nbytes

    def storage(self, buffer: Buffer[Any]) -> np.ndarray:
        """The bytes of an allocation: the device resolving its handle."""
        return self.memory[buffer.handle]

    def bytes(self, buffer: Buffer[Any], offset: int, nbytes: int) -> np.ndarray:
        return self.storage(buffer)[offset:offset + nbytes]

    # ------------------------------------------------------------ queues and kernels
    def create_queue(self) -> MutantQueue:
        return MutantQueue(self)

    def compile(self, kernel: ir.Kernel) -> Executable:
        return MutantExecutable(kernel)


class MutantBackend(Backend):
    name = "mutant"
    version = "1.0"

    def device_count(self) -> int:
        return 2

    def open_device(self, index: int, options: Any) -> DeviceImpl:
        return MutantDevice(index)
