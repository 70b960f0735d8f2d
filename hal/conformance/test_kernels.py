"""Every kernel-language feature, on the device under test, against numpy.

Each test needs Feature.KERNELS plus what it names; expected values come from
numpy (floats to the stated tolerance, integers exactly).
"""

from __future__ import annotations

import numpy as np
import pytest

import hal
from hal.kernel.samples import saxpy

from ._compare import assert_allclose, assert_array_equal

pytestmark = pytest.mark.feature("kernels")
F32_TOL = dict(rtol=2e-6, atol=1e-6)  # one rounding of the libm functions
N = 1000


def run1d(device, kernel, n, *args, block=128):
    kernel[(n + block - 1) // block, block, device.default_queue](*args)
    device.default_queue.synchronize()


def test_saxpy(device):
    x = np.random.default_rng(0).standard_normal(N).astype(np.float32)
    y = np.ones(N, np.float32)
    dx, dy = device.array(x), device.array(y)
    run1d(device, saxpy, N, 2.5, dx, dy, N)
    assert_array_equal(dy, np.float32(2.5) * x + y, what="2.5 * x + y")


@hal.kernel
def int_ops(a: hal.Ptr[hal.i32], b: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x = a[i]
        y = b[i]
        out[i * 8 + 0] = x // y
        out[i * 8 + 1] = x % y
        out[i * 8 + 2] = x * y + 2147483647
        out[i * 8 + 3] = (x << (y & 7)) ^ (x >> 2)
        out[i * 8 + 4] = (x & y) | ~x
        out[i * 8 + 5] = hal.min(x, y) - hal.max(x, y) + hal.abs(x)
        out[i * 8 + 6] = -x if x < y else x * 3
        out[i * 8 + 7] = hal.i32(hal.f32(x) * 0.5)


def test_integer_semantics(device):
    rng = np.random.default_rng(1)
    a = rng.integers(-1000, 1000, N).astype(np.int32)
    b = rng.integers(-50, 50, N).astype(np.int32)
    b[b == 0] = 7
    out = device.zeros((N * 8,), np.int32)
    run1d(device, int_ops, N, device.array(a), device.array(b), out, N)
    got = out.numpy().reshape(N, 8)
    with np.errstate(over="ignore"):
        assert_array_equal(got[:, 0], a // b, what="x // y")
        assert_array_equal(got[:, 1], a % b, what="x % y")
        assert_array_equal(got[:, 2], a * b + np.int32(2147483647), what="x * y + 2147483647 (wraps)")
        assert_array_equal(got[:, 3], (a << (b & 7)) ^ (a >> 2), what="shifts and xor")
    assert_array_equal(got[:, 4], (a & b) | ~a, what="and, or, not")
    assert_array_equal(got[:, 5], np.minimum(a, b) - np.maximum(a, b) + np.abs(a), what="min, max, abs")
    assert_array_equal(got[:, 6], np.where(a < b, -a, a * 3), what="select")
    assert_array_equal(got[:, 7], (a.astype(np.float32) * np.float32(0.5)).astype(np.int32), what="casts")


@hal.kernel
def unsigned_ops(a: hal.Ptr[hal.u32], out: hal.Ptr[hal.u32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        out[i] = (a[i] * 2654435761) >> 7


def test_unsigned_wraps(device):
    a = np.arange(N, dtype=np.uint32) * np.uint32(977)
    out = device.zeros((N,), np.uint32)
    run1d(device, unsigned_ops, N, device.array(a), out, N)
    with np.errstate(over="ignore"):
        assert_array_equal(out, (a * np.uint32(2654435761)) >> np.uint32(7), what="u32 multiply and shift")


@hal.kernel
def math_f32(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        v = x[i]
        out[i * 8 + 0] = hal.sqrt(v)
        out[i * 8 + 1] = hal.exp(-v)
        out[i * 8 + 2] = hal.log(v + 1.0)
        out[i * 8 + 3] = hal.sin(v) + hal.cos(v)
        out[i * 8 + 4] = hal.tanh(v - 2.0)
        out[i * 8 + 5] = hal.floor(v) + hal.ceil(-v)
        out[i * 8 + 6] = hal.fma(v, v, 1.0)
        out[i * 8 + 7] = hal.pow(v, 1.5) / (v + 1.0)


def test_math_functions_f32(device):
    x = np.linspace(0.01, 4, N, dtype=np.float32)
    out = device.zeros((N * 8,), np.float32)
    run1d(device, math_f32, N, device.array(x), out, N)
    got = out.numpy().reshape(N, 8)
    one = np.float32(1)
    expected = [np.sqrt(x), np.exp(-x), np.log(x + one), np.sin(x) + np.cos(x), np.tanh(x - np.float32(2)),
                np.floor(x) + np.ceil(-x), (x.astype(np.float64) * x + 1).astype(np.float32),
                np.power(x, np.float32(1.5)) / (x + one)]
    for k, want in enumerate(expected):
        assert_allclose(got[:, k], want, **F32_TOL, what=f"column {k}")


@hal.kernel
def f64_kernel(x: hal.Ptr[hal.f64], out: hal.Ptr[hal.f64], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        out[i] = hal.sqrt(x[i]) * 1e-300 * 1e300 + x[i] % 0.75 + x[i] // 0.3


@pytest.mark.feature("f64")
def test_f64(device):
    x = np.linspace(-3, 3, N)
    out = device.zeros((N,), np.float64)
    run1d(device, f64_kernel, N, device.array(np.abs(x)), out, N)
    ax = np.abs(x)
    assert_allclose(out, np.sqrt(ax) * 1e-300 * 1e300 + ax % 0.75 + ax // 0.3, rtol=1e-15, atol=0.0, what="f64")


@hal.kernel
def i64_kernel(x: hal.Ptr[hal.i64], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] * 3000000000 + hal.i64(i)


@pytest.mark.feature("i64")
def test_i64(device):
    x = np.arange(N, dtype=np.int64)
    dx = device.array(x)
    run1d(device, i64_kernel, N, dx, N)
    assert_array_equal(dx, x * 3000000000 + np.arange(N), what="i64")


@hal.kernel
def control_flow(out: hal.Ptr[hal.i32], n: hal.i32):
    i = hal.global_id(0)
    if i >= n:
        return
    acc = 0
    for k in range(i % 7, -3, -2):
        if k == 1:
            continue
        acc += k
    j = 0
    while True:
        j += 1
        if j * j > i:
            break
    if i % 3 == 0:
        acc += 100
    elif i % 3 == 1:
        acc -= 100
    else:
        acc = acc * 2
    out[i] = acc * 1000 + j


def _control_flow_reference(i: int) -> int:
    acc = sum(k for k in range(i % 7, -3, -2) if k != 1)
    j = 0
    while True:
        j += 1
        if j * j > i:
            break
    acc = acc + 100 if i % 3 == 0 else acc - 100 if i % 3 == 1 else acc * 2
    return acc * 1000 + j


def test_control_flow(device):
    out = device.zeros((N,), np.int32)
    run1d(device, control_flow, N, out, N)
    assert_array_equal(out, [_control_flow_reference(i) for i in range(N)], what="control flow")


@hal.kernel
def lazy_eval(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    # Both guards would fault if the unchosen side were evaluated for i >= n.
    v = x[i] if i < n else -1.0
    if i < n and x[i] > 0.5:
        v = v * 2.0
    if i < n + 64:
        out[i] = v


def test_select_and_short_circuit_are_lazy(device):
    x = np.linspace(0, 1, N, dtype=np.float32)
    out = device.zeros((N + 64,), np.float32)
    run1d(device, lazy_eval, N + 64, device.array(x), out, N, block=64)
    want = np.concatenate([np.where(x > 0.5, x * 2, x), -np.ones(64, np.float32)])
    assert_array_equal(out, want, what="lazy select and and")


@hal.kernel
def index_3d(out: hal.Ptr[hal.i32], w: hal.i32, h: hal.i32):
    x = hal.global_id(0)
    y = hal.global_id(1)
    z = hal.global_id(2)
    flat = (z * h + y) * w + x
    out[flat * 4 + 0] = hal.local_id(0) + 10 * hal.local_id(1) + 100 * hal.local_id(2)
    out[flat * 4 + 1] = hal.group_id(0) + 10 * hal.group_id(1) + 100 * hal.group_id(2)
    out[flat * 4 + 2] = hal.local_size(0) * hal.local_size(1) * hal.local_size(2)
    out[flat * 4 + 3] = hal.num_groups(0) * hal.num_groups(1) * hal.num_groups(2) + hal.global_size(0)


@pytest.mark.feature("multi_dim")
def test_thread_indices_in_3d(device):
    grid, block = (3, 2, 2), (4, 2, 2)
    w, h, d = (g * b for g, b in zip(grid, block))
    out = device.zeros((w * h * d * 4,), np.int32)
    index_3d[grid, block, device.default_queue](out, w, h)
    got = out.numpy().reshape(d, h, w, 4)
    z, y, x = np.meshgrid(np.arange(d), np.arange(h), np.arange(w), indexing="ij")
    lx, ly, lz = x % 4, y % 2, z % 2
    assert_array_equal(got[..., 0], lx + 10 * ly + 100 * lz, what="local_id")
    assert_array_equal(got[..., 1], x // 4 + 10 * (y // 2) + 100 * (z // 2), what="group_id")
    assert_array_equal(got[..., 2], 16, what="local_size product")
    assert_array_equal(got[..., 3], 12 + w, what="num_groups product + global_size(0)")


BLOCK = 128


@hal.kernel
def block_sum(x: hal.Ptr[hal.f32], partial: hal.Ptr[hal.f32], n: hal.i32):
    sh = hal.shared(hal.f32, BLOCK)
    lid = hal.local_id(0)
    i = hal.global_id(0)
    sh[lid] = x[i] if i < n else 0.0
    hal.barrier()
    s = BLOCK // 2
    while s > 0:
        if lid < s:
            sh[lid] += sh[lid + s]
        hal.barrier()
        s //= 2
    if lid == 0:
        partial[hal.group_id(0)] = sh[0]


@pytest.mark.feature("shared_memory")
@pytest.mark.feature("barriers")
def test_shared_memory_tree_reduction(device):
    n = 5000
    x = np.arange(n, dtype=np.float32) % 17
    groups = (n + BLOCK - 1) // BLOCK
    partial = device.zeros((groups,), np.float32)
    block_sum[groups, BLOCK, device.default_queue](device.array(x), partial, n)
    want = np.pad(x, (0, groups * BLOCK - n)).reshape(groups, BLOCK).sum(axis=1)
    assert_array_equal(partial, want, what="per-group sums")


@hal.kernel
def reverse_in_block(x: hal.Ptr[hal.i32]):
    sh = hal.shared(hal.i32, 64)
    lid = hal.local_id(0)
    base = hal.group_id(0) * 64
    sh[lid] = x[base + lid]
    hal.barrier()
    x[base + lid] = sh[63 - lid]


@pytest.mark.feature("shared_memory")
@pytest.mark.feature("barriers")
def test_barrier_orders_shared_memory(device):
    x = device.array(np.arange(256, dtype=np.int32))
    reverse_in_block[4, 64, device.default_queue](x)
    assert_array_equal(x, np.arange(256).reshape(4, 64)[:, ::-1].ravel(), what="blocks reversed through shared memory")


@hal.kernel
def local_array(out: hal.Ptr[hal.i32], n: hal.i32):
    i = hal.global_id(0)
    buf = hal.local(hal.i32, 8)
    for k in range(8):
        buf[k] = i * k
    acc = 0
    for k in range(7, -1, -1):
        acc = acc * 2 + buf[k] % 5
    if i < n:
        out[i] = acc


@pytest.mark.feature("local_arrays")
def test_local_arrays(device):
    out = device.zeros((N,), np.int32)
    run1d(device, local_array, N, out, N)
    i = np.arange(N)[:, None]
    buf = (i * np.arange(8)) % 5
    want = np.zeros(N, np.int64)
    for k in range(7, -1, -1):
        want = want * 2 + buf[:, k]
    assert_array_equal(out, want, what="per-thread arrays")


@hal.kernel
def histogram(x: hal.Ptr[hal.i32], bins: hal.Ptr[hal.i32], lo: hal.Ptr[hal.i32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        hal.atomic_add(bins, x[i] % 8, 1)
        hal.atomic_min(lo, 0, x[i])
        hal.atomic_max(lo, 1, x[i])


@pytest.mark.feature("atomics")
def test_atomics_with_collisions(device):
    x = (np.arange(N, dtype=np.int32) * 7919) % 1009
    bins = device.zeros((8,), np.int32)
    lo = device.array(np.array([2**31 - 1, -(2**31)], np.int32))
    run1d(device, histogram, N, device.array(x), bins, lo, N)
    assert_array_equal(bins, np.bincount(x % 8, minlength=8), what="histogram")
    assert_array_equal(lo, [x.min(), x.max()], what="atomic min and max")


@hal.kernel
def bit_atomics(x: hal.Ptr[hal.u32], wide: hal.Ptr[hal.i64], out: hal.Ptr[hal.u32], w: hal.Ptr[hal.i64], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        hal.atomic_and(out, 0, x[i])
        hal.atomic_or(out, 1, x[i])
        hal.atomic_xor(out, 2, x[i], order="acq_rel")
        hal.atomic_and(out, 3 + i % 4, x[i])
        hal.atomic_or(w, 0, wide[i])
        hal.atomic_xor(w, 1, wide[i])
        hal.atomic_and(w, 2, wide[i])


@pytest.mark.feature("atomics")
@pytest.mark.feature("i64")
def test_bitwise_atomics_with_collisions(device):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2**32, N, dtype=np.uint64).astype(np.uint32) | np.uint32(0x80000001)
    wide = rng.integers(-(2**62), 2**62, N, dtype=np.int64)
    out = device.array(np.array([0xffffffff, 0, 0] + [0xffffffff] * 4, np.uint32))
    w = device.array(np.array([0, 0, -1], np.int64))
    run1d(device, bit_atomics, N, device.array(x), device.array(wide), out, w, N)
    parts = [np.bitwise_and.reduce(x[k::4]) for k in range(4)]
    want = [np.bitwise_and.reduce(x), np.bitwise_or.reduce(x), np.bitwise_xor.reduce(x), *parts]
    assert_array_equal(out, np.array(want, np.uint32), what="atomic and / or / xor on u32")
    assert_array_equal(w, np.array([np.bitwise_or.reduce(wide), np.bitwise_xor.reduce(wide),
                                    np.bitwise_and.reduce(wide)], np.int64), what="atomic or / xor / and on i64")


@hal.kernel
def bit_counts(x: hal.Ptr[hal.i32], y: hal.Ptr[hal.u64], out: hal.Ptr[hal.i32], wide: hal.Ptr[hal.u64]):
    i = hal.global_id(0)
    out[3 * i] = hal.popcount(x[i])
    out[3 * i + 1] = hal.clz(x[i])
    out[3 * i + 2] = hal.ctz(x[i])
    wide[3 * i] = hal.popcount(y[i])
    wide[3 * i + 1] = hal.clz(y[i])
    wide[3 * i + 2] = hal.ctz(y[i])


def _bit_counts(value: int, width: int) -> list[int]:
    u = value % (1 << width)
    return [bin(u).count("1"), width - u.bit_length(), width if u == 0 else (u & -u).bit_length() - 1]


@pytest.mark.feature("i64")
def test_popcount_clz_ctz_of_every_width(device):
    rng = np.random.default_rng(11)
    x = rng.integers(-(2**31), 2**31, 64).astype(np.int32)
    x[:4] = [0, -1, 1, -(2**31)]
    y = rng.integers(0, 2**63, 64, dtype=np.uint64) >> rng.integers(0, 64, 64).astype(np.uint64)
    y[:3] = [0, 2**64 - 1, 1]
    out, wide = device.zeros((192,), np.int32), device.zeros((192,), np.uint64)
    run1d(device, bit_counts, 64, device.array(x), device.array(y), out, wide, block=64)
    assert_array_equal(out, np.array([_bit_counts(int(v), 32) for v in x]).reshape(-1), what="i32 bit counts")
    assert_array_equal(wide, np.array([_bit_counts(int(v), 64) for v in y], np.uint64).reshape(-1),
                       what="u64 bit counts")


@hal.kernel
def ticket(counter: hal.Ptr[hal.i32], order: hal.Ptr[hal.i32], flag: hal.Ptr[hal.i32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        order[i] = hal.atomic_add(counter, 0, 1)
        hal.atomic_cas(flag, 0, 0, i + 1)
        hal.atomic_exchange(flag, 1, 5)


@pytest.mark.feature("atomics")
def test_atomic_old_values_are_a_permutation(device):
    counter, order = device.zeros((1,), np.int32), device.zeros((N,), np.int32)
    flag = device.zeros((2,), np.int32)
    run1d(device, ticket, N, counter, order, flag, N)
    assert counter.numpy()[0] == N
    assert_array_equal(np.sort(order.numpy()), np.arange(N), what="sorted tickets")
    f = flag.numpy()
    assert 1 <= f[0] <= N and f[1] == 5


@hal.func
def clamp_sq(v: hal.f32, hi: hal.f32) -> hal.f32:
    if v > hi:
        return hi * hi
    return v * v


@hal.kernel
def uses_func(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x[i] = clamp_sq(x[i], 2.0) + clamp_sq(1.0, 0.5)


def test_device_functions_are_inlined(device):
    x = np.linspace(0, 4, N, dtype=np.float32)
    dx = device.array(x)
    run1d(device, uses_func, N, dx, N)
    assert_array_equal(dx, np.where(x > 2, np.float32(4), x * x) + np.float32(0.25), what="inlined functions")


@hal.kernel
def scale_shift(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], a: hal.f32, b: hal.i32, n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        out[i] = x[i] * a + hal.f32(b)


def test_relaunch_with_new_arguments(device):
    """One compiled kernel, launched again with other scalars and arrays: a backend must bind every
    argument of every launch (a cached argument block from the first launch is a classic bug)."""
    x = np.arange(N, dtype=np.float32)
    dx = device.array(x)
    outs = [device.zeros((N,), np.float32) for _ in range(3)]
    for k, out in enumerate(outs):
        run1d(device, scale_shift, N, dx, out, 0.5 + k, 10 * k - 7, N - k)
    for k, out in enumerate(outs):
        want = x * np.float32(0.5 + k) + np.float32(10 * k - 7)
        want[N - k:] = 0.0
        assert_array_equal(out, want, what=f"launch {k}: x * {0.5 + k} + {10 * k - 7} on {N - k} elements")


@hal.kernel
def out_of_bounds(x: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    x[i + n] = 1.0


@pytest.mark.feature("bounds_checks")
def test_out_of_bounds_is_a_device_fault(device):
    x = device.zeros((64,), np.float32)
    q = device.queue()
    out_of_bounds[1, 64, q](x, 1)
    with pytest.raises(hal.DeviceFault, match="out_of_bounds"):
        q.synchronize()
    saxpy[1, 64, q](1.0, x, x, 64)  # the queue and device keep working
    q.synchronize()


def test_compile_errors_point_at_the_source(device):
    @hal.kernel
    def bad(x: hal.Ptr[hal.f32]):
        x[0] = [1.0][0]

    with pytest.raises(hal.CompileError) as info:
        device.compile(bad)
    assert info.value.filename == __file__ and info.value.line
    run1d(device, saxpy, 8, 1.0, device.zeros((8,), np.float32), device.zeros((8,), np.float32), 8)
