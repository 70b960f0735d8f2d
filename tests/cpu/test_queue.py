"""The CPU backend's Python glue (CpuBackend, CpuDevice, CpuBuffer, CpuQueue, CpuEvent) used directly."""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import hal_cpu
import numpy as np
import pytest
from hal_cpu._backend import CpuBackend
from hal_cpu._device import CpuBuffer, CpuDevice
from hal_cpu._queue import _KEEP_MAX, CpuEvent, CpuQueue

from hal._errors import DeviceFault, OutOfMemoryError
from hal._features import Feature
from hal.backend import CommandTrace

from .testkernels import KernelExe, f32_slot


@pytest.fixture(scope="module")
def device() -> CpuDevice:
    return CpuBackend().open_device(0, None)


@pytest.fixture
def queue(device: CpuDevice) -> Iterator[CpuQueue]:
    q = device.create_queue()
    yield q
    q.close()


def ptr_slots(buf: CpuBuffer, offset: int = 0, count: int = 0) -> bytes:
    return struct.pack("<qq", buf.address + offset, count)


def sleep_store(kernels: Any) -> KernelExe:
    """k_sleep_store(out: Ptr[i64], ms: i64, value: i64) with args (buffer, ms, value)."""
    return KernelExe(kernels.k_sleep_store,
                     lambda a: ptr_slots(a[0], 0, 1) + struct.pack("<qq", a[1], a[2]))


def trace(kind: str) -> CommandTrace:
    return CommandTrace(name=kind, kind=kind, device="cpu:0")


# ---- plugin, backend, device ---------------------------------------------------------------------

def test_plugin_module_declares_its_backend() -> None:
    assert hal_cpu.api_version == (1, 6)  # build_graph (a CpuGraph)
    backends = hal_cpu.hal_backends()
    assert [type(b) for b in backends] == [CpuBackend]
    assert backends[0].name == "cpu" and backends[0].device_count() == 1 and backends[0].options_model() is None


def test_device_info(device: CpuDevice) -> None:
    info = device.info()
    assert info.backend == "cpu" and info.kind == "cpu" and info.name
    assert info.compute_units >= 1 and info.memory_bytes > 0
    assert info.warp_size == 1 and info.max_block_size == 1024 and info.shared_memory_bytes == 64 * 1024
    assert info.host_visible and not info.simulated
    assert {Feature.KERNELS, Feature.ATOMICS, Feature.HOST_VISIBLE, Feature.INT8} <= info.features
    assert (Feature.BOUNDS_CHECKS in info.features) == (os.environ.get("HAL_CHECK", "") not in ("", "0"))
    assert Feature.SIMULATED_TIMING not in info.features


def test_buffer_host_array_is_zero_copy(device: CpuDevice) -> None:
    buf = device.allocate(4096)
    assert isinstance(buf, CpuBuffer) and buf.nbytes == 4096 and buf.address % 64 == 0
    view = buf.host_array()
    assert view.dtype == np.uint8 and view.shape == (4096,) and view.flags.writeable
    assert view.ctypes.data == buf.address and buf.host_array() is view
    view[:] = 3
    q = device.create_queue()
    out = np.zeros(4096, np.uint8)
    q.read(out, buf, 0, None)
    q.synchronize()
    q.close()
    assert (out == 3).all()
    device.free(buf)


def test_allocation_failure_is_out_of_memory(device: CpuDevice) -> None:
    with pytest.raises(OutOfMemoryError, match="cannot allocate"):
        device.allocate(1 << 62)


# ---- commands ------------------------------------------------------------------------------------

def test_write_copy_fill_read_with_offsets(device: CpuDevice, queue: CpuQueue) -> None:
    n = 3 << 20
    a, b = device.allocate(n), device.allocate(n)
    data = np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8)
    queue.write(a, 0, data, None)
    queue.fill(b, 0, n, b"\x00", None)
    queue.copy(b, 64, a, 1, n - 128, None)
    queue.fill(b, n - 64, 64, struct.pack("<d", 1.5), None)
    out = np.empty(n - 10, np.uint8)
    queue.read(out, b, 10, None)
    queue.synchronize()
    expect = np.zeros(n, np.uint8)
    expect[64:n - 64] = data[1:n - 127]
    expect[n - 64:] = np.frombuffer(struct.pack("<d", 1.5) * 8, np.uint8)
    np.testing.assert_array_equal(out, expect[10:])
    device.free(a)
    device.free(b)


