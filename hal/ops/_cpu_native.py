"""Natives for devices whose memory is host memory (the CPU device): numpy's BLAS, zero copy.

``gemm`` waits for the queue (so earlier commands have landed), then calls
``numpy.matmul`` on views of the arrays' own memory, writing straight into
``out``: no copies, and the BLAS numpy links does the work. It serves any
device that declares ``host_visible`` and is not simulated (a simulated
device must charge its modelled time, so it keeps its own path). int8 gemm
runs as a float64 BLAS product, exact for any K below 2**53 / 127**2, then
wraps to int32 like int32 accumulation would.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ._dispatch import OpImpl

if TYPE_CHECKING:
    from .._device import Device
    from .._memory import Array
    from .._queue import Queue

PRIORITY = 10
"""Above the portable kernels (which are not OpImpls); a plugin outbids it with a higher one."""


def host_gemm(a: Array, b: Array, out: Array, *, alpha: Any, beta: Any, trans_a: bool, trans_b: bool,
              queue: Queue) -> None:
    queue.synchronize()
    trace = queue.command_trace("gemm", "native", a.nbytes + b.nbytes + out.nbytes)
    start = time.perf_counter()
    av, bv, cv = a._host_view(), b._host_view(), out._host_view()  # zero-copy: host-visible devices only
    if trans_a:
        av = av.T
    if trans_b:
        bv = bv.T
    if out.dtype == np.int32:
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
        trace.wall_start = start
        trace.wall_s = trace.device_s = time.perf_counter() - start
        trace.device_start = start


def serves(device: Device) -> bool:
    info = device.info
    return info.host_visible and not info.simulated


def host_impls() -> list[OpImpl]:
    """What the CPU plugin's ``hal_ops`` hook returns."""
    return [OpImpl("gemm", host_gemm, priority=PRIORITY, accepts=serves)]
