# ruff: noqa: F841, B007, F821 - kernels under test keep unused locals and undefined names on purpose
"""The kernel-language frontend: Python source -> typed IR, and every compile error.

Error tests mark the line the error must point at with ``# <-``.
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any

import numpy as np
import pytest

import hal.kernel as hk
from hal._errors import CompileError, InvalidArgumentError
from hal._features import Feature
from hal.kernel import ir
from hal.kernel.analysis import uniform_control, walk_expressions
from hal.kernel.types import ScalarType

I32, I64, U32, F32, F64, BOOL = (ScalarType.I32, ScalarType.I64, ScalarType.U32, ScalarType.F32,
                                 ScalarType.F64, ScalarType.BOOL)
TILE = 16
SCALE = 2.5
NP_CONST = np.float32(0.5)


def lower(fn: Any) -> ir.Kernel:
    return hk.parse_kernel(fn.fn if isinstance(fn, hk.KernelFunction) else fn)


def expect_error(fn: Any, pattern: str) -> CompileError:
    """The kernel fails to compile at the line marked ``# <-`` with a message matching pattern."""
    raw = fn.fn if isinstance(fn, hk.KernelFunction) else fn
    with pytest.raises(CompileError) as info:
        hk.parse_kernel(raw)
    err = info.value
    lines, first = inspect.getsourcelines(raw)
    marked = [first + i for i, text in enumerate(lines) if "# <-" in text]
    assert err.filename == __file__
    assert err.line == marked[0], (err.line, marked, str(err))
    assert re.search(pattern, err.reason), err.reason
    assert str(err).startswith(f"{__file__}:{err.line}: ")
    return err


def stmts(kernel: ir.Kernel, kind: type) -> list[Any]:
    return [s for s in ir.walk_statements(kernel.body) if isinstance(s, kind)]


def exprs(kernel: ir.Kernel, kind: type) -> list[Any]:
    return [e for e in walk_expressions(kernel.body) if isinstance(e, kind)]


# ---------------------------------------------------------------- basics
@hk
def saxpy(a: hk.f32, x: hk.Ptr[hk.f32], y: hk.Ptr[hk.f32], n: hk.i32):
    """y = a * x + y"""
    i = hk.global_id(0)
    if i < n:
        y[i] = a * x[i] + y[i]


def test_saxpy_lowers_to_typed_ir() -> None:
    k = saxpy.ir
    assert k.name == "saxpy"
    assert k.params == (ir.Param("a", F32, False), ir.Param("x", F32, True),
                        ir.Param("y", F32, True), ir.Param("n", I32, False))
    assert k.variables == (("i", I32),)
    assign, branch = k.body
    assert assign == ir.Assign("i", ir.ThreadIndex("global_id", 0), assign.line)
    assert isinstance(branch, ir.If) and branch.cond.type is BOOL and branch.cond.op == "lt"
    (store,) = branch.then
    assert isinstance(store, ir.Store) and store.buffer == "y" and store.space == "global"
    assert store.value.op == "add" and store.value.type is F32
    assert store.value.lhs == ir.Binary("mul", ir.Var("a", F32), ir.Load("x", "global", ir.Var("i", I32), F32), F32)
    assert k.source_file == __file__
    assert k.source_line == inspect.getsourcelines(saxpy.fn)[1] + 1  # the def line, after the decorator
    assert store.line == k.source_line + 4


def test_kernel_ir_is_parsed_once_and_cached() -> None:
    assert saxpy.ir is saxpy.ir


def test_module_is_the_kernel_decorator() -> None:
    assert callable(hk)
    assert isinstance(saxpy, hk.KernelFunction)
    assert saxpy.name == "saxpy" and saxpy.__name__ == "saxpy" and saxpy.__doc__ == "y = a * x + y"
    assert "saxpy" in repr(saxpy) and __file__ in repr(saxpy)


# ------------------------------------------------------------- literal typing
def test_literals_adopt_the_other_operand() -> None:
    def k(x: hk.Ptr[hk.f32], n64: hk.i64, u: hk.u32, d: hk.Ptr[hk.f64]):
        a = x[0] * 2
        b = x[0] + 0.5
        c = n64 + 3000000000
        e = u - 1
        f = 1
        g = 1.5
        h = 2 * 3 + 1
        q = x[0] * (1 / 4)
        x[1] = 1
        d[0] = 2
        f = 7

    kern = lower(k)
    types_ = dict(kern.variables)
    assert types_ == {"a": F32, "b": F32, "c": I64, "e": U32, "f": I32, "g": F64, "h": I32, "q": F32}
    consts = exprs(kern, ir.Const)
    assert ir.Const(2.0, F32) in consts and ir.Const(0.5, F32) in consts
    assert ir.Const(3000000000, I64) in consts and ir.Const(7, I32) in consts
    assert ir.Const(1.0, F32) in consts and ir.Const(2.0, F64) in consts and ir.Const(0.25, F32) in consts
    h = [s for s in kern.body if isinstance(s, ir.Assign) and s.target == "h"][0]
    assert h.value == ir.Const(7, I32)  # literal arithmetic folds


