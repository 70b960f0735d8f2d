"""Portable gemm, conv2d and transpose.

gemm is the classic shared-memory tiling: a work-group of TILE x TILE
threads computes a TILE x TILE block of C, staging TILE-wide slabs of A and B
in shared memory between barriers, so each element loaded from global memory
is used TILE times. Transposition is folded into the loads through row and
column strides, and edges (any M, N, K) load zeros. The launch is 1-D (no
``multi_dim`` needed). int8 has no scalar type in the kernel language, so
int8 gemm is left to natives. conv2d is direct (one thread per output);
transpose maps each output element to its source through shape/stride
tables kept in a small device array.
"""

import functools
import math

import numpy as np

import hal.kernel as hk

from ..._device import Device
from ..._errors import UnsupportedError
from ..._features import Feature
from ..._memory import Array
from ..._queue import Queue
from ...kernel.function import KernelFunction
from ...kernel.types import ScalarType
from ._common import pow2_block, scalar_type, stride_groups


@functools.cache
def gemm_kernel(T: ScalarType, TILE: int) -> KernelFunction:
    @hk
    def gemm(a: hk.Ptr[T], b: hk.Ptr[T], c: hk.Ptr[T], m: hk.i32, n: hk.i32, k: hk.i32,
             sa0: hk.i32, sa1: hk.i32, sb0: hk.i32, sb1: hk.i32, alpha: T, beta: T, tiles_n: hk.i32):
        ta = hk.shared(T, TILE * TILE)
        tb = hk.shared(T, TILE * TILE)
        lid = hk.local_id(0)
        tx = lid % TILE
        ty = lid // TILE
        g = hk.group_id(0)
        row = (g // tiles_n) * TILE + ty
        col = (g % tiles_n) * TILE + tx
        acc = T(0)
        for t in range(0, k, TILE):
            ka = t + tx
            ta[lid] = a[row * sa0 + ka * sa1] if row < m and ka < k else T(0)
            kb = t + ty
            tb[lid] = b[kb * sb0 + col * sb1] if kb < k and col < n else T(0)
            hk.barrier()
            for kk in range(TILE):
                acc += ta[ty * TILE + kk] * tb[kk * TILE + tx]
            hk.barrier()
        if row < m and col < n:
            if beta == 0:
                c[row * n + col] = alpha * acc
            else:
                c[row * n + col] = alpha * acc + beta * c[row * n + col]

    return gemm


def gemm(a: Array, b: Array, out: Array, *, alpha: float, beta: float, trans_a: bool, trans_b: bool,
         queue: Queue) -> None:
    if out.dtype == np.int32:
        raise UnsupportedError(f"the portable hal.ops.gemm has no int8 version (the kernel language has no int8 "
                               f"type); {out.device.spec} needs a native int8 gemm", feature=Feature.INT8.value)
    m, n = out.shape
    k = a.shape[0] if trans_a else a.shape[1]
    if m == 0 or n == 0:
        return
    sa = (1, m) if trans_a else (k, 1)
    sb = (1, k) if trans_b else (n, 1)
    tile = _tile(out.device, out.dtype.itemsize)
    tiles_n = -(-n // tile)
    queue.launch(gemm_kernel(scalar_type(out.dtype), tile), -(-m // tile) * tiles_n, tile * tile,
                 a, b, out, m, n, k, sa[0], sa[1], sb[0], sb[1], alpha, beta, tiles_n)


def _tile(device: Device, itemsize: int) -> int:
    """16, or less where a work-group of tile**2 threads or two tile**2 slabs do not fit."""
    tile = 16
    while tile > 1 and (tile * tile > pow2_block(device, 256) or 2 * tile * tile * itemsize
                        > device.info.shared_memory_bytes):
        tile //= 2
    return tile


@functools.cache
def conv2d_kernel(T: ScalarType) -> KernelFunction:
    @hk
    def conv2d(x: hk.Ptr[T], w: hk.Ptr[T], out: hk.Ptr[T], batch: hk.i32, chans: hk.i32, height: hk.i32,
               width: hk.i32, kout: hk.i32, kh: hk.i32, kw: hk.i32, oh: hk.i32, ow: hk.i32,
               sh: hk.i32, sw: hk.i32, ph: hk.i32, pw: hk.i32):
        total = batch * kout * oh * ow
        i = hk.global_id(0)
        while i < total:
            q = i % ow
            p = (i // ow) % oh
            ko = (i // (ow * oh)) % kout
            nb = i // (ow * oh * kout)
            acc = T(0)
            for c in range(chans):
                for r in range(kh):
                    h = p * sh - ph + r
                    if h >= 0 and h < height:
                        for s in range(kw):
                            col = q * sw - pw + s
                            if col >= 0 and col < width:
                                acc += x[((nb * chans + c) * height + h) * width + col] * \
                                    w[((ko * chans + c) * kh + r) * kw + s]
            out[i] = acc
            i += hk.global_size(0)

    return conv2d


def conv2d(x: Array, w: Array, out: Array, *, stride: tuple[int, int], padding: tuple[int, int],
           queue: Queue) -> None:
    block = pow2_block(out.device, 256)
    queue.launch(conv2d_kernel(scalar_type(out.dtype)), stride_groups(out.device, out.size, block), block,
                 x, w, out, *x.shape, w.shape[0], w.shape[2], w.shape[3], out.shape[2], out.shape[3],
                 *stride, *padding)


@functools.cache
def transpose_kernel(T: ScalarType) -> KernelFunction:
    @hk
    def transpose(x: hk.Ptr[T], out: hk.Ptr[T], table: hk.Ptr[hk.i32], ndim: hk.i32, total: hk.i32):
        i = hk.global_id(0)
        while i < total:
            rest = i
            src = 0
            for d in range(ndim - 1, -1, -1):
                extent = table[d]
                src += (rest % extent) * table[ndim + d]
                rest = rest // extent
            out[i] = x[src]
            i += hk.global_size(0)

    return transpose


def transpose(x: Array, out: Array, *, axes: tuple[int, ...], queue: Queue) -> None:
    if out.size == 0:
        return
    strides = [math.prod(x.shape[d + 1:]) for d in range(x.ndim)]
    host = np.array([*out.shape, *(strides[a] for a in axes)] or [1, 0], dtype=np.int32)
    table = out.device.empty(host.shape, np.int32)
    queue.copy(table, host, blocking=False)
    block = pow2_block(out.device, 256)
    queue.launch(transpose_kernel(scalar_type(out.dtype)), stride_groups(out.device, out.size, block), block,
                 x, out, table, x.ndim, out.size)
