"""The expected f16/bf16 bits of a conversion, computed here from the values alone (no library's cast).

Every finite non-negative 16-bit pattern is an exact f64, and so is the midpoint of two neighbours;
infinity takes the place of the value one ulp past the largest finite one (2**16, 2**128), as IEEE 754
rounds. A value is located among them by exact f64 comparisons (``searchsorted``), goes to the
nearer neighbour, and a tie to the one with the even pattern. So the reference rounds once from
the exact value, whatever numpy or ml_dtypes do. An integer source is compared exactly as an
integer (Python compares an int with a float exactly), since i64 values beyond 2**53 are not f64s.
"""

from __future__ import annotations

import bisect
import functools
from typing import Any

import numpy as np

_FORMAT = {"f16": (10, 15), "bf16": (7, 127)}
"""mantissa bits, exponent bias"""


def pattern_value(bits: int, fmt: str) -> float:
    """The exact value of a non-negative, finite pattern of ``fmt`` (integer arithmetic)."""
    mb, bias = _FORMAT[fmt]
    e, m = bits >> mb, bits & ((1 << mb) - 1)
    return float(m * 2.0 ** (1 - bias - mb)) if e == 0 else float(((1 << mb) | m) * 2.0 ** (e - bias - mb))


@functools.cache
def _table(fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """Values of patterns 0 .. infinity (infinity's as one ulp past the largest finite value)."""
    mb, bias = _FORMAT[fmt]
    inf = ((1 << (15 - mb)) - 1) << mb
    values = np.array([pattern_value(b, fmt) for b in range(inf)] + [2.0 ** (bias + 1)])
    return values, np.arange(inf + 1, dtype=np.uint16)


def nearest_bits(x: Any, fmt: str) -> np.ndarray:
    """The uint16 pattern of ``fmt`` ("f16" or "bf16") nearest each value of ``x`` (f32/f64/integer data):
    ties to even, overflow to infinity, NaN as the quiet NaN of its sign."""
    x = np.asarray(x)
    values, patterns = _table(fmt)
    if x.dtype.kind in "iu":
        exact = values.tolist()
        return np.array([_nearest_int(int(v), exact) for v in x.ravel()], np.uint16).reshape(x.shape)
    with np.errstate(invalid="ignore"):  # signalling NaNs widen with a warning
        a = np.abs(x.astype(np.float64))  # exact for f32 and f64
    sign = np.signbit(x).astype(np.uint16) << np.uint16(15)
    nan = np.isnan(a)
    a = np.where(nan, 0.0, np.minimum(a, values[-1]))
    hi = np.minimum(np.searchsorted(values, a, side="left"), len(values) - 1)  # values[hi] >= a
    lo = np.maximum(hi - 1, 0)
    exact = values[hi] == a
    mid = (values[lo] + values[hi]) / 2  # exact: both have at most 11 significant bits
    up = (a > mid) | ((a == mid) & (patterns[hi] % 2 == 0))
    bits = np.where(exact, patterns[hi], np.where(up, patterns[hi], patterns[lo]))
    quiet_nan = np.uint16(0x7E00 if fmt == "f16" else 0x7FC0)
    out: np.ndarray = np.where(nan, quiet_nan, bits).astype(np.uint16) | sign
    return out


def _nearest_int(v: int, values: list[float]) -> int:
    """The same for one integer: Python compares an int with a float exactly."""
    a = abs(v)
    hi = min(bisect.bisect_left(values, a), len(values) - 1)
    lo = max(hi - 1, 0)
    mid = (values[lo] + values[hi]) / 2
    up = values[hi] <= a or a > mid or (a == mid and hi % 2 == 0)
    return (hi if up else lo) | (0x8000 if v < 0 else 0)