def test_literal_out_of_range() -> None:
    def k(x: hk.Ptr[hk.i32]):
        x[0] = x[0] + 3000000000  # <-

    expect_error(k, r"3000000000 is out of range for i32")

    def k2(u: hk.u32, x: hk.Ptr[hk.u32]):
        x[0] = u + -1  # <-

    expect_error(k2, r"-1 is out of range for u32")

    def k3(x: hk.Ptr[hk.f32]):
        x[0] = 1e300  # <-

    expect_error(k3, r"out of range for f32")


def test_float_literal_with_int_operand_needs_a_cast() -> None:
    def k(x: hk.Ptr[hk.i32]):
        i = hk.global_id(0)
        x[i] = i * 2.0  # <-

    expect_error(k, r"float literal 2.0 with an i32 operand.*cast")


def test_mixing_typed_operands_is_an_error() -> None:
    def k(a: hk.i32, b: hk.i64, x: hk.Ptr[hk.i64]):
        x[0] = a + b  # <-

    expect_error(k, r"cannot mix i32 and i64 in '\+'.*hal\.i64")

    def k2(a: hk.f32, b: hk.f64, x: hk.Ptr[hk.f64]):
        x[0] = a * b  # <-

    expect_error(k2, r"cannot mix f32 and f64 in '\*'.*hal\.f64")

    def k3(a: hk.i32, b: hk.f32, x: hk.Ptr[hk.f32]):
        x[0] = b - a  # <-

    expect_error(k3, r"cannot mix f32 and i32 in '-'.*hal\.f32")


def test_variables_keep_their_first_type() -> None:
    def k(x: hk.Ptr[hk.f64]):
        v = 0
        v = x[0]  # <-

    expect_error(k, r"assigning f64 to variable 'v' of type i32; cast explicitly with hal\.i32\(\.\.\.\)")

    def k2(x: hk.Ptr[hk.f32]):
        v = hk.f32(0)
        v = 1.5
        v += x[0]
        x[0] = v

    kern = lower(k2)
    assert dict(kern.variables) == {"v": F32}
    assert kern.body[1] == ir.Assign("v", ir.Const(1.5, F32), kern.body[1].line)

    def k3(x: hk.Ptr[hk.f32]):
        acc: hk.f32 = 0.0
        acc += x[0]
        x[0] = acc

    assert dict(lower(k3).variables) == {"acc": F32}


def test_numpy_and_module_constants() -> None:
    def k(x: hk.Ptr[hk.f32], y: hk.Ptr[hk.f64]):
        x[0] = x[0] * SCALE + NP_CONST
        y[0] = math.pi

    kern = lower(k)
    consts = exprs(kern, ir.Const)
    assert ir.Const(2.5, F32) in consts and ir.Const(0.5, F32) in consts
    assert ir.Const(math.pi, F64) in consts


def test_closure_constants_resolve() -> None:
    width = 8

    def k(x: hk.Ptr[hk.i32]):
        x[0] = width

    assert exprs(lower(k), ir.Const)[-1] == ir.Const(8, I32)


def test_constant_conditions_specialise_the_kernel() -> None:
    for flag in (True, False):
        def k(x: hk.Ptr[hk.i32]):
            if flag:  # noqa: B023 - compiled right away
                x[0] = 1
            else:
                x[0] = 2

        (store,) = lower(k).body
        assert store.value == ir.Const(1 if flag else 2, I32)


def test_attribute_of_a_kernel_variable() -> None:
    def k(x: hk.Ptr[hk.f32], n: hk.i32):
        x[0] = x.shape  # <-

    expect_error(k, r"attribute access on kernel variables \(x.shape\)")


# --------------------------------------------------------------- operators
def test_arithmetic_operators() -> None:
    def k(a: hk.i32, b: hk.i32, f: hk.f32, g: hk.f32, x: hk.Ptr[hk.i32], y: hk.Ptr[hk.f32]):
        x[0] = a // b
        x[1] = a % b
        x[2] = (a & b) | (a ^ b)
        x[3] = (a << 2) >> 1
        x[4] = ~a
        x[5] = -a
        y[0] = f / g
        y[1] = f ** g
        y[2] = f // g + f % g

    kern = lower(k)
    ops = [e.op for e in exprs(kern, ir.Binary)]
    for op in ("floordiv", "mod", "bitand", "bitor", "bitxor", "shl", "shr", "div", "pow"):
        assert op in ops
    unary = exprs(kern, ir.Unary)
    assert {u.op for u in unary} == {"invert", "neg"}
    assert all(b.type is F32 for b in exprs(kern, ir.Binary) if b.op in ("div", "pow"))


