"""Conversions to the 16-bit float types, owned by hal: every source value rounds **once**, to nearest
even, from its exact value (IEEE 754; numpy's float16 does the same for f16).

hal does not leave this to numpy or ``ml_dtypes``: ml_dtypes changed f64 -> bfloat16 from two roundings
(through f32) to one in 0.7, and a hardware f32 -> f16 conversion may quiet a signalling NaN. So the
reference interpreter, host arrays (``dev.array``, ``q.fill``) and scalar arguments all come here, and
:mod:`._cnarrow` is the same rule in C, bit for bit. Rules beyond rounding: a magnitude at or past the
largest finite value plus half an ulp becomes infinity; NaN stays NaN with its sign (f16 keeps the top
payload bits, never turning it into an infinity; bf16 is the quiet NaN ``0x7fc0``); an integer rounds
from its exact value too (i64/u64 beyond 2**53 through a sticky bit, never through f32).
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from .types import ScalarType

_U = np.uint64
_FORMATS = {ScalarType.F16: (10, 15, 0x1F), ScalarType.BF16: (7, 127, 0xFF)}
"""Target: mantissa bits, exponent bias, all-ones exponent field."""
_SOURCES = {np.dtype(np.float64): (52, 1023, 0x7FF, np.uint64), np.dtype(np.float32): (23, 127, 0xFF, np.uint32)}
"""Source: mantissa bits, exponent bias, all-ones exponent field, bit-pattern dtype."""
_F64, _F64_BITS = struct.Struct("<d"), struct.Struct("<Q")


def _rne(v: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``v / 2**n`` rounded to nearest, ties to even (uint64, 1 <= n <= 63)."""
    q = v >> n
    rest = v & ((_U(1) << n) - _U(1))
    mid = _U(1) << (n - _U(1))
    out: np.ndarray = q + ((rest > mid) | ((rest == mid) & ((q & _U(1)) == _U(1)))).astype(_U)
    return out


def _float_bits(x: np.ndarray, dst: ScalarType) -> np.ndarray:
    """f32/f64 ``x`` -> the uint16 patterns of ``dst``, from the source's own bits."""
    dm, bias_d, emax_d = _FORMATS[dst]
    sm, bias_s, emax_s, uint = _SOURCES[x.dtype]
    b = x.view(uint).astype(_U)
    sign = (b >> _U(sm + emax_s.bit_length())) << _U(15)
    e = (b >> _U(sm)) & _U(emax_s)
    m = b & _U((1 << sm) - 1)
    normal = e != 0
    big = np.where(normal, m | _U(1 << sm), m)  # the significand as an integer
    exp = np.where(normal, e.astype(np.int64) - bias_s, 1 - bias_s)  # value = big * 2**(exp - sm)
    # Below the target's normal range the quantum stays at its subnormal one; past sm + 2 bits the
    # value is under half the smallest subnormal and rounds to zero.
    shift = np.minimum(sm - dm + np.maximum(0, 1 - bias_d - exp), sm + 2).astype(_U)
    prefix = (np.maximum(exp + bias_d, 1) - 1).astype(_U) << _U(dm)  # + the implicit bit = the exponent
    inf = _U(emax_d << dm)
    finite = np.where(exp + bias_d >= emax_d, inf, prefix + _rne(big, shift))  # a carry may give inf too
    if dst is ScalarType.BF16:
        nan = np.full_like(b, _U(0x7FC0))
    else:
        payload = m >> _U(sm - dm)
        nan = inf | np.where(payload != 0, payload, _U(1))
    special = np.where(m != 0, nan, inf)
    out: np.ndarray = (np.where(e == _U(emax_s), special, finite) | sign).astype(np.uint16)
    return out


