"""The CPU kernel compiler: every language feature against the reference interpreter, loop
fission at barriers, checked mode, and the on-disk cache (fresh process, concurrency, corruption)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hal
from hal.kernel import interpreter, ir
from hal.kernel.types import ScalarType

pytestmark = pytest.mark.skipif(__import__("shutil").which("gcc") is None, reason="needs gcc")

ROOT = Path(__file__).resolve().parents[2]
I32, I64, U32, F32, F64, BOOL = (ScalarType.I32, ScalarType.I64, ScalarType.U32,
                                 ScalarType.F32, ScalarType.F64, ScalarType.BOOL)


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private kernel cache for this module (HAL_CACHE_DIR is read at each compile)."""
    path = tmp_path_factory.mktemp("halcache")
    old = os.environ.get("HAL_CACHE_DIR")
    os.environ["HAL_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        del os.environ["HAL_CACHE_DIR"]
    else:
        os.environ["HAL_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def dev() -> hal.Device:
    from hal_cpu import _compiler
    from hal_cpu._device import CpuDevice

    if CpuDevice.compile is hal.backend.DeviceImpl.compile:  # until _device.py wires the compiler
        CpuDevice.compile = lambda self, kernel: _compiler.compile_kernel(kernel)  # type: ignore[method-assign]
    return hal.device("cpu")


def both(dev: hal.Device, kernel: Any, grid: Any, block: Any, *args: Any) -> tuple[list[Any], list[Any]]:
    """Run ``kernel`` on the CPU device and in the interpreter on copies of the same inputs;
    return the final contents of every array argument from each."""
    k_ir = kernel.ir if hasattr(kernel, "ir") else kernel
    g = tuple(grid) + (1,) * (3 - len(grid)) if isinstance(grid, tuple) else (grid, 1, 1)
    b = tuple(block) + (1,) * (3 - len(block)) if isinstance(block, tuple) else (block, 1, 1)
    dev_args = [dev.array(a) if isinstance(a, np.ndarray) else a for a in args]
    ref_args = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    if hasattr(kernel, "ir"):
        kernel[grid, block](*dev_args)
    else:
        exe = dev.impl.compile(k_ir)
        q = dev.default_queue.impl
        q.launch(exe, g, b, dev_args, None)
    dev.default_queue.synchronize()
    interpreter.run(k_ir, g, b, ref_args)
    got = [a.numpy() for a in dev_args if isinstance(a, hal.Array)]
    want = [a for a in ref_args if isinstance(a, np.ndarray)]
    return got, want


def assert_same(got: list[Any], want: list[Any], rtol: float = 0.0) -> None:
    for g, w in zip(got, want, strict=True):
        if rtol and g.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-30, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------- arithmetic
@hal.kernel
def int_ops(a: hal.Ptr[hal.i32], b: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x = a[i]
        y = b[i]
        out[i * 12 + 0] = x // y
        out[i * 12 + 1] = x % y
        out[i * 12 + 2] = x << y
        out[i * 12 + 3] = x >> y
        out[i * 12 + 4] = x * y + x - y
        out[i * 12 + 5] = hal.abs(x) + (-x)
        out[i * 12 + 6] = hal.min(x, y) ^ hal.max(x, y) & ~y | 3
        out[i * 12 + 7] = (x + y) * (x - y) // 3
        out[i * 12 + 8] = hal.i32(x < y) + hal.i32(x == y) * 2 + hal.i32(x >= y) * 4
        out[i * 12 + 9] = hal.i32(hal.u32(x) // hal.u32(y)) + hal.i32(hal.u32(x) >> hal.u32(y))
        out[i * 12 + 10] = hal.i32(hal.i64(x) * hal.i64(y) // 3)
        out[i * 12 + 11] = x if x > y else y


def test_integer_arithmetic_is_exact(dev: hal.Device) -> None:
    edge = [0, 1, -1, 2, -2, 7, -7, 31, 32, 33, -33, 2**31 - 1, -(2**31), 1000003, -1000003]
    a = np.array([x for x in edge for _ in edge], np.int32)
    b = np.array([y for _ in edge for y in edge], np.int32)
    n = len(a)
    assert_same(*both(dev, int_ops, (n + 63) // 64, 64, a, b, np.zeros(n * 12, np.int32), n))


@hal.kernel
def float_ops(a: hal.Ptr[hal.f32], b: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        x = a[i]
        y = b[i]
        out[i * 10 + 0] = x // y
        out[i * 10 + 1] = x % y
        out[i * 10 + 2] = x / y + x * y - x
        out[i * 10 + 3] = hal.min(x, y)
        out[i * 10 + 4] = hal.max(x, y, x + y)
        out[i * 10 + 5] = hal.fma(x, y, x)
        out[i * 10 + 6] = hal.floor(x) + hal.ceil(y) + hal.abs(x)
        out[i * 10 + 7] = hal.sqrt(hal.abs(x))
        out[i * 10 + 8] = hal.f32(hal.i32(hal.min(hal.max(x, -1e9), 1e9)))
        out[i * 10 + 9] = hal.f32(x != x) + hal.f32(hal.f64(x) * 3.0)


def test_float_arithmetic_matches_bit_for_bit(dev: hal.Device) -> None:
    edge = [0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 3.0, 1e-30, -7.25, 1e30, np.inf, -np.inf, np.nan, 0.1]
    a = np.array([x for x in edge for _ in edge], np.float32)
    b = np.array([y for _ in edge for y in edge], np.float32)
    n = len(a)
    got, want = both(dev, float_ops, (n + 63) // 64, 64, a, b, np.zeros(n * 10, np.float32), n)
    np.testing.assert_array_equal(got[2].view(np.uint32)[~np.isnan(want[2])],
                                  want[2].view(np.uint32)[~np.isnan(want[2])])
    np.testing.assert_array_equal(np.isnan(got[2]), np.isnan(want[2]))


@hal.kernel
def math_ops(x: hal.Ptr[hal.f32], d: hal.Ptr[hal.f64], out: hal.Ptr[hal.f32], out64: hal.Ptr[hal.f64]):
    i = hal.global_id(0)
    v = x[i]
    out[i * 6 + 0] = hal.exp(v)
    out[i * 6 + 1] = hal.log(hal.abs(v) + 1.0)
    out[i * 6 + 2] = hal.sin(v)
    out[i * 6 + 3] = hal.cos(v)
    out[i * 6 + 4] = hal.tanh(v)
    out[i * 6 + 5] = hal.pow(hal.abs(v), 1.5)
    w = d[i]
    out64[i * 3 + 0] = hal.exp(w) + hal.log(hal.abs(w) + 1.0)
    out64[i * 3 + 1] = hal.sin(w) * hal.cos(w) + hal.tanh(w)
    out64[i * 3 + 2] = hal.pow(hal.abs(w), 0.75) + hal.sqrt(hal.abs(w))


def test_math_functions_within_float_rounding(dev: hal.Device) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-20, 20, 256).astype(np.float32)
    got, want = both(dev, math_ops, 4, 64, x, x.astype(np.float64), np.zeros(256 * 6, np.float32),
                     np.zeros(256 * 3, np.float64))
    np.testing.assert_allclose(got[2], want[2], rtol=4e-7, atol=1e-37)  # a few ulp of f32
    np.testing.assert_allclose(got[3], want[3], rtol=1e-15, atol=1e-300)


@hal.func
def clamp(v: hal.i32, lo: hal.i32, hi: hal.i32) -> hal.i32:
    return hal.min(hal.max(v, lo), hi)


@hal.kernel
def control(x: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32], n: hal.i32, step: hal.i32):
    i = hal.global_id(0)
    if i >= n:
        return
    acc = 0
    for k in range(x[i], -5, step):
        acc += k
        if k % 3 == 0:
            continue
        if acc > 40:
            break
    j = 0
    while True:
        j += 1
        if j * j > i:
            break
    for k in range(10, x[i], -3):
        acc = acc * 2 + k
    t = hal.local(hal.i32, 4)
    for k in range(4):
        t[k] = k * i
    ok = i > 2 and x[i] // (i - 2) > 1
    out[i] = clamp(acc + j * 1000, -100000, 100000) + t[3] + (7 if ok or i == 0 else 0)


def test_control_flow_and_local_arrays(dev: hal.Device) -> None:
    x = np.arange(-10, 30, dtype=np.int32)
    for step in (-1, -2, -7):
        assert_same(*both(dev, control, 2, 32, x, np.zeros(40, np.int32), 40, step))


# ------------------------------------------------------------ loop fission
@hal.kernel
def block_sum(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32):
    sh = hal.shared(hal.f32, 128)
    lid = hal.local_id(0)
    i = hal.global_id(0)
    sh[lid] = x[i] if i < n else hal.f32(0)
    hal.barrier()
    s = hal.local_size(0) // 2
    while s > 0:
        if lid < s:
            sh[lid] += sh[lid + s]
        hal.barrier()
        s //= 2
    if lid == 0:
        out[hal.group_id(0)] = sh[0]


def test_shared_memory_tree_reduction(dev: hal.Device) -> None:
    x = np.random.default_rng(2).standard_normal(1000).astype(np.float32)
    for block in (128, 64, 1):
        groups = (1000 + block - 1) // block
        assert_same(*both(dev, block_sum, groups, block, x, np.zeros(groups, np.float32), 1000))


@hal.kernel
def transpose(a: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], rows: hal.i32, cols: hal.i32):
    tile = hal.shared(hal.f32, 8 * 9)
    tx = hal.local_id(0)
    ty = hal.local_id(1)
    c = hal.group_id(0) * 8 + tx
    r = hal.group_id(1) * 8 + ty
    if r < rows and c < cols:
        tile[ty * 9 + tx] = a[r * cols + c]
    hal.barrier()
    c2 = hal.group_id(1) * 8 + tx
    r2 = hal.group_id(0) * 8 + ty
    if r2 < cols and c2 < rows:
        out[r2 * rows + c2] = tile[tx * 9 + ty]


def test_two_dimensional_blocks_with_a_barrier(dev: hal.Device) -> None:
    a = np.arange(13 * 21, dtype=np.float32)
    got, want = both(dev, transpose, (3, 2), (8, 8), a, np.zeros(13 * 21, np.float32), 13, 21)
    assert_same(got, want)
    np.testing.assert_array_equal(got[1].reshape(21, 13), a.reshape(13, 21).T)


@hal.kernel
def phases(x: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32], rounds: hal.i32):
    sh = hal.shared(hal.i32, 64)
    lid = hal.local_id(0)
    v = x[hal.global_id(0)]
    total = 0
    for r in range(rounds):
        if r == 5:
            break
        sh[lid] = v + r
        hal.barrier()
        if r == 2:
            hal.barrier()
            continue
        total += sh[(lid + 1) % hal.local_size(0)]
        hal.barrier()
        v = v * 3 % 1000
        if lid % 2 == 1:
            continue
        v += 1
    if hal.group_id(0) == 1:
        return
    hal.barrier()
    k = 0
    while k < 3:
        sh[lid] = total + k
        hal.barrier()
        total += sh[63 - lid]
        k += 1
        hal.barrier()
    out[hal.global_id(0)] = total * 100 + v


def test_uniform_control_around_barriers_with_break_continue_return(dev: hal.Device) -> None:
    x = np.arange(192, dtype=np.int32) * 7
    for rounds in (0, 3, 9):
        assert_same(*both(dev, phases, 3, 64, x, np.full(192, -1, np.int32), rounds))


@hal.kernel
def dot_rows(a: hal.Ptr[hal.f32], b: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], k: hal.i32, n: hal.i32):
    col = hal.global_id(0)
    row = hal.global_id(1)
    acc = hal.f32(0)
    for j in range(k):
        acc += a[row * k + j] * b[j * n + col % n]
    out[row * n + col % n] = acc


def test_interchanged_uniform_loop(dev: hal.Device) -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal(4 * 9).astype(np.float32)
    b = rng.standard_normal(9 * 32).astype(np.float32)
    assert_same(*both(dev, dot_rows, (2, 4), (16, 1), a, b, np.zeros(4 * 32, np.float32), 9, 32))


@hal.kernel
def strided(x: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32], scale: hal.i32, per: hal.i32):
    lid = hal.local_id(0)
    base = hal.group_id(0) * hal.local_size(0) * per
    for k in range(per):
        j = base + k * scale + lid
        out[hal.global_id(0) * per + k] = x[j % 1024] + hal.i32(j < 0)


@pytest.mark.parametrize("scale", [64, -64, 2**29, -(2**30), 2**31 - 1])
def test_index_arithmetic_is_exact_on_the_fast_path_and_where_it_would_wrap(dev: hal.Device, scale: int) -> None:
    """Small scales take the int64 fast path (nothing can wrap); large ones make k * scale wrap for
    this launch, so the launch-time check picks the exact (wrapping) code: both equal the interpreter."""
    x = np.arange(1024, dtype=np.int32) * 5 - 2000
    assert_same(*both(dev, strided, 3, 32, x, np.zeros(3 * 32 * 9, np.int32), scale, 9))


def test_divergent_barrier_is_a_compile_error_with_the_line(dev: hal.Device) -> None:
    @hal.kernel
    def bad(x: hal.Ptr[hal.f32]):
        if hal.local_id(0) < 3:
            hal.barrier()
        x[0] = 1.0

    with pytest.raises(hal.CompileError, match=r"test_compiler.py:\d+: barrier in divergent control flow"):
        dev.compile(bad)


# ----------------------------------------------------------------- atomics
@hal.kernel
def atomics(hist: hal.Ptr[hal.i32], fsum: hal.Ptr[hal.f32], mm: hal.Ptr[hal.i64], x: hal.Ptr[hal.i32],
            flags: hal.Ptr[hal.u32], n: hal.i32):
    i = hal.global_id(0)
    if i < n:
        v = x[i]
        hal.atomic_add(hist, v % 8, 1)
        hal.atomic_add(fsum, 0, hal.f32(0.5))
        hal.atomic_min(mm, 0, hal.i64(v))
        hal.atomic_max(mm, 1, hal.i64(v))
        old = hal.atomic_cas(flags, v % 4, hal.u32(0), hal.u32(i + 1))
        if old == hal.u32(0):
            hal.atomic_add(hist, 8, 1)
        hal.atomic_exchange(flags, 4, hal.u32(7))
    sh = hal.shared(hal.i32, 1)
    if hal.local_id(0) == 0:
        sh[0] = 0
    hal.barrier()
    hal.atomic_add(sh, 0, 1)
    hal.barrier()
    if hal.local_id(0) == 0:
        hal.atomic_add(hist, 9, sh[0])


def test_atomics_on_global_and_shared_memory(dev: hal.Device) -> None:
    n = 5000
    x = np.random.default_rng(4).integers(-10**6, 10**6, n).astype(np.int32)
    args = (np.zeros(10, np.int32), np.zeros(1, np.float32), np.array([2**40, -(2**40)], np.int64), x,
            np.zeros(5, np.uint32), n)
    got, want = both(dev, atomics, 40, 128, *args)
    np.testing.assert_array_equal(got[0], want[0])  # counts: exact whatever the order
    np.testing.assert_array_equal(got[1], want[1])  # n * 0.5 is exact in f32
    np.testing.assert_array_equal(got[2], want[2])
    assert got[4][4] == 7 and (got[4][:4] != 0).all()  # each slot won by exactly one thread
    assert got[0][8] == 4 and got[0][9] == 40 * 128


@hal.kernel
def float_minmax(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    hal.atomic_min(out, 0, x[i])
    hal.atomic_max(out, 1, x[i])


def test_atomic_float_min_max_propagate_nan(dev: hal.Device) -> None:
    x = np.arange(64, dtype=np.float32)
    got, want = both(dev, float_minmax, 2, 32, x, np.array([5.0, 5.0], np.float32))
    np.testing.assert_array_equal(got[1], [0.0, 63.0])
    x[17] = np.nan
    got, _ = both(dev, float_minmax, 2, 32, x, np.array([5.0, 5.0], np.float32))
    assert np.isnan(got[1]).all()


# ------------------------------------------------------------ checked mode
@hal.kernel
def off_by_one(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):
    i = hal.global_id(0)
    if i <= n:
        y[i] = x[i] * 2.0 if i < n or n > 100000 else x[0]


def test_checked_mode_faults_name_kernel_line_index_and_thread(dev: hal.Device,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from hal_cpu import _compiler

    monkeypatch.setenv("HAL_CHECK", "1")
    exe = _compiler.compile_kernel(off_by_one.ir)
    assert exe.checked
    x, y = dev.array(np.ones(1024, np.float32)), dev.zeros((1024,), np.float32)
    q = dev.default_queue
    q.impl.launch(exe, (5, 1, 1), (256, 1, 1), [x, y, 1024], None)
    with pytest.raises(hal.DeviceFault) as info:
        q.synchronize()
    msg = str(info.value)
    assert "kernel 'off_by_one' at" in msg and "test_compiler.py:" in msg
    assert "out-of-bounds store global buffer 'y': index 1024 is outside [0, 1024)" in msg
    assert "thread global (1024, 0, 0) (group (4, 0, 0), local (0, 0, 0))" in msg
    q.impl.launch(exe, (4, 1, 1), (256, 1, 1), [x, y, 1024], None)  # the device keeps working
    q.synchronize()
    np.testing.assert_array_equal(y.numpy(), 2.0)
    # a lazily evaluated side that would be out of bounds is never evaluated
    q.impl.launch(exe, (4, 1, 1), (256, 1, 1), [x, y, 1023], None)
    q.synchronize()


@hal.kernel
def zero_step(out: hal.Ptr[hal.i32], step: hal.i32):
    for k in range(0, 10, step):
        out[hal.global_id(0)] += k


def test_zero_range_step_is_a_device_fault(dev: hal.Device) -> None:
    out = dev.zeros((32,), np.int32)
    zero_step[1, 32](out, 0)
    with pytest.raises(hal.DeviceFault, match="range\\(\\) step is zero"):
        dev.default_queue.synchronize()
    zero_step[1, 32](out, 3)
    assert out.numpy()[0] == 0 + 3 + 6 + 9


# ------------------------------------------------------- differential (random)
_INT_OPS = ("add", "sub", "mul", "floordiv", "mod", "bitand", "bitor", "bitxor", "shl", "shr", "pow")
_FLOAT_OPS = ("add", "sub", "mul", "div", "floordiv", "mod")
_CMP = ("lt", "le", "eq", "ne", "gt", "ge")


def _expr(t: ScalarType, depth: int) -> st.SearchStrategy[ir.Expr]:
    leaves = [st.sampled_from([ir.Var("a", t), ir.Var("b", t)]),
              (st.integers(-40, 40) if t.is_int else st.sampled_from([0.5, -2.0, 3.0, 1e-3])).map(
                  lambda v: ir.Const(v, t))]
    if depth == 0:
        return st.one_of(*leaves)
    sub = _expr(t, depth - 1)
    ops = _INT_OPS if t.is_int else _FLOAT_OPS
    binary = st.builds(lambda op, x, y: ir.Binary(op, x, y, t), st.sampled_from(ops), sub, sub)
    call = st.builds(lambda f, x, y: ir.Call(f, (x, y), t), st.sampled_from(["min", "max"]), sub, sub)
    select = st.builds(lambda op, x, y, p, q: ir.Select(ir.Binary(op, x, y, BOOL), p, q, t),
                       st.sampled_from(_CMP), sub, sub, sub, sub)
    unary = st.builds(lambda x: ir.Unary("neg", x, t), sub)
    return st.one_of(*leaves, binary, call, select, unary)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ints=st.lists(_expr(I32, 3), min_size=8, max_size=8),
       floats=st.lists(_expr(F32, 3), min_size=8, max_size=8))
def test_random_expressions_match_the_interpreter(dev: hal.Device, ints: list[ir.Expr],
                                                  floats: list[ir.Expr]) -> None:
    """Many random expressions in one kernel (compiling dominates): ints exact, f32 exact too
    (no contraction, no fast-math: the same IEEE operations in the same order)."""
    i = ir.ThreadIndex("global_id", 0)
    body: list[ir.Stmt] = []
    for t, exprs, buf, src in ((I32, ints, "oi", "xi"), (F32, floats, "of", "xf")):
        body.append(ir.Assign("a" + t.value, ir.Load(src, "global", i, t), 1))
        body.append(ir.Assign("b" + t.value, ir.Load(src, "global", ir.Binary("sub", ir.Const(63, I32), i, I32),
                                                      t), 1))
        for j, e in enumerate(exprs):
            e = _rename(e, t)
            idx = ir.Binary("add", ir.Binary("mul", i, ir.Const(len(exprs), I32), I32), ir.Const(j, I32), I32)
            body.append(ir.Store(buf, "global", idx, e, 2 + j))
    kernel = ir.Kernel("rand", (ir.Param("xi", I32, True), ir.Param("xf", F32, True), ir.Param("oi", I32, True),
                                ir.Param("of", F32, True)),
                       (("ai32", I32), ("bi32", I32), ("af32", F32), ("bf32", F32)), (), tuple(body), "rand.py", 1)
    rng = np.random.default_rng(len(body))
    xi = rng.integers(-2**31, 2**31, 64, dtype=np.int64).astype(np.int32)
    xi[:16] = rng.integers(-9, 9, 16)
    xf = rng.standard_normal(64).astype(np.float32) * 10
    xf[:4] = [0.0, -0.0, np.inf, np.nan]
    got, want = both(dev, kernel, 2, 32, xi, xf, np.zeros(64 * 8, np.int32), np.zeros(64 * 8, np.float32))
    np.testing.assert_array_equal(got[2], want[2])
    np.testing.assert_array_equal(got[3], want[3])


def _index_expr(depth: int) -> st.SearchStrategy[ir.Expr]:
    """i32 index arithmetic over thread indices, two scalar parameters and constants."""
    leaves = st.one_of(
        st.sampled_from([ir.ThreadIndex(k, 0) for k in ("global_id", "local_id", "group_id", "local_size")]
                        + [ir.Var("p", I32), ir.Var("q", I32), ir.Var("k", I32)]),
        st.sampled_from([0, 1, -3, 7, 64, 2**20, 2**31 - 1, -(2**31)]).map(lambda v: ir.Const(v, I32)))
    if depth == 0:
        return leaves
    sub = _index_expr(depth - 1)
    const = st.integers(1, 70).map(lambda v: ir.Const(v, I32))
    return st.one_of(
        leaves,
        st.builds(lambda op, x, y: ir.Binary(op, x, y, I32), st.sampled_from(["add", "sub", "mul"]), sub, sub),
        st.builds(lambda op, x, c: ir.Binary(op, x, c, I32),
                  st.sampled_from(["floordiv", "mod", "bitand", "shr", "shl"]), sub, const),
        st.builds(lambda f, x, y: ir.Call(f, (x, y), I32), st.sampled_from(["min", "max"]), sub, sub),
        st.builds(lambda x: ir.Unary("neg", x, I32), sub),
        st.builds(lambda x, y, a, b: ir.Select(ir.Binary("lt", x, y, BOOL), a, b, I32), sub, sub, sub, sub),
        st.builds(lambda x: ir.Cast(ir.Binary("mul", ir.Cast(x, I64), ir.Const(3, I64), I64), I32), sub))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs=st.lists(_index_expr(3), min_size=4, max_size=4),
       params=st.lists(st.sampled_from([0, 1, -5, 100, 2**16, 2**30, -(2**31), 2**31 - 1]), min_size=2,
                       max_size=2))
def test_random_index_arithmetic_matches_the_interpreter(dev: hal.Device, exprs: list[ir.Expr],
                                                         params: list[int]) -> None:
    """Random index arithmetic (through a variable, a loop variable and directly in the index), for
    launches where it fits and where it wraps: the fast path must never change a value."""
    gid = ir.ThreadIndex("global_id", 0)
    body: list[ir.Stmt] = []
    stores: list[ir.Stmt] = []
    for j, e in enumerate(exprs):
        slot = ir.Binary("add", ir.Binary("mul", gid, ir.Const(8, I32), I32), ir.Const(2 * j, I32), I32)
        masked = ir.Binary("bitand", e, ir.Const(63, I32), I32)
        stores.append(ir.Store("out", "global", slot, ir.Load("x", "global", masked, I32), 3))
        stores.append(ir.Store("out", "global", ir.Binary("add", slot, ir.Const(1, I32), I32), e, 3))
    body.append(ir.For("k", ir.Var("p", I32), ir.Binary("add", ir.Var("p", I32), ir.Const(2, I32), I32),
                       ir.Const(1, I32), tuple(stores), 2))
    kernel = ir.Kernel("rand_index", (ir.Param("x", I32, True), ir.Param("out", I32, True), ir.Param("p", I32, False),
                                      ir.Param("q", I32, False)), (("k", I32),), (), tuple(body), "rand.py", 1)
    x = np.arange(64, dtype=np.int32) * 7 - 100
    for p, q in ((3, 5), tuple(params)):
        assert_same(*both(dev, kernel, 2, 16, x, np.zeros(32 * 8, np.int32), p, q))


def _rename(e: ir.Expr, t: ScalarType) -> ir.Expr:
    """Point the random expression's variables a/b at the per-type variables of the kernel."""
    import dataclasses

    if isinstance(e, ir.Var):
        return ir.Var(e.name + t.value, e.type)
    kids = {f.name: getattr(e, f.name) for f in dataclasses.fields(e)}
    for name, value in kids.items():
        if isinstance(value, (ir.Binary, ir.Unary, ir.Var, ir.Select, ir.Call, ir.Const)):
            kids[name] = _rename(value, t)
        elif isinstance(value, tuple):
            kids[name] = tuple(_rename(v, t) for v in value)
    return type(e)(**kids)


# ------------------------------------------------------------------- cache
_CHILD = textwrap.dedent("""
    import sys, time
    sys.path[:0] = [{root!r}, {plugins!r}]
    import hal
    from hal_cpu import _compiler

    @hal.kernel
    def child_kernel(x: hal.Ptr[hal.f32], n: hal.i32):
        i = hal.global_id(0)
        if i < n:
            x[i] = x[i] * 3.0 + {tag}

    t = time.perf_counter()
    exe = _compiler.compile_kernel(child_kernel.ir)
    print(exe.cached, exe.key, time.perf_counter() - t)
""")


def _child(cache: Path, tag: str = "1.0", script: Path | None = None) -> subprocess.Popen[str]:
    script = script or cache.parent / f"{cache.name}-child-{tag}.py"  # kernels are read from a source file
    script.write_text(_CHILD.format(root=str(ROOT), plugins=str(ROOT / "plugins"), tag=tag))
    env = dict(os.environ, HAL_CACHE_DIR=str(cache))
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str]) -> tuple[bool, str]:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    cached, key, _ = out.split()
    return cached == "True", key


def test_cache_hit_in_a_fresh_process(tmp_path: Path) -> None:
    first = _result(_child(tmp_path))
    second = _result(_child(tmp_path))
    assert first == (False, first[1]) and second == (True, first[1])


def test_concurrent_compiles_from_two_processes_both_succeed(tmp_path: Path) -> None:
    procs = [_child(tmp_path, "2.0") for _ in range(3)]
    keys = {_result(p)[1] for p in procs}
    assert len(keys) == 1
    assert _result(_child(tmp_path, "2.0"))[0] is True
    assert not [p for p in (tmp_path / "cpu").iterdir() if p.name.startswith(".")]  # no temporaries left


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A cache holding one child's kernel: (cache, the child's script, the key); tests damage copies."""
    base = tmp_path_factory.mktemp("built")
    script = base / "child.py"
    _, key = _result(_child(base / "cache", "4.0", script))
    return base / "cache", script, key


@pytest.mark.parametrize("damage", ["truncate", "flip", "tag"])
def test_a_corrupt_cache_entry_is_rebuilt(tmp_path: Path, built: tuple[Path, Path, str], damage: str) -> None:
    """A damaged entry is a miss in a fresh process (tests/cpu/test_cache.py has more kinds of damage)."""
    import shutil

    cache, script, key = built
    shutil.copytree(cache, tmp_path / "cache")  # with its secret: the copy's entries are valid
    tmp_path = tmp_path / "cache"
    so = tmp_path / "cpu" / f"{key}.so"
    tag = so.with_name(so.name + ".tag")
    data = bytearray(so.read_bytes())
    if damage == "truncate":
        so.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
        so.write_bytes(data)
    else:
        tag.write_text("0" * 64)
    assert _result(_child(tmp_path, "4.0", script)) == (False, key)
    assert _result(_child(tmp_path, "4.0", script)) == (True, key)


def test_checked_mode_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from hal_cpu import _compiler

    plain = _compiler.cache_key(off_by_one.ir, False)
    assert plain != _compiler.cache_key(off_by_one.ir, True)
    monkeypatch.setenv("HAL_CACHE_DIR", "/nonexistent/x")
    assert _compiler.cache_dir() == Path("/nonexistent/x/cpu")
    monkeypatch.delenv("HAL_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert _compiler.cache_dir() == Path("/xdg/hal/cpu")


def test_pack_follows_the_abi() -> None:
    from hal_cpu._compiler import make_packer

    class Buf:
        address = 4096

    class Arr:
        buffer, offset, size = Buf(), 64, 10

    params = (ir.Param("p", F32, True), ir.Param("a", F32, False), ir.Param("b", I32, False),
              ir.Param("c", F64, False), ir.Param("d", U32, False), ir.Param("e", BOOL, False))
    pack, nslots = make_packer(params)
    slots = np.frombuffer(pack([Arr(), 1.5, -2, 0.25, 2**32 - 1, True]), np.uint64)
    assert nslots == 7 and len(slots) == 7
    assert slots[0] == 4160 and slots[1] == 10
    assert np.uint32(slots[2] & 0xFFFFFFFF).view(np.float32) == 1.5
    assert slots[3].view(np.int64) == -2 and slots[4].view(np.float64) == 0.25
    assert slots[5] == 2**32 - 1 and slots[6] == 1


# ----------------------------------------------------------------- loaded objects
def mapped(fragment: str) -> bool:
    """Whether this process maps a file whose path contains ``fragment``."""
    with open("/proc/self/maps") as maps:
        return any(fragment in line for line in maps)


DISTINCT = 10


@pytest.fixture(scope="module")
def distinct_kernels(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A module of DISTINCT kernels k0, k1, ...: ki stores i (kernels are parsed from their source file)."""
    path = tmp_path_factory.mktemp("distinct") / "distinct_kernels.py"
    path.write_text("import hal\n" + "".join(
        f"\n\n@hal.kernel\ndef k{i}(x: hal.Ptr[hal.f32]):\n    x[hal.global_id(0)] = {i}.0\n" for i in range(DISTINCT)))
    import importlib.util

    spec = importlib.util.spec_from_file_location("distinct_kernels", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps")
def test_a_kernel_object_is_unloaded_once_no_kernel_or_launch_uses_it(distinct_kernels: Any, kernels: Any) -> None:
    """50 kernels loaded and dropped in turn: none stays loaded. A launch still queued keeps its
    kernel loaded after the program dropped the kernel."""
    import struct

    from hal_cpu import _compiler
    from hal_cpu._device import CpuDevice

    from .testkernels import KernelExe

    class Arg:
        def __init__(self, buffer: Any, size: int) -> None:
            self.buffer, self.offset, self.size = buffer, 0, size

    device = CpuDevice()
    q = device.create_queue()
    out, slot = device.allocate(4 * 64), device.allocate(8)
    sleep = KernelExe(kernels.k_sleep_store, lambda a: struct.pack("<qqqq", a[0].address, 1, a[1], 0))
    keys = set()
    for n in range(5 * DISTINCT):
        i = n % DISTINCT
        exe = _compiler.compile_kernel(getattr(distinct_kernels, f"k{i}").ir)
        shared = _compiler.compile_kernel(getattr(distinct_kernels, f"k{i}").ir)
        assert shared.library is exe.library  # one loaded object per key
        keys.add(exe.key)
        key = exe.key[:16]  # in the object's path, whether built now (a private name) or from the cache
        q.launch(sleep, (1, 1, 1), (1, 1, 1), [slot, 30 if n < 2 else 0], None)
        q.launch(exe, (1, 1, 1), (64, 1, 1), [Arg(out, 64)], None)
        del exe, shared
        assert mapped(key)  # the queued launch keeps it
        q.synchronize()
        assert not mapped(key)
        assert (out.host_array().view(np.float32) == i).all()
    assert not keys & set(_compiler._loaded)
    q.close()
    device.free(out)
    device.free(slot)
