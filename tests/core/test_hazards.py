"""The stream-ordering sanitizer (hal._hazards), driven directly with stand-in queues and arrays."""

from __future__ import annotations

import gc
import os
import sys
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import hal
from hal._hazards import MAX_ACCESSES_PER_QUEUE, HazardTracker, enabled, pointer_modes
from hal.kernel.samples import saxpy

SPEC = "fake:0"
HERE = os.path.basename(__file__)


@dataclass(eq=False)
class FakeDevice:
    spec: str = SPEC


@dataclass(eq=False)
class FakeQueue:
    name: str
    device: FakeDevice = field(default_factory=FakeDevice)


class FakeBlock:
    """Stands for the pool's Block: only its identity matters."""


@dataclass(eq=False)
class FakeArray:
    shape: tuple[int, ...] = (16,)
    dtype: np.dtype[Any] = field(default_factory=lambda: np.dtype(np.float32))
    _block: Any = field(default_factory=FakeBlock)
    offset: int = 0
    device: FakeDevice = field(default_factory=FakeDevice)
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize

    def slice(self, start: int, stop: int) -> FakeArray:
        """Elements [start, stop) as a view of the same allocation."""
        return FakeArray((stop - start,), self.dtype, self._block, self.offset + start * self.dtype.itemsize,
                         self.device)


@pytest.fixture
def t() -> HazardTracker:
    return HazardTracker(SPEC)


@pytest.fixture
def qs() -> tuple[FakeQueue, FakeQueue, FakeQueue]:
    return FakeQueue("queue 1"), FakeQueue("queue 2"), FakeQueue("queue 3")


# ------------------------------------------------------------------ unordered pairs
@pytest.mark.parametrize("first,second", [("w", "w"), ("w", "r"), ("r", "w")])
def test_unordered_pair_across_queues_raises(t, qs, first, second):
    q1, q2, _ = qs
    x = FakeArray((4, 8), np.dtype(np.int32))

    def access(kind):  # the other side of each command is an array of its own
        return ([x], [FakeArray()]) if kind == "r" else ([FakeArray()], [x])

    t.command(q1, "kernel 'producer'", *access(first)); line_first = sys._getframe().f_lineno  # noqa: E702
    with pytest.raises(hal.HazardError) as info:
        t.command(q2, "copy", *access(second))
    line_second = sys._getframe().f_lineno - 1
    msg = str(info.value)
    assert "kernel 'producer'" in msg and "copy" in msg
    assert "queue 1" in msg and "queue 2" in msg and SPEC in msg
    assert "array (4, 8) int32 on fake:0" in msg
    assert f"{HERE}:{line_first}" in msg and f"{HERE}:{line_second}" in msg
    assert ("writes" in msg) and (("reads" in msg) == (first != second))


def test_read_read_is_fine(t, qs):
    q1, q2, q3 = qs
    x = FakeArray()
    for q in (q1, q2, q3, q1, q2):
        t.command(q, "copy", [x], [FakeArray()])


def test_same_queue_is_always_ordered(t, qs):
    q1, _, _ = qs
    x = FakeArray()
    for _ in range(5):
        t.command(q1, "fill", [], [x])
        t.command(q1, "copy", [x], [x.slice(0, 4)])


def test_a_refused_command_is_not_recorded(t, qs):
    q1, q2, _ = qs
    x = FakeArray()
    t.command(q1, "fill", [], [x])
    with pytest.raises(hal.HazardError):
        t.command(q2, "fill", [], [x])
    # q2's fill never happened: q1 keeps going without any report
    t.command(q1, "copy", [x], [FakeArray()])
    t.command(q1, "fill", [], [x])
    t.wait(q2, t.record(q1))
    t.command(q2, "fill", [], [x])


# ------------------------------------------------------------------ orderings
def test_event_wait_orders(t, qs):
    q1, q2, _ = qs
    x = FakeArray()
    t.command(q1, "fill", [], [x])
    t.wait(q2, t.record(q1))
    t.command(q2, "copy", [x], [FakeArray()])
    t.wait(q1, t.record(q2))
    t.command(q1, "fill", [], [x])  # write after q2's read: ordered the other way round too


def test_host_wait_for_queue_orders(t, qs):
    q1, q2, _ = qs
    x = FakeArray()
    t.command(q1, "fill", [], [x])
    t.host_wait(q1)  # q1.synchronize()
    t.command(q2, "fill", [], [x])


def test_host_wait_for_event_orders_only_up_to_the_event(t, qs):
    q1, q2, _ = qs
    x, y = FakeArray(), FakeArray()
    t.command(q1, "fill", [], [x])
    token = t.record(q1)
    t.command(q1, "fill", [], [y])
    t.host_wait(q1, token)  # event.synchronize()
    t.command(q2, "fill", [], [x])
    with pytest.raises(hal.HazardError, match="fill"):
        t.command(q2, "fill", [], [y])


