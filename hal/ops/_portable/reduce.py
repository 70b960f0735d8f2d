"""Portable reductions along one axis (sum, max, mean) and softmax.

The array is seen as ``(outer, n, inner)`` around the reduced axis; one
work-group reduces one ``(outer, inner)`` line: each thread folds a strided
share of the ``n`` elements, then a tree in shared memory combines the
threads' partials (log2(B) barrier steps). Softmax runs the same pattern
twice (max, then the sum of ``exp(x - max)``) and writes ``exp(x - max) / sum``,
so it never overflows.
"""

import functools
import math

import hal.kernel as hk

from ..._memory import Array
from ..._queue import Queue
from ...kernel.function import DeviceFunction, KernelFunction
from ...kernel.types import ScalarType
from ._common import pow2_block, scalar_type

NEG_INF = -math.inf


@functools.cache
def _combiners(T: ScalarType) -> dict[str, DeviceFunction]:
    @hk.func
    def add(a: T, b: T) -> T:
        return a + b

    @hk.func
    def maximum(a: T, b: T) -> T:
        return hk.max(a, b)

    return {"sum": add, "mean": add, "max": maximum}


def _tree(T: ScalarType, B: int, combine: DeviceFunction) -> DeviceFunction:
    """``tree(buf, lid, v)``: every thread of the group gets the combination of all threads' ``v``."""

    @hk.func
    def tree(buf: hk.Ptr[T], lid: hk.i32, v: T) -> T:
        buf[lid] = v
        hk.barrier()
        s = B // 2
        while s > 0:
            if lid < s:
                buf[lid] = combine(buf[lid], buf[lid + s])
            hk.barrier()
            s = s // 2
        r = buf[0]
        hk.barrier()
        return r

    return tree


@functools.cache
def reduce_kernel(op: str, T: ScalarType, B: int) -> KernelFunction:
    combine = _combiners(T)[op]
    tree = _tree(T, B, combine)
    init = NEG_INF if op == "max" else 0.0
    mean = op == "mean"

    @hk
    def reduce(x: hk.Ptr[T], out: hk.Ptr[T], n: hk.i32, inner: hk.i32):
        buf = hk.shared(T, B)
        lid = hk.local_id(0)
        g = hk.group_id(0)
        base = (g // inner) * n * inner + g % inner
        acc = T(init)
        for j in range(lid, n, B):
            acc = combine(acc, x[base + j * inner])
        total = tree(buf, lid, acc)
        if lid == 0:
            if mean:
                out[g] = total / T(n)
            else:
                out[g] = total

    return reduce


@functools.cache
def softmax_kernel(T: ScalarType, B: int) -> KernelFunction:
    combiners = _combiners(T)
    tree_max, tree_sum = _tree(T, B, combiners["max"]), _tree(T, B, combiners["sum"])

    @hk
    def softmax(x: hk.Ptr[T], out: hk.Ptr[T], n: hk.i32, inner: hk.i32):
        buf = hk.shared(T, B)
        lid = hk.local_id(0)
        g = hk.group_id(0)
        base = (g // inner) * n * inner + g % inner
        m = T(NEG_INF)
        for j in range(lid, n, B):
            m = hk.max(m, x[base + j * inner])
        m = tree_max(buf, lid, m)
        s = T(0)
        for j in range(lid, n, B):
            s += hk.exp(x[base + j * inner] - m)
        s = tree_sum(buf, lid, s)
        for j in range(lid, n, B):
            out[base + j * inner] = hk.exp(x[base + j * inner] - m) / s

    return softmax


def _geometry(x: Array, axis: int) -> tuple[int, int, int]:
    """``(lines, n, inner)`` of ``x`` around ``axis``."""
    inner = math.prod(x.shape[axis + 1:])
    return math.prod(x.shape[:axis]) * inner, x.shape[axis], inner


def _block(x: Array, n: int) -> int:
    """A power of two >= n, at most 256, that the device's work-groups and shared memory hold."""
    fits = x.device.info.shared_memory_bytes // x.dtype.itemsize
    return pow2_block(x.device, min(256, fits, 1 << max(n - 1, 1).bit_length()))


def reduce(op: str, x: Array, out: Array, *, axis: int, queue: Queue) -> None:
    lines, n, inner = _geometry(x, axis)
    if lines:
        block = _block(x, n)
        queue.launch(reduce_kernel(op, scalar_type(x.dtype), block), lines, block, x, out, n, inner)


def softmax(x: Array, out: Array, *, axis: int, queue: Queue) -> None:
    lines, n, inner = _geometry(x, axis)
    if lines and n:
        block = _block(x, n)
        queue.launch(softmax_kernel(scalar_type(x.dtype), block), lines, block, x, out, n, inner)
