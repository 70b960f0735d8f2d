"""Host memory of other libraries (``dev.asarray``, ``hal.from_dlpack``): shared without a copy on
a device that can adopt host memory, copied on any other; ``copy=False`` either shares or raises
``hal.ZeroCopyError``, never anything else; the memory model holds for shared arrays on several
queues and threads (docs/memory-model.md)."""

from __future__ import annotations

import gc
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import hal

from ._compare import assert_array_equal

N = 1 << 12
THREADS, ROUNDS = 4, 12


def _shared(device: hal.Device, host: np.ndarray) -> hal.Array | None:
    """``host`` as a shared array of ``device``, or None where the device copies."""
    try:
        x = device.asarray(host, copy=False)
    except hal.ZeroCopyError as exc:
        assert not device.info.host_visible or "adopt" in str(exc), (
            f"a contiguous float32 numpy array could not be shared with a host-visible device: {exc}")
        return None
    assert device.info.host_visible, "a device that cannot address host memory shared it"
    return x


def test_asarray_shares_or_copies(device: hal.Device) -> None:
    host = np.arange(N, dtype=np.float32)
    x = device.asarray(host)
    assert (x.shape, x.dtype) == (host.shape, host.dtype)
    assert_array_equal(x, host, what="asarray of a numpy array")
    copied = device.asarray(host, copy=True)
    device.default_queue.fill(copied, 1.0)
    device.synchronize()
    assert_array_equal(host, np.arange(N), what="the producer after a fill of a copy=True array")
    shared = _shared(device, host)
    if shared is not None:
        device.default_queue.fill(shared[: N // 2], 7.0)
        device.synchronize()
        assert_array_equal(host[: N // 2], 7.0, what="the producer after a fill of the shared array")
        host[-1] = -3.0
        assert float(shared.numpy()[-1]) == -3.0, "a write of the producer is not seen by the shared array"
    assert_array_equal(hal.from_dlpack(host, device=device), host, what="hal.from_dlpack of a numpy array")


def test_shared_arrays_on_several_queues_and_threads(device: hal.Device) -> None:
    """Each thread shares a producer with the device, writes it with commands on its own queue
    (ordered by an event for a second queue), frees it while they are queued and drops the
    producer: the queued commands complete correctly, and the result is in the producer (shared)
    or in the array (copied) after a synchronize."""
    def work(tag: int) -> None:
        q1, q2 = device.queue(), device.queue()
        for r in range(ROUNDS):
            value = float(tag * 100 + r)
            host = np.zeros(N, np.float32)
            x = device.asarray(host)
            out = device.zeros((N,), np.float32)
            q1.fill(x, value)
            q2.wait(q1.record())
            q2.copy(out, x)
            kept = weakref.ref(host)
            shared = x.buffer.host_array() is not None and np.shares_memory(x.buffer.host_array(), host)
            x.free()
            del host
            gc.collect()
            q2.synchronize()
            assert_array_equal(out, value, what=f"thread {tag} round {r}: a copy of a freed shared array")
            if shared:
                device.synchronize()
                gc.collect()
                assert kept() is None, "the producer outlived the freed array and its finished commands"
        q1.close()
        q2.close()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))


def test_host_reads_of_shared_arrays_wait_for_every_queue(device: hal.Device) -> None:
    host = np.zeros(N, np.float32)
    x = device.asarray(host)
    queues = [device.queue() for _ in range(THREADS)]
    for r in range(ROUNDS):
        q = queues[r % THREADS]
        q.fill(x, float(r))
        assert_array_equal(x, float(r), what=f"round {r}: x.numpy() after a fill on another queue")
        assert_array_equal(np.asarray(device.asarray(x, copy=True)), float(r), what="a device copy")
    for q in queues:
        q.close()


def test_copy_false_never_copies(device: hal.Device) -> None:
    host = np.arange(N, dtype=np.float32)
    for source in (host[::2], [1.0, 2.0]):
        with pytest.raises(hal.ZeroCopyError):
            device.asarray(source, np.float32, copy=False)
    with pytest.raises(hal.ZeroCopyError):
        device.asarray(host, np.float64 if "float64" in device.info.dtypes else np.int32, copy=False)
    x = device.array(host)
    assert device.asarray(x, copy=False) is x
    if device.info.host_visible:
        view = np.asarray(x, copy=False)
        assert_array_equal(view, host, what="np.asarray(x, copy=False)")
    else:
        with pytest.raises(ValueError):
            np.asarray(x, copy=False)
    assert_array_equal(device.asarray(host[::2]), host[::2], what="the device after refused imports")
