"""The public operators: validate once, allocate ``out``, pick the queue, call the chosen impl.

One :class:`Operators` instance serves ``hal.ops.*`` (dispatched: natives
first) and another ``hal.ops.portable.*`` (the kernel-language versions
forced), so both share every check. The calling convention of the
implementations is documented in :mod:`hal.ops._dispatch`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from .._device import Device
from .._errors import InvalidArgumentError, UnsupportedError, shown
from .._features import Feature
from .._memory import Array
from .._queue import Queue

F32, F64, I8, I32 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int8), np.dtype(np.int32)
FLOATS = (F32, F64)
INTEGERS: tuple[type, ...] = (int, np.integer)
REALS: tuple[type, ...] = (int, float, np.integer, np.floating)

Lookup = Callable[[str, Device], Callable[..., Any]]


class Operators:
    """``hal.ops``' functions bound to one way of choosing implementations."""

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup

    # ------------------------------------------------------------ gemm
    def gemm(self, a: Array, b: Array, out: Array | None = None, *, alpha: float = 1, beta: float = 0,
             trans_a: bool = False, trans_b: bool = False, queue: Queue | None = None) -> Array:
        """``out = alpha * op(a) @ op(b) + beta * out`` (``op(x) = x.T`` when ``trans_x``).

        float32 / float64, or int8 inputs with an int32 out on devices that declare
        ``Feature.INT8`` (int32 accumulation; integer alpha and beta). Returns out.
        """
        dev = _common_device("gemm", a=a, b=b)
        for name, x in (("a", a), ("b", b)):
            if x.ndim != 2:
                raise InvalidArgumentError(f"hal.ops.gemm: {name} must be 2-D, got shape {x.shape}")
        if a.dtype != b.dtype:
            raise InvalidArgumentError(f"hal.ops.gemm: a is {a.dtype} but b is {b.dtype}; convert one of them")
        m, k = a.shape[::-1] if trans_a else a.shape
        k2, n = b.shape[::-1] if trans_b else b.shape
        if k != k2:
            raise InvalidArgumentError(f"hal.ops.gemm: inner dimensions differ: op(a) is {m}x{k}, op(b) is "
                                       f"{k2}x{n} (trans_a={trans_a}, trans_b={trans_b})")
        if a.dtype == I8:
            if Feature.INT8 not in dev.info.features:
                raise UnsupportedError(f"hal.ops.gemm: int8 gemm needs the int8 feature, which {dev.info.name} "
                                       f"({dev.spec}) does not declare; use float32", feature=Feature.INT8.value)
            out_dtype, kind = I32, INTEGERS
        else:
            _check_float("gemm", a)
            out_dtype, kind = a.dtype, REALS
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not isinstance(value, kind) or isinstance(value, (bool, np.bool_)):
                raise InvalidArgumentError(f"hal.ops.gemm: {name} must be a{'n integer' if a.dtype == I8 else ' real number'}"
                                           f" for {a.dtype} inputs, got {value!r}")
        out = _output("gemm", dev, out, (m, n), out_dtype)
        _no_overlap("gemm", out, a, b)
        q = _queue("gemm", dev, queue)
        self._lookup("gemm", dev)(a, b, out, alpha=alpha, beta=beta, trans_a=bool(trans_a),
                                  trans_b=bool(trans_b), queue=q)
        return out

    # ------------------------------------------------------------ elementwise
    def _binary(self, op: str, a: Any, b: Any, out: Array | None, queue: Queue | None) -> Array:
        a_is, b_is = type(a) is Array, type(b) is Array
        if a_is and b_is:
            ref = a
            if b.device is not a.device or b.shape != a.shape or b.dtype != a.dtype:
                _common_device(op, a=a, b=b)
                raise InvalidArgumentError(f"hal.ops.{op}: a is {a.shape} {a.dtype} but b is {b.shape} {b.dtype}; "
                                           f"arrays must match in shape and dtype (only scalars broadcast)")
            if b._block.buffer is None:
                _common_device(op, b=b)
        elif a_is:
            ref, b = a, _scalar(op, "b", b)
        elif b_is:
            ref, a = b, _scalar(op, "a", a)
        else:
            raise InvalidArgumentError(f"hal.ops.{op} needs at least one hal.Array operand, got "
                                       f"{type(a).__name__} and {type(b).__name__}")
        dev = ref.device
        if ref.dtype is not F32 and ref.dtype is not F64 or ref._block.buffer is None:
            _common_device(op, x=ref)
            _check_float(op, ref)
        out = _output(op, dev, out, ref.shape, ref.dtype)
        self._lookup(op, dev)(op, a, b, out, queue=_queue(op, dev, queue))
        return out

    def _unary(self, op: str, x: Array, out: Array | None, queue: Queue | None) -> Array:
        dev = _common_device(op, x=x)
        _check_float(op, x)
        out = _output(op, dev, out, x.shape, x.dtype)
        self._lookup(op, dev)(op, x, out, queue=_queue(op, dev, queue))
        return out

    # ------------------------------------------------------------ reductions
    def _reduce(self, op: str, x: Array, axis: int | None, out: Array | None, queue: Queue | None) -> Array:
        dev = _common_device(op, x=x)
        _check_float(op, x)
        if axis is None:
            shape: tuple[int, ...] = ()
            x, ax = x.reshape(x.size), 0
        else:
            ax = _axis(op, axis, x.ndim)
            shape = x.shape[:ax] + x.shape[ax + 1:]
        if op == "max" and x.shape[ax] == 0:
            raise InvalidArgumentError(f"hal.ops.max over an empty axis {ax} of {x.shape} has no value")
        out = _output(op, dev, out, shape, x.dtype)
        _no_overlap(op, out, x)
        self._lookup(op, dev)(op, x, out, axis=ax, queue=_queue(op, dev, queue))
        return out

    def softmax(self, x: Array, axis: int = -1, out: Array | None = None, *, queue: Queue | None = None) -> Array:
        """``exp(x - max) / sum(exp(x - max))`` along ``axis`` (numerically stable); out may be x."""
        dev = _common_device("softmax", x=x)
        _check_float("softmax", x)
        ax = _axis("softmax", axis, x.ndim)
        out = _output("softmax", dev, out, x.shape, x.dtype)
        self._lookup("softmax", dev)(x, out, axis=ax, queue=_queue("softmax", dev, queue))
        return out

    # ------------------------------------------------------------ conv2d, transpose
    def conv2d(self, x: Array, w: Array, stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
               out: Array | None = None, *, queue: Queue | None = None) -> Array:
        """2-D convolution (cross-correlation, as in deep learning) of NCHW ``x`` with KCRS ``w``;
        zero padding; returns N x K x P x Q."""
        dev = _common_device("conv2d", x=x, w=w)
        _check_float("conv2d", x)
        if x.ndim != 4 or w.ndim != 4:
            raise InvalidArgumentError(f"hal.ops.conv2d takes 4-D x (N, C, H, W) and w (K, C, R, S), got "
                                       f"{x.shape} and {w.shape}")
        if w.dtype != x.dtype:
            raise InvalidArgumentError(f"hal.ops.conv2d: x is {x.dtype} but w is {w.dtype}; convert one of them")
        if w.shape[1] != x.shape[1]:
            raise InvalidArgumentError(f"hal.ops.conv2d: x has {x.shape[1]} channels but w expects {w.shape[1]}")
        st, pad = _pair("stride", stride, 1), _pair("padding", padding, 0)
        p = (x.shape[2] + 2 * pad[0] - w.shape[2]) // st[0] + 1
        q_ = (x.shape[3] + 2 * pad[1] - w.shape[3]) // st[1] + 1
        if p < 1 or q_ < 1:
            raise InvalidArgumentError(f"hal.ops.conv2d: a {w.shape[2]}x{w.shape[3]} filter does not fit the "
                                       f"{x.shape[2]}x{x.shape[3]} input with padding {pad}; pad more")
        out = _output("conv2d", dev, out, (x.shape[0], w.shape[0], p, q_), x.dtype)
        _no_overlap("conv2d", out, x, w)
        self._lookup("conv2d", dev)(x, w, out, stride=st, padding=pad, queue=_queue("conv2d", dev, queue))
        return out

    def transpose(self, x: Array, axes: tuple[int, ...] | None = None, out: Array | None = None, *,
                  queue: Queue | None = None) -> Array:
        """Permute dimensions like ``numpy.transpose`` (default: reverse them) into a new C-contiguous array."""
        dev = _common_device("transpose", x=x)
        _check_float("transpose", x)
        if axes is None:
            perm = tuple(range(x.ndim))[::-1]
        else:
            try:
                perm = tuple(_axis("transpose", a, x.ndim) for a in axes)
            except TypeError:
                raise InvalidArgumentError(f"hal.ops.transpose: axes must be a sequence of ints, got {axes!r}") from None
            if sorted(perm) != list(range(x.ndim)):
                raise InvalidArgumentError(f"hal.ops.transpose: axes {axes!r} is not a permutation of the "
                                           f"{x.ndim} dimensions of {x.shape}")
        out = _output("transpose", dev, out, tuple(x.shape[a] for a in perm), x.dtype)
        _no_overlap("transpose", out, x)
        self._lookup("transpose", dev)(x, out, axes=perm, queue=_queue("transpose", dev, queue))
        return out


