import gc

import numpy as np
from hal_cpu._device import CpuDevice
from hal_cpu._hostpool import MIN_BYTES, PAGE, HostPool, size_class
from hal_cpu._runtime import lib

import hal


def test_numpy_results_are_independent_and_recycled() -> None:
    dev = hal.device("cpu")
    n = MIN_BYTES // 4 * 3
    x = dev.array(np.arange(n, dtype=np.float32))
    a = x.numpy()
    b = x.numpy()
    assert a.ctypes.data != b.ctypes.data  # two live results never share memory
    a[:] = -1
    np.testing.assert_array_equal(b, np.arange(n, dtype=np.float32))
    address = b.ctypes.data
    del b
    gc.collect()
    c = x.numpy()  # the dropped array's pages come back, already faulted in
    assert c.ctypes.data == address
    np.testing.assert_array_equal(c, np.arange(n, dtype=np.float32))
    view = c[10:20]
    del c
    gc.collect()
    d = x.numpy()
    assert d.ctypes.data != address  # a surviving view keeps its memory out of the pool
    np.testing.assert_array_equal(view, np.arange(10, 20, dtype=np.float32))


def test_small_results_and_limit() -> None:
    pool = HostPool(limit=0)
    assert pool.take(100) is None  # numpy serves small arrays
    big = pool.take(MIN_BYTES + 1)
    assert big is not None and big.nbytes == MIN_BYTES + 1
    del big
    gc.collect()
    assert pool._cached == 0  # over the limit: freed, not cached


def test_size_classes_share_blocks_between_near_sizes() -> None:
    sizes = [MIN_BYTES, MIN_BYTES + 1, 3 * MIN_BYTES // 2 + 7, (5 << 20) - 1, 5 << 20, (1 << 30) + 12345]
    for n in sizes:
        c = size_class(n)
        assert n <= c < n + n // 8 + PAGE and c % PAGE == 0
    assert size_class(MIN_BYTES + 1) == size_class(MIN_BYTES + 100_000)  # near sizes: one class
    assert len({size_class(MIN_BYTES + k * 4096) for k in range(1, 257)}) == 8  # (1, 2] MiB: eight classes


def test_cache_is_capped_counted_and_released() -> None:
    limit = 8 << 20
    pool = HostPool(limit=limit)
    rng = np.random.default_rng(0)
    for _ in range(200):  # arrays of ever-changing sizes, dropped at once
        n = int(rng.integers(MIN_BYTES, 3 * MIN_BYTES))
        a = pool.take(n)
        assert a is not None and a.nbytes == n
        a[-1] = 1
        del a
        assert pool.cached_bytes() <= limit
    kept = [pool.take(int(rng.integers(MIN_BYTES, 3 * MIN_BYTES))) for _ in range(6)]
    del kept
    gc.collect()
    cached = pool.cached_bytes()
    assert 0 < cached <= limit
    assert pool.release() == cached and pool.cached_bytes() == 0
    assert pool.take(MIN_BYTES) is not None  # and it goes on serving


def test_device_reports_and_releases_its_host_cache() -> None:
    dev = CpuDevice()
    assert dev.host_pool._limit == min(int(lib.hal_physical_memory()) // 16, 1 << 30)
    arrays = [dev.host_buffer(MIN_BYTES * k) for k in (1, 2, 3)]
    assert dev.host_cache_bytes() == 0
    del arrays
    gc.collect()
    assert dev.host_cache_bytes() == size_class(MIN_BYTES) + size_class(2 * MIN_BYTES) + size_class(3 * MIN_BYTES)
    assert dev.release_host_cache() > 0 and dev.host_cache_bytes() == 0
