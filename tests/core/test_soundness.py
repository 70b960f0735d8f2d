"""Regression tests of the memory and ordering model (docs/memory-model.md), one per defect
that was found: each failed on the code before the fix."""

from __future__ import annotations

import gc
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import hal
from hal.kernel.samples import saxpy
from tests.forking import run_in_child

SPECS = ["cpu", "simgpu", "fpga"]


@hal.kernel
def spin_until(flag: hal.Ptr[hal.f32], out: hal.Ptr[hal.i32]):
    """Never ends while flag[0] < 1 (the host cannot change it meanwhile: the compiler may keep
    flag[0] in a register), so only an abort stops it."""
    n = 0
    while flag[0] < 1.0:
        n += 1
    out[0] = n


def _abort(dev: hal.Device) -> None:
    """Stop spin_until with the device's time limit; the abort surfaces as a DeviceFault."""
    with pytest.raises(hal.DeviceTimeout):
        dev.synchronize(timeout=0.05)
    with pytest.raises(hal.DeviceFault, match="abort"):
        dev.synchronize(timeout=10)


@hal.kernel
def add_one(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] + 1.0


@pytest.mark.parametrize("spec", SPECS)
def test_readme_example_creation_is_ready_on_a_new_queue(spec: str) -> None:
    """dev.zeros/dev.full enqueued their fill on the default queue and returned: a kernel on
    another queue could run before the fill (1-3 wrong results in 30 on cpu and fpga)."""
    dev = hal.device(spec)
    n = 1 << 14
    for _ in range(30):
        x = dev.array(np.arange(n, dtype=np.float32))
        y = dev.zeros((n,), np.float32)
        q = dev.queue()
        saxpy[n // 256, 256, q](2.0, x, y, n)
        np.testing.assert_array_equal(y.numpy(), 2 * np.arange(n, dtype=np.float32))
        q.close()


def test_creation_does_not_wait_behind_the_default_queue() -> None:
    """Creation runs on the core's own queue: a busy default queue does not delay dev.zeros."""
    dev = hal.device("cpu")
    flag, out = dev.zeros((1,), np.float32), dev.zeros((1,), np.int32)
    spin_until[1, 1](flag, out)  # default queue: runs until flag[0] >= 1
    z = dev.full((8,), 3.0)  # returns while the default queue still spins
    assert (z._host_view() == 3.0).all()
    assert not dev.default_queue.impl.idle()
    _abort(dev)


def test_dlpack_view_keeps_memory_alive_across_free_and_gc() -> None:
    dev = hal.device("cpu")
    x = dev.array(np.arange(1024, dtype=np.float32))
    view = np.from_dlpack(x)
    del x
    gc.collect()
    others = [dev.full((1024,), 7.0) for _ in range(8)]  # would reuse the block under `view`
    np.testing.assert_array_equal(view, np.arange(1024, dtype=np.float32))
    dev.release_cache()
    np.testing.assert_array_equal(view, np.arange(1024, dtype=np.float32))  # was a segfault
    y = dev.array(np.ones(16, np.float32))
    v2 = np.from_dlpack(y)
    y.free()
    with pytest.raises(hal.InvalidHandleError):
        y.numpy()
    v2[:] = 5.0  # the memory is still the view's, nobody else's
    in_use = dev.memory_stats().in_use
    del v2, view, others
    gc.collect()
    assert dev.memory_stats().in_use < in_use


def test_host_reads_see_work_enqueued_by_another_thread_during_a_synchronize() -> None:
    """Queue.synchronize marked a queue clean after its wait even if another thread enqueued
    meanwhile; x.numpy() then skipped the queue (stale 9 times in 10)."""
    dev = hal.device("cpu")
    n = 1 << 16
    for _ in range(20):
        q = dev.queue()
        x = dev.zeros((n,), np.float32)
        add_one[n // 256, 256, q](x, n)
        started = threading.Event()

        def syncer(q: hal.Queue = q, started: threading.Event = started) -> None:
            started.set()
            q.synchronize()
        t = threading.Thread(target=syncer)
        t.start()
        started.wait()
        add_one[n // 256, 256, q](x, n)  # enqueued while the other thread synchronizes
        assert x.numpy()[-1] == 2.0
        t.join()
        q.close()


def test_queues_created_concurrently_are_all_waited_for() -> None:
    dev = hal.device("cpu")
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    queues: list[hal.Queue] = []
    try:
        def make() -> None:
            for _ in range(50):
                queues.append(dev.queue())
        threads = [threading.Thread(target=make) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert set(queues) <= set(dev._live_queues())
    for q in queues:
        q.close()


@pytest.mark.parametrize("spec", SPECS)
def test_free_right_after_enqueue_is_safe(spec: str) -> None:
    """On simgpu and fpga the command looked its buffer up when it ran: InvalidHandleError."""
    dev = hal.device(spec)
    q = dev.queue()
    for _ in range(5):
        x = dev.array(np.ones(256, np.float32))
        y = dev.zeros((256,), np.float32)
        saxpy[1, 256, q](3.0, x, y, 256)
        x.free()
        with dev.array(np.ones(256, np.float32)) as tmp:
            saxpy[1, 256, q](1.0, tmp, y, 256)
        q.synchronize()
        np.testing.assert_array_equal(y.numpy(), np.full(256, 4.0, np.float32))
    q.close()


@pytest.mark.parametrize("spec", ["simgpu", "fpga"])
def test_dropped_simulated_queues_end_their_threads(spec: str) -> None:
    dev = hal.device(spec)
    before = threading.active_count()
    for _ in range(200):
        dev.queue()
    gc.collect()
    assert threading.active_count() <= before + 2


def test_dropping_queues_and_events_in_any_order() -> None:
    dev = hal.device("cpu")
    x = dev.zeros((1 << 16,), np.float32)
    for _ in range(50):
        q1, q2 = dev.queue(), dev.queue()
        add_one[256, 256, q2](x, 1 << 16)
        q2.wait(q1.record())
        del q1
        q3 = dev.queue()
        q3.wait(q2.record())
        e = q3.record()
        del q2, q3
        e.synchronize()
    assert x.numpy()[0] == 50.0


@pytest.mark.parametrize("spec", ["simgpu", "fpga"])
def test_elapsed_across_queues_uses_one_time_base(spec: str) -> None:
    """Each simulated queue had its own clock from 0: an event on a new queue recorded after the
    host waited for another queue's work came out earlier than that work (fpga: -0.50 s)."""
    dev = hal.device(spec)
    n = 1 << 14
    x, y = dev.array(np.ones(n, np.float32)), dev.zeros((n,), np.float32)
    q1 = dev.queue()
    start = q1.record()
    for _ in range(3):
        saxpy[n // 256, 256, q1](1.0, x, y, n)
    end = q1.record()
    q1.synchronize()
    q2 = dev.queue()
    later = q2.record()
    assert end.elapsed(start) > 0
    assert later.elapsed(end) >= 0


@pytest.mark.parametrize("spec", SPECS)
def test_fill_tells_negative_zero_and_nan_apart(spec: str) -> None:
    dev = hal.device(spec)
    assert np.signbit(dev.full((4,), -0.0).numpy()).all()
    assert not np.signbit(dev.full((4,), 0.0).numpy()).any()
    assert np.isnan(dev.full((4,), math.nan).numpy()).all()
    assert (dev.full((4,), 2.0).numpy() == 2.0).all()


@pytest.mark.parametrize("spec", SPECS)
def test_zero_d_arrays_keep_their_shape(spec: str) -> None:
    dev = hal.device(spec)
    x = dev.array(np.float32(3))
    assert x.shape == () and x.numpy() == np.float32(3)
    y = dev.empty((), np.float32)
    dev.default_queue.copy(y, np.array(4.0, np.float32))
    assert y.numpy().shape == ()


def test_compiled_kernels_live_as_long_as_the_kernel(tmp_path: Path) -> None:
    """Device._compiled kept every compiled kernel (and its loaded library) forever."""
    import importlib.util
    import weakref

    dev = hal.device("cpu")
    x = dev.zeros((8,), np.float32)
    refs = []
    for c in range(5):
        path = tmp_path / f"k{c}.py"
        path.write_text(f"import hal\n\n\n@hal.kernel\ndef k(x: hal.Ptr[hal.f32]):\n"
                        f"    x[hal.global_id(0)] = {c}.0\n")
        spec = importlib.util.spec_from_file_location(f"_soundness_k{c}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.k[1, 8](x)
        refs.append(weakref.ref(module.k._compiled[dev]))
        del module
    dev.synchronize()
    assert (x.numpy() == 4.0).all()
    gc.collect()
    assert all(r() is None for r in refs)


# ---------------------------------------------------------------- waits, timeouts, interrupts
def test_synchronize_timeout_names_the_kernel_and_aborts_it() -> None:
    dev = hal.device("cpu")
    flag, out = dev.zeros((1,), np.float32), dev.zeros((1,), np.int32)
    q = dev.queue()
    spin_until[1, 1, q](flag, out)
    t0 = time.monotonic()
    with pytest.raises(hal.DeviceTimeout, match="spin_until"):
        q.synchronize(timeout=0.3)
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(hal.DeviceFault, match="abort"):
        q.synchronize(timeout=5)
    y = dev.zeros((4,), np.float32)  # the queue and the device keep working
    add_one[1, 4, q](y, 4)
    q.synchronize()
    assert (y.numpy() == 1.0).all()
    q.close()


def test_event_timeout_only_stops_waiting() -> None:
    dev = hal.device("simgpu")
    x = dev.zeros((1 << 16,), np.float32)
    q = dev.queue()
    for _ in range(30):
        add_one[256, 256, q](x, 1 << 16)
    e = q.record()
    with pytest.raises(hal.DeviceTimeout):
        e.synchronize(timeout=0.0)
    e.synchronize()
    assert x.numpy()[0] == 30.0
    with pytest.raises(hal.InvalidArgumentError, match="timeout"):
        q.synchronize(timeout=-1)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs POSIX interval timers")
def test_ctrl_c_interrupts_a_wait_for_a_kernel_that_never_ends() -> None:
    dev = hal.device("cpu")
    flag, out = dev.zeros((1,), np.float32), dev.zeros((1,), np.int32)
    q = dev.queue()
    spin_until[1, 1, q](flag, out)
    previous = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            q.synchronize()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - t0 < 1.5
    _abort(dev)
    q.close()


# ---------------------------------------------------------------- fork
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.parametrize("spec", ["cpu", "simgpu"])
def test_fork_child_gets_an_error_or_a_working_device_never_a_hang(spec: str) -> None:
    dev = hal.device(spec)
    x = dev.array(np.arange(4, dtype=np.float32))
    assert x.numpy()[3] == 3.0
    def child() -> bool:
        try:
            dev.array([2.0]).numpy()
            return False  # the parent's device must not be usable here
        except hal.InvalidHandleError as exc:
            assert "fork" in str(exc)
        fresh = hal.device(spec)
        y = fresh.array(np.ones(256, np.float32))
        z = fresh.zeros((256,), np.float32)
        saxpy[1, 256](2.0, y, z, 256)
        return fresh is not dev and bool((z.numpy() == 2.0).all())
    run_in_child(child, timeout=60)
    assert x.numpy()[3] == 3.0  # the parent keeps working


# ---------------------------------------------------------------- bad input: HalError, device keeps working
def test_bad_input_raises_hal_errors() -> None:
    dev = hal.device("cpu")
    x = dev.zeros((8,), np.float32)
    with pytest.raises(hal.InvalidArgumentError, match="f32 range"):
        saxpy[1, 8](1e300, x, x, 8)
    with pytest.raises(hal.InvalidArgumentError, match="f32 range"):
        saxpy[1, 8](10**400, x, x, 8)
    saxpy[1, 8](math.inf, dev.zeros((8,), np.float32), dev.zeros((8,), np.float32), 8)  # explicit inf is fine
    with pytest.raises(hal.InvalidArgumentError, match="Queue"):
        saxpy[1, 2, "q"]
    with pytest.raises(hal.InvalidArgumentError, match="by position"):
        saxpy[1, 8](2.0, x, x, n=8)
    with pytest.raises(hal.InvalidArgumentError, match="structured"):
        dev.empty(4, [("a", "i4")])
    with pytest.raises(hal.InvalidArgumentError):
        dev.full(3, np.array([2.0, 3.0]))
    assert (dev.full(3, np.float32(2.0)).numpy() == 2.0).all()
    with pytest.raises(hal.InvalidArgumentError):
        x.reshape("a")
    with pytest.raises(hal.InvalidArgumentError):
        x.reshape(2.5, 2)
    saxpy[1, 8](1.0, x, x, 8)
    with pytest.raises(hal.InvalidArgumentError):
        saxpy[1.0, 8](1.0, x, x, 8)
    with pytest.raises(hal.InvalidArgumentError):
        saxpy[True, 8](1.0, x, x, 8)
    y = dev.array(np.ones(8, np.float32))
    saxpy[1, 8](1.0, y, x, 8)
    assert (x.numpy() == 1.0).all()


def test_host_cache_is_counted_and_released() -> None:
    dev = hal.device("cpu")
    dev.release_cache()
    x = dev.zeros((1 << 20,), np.float32)  # 4 MiB: its readback comes from the host cache
    host = x.numpy()
    del host
    gc.collect()
    assert dev.memory_stats().host_cached >= x.nbytes
    assert dev.release_cache() >= x.nbytes
    assert dev.memory_stats().host_cached == 0


def test_garbage_collection_inside_the_pool_does_not_deadlock() -> None:
    """A collection that runs inside the pool's locked code (a backend call that allocates) used
    to free a dropped array's block under the same lock: the process hung."""
    dev = hal.device("simgpu")
    pool = dev._pool
    impl_free = pool._impl.free
    gc.collect()
    before = dev.memory_stats().in_use

    def free_and_collect(buffer: object) -> None:
        gc.collect()
        impl_free(buffer)

    def run() -> None:
        for _ in range(3):
            cycle: list[object] = [dev.zeros((1024,), np.float32)]
            cycle.append(cycle)  # only the collector frees it
            dev.zeros((2048,), np.float32)  # something cached for release_cache to free
            del cycle
            dev.release_cache()
    pool._impl.free = free_and_collect  # type: ignore[method-assign]
    try:
        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(20)
        assert not t.is_alive(), "the pool deadlocked"
    finally:
        del pool._impl.free
    gc.collect()
    assert dev.memory_stats().in_use == before  # every collected block came back


@pytest.mark.parametrize("spec", ["cpu", "simgpu"])
def test_queues_closed_while_other_threads_free_and_synchronize(spec: str) -> None:
    """Frees and device-wide waits look at every queue; a queue closed by another thread at that
    moment was called after its close (cpu: TypeError from a released C handle)."""
    dev = hal.device(spec)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            while not stop.is_set():
                q = dev.queue()
                q.fill(dev.empty((256,), np.float32), 1.0)
                q.close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=churn) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(300):
            dev.full((256,), 2.0).free()
            dev.synchronize()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
