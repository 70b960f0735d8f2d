"""The native hal.ops operators of the NPU: exact numpy results, time from :mod:`._model`.

The public op has validated shapes, dtypes and devices, allocated ``out`` and announced the
command; each function here prices it with the model, then enqueues it on the device's own
simulated queue, where it computes on the DRAM buffers (the contract: :mod:`hal.backend._ops`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hal.backend import CommandTrace, NativeOp, Operand, operand_view
from hal.sim import HostBuffer, SimQueue

from ._model import Estimate, gemm_estimate, vector_estimate

if TYPE_CHECKING:
    from ._device import AccelDevice

Dram = Operand[HostBuffer]
"""An operand in the NPU's simulated DRAM."""

BINARY: dict[str, Callable[..., Any]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum}
UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, x.dtype.type(0)),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
}
"""What the vector unit (the TPU's activation pipeline) computes; no divider, no exp/log/sqrt."""


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


def _submit(queue: SimQueue, est: Estimate, compute: Callable[[], None], trace: CommandTrace | None) -> None:
    """Enqueue ``compute`` in order on the device's queue, charged its modelled cost."""
    part = _device(queue).part
    seconds, counters = est.seconds(part), est.counters(part)

    def work() -> tuple[float, dict[str, Any]]:
        compute()
        return seconds, counters

    queue.submit(work, trace)


def _device(queue: SimQueue) -> AccelDevice:
    return cast("AccelDevice", queue.device)


def gemm(queue: SimQueue, a: Dram, b: Dram, out: Dram, *, alpha: Any, beta: Any, trans_a: bool,
         trans_b: bool, trace: CommandTrace | None) -> None:
    """``out = alpha * op(a) @ op(b) + beta * out`` on the systolic array (int8 in, int32 out, wrapping)."""
    va, vb, vo = operand_view(a), operand_view(b), operand_view(out)
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

    _submit(queue, est, compute, trace)


def conv2d(queue: SimQueue, x: Dram, w: Dram, out: Dram, *, stride: tuple[int, int],
           padding: tuple[int, int], trace: CommandTrace | None) -> None:
    """NCHW x KCRS -> NKPQ as im2col + gemm: the DMA gathers each output pixel's receptive field
    into one row of an (N*P*Q) x (C*R*S) matrix that streams through the array."""
    vx, vw, vo = operand_view(x), operand_view(w), operand_view(out)
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

    _submit(queue, est, compute, trace)


def binary(queue: SimQueue, op_name: str, a: Dram | float, b: Dram | float, out: Dram, *,
           trace: CommandTrace | None) -> None:
    """An elementwise binary op on the vector unit; one operand may be a Python float."""
    fn = BINARY[op_name]
    va = operand_view(a) if isinstance(a, Operand) else a
    vb = operand_view(b) if isinstance(b, Operand) else b
    vo = operand_view(out)
    moved = sum(v.nbytes for v in (va, vb) if isinstance(v, np.ndarray)) + out.nbytes
    est = vector_estimate(out.size, moved, _device(queue).part)

    def compute() -> None:
        vo[...] = fn(va, vb)

    _submit(queue, est, compute, trace)


def unary(queue: SimQueue, op_name: str, x: Dram, out: Dram, *, trace: CommandTrace | None) -> None:
    """An elementwise activation on the vector unit."""
    fn = UNARY[op_name]
    vx, vo = operand_view(x), operand_view(out)
    est = vector_estimate(out.size, x.nbytes + out.nbytes, _device(queue).part)

    def compute() -> None:
        with np.errstate(over="ignore"):  # sigmoid of a large negative x: exp overflows to inf, 1/inf = 0
            vo[...] = fn(vx)

    _submit(queue, est, compute, trace)


def native_ops() -> list[NativeOp]:
    """One NativeOp per operator the NPU runs; any other op finds no native here, so hal.ops raises
    UnsupportedError for it on this device (which runs no portable kernels)."""
    accel = frozenset({"accel"})
    return [NativeOp(op="gemm", fn=gemm, backends=accel), NativeOp(op="conv2d", fn=conv2d, backends=accel),
            *(NativeOp(op=name, fn=binary, backends=accel) for name in BINARY),
            *(NativeOp(op=name, fn=unary, backends=accel) for name in UNARY)]
