"""Remote queues and events across the process boundary: batching, every command path from
several queues and threads, the ordering model (idle, drain, events, cross-queue waits, frees),
host transfers through the object store, profiling and time limits."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import hal
from hal.kernel.samples import saxpy

N = 1 << 12


@hal.kernel
def _slow_copy(src: hal.Ptr[hal.f32], dst: hal.Ptr[hal.f32], rounds: hal.i32, n: hal.i32):
    """dst = src, after ``rounds`` iterations of busy work per element (a kernel that takes a while)."""
    i = hal.global_id(0)
    if i < n:
        acc = src[i]
        for _ in range(rounds):
            acc = acc * 1.0
        dst[i] = acc


@hal.kernel
def _forever(x: hal.Ptr[hal.f32]):
    v = x[0]
    while v < 1.0:
        v = v * 1.0
    x[0] = v


def _threads(work: Callable[[int], None], count: int = 4) -> None:
    """``work(i)`` in ``count`` threads at once; the first failure is raised here."""
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(work, range(count)))


def test_listing_devices_reads_hal_remote_and_imports_no_ray() -> None:
    code = ("import sys, hal; print([d.spec for d in hal.devices() if d.backend.name == 'remote'], "
            "'ray' in sys.modules)")
    for env, specs in (({}, ["remote:0", "remote:1"]), ({"HAL_REMOTE": "cpu,simgpu:1,fpga"},
                                                          ["remote:0", "remote:1", "remote:2"]),
                       ({"HAL_REMOTE": ""}, [])):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                             env={**_env(), **env})
        assert run.stdout.strip() == f"{specs} False", run.stderr


def test_with_ray_address_hal_joins_that_cluster_and_leaves_it_running(cluster: Any) -> None:
    address = cluster.get_runtime_context().gcs_address
    code = ("import numpy as np, ray, hal; x = hal.device('remote:1').array(np.arange(3.0)); "
            "print(x.numpy().sum(), ray.get_runtime_context().gcs_address)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**_env(), "RAY_ADDRESS": address})
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["3.0", address]
    assert cluster.is_initialized() and cluster.get(cluster.put(1)) == 1  # still up for the other tests


def test_a_cluster_hal_starts_is_its_own_and_listens_on_loopback_only(cluster: Any) -> None:
    """Without RAY_ADDRESS, hal starts a cluster of its own (not this session's, nor any that `ray
    start` left on the machine), bound to 127.0.0.1: nothing off the machine can send it pickles."""
    code = "from hal_remote._cluster import ray; print('gcs', ray().get_runtime_context().gcs_address)"
    env = {k: v for k, v in _env().items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    _, address = run.stdout.split()
    assert address.startswith("127.0.0.1:")
    assert address != cluster.get_runtime_context().gcs_address


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "HAL_REMOTE"}


def test_the_device_describes_what_it_hosts(remote: hal.Device) -> None:
    info = remote.info
    assert info.backend == "remote" and "cpu via Ray on" in info.name and not info.host_visible
    assert remote.supports("kernels") and not remote.supports("host_visible") and not remote.supports("int8")
    with pytest.raises(hal.UnsupportedError):
        np.from_dlpack(remote.zeros((2,), np.float32))


def test_small_commands_share_round_trips(remote: hal.Device) -> None:
    q = remote.queue()
    x, ones = remote.zeros((N,), np.float32), remote.full((N,), 1.0)
    sender = remote.impl.sender
    before = sender._seq
    for _ in range(500):
        saxpy[N // 256, 256, q](1.0, ones, x, N)
    q.synchronize()
    assert (x.numpy() == 500).all()
    assert sender._seq - before < 100  # one batch per round trip, not one per command


def test_every_command_from_threads_with_their_own_queues(remote: hal.Device) -> None:
    def work(i: int) -> None:
        q = remote.queue()
        host = np.arange(N, dtype=np.float32) + i
        x, y = remote.empty((N,), np.float32), remote.empty((N,), np.float32)
        for k in range(5):
            q.copy(x, host, blocking=False)            # write
            q.fill(y, float(k))                        # fill
            saxpy[N // 256, 256, q](2.0, x, y, N)      # launch
            z = remote.empty((N,), np.float32)
            q.copy(z, y)                               # device copy
            out = np.empty(N, np.float32)
            q.copy(out, z)                             # read (waits)
            np.testing.assert_array_equal(out, 2 * host + k)
        q.close()
    _threads(work)


def test_cross_queue_waits_chain_queues_and_threads(remote: hal.Device) -> None:
    queues = [remote.queue() for _ in range(4)]

    def work(i: int) -> None:
        arrays = [remote.empty((N,), np.float32) for _ in queues]
        queues[0].fill(arrays[0], float(i))
        for k in range(1, len(queues)):
            queues[k].wait(queues[k - 1].record())
            _slow_copy[N // 256, 256, queues[k]](arrays[k - 1], arrays[k], 50, N)
        done = queues[-1].record()
        done.synchronize()
        assert done.query()
        out = np.empty(N, np.float32)
        queues[0].copy(out, arrays[-1])  # another queue: the event ordered it
        assert (out == i).all()
    _threads(work)


def test_idle_drain_and_events_tell_the_truth(remote: hal.Device) -> None:
    q = remote.queue()
    x, y = remote.array(np.ones(N, np.float32)), remote.empty((N,), np.float32)
    start = q.record()
    _slow_copy[N // 256, 256, q](x, y, 20000, N)
    end = q.record()
    assert not q.impl.idle() and not end.query()
    assert not q.impl.drain(0.001)  # still running
    end.synchronize()
    assert end.query() and q.impl.drain(0.0) and q.impl.idle()
    assert end.elapsed(start) > 0
    assert (y.numpy() == 1).all()


def test_freeing_while_commands_use_the_memory_is_safe(remote: hal.Device) -> None:
    q = remote.queue()
    out = remote.empty((N,), np.float32)
    for i in range(5):
        src = remote.full((N,), float(i))
        _slow_copy[N // 256, 256, q](src, out, 2000, N)
        src.free()  # the launch has not run yet
        for _ in range(3):
            remote.full((N,), -1.0)  # would reuse src's memory if the pool did not wait
        q.synchronize()
        assert (out.numpy() == i).all()


def test_a_dropped_queue_finishes_its_work_before_it_goes(remote: hal.Device) -> None:
    src = remote.array(np.arange(N, dtype=np.float32))
    for _ in range(5):
        x = remote.empty((N,), np.float32)
        _slow_copy[N // 256, 256, remote.queue()](src, x, 2000, N)  # the queue is dropped at once
        np.testing.assert_array_equal(x.numpy(), np.arange(N))  # the host read no longer sees it


def test_a_queue_collected_in_the_middle_of_a_send_does_not_deadlock(cluster: Any) -> None:
    """The cyclic garbage collector may finalize a queue with work in flight while this thread is
    inside a send whose batch has not left yet: that queue's close must not wait for a reply."""
    import gc

    from .conftest import fresh

    dev = fresh(0)
    real = dev.impl.worker

    class Collecting:  # the worker's handle, collecting garbage inside every submit
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        class submit:  # noqa: N801 - stands in for an actor method
            @staticmethod
            def remote(*args: Any) -> Any:
                gc.collect()
                return real.submit.remote(*args)

    src, x = dev.array(np.ones(N, np.float32)), dev.empty((N,), np.float32)
    q = dev.queue()
    _slow_copy[N // 256, 256, q](src, x, 2000, N)
    cycle: list[Any] = [q]
    cycle.append(cycle)
    del q, cycle
    dev.impl.worker = Collecting()
    pool = ThreadPoolExecutor(1)
    try:
        done = pool.submit(lambda: dev.default_queue.fill(src, 2.0) or src.numpy())
        assert (done.result(timeout=30) == 2).all()
    finally:
        pool.shutdown(wait=False)
        dev.impl.worker = real
    assert (x.numpy() == 1).all()


def test_large_transfers_go_through_the_object_store(remote: hal.Device) -> None:
    host = np.random.default_rng(0).standard_normal(3 << 20).astype(np.float32)  # 12 MiB
    x = remote.array(host)
    q = remote.queue()
    y = remote.empty(host.shape, np.float32)
    q.copy(y, x)
    np.testing.assert_array_equal(y.numpy(), host)


def test_profiles_get_each_commands_device_time(remote: hal.Device) -> None:
    x = remote.zeros((N,), np.float32)
    with hal.profile() as prof:
        remote.default_queue.fill(x, 1.0)
        saxpy[N // 256, 256](1.0, x, x, N)
        x.numpy()
    kinds = [r.kind for r in prof.records]
    assert kinds[:2] == ["fill", "kernel"] and "copy_d2h" in kinds
    assert all(r.device == remote.spec and r.device_s > 0 for r in prof.records)


def test_a_time_limit_aborts_a_kernel_that_never_ends(remote: hal.Device) -> None:
    q = remote.queue()
    x = remote.zeros((1,), np.float32)
    _forever[1, 1, q](x)
    with pytest.raises(hal.DeviceTimeout, match="_forever"):
        q.synchronize(timeout=0.3)
    with pytest.raises(hal.DeviceFault, match="remote:0"):
        q.synchronize()
    q.fill(x, 2.0)  # the queue keeps working
    assert x.numpy()[0] == 2.0


def test_kernel_faults_come_back_as_device_faults(remote: hal.Device) -> None:
    @hal.kernel
    def wild(x: hal.Ptr[hal.f32]):
        x[1 << 30] = 1.0  # unmapped: the CPU turns the signal into a fault

    q = remote.queue()
    wild[1, 1, q](remote.zeros((4,), np.float32))
    with pytest.raises(hal.DeviceFault, match="remote:0.*wild"):
        q.synchronize()
    assert remote.compile(saxpy) is remote.compile(saxpy)  # compiled once per device


def test_a_hal_remote_entry_its_worker_cannot_open_is_an_error_naming_it(cluster: Any) -> None:
    from hal_remote._device import RemoteDevice

    with pytest.raises(hal.DeviceNotFoundError, match="remote:4 hosts 'nosuch:0' .entry 4 of HAL_REMOTE"):
        RemoteDevice(4, "nosuch:0")


def test_reads_outside_a_buffer_sent_past_the_core_are_refused_and_the_worker_lives(remote: hal.Device) -> None:
    """Commands sent to the worker directly (``q.impl``, past the core's checks): a read beyond the
    buffer returned the worker's heap, at 1 << 40 it killed the worker. Now each is an
    InvalidArgumentError at the caller's next synchronize, the array is left alone, and the worker
    keeps serving, from several threads at once."""
    x = remote.array(np.arange(N, dtype=np.float32))
    size = x.buffer.nbytes

    def abuse(t: int) -> None:
        q = remote.queue()
        for offset in (size, 1 << 40, -4):
            out = np.full(4096, 7, np.uint8)
            q.impl.read(out, x.buffer, offset, None)
            with pytest.raises(hal.InvalidArgumentError, match=rf"outside buffer \d+ \({size} bytes\)"):
                q.synchronize()
            assert (out == 7).all()
        q.impl.fill(x.buffer, size - 4, 1 << 40, b"\0\0\0\0", None)
        with pytest.raises(hal.InvalidArgumentError, match="fill of"):
            q.synchronize()

    _threads(abuse)
    np.testing.assert_array_equal(x.numpy(), np.arange(N, dtype=np.float32))


def test_a_worker_given_an_untrusted_cache_dir_compiles_without_it(cluster: Any, tmp_path: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """HAL_CACHE_DIR reaches the workers; one that others may write is refused there as in any hal
    process (nothing is read from it or written to it), and the driver says so."""
    import os
    import warnings

    from hal_remote._cluster import start_worker

    from hal.backend import _cache

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("HAL_CACHE_DIR", str(shared))
    monkeypatch.setattr(_cache, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        worker = start_worker("cpu")
    try:
        assert [w.category for w in caught] == [hal.CacheWarning]
        assert cluster.get(worker.open.remote())[0]
        assert cluster.get(worker.compile.remote(1, _slow_copy.ir.to_json())) == (True, None)
        ok, report = cluster.get(worker.report.remote(1))
        assert ok and report["cached"] is False
        assert not list(shared.iterdir())
    finally:
        cluster.kill(worker)