def test_launch_and_traces(device: CpuDevice, queue: CpuQueue, kernels: Any) -> None:
    out = device.allocate(64 * 128 * 4)
    affine = KernelExe(kernels.k_affine, lambda a: ptr_slots(a[0], 0, 64 * 128)
                       + struct.pack("<Qd", f32_slot(a[1]), a[2]))
    traces = [trace("fill"), trace("kernel")]
    queue.fill(out, 0, out.nbytes, b"\xff", traces[0])
    queue.launch(affine, (64, 1, 1), (128, 1, 1), [out, 2.0, -1.0], traces[1])
    queue.synchronize()
    got = out.host_array().view(np.float32)
    np.testing.assert_array_equal(got, 2.0 * np.arange(got.size, dtype=np.float32) - 1.0)
    for t in traces:
        assert t.device_s > 0 and t.wall_s == t.device_s and t.wall_start == t.device_start > 0
    assert traces[0].device_start + traces[0].device_s <= traces[1].device_start
    device.free(out)


def test_fault_raises_at_synchronize_and_queue_keeps_working(device: CpuDevice, queue: CpuQueue,
                                                             kernels: Any) -> None:
    faulty = KernelExe(kernels.k_fault, lambda a: struct.pack("<q", a[0]))
    queue.launch(faulty, (50, 1, 1), (1, 1, 1), [12], None)
    buf = device.allocate(1024)
    queue.fill(buf, 0, 1024, b"\x04", None)
    with pytest.raises(DeviceFault, match="bad access in group 12"):
        queue.synchronize()
    assert (buf.host_array() == 4).all()
    queue.fill(buf, 0, 1024, b"\x05", None)
    queue.synchronize()
    assert (buf.host_array() == 5).all()
    device.free(buf)


# ---- events --------------------------------------------------------------------------------------

def test_events_order_and_time(device: CpuDevice, queue: CpuQueue, kernels: Any) -> None:
    slot = device.allocate(8)
    e0 = queue.record()
    queue.launch(sleep_store(kernels), (1, 1, 1), (1, 1, 1), [slot, 30, 5], None)
    e1 = queue.record()
    assert isinstance(e1, CpuEvent) and e1.queue is queue and e1.seq == e0.seq + 2
    assert not e1.query()
    e1.synchronize()
    assert e0.query() and e1.query()
    assert 0.025 < e1.time() - e0.time() < 1.0
    device.free(slot)


def test_queue_waits_for_another_queues_event(device: CpuDevice, kernels: Any) -> None:
    producer, consumer = device.create_queue(), device.create_queue()
    slot, seen = device.allocate(8), device.allocate(8)
    producer.launch(sleep_store(kernels), (1, 1, 1), (1, 1, 1), [slot, 50, 99], None)
    consumer.wait(producer.record())
    consumer.copy(seen, 0, slot, 0, 8, None)
    consumer.synchronize()
    assert seen.host_array().view(np.int64)[0] == 99
    for q in (consumer, producer):
        q.close()


def test_close_drains_and_events_outlive_their_queue(device: CpuDevice, kernels: Any) -> None:
    q = device.create_queue()
    slot = device.allocate(8)
    q.launch(sleep_store(kernels), (1, 1, 1), (1, 1, 1), [slot, 20, 3], None)
    event = q.record()
    q.close()
    q.close()
    assert slot.host_array().view(np.int64)[0] == 3
    assert event.query()
    event.synchronize()
    other = device.create_queue()
    other.wait(event)
    other.synchronize()
    other.close()
    device.free(slot)


