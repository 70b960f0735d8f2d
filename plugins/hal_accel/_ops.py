"""The native hal.ops operators of the NPU: exact numpy results, time from :mod:`._model`.

The public op has validated shapes, dtypes and devices and allocated ``out``;
each function here prices the command with the model, then enqueues it on
the simulated queue, where it computes on the device buffers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._model import Estimate, gemm_estimate, vector_estimate

if TYPE_CHECKING:
    from hal._memory import Array
    from hal._queue import Queue
    from hal.ops import OpImpl

    from ._device import AccelDevice

BINARY: dict[str, Callable[..., Any]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum}
UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, x.dtype.type(0)),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
}
"""What the vector unit (the TPU's activation pipeline) computes; no divider, no exp/log/sqrt."""


def _view(arr: Array) -> np.ndarray:
    """The typed numpy view of a simulated-DRAM array (raises InvalidHandleError when freed)."""
    data: np.ndarray = arr.buffer.data  # type: ignore[attr-defined]
    return data[arr.offset:arr.offset + arr.nbytes].view(arr.dtype).reshape(arr.shape)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 products as float32; int8 products exactly, as int64.

    int8 products are at most 2**14, so float32 sums are exact while
    k * 2**14 <= 2**24 and float64 sums for any k below 2**39: BLAS speed, exact result.
    """
    if a.dtype.kind != "i":
        product: np.ndarray = np.matmul(a, b)
        return product
    exact = np.float32 if a.shape[-1] <= 1024 else np.float64
    summed: np.ndarray = np.matmul(a.astype(exact), b.astype(exact))
    return summed.astype(np.int64)


def _submit(queue: Queue, name: str, est: Estimate, compute: Callable[[], None], reads: Sequence[Any],
            out: Array) -> None:
    """Enqueue ``compute`` with its modelled cost; ``reads`` and ``out`` go to the hazard check."""
    part = _device(queue).part
    seconds, counters = est.seconds(part), est.counters(part)

    def work() -> tuple[float, dict[str, Any]]:
        compute()
        return seconds, counters

    trace = queue.command_trace(name, "op", reads=[r for r in reads if not isinstance(r, (int, float))],
                                writes=(out,))
    queue.impl.submit(work, trace)  # type: ignore[attr-defined]


def _device(queue: Queue) -> AccelDevice:
    return queue.device.impl  # type: ignore[return-value]


def gemm(a: Array, b: Array, out: Array, *, alpha: Any, beta: Any, trans_a: bool, trans_b: bool,
         queue: Queue) -> None:
    """``out = alpha * op(a) @ op(b) + beta * out`` on the systolic array (int8 in, int32 out, wrapping)."""
    va, vb, vo = _view(a), _view(b), _view(out)
    va, vb = (va.T if trans_a else va), (vb.T if trans_b else vb)
    (m, k), n = va.shape, vb.shape[1]
    est = gemm_estimate(m, n, k, _device(queue).part, in_itemsize=a.dtype.itemsize,
                        out_itemsize=out.dtype.itemsize, reads_out=beta != 0)

    def compute() -> None:
        acc = _matmul(va, vb)
        if vo.dtype.kind == "i":
            acc *= np.int64(alpha)
            if beta != 0:
                acc += np.int64(beta) * vo.astype(np.int64)
            vo[...] = acc.astype(vo.dtype)  # wraps modulo 2**32, as int32 hardware does
            return
        if alpha != 1:
            acc *= vo.dtype.type(alpha)
        if beta != 0:
            acc += vo.dtype.type(beta) * vo
        vo[...] = acc

    _submit(queue, "gemm", est, compute, (a, b, out) if beta != 0 else (a, b), out)


def conv2d(x: Array, w: Array, out: Array, *, stride: tuple[int, int], padding: tuple[int, int],
           queue: Queue) -> None:
    """NCHW x KCRS -> NKPQ as im2col + gemm: the DMA gathers each output pixel's receptive field
    into one row of an (N*P*Q) x (C*R*S) matrix that streams through the array."""
    vx, vw, vo = _view(x), _view(w), _view(out)
    batch, channels = x.shape[:2]
    kout, _, r, s = w.shape
    p, q = out.shape[2:]
    m, k = batch * p * q, channels * r * s
    est = gemm_estimate(m, kout, k, _device(queue).part, in_itemsize=x.dtype.itemsize,
                        out_itemsize=out.dtype.itemsize, reads_out=False,
                        extra=(("im2col_bytes", m * k * x.dtype.itemsize),))

    def compute() -> None:
        (ph, pw), (sh, sw) = padding, stride
        padded = np.pad(vx, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        windows = sliding_window_view(padded, (r, s), axis=(2, 3))[:, :, ::sh, ::sw][:, :, :p, :q]
        cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(m, k)
        acc = _matmul(cols, vw.reshape(kout, k).T)
        vo[...] = acc.reshape(batch, p, q, kout).transpose(0, 3, 1, 2).astype(vo.dtype)

    _submit(queue, "conv2d", est, compute, (x, w), out)


def binary(op_name: str, a: Array | float, b: Array | float, out: Array, *, queue: Queue) -> None:
    """An elementwise binary op on the vector unit; one operand may be a Python float."""
    fn = BINARY[op_name]
    va = _view(a) if not isinstance(a, (int, float)) else a
    vb = _view(b) if not isinstance(b, (int, float)) else b
    vo = _view(out)
    moved = sum(v.nbytes for v in (va, vb) if isinstance(v, np.ndarray)) + out.nbytes
    est = vector_estimate(out.size, moved, _device(queue).part)

    def compute() -> None:
        vo[...] = fn(va, vb)

    _submit(queue, op_name, est, compute, (a, b), out)


def unary(op_name: str, x: Array, out: Array, *, queue: Queue) -> None:
    """An elementwise activation on the vector unit."""
    fn = UNARY[op_name]
    vx, vo = _view(x), _view(out)
    est = vector_estimate(out.size, x.nbytes + out.nbytes, _device(queue).part)

    def compute() -> None:
        with np.errstate(over="ignore"):  # sigmoid of a large negative x: exp overflows to inf, 1/inf = 0
            vo[...] = fn(vx)

    _submit(queue, op_name, est, compute, (x,), out)


def native_ops() -> list[OpImpl]:
    """One OpImpl per operator the NPU runs; any other op finds no native here, so hal.ops raises
    UnsupportedError for it on this device (which runs no portable kernels)."""
    from hal.ops import OpImpl

    accel = frozenset({"accel"})
    return [OpImpl(op="gemm", fn=gemm, backends=accel), OpImpl(op="conv2d", fn=conv2d, backends=accel),
            *(OpImpl(op=name, fn=binary, backends=accel) for name in BINARY),
            *(OpImpl(op=name, fn=unary, backends=accel) for name in UNARY)]
