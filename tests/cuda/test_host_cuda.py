"""The CUDA dialect executed on the host (``hostcuda.py``: g++ and ``host_cuda.h``): generated programs
and known kernels against the reference interpreter, without a GPU. Catches what compiling to PTX
cannot: wrong semantics of the generated CUDA C++ (atomics, shuffles, indices, faults, the
argument block)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import hal
from hal.conformance._generate import BF16, F16, F32, F64, I8, I16, I32, I64, U8, U16, U32, U64, Program, programs
from hal.kernel import interpreter, ir, samples
from hal.kernel.types import ScalarType

pytest.importorskip("cuda.bindings.nvrtc", reason="the cuda extra is not installed: pip install 'hal-sdk[cuda]'")
if shutil.which("g++") is None:
    pytest.skip("g++ is missing: the host harness compiles the CUDA C++ with it", allow_module_level=True)

from . import hostcuda  # noqa: E402 - after the skips

WIDE = (I32, U32, I64, U64, F32, F64)
NARROW = (I32, U32, F32, F16, BF16, I8, U8, I16, U16)


def hal_type(dtype: Any) -> Any:
    """hal's scalar type of a numpy dtype (what ``specialize`` takes)."""
    return getattr(hal, ScalarType.from_dtype(np.dtype(dtype)).value)


def reference(kernel: ir.Kernel, grid: Any, block: Any, args: list[Any], **kw: Any) -> list[Any]:
    """The interpreter's results on copies of ``args``."""
    want = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    interpreter.run(kernel, grid if isinstance(grid, tuple) else (grid, 1, 1),
                    block if isinstance(block, tuple) else (block, 1, 1), want, **kw)
    return want


def assert_same(got: list[Any], want: list[Any]) -> None:
    """Every array bit-equal (NaNs of any payload equal)."""
    for i, (g, w) in enumerate(zip(got, want)):
        if isinstance(g, np.ndarray):
            np.testing.assert_array_equal(g, w, err_msg=f"argument {i}", strict=True)
            if g.dtype.kind == "f":
                same = (g.view(f"u{g.itemsize}") == w.view(f"u{g.itemsize}")) | (np.isnan(g) & np.isnan(w))
                assert same.all(), f"argument {i}: signs of zeros differ at {np.flatnonzero(~same)[:8]}"


# ------------------------------------------------------------------ generated programs
@pytest.mark.parametrize(("family", "types", "examples"),
                         [("scalar", (I32, U32, F32), 25), ("scalar", WIDE, 20), ("scalar", NARROW, 20),
                          ("shared", (I32, U32, F32), 25), ("atomic", (I32, U32, F32), 25)],
                         ids=["scalar", "scalar-64bit", "scalar-narrow", "shared", "atomic"])
def test_generated_programs_run_like_the_reference(family: Any, types: Any, examples: int, tmp_path: Path) -> None:
    """As hal.conformance.test_differential; the shared and 64-bit programs in checked mode (no false faults)."""
    checked = family == "shared" or I64 in types
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(programs(family, types, shared_atomics=family == "atomic"))
    def runs(program: Program) -> None:
        kernel = program.load(tmp_path)
        values = program.fresh_args()
        hostcuda.compile(kernel.ir, checked=checked)(program.grid, program.block, values)
        got = {a.name: v for a, v in zip(program.args, values) if a.role != "scalar"}
        bad = program.mismatches(got, program.reference(kernel))
        assert not bad, "\n".join(bad) + "\n" + program.source

    runs()


# ------------------------------------------------------------------ known kernels
def test_saxpy_over_several_blocks_and_a_partial_one() -> None:
    n = 1000
    x, y = np.arange(n, dtype=np.float32), np.linspace(-1, 1, n, dtype=np.float32)
    want = np.float32(2.5) * x + y
    hostcuda.compile(samples.saxpy.ir)(4, 256, [2.5, x, y, n])
    np.testing.assert_array_equal(y, want)


