"""Numeric building blocks of the reference interpreter: ops with the IR's exact semantics.

Every function here is total on whole arrays (no exceptions, no warnings
under ``np.errstate(all="ignore")``), so the interpreter may evaluate an
expression for inactive threads and simply discard the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from ._narrow import to_half
from .types import ScalarType

Value = Any
"""A per-thread value: a 1-D array with one element per chunk thread, or a numpy scalar when uniform."""


def int_pow(a: Value, b: Value, dtype: np.dtype[Any]) -> Value:
    """``a ** b`` wrapping in ``dtype``; a negative exponent truncates toward zero like the real result.

    So ``1 ** -n == 1``, ``(-1) ** -n == ±1`` and any other base (0 included) gives 0
    (numpy raises instead, which an interpreter evaluating masked-off threads cannot afford).
    """
    a = np.asarray(a, dtype)
    b = np.asarray(b, dtype)
    signed = dtype.kind == "i"
    neg = b < 0 if signed else np.zeros(b.shape, bool)
    e = np.where(neg, 0, b).astype(np.uint64)
    result = np.ones(np.broadcast(a, b).shape, dtype)
    base = a.copy()
    while e.any():
        result = np.where(e & 1, result * base, result).astype(dtype, copy=False)
        base = (base * base).astype(dtype, copy=False)
        e = e >> np.uint64(1)
    if signed and neg.any():
        one, zero = dtype.type(1), dtype.type(0)
        minus = np.where(b & 1, dtype.type(-1), one)
        result = np.where(neg, np.where(a == 1, one, np.where(a == -1, minus, zero)), result)
    return result.astype(dtype, copy=False)[()]


def shift(op: str, a: Value, count: Value, dtype: np.dtype[Any]) -> Value:
    """``shl``/``shr`` with the count taken modulo the bit width; ``shr`` is arithmetic for signed types."""
    bits = dtype.itemsize * 8
    c = (np.asarray(count) & (bits - 1)).astype(dtype, copy=False)
    return (np.left_shift if op == "shl" else np.right_shift)(a, c)


# --------------------------------------------------------------------- fma
def _odd_round(s: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Round-to-odd from a round-to-nearest sum ``s`` and its exact error ``err``."""
    even = (s.view(np.uint64) & np.uint64(1)) == 0
    fix = (err != 0) & even & np.isfinite(s)
    return np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)