def _binary_op(op: str, doc: str) -> Callable[..., Array]:
    def fn(self: Operators, a: Array | float, b: Array | float, out: Array | None = None, *,
           queue: Queue | None = None) -> Array:
        return self._binary(op, a, b, out, queue)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise {doc}; arrays of one shape and dtype, or an array and a scalar. out may be an input."
    return fn


def _unary_op(op: str, doc: str) -> Callable[..., Array]:
    def fn(self: Operators, x: Array, out: Array | None = None, *, queue: Queue | None = None) -> Array:
        return self._unary(op, x, out, queue)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"Elementwise {doc}. out may be x."
    return fn


def _reduce_op(op: str, doc: str) -> Callable[..., Array]:
    def fn(self: Operators, x: Array, axis: int | None = None, out: Array | None = None, *,
           queue: Queue | None = None) -> Array:
        return self._reduce(op, x, axis, out, queue)
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"{doc} along ``axis`` (None: every element, giving a 0-d array); that axis is dropped."
    return fn


for _op, _doc in {"add": "a + b", "sub": "a - b", "mul": "a * b", "div": "a / b",
                  "maximum": "max(a, b) (NaN propagates)", "minimum": "min(a, b) (NaN propagates)"}.items():
    setattr(Operators, _op, _binary_op(_op, _doc))