def test_shared_memory_tree_reduction_per_block() -> None:
    x = np.random.default_rng(1).standard_normal(5 * 128).astype(np.float32)
    out = np.zeros(5, np.float32)
    args = [x, out]
    want = reference(samples.reduce128.ir, 5, 128, args)
    hostcuda.compile(samples.reduce128.ir)(5, 128, args)
    assert_same(args, want)


@hal.kernel
def indices(out: hal.Ptr[hal.i32]):
    gx = hal.global_id(0)
    gy = hal.global_id(1)
    gz = hal.global_id(2)
    k = 12 * (gx + hal.global_size(0) * (gy + hal.global_size(1) * gz))
    out[k] = hal.local_id(0)
    out[k + 1] = hal.local_id(1)
    out[k + 2] = hal.local_id(2)
    out[k + 3] = hal.group_id(0)
    out[k + 4] = hal.group_id(1)
    out[k + 5] = hal.group_id(2)
    out[k + 6] = hal.local_size(0) * 100 + hal.num_groups(0)
    out[k + 7] = hal.local_size(1) * 100 + hal.num_groups(1)
    out[k + 8] = hal.local_size(2) * 100 + hal.num_groups(2)
    out[k + 9] = hal.global_size(0)
    out[k + 10] = hal.global_size(1)
    out[k + 11] = hal.global_size(2)


@pytest.mark.parametrize(("grid", "block"), [((3, 2, 1), (4, 5, 1)), ((2, 2, 2), (3, 1, 2)), ((5, 1, 1), (7, 1, 1))])
def test_every_thread_index_in_every_dimension(grid: tuple[int, int, int], block: tuple[int, int, int]) -> None:
    out = np.full(12 * math.prod(grid) * math.prod(block), -1, np.int32)
    want = reference(indices.ir, grid, block, [out])
    hostcuda.compile(indices.ir)(grid, block, [out])
    assert_same([out], want)


@hal.kernel
def mixed_scalars(out: hal.Ptr[hal.f64], h: hal.f16, flag: hal.bool_, w: hal.f64, c: hal.i8, u: hal.u64,
                  b: hal.bf16, s: hal.u16, f: hal.f32):
    out[0] = hal.f64(h)
    out[1] = hal.f64(1.0) if flag else hal.f64(2.0)
    out[2] = w
    out[3] = hal.f64(c)
    out[4] = hal.f64(u >> hal.u64(40))
    out[5] = hal.f64(b)
    out[6] = hal.f64(s)
    out[7] = hal.f64(f)


def test_scalars_of_every_width_reach_the_kernel_through_the_argument_block() -> None:
    args = [np.zeros(8), 1.5, True, -0.25, -3, 2**63 + 2**41, -2.5, 65535, 0.1]
    want = reference(mixed_scalars.ir, 1, 1, args)
    hostcuda.compile(mixed_scalars.ir)(1, 1, args)
    assert_same(args, want)
    assert args[0][4] == 2**23 + 2 and args[0][5] == -2.5