def test_int_division_and_pow_need_floats() -> None:
    def k(a: hk.i32, x: hk.Ptr[hk.i32]):
        x[0] = a / 2  # <-

    expect_error(k, r"'/' is float division.*use //")

    def k2(a: hk.i32, x: hk.Ptr[hk.i32]):
        x[0] = a ** 2  # <-

    expect_error(k2, r"'\*\*' needs floats")

    def k3(f: hk.f32, x: hk.Ptr[hk.f32]):
        x[0] = f << 1  # <-

    expect_error(k3, r"'<<' needs integers")

    def k4(f: hk.f32, x: hk.Ptr[hk.f32]):
        x[0] = ~f  # <-

    expect_error(k4, r"'~' needs an integer")


def test_comparisons_and_boolean_operators() -> None:
    def k(a: hk.i32, b: hk.i32, c: hk.i32, f: hk.f32, x: hk.Ptr[hk.i32]):
        if a < b < c:
            x[0] = 1
        if a and not f:
            x[1] = 1
        if a or b == c:
            x[2] = 1
        t = a != b
        flag = t & (b > c)

    kern = lower(k)
    first, second, third = (s for s in kern.body if isinstance(s, ir.If))
    assert first.cond.op == "and" and first.cond.lhs.op == "lt" and first.cond.rhs.op == "lt"
    assert second.cond == ir.Binary(
        "and", ir.Binary("ne", ir.Var("a", I32), ir.Const(0, I32), BOOL),
        ir.Unary("not", ir.Binary("ne", ir.Var("f", F32), ir.Const(0.0, F32), BOOL), BOOL), BOOL)
    assert third.cond.op == "or" and third.cond.type is BOOL
    assert dict(kern.variables) == {"t": BOOL, "flag": BOOL}


def test_select_and_casts() -> None:
    def k(a: hk.i32, x: hk.Ptr[hk.f32]):
        v = 1.0 if a > 0 else x[0]
        w = hk.f32(a)
        z = hk.i64(3000000000)
        b = hk.bool_(a)
        same = hk.i32(a)
        t = hk.i32(2.7)

    kern = lower(k)
    select = kern.body[0].value
    assert isinstance(select, ir.Select) and select.type is F32 and select.if_true == ir.Const(1.0, F32)
    values = {s.target: s.value for s in kern.body}
    assert values["w"] == ir.Cast(ir.Var("a", I32), F32)
    assert values["z"] == ir.Const(3000000000, I64)
    assert values["b"] == ir.Binary("ne", ir.Var("a", I32), ir.Const(0, I32), BOOL)
    assert values["same"] == ir.Var("a", I32)
    assert values["t"] == ir.Const(2, I32)


def test_math_functions() -> None:
    def k(f: hk.f32, i: hk.i32, x: hk.Ptr[hk.f32], y: hk.Ptr[hk.i32]):
        x[0] = hk.sqrt(f) + hk.exp(f) + hk.log(f) + hk.sin(f) + hk.cos(f) + hk.tanh(f)
        x[1] = hk.floor(f) + hk.ceil(f) + hk.pow(f, 2) + hk.fma(f, f, 1.0)
        x[2] = hk.min(f, 0.0) + hk.max(f, 1, 2.0) + hk.abs(f)
        y[0] = abs(i) + min(i, 3) + max(i, 4)
        x[3] = math.sqrt(f)

    kern = lower(k)
    calls = exprs(kern, ir.Call)
    assert {c.func for c in calls} == {"sqrt", "exp", "log", "sin", "cos", "tanh", "floor", "ceil", "pow",
                                      "fma", "min", "max", "abs"}
    assert all(c.type is (I32 if c.args[0].type is I32 else F32) for c in calls)
    nested = [c for c in calls if c.func == "max" and c.type is F32][0]
    assert nested.args[0] == ir.Call("max", (ir.Var("f", F32), ir.Const(1.0, F32)), F32)


def test_math_type_errors() -> None:
    def k(i: hk.i32, x: hk.Ptr[hk.f32]):
        x[0] = hk.sqrt(i)  # <-

    expect_error(k, r"hal.sqrt takes floats, not i32")

    def k2(i: hk.i32, f: hk.f32, x: hk.Ptr[hk.f32]):
        x[0] = hk.min(i, f)  # <-

    expect_error(k2, r"cannot mix i32 and f32 in hal.min")


def test_thread_indices() -> None:
    def k(x: hk.Ptr[hk.i32]):
        x[0] = (hk.global_id(0) + hk.local_id(1) + hk.group_id(2) + hk.local_size(0)
                + hk.num_groups(1) + hk.global_size(2))

    kinds = {(t.kind, t.dim) for t in exprs(lower(k), ir.ThreadIndex)}
    assert kinds == {("global_id", 0), ("local_id", 1), ("group_id", 2), ("local_size", 0),
                     ("num_groups", 1), ("global_size", 2)}

    def bad(x: hk.Ptr[hk.i32], d: hk.i32):
        x[0] = hk.global_id(d)  # <-

    expect_error(bad, r"constant 0, 1 or 2")

    def bad2(x: hk.Ptr[hk.i32]):
        x[0] = hk.local_id(3)  # <-

    expect_error(bad2, r"constant 0, 1 or 2")