for _op, _doc in {"relu": "max(x, 0)", "gelu": "GELU, tanh form 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3)))",
                  "sigmoid": "1 / (1 + exp(-x))", "tanh": "tanh(x)", "exp": "exp(x)", "log": "natural log",
                  "sqrt": "square root"}.items():
    setattr(Operators, _op, _unary_op(_op, _doc))
for _op, _doc in {"sum": "Sum", "max": "Maximum", "mean": "Mean"}.items():
    setattr(Operators, _op, _reduce_op(_op, _doc))


# ---------------------------------------------------------------- checks
def _common_device(op: str, **arrays: Any) -> Device:
    dev: Device | None = None
    first = ""
    for name, x in arrays.items():
        if type(x) is not Array:
            hint = "; copy it with dev.array(...)" if isinstance(x, np.ndarray) else ""
            raise InvalidArgumentError(f"hal.ops.{op}: {name} must be a hal.Array, got {type(x).__name__}{hint}")
        x.buffer  # noqa: B018 - InvalidHandleError when freed
        if dev is None:
            dev, first = x.device, name
        elif x.device is not dev:
            raise InvalidArgumentError(f"hal.ops.{op}: {first} lives on {dev.spec} but {name} on {x.device.spec}; "
                                       f"copy them to one device first")
    assert dev is not None
    return dev


def _check_float(op: str, x: Array) -> None:
    if x.dtype not in FLOATS:
        extra = " (int8 only for gemm)" if x.dtype == I8 else ""
        raise InvalidArgumentError(f"hal.ops.{op} takes float32 or float64 arrays{extra}, got {x.dtype}")


def _scalar(op: str, name: str, value: Any) -> float:
    if isinstance(value, REALS) and not isinstance(value, (bool, np.bool_)):
        try:
            return float(value)  # type: ignore[arg-type]
        except OverflowError:  # an int beyond float64's range
            raise InvalidArgumentError(f"hal.ops.{op}: {name} = {shown(value)} is too large for a float (at most "
                                       f"{np.finfo(np.float64).max:.4g}); pass a value within range") from None
    raise InvalidArgumentError(f"hal.ops.{op}: {name} must be a hal.Array or a real number, "
                               f"got {type(value).__name__}")


def _output(op: str, dev: Device, out: Array | None, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    if out is None:
        return dev.empty(shape, dtype)
    if type(out) is not Array or out.device is not dev or out.shape != shape or out.dtype != dtype \
            or out._block.buffer is None:
        if type(out) is Array and out.device is dev:
            out.buffer  # noqa: B018 - InvalidHandleError when freed
        where = f" on {out.device.spec}" if type(out) is Array else ""
        got = f"{out.shape} {out.dtype}{where}" if type(out) is Array else type(out).__name__
        raise InvalidArgumentError(f"hal.ops.{op}: out must be a {shape} {dtype} array on {dev.spec}, got {got}")
    out._check_writable(f"hal.ops.{op}")
    return out


def _no_overlap(op: str, out: Array, *inputs: Array) -> None:
    for x in inputs:
        if x._block is out._block and x.offset < out.offset + out.nbytes and out.offset < x.offset + x.nbytes:
            raise InvalidArgumentError(f"hal.ops.{op}: out overlaps an input; write into a separate array")


def _queue(op: str, dev: Device, queue: Queue | None) -> Queue:
    if queue is None:
        return dev.default_queue
    if type(queue) is not Queue or queue.device is not dev:
        where = f"a queue of {queue.device.spec}" if type(queue) is Queue else type(queue).__name__
        raise InvalidArgumentError(f"hal.ops.{op}: queue must be a hal.Queue of {dev.spec}, got {where}")
    return queue


def _axis(op: str, axis: Any, ndim: int) -> int:
    try:
        ax = operator.index(axis)
    except TypeError:
        raise InvalidArgumentError(f"hal.ops.{op}: axis must be an int, got {axis!r}") from None
    if not -ndim <= ax < ndim:
        raise InvalidArgumentError(f"hal.ops.{op}: axis {axis} is out of range for {ndim} dimensions")
    return ax % ndim


def _pair(name: str, value: Any, minimum: int) -> tuple[int, int]:
    items = value if isinstance(value, (tuple, list)) else (value, value)
    try:
        pair = tuple(operator.index(v) for v in items)
    except TypeError:
        pair = ()
    if len(pair) != 2 or min(pair) < minimum:
        raise InvalidArgumentError(f"hal.ops.conv2d: {name} must be an int >= {minimum} or a pair of them, "
                                   f"got {value!r}")
    return (pair[0], pair[1])
