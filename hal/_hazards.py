"""The stream-ordering sanitizer of checked mode (``HAL_CHECK=1``).

Two commands on different queues of one device that touch overlapping bytes of
one allocation, at least one of them writing, must be ordered by a chain of
event waits or host synchronisations (DESIGN.md, "Memory and ordering
model"). Vendor runtimes let such a race corrupt data silently; here the
second command raises :class:`hal.HazardError` *before* it is enqueued, naming
both commands (with the user's file:line), both queues and the array, so the
device keeps working.

The model is happens-before with vector clocks, as in data-race detectors
(FastTrack, ThreadSanitizer), with queues in place of threads:

* every queue has a clock (queue id -> commands of that queue it is ordered
  after); the host has one too;
* enqueueing on queue Q: Q absorbs the host clock (work enqueued after a host
  synchronisation comes after everything it waited for), then Q's own entry
  ticks; that tick names the command;
* ``q.record()`` snapshots Q's clock into the event; ``other.wait(event)``
  merges the snapshot into other's clock;
* a host wait for Q (or for an event of Q) merges Q's clock (or the event's
  snapshot) into the host clock; a device-wide wait merges every queue's;
* a command of queue P with tick t is ordered before the command being
  enqueued on Q if ``t <= clock_Q[P]``; commands of one queue are always
  ordered (queues are in order).

Per allocation (the pool's ``Block``, weakly referenced so the tracker never
keeps memory alive) the tracker keeps recent accesses per queue: byte range,
read or write, tick and a description. An access is dropped as soon as a
later access ordered after it (of its own queue, or of another queue through
waits) subsumes it: covers its bytes, and writes if it wrote; any command
unordered with the old one is unordered with the new one too. It is also
dropped once the host clock covers it: it is then ordered before anything that
can still be enqueued. So memory stays bounded, with or without host syncs.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from ._errors import HazardError
from .backend._program import checked_mode

if TYPE_CHECKING:
    from ._memory import Array
    from .kernel import ir

MAX_ACCESSES_PER_QUEUE = 32
"""Accesses kept per (allocation, queue). A queue that keeps touching disjoint slices of one
allocation without any synchronisation would otherwise grow the list without bound; past the
cap the oldest is forgotten (a missed report at worst, never a false one)."""

_QUEUE_IDS = itertools.count(1)
"""Queue ids, unique across devices and never reused: a clock entry can never be confused with
a later queue's, even when an event of one device reaches another tracker."""

_HAL_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_USER_DIRS = tuple(_HAL_DIR + d + os.sep for d in ("conformance", "demo"))
"""Parts of the package that use hal as a user would: their frames are reported, not skipped."""

Clock = dict[int, int]


def enabled() -> bool:
    """Whether checked mode is on (read each call, so that a test can switch it with monkeypatch
    before opening a device)."""
    return checked_mode()