# --------------------------------------------------------------- statements
def test_for_loops() -> None:
    def k(n: hk.i32, m: hk.i64, s: hk.i32, x: hk.Ptr[hk.i32]):
        for i in range(n):
            x[i] = i
        for j in range(2, 10, -1):
            x[j] = j
        for q in range(0, m):
            pass
        for r in range(n, 0, s):
            if r == 3:
                continue
            if r == 5:
                break

    kern = lower(k)
    loops = stmts(kern, ir.For)
    assert loops[0].start == ir.Const(0, I32) and loops[0].stop == ir.Var("n", I32) and loops[0].step == ir.Const(1, I32)
    assert loops[1].step == ir.Const(-1, I32)
    assert loops[2].var == "q" and loops[2].start == ir.Const(0, I64)
    assert loops[3].step == ir.Var("s", I32)
    assert dict(kern.variables) == {"i": I32, "j": I32, "q": I64, "r": I32}
    assert stmts(kern, ir.Continue) and stmts(kern, ir.Break)


def test_for_loop_errors() -> None:
    def k(x: hk.Ptr[hk.i32]):
        for i in range(0, 10, 0):  # <-
            pass

    expect_error(k, r"step must not be zero")

    def k2(x: hk.Ptr[hk.i32]):
        for i in [1, 2]:  # <-
            pass

    expect_error(k2, r"only loop over range")

    def k3(x: hk.Ptr[hk.i32]):
        for i in range(3):  # <-
            pass
        else:
            pass

    expect_error(k3, r"for \.\.\. else")

    def k4(x: hk.Ptr[hk.i32], f: hk.f32):
        for i in range(f):  # <-
            pass

    expect_error(k4, r"range\(\) takes integers")


def test_while_and_return() -> None:
    def k(n: hk.i32, x: hk.Ptr[hk.i32]):
        i = hk.global_id(0)
        if i >= n:
            return
        while i < n:
            i += 1
        x[0] = i

    kern = lower(k)
    assert stmts(kern, ir.Return) and stmts(kern, ir.While)

    def bad(x: hk.Ptr[hk.i32]):
        return 1  # <-

    expect_error(bad, r"cannot return a value")


def test_augmented_store_is_load_then_store() -> None:
    def k(x: hk.Ptr[hk.f32]):
        x[hk.global_id(0)] += 1

    (store,) = lower(k).body
    assert isinstance(store, ir.Store)
    assert store.value == ir.Binary("add", ir.Load("x", "global", ir.ThreadIndex("global_id", 0), F32),
                                    ir.Const(1.0, F32), F32)


def test_index_rules() -> None:
    def k(x: hk.Ptr[hk.f32], f: hk.f32):
        x[f] = 1.0  # <-

    expect_error(k, r"index must be an integer")

    def k2(x: hk.Ptr[hk.f32]):
        x[-1] = 1.0  # <-

    expect_error(k2, r"negative index")

    def k3(x: hk.Ptr[hk.f32]):
        x[0, 1] = 1.0  # <-

    expect_error(k3, r"multi-dimensional indexing")


# ------------------------------------------------------------------- arrays
def test_shared_and_local_arrays() -> None:
    def k(x: hk.Ptr[hk.f32]):
        tile = hk.shared(hk.f32, TILE * 2)
        acc = hk.local(hk.i32, 4)
        tile[hk.local_id(0)] = x[0]
        acc[1] = 3
        hk.barrier()
        x[0] = tile[0]

    kern = lower(k)
    assert kern.arrays == (ir.ArrayDecl("tile", F32, 32, "shared"), ir.ArrayDecl("acc", I32, 4, "local"))
    assert kern.shared_bytes == 128
    stores = stmts(kern, ir.Store)
    assert stores[0].space == "shared" and stores[1].space == "local" and stores[1].value == ir.Const(3, I32)
    assert stmts(kern, ir.Barrier)


def test_array_errors() -> None:
    def k(n: hk.i32):
        t = hk.shared(hk.f32, n)  # <-

    expect_error(k, r"compile-time integer constant")

    def k2():
        t = hk.shared(hk.f32, 4)
        t = hk.shared(hk.f32, 4)  # <-

    expect_error(k2, r"already declared")

    def k3(x: hk.Ptr[hk.f32], y: hk.Ptr[hk.f32]):
        x = y  # <-

    expect_error(k3, r"cannot assign to buffer 'x'")

    def k4(x: hk.Ptr[hk.f32]):
        v = x  # <-

    expect_error(k4, r"buffer 'x' cannot be used as a value")

    def k5(x: hk.Ptr[hk.f32]):
        x[0] = hk.shared(hk.f32, 4)  # <-

    expect_error(k5, r"must be assigned directly to a name")

    def k6(x: hk.Ptr[hk.f32], d: hk.f64):
        x[0] = d  # <-

    expect_error(k6, r"storing f64 into f32 buffer 'x'; cast explicitly with hal\.f32")


