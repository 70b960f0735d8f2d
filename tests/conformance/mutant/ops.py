"""The reference backend's native operators (it declares ``tensor_ops`` and ``int8``): gemm and
conv2d computed with numpy on the device's memory, enqueued on its queue like any other command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from hal.backend import CommandTrace, NativeOp, Operand

from .backend import Command, Handle, Land, MutantQueue
from .bugs import active

INT32 = np.iinfo(np.int32)


def _submit(queue: MutantQueue, operands: tuple[Operand[Handle], ...], out: Operand[Handle],
            compute: Callable[[], np.ndarray], trace: CommandTrace | None) -> None:
    """Enqueue ``compute()``; its result lands in ``out`` when the command ends."""
    def start() -> Land:
        result = compute()

        def land() -> None:
            _view(queue, out)[...] = result  # int64 sums wrap to int32 here
        return land
    queue.submit(Command(start, sum(x.nbytes for x in (*operands, out)), trace=trace))


def _view(queue: MutantQueue, x: Operand[Handle]) -> np.ndarray:
    return queue.device.bytes(x.buffer, x.offset, x.nbytes).view(x.dtype).reshape(x.shape)


def gemm(queue: MutantQueue, a: Operand[Handle], b: Operand[Handle], out: Operand[Handle], *, alpha: Any,
         beta: Any, trans_a: bool, trans_b: bool, trace: CommandTrace | None) -> None:
    if active("gemm_beta"):
        beta = 0

    def compute() -> np.ndarray:
        va, vb, vo = _view(queue, a), _view(queue, b), _view(queue, out)
        va, vb = (va.T if trans_a else va), (vb.T if trans_b else vb)
        if vo.dtype.kind == "i":  # int8 inputs: exact int64 sums
            acc: np.ndarray = alpha * (va.astype(np.int64) @ vb.astype(np.int64))
            if beta:
                acc += beta * vo.astype(np.int64)
            return np.clip(acc, INT32.min, INT32.max) if active("int8_saturate") else acc
        acc = (va @ vb) * vo.dtype.type(alpha)
        return acc + vo.dtype.type(beta) * vo if beta else acc

    _submit(queue, (a, b), out, compute, trace)


def conv2d(queue: MutantQueue, x: Operand[Handle], w: Operand[Handle], out: Operand[Handle], *,
           stride: tuple[int, int], padding: tuple[int, int], trace: CommandTrace | None) -> None:
    def compute() -> np.ndarray:
        vx, vw = _view(queue, x), _view(queue, w)
        if active("conv2d_flipped"):
            vw = vw[:, :, ::-1, ::-1]
        (ph, pw), (sh, sw) = padding, stride
        padded = np.pad(vx, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        windows = sliding_window_view(padded, vw.shape[2:], axis=(2, 3))[:, :, ::sh, ::sw]
        result: np.ndarray = np.einsum("ncpqrs,kcrs->nkpq", windows, vw)
        return result

    _submit(queue, (x, w), out, compute, trace)


def native_ops() -> list[NativeOp]:
    mutant = frozenset({"mutant"})
    return [NativeOp("gemm", gemm, backends=mutant), NativeOp("conv2d", conv2d, backends=mutant)]