def test_host_wait_all_orders(t, qs):
    q1, q2, q3 = qs
    x, y = FakeArray(), FakeArray()
    t.command(q1, "fill", [], [x])
    t.command(q2, "fill", [], [y])
    t.host_wait_all()  # dev.synchronize(), x.numpy()
    t.command(q3, "copy", [x], [y])
    t.wait(q1, t.record(q3))
    t.command(q1, "copy", [y], [x])


def test_chain_of_waits_orders(t, qs):
    q1, q2, q3 = qs
    x = FakeArray()
    t.command(q1, "kernel 'a'", [], [x])
    t.wait(q2, t.record(q1))
    t.command(q2, "kernel 'b'", [], [FakeArray()])
    t.wait(q3, t.record(q2))
    t.command(q3, "kernel 'c'", [x], [])


def test_event_recorded_before_the_command_does_not_order_it(t, qs):
    q1, q2, _ = qs
    x = FakeArray()
    early = t.record(q1)
    t.command(q1, "kernel 'late'", [], [x])
    t.wait(q2, early)
    with pytest.raises(hal.HazardError, match="kernel 'late'"):
        t.command(q2, "copy", [x], [FakeArray()])
    t.host_wait(q2, early)  # a host wait for the early event does not cover it either
    with pytest.raises(hal.HazardError):
        t.command(q2, "copy", [x], [FakeArray()])


def test_host_synchronisation_orders_later_commands_of_every_queue(t, qs):
    q1, q2, q3 = qs
    x = FakeArray()
    t.command(q2, "copy", [x], [FakeArray()])
    t.command(q3, "copy", [x], [FakeArray()])
    t.host_wait(q2)
    with pytest.raises(hal.HazardError, match="queue 3"):  # q3's read is still unordered
        t.command(q1, "fill", [], [x])
    t.host_wait(q3)
    t.command(q1, "fill", [], [x])


# ------------------------------------------------------------------ byte ranges and creation
def test_disjoint_ranges_of_one_allocation_do_not_conflict(t, qs):
    q1, q2, _ = qs
    x = FakeArray((16,))
    t.command(q1, "fill", [], [x.slice(0, 8)])
    t.command(q2, "fill", [], [x.slice(8, 16)])
    with pytest.raises(hal.HazardError, match=r"bytes 28\.\.36.*bytes 0\.\.32"):
        t.command(q2, "copy", [x.slice(7, 9)], [FakeArray((2,))])


def test_overlap_through_another_view_is_found(t, qs):
    q1, q2, _ = qs
    x = FakeArray((16,), np.dtype(np.float32))
    raw = FakeArray((64,), np.dtype(np.uint8), x._block)
    t.command(q1, "fill", [], [x])
    with pytest.raises(hal.HazardError, match=r"array \(64,\) uint8.*as array \(16,\) float32"):
        t.command(q2, "copy", [raw], [FakeArray()])


def test_empty_arrays_touch_nothing(t, qs):
    q1, q2, _ = qs
    x = FakeArray((0,))
    t.command(q1, "fill", [], [x])
    t.command(q2, "fill", [], [x])


def test_creation_is_ready_on_every_queue(t, qs):
    default, q2, _ = qs
    x = FakeArray()
    t.command(default, "fill", [], [x])  # dev.zeros: a fill on the default queue...
    t.created(x)  # ...and the array is ready everywhere
    t.command(q2, "kernel 'k'", [], [x])
    y = FakeArray()
    t.created(y)  # dev.empty: nothing to forget
    t.command(q2, "copy", [y], [FakeArray()])


def test_creation_forgets_only_its_own_bytes(t, qs):
    q1, q2, _ = qs
    x = FakeArray((16,))
    t.command(q1, "fill", [], [x])
    t.created(x.slice(0, 8))
    t.command(q2, "fill", [], [x.slice(0, 8)])
    with pytest.raises(hal.HazardError):
        t.command(q2, "fill", [], [x.slice(8, 16)])


