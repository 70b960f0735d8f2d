"""fork(): a child process opens the CPU backend afresh and works, whatever the parent's threads
were doing at the fork; the parent's queues are dead in the child and never waited on there."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hal_cpu import _compiler
from hal_cpu._device import CpuBuffer, CpuDevice
from hal_cpu._hostpool import MIN_BYTES
from hal_cpu._queue import CpuQueue
from hal_cpu._runtime import lib

import hal
from tests.forking import run_in_child

pytestmark = [pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()"),
              pytest.mark.skipif(__import__("shutil").which("gcc") is None, reason="needs gcc")]

N = 1 << 16
"""Work-items of the test launch: enough for the runtime's pool (8192 and more)."""


@hal.kernel
def add_one(x: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    x[i] = x[i] + 1.0


@dataclass(frozen=True)
class Arg:
    """A pointer argument as the core passes it (hal.backend.ArgBuffer)."""

    buffer: CpuBuffer
    offset: int
    size: int




@pytest.fixture
def busy_parent() -> Iterator[tuple[CpuDevice, CpuQueue, Any]]:
    """A device and queue that ran a copy and a pooled launch, and another thread that keeps
    launching, copying and holding the plugin's locks while the test forks."""
    dev = CpuDevice()
    q = dev.create_queue()
    exe = _compiler.compile_kernel(add_one.ir)
    a, b = dev.allocate(4 * N), dev.allocate(4 * N)
    a.host_array()[:] = 0
    q.launch(exe, (N // 256, 1, 1), (256, 1, 1), [Arg(a, 0, N)], None)
    q.copy(b, 0, a, 0, 4 * N, None)
    q.synchronize()
    assert (b.host_array().view(np.float32) == 1.0).all()

    stop = threading.Event()

    def churn() -> None:
        other = dev.create_queue()
        while not stop.is_set():
            with _compiler._lock, dev.host_pool._lock:
                other.launch(exe, (N // 256, 1, 1), (256, 1, 1), [Arg(a, 0, N)], None)
                other.copy(b, 0, a, 0, 4 * N, None)
                lib.hal_copy(b.handle, a.handle, 4 * N)  # the pool, from a thread of the parent
        other.close()

    thread = threading.Thread(target=churn)
    thread.start()
    time.sleep(0.05)
    yield dev, q, exe
    stop.set()
    thread.join()
    q.close()


def test_a_child_opens_the_backend_afresh(busy_parent: tuple[CpuDevice, CpuQueue, Any]) -> None:
    parent_dev, parent_q, parent_exe = busy_parent
    pending = parent_dev.allocate(4 * N)
    parent_q.launch(parent_exe, (N // 256, 1, 1), (256, 1, 1), [Arg(pending, 0, N)], None)  # pending at the fork

    def child() -> bool:
        dev = CpuDevice()
        q = dev.create_queue()
        exe = _compiler.compile_kernel(add_one.ir)  # the compiler's lock was held at the fork
        a, b = dev.allocate(4 * N), dev.allocate(4 * N)
        q.fill(a, 0, 4 * N, np.float32(2.0).tobytes(), None)
        q.launch(exe, (N // 256, 1, 1), (256, 1, 1), [Arg(a, 0, N)], None)
        q.copy(b, 0, a, 0, 4 * N, None)
        q.synchronize()
        ok = bool((b.host_array().view(np.float32) == 3.0).all())
        host = parent_dev.host_buffer(MIN_BYTES)  # its lock was held at the fork
        ok = ok and host is not None and host.nbytes == MIN_BYTES
        q.close()
        parent_q.synchronize()  # the parent's queue: returns at once, never waits on a worker of the parent
        parent_q.close()  # never joins the parent's worker: forgets the queue
        return ok

    run_in_child(child)
    parent_q.synchronize()  # the parent's queue still works in the parent
    parent_dev.free(pending)


def test_a_parents_queue_is_dead_in_the_child(busy_parent: tuple[CpuDevice, CpuQueue, Any]) -> None:
    parent_dev, parent_q, _ = busy_parent
    buf = parent_dev.allocate(64)

    def child() -> bool:
        h = parent_q.handle
        idle = lib.hal_queue_idle(h) == 1 and lib.hal_queue_wait_host_for(h, 2**64 - 1, 10.0) == 1
        enqueued = lib.hal_queue_fill(h, buf.handle, 64, b"\x01", 1)  # nothing runs it here
        fresh = lib.hal_queue_create()
        waited = lib.hal_queue_wait(fresh, h, 1)  # on a parent's queue: nothing to wait for
        lib.hal_queue_wait_host(fresh, waited)
        lib.hal_queue_destroy(fresh)
        return idle and enqueued == 0 and waited > 0 and lib.hal_queue_abort(h) == 0

    run_in_child(child)
    parent_dev.free(buf)
