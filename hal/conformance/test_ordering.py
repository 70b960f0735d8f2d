"""The memory and ordering model (docs/memory-model.md), as every backend must keep it.

Each test repeats its pattern enough to catch a race on this scale of machine, yet stays
fast: the arrays are small and the repetitions a few dozen. Copies and fills need no
feature; kernels are tagged with ``kernels``.
"""

import gc
import threading

import numpy as np
import pytest

import hal

N = 1 << 14
REPEAT = 20


@hal.kernel
def _add(x: hal.Ptr[hal.f32], value: hal.f32, n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] + value


@hal.kernel
def _axpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def _block(device):
    return min(256, device.info.max_block_size)


def _in_threads(work, count=4):
    """Run ``work(i)`` in ``count`` threads at once; re-raise the first failure in the test."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_created_arrays_are_ready_on_a_new_queue(device):
    for _ in range(REPEAT):
        x = device.full((N,), 3.0)
        y = device.zeros((N,), np.float32)
        z = device.array(np.arange(N, dtype=np.float32))
        q = device.queue()
        q.copy(y, x)
        w = device.empty((N,), np.float32)
        q.copy(w, z)
        q.synchronize()
        assert (y.numpy() == 3.0).all()
        np.testing.assert_array_equal(w.numpy(), np.arange(N, dtype=np.float32))
        q.close()


@pytest.mark.feature("kernels")
def test_created_arrays_are_ready_for_kernels_on_a_new_queue(device):
    b = _block(device)
    for _ in range(REPEAT):
        x = device.array(np.arange(N, dtype=np.float32))
        y = device.zeros((N,), np.float32)
        q = device.queue()
        _axpy[N // b, b, q](2.0, x, y, N)
        np.testing.assert_array_equal(y.numpy(), 2 * np.arange(N, dtype=np.float32))
        q.close()


def test_host_reads_see_writes_of_every_queue(device):
    queues = [device.queue() for _ in range(3)]
    for i in range(REPEAT):
        arrays = [device.empty((N,), np.float32) for _ in queues]
        for k, (q, a) in enumerate(zip(queues, arrays)):
            q.fill(a, float(i + k))
        for k, a in enumerate(arrays):  # no synchronize: the host read waits for every queue
            assert (a.numpy() == float(i + k)).all()
    for q in queues:
        q.close()


def test_free_while_busy_is_safe(device):
    q = device.queue()
    keep = device.empty((N,), np.float32)
    for i in range(REPEAT):
        src = device.full((N,), float(i))
        q.copy(keep, src)
        src.free()  # the copy may not have run yet
        for _ in range(3):
            device.full((N,), -1.0)  # would reuse src's block if the pool did not wait
        q.synchronize()
        assert (keep.numpy() == float(i)).all()
    q.close()


def test_dropped_arrays_are_reused_only_after_their_commands(device):
    q = device.queue()
    out = device.empty((N,), np.float32)
    for i in range(REPEAT):
        q.copy(out, device.full((N,), float(i)))  # the source is garbage right after the call
        gc.collect()
        device.full((N,), -1.0)
        q.synchronize()
        assert (out.numpy() == float(i)).all()
    q.close()


@pytest.mark.feature("kernels")
def test_free_inputs_right_after_a_launch(device):
    b = _block(device)
    q = device.queue()
    y = device.zeros((N,), np.float32)
    for _ in range(5):
        with device.array(np.ones(N, np.float32)) as x:
            _axpy[N // b, b, q](1.0, x, y, N)
    q.synchronize()
    assert (y.numpy() == 5.0).all()
    q.close()


def test_events_complete_only_after_the_work_before_them(device):
    q1, q2 = device.queue(), device.queue()
    for i in range(REPEAT):
        a, b = device.empty((N,), np.float32), device.empty((N,), np.float32)
        q1.fill(a, float(i))
        q1.copy(b, a)
        done = q1.record()
        done.synchronize()
        assert done.query()
        out = np.empty(N, np.float32)
        q2.copy(out, b)  # host-visible only through a queue: q2 must see q1's finished copy
        assert (out == float(i)).all()
    q1.close()
    q2.close()


def test_cross_queue_chains(device):
    queues = [device.queue() for _ in range(4)]
    for i in range(REPEAT):
        arrays = [device.empty((N,), np.float32) for _ in queues]
        queues[0].fill(arrays[0], float(i))
        for k in range(1, len(queues)):
            queues[k].wait(queues[k - 1].record())
            queues[k].copy(arrays[k], arrays[k - 1])
        queues[-1].synchronize()
        assert (arrays[-1].numpy() == float(i)).all()
    for q in queues:
        q.close()


@pytest.mark.feature("kernels")
def test_threads_with_their_own_queues(device):
    b = _block(device)

    def work(seed: int) -> None:
        q = device.queue()
        for i in range(8):
            x = device.full((N,), float(seed))
            _add[N // b, b, q](x, float(i), N)
            assert (x.numpy() == float(seed + i)).all()
        q.close()
    _in_threads(work)


@pytest.mark.feature("kernels")
def test_threads_sharing_one_queue(device):
    b = _block(device)
    q = device.queue()
    x = device.zeros((N,), np.float32)

    def work(_: int) -> None:
        for _ in range(10):
            _add[N // b, b, q](x, 1.0, N)
    _in_threads(work)
    assert (x.numpy() == 40.0).all()  # one in-order queue: every launch ran, none lost
    q.close()


def test_synchronize_from_one_thread_while_another_enqueues(device):
    q = device.queue()
    for i in range(REPEAT):
        x = device.zeros((N,), np.float32)
        started = threading.Event()

        def syncer(started: threading.Event = started) -> None:
            started.set()
            q.synchronize()
        t = threading.Thread(target=syncer)
        t.start()
        started.wait()
        q.fill(x, float(i + 1))
        assert (x.numpy() == float(i + 1)).all()
        t.join()
    q.close()


def test_dropped_queues_and_events_in_any_order(device):
    a = device.full((N,), 1.0)
    b = device.empty((N,), np.float32)
    for _ in range(REPEAT):
        q1, q2 = device.queue(), device.queue()
        q1.copy(b, a)
        e = q1.record()
        del q1
        q2.wait(e)
        q2.fill(a, 1.0)
        e2 = q2.record()
        del q2
        e2.synchronize()
    assert (b.numpy() == 1.0).all()


def test_synchronize_timeout_is_a_hal_error(device):
    q = device.queue()
    q.fill(device.empty((N,), np.float32), 0.0)
    q.synchronize(timeout=30.0)  # finishes well within it
    with pytest.raises(hal.InvalidArgumentError):
        q.synchronize(timeout=-1.0)
    q.close()


def test_operators_from_threads_with_their_own_queues(device):
    """hal.ops (native or portable) on several queues at once, each thread checking its own."""
    dtype = np.float32 if "float32" in device.info.dtypes else np.int8
    a = device.array(np.full((16, 16), 1, dtype))
    b = device.array(np.full((16, 16), 2, dtype))
    try:
        hal.ops.gemm(a, hal.ops.add(a, b))
    except hal.UnsupportedError as exc:
        pytest.skip(f"{device.info.name} runs neither kernels nor these operators: {exc}")

    def work(_: int) -> None:
        q = device.queue()
        for _ in range(5):
            c = hal.ops.add(a, b, queue=q)
            g = hal.ops.gemm(a, b, queue=q)
            assert (c.numpy() == 3).all()
            assert (g.numpy() == 32).all()
        q.close()
    _in_threads(work)