def _caller() -> tuple[str, int]:
    """The user's file and line: the first frame outside the hal package."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_HAL_DIR) or name.startswith(_USER_DIRS):
            return name, frame.f_lineno
        frame = frame.f_back
    return "<unknown>", 0


class _Command:
    """What an error says about a command: shared by all its accesses, formatted only on error."""

    __slots__ = ("what", "queue", "spec", "file", "line")

    def __init__(self, what: str, queue: str, spec: str, where: tuple[str, int]) -> None:
        self.what = what
        self.queue = queue
        self.spec = spec
        self.file, self.line = where

    def __str__(self) -> str:
        return f"{self.what} (enqueued at {self.file}:{self.line}) on {self.queue} of {self.spec}"


class _Access:
    __slots__ = ("tick", "start", "stop", "write", "command", "shape", "dtype")

    def __init__(self, tick: int, start: int, stop: int, write: bool, command: _Command, shape: Any,
                 dtype: Any) -> None:
        self.tick = tick
        self.start = start
        self.stop = stop
        self.write = write
        self.command = command
        self.shape = shape  # shape and dtype, never the Array: that would keep the block alive
        self.dtype = dtype


class _QueueAccesses:
    """One queue's recent accesses to one allocation, oldest first; ``max_tick`` lets a check
    skip the whole list when the new command is ordered after all of them."""

    __slots__ = ("items", "max_tick")

    def __init__(self) -> None:
        self.items: list[_Access] = []
        self.max_tick = 0


class _QueueState:
    __slots__ = ("qid", "name", "spec", "ref", "clock", "host_seen")

    def __init__(self, qid: int, name: str, spec: str, ref: Callable[[], Any]) -> None:
        self.qid = qid
        self.name = name
        self.spec = spec
        self.ref = ref
        self.clock: Clock = {}
        self.host_seen = -1  # host clock version last absorbed


class HazardTracker:
    """One per device when HAL_CHECK=1."""

    def __init__(self, device_spec: str) -> None:
        self.device_spec = device_spec
        self._lock = threading.Lock()
        self._queues: dict[int, _QueueState] = {}  # by id(queue); the state checks it is still that queue
        self._dead: list[tuple[int, int]] = []  # (id, qid) of collected queues, appended by weakref callbacks
        self._retired: dict[int, int] = {}  # qid of a collected queue -> its last tick
        self._host: Clock = {}
        self._host_version = 0
        self._blocks: weakref.WeakKeyDictionary[Any, dict[int, _QueueAccesses]] = weakref.WeakKeyDictionary()
        self._touched: dict[int, set[weakref.ref[Any]]] = {}  # qid -> blocks holding accesses of it

    # ------------------------------------------------------------ commands
    def command(self, queue: Any, what: str, reads: Sequence[Array], writes: Sequence[Array]) -> None:
        """Check a command about to be enqueued on ``queue`` against every unordered access of
        another queue; raise HazardError before anything is enqueued or recorded, else record
        its accesses. ``what`` names it in messages: "kernel 'saxpy'", "copy", "fill"."""
        where = _caller()
        with self._lock:
            if self._dead:
                self._reap()
            st = self._state(queue)
            if st.host_seen != self._host_version:
                self._absorb_host(st)
            clock = st.clock
            planned: list[tuple[Any, int, int, bool, Array]] = []
            for arrays, write in ((writes, True), (reads, False)):
                for arr in arrays:
                    nbytes = arr.nbytes
                    if not nbytes:
                        continue
                    block, start = arr._block, arr.offset
                    stop = start + nbytes
                    per = self._blocks.get(block)
                    if per is not None:
                        prior = _conflict(per, st.qid, clock, write, start, stop)
                        if prior is not None:
                            raise HazardError(_message(_Command(what, st.name, st.spec, where), write, arr,
                                                       start, stop, prior))
                    planned.append((block, start, stop, write, arr))
            tick = clock.get(st.qid, 0) + 1
            clock[st.qid] = tick
            if planned:
                command = _Command(what, st.name, st.spec, where)
                for block, start, stop, write, arr in planned:
                    self._add(block, st.qid, clock, _Access(tick, start, stop, write, command, arr.shape, arr.dtype))

    def launch(self, queue: Any, kernel: ir.Kernel, args: Sequence[Any]) -> None:
        """``command`` for a kernel launch: an Array passed for a pointer parameter is written
        if the kernel stores to it or applies an atomic to it anywhere, read otherwise (from
        the IR, computed once per kernel). Non-Array arguments are left to argument binding."""
        kir: Any = getattr(kernel, "ir", kernel)  # a @hal.kernel function works too
        reads: list[Array] = []
        writes: list[Array] = []
        for mode, arg in zip(pointer_modes(kir), args):
            if mode is not None and hasattr(arg, "_block"):
                (writes if mode else reads).append(arg)
        self.command(queue, f"kernel {kir.name!r}", reads, writes)

    # ------------------------------------------------------------ ordering
    def record(self, queue: Any) -> object:
        """The token of an event recorded now on ``queue``: a snapshot of its clock."""
        with self._lock:
            st = self._state(queue)
            if st.host_seen != self._host_version:
                self._absorb_host(st)
            return dict(st.clock)

    def wait(self, queue: Any, token: object) -> None:
        """``queue`` waits for an event: its later commands come after what the token covers."""
        if not isinstance(token, dict):
            return
        with self._lock:
            clock = self._state(queue).clock
            for qid, tick in token.items():
                if clock.get(qid, 0) < tick:
                    clock[qid] = tick

    def host_wait(self, queue: Any, token: object | None = None) -> None:
        """The host waited for ``queue``: up to an event's token, or (None) for all its work."""
        with self._lock:
            if isinstance(token, dict):
                self._host_merge(token)
            elif token is None:
                st = self._queues.get(id(queue))
                if st is not None and st.ref() is queue:
                    self._host_merge(st.clock)

    def host_wait_all(self) -> None:
        """The host waited for every queue of the device (``dev.synchronize()``, ``x.numpy()``)."""
        with self._lock:
            if self._dead:
                self._reap()
            everything: Clock = dict(self._retired)
            for st in self._queues.values():
                for qid, tick in st.clock.items():
                    if everything.get(qid, 0) < tick:
                        everything[qid] = tick
            self._host_merge(everything)

    def created(self, array: Array) -> None:
        """``array`` was initialised from the host (dev.array/zeros/full/empty): ready on every
        queue, so earlier accesses to its bytes, the initialising command's included, order
        before everything. Call it after the initialising command was enqueued."""
        nbytes = array.nbytes
        if not nbytes:
            return
        start = array.offset
        stop = start + nbytes
        with self._lock:
            per = self._blocks.get(array._block)
            if per is None:
                return
            for qid in list(per):
                qa = per[qid]
                kept: list[_Access] = []
                for a in qa.items:
                    if a.stop <= start or stop <= a.start:
                        kept.append(a)
                        continue
                    if a.start < start:  # the bytes of a wider access outside the array stay
                        kept.append(_Access(a.tick, a.start, start, a.write, a.command, a.shape, a.dtype))
                    if stop < a.stop:
                        kept.append(_Access(a.tick, stop, a.stop, a.write, a.command, a.shape, a.dtype))
                qa.items = kept
                if not kept:
                    del per[qid]
            if not per:
                del self._blocks[array._block]

    # ------------------------------------------------------------ internals (lock held)
    def _state(self, queue: Any) -> _QueueState:
        st = self._queues.get(id(queue))
        if st is not None and st.ref() is queue:
            return st
        if st is not None:  # a collected queue's id, reused before its callback ran
            self._retire(st)
        qid = next(_QUEUE_IDS)
        key = id(queue)
        ref: Callable[[], Any]
        try:
            ref = weakref.ref(queue, lambda _r: self._dead.append((key, qid)))
        except TypeError:  # no weak references: keep it (only duck-typed stand-ins lack them)
            ref = lambda: queue  # noqa: E731
        name = str(getattr(queue, "name", None) or f"queue #{qid}")
        spec = str(getattr(getattr(queue, "device", None), "spec", None) or self.device_spec)
        st = _QueueState(qid, name, spec, ref)
        self._queues[key] = st
        return st

    def _reap(self) -> None:
        """Forget collected queues; their last tick stays until the host clock covers it."""
        dead, self._dead = self._dead, []
        for key, qid in dead:
            st = self._queues.get(key)
            if st is not None and st.qid == qid:
                del self._queues[key]
                self._retire(st)

    def _retire(self, st: _QueueState) -> None:
        last = st.clock.get(st.qid, 0)
        if last > self._host.get(st.qid, 0):
            self._retired[st.qid] = last
        else:
            self._drop_queue(st.qid)

    def _drop_queue(self, qid: int) -> None:
        """A collected queue whose work the host has waited for: no access of it is left, so its
        entries go from every clock (a program making many short-lived queues stays small)."""
        self._host.pop(qid, None)
        for st in self._queues.values():
            st.clock.pop(qid, None)
        self._touched.pop(qid, None)

    def _absorb_host(self, st: _QueueState) -> None:
        clock = st.clock
        for qid, tick in self._host.items():
            if clock.get(qid, 0) < tick:
                clock[qid] = tick
        st.host_seen = self._host_version

    def _host_merge(self, clock: dict[Any, Any]) -> None:
        host = self._host
        changed = []
        for qid, tick in clock.items():
            if host.get(qid, 0) < tick:
                host[qid] = tick
                changed.append(qid)
        if not changed:
            return
        self._host_version += 1
        for qid in changed:
            self._prune(qid, host[qid])
            last = self._retired.get(qid)
            if last is not None and last <= host[qid]:
                del self._retired[qid]
                self._drop_queue(qid)

    def _prune(self, qid: int, upto: int) -> None:
        """Drop accesses of queue ``qid`` up to tick ``upto``: the host waited for them, so they
        are ordered before anything enqueued from now on."""
        refs = self._touched.get(qid)
        if not refs:
            return
        keep = set()
        for ref in refs:
            block = ref()
            per = None if block is None else self._blocks.get(block)
            if per is None:
                continue
            qa = per.get(qid)
            if qa is None:
                continue
            if qa.max_tick <= upto:
                del per[qid]
                if not per:
                    del self._blocks[block]
            else:
                if qa.items[0].tick <= upto:
                    qa.items = [a for a in qa.items if a.tick > upto]
                keep.add(ref)
        if keep:
            self._touched[qid] = keep
        else:
            del self._touched[qid]

    def _add(self, block: Any, qid: int, clock: Clock, new: _Access) -> None:
        """Record ``new`` (of queue ``qid``, whose clock is ``clock``), dropping every access it
        subsumes: of its own queue, or of another queue that it is ordered after."""
        per = self._blocks.get(block)
        if per is None:
            per = self._blocks[block] = {}
        elif len(per) > 1 or qid not in per:
            for other in [o for o in per if o != qid]:
                theirs = per[other]
                upto = clock.get(other, 0)
                if theirs.items[0].tick <= upto:
                    theirs.items = [old for old in theirs.items if old.tick > upto or not _subsumes(new, old)]
                    if not theirs.items:
                        del per[other]
        qa = per.get(qid)
        if qa is None:
            qa = per[qid] = _QueueAccesses()
            refs = self._touched.setdefault(qid, set())
            refs.add(weakref.ref(block))
            if len(refs) > 64 + 2 * len(self._blocks):  # blocks collected or forgotten since
                self._touched[qid] = {r for r in refs if (b := r()) is not None and qid in self._blocks.get(b, ())}
        items = qa.items
        for old in items:  # the same command reads what it writes: the write stands for both
            if old.tick == new.tick and _subsumes(old, new):
                return
        if items:
            qa.items = items = [old for old in items if not _subsumes(new, old)]
        items.append(new)
        if len(items) > MAX_ACCESSES_PER_QUEUE:
            del items[0]
        qa.max_tick = new.tick