# ------------------------------------------------------------------- atomics
def test_atomics() -> None:
    def k(c: hk.Ptr[hk.i32], f: hk.Ptr[hk.f32]):
        hk.atomic_add(c, 0, 1)
        old = hk.atomic_max(c, 1, hk.global_id(0))
        swapped = hk.atomic_cas(c, 2, 0, 1)
        prev = hk.atomic_exchange(f, 0, 2.0)
        c[3] = hk.atomic_min(c, 4, 5) + 1

    kern = lower(k)
    atomics = stmts(kern, ir.AtomicRMW)
    assert [(a.op, a.result) for a in atomics] == [("add", None), ("max", "old"), ("cas", "swapped"),
                                                  ("exchange", "prev"), ("min", "_t1")]
    assert atomics[2].operands == (ir.Const(0, I32), ir.Const(1, I32))
    assert atomics[3].operands == (ir.Const(2.0, F32),) and atomics[3].type is F32
    assert kern.body[-1].value == ir.Binary("add", ir.Var("_t1", I32), ir.Const(1, I32), I32)
    assert dict(kern.variables) == {"old": I32, "swapped": I32, "prev": F32, "_t1": I32}


def test_atomic_errors() -> None:
    def k(c: hk.Ptr[hk.i32], v: hk.i64):
        hk.atomic_add(c, 0, v)  # <-

    expect_error(k, r"passing i64 to hal.atomic_add on i32 buffer 'c'")

    def k2(c: hk.Ptr[hk.i32], a: hk.i32):
        if a > 0 and hk.atomic_add(c, 0, 1) > 0:  # <-
            pass

    expect_error(k2, r"inside 'and'/'or'.*own statement")

    def k3(c: hk.Ptr[hk.i32]):
        c[0] = 1 if c[1] > 0 else hk.atomic_add(c, 0, 1)  # <-

    expect_error(k3, r"x if c else y")

    def k4(c: hk.Ptr[hk.i32]):
        hk.atomic_cas(c, 0, 1)  # <-

    expect_error(k4, r"takes \(p, i, compare, value\)")


# ------------------------------------------------------------------ @hal.func
@hk.func
def square(v: hk.f32) -> hk.f32:
    return v * v


@hk.func
def clamp(v: hk.f32, lo: hk.f32, hi: hk.f32) -> hk.f32:
    if v < lo:
        return lo
    if v > hi:
        return hi
    return v


@hk.func
def find(x: hk.Ptr[hk.i32], n: hk.i32, key: hk.i32) -> hk.i32:
    for i in range(n):
        for j in range(2):
            if x[i] == key:
                return i
    return -1


@hk.func
def sign(v: hk.f32) -> hk.f32:
    if v < 0:
        return -1.0
    else:
        return 1.0


@hk.func
def bump(x: hk.Ptr[hk.i32], i: hk.i32):
    if i < 0:
        return
    x[i] += 1


@hk.func
def norm2(a: hk.f32, b: hk.f32) -> hk.f32:
    return hk.sqrt(square(a) + square(b))


@hk.func
def ping(v: hk.i32) -> hk.i32:
    return pong(v)


@hk.func
def pong(v: hk.i32) -> hk.i32:
    return ping(v)


@hk.func
def selfish(v: hk.i32) -> hk.i32:
    return selfish(v)


def test_inline_tail_return_needs_no_flag() -> None:
    def k(x: hk.Ptr[hk.f32]):
        x[0] = square(x[0]) + 1

    kern = lower(k)
    assert dict(kern.variables) == {"_f_square_1_v": F32, "_f_square_1_result": F32}
    bind, ret, store = kern.body
    assert bind == ir.Assign("_f_square_1_v", ir.Load("x", "global", ir.Const(0, I32), F32), bind.line)
    assert ret.target == "_f_square_1_result" and ret.value.op == "mul"
    assert ret.line == inspect.getsourcelines(square.fn)[1] + 2  # the func's own line
    assert store.value.lhs == ir.Var("_f_square_1_result", F32)


def test_inline_early_returns_use_a_done_flag() -> None:
    def k(x: hk.Ptr[hk.f32]):
        x[0] = clamp(x[0], 0.0, 1.0)

    kern = lower(k)
    assert dict(kern.variables)["_f_clamp_1_done"] is BOOL
    branches = [s for s in kern.body if isinstance(s, ir.If)]
    assert len(branches) == 2
    assert branches[1].cond == ir.Unary("not", ir.Var("_f_clamp_1_done", BOOL), BOOL)
    assert kern.body[-1] == ir.Store("x", "global", ir.Const(0, I32), ir.Var("_f_clamp_1_result", F32),
                                     kern.body[-1].line)


