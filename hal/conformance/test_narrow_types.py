"""Narrow and extra integer types: f16, bf16 (feature ``f16``/``bf16``), i8 u8 i16 u16 (``small_ints``), u64 (``i64``).

Conversions to f16/bf16 round the exact source value once, to nearest even (f64 and integers never
through f32), bit-exact against a reference computed from the values alone (:mod:`._halfref`, not a
library's cast), over every 16-bit pattern, every rounding boundary and values where rounding twice
would differ; a NaN only has to stay a NaN of the same sign. Arithmetic on narrow types happens in the promoted type (f32/i32)
and narrows back where it is stored (rounding, or wrapping), as C, OpenCL and CUDA do.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest

import hal

from ._compare import assert_array_equal
from ._halfref import nearest_bits

pytestmark = pytest.mark.feature("kernels")
BF16 = np.dtype(ml_dtypes.bfloat16)
BLOCK = 128


def run(device: Any, kernel: Any, n: int, *args: Any) -> None:
    kernel[(n + BLOCK - 1) // BLOCK, BLOCK, device.default_queue](*args)
    device.default_queue.synchronize()


def assert_same_bits(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Equal bit patterns; where the reference is NaN, a NaN of the same sign."""
    bits = np.dtype(f"u{want.dtype.itemsize}")
    with np.errstate(invalid="ignore"):  # signalling NaNs widen with a warning
        got64, want64 = got.astype(np.float64), want.astype(np.float64)
    nan = np.isnan(want64)
    same = got.view(bits) == want.view(bits)
    both_nan = nan & np.isnan(got64) & (np.signbit(got64) == np.signbit(want64))
    bad = np.flatnonzero(~(same | both_nan))
    assert not bad.size, (f"{what}: {bad.size} of {want.size} differ; first: " + ", ".join(
        f"[{k}] got 0x{int(got.view(bits)[k]):x} want 0x{int(want.view(bits)[k]):x}" for k in bad[:5]))


def nearest(x: np.ndarray, dtype: Any) -> np.ndarray:
    """The reference conversion of ``x`` to f16/bf16 ``dtype``."""
    return nearest_bits(x, "bf16" if np.dtype(dtype) == BF16 else "f16").view(dtype)


def double_rounding_cases(x64: np.ndarray) -> np.ndarray:
    """f64 values off each of ``x64`` (which holds the ties) by less than an f32 ulp: a tie so moved
    becomes the tie again through f32 and rounds to even; rounded once, it goes the way it moved."""
    finite = x64[np.isfinite(x64)]
    return np.concatenate([finite + finite * 2.0**-30, finite - finite * 2.0**-40])


