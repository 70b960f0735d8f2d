"""Queues and events: order, asynchrony, cross-queue waits, timing, threads."""

import threading

import numpy as np
import pytest

from ._compare import assert_array_equal


def test_in_order_copies_and_fills(device):
    q = device.queue()
    a = device.array(np.arange(1000, dtype=np.float32))
    b = device.empty((1000,), np.float32)
    q.fill(b, 3.0)
    q.copy(b, a)
    q.fill(a, -1.0)
    q.synchronize()
    assert_array_equal(b, np.arange(1000), what="b, filled then copied from a")
    assert_array_equal(a, -1.0, what="a, filled after the copy")


@pytest.mark.parametrize("dtype,value", [(np.int32, -7), (np.float64, 2.5), (np.uint32, 2**32 - 1), (np.int8, -3)])
def test_fill_patterns(device, dtype, value):
    if np.dtype(dtype).name not in device.info.dtypes:
        pytest.skip(f"{device.info.name} does not store {np.dtype(dtype).name}")
    x = device.empty((33,), dtype)
    device.default_queue.fill(x, value)
    assert_array_equal(x, value, what=f"{np.dtype(dtype).name} fill with {value}")


def test_host_copies(device):
    q = device.queue()
    x = device.empty((4, 4), np.float32)
    h = np.arange(16, dtype=np.float32).reshape(4, 4)
    q.copy(x, h)
    out = np.empty_like(h)
    q.copy(out, x)
    assert_array_equal(out, h, what="host round trip")


def test_cross_queue_wait_and_events(device):
    q1, q2 = device.queue(), device.queue()
    a = device.empty((1 << 16,), np.float32)
    b = device.empty((1 << 16,), np.float32)
    start = q1.record()
    q1.fill(a, 2.0)
    done = q1.record()
    q2.wait(done)
    q2.copy(b, a)
    q2.synchronize()
    assert done.query() and start.query()
    assert_array_equal(b, 2.0, what="b, copied after a cross-queue wait")
    assert done.elapsed(start) >= 0.0


def test_elapsed_grows_with_work(device):
    q = device.queue()
    x = device.empty((1 << 20,), np.float32)
    e0 = q.record()
    for _ in range(4):
        q.fill(x, 1.0)
    e1 = q.record()
    assert e1.elapsed(e0) > 0.0


def test_several_threads_each_with_a_queue(device):
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            q = device.queue()
            x = device.empty((4096,), np.int32)
            y = device.empty((4096,), np.int32)
            for k in range(10):
                q.fill(x, i * 1000 + k)
                q.copy(y, x)
            out = np.empty(4096, np.int32)
            q.copy(out, y)
            assert_array_equal(out, i * 1000 + 9, what=f"thread {i}'s last copy")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