def test_inline_returns_in_tail_position_need_no_flag() -> None:
    def k(x: hk.Ptr[hk.f32]):
        x[0] = sign(x[0])

    kern = lower(k)
    assert "_f_sign_1_done" not in dict(kern.variables)
    branch = kern.body[1]
    assert branch.then == (ir.Assign("_f_sign_1_result", ir.Const(-1.0, F32), branch.then[0].line),)


def test_inline_return_from_nested_loops_breaks_out() -> None:
    def k(x: hk.Ptr[hk.i32], n: hk.i32):
        x[0] = find(x, n, 7)

    kern = lower(k)
    outer = stmts(kern, ir.For)[0]
    inner = outer.body[0]
    assert isinstance(inner, ir.For)
    early = inner.body[0].then
    assert [type(s) for s in early] == [ir.Assign, ir.Assign, ir.Break]
    assert outer.body[-1] == ir.If(ir.Var("_f_find_1_done", BOOL), (ir.Break(outer.body[-1].line),), (),
                                   outer.body[-1].line)
    tail = [s for s in kern.body if isinstance(s, ir.If)][-1]
    assert tail.then == (ir.Assign("_f_find_1_result", ir.Const(-1, I32), tail.then[0].line),)


def test_inline_void_function_and_pointer_renaming() -> None:
    def k(counts: hk.Ptr[hk.i32]):
        bump(counts, hk.global_id(0))
        bump(counts, 3)

    kern = lower(k)
    stores = stmts(kern, ir.Store)
    assert [s.buffer for s in stores] == ["counts", "counts"]
    assert "_f_bump_1_i" in dict(kern.variables) and "_f_bump_2_i" in dict(kern.variables)

    def bad(counts: hk.Ptr[hk.i32]):
        counts[0] = bump(counts, 0)  # <-

    expect_error(bad, r"returns no value")


def test_inline_nested_functions() -> None:
    def k(x: hk.Ptr[hk.f32]):
        x[0] = norm2(x[0], x[1])

    names = dict(lower(k).variables)
    assert {"_f_norm2_1_a", "_f_square_2_v", "_f_square_3_v", "_f_norm2_1_result"} <= set(names)


def test_inline_in_while_condition_reevaluates_each_iteration() -> None:
    def k(x: hk.Ptr[hk.f32]):
        while square(x[0]) > 1.0:
            x[0] = x[0] * 0.5

    (loop,) = lower(k).body
    assert loop.cond == ir.Const(True, BOOL)
    assert isinstance(loop.body[2], ir.If) and loop.body[2].then == (ir.Break(loop.line),)


def test_recursion_is_an_error() -> None:
    def k(x: hk.Ptr[hk.i32]):
        x[0] = selfish(1)

    err = pytest.raises(CompileError, hk.parse_kernel, k).value
    assert "recursive call of @hal.func 'selfish' (selfish -> selfish)" in err.reason
    assert err.line == inspect.getsourcelines(selfish.fn)[1] + 2

    def k2(x: hk.Ptr[hk.i32]):
        x[0] = ping(1)

    err = pytest.raises(CompileError, hk.parse_kernel, k2).value
    assert "ping -> pong -> ping" in err.reason


def test_func_argument_errors() -> None:
    def k(x: hk.Ptr[hk.f32], d: hk.f64):
        x[0] = square(d)  # <-

    expect_error(k, r"passing f64 as parameter 'v' \(f32\) of @hal.func 'square'")

    def k2(x: hk.Ptr[hk.f32]):
        x[0] = find(x, 1, 2)  # <-

    expect_error(k2, r"is hal.Ptr\[hal.i32\] but buffer 'x' holds f32")

    def k3(x: hk.Ptr[hk.f32]):
        x[0] = square(1.0, 2.0)  # <-

    expect_error(k3, r"takes 1 arguments, got 2")


def test_func_definition_errors() -> None:
    @hk.func
    def no_result(v: hk.f32):
        return v

    def k(x: hk.Ptr[hk.f32]):
        no_result(x[0])

    err = pytest.raises(CompileError, hk.parse_kernel, k).value
    assert "annotate the result type" in err.reason and err.line == inspect.getsourcelines(no_result.fn)[1] + 2

    @hk.func
    def maybe(v: hk.f32) -> hk.f32:
        if v > 0:
            return v

    def k2(x: hk.Ptr[hk.f32]):
        x[0] = maybe(x[0])

    err = pytest.raises(CompileError, hk.parse_kernel, k2).value
    assert "may finish without returning" in err.reason


# ----------------------------------------------------------- unsupported code
def helper(v: float) -> float:
    return v


class Holder:
    value = 3


