"""Worker: hosts one hal device in a Ray actor and runs what its remote device sends.

It drives the hosted backend through the vendor interface (``hal.backend``), as hal's core
would in process: the driver's core has already validated every argument, pooled the memory
and held frees back until no queue can touch the memory. The worker is a trust boundary all the
same (anything that reaches the actor can send it commands): before it touches memory it checks
every id, offset and size against its own buffers, and grid and block against the hosted device
(with the core's own check), and refuses the command with a ``HalError`` that travels back to the
caller; the worker keeps serving. It is plain Python (the driver makes it an actor), so tests
drive it in process too.

Concurrency: an asyncio actor. Batches are enqueued on the event loop in their sequence
order; enqueueing returns at once (the hosted queues are asynchronous). One thread per queue
with work in flight waits for it (the hosted queue's ``synchronize``, which also raises its
faults) and replies to every batch that wait covered. Collective steps run on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from hal.backend import (
    Buffer,
    Command,
    CommandTrace,
    CopyCommand,
    DeviceImpl,
    EventImpl,
    Executable,
    FillCommand,
    GraphImpl,
    InvalidArgumentError,
    InvalidHandleError,
    LaunchCommand,
    QueueImpl,
    QueueReplay,
    WriteCommand,
    enqueue,
)
from hal.collective import compression

from ._link import Bucket, Link
from ._protocol import (
    CLOSE,
    COPY,
    FILL,
    GRAPH,
    LAUNCH,
    READ,
    RECORD,
    TRACE,
    WAIT,
    WRITE,
    BatchResult,
    PackedError,
    pack_error,
)

Reply = tuple[bool, Any]
"""(True, value) or (False, PackedError): errors are values (see ``_protocol``)."""
Region = tuple[int, int, int]
"""(buffer id, byte offset, nbytes) of an array in the worker's memory."""
REDUCE = {"sum": np.add, "max": np.maximum, "min": np.minimum}
QUICK = 200e-6
"""Seconds the event loop waits for a batch before handing the wait to a thread: short
batches reply without the hop (about 0.4 ms)."""
REFUSED = np.empty(0, np.uint8)
"""The data of a refused READ (the reply keeps one entry per READ; the driver leaves its array alone)."""


class _Arg:
    """A launch's pointer argument (``hal.backend.ArgBuffer``) over a hosted buffer."""

    __slots__ = ("buffer", "offset", "size")

    def __init__(self, buffer: Buffer[Any], offset: int, size: int) -> None:
        self.buffer = buffer
        self.offset = offset
        self.size = size


@dataclass
class _Job:
    """One batch between its enqueue and its reply."""

    future: asyncio.Future[BatchResult]
    fault: PackedError | None = None
    reads: list[np.ndarray] = field(default_factory=list)
    events: list[EventImpl | None] = field(default_factory=list)
    traces: list[CommandTrace] = field(default_factory=list)
    keep: list[Any] = field(default_factory=list)
    """Host data of writes: alive until the hosted queue has run them."""
    close: bool = False

    def result(self, fault: PackedError | None) -> BatchResult:
        times = []
        for event in self.events:
            try:
                times.append(event.time() if event is not None else 0.0)
            except Exception as exc:  # the hosted backend lost the time: say so at the next synchronize
                fault = fault or pack_error(exc)
                times.append(0.0)
        return BatchResult(self.fault or fault, self.reads, times, self.traces)


@dataclass
class _Collective:
    """One rank's state during a collective: its data, split into one chunk per rank."""

    work: np.ndarray
    chunks: list[np.ndarray]
    back: Region | None
    """Where the result goes when ``work`` is not that memory itself."""
    part: int | None
    """Write back only this chunk (reduce-scatter)."""


@dataclass
class _Compressed:
    """One rank's state during a compressed all-reduce (see ``hal.collective.compression``)."""

    values: np.ndarray
    residual: np.ndarray | None
    parts: int
    back: Region | None
    """Where the result goes when ``values`` is not that memory itself."""
    residual_back: Region | None


