"""Work-items innermost (hal.kernel._cinterchange): interchanged loops against the reference interpreter.

Uniform loops, lane-varying (grid-stride) loops with masked trips, nested ones, divergent
branches inside, barriers around, work-items that returned before the loop, and the loop
variable read after the loop, strip-mined lane-varying loops with partial strips (prefetching
ahead, their common trips unmasked), short uniform loops run per bundle: every output bit-identical to the interpreter's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

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
    # a work-item past its own trips is masked (its value on this trip, not the prefetches' ahead)
    assert "continue;" in re.split(r"\(int64_t\)hal_t\d+ \* hal_sp_\d+;", run)[-1]


@hal.kernel
def strided_2d(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], last: hal.Ptr[hal.i32], n: hal.i32):
    gid = hal.global_id(1) * hal.global_size(0) + hal.global_id(0)
    acc = hal.f32(0)
    m = hal.f32(1)
    i = -1
    for i in range(gid, n, hal.global_size(0) * hal.global_size(1)):
        v = x[i]
        if v > 0.0:  # divergent inside the strip: a mask
            acc += v * m
        else:
            m = m * hal.f32(0.5) + v
    out[gid] = acc + m
    last[gid] = i


def _strip_loop_line(source: str) -> int:
    lines = source.splitlines()
    strip = next(i for i, s in enumerate(lines) if "/* strip-mined lanes */" in s)
    return next(i for i in range(strip, len(lines))
                if lines[i].endswith("for (int32_t hal_j = 0; hal_j < hal_xn; hal_j++) {")) + 1


@pytest.mark.parametrize("kernel", [grid_stride, strided_2d])
def test_lane_varying_loop_with_a_straight_body_is_strip_mined_and_vectorised(kernel: hal.kernel,
                                                                               tmp_path: Path) -> None:
    """The strip form: the work-item's variables in strip-local arrays across trips, loads at
    ``hal_v`` (affine in the lane), and gcc vectorises the lanes of a strip."""
    from hal_cpu._compiler import CFLAGS

    source = cemit.emit(kernel.ir)
    run = source.split("hal_run")[1]
    assert "/* strip-mined lanes */" in run
    assert "[hal_j] = " in run.split("/* strip-mined lanes */")[1]  # work-item state in strip-local arrays
    gcc = shutil.which("gcc")
    assert gcc is not None
    src = tmp_path / "k.c"
    src.write_text(source)
    include = Path(__file__).resolve().parents[2] / "csrc"
    proc = subprocess.run([gcc, *CFLAGS, "-fopt-info-vec-optimized", "-I", str(include), str(src), "-o",
                           str(tmp_path / "k.so"), "-lm"], capture_output=True, text=True, check=True)
    where = f"k.c:{_strip_loop_line(source)}:"
    assert any(where in line and "loop vectorized" in line for line in proc.stderr.splitlines()), proc.stderr


def test_strip_mined_grid_stride_is_bit_identical_with_partial_strips(dev: hal.Device) -> None:  # noqa: F811
    rng = np.random.default_rng(4)
    # 300 work-items per group: a full strip of 256 and a partial one of 44; n not a multiple of the grid
    for n in (0, 1, 899, 3001, 10517):
        x = rng.standard_normal(max(n, 1)).astype(np.float32)
        got, want = both(dev, strided_2d, 3, 300, x, np.zeros(900, np.float32), np.zeros(900, np.int32), n)
        assert_same(got, want)
    # two dimensions: strips along x (262 = 256 + 6) in each row, rows and groups in y
    for n in (5, 4321):
        x = rng.standard_normal(n).astype(np.float32)
        got, want = both(dev, strided_2d, (2, 2), (262, 3), x, np.zeros(3144, np.float32), np.zeros(3144, np.int32),
                         n)
        assert_same(got, want)


@hal.kernel
def countdown(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], last: hal.Ptr[hal.i32], n: hal.i32):
    gid = hal.global_id(0)
    acc = hal.f32(0)
    i = -7
    for i in range(n - 1 - gid, -1, -hal.global_size(0)):  # negative step
        acc = acc * hal.f32(0.75) + x[i]
    out[gid] = acc
    last[gid] = i


def test_strips_run_their_common_trips_unmasked() -> None:
    """A full strip runs the trips that all the group's work-items run without the mask (and without
    storing the loop variable, set once after them); not where one may have left (returned) before."""
    for kernel in (grid_stride, strided_2d, countdown):
        run = cemit.emit(kernel.ir).split("hal_run")[1]
        unmasked = run.split("; hal_t1 < hal_lo1; hal_t1++) {")[1].split("hal_wi_end")[0]
        assert "continue;" not in unmasked and "hal_s1_1" not in unmasked
        assert "if (hal_lo1 > 0)" in run
    assert "hal_lo" not in cemit.emit(nested_masks.ir)


def test_unmasked_trips_are_bit_identical(dev: hal.Device) -> None:  # noqa: F811
    rng = np.random.default_rng(7)
    # work-groups of 300: a full strip and a partial one (all its trips masked); of 256: one full
    # strip; of 40: a partial one only. n: no trips at all, lanes without trips, trip counts that
    # differ within a group, and equal ones (n a multiple of the grid: no masked trip, the loop
    # variable's final value comes from the unmasked trips alone)
    for grid, block in ((3, 300), (2, 256), (5, 40)):
        size = grid * block
        for n in (0, 1, size - 1, size, 3 * size, 3 * size + 17, 7 * size - 5):
            x = rng.standard_normal(max(n, 1)).astype(np.float32)
            got, want = both(dev, countdown, grid, block, x, np.zeros(size, np.float32), np.zeros(size, np.int32), n)
            assert_same(got, want)


@hal.kernel
def tiled_gemm(a: hal.Ptr[hal.f32], b: hal.Ptr[hal.f32], c: hal.Ptr[hal.f32], n: hal.i32):
    """A shared-memory tiled C = A @ B whose 8-trip k-loop runs per bundle of work-items; ``k``
    is also written by the work-items after the loop, so it is per-work-item state."""
    ta = hal.shared(hal.f32, 64)
    tb = hal.shared(hal.f32, 64)
    tx = hal.local_id(0) % 8
    ty = hal.local_id(1)
    row = hal.group_id(1) * 8 + ty
    col = hal.group_id(0) * 8 + tx
    acc = hal.f32(0)
    k = 0
    for t in range(0, n, 8):
        if hal.local_id(0) < 8:
            ta[ty * 8 + tx] = a[row * n + t + tx]
            tb[ty * 8 + tx] = b[(t + ty) * n + col]
        hal.barrier()
        for k in range(8):
            acc += ta[ty * 8 + k] * tb[k * 8 + tx] * hal.f32(1.5)
        hal.barrier()
    k += hal.local_id(0)
    c[(row * n + col) * 3 + hal.local_id(0) // 8] = acc + hal.f32(k)


def test_short_uniform_loop_runs_per_bundle_bit_identical(dev: hal.Device) -> None:  # noqa: F811
    """Work-groups of 24 x 8: a full bundle of 16 and a partial one of 8 in each row."""
    source = cemit.emit(tiled_gemm.ir)
    assert "#pragma GCC unroll 16" in source and "if (bx - hal_x0 >= 16) {" in source
    rng = np.random.default_rng(5)
    n = 16
    a, b = (rng.standard_normal(n * n).astype(np.float32) for _ in range(2))
    got, want = both(dev, tiled_gemm, (2, 2), (24, 8), a, b, np.zeros(n * n * 3, np.float32), n)
    assert_same(got, want)


@hal.kernel
def nested_lanes(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32):
    gid = hal.global_id(0)
    acc = hal.f32(0)
    for i in range(gid, n, hal.global_size(0)):
        for j in range(i, n, 7):  # strip-mined, its start read from the enclosing loop: no prefetch
            acc += x[j]
    out[gid] = acc


def test_strip_inside_a_lane_varying_loop_is_bit_identical(dev: hal.Device) -> None:  # noqa: F811
    x = np.random.default_rng(6).standard_normal(50).astype(np.float32)
    got, want = both(dev, nested_lanes, 2, 8, x, np.zeros(16, np.float32), 50)
    assert_same(got, want)
