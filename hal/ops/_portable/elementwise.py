"""Portable elementwise operators: one grid-stride kernel per (operator, dtype).

A binary kernel takes both operands as arrays plus a scalar and a mode
(0: a op b, 1: a op s, 2: s op b), so an array-scalar call needs no extra
kernel and no broadcast copy; the mode is uniform, so the branch costs little.
"""

import functools
from collections.abc import Callable
from typing import Any

import hal.kernel as hk

from ..._device import Device
from ..._memory import Array
from ..._queue import Queue
from ...kernel.function import DeviceFunction, KernelFunction
from ...kernel.types import ScalarType
from ._common import pow2_block, scalar_type, stride_groups


@functools.cache
def _binary_funcs(T: ScalarType) -> dict[str, DeviceFunction]:
    @hk.func
    def add(a: T, b: T) -> T:
        return a + b

    @hk.func
    def sub(a: T, b: T) -> T:
        return a - b

    @hk.func
    def mul(a: T, b: T) -> T:
        return a * b

    @hk.func
    def div(a: T, b: T) -> T:
        return a / b

    @hk.func
    def maximum(a: T, b: T) -> T:
        return hk.max(a, b)

    @hk.func
    def minimum(a: T, b: T) -> T:
        return hk.min(a, b)

    return {"add": add, "sub": sub, "mul": mul, "div": div, "maximum": maximum, "minimum": minimum}


@functools.cache
def _unary_funcs(T: ScalarType) -> dict[str, DeviceFunction]:
    @hk.func
    def relu(x: T) -> T:
        return hk.max(x, 0)

    @hk.func
    def gelu(x: T) -> T:
        return 0.5 * x * (1 + hk.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))

    @hk.func
    def sigmoid(x: T) -> T:
        return 1 / (1 + hk.exp(-x))

    @hk.func
    def tanh(x: T) -> T:
        return hk.tanh(x)

    @hk.func
    def exp(x: T) -> T:
        return hk.exp(x)

    @hk.func
    def log(x: T) -> T:
        return hk.log(x)

    @hk.func
    def sqrt(x: T) -> T:
        return hk.sqrt(x)

    return {"relu": relu, "gelu": gelu, "sigmoid": sigmoid, "tanh": tanh, "exp": exp, "log": log, "sqrt": sqrt}


@functools.cache
def binary_kernel(op: str, T: ScalarType) -> KernelFunction:
    f = _binary_funcs(T)[op]

    @hk
    def binary(a: hk.Ptr[T], b: hk.Ptr[T], s: T, mode: hk.i32, out: hk.Ptr[T], n: hk.i32):
        i = hk.global_id(0)
        stride = hk.global_size(0)
        while i < n:
            if mode == 0:
                out[i] = f(a[i], b[i])
            elif mode == 1:
                out[i] = f(a[i], s)
            else:
                out[i] = f(s, b[i])
            i += stride

    return binary


@functools.cache
def unary_kernel(op: str, T: ScalarType) -> KernelFunction:
    f = _unary_funcs(T)[op]

    @hk
    def unary(x: hk.Ptr[T], out: hk.Ptr[T], n: hk.i32):
        i = hk.global_id(0)
        stride = hk.global_size(0)
        while i < n:
            out[i] = f(x[i])
            i += stride

    return unary


_PLANS: dict[tuple[str, Any, Device], tuple[KernelFunction, int, int]] = {}
"""(op, dtype, device) -> (kernel, block, most groups): the launch geometry, worked out once."""


def _plan(op: str, dtype: Any, dev: Device, factory: Callable[[str, ScalarType], KernelFunction]) \
        -> tuple[KernelFunction, int, int]:
    plan = _PLANS.get((op, dtype, dev))
    if plan is None:
        block = pow2_block(dev, 256)
        plan = _PLANS[(op, dtype, dev)] = (factory(op, scalar_type(dtype)), block, stride_groups(dev, 1 << 62, block))
    return plan


def binary(op: str, a: Array | float, b: Array | float, out: Array, *, queue: Queue) -> None:
    if type(a) is Array:
        mode, s, b_arr = (0, 0.0, b) if type(b) is Array else (1, b, a)
        a_arr = a
    else:
        mode, s, a_arr, b_arr = 2, a, b, b
    n = out.size
    kernel, block, most = _plan(op, out.dtype, out.device, binary_kernel)
    queue.launch(kernel, min(-(-n // block), most) or 1, block, a_arr, b_arr, s, mode, out, n)


def unary(op: str, x: Array, out: Array, *, queue: Queue) -> None:
    n = out.size
    kernel, block, most = _plan(op, out.dtype, out.device, unary_kernel)
    queue.launch(kernel, min(-(-n // block), most) or 1, block, x, out, n)
