import numpy as np
import pytest

import hal


def test_array_roundtrip_and_attributes(fake):
    h = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = fake.array(h)
    assert x.shape == (3, 4) and x.dtype == np.float32 and x.nbytes == 48 and x.device is fake
    np.testing.assert_array_equal(x.numpy(), h)


def test_strided_source_is_copied_not_misread(fake):
    h = np.arange(20, dtype=np.int32)[::2]
    np.testing.assert_array_equal(fake.array(h).numpy(), h)
    t = np.arange(6, dtype=np.float64).reshape(2, 3).T
    np.testing.assert_array_equal(fake.array(t).numpy(), t)


def test_empty_zeros_full_and_zero_size(fake):
    assert fake.zeros((4, 4), np.float64).numpy().sum() == 0
    np.testing.assert_array_equal(fake.full((3,), 7, np.int32).numpy(), [7, 7, 7])
    z = fake.empty((0, 5), np.float32)
    assert z.nbytes == 0 and z.numpy().shape == (0, 5)
    assert fake.array(np.zeros(0, np.float32)).numpy().size == 0


@pytest.mark.parametrize("shape", [(-1,), (2, -3), ("a",), (1.5,)])
def test_bad_shapes(fake, shape):
    with pytest.raises(hal.InvalidArgumentError):
        fake.empty(shape)


def test_absurd_size_is_out_of_memory_and_device_survives(fake):
    with pytest.raises(hal.OutOfMemoryError, match="in use"):
        fake.empty((10**12,), np.float32)
    np.testing.assert_array_equal(fake.array([1, 2]).numpy(), [1, 2])


def test_unsupported_dtype(fake):
    with pytest.raises(hal.InvalidArgumentError, match="supported dtypes"):
        fake.array(np.zeros(3, np.complex64))
    with pytest.raises(hal.InvalidArgumentError):
        fake.array(["a", "b"])


def test_free_twice_and_use_after_free(fake):
    x = fake.array(np.ones(4, np.float32))
    x.free()
    with pytest.raises(hal.InvalidHandleError, match="already freed"):
        x.free()
    with pytest.raises(hal.InvalidHandleError):
        x.numpy()
    with pytest.raises(hal.InvalidHandleError):
        fake.default_queue.fill(x, 0)
    assert "freed" in repr(x)
    assert fake.array([3.0]).numpy()[0] == 3.0


def test_context_manager_frees(fake):
    with fake.empty((8,)) as x:
        pass
    assert x.freed


def test_reshape_and_view_share_memory(fake):
    x = fake.array(np.arange(8, dtype=np.int32))
    y = x.reshape(2, -1)
    assert y.shape == (2, 4)
    np.testing.assert_array_equal(y.numpy(), np.arange(8).reshape(2, 4))
    b = x.view(np.uint32)
    assert b.shape == (8,)
    with pytest.raises(hal.InvalidArgumentError):
        x.reshape(3, 3)
    raw = fake.alloc(16)
    assert raw.dtype == np.uint8 and raw.view(np.float32).shape == (4,)
    x.free()
    with pytest.raises(hal.InvalidHandleError):
        y.numpy()


def test_dlpack_zero_copy_on_host_visible(fake):
    x = fake.array(np.arange(4, dtype=np.float32))
    v = np.from_dlpack(x)
    np.testing.assert_array_equal(v, [0, 1, 2, 3])
    fake.default_queue.fill(x, 5.0)
    fake.synchronize()
    assert v[0] == 5.0  # same memory


def test_dlpack_refused_when_not_host_visible(fake_remote):
    x = fake_remote.array(np.arange(4, dtype=np.float32))
    with pytest.raises(hal.UnsupportedError, match="x.numpy"):
        np.from_dlpack(x)
    np.testing.assert_array_equal(x.numpy(), [0, 1, 2, 3])


def test_memory_pool_reuses_and_reports(fake):
    fake.release_cache()
    base = fake.memory_stats()
    x = fake.empty((1000,), np.float32)
    assert fake.memory_stats().in_use == base.in_use + 4096
    buffer = x.buffer
    x.free()
    assert fake.memory_stats().cached >= 4096
    y = fake.empty((1024,), np.float32)  # same rounded size: the cached block comes back
    assert y.buffer is buffer
    y.free()
    assert fake.release_cache() >= 4096
    assert fake.memory_stats().cached == 0
    assert fake.memory_stats().peak >= base.in_use + 4096


def test_pool_cache_counts_against_capacity(fake):
    fake.release_cache()
    big = fake.empty((600 * 1024,), np.uint8)
    big.free()  # cached, 600 KiB of 1 MiB
    other = fake.empty((700 * 1024,), np.uint8)  # fits only once the cache is dropped
    assert fake.memory_stats().cached == 0
    other.free()


def test_dropped_array_returns_to_pool(fake):
    fake.release_cache()
    in_use = fake.memory_stats().in_use
    x = fake.empty((256,), np.float32)
    del x
    assert fake.memory_stats().in_use == in_use