@hal.kernel
def narrow_all(x: hal.Ptr[hal.f64], w: hal.Ptr[hal.i64], u: hal.Ptr[hal.u64], h: hal.Ptr[hal.f16],
               b: hal.Ptr[hal.bf16], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        h[i] = hal.f16(x[i])
        b[i] = hal.bf16(x[i])
        h[n + i] = hal.f16(w[i])
        b[n + i] = hal.bf16(w[i])
        b[2 * n + i] = hal.bf16(u[i])
        b[3 * n + i] = hal.bf16(hal.f32(x[i]))


def test_narrow_conversions_round_once_as_the_reference() -> None:
    """f64, i64 and u64 -> f16/bf16 in the CUDA C++ helpers: one rounding, against values-only references."""
    from hal.conformance._halfref import nearest_bits

    rng = np.random.default_rng(8)
    n = 4096
    x = np.concatenate([rng.integers(0, 1 << 64, n - 4, dtype=np.uint64).view(np.float64),
                        [1 + 2.0**-8 + 2.0**-30, 2.0**-134 + 2.0**-160, 65520.0, -math.nan]])
    w = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64) >> rng.integers(0, 63, n)
    u = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    h, b = np.zeros(2 * n, np.float16), np.zeros(4 * n, BF16.np_dtype)
    hostcuda.compile(narrow_all.ir)((n + 255) // 256, 256, [x, w, u, h, b, n])
    with np.errstate(all="ignore"):
        x32 = x.astype(np.float32)
    real, ints = ~np.isnan(x), np.ones(n, bool)  # a NaN's payload is checked by the conformance suite
    want_h = np.concatenate([nearest_bits(x, "f16"), nearest_bits(w, "f16")])
    want_b = np.concatenate([nearest_bits(x, "bf16"), nearest_bits(w, "bf16"), nearest_bits(u, "bf16"),
                             nearest_bits(x32, "bf16")])
    keep_h, keep_b = np.concatenate([real, ints]), np.concatenate([real, ints, ints, real])
    assert (h.view(np.uint16)[keep_h] == want_h[keep_h]).all()
    assert (b.view(np.uint16)[keep_b] == want_b[keep_b]).all()
    assert b.view(np.uint16)[n - 4] == 0x3F81 and b.view(np.uint16)[n - 1] == 0xFFC0


# ------------------------------------------------------------------ atomics
T = hal.dtype_var("T")


@hal.kernel
def contend(slot: hal.Ptr[T], v: hal.Ptr[T], old: hal.Ptr[T]):
    i = hal.global_id(0)
    old[i] = hal.atomic_add(slot, 0, v[i])
    hal.atomic_max(slot, 1, v[i])
    hal.atomic_min(slot, 2, v[i])


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int64, np.uint64, np.float32, np.float64])
def test_atomics_from_every_thread_on_one_slot(dtype: Any) -> None:
    n = 4 * 96
    v = np.random.default_rng(3).integers(0, 1000, n).astype(dtype)  # integers: any order sums exactly
    if dtype in (np.int32, np.int64):
        v -= 500
    slot = np.array([7, 0, 5000], dtype)
    old = np.zeros(n, dtype)
    hostcuda.compile(contend.specialize(T=hal_type(dtype)).ir)(4, 96, [slot, v, old])
    assert slot[0] == dtype(7) + v.sum(dtype=dtype) and slot[1] == v.max() and slot[2] == min(v.min(), 5000)
    if v.min() >= 0:  # non-negative operands: the old values are the running sums, in some order
        chain = sorted(old.tolist())
        assert chain[0] == 7 and sorted((old + v).tolist()) == chain[1:] + [slot[0].item()]


@hal.kernel
def tickets(counter: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32], swaps: hal.Ptr[hal.u32], last: hal.Ptr[hal.u32]):
    """Every thread takes a ticket with a compare-and-swap loop and swaps its id into one slot."""
    i = hal.global_id(0)
    for _attempt in range(1000000):
        cur = counter[0]
        if hal.atomic_cas(counter, 0, cur, cur + 1) == cur:
            out[i] = cur
            break
    swaps[i] = hal.atomic_exchange(last, 0, hal.u32(i + 1))


def test_compare_and_swap_and_exchange_under_contention() -> None:
    n = 3 * 64
    counter, out = np.zeros(1, np.int32), np.full(n, -1, np.int32)
    swaps, last = np.zeros(n, np.uint32), np.zeros(1, np.uint32)
    hostcuda.compile(tickets.ir)(3, 64, [counter, out, swaps, last])
    assert counter[0] == n and sorted(out.tolist()) == list(range(n))
    assert sorted([*swaps.tolist(), int(last[0])]) == list(range(n + 1))