# ------------------------------------------------------------------ kernels
@hal.kernel
def histogram(x: hal.Ptr[hal.i32], bins: hal.Ptr[hal.i32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        hal.atomic_add(bins, x[i] % 16, 1)


@hal.kernel
def untouched(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i >= n:
        return


def test_pointer_modes_from_the_ir():
    assert pointer_modes(saxpy.ir) == (None, False, True, None)
    assert pointer_modes(histogram.ir) == (False, True, None)
    assert pointer_modes(untouched.ir) == (False, None)  # never stored to: a read at worst
    assert pointer_modes(saxpy.ir) is pointer_modes(saxpy.ir)  # cached


def test_launch_splits_reads_and_writes(t, qs):
    q1, q2, _ = qs
    x, y1, y2 = FakeArray(), FakeArray(), FakeArray()
    t.launch(q1, saxpy.ir, [2.0, x, y1, 16])
    t.launch(q2, saxpy.ir, [3.0, x, y2, 16])  # both read x: fine
    with pytest.raises(hal.HazardError) as info:
        t.launch(q2, saxpy, [3.0, x, y1, 16])  # both write y1 (a KernelFunction works too)
    msg = str(info.value)
    assert msg.count("kernel 'saxpy'") >= 2 and "queue 1" in msg and "queue 2" in msg
    with pytest.raises(hal.HazardError, match="kernel 'saxpy'"):
        t.command(q2, "fill", [], [x])  # x was read by queue 1's saxpy


def test_launch_atomics_write(t, qs):
    q1, q2, _ = qs
    data, bins = FakeArray((16,), np.dtype(np.int32)), FakeArray((16,), np.dtype(np.int32))
    t.launch(q1, histogram.ir, [data, bins, 16])
    with pytest.raises(hal.HazardError, match="kernel 'histogram'"):
        t.launch(q2, histogram.ir, [data, bins, 16])
    t.command(q2, "copy", [data], [FakeArray((16,), np.dtype(np.int32))])


# ------------------------------------------------------------------ memory and threads
def test_host_syncs_bound_memory(t, qs):
    q1, q2, _ = qs
    arrays = [FakeArray() for _ in range(50)]
    for a in arrays:
        t.command(q1, "fill", [], [a])
    assert len(t._blocks) == 50
    t.host_wait(q1)
    assert len(t._blocks) == 0 and not t._touched


def test_one_queue_keeps_one_entry_per_range(t, qs):
    q1, _, _ = qs
    x, y = FakeArray(), FakeArray()
    for _ in range(100):
        t.command(q1, "copy", [x], [y])
        t.command(q1, "copy", [y], [x])
    assert sum(len(qa.items) for per in t._blocks.values() for qa in per.values()) <= 4
    big = FakeArray((4 * MAX_ACCESSES_PER_QUEUE,))
    for i in range(4 * MAX_ACCESSES_PER_QUEUE):
        t.command(q1, "fill", [], [big.slice(i, i + 1)])
    assert max(len(qa.items) for per in t._blocks.values() for qa in per.values()) <= MAX_ACCESSES_PER_QUEUE


def test_event_ordered_pipelines_stay_small_without_host_syncs(t, qs):
    q1, q2, q3 = qs
    x = FakeArray()
    for _ in range(200):  # ping-pong over x, ordered only by events
        t.command(q1, "kernel 'a'", [x], [x])
        t.wait(q2, t.record(q1))
        t.command(q2, "kernel 'b'", [x], [x])
        t.wait(q1, t.record(q2))
    assert sum(len(qa.items) for qa in t._blocks[x._block].values()) == 1  # only q2's last write
    with pytest.raises(hal.HazardError, match="kernel 'b'.*on queue 2"):  # the latest writer is named
        t.command(q3, "copy", [x], [FakeArray()])


def test_tracker_keeps_no_memory_or_queue_alive(t, qs):
    q1, _, _ = qs
    x = FakeArray()
    t.command(q1, "fill", [], [x])
    block = weakref.ref(x._block)
    del x
    gc.collect()
    assert block() is None and len(t._blocks) == 0
    q = FakeQueue("queue 9")
    t.command(q, "fill", [], [FakeArray()])
    qref = weakref.ref(q)
    del q
    gc.collect()
    assert qref() is None
    t.host_wait_all()  # the collected queue's work is covered; its clock entries go
    assert not t._retired and len(t._queues) == 1 and all(len(st.clock) == 1 for st in t._queues.values())
    assert len(t._host) == 1


def test_collected_queue_still_conflicts_until_synchronised(t, qs):
    q1, _, _ = qs
    x = FakeArray()
    q = FakeQueue("queue 9")
    t.command(q, "fill", [], [x])
    del q
    gc.collect()
    with pytest.raises(hal.HazardError, match="queue 9"):
        t.command(q1, "fill", [], [x])
    t.host_wait_all()
    t.command(q1, "fill", [], [x])


def test_threads_with_their_own_queues_and_arrays(t):
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(k: int) -> None:
        try:
            q, other = FakeQueue(f"queue {k}"), FakeQueue(f"queue {k}b")
            mine = [FakeArray() for _ in range(8)]
            start.wait()
            for i in range(300):
                a, b = mine[i % 8], mine[(i + 1) % 8]
                t.command(q, "copy", [a], [b])
                if i % 50 == 0:
                    t.wait(other, t.record(q))
                    t.command(other, "fill", [], [a])
                    t.wait(q, t.record(other))
                if i % 97 == 0:
                    t.host_wait(q)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors


def test_threads_racing_on_a_shared_array(t):
    shared = FakeArray()
    raised: list[BaseException] = []
    start = threading.Barrier(2)

    def work(k: int) -> None:
        q = FakeQueue(f"queue {k}")
        start.wait()
        for _ in range(50):
            try:
                t.command(q, "fill", [], [shared])
            except hal.HazardError as exc:
                raised.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # whichever queue filled first owns the array; every fill of the other one is refused
    assert len(raised) == 50 and all("queue 1" in str(e) and "queue 2" in str(e) for e in raised)


def test_enabled_reads_the_environment(monkeypatch):
    monkeypatch.delenv("HAL_CHECK", raising=False)
    assert not enabled()
    monkeypatch.setenv("HAL_CHECK", "0")
    assert not enabled()
    monkeypatch.setenv("HAL_CHECK", "1")
    assert enabled()