def all16(dtype: np.dtype[Any]) -> np.ndarray:
    """Every 16-bit pattern as ``dtype``."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(dtype)


def f32_inputs(narrow: np.dtype[Any]) -> np.ndarray:
    """f32 values around every rounding boundary of ``narrow`` (ties, one f32 ulp either side), specials,
    and random bit patterns."""
    values = all16(narrow).astype(np.float32)
    values = values[np.isfinite(values)]
    up = np.nextafter(values, np.float32(np.inf))
    ties = np.concatenate([(values[:-1].astype(np.float64) + values[1:]) / 2]).astype(np.float32)
    with np.errstate(all="ignore"):
        near = [np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))]
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 3.4028235e38, 65504.0,
                         65519.99, 65520.0, 1e-8, 5.960464477539063e-08, 2.980232238769531e-08], np.float32)
    random = np.random.default_rng(17).integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32)
    return np.concatenate([values, up, ties, *near, specials, random.view(np.float32)]).astype(np.float32)


# ------------------------------------------------------------------ f16
@hal.kernel
def f16_to_f32(x: hal.Ptr[hal.f16], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = x[i]


@hal.kernel
def f32_to_f16(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f16], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = x[i]


@hal.kernel
def f64_to_f16(x: hal.Ptr[hal.f64], y: hal.Ptr[hal.f16], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = hal.f16(x[i])


@hal.kernel
def f16_math(a: hal.Ptr[hal.f16], b: hal.Ptr[hal.f16], s: hal.f16, out: hal.Ptr[hal.f16], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        acc = a[i]
        acc += b[i] * s
        out[i] = hal.f16(hal.sqrt(hal.abs(acc))) if acc < 0.0 else acc


@pytest.mark.feature("f16")
def test_f16_widens_exactly(device):
    x = all16(np.dtype(np.float16))
    y = device.empty((x.size,), np.float32)
    run(device, f16_to_f32, x.size, device.array(x), y, x.size)
    assert_same_bits(y.numpy(), x.astype(np.float32), "every f16 -> f32")


@pytest.mark.feature("f16")
def test_f32_to_f16_rounds_to_nearest_even(device):
    x = f32_inputs(np.dtype(np.float16))
    y = device.empty((x.size,), np.float16)
    run(device, f32_to_f16, x.size, device.array(x), y, x.size)
    assert_same_bits(y.numpy(), nearest(x, np.float16), "f32 -> f16")


@pytest.mark.feature("f16")
@pytest.mark.feature("f64")
def test_f64_to_f16_rounds_once(device):
    with np.errstate(invalid="ignore"):
        x64 = f32_inputs(np.dtype(np.float16)).astype(np.float64)
    rng = np.random.default_rng(5)
    x = np.concatenate([x64, double_rounding_cases(x64),  # sticky bits below f32 precision
                        rng.integers(0, 1 << 63, 100_000, dtype=np.uint64).view(np.float64)])
    y = device.empty((x.size,), np.float16)
    run(device, f64_to_f16, x.size, device.array(x), y, x.size)
    assert_same_bits(y.numpy(), nearest(x, np.float16), "f64 -> f16")


@pytest.mark.feature("f16")
def test_f16_computes_in_f32(device):
    rng = np.random.default_rng(3)
    n = 5000
    a = rng.standard_normal(n).astype(np.float16) * np.float16(300)
    b = rng.standard_normal(n).astype(np.float16)
    out = device.empty((n,), np.float16)
    run(device, f16_math, n, device.array(a), device.array(b), 0.1, out, n)
    s = nearest(np.array([0.1]), np.float16)[0].astype(np.float32)
    with np.errstate(all="ignore"):
        acc = nearest(a.astype(np.float32) + b.astype(np.float32) * s, np.float16)
        want = np.where(acc < 0, nearest(np.sqrt(np.abs(acc.astype(np.float32))), np.float16), acc)
    assert_same_bits(out.numpy(), want, "f16 arithmetic in f32, rounded where stored")


# ------------------------------------------------------------------ bf16
@hal.kernel
def bf16_to_f32(x: hal.Ptr[hal.bf16], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = x[i]


@hal.kernel
def f32_to_bf16(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.bf16], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = x[i]


@hal.kernel
def f64_to_bf16(x: hal.Ptr[hal.f64], y: hal.Ptr[hal.bf16], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = hal.bf16(x[i])


@hal.kernel
def ints_to_halves(x: hal.Ptr[hal.i32], h: hal.Ptr[hal.f16], b: hal.Ptr[hal.bf16], back: hal.Ptr[hal.i32],
                   n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        h[i] = hal.f16(x[i])
        b[i] = hal.bf16(x[i])
        back[i] = hal.i32(b[i]) + hal.i32(h[i] if hal.abs(h[i]) < 60000.0 else hal.f16(0.0))


@pytest.mark.feature("bf16")
def test_bf16_widens_exactly(device):
    x = all16(BF16)
    y = device.empty((x.size,), np.float32)
    run(device, bf16_to_f32, x.size, device.array(x), y, x.size)
    assert_same_bits(y.numpy(), x.astype(np.float32), "every bf16 -> f32")


@pytest.mark.feature("bf16")
def test_f32_to_bf16_rounds_to_nearest_even(device):
    x = f32_inputs(BF16)
    y = device.empty((x.size,), BF16)
    run(device, f32_to_bf16, x.size, device.array(x), y, x.size)
    assert_same_bits(y.numpy(), nearest(x, BF16), "f32 -> bf16")


@pytest.mark.feature("bf16")
@pytest.mark.feature("f64")
def test_f64_to_bf16_rounds_once(device):
    with np.errstate(invalid="ignore"):  # the signalling NaNs among the random patterns
        x64 = f32_inputs(BF16).astype(np.float64)
    rng = np.random.default_rng(6)
    x = np.concatenate([x64, double_rounding_cases(x64), np.array([1 + 2.0**-8 + 2.0**-30]),
                        rng.integers(0, 1 << 63, 100_000, dtype=np.uint64).view(np.float64)])
    y = device.empty((x.size,), BF16)
    run(device, f64_to_bf16, x.size, device.array(x), y, x.size)
    assert_same_bits(y.numpy(), nearest(x, BF16), "f64 -> bf16 (one rounding)")


@pytest.mark.feature("bf16")
@pytest.mark.feature("f16")
def test_integers_convert_to_half_types(device):
    rng = np.random.default_rng(11)
    x = np.concatenate([np.arange(-70000, 70000, 7), rng.integers(-(2**31), 2**31, 10000),
                        [2**31 - 1, -(2**31), 16777217, 65519, 65520, 2049,
                         2**24 + 2**16 + 1, -(2**30 + 2**22 + 1)]]).astype(np.int32)  # through f32: a tie, then even
    h, b, back = (device.empty((x.size,), t) for t in (np.float16, BF16, np.int32))
    run(device, ints_to_halves, x.size, device.array(x), h, b, back, x.size)
    want_h, want_b = nearest(x, np.float16), nearest(x, BF16)
    assert_same_bits(h.numpy(), want_h, "i32 -> f16")
    assert_same_bits(b.numpy(), want_b, "i32 -> bf16")
    with np.errstate(all="ignore"):
        keep = np.where(np.abs(want_h.astype(np.float32)) < 60000, want_h, np.float16(0))
        want_back = want_b.astype(np.float32).astype(np.int64) + keep.astype(np.int64)
    ok = np.abs(want_b.astype(np.float64)) < 2**31 - 2**17  # f32 -> i32 of larger values is unspecified
    assert_array_equal(back.numpy()[ok], want_back[ok].astype(np.int32), what="bf16/f16 -> i32")


@hal.kernel
def wide_ints_to_halves(x: hal.Ptr[hal.i64], u: hal.Ptr[hal.u64], h: hal.Ptr[hal.f16], b: hal.Ptr[hal.bf16],
                        n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        h[i] = hal.f16(x[i])
        b[i] = hal.bf16(x[i])
        h[n + i] = hal.f16(u[i])
        b[n + i] = hal.bf16(u[i])


@pytest.mark.feature("bf16")
@pytest.mark.feature("f16")
@pytest.mark.feature("i64")
def test_64_bit_integers_round_once(device):
    rng = np.random.default_rng(12)
    edges = [2**53 + 1, 2**60 + 2**52 + 1, 2**63 - 1, -(2**63), 2**40 + 2**32 + 1, -(2**56 + 2**48 + 3), 0, -1, 65520]
    x = np.concatenate([rng.integers(-(2**63), 2**63 - 1, 3000, dtype=np.int64),
                        rng.integers(-(2**20), 2**20, 1000), edges]).astype(np.int64)
    u = np.concatenate([rng.integers(0, 2**64 - 1, x.size - 3, dtype=np.uint64, endpoint=True),
                        np.array([2**64 - 1, 2**63 + 2**55 + 1, 2**32 + 2**24], np.uint64)])
    h, b = device.empty((2 * x.size,), np.float16), device.empty((2 * x.size,), BF16)
    run(device, wide_ints_to_halves, x.size, device.array(x), device.array(u), h, b, x.size)
    both = [np.concatenate([nearest(x, t), nearest(u, t)]) for t in (np.float16, BF16)]
    assert_same_bits(h.numpy(), both[0], "i64/u64 -> f16")
    assert_same_bits(b.numpy(), both[1], "i64/u64 -> bf16 (one rounding, not through f32 or f64)")


@pytest.mark.feature("bf16")
@pytest.mark.feature("f16")
def test_host_conversions_round_once(device):
    """``dev.array(data, dtype)`` and ``dev.full`` of f64 numbers round once, as kernels do."""
    x = np.array([1 + 2.0**-8 + 2.0**-30, 1 + 2.0**-11 + 2.0**-40, -(1 + 2.0**-8 + 2.0**-30), 65519.99, 2.0**-25 * 1.5])
    for dtype in (np.float16, BF16):
        assert_same_bits(device.array(x, dtype).numpy(), nearest(x, dtype), f"dev.array(f64, {np.dtype(dtype)})")
        assert_same_bits(device.array(x.tolist(), dtype).numpy(), nearest(x, dtype), "dev.array(list)")
        assert_same_bits(device.full((2,), float(x[0]), dtype).numpy(), nearest(x[:1].repeat(2), dtype), "full")


# ----------------------------------------------------------- small ints
@hal.kernel
def small_ints(a: hal.Ptr[hal.i8], b: hal.Ptr[hal.u8], c: hal.Ptr[hal.i16], d: hal.Ptr[hal.u16],
               out: hal.Ptr[hal.i32], f: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x = a[i]
        out[i * 4] = x * b[i] + c[i] - d[i]  # promoted to i32: no wrapping in 8/16 bits
        a[i] = x * 3 + 1  # wraps where stored
        b[i] = b[i] + 200
        c[i] = c[i] * c[i]
        d[i] = ~d[i] >> 1
        out[i * 4 + 1] = (x >> 2) + (b[i] << 3)
        out[i * 4 + 2] = hal.i32(-x) // 3 + hal.max(c[i], d[i]) % 7
        out[i * 4 + 3] = hal.i32(hal.i8(f[i])) + hal.i32(hal.u16(f[i]))


@pytest.mark.feature("small_ints")
def test_small_integers_promote_and_wrap(device):
    rng = np.random.default_rng(7)
    n = 3000
    a = rng.integers(-128, 128, n).astype(np.int8)
    b = rng.integers(0, 256, n).astype(np.uint8)
    c = rng.integers(-(2**15), 2**15, n).astype(np.int16)
    d = rng.integers(0, 2**16, n).astype(np.uint16)
    f = (rng.standard_normal(n) * 1e5).astype(np.float32)
    arrays = [device.array(v) for v in (a, b, c, d)]
    out = device.empty((n * 4,), np.int32)
    run(device, small_ints, n, *arrays, out, device.array(f), n)
    A, B, C, D = (v.astype(np.int32) for v in (a, b, c, d))
    na, nb, nc, nd = (A * 3 + 1).astype(np.int8), (B + 200).astype(np.uint8), (C * C).astype(np.int16), \
        ((~D) >> 1).astype(np.uint16)
    for got, want, what in zip(arrays, (na, nb, nc, nd), ("i8 *3+1", "u8 +200", "i16 squared", "u16 ~x >> 1")):
        assert_array_equal(got, want, what=f"{what} (wraps where stored)")
    got = out.numpy().reshape(n, 4)
    NB, NC, ND = (v.astype(np.int32) for v in (nb, nc, nd))
    assert_array_equal(got[:, 0], A * B + C - D, what="mixed small integers compute in i32")
    assert_array_equal(got[:, 1], (A >> 2) + (NB << 3), what="shifts in i32")
    assert_array_equal(got[:, 2], (-A) // 3 + np.maximum(NC, ND) % 7, what="floor division and modulo")
    t = f.astype(np.int32)
    assert_array_equal(got[:, 3], t.astype(np.int8).astype(np.int32) + t.astype(np.uint16).astype(np.int32),
                       what="float -> i8/u16 truncates to i32, then wraps")


# ------------------------------------------------------------------ u64
@hal.kernel
def u64_ops(a: hal.Ptr[hal.u64], b: hal.Ptr[hal.u64], out: hal.Ptr[hal.u64], s: hal.u64, n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x = a[i]
        y = b[i]
        out[i * 6] = x * y + s
        out[i * 6 + 1] = x // y
        out[i * 6 + 2] = x % y
        out[i * 6 + 3] = (x >> (y & 63)) ^ (x << 3)
        out[i * 6 + 4] = hal.u64(1) if x > y else hal.u64(0)
        out[i * 6 + 5] = hal.u64(hal.f64(x) * 0.5)


@pytest.mark.feature("i64")
def test_u64_wraps_and_compares_unsigned(device):
    rng = np.random.default_rng(9)
    n = 2000
    a = rng.integers(0, 2**64, n, dtype=np.uint64)
    b = rng.integers(0, 2**64, n, dtype=np.uint64) >> rng.integers(0, 64, n).astype(np.uint64)
    b[:10] = 0
    out = device.empty((n * 6,), np.uint64)
    s = 2**64 - 5
    run(device, u64_ops, n, device.array(a), device.array(b), out, s, n)
    got = out.numpy().reshape(n, 6)
    with np.errstate(all="ignore"):
        assert_array_equal(got[:, 0], a * b + np.uint64(s), what="x * y + s (wraps)")
        assert_array_equal(got[:, 1], np.where(b == 0, 0, a // np.maximum(b, 1)), what="x // y (0 for y == 0)")
        assert_array_equal(got[:, 2], np.where(b == 0, 0, a % np.maximum(b, 1)), what="x % y")
        assert_array_equal(got[:, 3], (a >> (b & np.uint64(63))) ^ (a << np.uint64(3)), what="shifts")
    assert_array_equal(got[:, 4], (a > b).astype(np.uint64), what="unsigned comparison")
    if device.supports("f64"):
        assert_array_equal(got[:, 5], (a.astype(np.float64) * 0.5).astype(np.uint64), what="u64 <-> f64")


# ------------------------------------------------------- memory, errors
@hal.kernel
def f16_shared_reverse(x: hal.Ptr[hal.f16], y: hal.Ptr[hal.f16]):
    tile = hal.shared(hal.f16, 64)
    t = hal.local_id(0)
    tile[t] = x[hal.global_id(0)]
    hal.barrier()
    y[hal.global_id(0)] = tile[63 - t]


@pytest.mark.feature("f16")
@pytest.mark.feature("shared_memory")
@pytest.mark.feature("barriers")
def test_f16_shared_memory(device):
    x = np.random.default_rng(1).standard_normal(256).astype(np.float16)
    y = device.empty((256,), np.float16)
    f16_shared_reverse[4, 64, device.default_queue](device.array(x), y)
    device.default_queue.synchronize()
    assert_same_bits(y.numpy(), x.reshape(4, 64)[:, ::-1].ravel(), "f16 through shared memory")


@pytest.mark.parametrize("feature,dtype", [("f16", np.float16), ("bf16", BF16), ("small_ints", np.int16),
                                           ("small_ints", np.uint16), ("i64", np.uint64)])
def test_arrays_of_declared_types_round_trip(device, feature, dtype):
    host = (np.arange(41) % 7).astype(dtype)
    if not device.supports(feature):
        with pytest.raises(hal.InvalidArgumentError, match=feature):
            device.array(host)
        return
    assert_same_bits(device.array(host).numpy(), host, f"{np.dtype(dtype).name} round trip")
    assert_same_bits(device.full((5,), 1.5 if np.dtype(dtype).kind == "f" else 3, dtype).numpy(),
                     np.full(5, 1.5 if np.dtype(dtype).kind == "f" else 3, dtype), "full")
