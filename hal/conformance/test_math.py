"""The kernel math library on the device under test, against the C library (Python's ``math``) and numpy.

Each function's tolerance is its bound in :data:`hal.kernel.accuracy.ACCURACY` (the table of
``docs/kernel-math.md``), in ulp of the result against the exact value: the bound plus the half ulp
of the correctly rounded result itself, plus one ulp for f64, whose reference is only double precision
(the C library's, within about 1 ulp). Exact functions must return the reference's bits (any NaN for
a NaN, but ``copysign`` must set its sign). Inputs: signed zeros, infinities, NaN, subnormals, huge
arguments (trigonometric argument reduction), each function's domain edges and log-spaced random values.
"""

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import hal
from hal.kernel.accuracy import ACCURACY

pytestmark = pytest.mark.feature("kernels")
BLOCK = 128
UNARY = ("erf", "erfc", "exp2", "log2", "log10", "log1p", "expm1", "rsqrt", "tan", "asin", "acos", "atan", "sinh",
         "cosh", "trunc", "round", "sqrt", "exp", "log", "sin", "cos", "tanh", "floor", "ceil", "abs")
BINARY = ("atan2", "hypot", "copysign", "pow", "min", "max")
PREDICATES = ("isnan", "isinf", "isfinite")


def unary_kernel(t: hal.ScalarType) -> Any:
    """Every one-argument function of ``t`` at once: ``out[i * len(UNARY) + k]`` is ``UNARY[k](x[i])``."""
    @hal.kernel
    def unary(x: hal.Ptr[t], out: hal.Ptr[t], flags: hal.Ptr[hal.i32], n: hal.i32):
        i = hal.global_id(0)
        if i < n:
            v = x[i]
            o = i * 25
            out[o + 0] = hal.erf(v)
            out[o + 1] = hal.erfc(v)
            out[o + 2] = hal.exp2(v)
            out[o + 3] = hal.log2(v)
            out[o + 4] = hal.log10(v)
            out[o + 5] = hal.log1p(v)
            out[o + 6] = hal.expm1(v)
            out[o + 7] = hal.rsqrt(v)
            out[o + 8] = hal.tan(v)
            out[o + 9] = hal.asin(v)
            out[o + 10] = hal.acos(v)
            out[o + 11] = hal.atan(v)
            out[o + 12] = hal.sinh(v)
            out[o + 13] = hal.cosh(v)
            out[o + 14] = hal.trunc(v)
            out[o + 15] = hal.round(v)
            out[o + 16] = hal.sqrt(v)
            out[o + 17] = hal.exp(v)
            out[o + 18] = hal.log(v)
            out[o + 19] = hal.sin(v)
            out[o + 20] = hal.cos(v)
            out[o + 21] = hal.tanh(v)
            out[o + 22] = hal.floor(v)
            out[o + 23] = hal.ceil(v)
            out[o + 24] = hal.abs(v)
            flags[i] = hal.i32(hal.isnan(v)) + 2 * hal.i32(hal.isinf(v)) + 4 * hal.i32(hal.isfinite(v))
    return unary


def binary_kernel(t: hal.ScalarType) -> Any:
    @hal.kernel
    def binary(x: hal.Ptr[t], y: hal.Ptr[t], out: hal.Ptr[t], n: hal.i32):
        i = hal.global_id(0)
        if i < n:
            a = x[i]
            b = y[i]
            out[i * 6 + 0] = hal.atan2(a, b)
            out[i * 6 + 1] = hal.hypot(a, b)
            out[i * 6 + 2] = hal.copysign(a, b)
            out[i * 6 + 3] = hal.pow(a, b)
            out[i * 6 + 4] = hal.min(a, b)
            out[i * 6 + 5] = hal.max(a, b)
    return binary


# ------------------------------------------------------------- references
_NUMPY: dict[str, Callable[..., Any]] = {
    "erf": np.frompyfunc(math.erf, 1, 1), "erfc": np.frompyfunc(math.erfc, 1, 1), "rsqrt": lambda x: 1 / np.sqrt(x),
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2, "round": np.rint,
    "abs": np.abs, "pow": np.power, "min": np.minimum, "max": np.maximum,
}
"""numpy's spelling where it differs from hal's (numpy has no erf: the C library's, through ``math``)."""
_LIBM = {"asin": math.asin, "acos": math.acos, "atan": math.atan, "atan2": math.atan2, "abs": math.fabs,
         "rsqrt": lambda x: 1 / math.sqrt(x)}


def reference(name: str, *args: np.ndarray) -> np.ndarray:
    """``name`` of double-precision ``args``: the C library's result (``math``, within about 1 ulp), or
    numpy's where ``math`` refuses (domain and range errors, where C99 Annex F defines the value)."""
    fallback = _NUMPY.get(name) or getattr(np, name)
    libm = _LIBM.get(name) or getattr(math, name, None)
    with np.errstate(all="ignore"):
        want = np.asarray(fallback(*args), np.float64)
        if libm is None or ACCURACY[name].f64 == 0:
            return want
        out = want.copy()
        for k, values in enumerate(zip(*(a.tolist() for a in args))):
            try:
                out[k] = libm(*values)
            except (ValueError, OverflowError, ZeroDivisionError):
                pass
        return out