def _two_sum(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = x + y
    bb = s - x
    return s, (x - (s - bb)) + (y - bb)


def _two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dekker's exact product (no hardware FMA in numpy); valid away from over/underflow."""
    def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = 134217729.0 * x
        hi = t - (t - x)
        return hi, x - hi
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fma_exact(a: float, b: float, c: float) -> float:
    """One correctly rounded f64 fma through exact rationals: the rare inputs near over/underflow."""
    if not (np.isfinite(a) and np.isfinite(b)):
        return a * b + c
    if not np.isfinite(c):
        return c
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if exact == 0:
        return a * b + c if a == 0 or b == 0 else 0.0
    try:
        return float(exact)
    except OverflowError:
        return float("inf") if exact > 0 else float("-inf")


def fma(a: Value, b: Value, c: Value, dtype: np.dtype[Any]) -> Value:
    """``a * b + c`` rounded once, as C's ``fma``/``fmaf`` (numpy has no fused multiply-add).

    f32: the product is exact in f64 and the sum is rounded to odd, which makes the final
    rounding to f32 exact (Boldo & Melquiond). f64: the same authors' emulation with an exact
    Dekker product; the few elements near overflow/underflow go through exact rationals.
    """
    if dtype.kind != "f":
        return a * b + c
    shape = np.broadcast(a, b, c).shape
    a64, b64, c64 = (np.broadcast_to(np.asarray(v, np.float64), shape).ravel() for v in (a, b, c))
    if dtype == np.float32:
        s, err = _two_sum(a64 * b64, c64)
        return _odd_round(s, err).astype(np.float32).reshape(shape)[()]
    uh, ul = _two_prod(a64, b64)
    th, tl = _two_sum(c64, uh)
    v, e = _two_sum(tl, ul)
    out = th + _odd_round(v, e)
    mag = np.abs(uh)
    safe = (np.isfinite(a64) & np.isfinite(b64) & (np.abs(c64) < 2.0 ** 1020)
            & (np.maximum(np.abs(a64), np.abs(b64)) < 2.0 ** 995) & (mag < 2.0 ** 1020)
            & ((mag > 2.0 ** -960) | (a64 == 0) | (b64 == 0)))
    for i in np.flatnonzero(~safe):
        out[i] = _fma_exact(float(a64[i]), float(b64[i]), float(c64[i]))
    return out.reshape(shape)[()]


# ------------------------------------------------------------- conversions
_F32 = np.dtype(np.float32)


def convert(x: Value, src: ScalarType, dst: ScalarType) -> Value:
    """An IR ``Cast`` (and the implicit conversions of narrow types), with the IR's exact rules.

    f16 and bf16 widen exactly to f32 first; a conversion *to* f16 or bf16 rounds the exact source
    value once, to nearest even (:mod:`._narrow`, never through f32 and never left to a library); a
    float to an 8/16-bit integer truncates to i32 and wraps (C leaves out-of-range undefined; the IR
    does not).
    """
    if src == dst:
        return x
    if src.is_narrow and src.is_float:
        x = np.asarray(x).astype(_F32)
        src = ScalarType.F32
        if dst == src:
            return x[()]
    if dst.is_narrow and dst.is_float:
        return to_half(x, dst)
    if dst.is_narrow and dst.is_int and src.is_float:
        x = np.asarray(x).astype(np.int32)
    return np.asarray(x).astype(dst.np_dtype)[()]


# ------------------------------------------------------------------ tables
BinaryFn = Callable[[Value, Value], Value]


def binary_fn(op: str, operand: ScalarType, result: ScalarType) -> BinaryFn:
    """The numpy implementation of a ``Binary`` op whose operands have type ``operand``."""
    dt = operand.np_dtype
    if op in ("shl", "shr"):
        return lambda a, b: shift(op, a, b, dt)
    if op == "pow":
        if operand.is_float:
            return np.power
        return lambda a, b: int_pow(a, b, dt)
    if op == "div" and not result.is_float:
        raise ValueError(f"'div' is float-only in the IR, got {result.value}")
    fn = _BINARY.get(op)
    if fn is None:
        raise ValueError(f"unknown binary op {op!r}")
    return fn


_BINARY: dict[str, BinaryFn] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.true_divide,
    "floordiv": np.floor_divide, "mod": np.remainder,
    "bitand": np.bitwise_and, "bitor": np.bitwise_or, "bitxor": np.bitwise_xor,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
    "and": np.logical_and, "or": np.logical_or,
}

UNARY: dict[str, Callable[[Value], Value]] = {
    "neg": np.negative, "not": np.logical_not, "invert": np.invert,
}


def math_fn(func: str, result: ScalarType) -> Callable[..., Value]:
    """The numpy implementation of a math ``Call`` computing in type ``result``."""
    dt = result.np_dtype
    if func == "fma":
        return lambda a, b, c: fma(a, b, c, dt)
    if func == "pow":
        return binary_fn("pow", result, result)
    if func in ("min", "max"):
        ufunc = np.minimum if func == "min" else np.maximum

        def reduce(*args: Value) -> Value:
            out = args[0]
            for v in args[1:]:
                out = ufunc(out, v)
            return out
        return reduce
    fn = _MATH.get(func)
    if fn is None:
        raise ValueError(f"unknown math function {func!r}")
    return fn


def _in_f64(fn: Callable[..., Value]) -> Callable[..., Value]:
    """``fn`` evaluated in double precision and rounded to the arguments' type once: for f32 the
    result is within a hair of correctly rounded, which makes the reference tighter than any backend."""
    def call(*args: Value) -> Value:
        dtype = np.result_type(*args)
        return np.asarray(fn(*(np.asarray(a, np.float64) for a in args))).astype(dtype)[()]
    return call


