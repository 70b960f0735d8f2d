"""Portable gemm, conv2d and transpose.

gemm is the classic shared-memory tiling: a work-group of TILE x TILE
threads computes a TILE x TILE block of C, staging TILE-wide slabs of A and B
in shared memory between barriers, so each element loaded from global memory
is used TILE times. Kernels are specialised on the transpositions (constant
strides; a transposed operand is staged transposed, so that loads stay
coalesced) and on the tile kind: C's interior tiles load without conditions,
and a second kernel covers the strips at the M and N edges, loading clamped
copies there. Only a partial last K slab loads zeros. The launch is 2-D where
the device has ``multi_dim``, else 1-D. int8 has no scalar type in the
kernel language, so int8 gemm is left to natives. conv2d is direct (one
thread per output); transpose maps each output element to its source through
shape/stride tables kept in a small device array.
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
def gemm_kernel(T: ScalarType, TILE: int, trans_a: bool, trans_b: bool, two_d: bool, edge: bool) -> KernelFunction:
    """One kernel per dtype, tile, transposition, launch shape and tile kind, so that every index is
    affine with constant strides: each global load reads consecutive elements along the x work-items
    (a transposed operand is staged transposed), and full K slabs load without conditions. Interior
    tiles (``edge`` false) lie inside C; edge tiles load clamped, in-bounds copies of the rows and
    columns past M and N (never stored). Only the last, partial K slab zero-fills past K. C
    accumulates over k in increasing order. The group's tile starts at row ``r_off`` and column
    ``c_off`` plus its place in the grid (``tiles_n`` tiles a row in a 1-D launch)."""

    @hk
    def gemm(a: hk.Ptr[T], b: hk.Ptr[T], c: hk.Ptr[T], m: hk.i32, n: hk.i32, k: hk.i32,
             alpha: T, beta: T, tiles_n: hk.i32, r_off: hk.i32, c_off: hk.i32):
        ta = hk.shared(T, TILE * TILE)  # A's slab, [row][kk]
        tb = hk.shared(T, TILE * TILE)  # B's slab, [kk][col]
        if two_d:
            tx = hk.local_id(0)
            ty = hk.local_id(1)
            r0 = r_off + hk.group_id(1) * TILE
            c0 = c_off + hk.group_id(0) * TILE
        else:
            lid = hk.local_id(0)
            tx = lid % TILE
            ty = lid // TILE
            r0 = r_off + (hk.group_id(0) // tiles_n) * TILE
            c0 = c_off + (hk.group_id(0) % tiles_n) * TILE
        # the row of A and the column of B that this work-item loads
        if trans_a:
            ar = r0 + tx
        else:
            ar = r0 + ty
        if trans_b:
            bc = c0 + ty
        else:
            bc = c0 + tx
        if edge:
            ar = hk.min(ar, m - 1)
            bc = hk.min(bc, n - 1)
        acc = T(0)
        kfull = k - k % TILE
        for t in range(0, kfull, TILE):
            if trans_a:
                ta[tx * TILE + ty] = a[(t + ty) * m + ar]
            else:
                ta[ty * TILE + tx] = a[ar * k + t + tx]
            if trans_b:
                tb[tx * TILE + ty] = b[bc * k + t + tx]
            else:
                tb[ty * TILE + tx] = b[(t + ty) * n + bc]
            hk.barrier()
            for kk in range(TILE):
                acc += ta[ty * TILE + kk] * tb[kk * TILE + tx]
            hk.barrier()
        # The last, partial slab (at most once), zeros past k. Its variables are its own: sharing the
        # loop variables above with a loop of unknown range would widen their (constant) range there.
        for tl in range(kfull, k, TILE):
            kx = hk.min(tl + tx, k - 1)  # clamped too, so that every index stays in bounds
            ky = hk.min(tl + ty, k - 1)
            if trans_a:
                ta[tx * TILE + ty] = a[ky * m + ar] if tl + ty < k else T(0)
            else:
                ta[ty * TILE + tx] = a[ar * k + kx] if tl + tx < k else T(0)
            if trans_b:
                tb[tx * TILE + ty] = b[bc * k + kx] if tl + tx < k else T(0)
            else:
                tb[ty * TILE + tx] = b[ky * n + bc] if tl + ty < k else T(0)
            hk.barrier()
            for kl in range(TILE):
                acc += ta[ty * TILE + kl] * tb[kl * TILE + tx]
            hk.barrier()
        row = r0 + ty
        col = c0 + tx
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
    device, T = out.device, scalar_type(out.dtype)
    tile = _tile(device, out.dtype.itemsize)
    tiles_m, tiles_n = -(-m // tile), -(-n // tile)
    two_d = device.supports(Feature.MULTI_DIM) and tiles_m <= device.info.max_grid_dims[1] \
        and tiles_n <= device.info.max_grid_dims[0] and tile <= device.info.max_block_dims[1]

    def launch(edge: bool, rows: int, cols: int, r_off: int, c_off: int) -> None:
        """``rows`` x ``cols`` tiles of C from row ``r_off``, column ``c_off``."""
        if rows and cols:
            grid, block = ((cols, rows), (tile, tile)) if two_d else (rows * cols, tile * tile)
            queue.launch(gemm_kernel(T, tile, trans_a, trans_b, two_d, edge), grid, block,
                         a, b, out, m, n, k, alpha, beta, cols, r_off, c_off)

    full_m, full_n = m // tile, n // tile
    launch(False, full_m, full_n, 0, 0)  # the interior tiles, then the edges' strips (they write apart)
    launch(True, tiles_m, tiles_n - full_n, 0, full_n * tile)
    launch(True, tiles_m - full_m, full_n, full_m * tile, 0)


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
