"""Portable reductions along one axis (sum, max, mean) and softmax.

The array is seen as ``(outer, n, inner)`` around the reduced axis; one
work-group reduces one ``(outer, inner)`` line: each thread folds a strided
share of the ``n`` elements, then a tree in shared memory combines the
threads' partials (log2(B) barrier steps). A few long contiguous lines
(a whole-array sum) would leave most of a device idle that way: they reduce in
two passes instead, many groups each folding a chunk of consecutive elements
(coalesced), then one group per line folding its chunks. Lines at least
``COLUMNS_INNER`` elements apart (reducing a leading axis), and not too long,
run one work-item per line instead, neighbouring work-items reading
neighbouring elements. Softmax runs the same pattern twice (max, then the sum
of ``exp(x - max)``) and writes ``exp(x - max) / sum``, so it never overflows.
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


def _tree(T: ScalarType, B: int, is_max: bool) -> DeviceFunction:
    """``tree(buf, lid, v)``: every thread of the group gets the maximum (``is_max``) or the sum of
    all threads' ``v``. The steps use the operator itself: an inlined call's arguments would live
    in memory."""

    @hk.func
    def tree(buf: hk.Ptr[T], lid: hk.i32, v: T) -> T:
        buf[lid] = v
        hk.barrier()
        s = B // 2
        while s > 0:
            if lid < s:
                if is_max:
                    buf[lid] = hk.max(buf[lid], buf[lid + s])
                else:
                    buf[lid] = buf[lid] + buf[lid + s]
            hk.barrier()
            s = s // 2
        r = buf[0]
        hk.barrier()
        return r

    return tree


@functools.cache
def reduce_kernel(op: str, T: ScalarType, B: int, contiguous: bool = False) -> KernelFunction:
    """``contiguous``: the lines are contiguous (``inner == 1``), so the indices need no division and
    have a constant stride."""
    is_max = op == "max"
    tree = _tree(T, B, is_max)
    init = NEG_INF if is_max else 0.0
    mean = op == "mean"

    @hk
    def reduce(x: hk.Ptr[T], out: hk.Ptr[T], n: hk.i32, inner: hk.i32, count: hk.i32):
        buf = hk.shared(T, B)
        lid = hk.local_id(0)
        g = hk.group_id(0)
        acc = T(init)
        if contiguous:
            base = g * n
            step = 1
        else:
            base = (g // inner) * n * inner + g % inner
            step = inner
        for i in range((n + B - 1) // B):  # a uniform trip count, rather than range(lid, n, B)
            j = i * B + lid
            if j < n:  # the operator itself: an inlined call's arguments would live in memory
                if is_max:
                    acc = hk.max(acc, x[base + j * step])
                else:
                    acc += x[base + j * step]
        total = tree(buf, lid, acc)
        if lid == 0:
            if mean:
                out[g] = total / T(count)
            else:
                out[g] = total

    return reduce


@functools.cache
def chunk_kernel(op: str, T: ScalarType, B: int) -> KernelFunction:
    """The first pass over a long contiguous line of ``n`` elements from ``x[base]``: group ``g``
    folds ``per * B`` consecutive elements, which its work-items read side by side (coalesced),
    into ``out[first + g]``; a second pass combines the line's chunks. No division in the indices,
    so the CPU emitter proves them in range and vectorises the loads."""
    is_max = op == "max"
    tree = _tree(T, B, is_max)
    init = NEG_INF if is_max else 0.0

    @hk
    def reduce_chunks(x: hk.Ptr[T], out: hk.Ptr[T], base: hk.i32, n: hk.i32, per: hk.i32, first: hk.i32):
        buf = hk.shared(T, B)
        lid = hk.local_id(0)
        g = hk.group_id(0)
        acc = T(init)
        for i in range(per):
            j = g * per * B + i * B + lid
            if j < n:  # the operator itself: an inlined call's arguments would live in memory
                if is_max:
                    acc = hk.max(acc, x[base + j])
                else:
                    acc += x[base + j]
        total = tree(buf, lid, acc)
        if lid == 0:
            out[first + g] = total

    return reduce_chunks


@functools.cache
def columns_kernel(op: str, T: ScalarType, B: int, edge: bool) -> KernelFunction:
    """Lines ``inner`` apart (a reduction along a leading axis): one work-item per line, folding
    its ``n`` elements in order, so that neighbouring work-items read neighbouring elements. Group
    ``g`` covers lines ``first + (g % groups_inner) * B + lid`` of outer index ``g // groups_inner``;
    ``edge`` groups may reach past the last line, and load a copy of it there (never stored)."""
    is_max = op == "max"
    init = NEG_INF if is_max else 0.0
    mean = op == "mean"

    @hk
    def reduce_columns(x: hk.Ptr[T], out: hk.Ptr[T], n: hk.i32, inner: hk.i32, groups_inner: hk.i32,
                       first: hk.i32):
        g = hk.group_id(0)
        o = g // groups_inner
        i = first + (g % groups_inner) * B + hk.local_id(0)
        if edge:
            base = o * n * inner + hk.min(i, inner - 1)
        else:
            base = o * n * inner + i
        acc = T(init)
        for j in range(n):  # uniform: all the group's work-items step together
            if is_max:
                acc = hk.max(acc, x[base + j * inner])
            else:
                acc += x[base + j * inner]
        if i < inner:
            if mean:
                out[o * inner + i] = acc / T(n)
            else:
                out[o * inner + i] = acc

    return reduce_columns


COLUMNS_INNER = 32
"""Reductions whose lines are at least this many elements apart run one work-item per line..."""

COLUMNS_MAX_N = 4096
"""... when the lines are at most this long: a work-item folds its line in order, whose rounding
error grows with its length (the group's tree keeps longer lines accurate, and parallel)."""


@functools.cache
def softmax_kernel(T: ScalarType, B: int, contiguous: bool = False) -> KernelFunction:
    """``contiguous`` as for :func:`reduce_kernel`. The exponentials are stored in ``out`` by the
    second pass and divided in place by the third (each work-item rereads only what it wrote)."""
    tree_max, tree_sum = _tree(T, B, True), _tree(T, B, False)

    @hk
    def softmax(x: hk.Ptr[T], out: hk.Ptr[T], n: hk.i32, inner: hk.i32):
        buf = hk.shared(T, B)
        lid = hk.local_id(0)
        g = hk.group_id(0)
        if contiguous:
            base = g * n
            step = 1
        else:
            base = (g // inner) * n * inner + g % inner
            step = inner
        per = (n + B - 1) // B  # a uniform trip count, rather than range(lid, n, B)
        m = T(NEG_INF)
        for i in range(per):
            j = i * B + lid
            if j < n:
                m = hk.max(m, x[base + j * step])
        m = tree_max(buf, lid, m)
        s = T(0)
        for i in range(per):
            j = i * B + lid
            if j < n:
                e = hk.exp(x[base + j * step] - m)
                out[base + j * step] = e
                s += e
        s = tree_sum(buf, lid, s)
        for i in range(per):
            j = i * B + lid
            if j < n:
                out[base + j * step] = out[base + j * step] / s

    return softmax


def _geometry(x: Array, axis: int) -> tuple[int, int, int]:
    """``(lines, n, inner)`` of ``x`` around ``axis``."""
    inner = math.prod(x.shape[axis + 1:])
    return math.prod(x.shape[:axis]) * inner, x.shape[axis], inner


def _block(x: Array, n: int) -> int:
    """A power of two >= n, at most 256, that the device's work-groups and shared memory hold."""
    fits = x.device.info.shared_memory_bytes // x.dtype.itemsize
    return pow2_block(x.device, min(256, fits, 1 << max(n - 1, 1).bit_length()))


CHUNK_LOADS = 256
"""Elements each work-item folds in the first pass of a chunked reduction."""

CHUNKED_LINES = 16
"""Contiguous lines are reduced in chunks (two passes) when there are fewer than this many."""


def reduce(op: str, x: Array, out: Array, *, axis: int, queue: Queue) -> None:
    lines, n, inner = _geometry(x, axis)
    if not lines:
        return
    T = scalar_type(x.dtype)
    block = _block(x, n)
    chunks = -(-n // (block * CHUNK_LOADS))
    if inner == 1 and lines < CHUNKED_LINES and chunks > 1 and chunks <= x.device.info.max_grid_dims[0]:
        # Few long lines: one group per line would leave the device idle. A launch per line.
        partial = x.device.empty((lines * chunks,), x.dtype)
        for line in range(lines):
            queue.launch(chunk_kernel(op, T, block), chunks, block, x, partial, line * n, n, CHUNK_LOADS,
                         line * chunks)
        block2 = _block(x, chunks)
        queue.launch(reduce_kernel(op, T, block2, True), lines, block2, partial, out, chunks, 1, n)
        return
    outer = lines // inner
    if inner >= COLUMNS_INNER and n <= COLUMNS_MAX_N and outer * -(-inner // _block(x, inner)) <= x.device.info.max_grid_dims[0]:
        block = _block(x, inner)
        full = inner // block
        if full:  # whole groups of lines, then the rest
            queue.launch(columns_kernel(op, T, block, False), outer * full, block, x, out, n, inner, full, 0)
        if inner % block:
            queue.launch(columns_kernel(op, T, block, True), outer, block, x, out, n, inner, 1, full * block)
        return
    queue.launch(reduce_kernel(op, T, block, inner == 1), lines, block, x, out, n, inner, n)


def softmax(x: Array, out: Array, *, axis: int, queue: Queue) -> None:
    lines, n, inner = _geometry(x, axis)
    if lines and n:
        block = _block(x, n)
        queue.launch(softmax_kernel(scalar_type(x.dtype), block, inner == 1), lines, block, x, out, n, inner)