def _libm(fn: Callable[[float], float]) -> Callable[[Value], Value]:
    """A ``math`` function (numpy has no erf) applied element by element in double precision."""
    ufunc = np.frompyfunc(fn, 1, 1)
    return lambda x: np.asarray(ufunc(x), np.float64)


def _pattern(x: Value) -> tuple[np.ndarray, int]:
    """An integer's bit pattern as the unsigned type of its width (modular, as C's conversion)."""
    a = np.asarray(x)
    width = a.dtype.itemsize * 8
    return a.astype(np.uint64 if width == 64 else np.uint32), width


def _popcount(x: Value) -> Value:
    u, _ = _pattern(x)
    return np.bitwise_count(u).astype(np.asarray(x).dtype)


def _clz(x: Value) -> Value:
    u, width = _pattern(x)
    n = np.zeros(u.shape, np.int64)
    s = width // 2
    while s >= 1:  # binary search for the highest set bit, as the C helpers
        top_clear = (u >> u.dtype.type(width - s)) == 0
        n += np.where(top_clear, s, 0)
        u = np.where(top_clear, u << u.dtype.type(s), u)
        s //= 2
    out: np.ndarray = np.where(np.asarray(x) == 0, width, n).astype(np.asarray(x).dtype)
    return out


def _ctz(x: Value) -> Value:
    u, width = _pattern(x)
    low = u & (~u + u.dtype.type(1))  # the lowest set bit
    out: np.ndarray = np.where(u == 0, width, width - 1 - np.asarray(_clz(low)).astype(np.int64))
    return out.astype(np.asarray(x).dtype)


_MATH: dict[str, Callable[..., Value]] = {
    "popcount": _popcount, "clz": _clz, "ctz": _ctz,
    "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "abs": np.abs, "floor": np.floor, "ceil": np.ceil,
    "trunc": np.trunc, "round": np.rint, "copysign": np.copysign,
    "isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite,
    "rsqrt": _in_f64(lambda x: 1.0 / np.sqrt(x)),
    "erf": _in_f64(_libm(math.erf)), "erfc": _in_f64(_libm(math.erfc)),
    **{name: _in_f64(ufunc) for name, ufunc in (
        ("exp2", np.exp2), ("log2", np.log2), ("log10", np.log10), ("log1p", np.log1p), ("expm1", np.expm1),
        ("tan", np.tan), ("asin", np.arcsin), ("acos", np.arccos), ("atan", np.arctan), ("atan2", np.arctan2),
        ("sinh", np.sinh), ("cosh", np.cosh), ("hypot", np.hypot))},
}
"""numpy's ufuncs where they are exact or were already the reference; the later functions in double
precision, rounded once (``erf``/``erfc`` through the C library's, via ``math``)."""


def const(value: int | float | bool, type_: ScalarType) -> np.ndarray:
    """A literal as a 0-d array of its type; integers wrap into range (``-1`` as ``u32`` is 2**32-1)."""
    if type_.is_int:
        return np.array(int(value) % (1 << type_.bits), np.uint64).astype(type_.np_dtype)
    return np.array(value, type_.np_dtype)


