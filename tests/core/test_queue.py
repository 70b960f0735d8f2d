import threading

import numpy as np
import pytest

import hal


def test_copy_fill_and_order(fake):
    q = fake.queue()
    a = fake.array(np.arange(16, dtype=np.float32))
    b = fake.empty((16,), np.float32)
    q.fill(b, 1.5)
    q.copy(b, a)
    q.fill(a, 0)
    q.synchronize()
    np.testing.assert_array_equal(b.numpy(), np.arange(16))
    assert a.numpy().sum() == 0


def test_host_copies_both_ways(fake_remote):
    q = fake_remote.queue()
    x = fake_remote.empty((3, 2), np.int64)
    h = np.arange(6, dtype=np.int64).reshape(3, 2)
    q.copy(x, h)
    out = np.zeros_like(h)
    q.copy(out, x)
    np.testing.assert_array_equal(out, h)


def test_copy_mismatch_errors_and_recovery(fake):
    q = fake.queue()
    a, b = fake.empty((4,), np.float32), fake.empty((5,), np.float32)
    with pytest.raises(hal.InvalidArgumentError, match="same shape and dtype"):
        q.copy(a, b)
    with pytest.raises(hal.InvalidArgumentError):
        q.copy(a, fake.empty((4,), np.int32))
    with pytest.raises(hal.InvalidArgumentError):
        q.copy(np.zeros(4), np.zeros(4))
    strided = np.zeros(8, np.float32)[::2]
    q.copy(a, strided)  # a strided host source is copied, never misread
    with pytest.raises(hal.InvalidArgumentError, match="C-contiguous"):
        q.copy(np.zeros(8, np.float32)[::2], a)
    q.fill(a, 2)
    c = fake.empty((4,), np.float32)
    q.copy(c, a)
    q.synchronize()


def test_copy_across_devices_goes_through_host(fake, fake_remote):
    a = fake.array(np.arange(5, dtype=np.int32))
    b = fake_remote.empty((5,), np.int32)
    fake_remote.default_queue.copy(b, a)
    fake_remote.synchronize()
    np.testing.assert_array_equal(b.numpy(), np.arange(5))
    c = fake.empty((5,), np.int32)
    fake_remote.default_queue.copy(c, b)
    np.testing.assert_array_equal(c.numpy(), np.arange(5))


@pytest.mark.parametrize("dtype,value", [(np.int32, 1.5), (np.uint32, -1), (np.int32, 2**40), (np.bool_, 2),
                                         (np.float32, "x")])
def test_fill_rejects_unrepresentable(fake, dtype, value):
    with pytest.raises(hal.InvalidArgumentError, match="representable"):
        fake.default_queue.fill(fake.empty((2,), dtype), value)


def test_queue_of_other_device_is_refused(fake, fake_remote):
    with pytest.raises(hal.InvalidArgumentError, match="queue of"):
        fake.default_queue.fill(fake_remote.empty((2,)), 0)


def test_events_query_wait_and_elapsed(fake):
    q1, q2 = fake.queue(), fake.queue()
    a = fake.empty((1000,), np.float32)
    e0 = q1.record()
    q1.fill(a, 1.0)
    e1 = q1.record()
    q2.wait(e1)
    b = fake.empty((1000,), np.float32)
    q2.copy(b, a)
    q2.synchronize()
    assert e1.query()
    assert e1.elapsed(e0) == pytest.approx(4000 / 1e9)  # the fake's model: 1 GB/s
    np.testing.assert_array_equal(b.numpy(), np.ones(1000))
    with pytest.raises(hal.InvalidArgumentError):
        e1.elapsed("not an event")  # type: ignore[arg-type]


def test_closed_queue(fake):
    q = fake.queue()
    q.close()
    with pytest.raises(hal.InvalidHandleError):
        q.fill(fake.empty((1,)), 0)


def test_threads_each_with_their_own_queue(fake):
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        q = fake.queue()
        x = fake.empty((64,), np.int32)
        for k in range(20):
            q.fill(x, i * 100 + k)
        out = np.empty(64, np.int32)
        q.copy(out, x)
        results[i] = out

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert (results[i] == i * 100 + 19).all()


def test_profile_records_and_trace(fake, tmp_path):
    x = fake.empty((256,), np.float32)
    with hal.profile() as prof:
        fake.default_queue.fill(x, 1.0)
        fake.default_queue.copy(fake.empty((256,), np.float32), x)
    kinds = [r.kind for r in prof.records]
    assert kinds == ["fill", "copy_d2d"]
    assert all(r.device == fake.spec for r in prof.records)
    assert prof.records[0].device_s == pytest.approx(1024 / 1e9)
    path = tmp_path / "trace.json"
    prof.save(path)
    import json

    events = json.loads(path.read_text())["traceEvents"]
    assert {e["name"] for e in events if e["ph"] == "X"} == {"fill", "copy"}
    assert "fill" in prof.summary()