def _subsumes(new: _Access, old: _Access) -> bool:
    """Whether ``new``, ordered after ``old``, conflicts with everything ``old`` conflicts with
    (it covers old's bytes, and writes if old wrote): a later command unordered with ``old``
    is then unordered with ``new`` too (else it would follow both), so ``old`` need not be kept."""
    return new.start <= old.start and old.stop <= new.stop and (new.write or not old.write)


def _conflict(per: dict[int, _QueueAccesses], qid: int, clock: Clock, write: bool, start: int,
              stop: int) -> _Access | None:
    """An access of another queue to [start, stop) that is not ordered before this command."""
    for other, qa in per.items():
        if other == qid:
            continue
        upto = clock.get(other, 0)
        if qa.max_tick <= upto:
            continue
        for acc in qa.items:
            if acc.tick > upto and (write or acc.write) and acc.start < stop and start < acc.stop:
                return acc
    return None


def _describe(shape: Any, dtype: Any, spec: str) -> str:
    return f"array {tuple(shape)} {dtype} on {spec}"


def _message(cur: _Command, write: bool, arr: Any, start: int, stop: int, prior: _Access) -> str:
    spec = str(getattr(getattr(arr, "device", None), "spec", None) or cur.spec)
    array = _describe(arr.shape, arr.dtype, spec)
    view = ""
    if (prior.start, prior.stop) != (start, stop) or tuple(prior.shape) != tuple(arr.shape) \
            or prior.dtype != arr.dtype:
        view = (f" (this command uses bytes {start}..{stop} of the allocation; the other used bytes "
                f"{prior.start}..{prior.stop} as {_describe(prior.shape, prior.dtype, spec)})")
    verb, other_verb = ("writes" if write else "reads"), ("writes" if prior.write else "reads")
    first = prior.command
    return (f"HAL_CHECK: unordered access to {array}{view}: {cur} {verb} it, and {first} {other_verb} "
            f"it, but no event wait or host synchronisation orders the two commands, so they may run at "
            f"the same time. Make {cur.queue} wait for an event recorded on {first.queue} after the "
            f"{first.what} (waiting_queue.wait(q.record())), or synchronise {first.queue} first.")


