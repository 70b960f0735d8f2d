import gc

import numpy as np
from hal_cpu._hostpool import MIN_BYTES, HostPool

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
