"""The C runtime (csrc/hal_runtime.c) through its cffi module, without hal's Python layers."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hal_cpu._runtime import ffi, lib

from .testkernels import f32_slot, pack_slots

PAGE = os.sysconf("SC_PAGE_SIZE")
ALL = 2**64 - 1
# sizes around every threshold: inline (< 256 KiB), pooled, streaming stores (>= 4 MiB), mmap (>= 4 MiB)
SIZES = [0, 1, 2, 7, 63, 64, 65, 4095, 4097, (256 << 10) - 1, 256 << 10, (256 << 10) + 3,
         (1 << 20) + 17, (4 << 20) + 9, (9 << 20) + 5]


def host(arr: np.ndarray) -> Any:
    """A cdata pointer to a numpy array's memory."""
    return ffi.from_buffer(arr)


@pytest.fixture
def queue() -> Iterator[Any]:
    q = lib.hal_queue_create()
    assert q != ffi.NULL
    yield q
    lib.hal_queue_destroy(q)


def launch(q: Any, entry: Any, grid: tuple[int, int, int], block: tuple[int, int, int], args: bytes) -> int:
    return int(lib.hal_queue_launch_bytes(q, ffi.cast("hal_kernel_fn", entry), grid, block, args, len(args),
                                          ffi.NULL))


# ---- memory ------------------------------------------------------------------------------------

@pytest.mark.parametrize("nbytes", [0, 1, 63, 64, 4095, 1 << 20, (4 << 20) + 1, 64 << 20])
def test_alloc_is_aligned_and_writable(nbytes: int) -> None:
    p = lib.hal_alloc(nbytes)
    assert p != ffi.NULL
    assert int(ffi.cast("uintptr_t", p)) % 64 == 0
    view = np.frombuffer(ffi.buffer(p, nbytes), np.uint8)
    view[:] = 7
    assert (view == 7).all()
    lib.hal_free(p)


