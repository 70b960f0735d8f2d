"""Native operators for devices whose memory is host memory (the CPU device): numpy's BLAS, zero copy.

``gemm`` synchronises the queue (so earlier commands have landed), then calls ``numpy.matmul`` on
views of the operands' own memory, writing straight into ``out``: no copies, and the BLAS numpy
links does the work. It serves any device that declares ``host_visible`` and is not simulated (a
simulated device must charge its modelled time, so it keeps its own path). int8 gemm runs as a
float64 BLAS product, exact for any K below 2**53 / 127**2, then wraps to int32 like int32
accumulation would.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from hal.backend import CommandTrace, DeviceInfo, NativeOp, Operand, QueueImpl, operand_view

PRIORITY = 10
"""Above the portable kernels (which are not NativeOps); a plugin outbids it with a higher one."""


def host_gemm(queue: QueueImpl[Any], a: Operand[Any], b: Operand[Any], out: Operand[Any], *, alpha: Any,
              beta: Any, trans_a: bool, trans_b: bool, trace: CommandTrace | None) -> None:
    queue.synchronize()
    start = time.perf_counter()
    av, bv, cv = operand_view(a), operand_view(b), operand_view(out)
    if trans_a:
        av = av.T
    if trans_b:
        bv = bv.T
    if cv.dtype == np.int32:
        product = np.matmul(av.astype(np.float64), bv.astype(np.float64)).astype(np.int64)
        result = alpha * product + beta * cv.astype(np.int64) if (alpha != 1 or beta != 0) else product
        cv[...] = result.astype(np.int32)  # wraps modulo 2**32 like int32 accumulation
    elif beta == 0:
        np.matmul(av, bv, out=cv)
        if alpha != 1:
            cv *= cv.dtype.type(alpha)
    else:
        product = np.matmul(av, bv)
        if alpha != 1:
            product *= product.dtype.type(alpha)
        if beta != 1:
            cv *= cv.dtype.type(beta)
        cv += product
    if trace is not None:
        trace.wall_start = trace.device_start = start
        trace.wall_s = trace.device_s = time.perf_counter() - start


def serves(info: DeviceInfo) -> bool:
    return info.host_visible and not info.simulated


def native_ops() -> list[NativeOp]:
    """What the plugin's ``hal_ops`` hook returns."""
    return [NativeOp("gemm", host_gemm, priority=PRIORITY, accepts=serves)]
