"""Array comparisons whose failures a vendor can read: how many elements differ, where the first
ones are, what they hold and the largest error, instead of ``assert np.False_`` and two array reprs."""

from __future__ import annotations

from typing import Any

import numpy as np

SHOWN = 5
"""Differing elements a failure message lists."""


def assert_array_equal(actual: Any, desired: Any, *, what: str = "result") -> None:
    """Every element of ``actual`` equals ``desired`` (NaN matches NaN; a scalar ``desired``
    broadcasts). ``actual`` may be a ``hal.Array``: it is read to the host."""
    __tracebackhide__ = True
    assert_allclose(actual, desired, rtol=0.0, atol=0.0, what=what)


def assert_allclose(actual: Any, desired: Any, *, rtol: float, atol: float, what: str = "result") -> None:
    """``|actual - desired| <= atol + rtol * |desired|`` elementwise (NaN matches NaN)."""
    __tracebackhide__ = True
    got = np.asarray(actual)
    want = np.broadcast_to(np.asarray(desired), got.shape) if np.ndim(desired) == 0 else np.asarray(desired)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape}, expected {want.shape}")
    message = mismatch_summary(got, want, rtol=rtol, atol=atol)
    if message:
        raise AssertionError(f"{what}: {message}")


def mismatch_summary(got: np.ndarray, want: np.ndarray, *, rtol: float = 0.0, atol: float = 0.0) -> str:
    """One line saying how ``got`` differs from ``want`` (same shape), or "" when it does not."""
    if got.dtype.kind in "fc" or want.dtype.kind in "fc":
        with np.errstate(invalid="ignore", over="ignore"):
            bad = ~np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    else:  # integers and bools compare exactly
        bad = got != want
    count = int(bad.sum())
    if not count:
        return ""
    where = np.argwhere(bad)[:SHOWN]
    shown = ", ".join(f"[{', '.join(map(str, idx))}] got {got[tuple(idx)]} want {want[tuple(idx)]}"
                      for idx in where)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(got[bad].astype(np.float64) - want[bad].astype(np.float64))
    worst = f"; max abs error {np.nanmax(error):.6g}" if np.isfinite(error).any() else ""
    return f"{count} of {got.size} elements differ (shape {got.shape}, {got.dtype}); first: {shown}{worst}"
