"""A native ``hal.ops.gemm``: enqueued on the driver stream like any command (the contract:
``help(hal.backend._ops)``). The core validated shapes and dtypes and allocated ``out``."""

from __future__ import annotations

from typing import Any

import numpy as np

from hal.backend import CommandTrace, NativeOp, Operand

from .device import RuntimeBuffer
from .queue import RuntimeQueue


def _view(x: Operand[RuntimeBuffer]) -> np.ndarray:
    return x.buffer.handle.bytes[x.offset:x.offset + x.nbytes].view(x.dtype).reshape(x.shape)


def gemm(queue: RuntimeQueue, a: Operand[RuntimeBuffer], b: Operand[RuntimeBuffer], out: Operand[RuntimeBuffer], *,
         alpha: Any, beta: Any, trans_a: bool, trans_b: bool, trace: CommandTrace | None) -> None:
    def command() -> None:  # runs after every command enqueued before it, like a kernel would
        av, bv, cv = _view(a), _view(b), _view(out)
        product = (av.T if trans_a else av) @ (bv.T if trans_b else bv)
        cv[...] = alpha * product + (beta * cv if beta != 0 else 0)
    queue.enqueue(command, trace)


def native_ops() -> list[NativeOp]:
    return [NativeOp("gemm", gemm, priority=10, backends=frozenset({"runtime"}))]