@hal.kernel
def bit_atomics(x: hal.Ptr[hal.i32], w: hal.Ptr[hal.u64], out: hal.Ptr[hal.i32]):
    tile = hal.shared(hal.i32, 2)
    i = hal.global_id(0)
    if hal.local_id(0) < 2:
        tile[hal.local_id(0)] = -1 if hal.local_id(0) == 0 else 0
    hal.barrier()
    hal.atomic_and(tile, 0, x[i])
    hal.atomic_or(tile, 1, x[i])
    hal.atomic_xor(out, 0, x[i])
    hal.atomic_or(w, 0, hal.u64(x[i]) << hal.u64(32))
    hal.atomic_and(w, 1, ~hal.u64(x[i] & 255))
    hal.barrier()
    if hal.local_id(0) == 0:
        out[1 + 2 * hal.group_id(0)] = tile[0]
        out[2 + 2 * hal.group_id(0)] = tile[1]


def test_bitwise_atomics_in_global_and_shared_memory_like_the_reference() -> None:
    x = np.random.default_rng(9).integers(-(2**31), 2**31, 3 * 64).astype(np.int32)
    args = [x, np.array([0, 2**64 - 1], np.uint64), np.zeros(7, np.int32)]
    want = reference(bit_atomics.ir, 3, 64, args)
    hostcuda.compile(bit_atomics.ir)(3, 64, args)
    assert_same(args, want)


@hal.kernel
def bit_counts(x: hal.Ptr[hal.i32], y: hal.Ptr[hal.u64], out: hal.Ptr[hal.i32], wide: hal.Ptr[hal.u64]):
    i = hal.global_id(0)
    out[3 * i] = hal.popcount(x[i])
    out[3 * i + 1] = hal.clz(x[i])
    out[3 * i + 2] = hal.ctz(x[i])
    wide[3 * i] = hal.popcount(y[i]) + hal.clz(y[i]) * hal.u64(1000)
    wide[3 * i + 1] = hal.ctz(y[i])


def test_popcount_clz_ctz_like_the_reference() -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(-(2**31), 2**31, 64).astype(np.int32)
    x[:3] = [0, -1, -(2**31)]
    y = rng.integers(0, 2**63, 64, dtype=np.uint64) >> rng.integers(0, 64, 64).astype(np.uint64)
    y[:2] = [0, 2**64 - 1]
    args = [x, y, np.zeros(192, np.int32), np.zeros(192, np.uint64)]
    want = reference(bit_counts.ir, 1, 64, args)
    hostcuda.compile(bit_counts.ir)(1, 64, args)
    assert_same(args, want)


@hal.kernel
def wraps(c32: hal.Ptr[hal.u32], c64: hal.Ptr[hal.i64], cu: hal.Ptr[hal.u64]):
    i = hal.i64(hal.global_id(0))
    hal.atomic_add(c32, 0, hal.u32(0x40000000))
    hal.atomic_add(c64, 0, hal.i64(-3))
    hal.atomic_add(cu, 0, hal.u64(0x4000000000000000))
    hal.atomic_max(c64, 1, i - hal.i64(100))  # signed: the negative ones are the small ones
    hal.atomic_min(c64, 2, hal.i64(100) - i)
    hal.atomic_min(cu, 1, hal.u64(i) + hal.u64(2**63))
    hal.atomic_max(cu, 2, hal.u64(i) + hal.u64(2**63))


def test_integer_atomics_wrap_and_compare_with_their_signedness_under_contention() -> None:
    c32, c64, cu = np.zeros(1, np.uint32), np.array([0, -5, 5], np.int64), np.array([0, 2**64 - 1, 0], np.uint64)
    hostcuda.compile(wraps.ir)(2, 99, [c32, c64, cu])
    assert c32[0] == (198 * 0x40000000) % 2**32 and c64[0] == -594 and cu[0] == (198 * 2**62) % 2**64
    assert c64[1] == 97 and c64[2] == -97 and cu[1] == 2**63 and cu[2] == 2**63 + 197


