"""Allocation, host transfers, DLPack, the memory pool and running out of memory."""

import numpy as np
import pytest

import hal

from ._compare import assert_array_equal

DTYPES = ["float32", "int32", "float64", "int64", "uint32", "int8", "bool"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_roundtrip_every_declared_dtype(device, dtype):
    if dtype not in device.info.dtypes:
        pytest.skip(f"{device.info.name} does not store {dtype}")
    host = (np.arange(37) % 5).astype(dtype)
    assert_array_equal(device.array(host), host, what=f"{dtype} round trip")


def test_shapes_zero_size_and_views(device):
    x = device.array(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert (x.shape, x.dtype, x.nbytes) == ((2, 3, 4), np.float32, 96)
    assert_array_equal(x.reshape(6, 4), np.arange(24).reshape(6, 4), what="reshaped view")
    assert device.empty((0,), np.float32).numpy().shape == (0,)
    assert device.zeros((3, 0), np.float32).nbytes == 0


@pytest.mark.parametrize("dtype,value", [("float64", 2**1030), ("float32", 1e300), ("float32", 2**200)])
def test_a_fill_value_that_overflows_is_refused_and_the_device_keeps_working(device, dtype, value):
    if dtype not in device.info.dtypes:
        pytest.skip(f"{device.info.name} does not store {dtype}")
    with pytest.raises(hal.InvalidArgumentError, match=f"not representable in {dtype}"):
        device.full((3,), value, dtype)
    x = device.array(np.arange(3, dtype=dtype))
    with pytest.raises(hal.InvalidArgumentError, match=f"not representable in {dtype}"):
        device.default_queue.fill(x, value)
    assert_array_equal(x, np.arange(3), what="an array a refused fill left alone")
    assert_array_equal(device.full((3,), -2.5, dtype), np.full(3, -2.5), what="a fill after the refused one")


def test_zeros_and_non_contiguous_source(device):
    assert_array_equal(device.zeros((5, 5), np.float32), 0.0, what="zeros")
    host = np.arange(30, dtype=np.float32).reshape(5, 6)[:, ::2]
    assert_array_equal(device.array(host), host, what="array from a strided source")


def test_dlpack(device):
    x = device.array(np.arange(6, dtype=np.float32))
    if device.info.host_visible:
        assert_array_equal(np.from_dlpack(x), np.arange(6), what="DLPack view")
    else:
        with pytest.raises(hal.UnsupportedError):
            np.from_dlpack(x)


def test_pool_reuses_memory_and_reports(device):
    device.release_cache()
    before = device.memory_stats()
    for _ in range(5):
        device.empty((4096,), np.float32).free()
    stats = device.memory_stats()
    assert stats.in_use == before.in_use
    assert stats.cached >= 4096 * 4
    assert stats.peak >= before.in_use + 4096 * 4
    assert device.release_cache() >= 4096 * 4


def test_filling_the_device_ends_in_out_of_memory(device):
    """Fill the device: allocate eighths of the declared memory until ``OutOfMemoryError``, then halves
    of that, down to 1/1024. The error comes from the backend where it has less than it declares (a
    driver's reserve, other processes), else from hal's pool at the declared capacity; never another
    error. Every block is memory of its own (its first and last elements keep their values), and the
    device keeps working. Only those elements are touched, so this is fast on any size of device."""
    device.release_cache()
    q = device.queue()
    size, smallest = device.info.memory_bytes // 8, device.info.memory_bytes // 1024
    blocks = []
    while size >= max(smallest, 64):
        try:
            x = device.empty((size // 4,), np.float32)
        except hal.OutOfMemoryError:
            size //= 2
            continue
        q.fill(x[:4], float(len(blocks)))
        q.fill(x[-4:], float(len(blocks)))
        blocks.append(x)
    assert blocks, "not even 1/1024 of the declared memory could be allocated"
    for k, x in enumerate(blocks):
        assert_array_equal(x[:4], float(k), what=f"the first elements of block {k} of {len(blocks)} ({x.nbytes} bytes)")
        assert_array_equal(x[-4:], float(k), what=f"the last elements of block {k} of {len(blocks)} ({x.nbytes} bytes)")
    for x in blocks:
        x.free()
    q.close()
    device.release_cache()
    assert_array_equal(device.array(np.arange(3, dtype=np.int32)), [0, 1, 2], what="a round trip afterwards")


@pytest.mark.parametrize("shift", [1, -1, 3, 0])
def test_overlapping_copies_are_memmove(device, shift):
    """``q.copy`` between views that share bytes leaves in dst what src held before the copy (as
    memmove; a driver's own copy may refuse or corrupt it), whichever way the regions overlap."""
    n = 1000
    host = np.arange(n, dtype=np.int32) * 7 + 1
    x = device.array(host)
    q = device.queue()
    dst, src = (x[shift:], x[:n - shift]) if shift >= 0 else (x[:n + shift], x[-shift:])
    q.copy(dst, src)
    expected = host.copy()
    if shift >= 0:
        expected[shift:] = host[:n - shift]
    else:
        expected[:n + shift] = host[-shift:]
    q.synchronize()
    assert_array_equal(x, expected, what=f"x shifted by {shift} onto itself")


def test_overlapping_copies_in_stream_order_on_two_queues(device):
    """Each queue's overlapping copies run in its order, and an event orders them across queues."""
    rows = device.array(np.arange(24, dtype=np.float32).reshape(6, 4))
    expected = np.arange(24, dtype=np.float32).reshape(6, 4)
    q1, q2 = device.queue(), device.queue()
    for _ in range(3):
        q1.copy(rows[1:], rows[:-1])  # rows move down by one
        expected[1:] = expected[:-1].copy()
        q2.wait(q1.record())
        q2.copy(rows[:-2], rows[2:])  # and up by two
        expected[:-2] = expected[2:].copy()
        q1.wait(q2.record())
    q1.synchronize()
    assert_array_equal(rows, expected, what="rows moved by overlapping copies on two queues")
