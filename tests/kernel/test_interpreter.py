"""The reference interpreter against Python/numpy semantics, on hand-built IR."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import hal
from hal._errors import DeviceFault, InvalidArgumentError
from hal.kernel import ir
from hal.kernel.interpreter import linear_thread_id, run
from hal.kernel.types import ScalarType

I32, I64, U32, F32, F64, BOOL = (ScalarType.I32, ScalarType.I64, ScalarType.U32,
                                 ScalarType.F32, ScalarType.F64, ScalarType.BOOL)
CMP = {"eq", "ne", "lt", "le", "gt", "ge"}
INTS = (I32, I64, U32)


# ----------------------------------------------------------------- IR helpers
def C(value: Any, t: ScalarType = I32) -> ir.Const:
    return ir.Const(value, t)


def V(name: str, t: ScalarType = I32) -> ir.Var:
    return ir.Var(name, t)


def B(op: str, lhs: ir.Expr, rhs: ir.Expr, t: ScalarType | None = None) -> ir.Binary:
    return ir.Binary(op, lhs, rhs, t or (BOOL if op in CMP else lhs.type))


def GID(dim: int = 0) -> ir.ThreadIndex:
    return ir.ThreadIndex("global_id", dim)


def LD(buf: str, index: ir.Expr, t: ScalarType, space: str = "global") -> ir.Load:
    return ir.Load(buf, space, index, t)  # type: ignore[arg-type]


def ST(buf: str, index: ir.Expr, value: ir.Expr, line: int = 10, space: str = "global") -> ir.Store:
    return ir.Store(buf, space, index, value, line)  # type: ignore[arg-type]


def SET(name: str, value: ir.Expr, line: int = 10) -> ir.Assign:
    return ir.Assign(name, value, line)


def P(name: str, t: ScalarType, pointer: bool = True) -> ir.Param:
    return ir.Param(name, t, pointer)


def K(params: list[ir.Param], body: list[ir.Stmt], variables: dict[str, ScalarType] | None = None,
      arrays: tuple[ir.ArrayDecl, ...] = (), name: str = "k") -> ir.Kernel:
    return ir.Kernel(name, tuple(params), tuple((variables or {}).items()), arrays, tuple(body),
                     source_file="kern.py", source_line=1)


IV = V("i")
SET_I = SET("i", GID())


def launch1(kernel: ir.Kernel, n: int, args: list[Any], block: int = 32, **kw: Any) -> None:
    """A 1-D launch of exactly ``n`` threads (the block shrinks to a divisor of n)."""
    block = math.gcd(n, block)
    run(kernel, (n // block, 1, 1), (block, 1, 1), args, **kw)


# --------------------------------------------------------------- arithmetic
def _wrap(v: int, t: ScalarType) -> int:
    bits = t.bits
    v &= (1 << bits) - 1
    return v - (1 << bits) if t.is_signed and v >= 1 << (bits - 1) else v


def _int_ref(op: str, a: int, b: int, t: ScalarType) -> int | bool:
    bits = t.bits
    if op in CMP:
        return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
    if op in ("floordiv", "mod"):
        return 0 if b == 0 else _wrap(a // b if op == "floordiv" else a % b, t)
    if op == "shl":
        return _wrap(a << (b % bits), t)
    if op == "shr":
        return _wrap(a >> (b % bits), t)
    if op == "pow":
        if b < 0:
            return 1 if a == 1 else (-1) ** (b % 2) if a == -1 else 0
        return _wrap(pow(a, b, 1 << bits), t)
    return _wrap({"add": a + b, "sub": a - b, "mul": a * b, "bitand": a & b, "bitor": a | b,
                  "bitxor": a ^ b}[op], t)


def _int_samples(t: ScalarType, rng: np.random.Generator) -> np.ndarray:
    info = np.iinfo(t.np_dtype)
    special = [info.min, info.max, 0, 1, 2, 3, 7, 31, 32, 33, 63, 64]
    if t.is_signed:
        special += [-1, -2, -7, -31, -33, info.min + 1]
    rand = rng.integers(info.min, info.max, 40, dtype=t.np_dtype, endpoint=True)
    small = rng.integers(-9 if t.is_signed else 0, 10, 40).astype(t.np_dtype)
    return np.concatenate([np.array(special, t.np_dtype), rand, small])


def _binary_kernel(op: str, t: ScalarType) -> ir.Kernel:
    rt = BOOL if op in CMP else t
    body = [SET_I, ST("out", IV, B(op, LD("a", IV, t), LD("b", IV, t), rt))]
    return K([P("a", t), P("b", t), P("out", rt)], body, {"i": I32})


@pytest.mark.parametrize("t", INTS, ids=lambda t: t.value)
def test_integer_binary_ops_wrap_floor_and_zero_division(t: ScalarType) -> None:
    rng = np.random.default_rng(1)
    s = _int_samples(t, rng)
    a, b = np.repeat(s, len(s)), np.tile(s, len(s))
    pairs = list(zip(a.tolist(), b.tolist(), strict=True))
    for op in ("add", "sub", "mul", "floordiv", "mod", "bitand", "bitor", "bitxor", "shl", "shr", *CMP):
        out = np.zeros(len(a), BOOL.np_dtype if op in CMP else t.np_dtype)
        launch1(_binary_kernel(op, t), len(a), [a, b, out], block=256)
        want = np.array([_int_ref(op, x, y, t) for x, y in pairs], out.dtype)
        bad = np.flatnonzero(out != want)
        assert not len(bad), f"{op} {t.value}: {a[bad[0]]} {op} {b[bad[0]]} gave {out[bad[0]]}, want {want[bad[0]]}"


@pytest.mark.parametrize("t", INTS, ids=lambda t: t.value)
def test_integer_pow_wraps_and_truncates_negative_exponents(t: ScalarType) -> None:
    base = np.array([0, 1, 2, 3, 7, 100, 12345] + ([-1, -2, -3] if t.is_signed else []), t.np_dtype)
    exps = np.array([0, 1, 2, 5, 31, 40, 63] + ([-1, -2, -3] if t.is_signed else []), t.np_dtype)
    a, b = np.repeat(base, len(exps)), np.tile(exps, len(base))
    out = np.zeros(len(a), t.np_dtype)
    launch1(_binary_kernel("pow", t), len(a), [a, b, out])
    assert out.tolist() == [_int_ref("pow", x, y, t) for x, y in zip(a.tolist(), b.tolist(), strict=True)]


@pytest.mark.parametrize("t", (F32, F64), ids=lambda t: t.value)
def test_float_binary_ops_match_numpy_in_their_type(t: ScalarType) -> None:
    rng = np.random.default_rng(2)
    s = np.concatenate([[0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 7.0, np.inf, -np.inf, np.nan, 1e-30, 3e38],
                        rng.normal(size=20) * 10]).astype(t.np_dtype)
    a, b = np.repeat(s, len(s)), np.tile(s, len(s))
    ref = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "pow": np.power,
           "floordiv": np.floor_divide, "mod": np.remainder, "eq": np.equal, "ne": np.not_equal,
           "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}
    with np.errstate(all="ignore"):
        for op, fn in ref.items():
            out = np.zeros(len(a), BOOL.np_dtype if op in CMP else t.np_dtype)
            launch1(_binary_kernel(op, t), len(a), [a, b, out], block=128)
            want = fn(a, b)
            assert want.dtype == out.dtype
            np.testing.assert_array_equal(out, want, err_msg=op)
    # Python's floor semantics for negative operands
    out = np.zeros(4, t.np_dtype)
    launch1(_binary_kernel("mod", t), 4, [np.array([-7, 7, -7, 7], t.np_dtype),
                                         np.array([2, -2, -2, 2], t.np_dtype), out])
    assert out.tolist() == [-7.0 % 2, 7.0 % -2, -7.0 % -2, 7.0 % 2]


def _unary_kernel(expr: Any, t: ScalarType, rt: ScalarType) -> ir.Kernel:
    x = LD("a", IV, t)
    return K([P("a", t), P("out", rt)], [SET_I, ST("out", IV, expr(x))], {"i": I32})


@pytest.mark.parametrize("t", INTS, ids=lambda t: t.value)
def test_integer_unary_ops_and_abs_wrap_like_c(t: ScalarType) -> None:
    a = _int_samples(t, np.random.default_rng(3))
    for name, expr, ref in [
        ("neg", lambda x: ir.Unary("neg", x, t), lambda v: _wrap(-v, t)),
        ("invert", lambda x: ir.Unary("invert", x, t), lambda v: _wrap(~v, t)),
        ("abs", lambda x: ir.Call("abs", (x,), t), lambda v: _wrap(abs(v), t)),
        ("floor", lambda x: ir.Call("floor", (x,), t), lambda v: v),
        ("min", lambda x: ir.Call("min", (x, C(5, t)), t), lambda v: min(v, 5)),
        ("max", lambda x: ir.Call("max", (x, C(5, t)), t), lambda v: max(v, 5)),
        ("fma", lambda x: ir.Call("fma", (x, x, C(1, t)), t), lambda v: _wrap(v * v + 1, t)),
        ("not", lambda x: ir.Unary("not", B("ne", x, C(0, t)), BOOL), lambda v: v == 0),
    ]:
        out = np.zeros(len(a), BOOL.np_dtype if name == "not" else t.np_dtype)
        launch1(_unary_kernel(expr, t, BOOL if name == "not" else t), len(a), [a, out])
        assert out.tolist() == [ref(v) for v in a.tolist()], name


@pytest.mark.parametrize("t", (F32, F64), ids=lambda t: t.value)
def test_math_functions_stay_in_their_float_type(t: ScalarType) -> None:
    a = np.array([0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.0, 10.0, -3.7, np.nan, np.inf, -np.inf], t.np_dtype)
    with np.errstate(all="ignore"):
        for name in ("sqrt", "exp", "log", "sin", "cos", "tanh", "abs", "floor", "ceil"):
            out = np.zeros(len(a), t.np_dtype)
            launch1(_unary_kernel(lambda x, name=name: ir.Call(name, (x,), t), t, t), len(a), [a, out])
            np.testing.assert_array_equal(out, getattr(np, "absolute" if name == "abs" else name)(a), err_msg=name)
        for name, fn in (("min", np.minimum), ("max", np.maximum), ("pow", np.power)):
            out = np.zeros(len(a), t.np_dtype)
            k = _unary_kernel(lambda x, name=name: ir.Call(name, (x, C(1.0, t)), t), t, t)
            launch1(k, len(a), [a, out])
            np.testing.assert_array_equal(out, fn(a, t.np_dtype.type(1.0)), err_msg=name)
    out = np.zeros(len(a), t.np_dtype)
    launch1(_unary_kernel(lambda x: ir.Unary("neg", x, t), t, t), len(a), [a, out])
    np.testing.assert_array_equal(out, -a)
    assert np.signbit(out[0])


def _fma_ref(a: float, b: float, c: float, t: ScalarType) -> float:
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if t == F64:
        return float(exact)
    # correctly rounded to f32: nearest of the two f32 neighbours of the f64 nearest, ties to even
    approx = np.float32(float(exact))
    cands = [approx, np.nextafter(approx, np.float32(np.inf)), np.nextafter(approx, np.float32(-np.inf))]
    return float(min(cands, key=lambda v: (abs(Fraction(float(v)) - exact), int(np.float32(v).view(np.uint32)) & 1)))


@pytest.mark.parametrize("t", (F32, F64), ids=lambda t: t.value)
def test_fma_is_rounded_once(t: ScalarType) -> None:
    rng = np.random.default_rng(4)
    dt = t.np_dtype
    eps = float(np.finfo(dt).eps)
    # cases where a*b+c rounded twice differs from the fused result, plus random ones
    a = [1 + eps, 1 + 2 * eps, 3.0, 0.1, 1e300 if t == F64 else 1e30, 1e-200 if t == F64 else 1e-30]
    b = [1 - eps, 1 - eps, 1 / 3, 10.0, 2.5e8 if t == F64 else 10.0, 1e-120 if t == F64 else 1e-15]
    c = [-1.0, -1.0, -1.0, -1.0, -1.5e308 if t == F64 else -1e31, 1e-320 if t == F64 else 1e-44]
    r = rng.normal(size=(3, 300))
    av, bv, cv = (np.concatenate([np.array(x, dt), y.astype(dt)]) for x, y in zip((a, b, c), r, strict=True))
    cv[len(a):] = -(av[len(a):].astype(np.float64) * bv[len(a):]).astype(dt)  # near-cancellation
    out = np.zeros(len(av), dt)
    k = K([P("a", t), P("b", t), P("c", t), P("out", t)],
          [SET_I, ST("out", IV, ir.Call("fma", (LD("a", IV, t), LD("b", IV, t), LD("c", IV, t)), t))], {"i": I32})
    launch1(k, len(av), [av, bv, cv, out])
    want = [_fma_ref(float(x), float(y), float(z), t) for x, y, z in zip(av, bv, cv, strict=True)]
    assert out.tolist() == [float(dt.type(w)) for w in want]
    assert out[0] != dt.type(av[0] * bv[0] + cv[0])  # really fused


def test_casts_follow_astype_and_bool_is_nonzero() -> None:
    a = np.array([-2.7, -0.5, 0.0, 0.5, 2.7, 3e9, np.nan], np.float64)
    for t in (I32, I64, F32, BOOL):
        out = np.zeros(len(a), t.np_dtype)
        with np.errstate(all="ignore"):
            launch1(_unary_kernel(lambda x, t=t: ir.Cast(x, t), F64, t), len(a), [a, out])
            want = a.astype(t.np_dtype)
        np.testing.assert_array_equal(out[:6], want[:6])
    u = np.zeros(1, np.uint32)
    launch1(_unary_kernel(lambda x: ir.Cast(x, U32), I32, U32), 1, [np.array([-1], np.int32), u])
    assert u[0] == 2**32 - 1


def test_constants_wrap_into_their_type_and_scalar_args_are_typed() -> None:
    out = np.zeros(2, np.uint32)
    k = K([P("out", U32), P("s", U32, False)], [ST("out", C(0), C(-1, U32)), ST("out", C(1), B("add", V("s", U32), C(1, U32)))])
    run(k, (1, 1, 1), (1, 1, 1), [out, 2**32 - 1])
    assert out.tolist() == [2**32 - 1, 0]


# ------------------------------------------------------------ laziness
def test_select_evaluates_only_the_chosen_side() -> None:
    n = 100
    x = np.arange(n, dtype=np.float32)
    out = np.zeros(n + 28, np.float32)
    chosen = ir.Select(B("lt", IV, V("n")), LD("x", IV, F32), LD("x", B("sub", IV, V("n")), F32), F32)
    k = K([P("x", F32), P("out", F32), P("n", I32, False)], [SET_I, ST("out", IV, chosen)], {"i": I32})
    launch1(k, n + 28, [x, out, n])  # the untaken side would be out of bounds for every thread
    np.testing.assert_array_equal(out, np.concatenate([x, x[:28]]))
    with pytest.raises(DeviceFault, match="index 100 is outside"):  # the taken side is checked
        launch1(k, n + 28, [x, out, n + 1])


def test_and_or_short_circuit() -> None:
    n = 50
    x = np.arange(n, dtype=np.int32) - 10
    out = np.zeros(64, np.int32)
    guard = B("and", B("lt", IV, V("n")), B("gt", LD("x", IV, I32), C(0)))
    either = B("or", B("ge", IV, V("n")), B("lt", LD("x", IV, I32), C(0)))
    body = [SET_I, ST("out", IV, ir.Cast(guard, I32)), ir.If(either, (ST("out", IV, C(7)),), (), 11)]
    k = K([P("x", I32), P("out", I32), P("n", I32, False)], body, {"i": I32})
    launch1(k, 64, [x, out, n])
    want = np.where(np.arange(64) < n, (np.arange(64) - 10 > 0).astype(np.int32), 0)
    want[(np.arange(64) >= n) | (np.arange(64) - 10 < 0)] = 7
    np.testing.assert_array_equal(out, want)


# ------------------------------------------------------------ control flow
def test_nested_loops_with_break_continue_and_return() -> None:
    # for j in range(i): if j % 3 == 0: continue; for k in range(j): acc += k; if acc > 40: break
    #                    if j > 12: break
    # if i % 5 == 4: return;  out[i] = acc * 100 + j
    j, kk, acc = V("j"), V("kk"), V("acc")
    inner = ir.For("kk", C(0), j, C(1), (SET("acc", B("add", acc, kk)),
                                         ir.If(B("gt", acc, C(40)), (ir.Break(12),), (), 12)), 11)
    outer = ir.For("j", C(0), IV, C(1), (
        ir.If(B("eq", B("mod", j, C(3)), C(0)), (ir.Continue(13),), (), 13),
        inner,
        ir.If(B("gt", j, C(12)), (ir.Break(14),), (), 14)), 10)
    body = [SET_I, SET("acc", C(0)), SET("j", C(-1)), outer,
            ir.If(B("eq", B("mod", IV, C(5)), C(4)), (ir.Return(15),), (), 15),
            ST("out", IV, B("add", B("mul", acc, C(100)), j))]
    k = K([P("out", I32)], body, {"i": I32, "j": I32, "kk": I32, "acc": I32})
    n = 40
    out = np.full(n, -5, np.int32)
    launch1(k, n, [out], block=8)
    for i in range(n):
        a, jj = 0, -1
        for jj in range(i):
            if jj % 3 == 0:
                continue
            for q in range(jj):
                a += q
                if a > 40:
                    break
            if jj > 12:
                break
        assert out[i] == (-5 if i % 5 == 4 else a * 100 + jj), i


def test_range_with_negative_and_per_thread_steps() -> None:
    # total = sum(range(i, -i - 1, -(i % 4) - 1)); last = the last value (var keeps it; empty range keeps -99)
    j, tot = V("j"), V("tot")
    loop = ir.For("j", IV, B("sub", ir.Unary("neg", IV, I32), C(1)), B("sub", ir.Unary("neg", B("mod", IV, C(4)), I32), C(1)),
                  (SET("tot", B("add", tot, j)),), 10)
    empty = ir.For("j", IV, C(0), C(1), (SET("tot", C(12345)),), 11)
    body = [SET_I, SET("tot", C(0)), SET("j", C(-99)), loop, ST("out", IV, tot), empty, ST("last", IV, j)]
    k = K([P("out", I32), P("last", I32)], body, {"i": I32, "j": I32, "tot": I32})
    n = 30
    out, last = np.zeros(n, np.int32), np.zeros(n, np.int32)
    launch1(k, n, [out, last], block=16)
    for i in range(n):
        r = range(i, -i - 1, -(i % 4) - 1)
        assert out[i] == sum(r)
        assert last[i] == r[-1]


def test_range_trip_count_does_not_overflow() -> None:
    cnt = V("cnt")
    loop = ir.For("j", C(2**31 - 5), C(2**31 - 1), C(3), (SET("cnt", B("add", cnt, C(1))),), 10)
    k = K([P("out", I32)], [SET("cnt", C(0)), loop, ST("out", C(0), cnt), ST("out", C(1), V("j"))],
          {"cnt": I32, "j": I32})
    out = np.zeros(2, np.int32)
    run(k, (1, 1, 1), (1, 1, 1), [out])
    assert out.tolist() == [2, 2**31 - 2]


def test_zero_step_is_a_fault_naming_the_thread() -> None:
    loop = ir.For("j", C(0), C(10), B("mod", IV, C(3)), (), 17)
    k = K([P("out", I32)], [SET_I, ir.If(B("gt", IV, C(0)), (loop,), (), 16)], {"i": I32, "j": I32})
    with pytest.raises(DeviceFault, match=r"kern.py:17: range\(\) step is zero for thread global \(3, 0, 0\)"):
        launch1(k, 8, [np.zeros(1, np.int32)], block=4)


def test_while_loop_with_per_thread_trip_counts() -> None:
    # collatz steps of i + 1
    x, steps = V("x"), V("steps")
    body = [SET_I, SET("x", B("add", IV, C(1))), SET("steps", C(0)),
            ir.While(B("ne", x, C(1)), (
                ir.If(B("eq", B("mod", x, C(2)), C(0)), (SET("x", B("floordiv", x, C(2))),),
                      (SET("x", B("add", B("mul", x, C(3)), C(1))),), 11),
                SET("steps", B("add", steps, C(1)))), 10),
            ST("out", IV, steps)]
    k = K([P("out", I32)], body, {"i": I32, "x": I32, "steps": I32})
    n = 200
    out = np.zeros(n, np.int32)
    launch1(k, n, [out], block=64)

    def collatz(v: int) -> int:
        s = 0
        while v != 1:
            v = v // 2 if v % 2 == 0 else 3 * v + 1
            s += 1
        return s
    assert out.tolist() == [collatz(i + 1) for i in range(n)]


@pytest.mark.parametrize("grid,block", [((3, 2, 1), (4, 2, 1)), ((2, 3, 2), (2, 2, 3))])
def test_thread_indices_in_2d_and_3d_launches(grid: tuple[int, int, int], block: tuple[int, int, int]) -> None:
    kinds = ("global_id", "local_id", "group_id", "local_size", "num_groups", "global_size")
    gsize = [g * b for g, b in zip(grid, block, strict=True)]
    lin = B("add", GID(0), B("mul", C(gsize[0]), B("add", GID(1), B("mul", C(gsize[1]), GID(2)))))
    body = [SET("i", lin)] + [ST("out", B("add", B("mul", IV, C(18)), C(6 * d + kinds.index(kind))),
                                 ir.ThreadIndex(kind, d)) for kind in kinds for d in range(3)]
    total = math.prod(gsize)
    out = np.full(total * 18, -1, np.int32)
    run(K([P("out", I32)], body, {"i": I32}), grid, block, [out])
    got = out.reshape(total, 3, 6)
    for gz in range(gsize[2]):
        for gy in range(gsize[1]):
            for gx in range(gsize[0]):
                g = (gx, gy, gz)
                row = got[gx + gsize[0] * (gy + gsize[1] * gz)]
                for d in range(3):
                    assert row[d].tolist() == [g[d], g[d] % block[d], g[d] // block[d], block[d], grid[d], gsize[d]]


# ------------------------------------------------------------- memory
def test_shared_memory_tree_reduction_with_barriers() -> None:
    lid, s = ir.ThreadIndex("local_id", 0), V("s")
    sh = ir.ArrayDecl("sh", F32, 128, "shared")
    body = [ST("sh", lid, LD("x", GID(), F32), space="shared"), ir.Barrier(11), SET("s", C(64)),
            ir.While(B("gt", s, C(0)), (
                ir.If(B("lt", lid, s), (ST("sh", lid, B("add", LD("sh", lid, F32, "shared"),
                                                        LD("sh", B("add", lid, s), F32, "shared")), space="shared"),), (), 13),
                ir.Barrier(14), SET("s", B("floordiv", s, C(2)))), 12),
            ir.If(B("eq", lid, C(0)), (ST("out", ir.ThreadIndex("group_id", 0), LD("sh", C(0), F32, "shared")),), (), 15)]
    k = K([P("x", F32), P("out", F32)], body, {"s": I32}, (sh,))
    x = np.random.default_rng(5).random(128 * 40).astype(np.float32)
    out = np.zeros(40, np.float32)
    run(k, (40, 1, 1), (128, 1, 1), [x, out], chunk_threads=1000)
    want = x.reshape(40, 128).copy()
    w = 64
    while w:
        want[:, :w] += want[:, w:2 * w]
        w //= 2
    np.testing.assert_array_equal(out, want[:, 0])


def test_barrier_divergence_is_a_fault() -> None:
    lid = ir.ThreadIndex("local_id", 0)
    body = [ir.If(B("lt", lid, C(5)), (ir.Return(9),), (), 9),
            ir.If(B("lt", ir.ThreadIndex("group_id", 0), C(2)), (ir.Barrier(11),), (), 10)]
    k = K([P("out", I32)], body)
    with pytest.raises(DeviceFault, match=r"kernel 'k' at kern.py:11: barrier divergence: 3 of 8 threads .*"
                                          r"thread global \(0, 0, 0\) \(group \(0, 0, 0\), local \(0, 0, 0\)\) did not"):
        run(k, (4, 1, 1), (8, 1, 1), [np.zeros(1, np.int32)])
    # a barrier that no thread of a group reaches, or that all reach, is fine
    ok = K([P("out", I32)], [ir.If(B("lt", ir.ThreadIndex("group_id", 0), C(2)), (ir.Barrier(11),), (), 10)])
    run(ok, (4, 1, 1), (8, 1, 1), [np.zeros(1, np.int32)])


def test_local_arrays_are_per_thread() -> None:
    arr, j = ir.ArrayDecl("tmp", I32, 8, "local"), V("j")
    body = [SET_I,
            ir.For("j", C(0), C(8), C(1), (ST("tmp", j, B("mul", IV, j), space="local"),), 10),
            SET("acc", C(0)),
            ir.For("j", C(7), C(-1), C(-1), (SET("acc", B("add", B("mul", V("acc"), C(3)), LD("tmp", j, I32, "local"))),), 11),
            ST("out", IV, V("acc"))]
    k = K([P("out", I32)], body, {"i": I32, "j": I32, "acc": I32}, (arr,))
    out = np.zeros(96, np.int32)
    launch1(k, 96, [out], block=32, chunk_threads=64)
    want = [sum(i * j * 3 ** j for j in range(8)) for i in range(96)]
    assert out.tolist() == want


def test_out_of_bounds_faults_name_everything() -> None:
    k = K([P("x", F32), P("out", F32)], [SET_I, ST("out", IV, LD("x", B("sub", IV, C(3)), F32), line=42)], {"i": I32})
    with pytest.raises(DeviceFault) as exc:
        run(k, (2, 1, 1), (4, 1, 1), [np.zeros(8, np.float32), np.zeros(8, np.float32)])
    msg = str(exc.value)
    for part in ("kernel 'k'", "kern.py:42", "load from global buffer 'x'", "index -3", "[0, 8)",
                 "thread global (0, 0, 0) (group (0, 0, 0), local (0, 0, 0))"):
        assert part in msg, (part, msg)
    out = np.zeros(5, np.float32)
    index = B("add", B("mul", ir.ThreadIndex("group_id", 0), C(3)), ir.ThreadIndex("local_id", 1))
    k2 = K([P("out", F32)], [ST("out", index, C(1.0, F32), line=7)])
    with pytest.raises(DeviceFault, match=r"kern.py:7: out-of-bounds store to global buffer 'out': index 5 is "
                                          r"outside \[0, 5\) for thread global \(2, 2, 0\) \(group \(1, 0, 0\), local \(0, 2, 0\)\)"):
        run(k2, (3, 1, 1), (2, 3, 1), [out])
    assert out.tolist() == [0.0] * 5  # the faulting store wrote nothing: the check comes first


def test_duplicate_stores_keep_the_last_thread_in_reference_order() -> None:
    out = np.zeros(4, np.int32)
    k = K([P("out", I32)], [SET_I, ST("out", B("mod", IV, C(4)), IV), ST("out", C(3), IV)], {"i": I32})
    launch1(k, 37, [out], block=8, chunk_threads=16)
    assert out.tolist() == [36, 33, 34, 36]
    assert linear_thread_id((1, 1, 0), (1, 0, 0), (2, 2, 1), (2, 3, 1)) == 3 * 6 + 1


def test_chunking_does_not_change_results() -> None:
    # a racy-looking but well-defined kernel: each thread reads its neighbour, all threads of a group sync
    lid = ir.ThreadIndex("local_id", 0)
    sh = ir.ArrayDecl("sh", I32, 16, "shared")
    body = [SET_I, ST("sh", lid, B("mul", IV, IV), space="shared"), ir.Barrier(10),
            ST("out", IV, B("add", LD("sh", B("mod", B("add", lid, C(1)), C(16)), I32, "shared"),
                           ir.ThreadIndex("group_id", 0)))]
    k = K([P("out", I32)], body, {"i": I32}, (sh,))
    outs = []
    for chunk in (1, 16, 100, 1 << 16):
        out = np.zeros(16 * 50, np.int32)
        run(k, (50, 1, 1), (16, 1, 1), [out], chunk_threads=chunk)
        outs.append(out)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    i = np.arange(800)
    np.testing.assert_array_equal(outs[0], ((i // 16) * 16 + (i + 1) % 16) ** 2 + i // 16)


# ------------------------------------------------------------- atomics
def _atomic_kernel(op: str, t: ScalarType, space: str = "global", nslots: int = 8) -> ir.Kernel:
    operands = (LD("v", IV, t), LD("w", IV, t)) if op == "cas" else (LD("v", IV, t),)
    arrays: tuple[ir.ArrayDecl, ...] = ()
    body: list[ir.Stmt] = [SET_I]
    if space == "shared":
        arrays = (ir.ArrayDecl("sh", t, nslots, "shared"),)
        row = B("add", B("mul", ir.ThreadIndex("group_id", 0), C(nslots)), ir.ThreadIndex("local_id", 0))
        body.append(ir.If(B("lt", ir.ThreadIndex("local_id", 0), C(nslots)),
                          (ST("sh", ir.ThreadIndex("local_id", 0), LD("mem", row, t), space="shared"),), (), 9))
        body.append(ir.Barrier(9))
    buf = "sh" if space == "shared" else "mem"
    body += [ir.AtomicRMW(op, buf, space, LD("addr", IV, I32), operands, "old", t, 10),  # type: ignore[arg-type]
             ST("olds", IV, V("old", t))]
    if space == "shared":
        body += [ir.Barrier(11), ir.If(B("lt", ir.ThreadIndex("local_id", 0), C(nslots)), (
            ST("mem", row, LD("sh", ir.ThreadIndex("local_id", 0), t, "shared")),), (), 12)]
    return K([P("mem", t), P("addr", I32), P("v", t), P("w", t), P("olds", t)], body, {"i": I32, "old": t}, arrays)


def _sequential_atomics(op: str, mem: list[Any], addr: list[int], v: list[Any], w: list[Any], dt: Any) -> list[Any]:
    olds = []
    for a, x, y in zip(addr, v, w, strict=True):
        cur = mem[a]
        olds.append(cur)
        with np.errstate(all="ignore"):
            if op == "add":
                mem[a] = dt.type(cur + x)
            elif op in ("min", "max"):
                mem[a] = (np.minimum if op == "min" else np.maximum)(cur, x)
            elif op == "exchange":
                mem[a] = x
            elif op in ir.BITWISE_ATOMICS:
                mem[a] = {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}[op](cur, x)
            elif cur == x:
                mem[a] = y
    return olds


@pytest.mark.parametrize(("op", "t"), [(op, t) for op in ir.ATOMIC_OPS for t in (I32, U32, I64, F32, F64)
                                         if not (op in ir.BITWISE_ATOMICS and t.is_float)],  # integers only
                         ids=lambda x: x if isinstance(x, str) else x.value)
@pytest.mark.parametrize("pattern", ["unique", "sparse", "spread", "hot"])
def test_atomics_apply_in_thread_order_with_duplicates(op: str, t: ScalarType, pattern: str) -> None:
    rng = np.random.default_rng(6)
    # unique: no collision; sparse: many short collisions (applied in rounds); spread/hot: few long ones
    n, slots = 300, {"unique": 300, "sparse": 200, "spread": 8, "hot": 8}[pattern]
    dt = t.np_dtype
    addr = {"unique": rng.permutation(n), "sparse": rng.integers(0, slots, n), "spread": rng.integers(0, slots, n),
            "hot": rng.choice([0, 5], n, p=[0.9, 0.1])}[pattern].astype(np.int32)
    if t.is_float:
        v = (rng.normal(size=n) * 1e3).astype(dt)
    else:
        v = rng.integers(0, 4 if op == "cas" else 2**30, n).astype(dt)
    w = rng.integers(0, 4, n).astype(dt)
    mem0 = (rng.integers(0, 4, slots) if op == "cas" else rng.normal(size=slots) * 100).astype(dt)
    mem, olds = mem0.copy(), np.zeros(n, dt)
    launch1(_atomic_kernel(op, t), n, [mem, addr, v, w, olds], block=64)
    ref_mem = list(mem0)
    ref_olds = _sequential_atomics(op, ref_mem, addr.tolist(), list(v), list(w), dt)
    np.testing.assert_array_equal(olds, np.array(ref_olds, dt))
    np.testing.assert_array_equal(mem, np.array(ref_mem, dt))


@pytest.mark.parametrize("op", ("add", "cas", "max"))
def test_shared_memory_atomics_are_per_work_group(op: str) -> None:
    rng = np.random.default_rng(7)
    groups, block, slots = 5, 32, 4
    n = groups * block
    addr = rng.integers(0, slots, n).astype(np.int32)
    v, w = rng.integers(0, 3, n).astype(np.int32), rng.integers(0, 3, n).astype(np.int32)
    mem0 = rng.integers(0, 3, groups * slots).astype(np.int32)
    mem, olds = mem0.copy(), np.zeros(n, np.int32)
    run(_atomic_kernel(op, I32, "shared", slots), (groups, 1, 1), (block, 1, 1), [mem, addr, v, w, olds], chunk_threads=64)
    for g in range(groups):
        ref = list(mem0[g * slots:(g + 1) * slots])
        sl = slice(g * block, (g + 1) * block)
        assert olds[sl].tolist() == _sequential_atomics(op, ref, addr[sl].tolist(), v[sl].tolist(), w[sl].tolist(), np.dtype(np.int32))
        assert mem[g * slots:(g + 1) * slots].tolist() == ref


def test_atomic_result_is_unset_for_inactive_threads() -> None:
    body = [SET_I, SET("old", C(-1)), ir.If(B("lt", IV, C(3)), (ir.AtomicRMW("add", "mem", "global", C(0), (C(1),), "old", I32, 9),), (), 9),
            ST("olds", IV, V("old"))]
    k = K([P("mem", I32), P("olds", I32)], body, {"i": I32, "old": I32})
    mem, olds = np.array([10], np.int32), np.zeros(6, np.int32)
    launch1(k, 6, [mem, olds])
    assert olds.tolist() == [10, 11, 12, -1, -1, -1] and mem[0] == 13


# --------------------------------------------------------------- tracer
class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def begin_chunk(self, group_ids: np.ndarray, threads_per_group: int) -> None:
        self.events.append(("chunk", group_ids.tolist(), threads_per_group))

    def op(self, line: int, name: str, type: ScalarType, mask: np.ndarray) -> None:
        self.events.append(("op", line, name, type, mask.tolist()))

    def memory(self, line: int, space: str, buffer: str, index: np.ndarray, mask: np.ndarray,
               store: bool, itemsize: int) -> None:
        self.events.append(("mem", line, space, buffer, [int(i) for i, m in zip(index, mask, strict=True) if m], store, itemsize))

    def atomic(self, line: int, space: str, buffer: str, index: np.ndarray, mask: np.ndarray, itemsize: int) -> None:
        self.events.append(("atomic", line, space, buffer, [int(i) for i, m in zip(index, mask, strict=True) if m], itemsize))

    def barrier(self, line: int, mask: np.ndarray) -> None:
        self.events.append(("barrier", line, mask.tolist()))


def test_tracer_sees_chunks_ops_masks_and_indices() -> None:
    body = [SET_I, ir.If(B("lt", IV, C(5), BOOL), (
        ST("y", IV, B("mul", LD("x", B("mul", IV, C(2)), F32), C(2.0, F32)), line=12),), (), 11),
        ir.Barrier(13)]
    k = K([P("x", F32), P("y", F32)], body, {"i": I32})
    rec = Recorder()
    x, y = np.arange(16, dtype=np.float32), np.zeros(8, np.float32)
    launch1(k, 8, [x, y], block=4, tracer=rec, chunk_threads=4)
    assert y.tolist() == [0, 4, 8, 12, 16, 0, 0, 0]
    ev = rec.events
    assert ev[0] == ("chunk", [0], 4)
    assert ev[1] == ("op", 11, "lt", I32, [True] * 4)
    assert ev[2] == ("op", 11, "branch", BOOL, [True] * 4)
    assert ev[3] == ("op", 12, "mul", I32, [True] * 4)
    assert ev[4] == ("mem", 12, "global", "x", [0, 2, 4, 6], False, 4)
    assert ev[5] == ("op", 12, "mul", F32, [True] * 4)
    assert ev[6] == ("mem", 12, "global", "y", [0, 1, 2, 3], True, 4)
    assert ev[7] == ("barrier", 13, [True] * 4)
    assert ev[8] == ("chunk", [1], 4)
    assert ("mem", 12, "global", "x", [8], False, 4) in ev
    assert ("op", 12, "mul", F32, [True, False, False, False]) in ev


def test_tracer_sees_lazy_sides_and_atomics_under_their_masks() -> None:
    sel = ir.Select(B("lt", IV, C(2)), LD("x", IV, F32), C(0.0, F32), F32)
    body = [SET_I, ST("y", IV, sel), ir.AtomicRMW("add", "y", "global", C(7), (C(1.0, F32),), None, F32, 11)]
    k = K([P("x", F32), P("y", F32)], body, {"i": I32})
    rec = Recorder()
    launch1(k, 4, [np.ones(2, np.float32), np.zeros(8, np.float32)], block=4, tracer=rec)
    assert ("mem", 10, "global", "x", [0, 1], False, 4) in rec.events
    assert ("op", 10, "select", F32, [True] * 4) in rec.events
    assert ("atomic", 11, "global", "y", [7, 7, 7, 7], 4) in rec.events


def test_bad_arguments_are_rejected() -> None:
    k = K([P("x", F32), P("n", I32, False)], [])
    with pytest.raises(InvalidArgumentError, match="takes 2 arguments"):
        run(k, (1, 1, 1), (1, 1, 1), [np.zeros(1, np.float32)])
    with pytest.raises(InvalidArgumentError, match="argument 'x'"):
        run(k, (1, 1, 1), (1, 1, 1), [np.zeros(1, np.float64), 1])
    run(k, (0, 1, 1), (4, 1, 1), [np.zeros(1, np.float32), 1])  # an empty grid runs nothing


# ------------------------------------------------------- through the frontend
def _saxpy(a: hal.f32, x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], n: hal.i32):  # type: ignore[no-untyped-def]
    i = hal.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def _histogram(x: hal.Ptr[hal.i32], hist: hal.Ptr[hal.i32], n: hal.i32):  # type: ignore[no-untyped-def]
    counts = hal.shared(hal.i32, 16)
    lid = hal.local_id(0)
    if lid < 16:
        counts[lid] = 0
    hal.barrier()
    i = hal.global_id(0)
    if i < n:
        hal.atomic_add(counts, x[i] % 16, 1)
    hal.barrier()
    if lid < 16:
        hal.atomic_add(hist, lid, counts[lid])


def test_kernels_written_in_python() -> None:
    frontend = pytest.importorskip("hal.kernel.frontend")
    n = 1000
    x, y = np.arange(n, dtype=np.float32), np.ones(n, np.float32)
    run(frontend.parse_kernel(_saxpy), (8, 1, 1), (128, 1, 1), [3.0, x, y, n])
    np.testing.assert_array_equal(y, np.float32(3) * np.arange(n, dtype=np.float32) + 1)
    data = np.random.default_rng(8).integers(-50, 50, n).astype(np.int32)
    hist = np.zeros(16, np.int32)
    run(frontend.parse_kernel(_histogram), (8, 1, 1), (128, 1, 1), [data, hist, n], chunk_threads=256)
    np.testing.assert_array_equal(hist, np.bincount(data % 16, minlength=16))