@hal.kernel
def float_rmw(slot: hal.Ptr[T], v: hal.Ptr[T], old: hal.Ptr[T], n: hal.i32):
    """Thread i applies min, max, compare-and-swap and exchange with every v[k] to its own four
    slots in order, keeping the old values (no contention: the result is defined)."""
    i = hal.global_id(0)
    for k in range(n):
        o = 4 * (i * n + k)
        old[o] = hal.atomic_min(slot, 4 * i, v[k])
        old[o + 1] = hal.atomic_max(slot, 4 * i + 1, v[k])
        if k % 3 == 0:  # swaps unless the slot holds a NaN; -0.0 equals +0.0
            old[o + 2] = hal.atomic_cas(slot, 4 * i + 2, slot[4 * i + 2], v[k])
        else:  # swaps where v[k] equals the slot
            old[o + 2] = hal.atomic_cas(slot, 4 * i + 2, v[k], v[(k + 1) % n])
        old[o + 3] = hal.atomic_exchange(slot, 4 * i + 3, v[k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_atomics_propagate_nan_and_compare_signed_zeros_as_the_ir(dtype: Any) -> None:
    info = np.finfo(dtype)
    values = np.array([0.0, -0.0, 1.0, -math.inf, math.nan, 3.0, -0.0, 0.0, math.inf, -1.0, 0.0, 1.0,
                       info.smallest_subnormal, -info.smallest_subnormal, info.max, 1 + info.eps, 1 + 2 * info.eps],
                      dtype)
    starts = np.array([0.0, -0.0, math.nan, 2.0, -0.0, 0.0, math.inf, -math.inf, 1 + info.eps], dtype)
    threads = starts.size
    v = np.concatenate([values, np.random.default_rng(5).permutation(values)])
    slot = np.repeat(starts, 4)
    args = [slot, v, np.zeros(threads * 4 * v.size, dtype), v.size]
    kernel = float_rmw.specialize(T=hal_type(dtype)).ir
    want = reference(kernel, 1, threads, args)
    hostcuda.compile(kernel)(1, threads, args)
    assert_same(args, want)


@hal.kernel
def add_subnormal(g: hal.Ptr[T], v: T, out: hal.Ptr[T]):
    s = hal.shared(T, 2)
    if hal.local_id(0) == 0:
        s[0] = v
        s[1] = v
    hal.barrier()
    out[0] = hal.atomic_add(g, 0, v)
    out[1] = hal.atomic_add(s, 0, v)
    hal.barrier()
    out[2] = s[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_atomic_add_keeps_subnormals_in_global_and_shared_memory(dtype: Any) -> None:
    """CUDA's atomicAdd(float *) is PTX atom.add.f32, which flushes subnormals on global memory."""
    tiny = np.finfo(dtype).smallest_subnormal
    args = [np.array([tiny], dtype), float(tiny), np.zeros(3, dtype)]
    kernel = add_subnormal.specialize(T=hal_type(dtype)).ir
    want = reference(kernel, 1, 1, args)
    hostcuda.compile(kernel)(1, 1, args)
    assert_same(args, want)
    assert args[0][0] == 2 * tiny and args[2][2] == 2 * tiny


# ------------------------------------------------------------------ subgroups (warps)
@hal.kernel
def shuffles(x: hal.Ptr[hal.f32], lanes: hal.Ptr[hal.i32], masks: hal.Ptr[hal.i32], out: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    v = x[i]
    out[3 * i] = hal.shuffle(v, lanes[i])
    out[3 * i + 1] = hal.shuffle_xor(v, masks[i])
    out[3 * i + 2] = hal.shuffle(v, 0)


@pytest.mark.parametrize("block", [64, 50, 1])
def test_warp_shuffles_like_the_reference_with_32_lanes(block: int) -> None:
    n = 3 * block
    rng = np.random.default_rng(block)
    args = [rng.standard_normal(n).astype(np.float32), rng.integers(-2, 34, n).astype(np.int32),
            rng.integers(0, 32, n).astype(np.int32), np.zeros(3 * n, np.float32)]
    want = reference(shuffles.ir, 3, block, args, subgroup_size=32)
    hostcuda.compile(shuffles.ir)(3, block, args)
    assert_same(args, want)


@hal.kernel
def reductions(x: hal.Ptr[T], out: hal.Ptr[T]):
    i = hal.global_id(0)
    v = x[i]
    out[7 * i] = hal.subgroup_reduce_add(v)
    out[7 * i + 1] = hal.subgroup_reduce_max(v)
    out[7 * i + 2] = hal.subgroup_reduce_min(v)
    out[7 * i + 3] = hal.group_reduce_add(v)
    out[7 * i + 4] = hal.group_reduce_max(v)
    out[7 * i + 5] = hal.group_reduce_min(v)
    out[7 * i + 6] = T(hal.subgroup_local_id() * 100 + hal.subgroup_size())


@pytest.mark.parametrize(("dtype", "block"), [(np.float32, 100), (np.float64, 64), (np.int32, 45), (np.uint64, 33)])
def test_subgroup_and_group_reductions_like_the_reference(dtype: Any, block: int) -> None:
    rng = np.random.default_rng(block)
    x = (rng.standard_normal(3 * block) * 1000).astype(dtype)
    if dtype == np.float32:
        x[block + 7] = np.nan
    args = [x, np.zeros(7 * x.size, dtype)]
    kernel = reductions.specialize(T=hal_type(dtype)).ir
    want = reference(kernel, 3, block, args, subgroup_size=32)
    hostcuda.compile(kernel)(3, block, args)
    assert_same(args, want)


@hal.kernel
def lane_ops(x: hal.Ptr[T], out: hal.Ptr[T], bits: hal.Ptr[hal.u64]):
    i = hal.global_id(0)
    v = x[i]
    tid = hal.local_id(0)
    out[5 * i] = hal.shuffle_up(v, hal.subgroup_size() // 8 + 1)
    out[5 * i + 1] = hal.shuffle_down(v, hal.subgroup_size() // 4 - 3)
    out[5 * i + 2] = hal.subgroup_scan_inclusive_add(v)
    out[5 * i + 3] = hal.subgroup_scan_exclusive_add(v)
    out[5 * i + 4] = v
    if tid < 32:  # uniform within each warp: only warp 0 of each block
        out[5 * i + 4] = hal.subgroup_reduce_add(v)
    bits[3 * i] = hal.subgroup_ballot(v > T(0))
    bits[3 * i + 1] = hal.u64(hal.subgroup_any(v > T(100)))
    bits[3 * i + 2] = hal.u64(hal.subgroup_all(v > T(-100)))


@pytest.mark.parametrize(("dtype", "block"), [(np.int32, 64), (np.float32, 50), (np.int16, 45), (np.float16, 33)])
def test_distance_shuffles_votes_and_scans_like_the_reference(dtype: Any, block: int) -> None:
    """In warps (also inside ``if tid < 32``), narrow types shuffled widened to int."""
    rng = np.random.default_rng(block)
    x = (rng.standard_normal(3 * block) * 60).astype(dtype)
    args = [x, np.zeros(5 * x.size, dtype), np.zeros(3 * x.size, np.uint64)]
    kernel = lane_ops.specialize(T=hal_type(dtype)).ir
    want = reference(kernel, 3, block, args, subgroup_size=32)
    hostcuda.compile(kernel)(3, block, args)
    assert_same(args, want)


@hal.kernel
def lanes_2d(out: hal.Ptr[hal.i32]):
    out[hal.local_id(1) * hal.local_size(0) + hal.local_id(0)] = hal.shuffle(hal.local_id(0) * 10 + hal.local_id(1), 3)


def test_warps_follow_the_linear_thread_id_in_2d_blocks() -> None:
    out = np.zeros(5 * 9, np.int32)
    want = reference(lanes_2d.ir, (1, 1, 1), (5, 9, 1), [out], subgroup_size=32)
    hostcuda.compile(lanes_2d.ir)((1, 1, 1), (5, 9, 1), [out])
    assert_same([out], want)


# ------------------------------------------------------------------ faults
@hal.kernel
def axpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


@hal.kernel
def steps(out: hal.Ptr[hal.i32], step: hal.Ptr[hal.i32]):
    i = hal.global_id(0)
    t = 0
    for k in range(0, 10, step[i]):
        t += k
    out[i] = t


def _cpu_fault(kernel: Any, grid: int, block: int, args: list[Any], monkeypatch: pytest.MonkeyPatch) -> str:
    """The DeviceFault message of hal's CPU backend in checked mode."""
    monkeypatch.setenv("HAL_CHECK", "1")
    dev = hal.device("cpu")
    arrays = [dev.array(a) if isinstance(a, np.ndarray) else a for a in args]
    kernel[grid, block](*arrays)
    with pytest.raises(hal.DeviceFault) as fault:
        dev.synchronize()
    return str(fault.value)


@pytest.mark.parametrize(("grid", "block"), [(1, 16), (4, 4)])
def test_out_of_bounds_is_the_cpu_backends_device_fault_in_checked_mode(grid: int, block: int,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    args = [2.0, np.ones(8, np.float32), np.zeros(16, np.float32), 9]  # only thread 8 reads x[8]
    want = _cpu_fault(axpy, grid, block, args, monkeypatch)
    with pytest.raises(hal.DeviceFault) as fault:
        hostcuda.compile(axpy.ir, checked=True)(grid, block, args)
    assert str(fault.value) == want
    assert "out-of-bounds load global buffer 'x': index 8 is outside [0, 8) for thread global (8, 0, 0)" in want
    hostcuda.compile(axpy.ir, checked=False)(grid, block, args[:3] + [8])  # unchecked: no record to read


@hal.kernel
def too_far(x: hal.Ptr[hal.i32]):
    v = x[hal.global_id(0)]
    x[hal.global_id(0)] = hal.shuffle_down(v, hal.subgroup_size())  # no lane is that far in any subgroup


def test_checked_mode_faults_on_a_shuffle_distance_of_a_whole_warp() -> None:
    args = [np.arange(64, dtype=np.int32)]
    with pytest.raises(hal.DeviceFault, match=r"hal.shuffle_down\(v, 32\) on a device whose subgroups have 32"):
        reference(too_far.ir, 1, 64, args, subgroup_size=32)
    with pytest.raises(hal.DeviceFault, match=r"out-of-bounds hal.shuffle_down\(v, d\) distance \(below "
                                              r"hal.subgroup_size\(\) = 32.*: index 32 is outside \[0, 32\)"):
        hostcuda.compile(too_far.ir, checked=True)(1, 64, [np.arange(64, dtype=np.int32)])


def test_the_fault_names_the_launch_that_made_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several launches share a queue's fault record until a synchronize; the launch number finds the kernel."""
    fine = hostcuda.compile(samples.saxpy.ir, checked=True)
    bad = hostcuda.compile(axpy.ir, checked=True)
    args = [2.0, np.ones(8, np.float32), np.zeros(16, np.float32), 9]
    queue = hostcuda.HostQueue()
    queue.launch(fine, 1, 8, [1.0, np.ones(8, np.float32), np.zeros(8, np.float32), 8])
    queue.launch(bad, 1, 16, args)
    queue.launch(fine, 1, 8, [1.0, np.ones(8, np.float32), np.zeros(8, np.float32), 8])
    with pytest.raises(hal.DeviceFault, match=r"kernel 'axpy' at .*test_host_cuda.py:\d+: out-of-bounds load"):
        queue.synchronize()
    assert queue.record[0] == 0


def test_a_zero_range_step_is_the_cpu_backends_device_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    args = [np.zeros(4, np.int32), np.array([3, 3, 0, 3], np.int32)]  # only thread 2 faults
    want = _cpu_fault(steps, 1, 4, args, monkeypatch)
    with pytest.raises(hal.DeviceFault) as fault:
        hostcuda.compile(steps.ir)(1, 4, args)
    assert str(fault.value) == want and "range() step is zero for thread global (2, 0, 0)" in want
    args[1][2] = 1
    hostcuda.compile(steps.ir)(1, 4, args)
    assert list(args[0]) == [18, 18, 45, 18]
