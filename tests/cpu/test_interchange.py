"""Work-items innermost (hal.kernel._cinterchange): interchanged loops against the reference interpreter.

Uniform loops, lane-varying (grid-stride) loops with masked trips, nested ones, divergent
branches inside, barriers around, work-items that returned before the loop, and the loop
variable read after the loop: every output bit-identical to the interpreter's.
"""

from __future__ import annotations

import numpy as np
import pytest

import hal
from hal.kernel import cemit

from .test_compiler import assert_same, both, cache, dev  # noqa: F401  (fixtures)


@hal.kernel
def grid_stride(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], last: hal.Ptr[hal.i32], n: hal.i32):
    sh = hal.shared(hal.f32, 64)
    lid = hal.local_id(0)
    acc = hal.f32(0)
    i = -1
    for i in range(hal.global_id(0), n, hal.global_size(0)):
        acc += x[i] * hal.f32(0.5)
    last[hal.global_id(0)] = i
    sh[lid] = acc
    hal.barrier()
    s = 32
    while s > 0:
        if lid < s:
            sh[lid] += sh[lid + s]
        hal.barrier()
        s //= 2
    if lid == 0:
        out[hal.group_id(0)] = sh[0]


@hal.kernel
def nested_masks(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32, reps: hal.i32):
    gid = hal.global_id(0)
    if gid % 7 == 3:
        return
    acc = hal.f32(1)
    for r in range(reps):
        for j in range(n - 1 - gid, -1, -5):  # lane-varying start, negative step
            v = x[j]
            if v > 0.0:  # divergent: a mask inside the lane loop
                acc = acc * hal.f32(1.25) + v
            else:
                acc = acc - v * hal.f32(r)
    out[gid] = acc


@hal.kernel
def tiled(a: hal.Ptr[hal.f32], b: hal.Ptr[hal.f32], c: hal.Ptr[hal.f32], n: hal.i32):
    ta = hal.shared(hal.f32, 16)
    tb = hal.shared(hal.f32, 16)
    tx = hal.local_id(0)
    ty = hal.local_id(1)
    row = hal.group_id(1) * 4 + ty
    col = hal.group_id(0) * 4 + tx
    acc = hal.f32(0)
    for t in range(0, n, 4):
        ta[ty * 4 + tx] = a[row * n + t + tx]
        tb[ty * 4 + tx] = b[(t + ty) * n + col]
        hal.barrier()
        for k in range(4):
            acc += ta[ty * 4 + k] * tb[k * 4 + tx]
        hal.barrier()
    c[row * n + col] = acc


@hal.kernel
def unsigned_stride(x: hal.Ptr[hal.u32], out: hal.Ptr[hal.u32], n: hal.u32):
    acc = hal.u32(0)
    for i in range(hal.u32(hal.local_id(0)), n, hal.u32(3)):
        acc = acc * hal.u32(31) + x[i]
    out[hal.global_id(0)] = acc


@hal.kernel
def start_changes(x: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32], n: hal.i32):
    s = hal.global_id(0)
    for i in range(s, n, 4):
        s = s + x[i]
    out[hal.global_id(0)] = s


def test_grid_stride_loop_runs_masked_trips(dev: hal.Device) -> None:  # noqa: F811
    rng = np.random.default_rng(1)
    for n in (0, 1, 200, 1000):
        x = rng.standard_normal(max(n, 1)).astype(np.float32)
        got, want = both(dev, grid_stride, 3, 64, x, np.zeros(3, np.float32), np.zeros(192, np.int32), n)
        assert_same(got, want)


def test_nested_loops_with_divergent_branches_and_returned_work_items(dev: hal.Device) -> None:  # noqa: F811
    x = np.random.default_rng(2).standard_normal(300).astype(np.float32)
    got, want = both(dev, nested_masks, 5, 40, x, np.zeros(200, np.float32), 200, 3)
    assert_same(got, want)


def test_barriers_around_an_interchanged_k_loop(dev: hal.Device) -> None:  # noqa: F811
    rng = np.random.default_rng(3)
    a, b = (rng.standard_normal(144).astype(np.float32) for _ in range(2))
    got, want = both(dev, tiled, (3, 3), (4, 4), a, b, np.zeros(144, np.float32), 12)
    assert_same(got, want)


def test_unsigned_lane_varying_loop(dev: hal.Device) -> None:  # noqa: F811
    x = np.arange(50, dtype=np.uint32) * np.uint32(2654435761)
    got, want = both(dev, unsigned_stride, 2, 16, x, np.zeros(32, np.uint32), np.uint32(50))
    assert_same(got, want)


def test_start_that_the_body_changes_stays_scalar_and_correct(dev: hal.Device) -> None:  # noqa: F811
    assert "hal_v1" not in cemit.emit(start_changes.ir)
    got, want = both(dev, start_changes, 2, 8, np.arange(40, dtype=np.int32), np.zeros(16, np.int32), 40)
    assert_same(got, want)


@pytest.mark.parametrize("kernel", [grid_stride, nested_masks, unsigned_stride])
def test_lane_varying_loops_run_the_largest_trip_count_once_per_group(kernel: hal.kernel) -> None:
    run = cemit.emit(kernel.ir).split("hal_run")[1]
    assert "if (hal_m > hal_n" in run  # the group's trip count: the largest of its work-items'
    assert "continue;" in run.split("const int64_t hal_v")[1]  # a work-item past its own trips is masked