def ulp_errors(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in ulp of the result type at the correctly rounded result; inf where a special
    value (NaN, infinity) differs."""
    rounded = exact.astype(got.dtype)
    special = ~np.isfinite(rounded)
    with np.errstate(all="ignore"):
        err = np.abs(got.astype(np.float64) - exact) / np.spacing(np.abs(rounded)).astype(np.float64)
        same_special = (np.isnan(rounded) & np.isnan(got)) | (rounded == got)
    err = np.where(np.isnan(err) & (got.astype(np.float64) == exact), 0.0, err)  # equal infinities
    return np.where(special, np.where(same_special, 0.0, np.inf), np.where(np.isfinite(got), err, np.inf))


def check(name: str, got: np.ndarray, args: tuple[np.ndarray, ...], bits: int) -> None:
    exact = reference(name, *(a.astype(np.float64) for a in args))
    bound = ACCURACY[name].ulps(bits)
    shown = ", ".join
    if bound == 0:
        want = exact.astype(got.dtype)
        if name == "copysign":  # the result's sign is the point, NaN or not
            same = (got.view(f"u{bits // 8}") == want.view(f"u{bits // 8}")) | (
                np.isnan(got) & np.isnan(want) & (np.signbit(got) == np.signbit(want)))
        else:
            same = (got.view(f"u{bits // 8}") == want.view(f"u{bits // 8}")) | (np.isnan(got) & np.isnan(want))
        bad = np.flatnonzero(~same)
        assert not bad.size, (f"hal.{name} on f{bits} must be exact: {bad.size} of {got.size} differ, e.g. " + shown(
            f"{name}{tuple(float(a[k]) for a in args)} = {float(got[k])!r}, want {float(want[k])!r}" for k in bad[:5]))
        return
    tolerance = bound + (0.5 if bits == 32 else 1.5)
    err = ulp_errors(got, exact)
    bad = np.flatnonzero(~(err <= tolerance))
    assert not bad.size, (
        f"hal.{name} on f{bits} is documented within {bound:g} ulp; {bad.size} of {got.size} results are further "
        f"than {tolerance:g} ulp from the exact value, e.g. " + shown(
            f"{name}{tuple(float(a[k]) for a in args)} = {float(got[k])!r}, want {exact[k]!r} ({err[k]:.3g} ulp)"
            for k in bad[:5]))


# ----------------------------------------------------------------- inputs
def unary_inputs(dtype: np.dtype[Any]) -> np.ndarray:
    info = np.finfo(dtype)
    tiny, sub = float(info.tiny), float(info.smallest_subnormal)
    edges = [0.0, 1.0, 0.5, 1.5, 2.5, 3.5, 1e-8, 0.999, 1.0001, 2.0, 3.0, 10.0, 20.0, 50.0, 88.0, 100.0, 700.0,
             1e5, 1e10, 1e15, 1e22, 1e30, 3e38, 1e300, math.pi / 2, math.pi, 1e6 * math.pi, 0.7853981633974483,
             tiny, sub, 3 * sub, tiny / 3, float(info.max), float(info.max) / 2, math.inf, math.nan, 126.9, 127.5,
             1023.5, 709.7, 88.7, 9.9, 26.5, 27.3, 0.4769, 1e-30, 4503599627370495.5, 8388607.5, 0.49999997]
    rng = np.random.default_rng(31)
    logspace = 10.0 ** rng.uniform(math.log10(float(info.smallest_subnormal)) + 1, math.log10(float(info.max)) - 1,
                                   3000)
    values = np.concatenate([edges, logspace, rng.uniform(-1, 1, 1000), rng.uniform(-12, 12, 1000),
                             np.round(rng.uniform(-50, 50, 300)) + 0.5])
    with np.errstate(over="ignore"):
        values = np.concatenate([values, -values]).astype(dtype)
    return values


def binary_inputs(dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray]:
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -2.0, 3.0, 1e-3, 1e30, -1e30, math.inf, -math.inf, math.nan,
                        float(np.finfo(dtype).smallest_subnormal), 1e-40, 100.0, -0.5], dtype)
    x, y = (a.ravel() for a in np.meshgrid(special, special))
    rng = np.random.default_rng(37)
    big = 10.0 ** rng.uniform(-30, 30, (2, 3000)) * rng.choice([-1.0, 1.0], (2, 3000))
    small = rng.uniform(-4, 4, (2, 2000))
    return (np.concatenate([x, big[0], small[0], np.abs(small[0])]).astype(dtype),
            np.concatenate([y, big[1], small[1], small[1] * 3]).astype(dtype))


# ------------------------------------------------------------------ tests
TYPES = [pytest.param(hal.f32, id="f32"), pytest.param(hal.f64, id="f64", marks=pytest.mark.feature("f64"))]


@pytest.mark.parametrize("t", TYPES)
def test_one_argument_functions(device: Any, t: hal.ScalarType) -> None:
    x = unary_inputs(t.np_dtype)
    n = x.size
    out, flags = device.empty((n * len(UNARY),), t.np_dtype), device.empty((n,), np.int32)
    unary_kernel(t)[(n + BLOCK - 1) // BLOCK, BLOCK, device.default_queue](device.array(x), out, flags, n)
    got = out.numpy().reshape(n, len(UNARY))
    failures = []
    for k, name in enumerate(UNARY):
        try:
            check(name, got[:, k], (x,), t.bits)
        except AssertionError as exc:
            failures.append(str(exc))
    want = np.isnan(x) + 2 * np.isinf(x) + 4 * np.isfinite(x)
    if not np.array_equal(flags.numpy(), want):
        failures.append(f"hal.isnan/isinf/isfinite on {t.value} differ from numpy's")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("t", TYPES)
def test_two_argument_functions(device: Any, t: hal.ScalarType) -> None:
    x, y = binary_inputs(t.np_dtype)
    n = x.size
    out = device.empty((n * len(BINARY),), t.np_dtype)
    binary_kernel(t)[(n + BLOCK - 1) // BLOCK, BLOCK, device.default_queue](device.array(x), device.array(y), out, n)
    got = out.numpy().reshape(n, len(BINARY))
    failures = []
    for k, name in enumerate(BINARY):
        try:
            check(name, got[:, k], (x, y), t.bits)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, "\n".join(failures)