def _exact_f64(x: np.ndarray) -> np.ndarray:
    """Integers (or bools) as f64 that round to every 16-bit type as the integer does: exact below 2**53;
    above, the bits that f64 cannot hold become one sticky bit (they lie far below a half type's ulp)."""
    if x.dtype.itemsize < 8:
        return x.astype(np.float64)
    neg = x < 0
    mag = np.where(neg, ~x.view(_U) + _U(1), x.view(_U))
    low = mag & _U(0x7FF)
    mag = np.where(mag >> _U(53) != 0, (mag - low) | ((low != 0).astype(_U) << _U(11)), mag)
    f = mag.astype(np.float64)
    return np.where(neg, -f, f)


def half_bits_of(x: Any, dst: ScalarType) -> np.ndarray:
    """The uint16 patterns of f16/bf16 ``dst`` nearest each value of ``x`` (any real numpy data)."""
    if dst not in _FORMATS:
        raise ValueError(f"{dst.value} is not a 16-bit float type")
    x = np.asarray(x)
    shape, x = x.shape, x.reshape(-1)  # arrays wrap silently where numpy scalars would warn
    if x.dtype.kind in "biu":
        x = _exact_f64(x)
    elif x.dtype not in _SOURCES:  # f16/bf16 widen exactly to f32; wider floats than f64 are not kernel data
        x = x.astype(np.float32 if x.dtype.itemsize == 2 else np.float64)
    return _float_bits(x, dst).reshape(shape)


def scalar_half_bits(value: Any, dst: ScalarType) -> int:
    """:func:`half_bits_of` for one host number, in exact integer arithmetic on its bits (a scalar
    argument is packed at every launch: this takes about a microsecond where the array code takes tens)."""
    dm, bias, emax = _FORMATS[dst]
    if isinstance(value, (int, np.integer)):
        v = int(value)
        sign, big, exp = (0x8000 if v < 0 else 0), abs(v), 0  # value = big * 2**exp, exactly
    else:
        f = float(value)  # exact for every real source type hal has (f16, bf16, f32, f64)
        if not math.isfinite(f):
            return int(half_bits_of(f, dst))  # infinities and NaN payloads: the array code's rules
        b = _F64_BITS.unpack(_F64.pack(f))[0]
        e, m = (b >> 52) & 0x7FF, b & ((1 << 52) - 1)
        sign, big, exp = (b >> 48) & 0x8000, (m | (1 << 52)) if e else m, max(e, 1) - 1075
    if big == 0:
        return sign
    top = big.bit_length() - 1 + exp  # 2**top <= value < 2**(top + 1)
    shift = max(top, 1 - bias) - dm - exp  # the target's quantum, relative to the source's
    if shift <= 0:
        r = big << -shift
    else:
        r, rest, mid = big >> shift, big & ((1 << shift) - 1), 1 << (shift - 1)
        r += rest > mid or (rest == mid and r & 1)  # ties to even; a carry may end a binade
    bits = r if top < 1 - bias else ((top + bias - 1) << dm) + r
    return sign | min(bits, emax << dm)


def to_half(x: Any, dst: ScalarType) -> Any:
    """``x`` converted to f16/bf16 ``dst`` by hal's rule (an array, or a 0-d result as a numpy scalar)."""
    out = half_bits_of(x, dst).view(dst.np_dtype)
    return out[()] if out.ndim == 0 else out


def is_half(dtype: Any) -> bool:
    """Whether ``dtype`` (anything ``np.dtype`` reads; ``None`` is not) is f16 or bf16."""
    try:
        return dtype is not None and np.dtype(dtype).name in _HALF_NAMES
    except TypeError:
        return False


def astype(x: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """``x.astype(dtype)``, except that real numbers going to f16/bf16 round by hal's rule."""
    t = _HALF_NAMES.get(dtype.name)
    if t is None or (x.dtype.kind not in "biuf" and x.dtype.name != "bfloat16"):
        return x.astype(dtype)
    return half_bits_of(x, t).view(dtype)


_HALF_NAMES = {"float16": ScalarType.F16, "bfloat16": ScalarType.BF16}