# ----------------------------------------------------------------- atomics
def atomic(op: str, mem: np.ndarray, addr: np.ndarray, operands: list[np.ndarray]) -> np.ndarray:
    """Apply one atomic per element of ``addr`` to ``mem`` in element order; return the old values.

    Element order is the reference order (increasing linear global thread id), so
    duplicates see each other's effects exactly as if the atomics ran one after the
    other: ``add`` gets exclusive prefix sums per address, ``exchange`` the previous
    thread's value, ``min``/``max``/``cas`` the sequential running result.
    """
    dtype = mem.dtype
    order = np.argsort(addr, kind="stable")
    a = addr[order]
    vals = [np.broadcast_to(v, addr.shape)[order].astype(dtype, copy=False) for v in operands]
    start = np.ones(len(a), bool)
    start[1:] = a[1:] != a[:-1]
    seg = np.flatnonzero(start)
    base = mem[a[seg]]
    seg_id = np.cumsum(start) - 1
    old = np.empty(len(a), dtype)
    if start.all():
        old[:] = base
        mem[a] = _combine(op, base, vals)
    elif op == "exchange":
        old[1:] = vals[0][:-1]
        old[seg] = base
        last = np.append(seg[1:], len(a)) - 1
        mem[a[seg]] = vals[0][last]
    elif op == "add" and dtype.kind in "iu":
        wide = np.int64 if dtype.kind == "i" else np.uint64
        incl = np.cumsum(vals[0], dtype=wide)
        excl = incl - vals[0]
        prefix = excl - excl[seg][seg_id]
        old[:] = (base[seg_id].astype(wide) + prefix).astype(dtype)
        total = incl[np.append(seg[1:], len(a)) - 1] - excl[seg]
        mem[a[seg]] = (base.astype(wide) + total).astype(dtype)
    else:
        _sequential(op, mem, a, vals, seg, seg_id, old)
    out = np.empty(len(a), dtype)
    out[order] = old
    return out


def _combine(op: str, cur: Value, vals: list[np.ndarray]) -> Value:
    if op == "add":
        return cur + vals[0]
    if op == "min":
        return np.minimum(cur, vals[0])
    if op == "max":
        return np.maximum(cur, vals[0])
    if op == "exchange":
        return vals[0]
    if op == "cas":
        return np.where(cur == vals[0], vals[1], cur)
    if op in _ACCUMULATE:
        return _ACCUMULATE[op](cur, vals[0])
    raise ValueError(f"unknown atomic op {op!r}")


_ACCUMULATE = {"add": np.add, "min": np.minimum, "max": np.maximum, "and": np.bitwise_and, "or": np.bitwise_or,
               "xor": np.bitwise_xor}


def _sequential(op: str, mem: np.ndarray, a: np.ndarray, vals: list[np.ndarray],
                seg: np.ndarray, seg_id: np.ndarray, old: np.ndarray) -> None:
    """Colliding atomics one after the other, vectorised across addresses.

    Either in rounds (round r applies the r-th atomic of every address at once) or
    address by address (one ``ufunc.accumulate``, or a scalar loop for ``cas``),
    whichever needs fewer Python iterations: at most about sqrt(threads).
    """
    rank = np.arange(len(a)) - seg[seg_id]
    lengths = np.diff(np.append(seg, len(a)))
    rounds = int(lengths.max())
    long_segs = np.flatnonzero(lengths > 1)
    if rounds <= len(long_segs):
        by_rank = np.argsort(rank, kind="stable")
        bounds = np.searchsorted(rank[by_rank], np.arange(rounds + 1))
        for r in range(rounds):
            idx = by_rank[bounds[r]:bounds[r + 1]]
            cur = mem[a[idx]]
            old[idx] = cur
            mem[a[idx]] = _combine(op, cur, [v[idx] for v in vals])
        return
    single = seg[lengths == 1]
    if len(single):
        cur = mem[a[single]]
        old[single] = cur
        mem[a[single]] = _combine(op, cur, [v[single] for v in vals])
    for s in long_segs:
        lo, hi = seg[s], seg[s] + lengths[s]
        addr = a[lo]
        if op == "cas":
            cur = mem[addr]
            cmp, new = vals[0][lo:hi].tolist(), vals[1][lo:hi].tolist()
            for k in range(hi - lo):
                old[lo + k] = cur
                if cur == cmp[k]:
                    cur = new[k]
            mem[addr] = cur
        else:
            acc = _ACCUMULATE[op].accumulate(np.concatenate(([mem[addr]], vals[0][lo:hi])), dtype=mem.dtype)
            old[lo:hi] = acc[:-1]
            mem[addr] = acc[-1]