def test_unsupported_constructs_name_the_construct() -> None:
    def lists(x: hk.Ptr[hk.f32]):
        v = [1, 2]  # <-

    expect_error(lists, r"lists are not allowed in kernels; use hal.local")

    def tuples(x: hk.Ptr[hk.f32]):
        a, b = 1, 2  # <-

    expect_error(tuples, r"tuple unpacking")

    def dicts(x: hk.Ptr[hk.f32]):
        v = {}  # <-

    expect_error(dicts, r"dicts are not allowed")

    def lambdas(x: hk.Ptr[hk.f32]):
        f = lambda: 1  # <-  # noqa: E731

    expect_error(lambdas, r"lambdas are not allowed")

    def comps(x: hk.Ptr[hk.f32]):
        v = [i for i in range(3)]  # <-

    expect_error(comps, r"list comprehensions")

    def prints(x: hk.Ptr[hk.f32]):
        v = print(1)  # <-

    expect_error(prints, r"print\(\) is not available")

    def strings(x: hk.Ptr[hk.f32]):
        v = "a"  # <-

    expect_error(strings, r"strings are not kernel values")

    def attrs(x: hk.Ptr[hk.f32]):
        v = Holder.value  # <-

    expect_error(attrs, r"attribute access on Python objects")

    def calls(x: hk.Ptr[hk.f32]):
        x[0] = helper(x[0])  # <-

    expect_error(calls, r"Python function 'helper' is not allowed.*@hal.func")

    def ints(x: hk.Ptr[hk.f32], i: hk.i32):
        v = int(i)  # <-

    expect_error(ints, r"int\(\) is not kernel syntax; cast with hal.i32")

    def kwargs(x: hk.Ptr[hk.f32]):
        x[0] = hk.sqrt(x=x[0])  # <-

    expect_error(kwargs, r"keyword arguments are not allowed")

    def withs(x: hk.Ptr[hk.f32]):
        with x:  # <-
            pass

    expect_error(withs, r"'with' blocks are not allowed")

    def trys(x: hk.Ptr[hk.f32]):
        try:  # <-
            pass
        finally:
            pass

    expect_error(trys, r"'try' blocks are not allowed")

    def kernels(x: hk.Ptr[hk.f32], n: hk.i32):
        saxpy(1.0, x, x, n)  # <-

    expect_error(kernels, r"cannot call another kernel")

    def undefined(x: hk.Ptr[hk.f32]):
        x[0] = nowhere  # <-  # noqa: F821

    expect_error(undefined, r"name 'nowhere' is not defined")

    def before(x: hk.Ptr[hk.f32]):
        y = v + 1  # <-
        v = 2

    expect_error(before, r"variable 'v' is used before it is assigned")

    def branch_first(x: hk.Ptr[hk.f32]):
        if x[0] > 0:
            v = x[1]
        v = v + 1  # declared (and typed) by the assignment in the branch

    assert dict(lower(branch_first).variables) == {"v": F32}


def test_global_statement() -> None:
    def k(x: hk.Ptr[hk.f32]):
        global TILE  # <-

    expect_error(k, r"'global' statements are not allowed")


def test_signature_errors() -> None:
    def untyped(x):  # <-
        pass

    expect_error(untyped, r"parameter 'x' of kernel 'untyped' needs a type annotation")

    def defaults(x: hk.Ptr[hk.f32], n: hk.i32 = 3):  # <-
        pass

    expect_error(defaults, r"default parameter values are not allowed")

    def star(*xs: hk.i32):  # <-
        pass

    expect_error(star, r"no \*args")

    def py_int(n: int):  # <-
        pass

    expect_error(py_int, r"use hal.i32 or hal.i64")


def test_bare_expression_statement() -> None:
    def k(x: hk.Ptr[hk.f32]):
        x[0] + 1  # <-

    expect_error(k, r"only calls to hal.barrier\(\), hal.atomic_\*\(\) and @hal.func")


# ------------------------------------------------------------------ barriers
def test_barrier_in_divergent_if() -> None:
    def k(x: hk.Ptr[hk.f32], n: hk.i32):
        if hk.global_id(0) < n:
            hk.barrier()  # <-

    expect_error(k, r"barrier in divergent control flow: the if condition at line \d+ depends on the thread")


def test_barrier_under_uniform_control_is_fine() -> None:
    def k(x: hk.Ptr[hk.f32], n: hk.i32):
        t = hk.shared(hk.f32, 64)
        g = hk.group_id(0) * hk.local_size(0)
        if g < n:
            for s in range(n):
                hk.barrier()
        lid = hk.local_id(0)
        if lid < 32:
            t[lid] = 1.0
        hk.barrier()

    kern = lower(k)
    uni = uniform_control(kern)
    assert uni.nonuniform == {"lid"} and not uni.divergent_barriers
    assert uni.is_uniform(ir.Var("g", I32)) and not uni.is_uniform(ir.Var("lid", I32))


def test_barrier_after_divergent_return_or_break() -> None:
    def k(x: hk.Ptr[hk.f32], n: hk.i32):
        if hk.global_id(0) >= n:
            return
        hk.barrier()  # <-

    expect_error(k, r"some threads returned at line")

    def k2(x: hk.Ptr[hk.f32], n: hk.i32):
        for i in range(n):
            hk.barrier()  # <-
            if x[i] > 0:
                break

    expect_error(k2, r"some threads left the loop")