class _Packer:
    """Packs (buffer,) for k_count: counts how often pack is called."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, args: Sequence[Any]) -> bytes:
        self.calls += 1
        return ptr_slots(args[0], 0, args[0].nbytes // 4)


def test_launch_casts_an_entry_once_per_executable(device: CpuDevice, queue: CpuQueue, kernels: Any) -> None:
    packer = _Packer()
    exe = KernelExe(kernels.k_count, packer)
    counts = device.allocate(4 * 100)
    counts.host_array()[:] = 0
    queue.launch(exe, (100, 1, 1), (1, 1, 1), [counts], None)
    target = exe.cpu_target  # made at the first launch, stored on the executable
    for _ in range(2):
        queue.launch(exe, (100, 1, 1), (1, 1, 1), [counts], None)
    queue.synchronize()
    assert (counts.host_array().view(np.int32) == 3).all()
    assert packer.calls == 3 and exe.cpu_target is target
    device.free(counts)


# ---- waits and lifetimes -------------------------------------------------------------------------

def test_idle_drain_and_timed_event_wait(device: CpuDevice, queue: CpuQueue, kernels: Any) -> None:
    slot = device.allocate(8)
    assert queue.idle() and queue.drain(0.0)
    queue.launch(sleep_store(kernels), (1, 1, 1), (1, 1, 1), [slot, 150, 4], None)
    event = queue.record()
    assert not queue.idle() and not event.query()
    t0 = time.monotonic()
    assert not queue.drain(0.05) and not event.wait(0.05)
    assert 0.09 < time.monotonic() - t0 < 0.5
    assert event.wait(5.0) and queue.drain(5.0) and queue.idle()
    assert slot.host_array().view(np.int64)[0] == 4
    queue.launch(KernelExe(kernels.k_fault, lambda a: struct.pack("<q", a[0])), (2, 1, 1), (1, 1, 1), [0], None)
    assert queue.drain(5.0) and not queue.idle()  # a fault waits to be raised
    with pytest.raises(DeviceFault):
        queue.synchronize()
    assert queue.idle()
    device.free(slot)


def test_a_queue_waited_on_may_go_first(device: CpuDevice, kernels: Any) -> None:
    """``q2.wait(q1.record()); del q1`` while q2 is busy: q2's wait must not read the freed queue (nor
    hang on a new queue made at its address)."""
    slot = device.allocate(8)
    for r in range(6):
        q2 = device.create_queue()
        q2.launch(sleep_store(kernels), (1, 1, 1), (1, 1, 1), [slot, 10, r], None)
        q1 = device.create_queue()
        q2.wait(q1.record())
        del q1
        others = [device.create_queue() for _ in range(4)]
        for q3 in others:
            q3.wait(q2.record())
        assert q2.drain(5.0) and all(q3.drain(5.0) for q3 in others), f"round {r} deadlocked"
        for q in (*others, q2):
            q.close()
    device.free(slot)


def test_a_synchronize_from_another_thread_keeps_pending_host_arrays(device: CpuDevice, kernels: Any) -> None:
    """A write's host array lives until its copy ran: a synchronize in another thread that waited
    for older commands only used to drop it while the copy was still queued behind a kernel. Three
    queues at once, each with a writer and a synchronizing thread."""
    n, rounds = 64 << 10, 4
    failures: list[str] = []

    def writer(q: CpuQueue, tag: int) -> None:
        dst, slot = device.allocate(n), device.allocate(8)
        for r in range(rounds):
            q.launch(sleep_store(kernels), (1, 1, 1), (1, 1, 1), [slot, 60, r], None)
            syncer = threading.Thread(target=q.synchronize)  # its wait covers the first kernel only
            syncer.start()
            time.sleep(0.02)
            q.launch(sleep_store(kernels), (1, 1, 1), (1, 1, 1), [slot, 60, r], None)
            value = (tag * 16 + r) % 250 + 1
            q.write(dst, 0, np.full(n, value, np.uint8), None)  # the queue holds the only reference
            syncer.join()  # returned after the first kernel; the write is still queued
            garbage = [np.full(n, 0xFF, np.uint8) for _ in range(8)]  # would take the freed memory
            q.synchronize()
            del garbage
            if not (dst.host_array() == value).all():
                failures.append(f"queue {tag} round {r}: the copy read freed memory")
        device.free(dst)
        device.free(slot)

    queues = [device.create_queue() for _ in range(3)]
    threads = [threading.Thread(target=writer, args=(q, i)) for i, q in enumerate(queues)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for q in queues:
        q.close()
    assert failures == []


def test_kept_objects_go_once_their_commands_ran(device: CpuDevice, queue: CpuQueue, kernels: Any) -> None:
    """Without a synchronize the kept list stays bounded (enqueues drop what completed)."""
    buf = device.allocate(64)
    host = np.zeros(64, np.uint8)
    for _ in range(3 * _KEEP_MAX):
        queue.read(host, buf, 0, None)
    assert queue.drain(5.0)
    assert len(queue._keep) <= _KEEP_MAX + 1
    queue.read(host, buf, 0, None)
    queue.synchronize()
    assert not queue._keep
    device.free(buf)
