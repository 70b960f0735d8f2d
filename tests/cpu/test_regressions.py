"""Bugs the differential conformance tests found on the CPU device, kept as plain tests."""

import numpy as np

import hal


@hal.kernel
def small_shared(a: hal.Ptr[hal.i32], b: hal.Ptr[hal.u32], out: hal.Ptr[hal.u32]):
    lid = hal.local_id(0)
    sh = hal.shared(hal.u32, 5)
    x = b[lid * 4]
    sh[lid] = x
    hal.barrier()
    sh[lid] = hal.u32(hal.i32(-1) < a[hal.i32(x < b[lid * 4]) % 20])
    hal.barrier()
    out[lid] = sh[lid]


def test_shared_array_shorter_than_a_vector() -> None:
    """GCC 12's AVX-512 vectoriser gave lanes 1-3 wrong results for a 5-element shared array
    when the buffers around held other data (here: the pool handing back the previous
    iteration's arrays). The emitter now pads work-group arrays to whole 64-byte lines."""
    dev = hal.device("cpu")
    args = [np.zeros(20, np.int32), np.full(20, 32, np.uint32), np.zeros(5, np.uint32)]
    for _ in range(6):
        got = [dev.array(a) for a in args]
        small_shared[1, 5, dev.default_queue](*got)
        for g in got[:2]:
            g.numpy()
        np.testing.assert_array_equal(got[2].numpy(), np.ones(5, np.uint32))