def mapping_of(address: int) -> str:
    """The permissions ("rw-p", "---p", ...) of the mapping of this process that holds ``address``."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            if lo <= address < hi:
                return perms
    return ""


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps")
@pytest.mark.parametrize("nbytes", [4 << 20, (4 << 20) + 512, (9 << 20) + 5, 64 << 20])
def test_large_blocks_end_right_before_a_guard_page(nbytes: int) -> None:
    """A kernel that runs off the end of a large block faults on its first byte past the 64-byte
    rounded end (the core's pool rounds to 512 bytes: there the first byte past the end faults)."""
    p = lib.hal_alloc(nbytes)
    start = int(ffi.cast("uintptr_t", p))
    end = start + nbytes
    guard = -(-end // PAGE) * PAGE
    assert start % 64 == 0 and guard - end < 64
    assert mapping_of(end - 1).startswith("rw") and mapping_of(guard) == "---p"
    view = np.frombuffer(ffi.buffer(p, nbytes), np.uint8)
    view[:] = 1  # every usable byte is writable
    lib.hal_free(p)
    assert mapping_of(guard) == ""


def test_alloc_failure_returns_null() -> None:
    assert lib.hal_alloc(1 << 62) == ffi.NULL
    lib.hal_free(ffi.NULL)


def test_machine_figures() -> None:
    assert lib.hal_physical_memory() > 1 << 20
    assert lib.hal_cpu_count() >= 1
    assert abs(lib.hal_now() - time.monotonic()) < 1.0


# ---- synchronous copies and fills ---------------------------------------------------------------

@pytest.mark.parametrize("nbytes", SIZES)
@pytest.mark.parametrize("offsets", [(0, 0), (1, 3), (13, 0), (0, 64)])
def test_copy(nbytes: int, offsets: tuple[int, int]) -> None:
    dst_off, src_off = offsets
    rng = np.random.default_rng(nbytes)
    src = rng.integers(0, 256, nbytes + src_off, dtype=np.uint8)
    dst = np.full(nbytes + dst_off + 16, 0xEE, np.uint8)
    lib.hal_copy(host(dst) + dst_off, host(src) + src_off, nbytes)
    np.testing.assert_array_equal(dst[dst_off:dst_off + nbytes], src[src_off:])
    assert (dst[:dst_off] == 0xEE).all() and (dst[dst_off + nbytes:] == 0xEE).all()


@pytest.mark.parametrize("nbytes", [100, 300 << 10, 5 << 20])
@pytest.mark.parametrize("shift", [-4097, -1, 1, 4097])
def test_overlapping_copy_moves(nbytes: int, shift: int) -> None:
    buf = np.arange(nbytes + 16384, dtype=np.uint32).astype(np.uint8)
    expect = buf.copy()
    src, dst = 8192, 8192 + shift
    expect[dst:dst + nbytes] = buf[src:src + nbytes].copy()
    lib.hal_copy(host(buf) + dst, host(buf) + src, nbytes)
    np.testing.assert_array_equal(buf, expect)


@pytest.mark.parametrize("nbytes", SIZES)
@pytest.mark.parametrize("pattern_size", [1, 2, 4, 8])
@pytest.mark.parametrize("offset", [0, 5])
def test_fill(nbytes: int, pattern_size: int, offset: int) -> None:
    nbytes -= nbytes % pattern_size
    pattern = bytes(range(0xA1, 0xA1 + pattern_size))
    dst = np.full(nbytes + offset + 16, 0xEE, np.uint8)
    lib.hal_fill(host(dst) + offset, nbytes, pattern, pattern_size)
    assert (dst[offset:offset + nbytes].reshape(-1, pattern_size) == np.frombuffer(pattern, np.uint8)).all()
    assert (dst[:offset] == 0xEE).all() and (dst[offset + nbytes:] == 0xEE).all()


# ---- queues ----------------------------------------------------------------------------------

def test_commands_run_in_order_and_count(queue: Any) -> None:
    n = 1 << 20
    a, b, c = (np.zeros(n, np.uint8) for _ in range(3))
    assert lib.hal_queue_submitted(queue) == 0 and lib.hal_queue_completed(queue) == 0
    seqs = [
        lib.hal_queue_fill(queue, host(a), n, b"\x01", 1),
        lib.hal_queue_copy(queue, host(b), host(a), n),
        lib.hal_queue_fill_at(queue, host(a), 0, n, b"\x02\x00", 2),
        lib.hal_queue_copy_at(queue, host(c), 8, host(a), 0, n - 8),
    ]
    assert seqs == [1, 2, 3, 4]
    assert lib.hal_queue_submitted(queue) == 4
    lib.hal_queue_wait_host(queue, 4)
    assert lib.hal_queue_completed(queue) == 4
    assert (b == 1).all()
    assert (c[:8] == 0).all() and (c[8::2] == 2).all() and (c[9::2] == 0).all()


def test_ring_grows_under_a_burst(queue: Any) -> None:
    counter = np.zeros(1, np.int64)
    values = np.arange(20000, dtype=np.int64)
    for i in range(len(values)):
        lib.hal_queue_copy(queue, host(counter), host(values[i:]), 8)
    lib.hal_queue_wait_host(queue, lib.hal_queue_submitted(queue))
    assert counter[0] == values[-1]


def test_markers_and_times(queue: Any) -> None:
    buf = np.zeros(8 << 20, np.uint8)
    m0 = lib.hal_queue_marker(queue)
    fill = lib.hal_queue_fill(queue, host(buf), buf.nbytes, b"\x05", 1)
    m1 = lib.hal_queue_marker(queue)
    lib.hal_queue_wait_host(queue, m1)
    start, end = ffi.new("double *"), ffi.new("double *")
    spans = []
    for seq in (m0, fill, m1):
        assert lib.hal_queue_times(queue, seq, start, end) == 1
        assert start[0] <= end[0] <= lib.hal_now()
        spans.append((start[0], end[0]))
    assert spans[0][1] <= spans[1][0] and spans[1][1] <= spans[2][0]
    assert spans[1][1] > spans[1][0]
    assert lib.hal_queue_times(queue, 0, start, end) == 0
    assert lib.hal_queue_times(queue, m1 + 1, start, end) == 0


def test_wait_host_beyond_submitted_returns(queue: Any) -> None:
    lib.hal_queue_wait_host(queue, 10**6)
    seq = lib.hal_queue_marker(queue)
    lib.hal_queue_wait_host(queue, 2**64 - 1)
    assert lib.hal_queue_completed(queue) == seq


def test_cross_queue_wait(kernels: Any) -> None:
    producer, consumer = lib.hal_queue_create(), lib.hal_queue_create()
    slot, seen = np.zeros(1, np.int64), np.zeros(1, np.int64)
    launch(producer, kernels.k_sleep_store, (1, 1, 1), (1, 1, 1),
           pack_slots(int(ffi.cast("uintptr_t", host(slot))), 1, 100, 42))
    ready = lib.hal_queue_marker(producer)
    lib.hal_queue_wait(consumer, producer, ready)
    done = lib.hal_queue_copy(consumer, host(seen), host(slot), 8)
    lib.hal_queue_wait_host(consumer, done)
    assert seen[0] == 42
    lib.hal_queue_destroy(consumer)
    lib.hal_queue_destroy(producer)


def test_a_queue_waited_on_may_be_destroyed_first(kernels: Any) -> None:
    """A pending wait keeps the queue it waits on alive. Without that, the queue was freed under
    the wait, and new queues made at once (malloc tends to hand one the same address) could be
    taken for it: a deadlock when such a queue waits on the waiting one. Several threads at once."""
    failures: list[str] = []

    def rounds(tid: int) -> None:
        slot = np.zeros(1, np.int64)
        for r in range(8):
            busy = lib.hal_queue_create()
            launch(busy, kernels.k_sleep_store, (1, 1, 1), (1, 1, 1),
                   pack_slots(int(ffi.cast("uintptr_t", host(slot))), 1, 10, r))
            first = lib.hal_queue_create()
            lib.hal_queue_wait(busy, first, lib.hal_queue_marker(first))
            lib.hal_queue_destroy(first)  # before `busy` ran its wait on it
            later = [lib.hal_queue_create() for _ in range(4)]
            for q in later:
                lib.hal_queue_wait(q, busy, lib.hal_queue_marker(busy))
            if not all(lib.hal_queue_wait_host_for(q, ALL, 5.0) for q in [busy, *later]):
                failures.append(f"thread {tid} round {r}: deadlocked")
                return  # the queues cannot be destroyed: leave them
            for q in [*later, busy]:
                lib.hal_queue_destroy(q)

    threads = [threading.Thread(target=rounds, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_timed_host_waits(queue: Any, kernels: Any) -> None:
    slot = np.zeros(1, np.int64)
    seq = launch(queue, kernels.k_sleep_store, (1, 1, 1), (1, 1, 1),
                 pack_slots(int(ffi.cast("uintptr_t", host(slot))), 1, 300, 5))
    assert lib.hal_queue_wait_host_for(queue, seq, 0.0) == 0 and lib.hal_queue_wait_host_for(queue, seq, -1.0) == 0
    t0 = time.monotonic()
    assert lib.hal_queue_wait_host_for(queue, seq, 0.1) == 0
    assert 0.09 < time.monotonic() - t0 < 0.25
    assert lib.hal_queue_idle(queue) == 0
    assert lib.hal_queue_wait_host_for(queue, ALL, float("inf")) == 1 and slot[0] == 5
    assert lib.hal_queue_wait_host_for(queue, seq + 10, 0.0) == 1  # never waits for unsubmitted commands
    assert lib.hal_queue_idle(queue) == 1


def test_idle_is_false_while_a_fault_waits(queue: Any, kernels: Any) -> None:
    buf = ffi.new("char[]", lib.HAL_FAULT_MESSAGE)
    lib.hal_queue_wait_host(queue, launch(queue, kernels.k_fault, (4, 1, 1), (1, 1, 1), pack_slots(2)))
    assert lib.hal_queue_completed(queue) == lib.hal_queue_submitted(queue) and lib.hal_queue_idle(queue) == 0
    assert lib.hal_queue_take_fault(queue, buf, len(buf)) == 1 and lib.hal_queue_idle(queue) == 1


def test_destroy_drains_pending_work(kernels: Any) -> None:
    q = lib.hal_queue_create()
    slot, out = np.zeros(1, np.int64), np.zeros(1, np.int64)
    launch(q, kernels.k_sleep_store, (1, 1, 1), (1, 1, 1),
           pack_slots(int(ffi.cast("uintptr_t", host(slot))), 1, 50, 7))
    lib.hal_queue_copy(q, host(out), host(slot), 8)
    lib.hal_queue_destroy(q)
    assert out[0] == 7


def test_threads_each_with_a_queue_are_exact() -> None:
    n_threads, rounds, n = 4, 50, 300 << 10
    errors: list[str] = []

    def work(tid: int) -> None:
        q = lib.hal_queue_create()
        a, b = np.zeros(n, np.uint32), np.zeros(n, np.uint32)
        for r in range(rounds):
            value = (tid << 16) + r
            lib.hal_queue_fill(q, host(a), a.nbytes, np.uint32(value).tobytes(), 4)
            lib.hal_queue_copy(q, host(b), host(a), a.nbytes)
            lib.hal_queue_wait_host(q, lib.hal_queue_submitted(q))
            if not (b == value).all():
                errors.append(f"thread {tid} round {r}")
        lib.hal_queue_destroy(q)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ---- launches ----------------------------------------------------------------------------------

@pytest.mark.parametrize("grid, block", [
    ((1, 1, 1), (1, 1, 1)), ((7, 1, 1), (1, 1, 1)), ((1000, 1, 1), (1, 1, 1)),
    ((100_000, 1, 1), (1, 1, 1)), ((64, 32, 4), (8, 4, 2)), ((3, 5, 7), (256, 1, 1)),
])
def test_every_group_runs_once(queue: Any, kernels: Any, grid: tuple[int, int, int],
                               block: tuple[int, int, int]) -> None:
    counts = np.zeros(grid[0] * grid[1] * grid[2], np.int32)
    args = pack_slots(int(ffi.cast("uintptr_t", host(counts))), counts.size)
    lib.hal_queue_wait_host(queue, launch(queue, kernels.k_count, grid, block, args))
    assert (counts == 1).all()


def test_launch_scalar_arguments(queue: Any, kernels: Any) -> None:
    out = np.zeros(64 * 256, np.float32)
    args = pack_slots(int(ffi.cast("uintptr_t", host(out))), out.size, f32_slot(0.5), 3.25)
    lib.hal_queue_wait_host(queue, launch(queue, kernels.k_affine, (64, 1, 1), (256, 1, 1), args))
    np.testing.assert_array_equal(out, (0.5 * np.arange(out.size, dtype=np.float32) + 3.25).astype(np.float32))


def test_launch_with_many_argument_slots(queue: Any, kernels: Any) -> None:
    out = np.zeros(1, np.int64)
    values = list(range(1, 41))  # 43 slots: more than a command holds inline
    args = pack_slots(int(ffi.cast("uintptr_t", host(out))), 1, len(values), *values)
    seq = launch(queue, kernels.k_sum, (1, 1, 1), (1, 1, 1), args)
    lib.hal_queue_wait_host(queue, seq)
    assert out[0] == sum(values)


def test_kernels_may_use_megabytes_of_stack(queue: Any, kernels: Any) -> None:
    out = np.zeros(256, np.int32)
    args = pack_slots(int(ffi.cast("uintptr_t", host(out))), out.size)
    lib.hal_queue_wait_host(queue, launch(queue, kernels.k_big_stack, (256, 1, 1), (64, 1, 1), args))
    assert (out == 1).all()


def test_fault_is_reported_once_and_the_queue_goes_on(queue: Any, kernels: Any) -> None:
    buf = ffi.new("char[]", lib.HAL_FAULT_MESSAGE)
    launch(queue, kernels.k_fault, (100_000, 1, 1), (1, 1, 1), pack_slots(777))
    launch(queue, kernels.k_fault, (10, 1, 1), (1, 1, 1), pack_slots(3))  # a later fault: not kept
    out = np.zeros(1 << 20, np.uint8)
    seq = lib.hal_queue_fill(queue, host(out), out.nbytes, b"\x09", 1)
    lib.hal_queue_wait_host(queue, seq)
    assert (out == 9).all()
    assert lib.hal_queue_take_fault(queue, buf, len(buf)) == 1
    assert ffi.string(buf) == b"k_fault: bad access in group 777"
    assert lib.hal_queue_take_fault(queue, buf, len(buf)) == 0


def test_concurrent_launches_share_the_pool(kernels: Any) -> None:
    """Queues that find the pool busy run their launch alone; every group still runs once."""
    n_queues, rounds, groups = 4, 20, 50_000
    queues = [lib.hal_queue_create() for _ in range(n_queues)]
    counts = [np.zeros(groups, np.int32) for _ in range(n_queues)]
    for _ in range(rounds):
        for q, c in zip(queues, counts, strict=True):
            launch(q, kernels.k_count, (groups, 1, 1), (1, 1, 1),
                   pack_slots(int(ffi.cast("uintptr_t", host(c))), groups))
    for q in queues:
        lib.hal_queue_destroy(q)
    for c in counts:
        assert (c == rounds).all()
