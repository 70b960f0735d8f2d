"""Native operators: the vocabulary of ``hal.ops`` and the contract of a backend's own implementation.

A plugin returns :class:`NativeOp` values from its ``hal_ops`` hook. The public operator has
validated everything once (devices, dtypes, shapes, scalars; ``axis`` normalised), allocated
``out`` and announced the command (hazard checks, profiling); the implementation only does the
work, on the backend's own objects. Its ``fn`` is called as ``fn(queue, *operands, trace=trace,
**params)`` where ``queue`` is the backend's :class:`QueueImpl` and every array is an
:class:`Operand` (C-contiguous), per family:

* ``gemm``: ``fn(queue, a, b, out, *, alpha, beta, trans_a, trans_b, trace)``:
  ``out = alpha * op(a) @ op(b) + beta * out`` with ``op(x) = x.T`` when ``trans_x``; a and b
  are 2-D; float32/float64 with out of the same dtype, or int8 with an int32 out (wrapping, int
  alpha/beta). When ``beta == 0`` out is write-only (its old contents, NaN included, are ignored).
* ``binary`` (add sub mul div maximum minimum): ``fn(queue, op_name, a, b, out, *, trace)``;
  a and b have out's shape and dtype, or one of them (never both) is a Python float.
* ``unary`` (relu gelu sigmoid tanh exp log sqrt): ``fn(queue, op_name, x, out, *, trace)``;
  gelu is the tanh form ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
* ``reduce`` (sum max mean): ``fn(queue, op_name, x, out, *, axis, trace)``; axis is an int in
  ``[0, x.ndim)``; out has x's shape without that axis.
* ``softmax``: ``fn(queue, x, out, *, axis, trace)``.
* ``conv2d``: ``fn(queue, x, w, out, *, stride, padding, trace)``; x NCHW, w KCRS, out NKPQ;
  stride and padding are (height, width) int pairs.
* ``transpose``: ``fn(queue, x, out, *, axes, trace)``; axes a full permutation tuple.

Ordering: the work must behave as one command enqueued on ``queue`` at the call: after every
command enqueued before it, before every later one. Enqueue it on the queue (asynchronous, as
the accel does), or run it on the calling thread after ``queue.synchronize()`` (as the CPU's
BLAS gemm does). Fill ``trace`` (when not None) before the queue's ``synchronize`` returns.
A case the implementation cannot do raises ``UnsupportedError`` naming it; nothing falls back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic

from ._memory import B, host_bytes

if TYPE_CHECKING:
    import numpy as np

FAMILIES: dict[str, tuple[str, ...]] = {
    "gemm": ("gemm",),
    "binary": ("add", "sub", "mul", "div", "maximum", "minimum"),
    "unary": ("relu", "gelu", "sigmoid", "tanh", "exp", "log", "sqrt"),
    "reduce": ("sum", "max", "mean"),
    "softmax": ("softmax",),
    "conv2d": ("conv2d",),
    "transpose": ("transpose",),
}
"""Calling-convention family -> its operators."""
FAMILY_OF: dict[str, str] = {op: family for family, ops in FAMILIES.items() for op in ops}
"""Operator name -> the family whose calling convention it uses."""


@dataclass(frozen=True, slots=True)
class Operand(Generic[B]):
    """An array argument of a native operator: ``shape``/``dtype`` elements, C-contiguous, from
    byte ``offset`` of the backend's ``buffer``."""

    buffer: B
    offset: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


def operand_view(x: Operand[Any]) -> np.ndarray:
    """A typed, shaped numpy view of an operand in host memory (see :func:`host_bytes`)."""
    return host_bytes(x.buffer)[x.offset:x.offset + x.nbytes].view(x.dtype).reshape(x.shape)


@dataclass(frozen=True)
class NativeOp:
    """A backend's implementation of one operator (``"gemm"``) or of a whole family
    (``"binary"``, ``"unary"``, ``"reduce"``: ``fn`` then gets the op name first)."""

    op: str
    fn: Callable[..., None]
    priority: int = 0
    """Higher wins over other natives; at equal priority an exact op beats a family, then the later one."""
    backends: frozenset[str] | None = None
    """Backend names served (``frozenset({"mychip"})``); None: any backend ``accepts`` takes."""
    accepts: Callable[[Any], bool] | None = None
    """A further test, run once per device, of its ``DeviceInfo`` (features, say)."""

    def __post_init__(self) -> None:
        if self.op not in FAMILY_OF and self.op not in FAMILIES:
            from .._errors import InvalidArgumentError

            names = ", ".join(sorted(set(FAMILY_OF) | set(FAMILIES)))
            raise InvalidArgumentError(f"{type(self).__name__} for unknown operator {self.op!r}; known names: {names}")
        if not callable(self.fn):
            from .._errors import InvalidArgumentError

            raise InvalidArgumentError(f"{type(self).__name__}({self.op!r}).fn must be callable, got {self.fn!r}")

    def names(self, op: str) -> bool:
        """True when this implementation is for ``op`` itself or for its family."""
        return self.op == op or self.op == FAMILY_OF[op]