def test_barrier_divergence_through_variables_and_loops() -> None:
    def k(x: hk.Ptr[hk.f32], n: hk.i32):
        limit = n
        if hk.local_id(0) == 0:
            limit = 3
        for i in range(limit):
            hk.barrier()  # <-

    expect_error(k, r"the loop bounds at line")

    def k2(x: hk.Ptr[hk.f32], n: hk.i32):
        i = 0
        while i < n:
            hk.barrier()  # <-
            i = hk.global_id(0)

    expect_error(k2, r"the loop condition at line")


@hk.func
def guarded(x: hk.Ptr[hk.f32]):
    if hk.global_id(0) > 3:
        return
    hk.barrier()


def test_barrier_after_divergent_return_in_a_func() -> None:
    def k(x: hk.Ptr[hk.f32]):
        guarded(x)

    err = pytest.raises(CompileError, hk.parse_kernel, k).value
    assert err.reason.startswith("barrier in divergent control flow")
    assert err.line == inspect.getsourcelines(guarded.fn)[1] + 4


# ------------------------------------------------------------ features, JSON
def test_required_features() -> None:
    assert hk.required_features(saxpy.ir) == {Feature.KERNELS}

    def k(x: hk.Ptr[hk.f64], c: hk.Ptr[hk.i64]):
        t = hk.shared(hk.f32, 4)
        loc = hk.local(hk.i32, 2)
        hk.atomic_add(c, 0, 1)
        hk.barrier()
        loc[0] = hk.global_id(1)

    assert hk.required_features(lower(k)) == {
        Feature.KERNELS, Feature.F64, Feature.I64, Feature.ATOMICS, Feature.SHARED_MEMORY,
        Feature.BARRIERS, Feature.LOCAL_ARRAYS, Feature.MULTI_DIM}

    def k2(x: hk.Ptr[hk.f32]):
        v = 1.5  # an f64 variable

    assert Feature.F64 in hk.required_features(lower(k2))


def test_json_round_trip_and_stable_hash() -> None:
    for kern in (saxpy.ir, lower(test_json_round_trip_and_stable_hash.kernel)):  # type: ignore[attr-defined]
        text = kern.to_json()
        back = ir.Kernel.from_json(text)
        assert back == kern and back.to_json() == text and back.hash() == kern.hash()
    assert hk.parse_kernel(saxpy.fn).hash() == saxpy.ir.hash()
    assert saxpy.ir.hash() != lower(test_json_round_trip_and_stable_hash.kernel).hash()  # type: ignore[attr-defined]


def _json_kernel(x: hk.Ptr[hk.f32], c: hk.Ptr[hk.i32], n: hk.i32):
    t = hk.shared(hk.f32, 8)
    for i in range(n):
        v = clamp(x[i], -1.0, 1.0)
        x[i] = v if i % 2 == 0 else hk.sqrt(x[i])
    hk.atomic_cas(c, 0, 1, 2)
    hk.barrier()
    while n > 0:
        n -= 1
        if n == 3:
            continue


test_json_round_trip_and_stable_hash.kernel = _json_kernel  # type: ignore[attr-defined]


# ----------------------------------------------------------- host-side objects
def test_intrinsics_and_funcs_refuse_host_calls() -> None:
    with pytest.raises(InvalidArgumentError, match=r"hal.global_id is kernel syntax; call it only inside"):
        hk.global_id(0)
    with pytest.raises(InvalidArgumentError, match=r"kernel syntax"):
        square(1.0)
    with pytest.raises(InvalidArgumentError, match=r"launch it with saxpy\[grid, block\]"):
        saxpy(1.0)


class FakeQueue:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def launch(self, kernel: Any, grid: Any, block: Any, *args: Any) -> str:
        self.calls.append((kernel, grid, block, args))
        return "event"


class FakeDevice:
    def __init__(self) -> None:
        self.default_queue = FakeQueue()


class FakeArray:
    def __init__(self, device: FakeDevice) -> None:
        self.device = device


def test_launch_passes_everything_to_the_queue() -> None:
    q = FakeQueue()
    assert saxpy[(4, 2), 32, q](1.0, 2) == "event"
    assert q.calls == [(saxpy, (4, 2), 32, (1.0, 2))]
    dev = FakeDevice()
    arr = FakeArray(dev)
    launch = saxpy[8, (16, 1)]
    assert (launch.grid, launch.block, launch.queue) == (8, (16, 1), None)
    launch(2.0, np.zeros(3), arr, 5)  # a numpy array's .device is "cpu": skipped
    ((kernel, grid, block, args),) = dev.default_queue.calls
    assert (kernel, grid, block) == (saxpy, 8, (16, 1)) and args[2] is arr and len(args) == 4
    with pytest.raises(InvalidArgumentError, match=r"saxpy\[grid, block\]"):
        saxpy[4]