class Worker:
    """The actor: one hosted device, its buffers, queues, events and compiled kernels by id."""

    def __init__(self, spec: str, env: dict[str, str]) -> None:
        self.spec = spec
        self._env = env
        self.device: DeviceImpl[Any] | None = None
        self.buffers: dict[int, Buffer[Any]] = {}
        self.queues: dict[int, QueueImpl[Any]] = {}
        self.events: dict[int, EventImpl] = {}
        self.executables: dict[int, tuple[Executable, tuple[int, ...], Callable[[Any, Any], Any]]] = {}
        """id -> (executable, each parameter's element size (0: a scalar), the core's grid/block check)."""
        self._dev: Any = None
        self.graphs: dict[int, GraphImpl] = {}
        self._next = 0
        """Sequence number of the next batch to enqueue."""
        self._turn: asyncio.Condition | None = None
        self._lock = threading.Lock()
        self._waiting: dict[int, list[_Job]] = {}
        self._draining: set[int] = set()
        self._threads = ThreadPoolExecutor(max_workers=64, thread_name_prefix="hal-remote")
        self._collectives: dict[int, _Collective] = {}
        self._compressed: dict[int, _Compressed] = {}
        self._bucket: Bucket | None = None
        self._transfers: QueueImpl[Any] | None = None

    # ------------------------------------------------------------ device
    def open(self) -> Reply:
        """Open the hosted device; its DeviceInfo fields and where it runs."""
        os.environ.update(self._env)  # HAL_CHECK, HAL_CACHE_DIR, ... as the driver has them
        import hal

        try:
            dev = self._dev = hal.device(self.spec)
            self.device = dev.impl
            info = dev.info.model_dump()
        except Exception as exc:
            return False, pack_error(exc)
        return True, (info, f"{socket.gethostname()}, pid {os.getpid()}")

    def allocate(self, bid: int, nbytes: int) -> Reply:
        assert self.device is not None
        try:
            self.buffers[bid] = self.device.allocate(nbytes)
        except Exception as exc:
            return False, pack_error(exc)
        return True, None

    def release(self, frees: list[int], forget: list[int]) -> None:
        """Free buffers (the driver's pool only frees memory no queue can touch) and forget events."""
        assert self.device is not None
        for bid in frees:
            buffer = self.buffers.pop(bid, None)
            if buffer is not None:
                self.device.free(buffer)
        for eid in forget:
            self.events.pop(eid, None)
            self.graphs.pop(eid, None)

    def define_graph(self, gid: int, commands: list[tuple[Any, ...]]) -> Reply:
        """Build a driver's graph (wire commands, checked as a batch's are) as the hosted device's own
        form; the GRAPH command replays it."""
        assert self.device is not None
        try:
            built = [self._command(c) for c in commands]
            self.graphs[gid] = self.device.build_graph(built) or QueueReplay(built)
        except Exception as exc:
            return False, pack_error(exc)
        return True, None

    async def compile(self, xid: int, text: str) -> Reply:
        """Compile IR sent as JSON, off the event loop (a C compiler may take a while)."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._compile, xid, text)

    def _compile(self, xid: int, text: str) -> Reply:
        from hal.kernel.ir import Kernel

        try:
            kernel = Kernel.from_json(text)
            compiled = self._dev.compile(SimpleNamespace(ir=kernel))  # the core's checks, then the backend
            widths = tuple(p.type.bits // 8 if p.pointer else 0 for p in kernel.params)
            self.executables[xid] = (compiled.impl, widths, compiled.dims)
        except Exception as exc:
            return False, pack_error(exc)
        return True, None

    def report(self, xid: int) -> Reply:
        try:
            return True, self.executables[xid][0].report()
        except Exception as exc:
            return False, pack_error(exc)

    def abort(self, qid: int) -> Reply:
        queue = self.queues.get(qid)
        return True, queue is not None and queue.abort()

    # ------------------------------------------------------------ batches
    async def submit(self, seq: int, qid: int, batch: list[tuple[Any, ...]], frees: list[int],
                     forget: list[int]) -> BatchResult:
        """Enqueue a batch in sequence order; reply once all its commands have completed."""
        if seq != self._next:
            if self._turn is None:
                self._turn = asyncio.Condition()
            async with self._turn:
                await self._turn.wait_for(lambda: self._next == seq)
        try:
            job = self._enqueue(qid, batch)
        finally:
            self._next = seq + 1
            if self._turn is not None:
                async with self._turn:
                    self._turn.notify_all()
        self.release(frees, forget)
        return await job.future

    def _enqueue(self, qid: int, batch: list[tuple[Any, ...]]) -> _Job:
        queue = self.queues.get(qid)
        if queue is None:
            assert self.device is not None
            queue = self.queues[qid] = self.device.create_queue()
        job = _Job(asyncio.get_running_loop().create_future())
        for command in batch:
            try:
                self._run(queue, command, job, None)
            except Exception as exc:  # kept for the next synchronize; later commands still run
                job.fault = job.fault or pack_error(exc)
        with self._lock:
            idle = qid not in self._draining  # no earlier batch of this queue awaits its reply
            self._draining.add(qid)
        if idle and queue.drain(QUICK):  # a short batch is done already: reply without a thread hop
            self._reply(qid, queue, [job], threaded=False)
            with self._lock:
                self._draining.discard(qid)
            return job
        with self._lock:
            self._waiting.setdefault(qid, []).append(job)
        if idle:
            self._threads.submit(self._drain, qid, queue)
        return job

    def _run(self, queue: QueueImpl[Any], command: tuple[Any, ...], job: _Job, trace: CommandTrace | None) -> None:
        op = command[0]
        if op in (LAUNCH, COPY, FILL, WRITE):
            c = self._command(command)
            if type(c) is WriteCommand:
                job.keep.append(c.data)
            enqueue(queue, c, trace)
        elif op == READ:
            job.reads.append(REFUSED)  # before the enqueue: the reply's reads stay in command order
            buffer = self._region(command[1:4], "read")
            job.reads[-1] = out = np.empty(command[3], np.uint8)
            queue.read(out, buffer, command[2], trace)
        elif op == RECORD:
            job.events.append(None)
            job.events[-1] = self.events[command[1]] = queue.record()
        elif op == WAIT:
            event = self.events.get(command[1])
            if event is None:
                raise InvalidHandleError(f"{self._where}: event {command[1]} does not exist here (never recorded, "
                                         "or forgotten)")
            queue.wait(event)
        elif op == TRACE:
            job.traces.append(command[2])
            self._run(queue, command[1], job, command[2])
        elif op == GRAPH:
            graph = self.graphs.get(command[1])
            if graph is None:
                raise InvalidHandleError(f"{self._where}: graph {command[1]!r} does not exist here (never defined, "
                                         "or forgotten)")
            job.keep.append(graph)  # its host data, until the batch completed, even if the driver drops it
            graph.launch(queue)
        elif op == CLOSE:
            job.close = True
        else:
            raise InvalidArgumentError(f"{self._where}: unknown command {op!r}")

    def _command(self, command: tuple[Any, ...]) -> Command:
        """A kernel launch, copy, fill or write of the wire as the command it stands for, every id,
        region and size checked first (a HalError naming what is wrong, before anything runs)."""
        op = command[0]
        if op == LAUNCH:
            exe, widths, dims = self._executable(command[1])
            args = command[4]
            if len(args) != len(widths):
                raise InvalidArgumentError(f"{self._where}: kernel {command[1]} takes {len(widths)} arguments, "
                                           f"got {len(args)}")
            grid, block = dims(command[2], command[3])
            return LaunchCommand(exe, grid, block, tuple(_Arg(self._region(a, "kernel argument", w), a[1], a[2])
                                                         if w else a for w, a in zip(widths, args)))
        if op == COPY:
            nbytes = command[5]
            dst = self._region((command[1], command[2], nbytes), "copy destination")
            return CopyCommand(dst, command[2], self._region((command[3], command[4], nbytes), "copy source"),
                               command[4], nbytes)
        if op == FILL:
            pattern = command[4]
            if not isinstance(pattern, bytes) or len(pattern) not in (1, 2, 4, 8) or command[2] % len(pattern) \
                    or command[3] % len(pattern):
                raise InvalidArgumentError(f"{self._where}: a fill pattern is 1, 2, 4 or 8 bytes and the offset and "
                                           "size are multiples of it")
            return FillCommand(self._region(command[1:4], "fill"), command[2], command[3], pattern)
        if op == WRITE:
            data = command[3]
            host = data if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
            return WriteCommand(self._region((command[1], command[2], host.nbytes), "write"), command[2], host)
        raise InvalidArgumentError(f"{self._where}: a graph holds kernel launches, copies, fills and writes, "
                                   f"not command {op!r}")

    @property
    def _where(self) -> str:
        return f"the remote worker hosting {self.spec}"

    def _executable(self, xid: Any) -> tuple[Executable, tuple[int, ...], Callable[[Any, Any], Any]]:
        found = self.executables.get(xid)
        if found is None:
            raise InvalidHandleError(f"{self._where}: kernel {xid} was never compiled here")
        return found

    def _region(self, region: Any, what: str, width: int = 1) -> Buffer[Any]:
        """The buffer of ``region`` (buffer id, byte offset, count of ``width``-byte elements), checked
        to lie inside it; a HalError naming the region otherwise, before any memory is touched."""
        try:
            bid, offset, count = region
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"{self._where}: {what} {region!r} is not (buffer id, offset, size)") from None
        buffer = self.buffers.get(bid)
        if buffer is None:
            raise InvalidHandleError(f"{self._where}: {what}: buffer {bid!r} does not exist here (freed, or never "
                                     "allocated)")
        if not (isinstance(offset, (int, np.integer)) and isinstance(count, (int, np.integer))) \
                or offset < 0 or count < 0 or offset + count * width > buffer.nbytes:
            size = f"{count!r} elements of {width} bytes" if width > 1 else f"{count!r} bytes"
            raise InvalidArgumentError(f"{self._where}: {what} of {size} at offset {offset!r} is outside buffer "
                                       f"{bid} ({buffer.nbytes} bytes); offsets and sizes must lie inside the "
                                       "buffer")
        return buffer

    def _drain(self, qid: int, queue: QueueImpl[Any]) -> None:
        """Wait for the queue's work and reply to the batches the wait covered, until none is left."""
        while True:
            with self._lock:
                jobs = self._waiting.pop(qid, None)
                if not jobs:
                    self._draining.discard(qid)
                    return
            self._reply(qid, queue, jobs, threaded=True)

    def _reply(self, qid: int, queue: QueueImpl[Any], jobs: list[_Job], threaded: bool) -> None:
        """Synchronize the queue (its first fault goes to the first job) and reply to ``jobs``,
        from a thread or from the event loop."""
        fault: PackedError | None = None
        try:
            queue.synchronize()
        except Exception as exc:
            fault = pack_error(exc)
        for job in jobs:
            result = job.result(fault)
            fault = None
            if threaded:
                job.future.get_loop().call_soon_threadsafe(_settle, job.future, result)
            else:
                _settle(job.future, result)
        if any(job.close for job in jobs):
            queue.close()
            self.queues.pop(qid, None)

    # ------------------------------------------------------------ collectives
    async def collective(self, cid: int, step: tuple[Any, ...], incoming: np.ndarray | None,
                         token: None) -> tuple[np.ndarray | None, None]:
        """One step of a ring collective: open, take the chunk the previous rank sent (reduce or
        copy it into ours), hand out the chunk for the next rank (once the link would have carried
        it), close. ``token`` is this rank's previous step, so Ray runs a rank's steps in order;
        the driver plans them (``_collective``)."""
        out = self._ring_step(cid, step, incoming)
        if out is not None:
            await self._pace([out.nbytes])
        return out, None

    def _ring_step(self, cid: int, step: tuple[Any, ...], incoming: np.ndarray | None) -> np.ndarray | None:
        opening, recv, send, close = step
        state = self._open_collective(cid, *opening) if opening is not None else self._collectives[cid]
        if recv is not None:
            assert incoming is not None
            chunk, op = recv
            target = state.chunks[chunk]
            if op == "copy":
                target[...] = incoming
            else:
                REDUCE[op](target, incoming, out=target)
        out = state.chunks[send] if send is not None else None
        if close:
            del self._collectives[cid]
            if state.back is not None:
                self._store(state.back, state.work if state.part is None else state.chunks[state.part])
        return out

    def collective_abort(self, cid: int) -> None:
        """Drop a collective that failed elsewhere (a rank died)."""
        self._collectives.pop(cid, None)
        self._compressed.pop(cid, None)

    def _open_collective(self, cid: int, start: str, src: Region, dst: Region, dtype: str, parts: int,
                         place: int | None, part: int | None) -> _Collective:
        """``start``: what the data starts as: "dst" (its contents: all-reduce, broadcast's root),
        "none" (every element arrives) or "src" (a copy of the input: reduce-scatter). ``place``
        puts the input into that chunk first (all-gather)."""
        dt = np.dtype(dtype)
        for region in (src, dst):
            self._region(region, "collective")
        back: Region | None = None
        if start == "src":
            work, back = self._bytes(src, copy=True), dst
        else:
            view = self._view(dst)
            if view is None:
                work, back = (self._bytes(dst) if start == "dst" else np.empty(dst[2], np.uint8)), dst
            else:
                work = view
        chunks = np.array_split(work.view(dt), parts)
        if place is not None:
            chunks[place][...] = self._bytes(src).view(dt)
        state = self._collectives[cid] = _Collective(work.view(dt), chunks, back, part)
        return state

    # ------------------------------------------------------------ compressed all-reduce
    async def compressed_encode(self, cid: int, rank: int, data: Region, residual: Region | None, dtype: str,
                                n: int, scheme: str) -> list[compression.Packed]:
        """Step 1 (``compression.contribute``): this rank's n encoded parts, part j for rank j (Ray
        returns them as n objects, so each rank fetches only its own)."""
        dt = np.dtype(dtype)
        if scheme not in compression.SCHEMES or dt not in compression.DTYPES:
            raise InvalidArgumentError(f"{self._where}: a compressed all-reduce of {dt} as {scheme!r}; hal sends "
                                       f"{', '.join(map(str, compression.DTYPES))} as {', '.join(compression.SCHEMES)}")
        for region in (data, residual):
            if region is not None:
                self._region(region, "compressed all-reduce")
        view = self._view(data)
        values = (view if view is not None else self._bytes(data)).view(dt)
        kept, kept_view = None, None
        if residual is not None:
            kept_view = self._view(residual)
            kept = (kept_view if kept_view is not None else self._bytes(residual)).view(dt)
        packed = compression.contribute(values, kept, n, scheme)
        self._compressed[cid] = _Compressed(values, kept, n, None if view is not None else data,
                                            residual if residual is not None and kept_view is None else None)
        await self._pace([p.nbytes for j, p in enumerate(packed) if j != rank])
        return packed

    async def compressed_reduce(self, cid: int, rank: int, *incoming: compression.Packed) -> compression.Packed:
        """Step 2 (``compression.reduce_part``): the encoded sum of the part this rank owns, for every
        rank."""
        state = self._compressed[cid]
        out = compression.reduce_part(incoming, compression.own_part(state.residual, state.parts, rank),
                                    state.values.dtype)
        await self._pace([out.nbytes] * (state.parts - 1))
        return out

    def compressed_decode(self, cid: int, *parts: compression.Packed) -> None:
        """Step 3 (``compression.assemble``): the result in place, the residual kept."""
        state = self._compressed.pop(cid)
        compression.assemble(parts, state.values)
        if state.back is not None:
            self._store(state.back, state.values)
        if state.residual_back is not None and state.residual is not None:
            self._store(state.residual_back, state.residual)

    # ------------------------------------------------------------ emulated link
    def set_link(self, link: Link | None) -> None:
        """Pace what this worker sends to ``link`` from now on (None: as fast as it goes)."""
        self._bucket = None if link is None else Bucket(link, time.monotonic())

    def link_stats(self) -> tuple[int, int, float]:
        """Bytes and messages the link carried, and the seconds senders waited for it."""
        b = self._bucket
        return (0, 0, 0.0) if b is None else (b.bytes, b.messages, b.seconds)

    async def _pace(self, sizes: list[int]) -> None:
        """Wait until messages of ``sizes`` bytes, sent now one after the other, would have arrived."""
        if self._bucket is None or not sizes:
            return
        now = time.monotonic()
        arrival = max(self._bucket.send(nbytes, now) for nbytes in sizes)
        await asyncio.sleep(arrival - now)

    def _view(self, region: Region) -> np.ndarray | None:
        """The region's bytes in place, where the hosted device's memory is host memory."""
        bid, offset, nbytes = region
        host = self.buffers[bid].host_array()
        return None if host is None else host[offset:offset + nbytes]

    def _bytes(self, region: Region, copy: bool = False) -> np.ndarray:
        """The region's bytes: in place where the host can address them (unless ``copy``), else a
        host copy made through a queue of the hosted device."""
        view = self._view(region)
        if view is not None:
            return view.copy() if copy else view
        bid, offset, nbytes = region
        out = np.empty(nbytes, np.uint8)
        queue = self._transfer_queue()
        queue.read(out, self.buffers[bid], offset, None)
        queue.synchronize()
        return out

    def _store(self, region: Region, data: np.ndarray) -> None:
        bid, offset, _ = region
        queue = self._transfer_queue()
        queue.write(self.buffers[bid], offset, np.ascontiguousarray(data).view(np.uint8).reshape(-1), None)
        queue.synchronize()

    def _transfer_queue(self) -> QueueImpl[Any]:
        if self._transfers is None:
            assert self.device is not None
            self._transfers = self.device.create_queue()
        return self._transfers


def _settle(future: asyncio.Future[BatchResult], result: BatchResult) -> None:
    if not future.done():
        future.set_result(result)
