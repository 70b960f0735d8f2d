"""Allocation, host transfers, DLPack and the memory pool."""

import numpy as np
import pytest

import hal

DTYPES = ["float32", "int32", "float64", "int64", "uint32", "int8", "bool"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_roundtrip_every_declared_dtype(device, dtype):
    if dtype not in device.info.dtypes:
        pytest.skip(f"{device.info.name} does not store {dtype}")
    host = (np.arange(37) % 5).astype(dtype)
    np.testing.assert_array_equal(device.array(host).numpy(), host)


def test_shapes_zero_size_and_views(device):
    x = device.array(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    assert (x.shape, x.dtype, x.nbytes) == ((2, 3, 4), np.float32, 96)
    np.testing.assert_array_equal(x.reshape(6, 4).numpy(), np.arange(24).reshape(6, 4))
    assert device.empty((0,), np.float32).numpy().shape == (0,)
    assert device.zeros((3, 0), np.float32).nbytes == 0


def test_zeros_and_non_contiguous_source(device):
    assert not device.zeros((5, 5), np.float32).numpy().any()
    host = np.arange(30, dtype=np.float32).reshape(5, 6)[:, ::2]
    np.testing.assert_array_equal(device.array(host).numpy(), host)


def test_free_and_use_after_free(device):
    x = device.array(np.ones(8, np.float32))
    x.free()
    with pytest.raises(hal.InvalidHandleError):
        x.numpy()
    with pytest.raises(hal.InvalidHandleError):
        x.free()
    assert device.array(np.ones(2, np.float32)).numpy().sum() == 2


def test_dlpack(device):
    x = device.array(np.arange(6, dtype=np.float32))
    if device.info.host_visible:
        np.testing.assert_array_equal(np.from_dlpack(x), np.arange(6))
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


def test_out_of_memory_is_an_error_and_the_device_survives(device):
    with pytest.raises(hal.OutOfMemoryError):
        device.empty((device.info.memory_bytes // 4 + 1024,), np.float32)
    np.testing.assert_array_equal(device.array(np.arange(3, dtype=np.int32)).numpy(), [0, 1, 2])


@pytest.mark.parametrize("shape", [(-1,), (3, -2)])
def test_negative_shapes_are_refused(device, shape):
    with pytest.raises(hal.InvalidArgumentError):
        device.empty(shape, np.float32)
