"""The portable implementations: kernel-language versions of every operator family.

They run on any device that runs kernels; the dispatcher uses them when no
native serves an operator. Each follows the calling convention of
:mod:`hal.ops._dispatch`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import elementwise, linalg, reduce

PORTABLE: dict[str, Callable[..., Any]] = {
    "gemm": linalg.gemm,
    "binary": elementwise.binary,
    "unary": elementwise.unary,
    "reduce": reduce.reduce,
    "softmax": reduce.softmax,
    "conv2d": linalg.conv2d,
    "transpose": linalg.transpose,
}
"""Operator family -> its portable implementation."""
