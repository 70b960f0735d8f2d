"""Graphs (``with q.capture() as g``): capture records, replay equals eager bit for bit, on any queue
and thread of the device, and the capture errors are what docs/memory-model.md says.

Copies and fills need no feature; kernels and ``hal.ops`` are tagged with ``kernels``.
"""

import gc
import threading

import numpy as np
import pytest

import hal

from ._compare import assert_array_equal

N = 1000


@hal.kernel
def _axpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


@hal.kernel
def _scale(x: hal.Ptr[hal.f32], a: hal.f32, n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] * a + 0.5


def _groups(device, n=N):
    block = min(256, device.info.max_block_size)
    return -(-n // block), block


def _step(device, q, x, y, z):
    """One 'training step': kernels, a copy, a fill, a portable operator; the same eager or captured."""
    grid, block = _groups(device)
    _axpy[grid, block, q](0.5, x, y, N)
    _scale[grid, block, q](y, 1.25, N)
    q.copy(z, y)
    hal.ops.add(z, x, out=z, queue=q)
    _axpy[grid, block, q](-0.25, z, x, N)
    q.fill(y[:10], 3.0)


def _arrays(device):
    x = device.array(np.linspace(-1, 1, N, dtype=np.float32))
    y = device.array(np.cos(np.arange(N, dtype=np.float32)))
    return x, y, device.zeros((N,), np.float32)


@pytest.mark.feature("kernels")
def test_replay_equals_eager_bit_for_bit(device):
    q = device.queue()
    eager = _arrays(device)
    for _ in range(3):
        _step(device, q, *eager)
    captured = _arrays(device)
    with q.capture() as g:
        _step(device, q, *captured)
    assert [n.kind for n in g.nodes] == ["kernel", "kernel", "copy", *(["kernel"] * (len(g.nodes) - 5)), "kernel",
                                         "fill"]
    assert g.nodes[0].name == "_axpy" and g.nodes[0].writes[0] is captured[1]
    q.synchronize()
    assert_array_equal(captured[2], np.zeros(N, np.float32), what="z after a capture (nothing ran)")
    for _ in range(3):
        g.launch()
    for got, want, name in zip(captured, eager, "xyz"):
        np.testing.assert_array_equal(got.numpy().view(np.uint32), want.numpy().view(np.uint32), err_msg=name)


def test_replay_a_thousand_times_and_on_other_queues(device):
    q, q2 = device.queue(), device.queue()
    count = device.zeros((1,), np.int32)
    a, b = device.zeros((64,), np.int32), device.zeros((64,), np.int32)
    with q.capture() as g:
        q.copy(b, a)
        q.fill(a, 7)
        q.copy(a[:32], b[32:])
    q.fill(count, 1)
    for i in range(1000):
        g.launch(q if i % 2 else q2)  # each queue waits for the other before its turn
        (q2 if i % 2 else q).wait((q if i % 2 else q2).record())
    q.synchronize()
    q2.synchronize()
    assert_array_equal(a, np.array([7] * 64, np.int32), what="a after 1000 replays")
    assert_array_equal(b, np.array([7] * 64, np.int32), what="b after 1000 replays")


def test_graph_inside_an_event_chain(device):
    q1, q2, q3 = device.queue(), device.queue(), device.queue()
    src, mid, out = (device.zeros((1 << 14,), np.float32) for _ in range(3))
    with q2.capture() as g:
        q2.copy(mid, src)
        q2.copy(out, mid)
    for value in (1.0, 2.0, 3.0):
        q1.fill(src, value)
        q2.wait(q1.record())
        g.launch(q2)
        q3.wait(q2.record())
        q3.fill(src[:1], -1.0)  # after the graph read src
        q1.wait(q3.record())
        q1.synchronize()
        assert_array_equal(out, value, what=f"out after the graph ran behind fill {value}")


@pytest.mark.feature("kernels")
def test_arrays_dropped_or_freed_after_capture_stay_alive(device):
    q = device.queue()
    grid, block = _groups(device)
    x = device.array(np.ones(N, np.float32))
    y = device.zeros((N,), np.float32)
    with q.capture() as g:
        _axpy[grid, block, q](2.0, x, y, N)
        tmp = device.empty((N,), np.float32)  # allocation inside a capture is allowed
        q.copy(tmp, y)
        _axpy[grid, block, q](1.0, tmp, y, N)
    del x, tmp
    gc.collect()
    for _ in range(5):  # reuse the memory the graph holds, if the pool wrongly gave it back
        device.full((N,), 9.0, np.float32)
    g.launch()
    g.launch()
    assert_array_equal(y, np.full(N, 12.0, np.float32), what="y = 2 * (2 * 1 + 0) + 2 * 2 + ... after two replays")
    keep = device.zeros((N,), np.float32)
    with q.capture() as g2:
        q.fill(keep, 5.0)
    keep.free()  # the graph keeps the memory; the user's handle is gone
    g2.launch()
    q.synchronize()
    with pytest.raises(hal.InvalidHandleError):
        keep.numpy()


def test_capture_errors_leave_everything_working(device):
    q, other = device.queue(), device.queue()
    x = device.zeros((16,), np.float32)
    refused = {
        "host read": lambda: x.numpy(),
        "synchronize": q.synchronize,
        "blocking host copy": lambda: q.copy(x, np.ones(16, np.float32)),
        "device-to-host copy": lambda: q.copy(np.empty(16, np.float32), x, blocking=False),
        "record": q.record,
        "wait": lambda: q.wait(other.record()),
        "another queue": lambda: other.fill(x, 1.0),
        "nested capture": lambda: q.capture().__enter__(),
    }
    for what, call in refused.items():
        with q.capture() as g:
            q.fill(x, 2.0)
            with pytest.raises(hal.CaptureError):
                call()
            q.fill(x[:8], 4.0)
        assert [n.kind for n in g.nodes] == ["fill", "fill"], what
        g.launch()
        assert_array_equal(x, np.array([4.0] * 8 + [2.0] * 8, np.float32), what=f"x after refusing {what}")
        other.fill(x, 0.0)
        other.synchronize()
    with pytest.raises(hal.CaptureError, match="inside the capture"):
        with q.capture():
            q.fill(x, 1.0)
            device.synchronize()
    with pytest.raises(hal.InvalidArgumentError, match="a hal.Queue of"):
        g.launch("not a queue")
    with pytest.raises(RuntimeError, match="the user's own error"):
        with q.capture() as failed:
            q.fill(x, 5.0)
            raise RuntimeError("the user's own error")
    with pytest.raises(hal.CaptureError, match="capture failed"):
        failed.launch()
    q.fill(x, 6.0)  # the queue records no more
    assert_array_equal(x, 6.0, what="x after a failed capture")


@pytest.mark.parametrize("default", [False, True], ids=["own queue", "default queue"])
def test_a_captured_queue_refuses_other_threads(device, default):
    q = device.default_queue if default else device.queue()
    x = device.zeros((16,), np.float32)
    errors: list[BaseException] = []

    def intruder():
        try:
            q.fill(x, 9.0)
        except hal.CaptureError as exc:
            errors.append(exc)

    seen: list[np.ndarray] = []
    with q.capture() as g:
        q.fill(x, 1.0)
        t = threading.Thread(target=intruder)
        t.start()
        t.join()
        t = threading.Thread(target=lambda: seen.append(x.numpy()))  # host reads of other threads work
        t.start()
        t.join()
    assert len(errors) == 1 and "another thread" in str(errors[0])
    assert len(seen) == 1 and not seen[0].any()
    assert len(g.nodes) == 1
    g.launch()
    assert_array_equal(x, 1.0, what="x after the replay")


def test_threads_each_capture_and_replay_their_own_graph(device):
    count, repeat = 4, 30
    queues = [device.queue() for _ in range(count)]
    arrays = [(device.zeros((256,), np.int32), device.zeros((256,), np.int32)) for _ in range(count)]
    graphs = [None] * count
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def work(i):
        try:
            q, (a, b) = queues[i], arrays[i]
            start.wait()
            with q.capture() as g:  # every thread captures at once
                for _ in range(8):
                    q.fill(a, i + 1)
                    q.copy(b, a)
            graphs[i] = g
            q2 = device.queue()
            for r in range(repeat):
                graphs[i].launch(q2 if r % 2 else queues[i])
                (queues[i] if r % 2 else q2).wait((q2 if r % 2 else queues[i]).record())
            q2.synchronize()
            queues[i].synchronize()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    for i, (_, b) in enumerate(arrays):
        assert_array_equal(b, np.full(256, i + 1, np.int32), what=f"b of thread {i}")


def test_a_graph_launched_inside_a_capture_is_recorded(device):
    q = device.queue()
    w = device.zeros((8,), np.int32)
    x = device.zeros((8,), np.int32)
    y = device.zeros((8,), np.int32)
    with q.capture() as inner:
        q.fill(w, 3)
        q.copy(x, w)
    with q.capture() as outer:
        inner.launch()
        q.copy(y, x)
    assert [n.kind for n in outer.nodes] == ["fill", "copy", "copy"]
    w.free()
    del inner
    gc.collect()
    others = [device.full((8,), 9, np.int32) for _ in range(4)]  # one would get w's memory, were it free
    outer.launch()
    assert_array_equal(y, 3, what="y after the outer graph")
    for other in others:
        assert_array_equal(other, 9, what="an array allocated after the inner graph was dropped")