# ------------------------------------------------------------ kernels
_MODES: dict[int, tuple[weakref.ref[Any] | Callable[[], Any], tuple[bool | None, ...]]] = {}
"""Per ir.Kernel (by identity; an equality lookup would hash the whole IR tree on every launch)."""


def pointer_modes(kernel: ir.Kernel) -> tuple[bool | None, ...]:
    """Per parameter of ``kernel``: None for a scalar, True for a pointer the kernel stores to
    or applies an atomic to anywhere, False for a pointer it only reads."""
    key = id(kernel)
    hit = _MODES.get(key)
    if hit is not None and hit[0]() is kernel:
        return hit[1]
    from .kernel import ir

    written = {stmt.buffer for stmt in ir.walk_statements(kernel.body)
               if isinstance(stmt, (ir.Store, ir.AtomicRMW)) and stmt.space == "global"}
    modes = tuple((p.name in written) if p.pointer else None for p in kernel.params)

    def forget(ref: object) -> None:
        entry = _MODES.get(key)
        if entry is not None and entry[0] is ref:
            del _MODES[key]

    ref: weakref.ref[Any] | Callable[[], Any]
    try:
        ref = weakref.ref(kernel, forget)
    except TypeError:
        ref = lambda: kernel  # noqa: E731
    _MODES[key] = (ref, modes)
    return modes
