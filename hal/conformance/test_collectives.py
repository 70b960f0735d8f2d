"""Subgroup and work-group collectives (``Feature.SUBGROUPS``) against a numpy model of their semantics.

The expected values come from :func:`tree`, written here from the IR's definition (not from
hal's interpreter): subgroups are aligned runs of ``S = DeviceInfo.subgroup_size`` linear local
ids (the last one may be partial), a shuffle from a lane that does not exist returns the caller's
own value, and reductions combine ``x[i] op x[i + s]`` for ``i`` a multiple of ``2 s``,
``s = 1, 2, 4, ...``. Floating-point results must match bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

import hal

from ._compare import assert_array_equal

pytestmark = [pytest.mark.feature("kernels"), pytest.mark.feature("subgroups")]
OPS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "max": np.maximum, "min": np.minimum}


def tree(op: str, values: np.ndarray) -> np.generic:
    """The IR's reduction order over ``values`` (in linear local id order)."""
    x = list(values)
    fn = OPS[op]
    s = 1
    while s < len(x):
        for i in range(0, len(x) - s, 2 * s):
            x[i] = fn(x[i], x[i + s])
        s *= 2
    return x[0]  # type: ignore[no-any-return]


def subgroups(tpg: int, size: int) -> list[range]:
    return [range(b, min(b + size, tpg)) for b in range(0, tpg, size)]


def run(device: hal.Device, kernel: object, groups: int, block: int | tuple[int, ...], *args: object) -> None:
    kernel[groups, block, device.default_queue](*args)  # type: ignore[index]
    device.default_queue.synchronize()


@hal.kernel
def lane_ids(out: hal.Ptr[hal.i32]):
    i = hal.global_id(0)
    out[2 * i] = hal.subgroup_local_id()
    out[2 * i + 1] = hal.subgroup_size()


@pytest.mark.parametrize("block", [64, 50])
def test_subgroup_size_and_lanes(device, block):
    size = device.info.subgroup_size
    assert size >= 1 and size & (size - 1) == 0, f"DeviceInfo.subgroup_size {size} is not a power of two"
    out = device.zeros((3 * block * 2,), np.int32)
    run(device, lane_ids, 3, block, out)
    got = out.numpy().reshape(3, block, 2)
    assert_array_equal(got[..., 1], size, what="hal.subgroup_size()")
    assert_array_equal(got[..., 0], np.tile(np.arange(block) % size, (3, 1)), what="hal.subgroup_local_id()")


@hal.kernel
def lane_ids_2d(out: hal.Ptr[hal.i32]):
    x = hal.local_id(0)
    y = hal.local_id(1)
    out[y * hal.local_size(0) + x] = hal.subgroup_local_id()


@pytest.mark.feature("multi_dim")
def test_subgroups_follow_linear_local_id(device):
    out = device.zeros((5 * 7,), np.int32)
    run(device, lane_ids_2d, 1, (5, 7), out)
    assert_array_equal(out, np.arange(35) % device.info.subgroup_size, what="lane of local (x, y)")


@hal.kernel
def shuffles(x: hal.Ptr[hal.f32], lanes: hal.Ptr[hal.i32], masks: hal.Ptr[hal.i32], out: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    v = x[i]
    lane = lanes[i]
    mask = masks[i]
    out[3 * i] = hal.shuffle(v, lane)
    out[3 * i + 1] = hal.shuffle_xor(v, mask)
    out[3 * i + 2] = hal.shuffle(v, 0)


@pytest.mark.parametrize("block", [64, 50, 1])
def test_shuffle(device, block):
    size, groups = device.info.subgroup_size, 3
    n = groups * block
    rng = np.random.default_rng(block)
    x = rng.standard_normal(n).astype(np.float32)
    lanes = rng.integers(-2, size + 2, n).astype(np.int32)  # some lanes do not exist
    masks = rng.integers(0, size, n).astype(np.int32)  # in [0, S): a larger one faults where checked
    out = device.zeros((3 * n,), np.float32)
    run(device, shuffles, groups, block, device.array(x), device.array(lanes), device.array(masks), out)
    want = np.zeros((n, 3), np.float32)
    for g in range(groups):
        for sub in subgroups(block, size):
            base, count = g * block + sub.start, len(sub)
            for t in range(base, base + count):
                lane = t - base
                for k, src in enumerate((lanes[t], lane ^ masks[t], 0)):
                    want[t, k] = x[base + src] if 0 <= src < count else x[t]
    got = out.numpy().reshape(n, 3)
    assert_array_equal(got[:, 0], want[:, 0], what="hal.shuffle(v, lane)")
    assert_array_equal(got[:, 1], want[:, 1], what="hal.shuffle_xor(v, mask)")
    assert_array_equal(got[:, 2], want[:, 2], what="hal.shuffle(v, 0)")


T = hal.dtype_var("T")


@hal.kernel
def reductions(x: hal.Ptr[T], out: hal.Ptr[T]):
    i = hal.global_id(0)
    v = x[i]
    out[6 * i] = hal.subgroup_reduce_add(v)
    out[6 * i + 1] = hal.subgroup_reduce_max(v)
    out[6 * i + 2] = hal.subgroup_reduce_min(v)
    out[6 * i + 3] = hal.group_reduce_add(v)
    out[6 * i + 4] = hal.group_reduce_max(v)
    out[6 * i + 5] = hal.group_reduce_min(v)


def expected_reductions(x: np.ndarray, block: int, size: int) -> np.ndarray:
    n = len(x)
    want = np.zeros((n, 6), x.dtype)
    with np.errstate(over="ignore"):
        for g in range(n // block):
            row = x[g * block:(g + 1) * block]
            for k, op in enumerate(OPS):
                want[g * block:(g + 1) * block, 3 + k] = tree(op, row)
                for sub in subgroups(block, size):
                    want[g * block + sub.start:g * block + sub.stop, k] = tree(op, row[sub.start:sub.stop])
    return want


def check_reductions(device: hal.Device, kernel: object, x: np.ndarray, block: int) -> None:
    out = device.zeros((6 * len(x),), x.dtype)
    run(device, kernel, len(x) // block, block, device.array(x), out)
    got = out.numpy().reshape(-1, 6)
    want = expected_reductions(x, block, device.info.subgroup_size)
    names = [f"{scope}_reduce_{op}" for scope in ("subgroup", "group") for op in OPS]
    for k, name in enumerate(names):
        assert_array_equal(got[:, k], want[:, k], what=f"hal.{name} ({block} work-items per group)")


@pytest.mark.parametrize("block", [256, 100, 33, 1])
def test_reductions_f32_bit_exact(device, block):
    x = np.random.default_rng(block).standard_normal(4 * block).astype(np.float32) * np.float32(1e3)
    check_reductions(device, reductions, x, block)


@pytest.mark.parametrize("block", [128, 45])
def test_reductions_i32_wrap(device, block):
    x = np.random.default_rng(block).integers(-2**31, 2**31 - 1, 3 * block).astype(np.int32)
    check_reductions(device, reductions, x, block)


@pytest.mark.feature("f64")
def test_reductions_f64_bit_exact(device):
    x = np.random.default_rng(7).standard_normal(3 * 96) * 1e10
    check_reductions(device, reductions, x, 96)


def test_reductions_propagate_nan(device):
    x = np.arange(4 * 64, dtype=np.float32)
    x[70] = np.nan
    out = device.zeros((6 * len(x),), np.float32)
    run(device, reductions, 4, 64, device.array(x), out)
    got = out.numpy().reshape(-1, 6)
    assert np.isnan(got[64:128, 3:]).all(), "a NaN in the work-group makes its group reductions NaN"
    assert not np.isnan(got[128:, 3:]).any() and not np.isnan(got[:64, 3:]).any()


@hal.kernel
def reduce_is_barrier(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32], n: hal.i32):
    tile = hal.shared(hal.f32, 128)
    lid = hal.local_id(0)
    tile[lid] = x[hal.global_id(0)]
    total = hal.group_reduce_add(tile[lid])  # no hal.barrier(): the reduction is one
    nxt = tile[(lid + 1) % hal.local_size(0)]
    for k in range(n):  # collectives in a uniform loop, reusing their scratch
        total = total + hal.group_reduce_max(nxt + hal.f32(k))
    out[hal.global_id(0)] = total


@pytest.mark.feature("shared_memory")
def test_group_reduce_is_a_barrier(device):
    x = np.random.default_rng(3).standard_normal(2 * 128).astype(np.float32)
    out = device.zeros((256,), np.float32)
    run(device, reduce_is_barrier, 2, 128, device.array(x), out, 3)
    want = np.zeros(256, np.float32)
    for g in range(2):
        row = x[g * 128:(g + 1) * 128]
        total = tree("add", row)
        for k in range(3):
            total = np.float32(total + tree("max", np.roll(row, -1) + np.float32(k)))
        want[g * 128:(g + 1) * 128] = total
    assert_array_equal(out, want, what="group reductions after shared stores, in a loop")


def test_collective_in_divergent_code_is_a_compile_error(device):
    @hal.kernel
    def divergent(x: hal.Ptr[hal.f32]):
        i = hal.global_id(0)
        if x[i] > 0.0:
            x[i] = hal.group_reduce_add(x[i])

    with pytest.raises(hal.CompileError, match="divergent control flow"):
        device.compile(divergent)


# ------------------------------------------------- shuffles by a distance, votes, scans
def hillis_steele(values: np.ndarray) -> np.ndarray:
    """The IR's inclusive scan of one subgroup: for s = 1, 2, 4, ... x[i] = x[i - s] + x[i] (i >= s)."""
    x = values.copy()
    s = 1
    while s < len(x):
        x = np.concatenate([x[:s], x[:-s] + x[s:]]) if s < len(x) else x
        s *= 2
    return x


@hal.kernel
def lane_ops(x: hal.Ptr[hal.i32], t: hal.i32, k: hal.i32, out: hal.Ptr[hal.i64]):
    i = hal.global_id(0)
    v = x[i]
    d = hal.subgroup_size() // k
    out[8 * i] = hal.i64(hal.shuffle_up(v, d))
    out[8 * i + 1] = hal.i64(hal.shuffle_down(v, d))
    out[8 * i + 2] = hal.i64(hal.subgroup_any(v > t))
    out[8 * i + 3] = hal.i64(hal.subgroup_all(v > t))
    out[8 * i + 4] = hal.i64(hal.subgroup_ballot(v > t))
    out[8 * i + 5] = hal.i64(hal.subgroup_scan_inclusive_add(v))
    out[8 * i + 6] = hal.i64(hal.subgroup_scan_exclusive_add(v))
    out[8 * i + 7] = hal.i64(hal.shuffle_down(v, hal.subgroup_size() - 1))


@pytest.mark.parametrize("block", [64, 50, 1])
@pytest.mark.parametrize("k", [2, 4])
def test_shuffles_by_distance_votes_and_scans(device, block, k):
    size, groups = device.info.subgroup_size, 3
    n = groups * block
    x = np.random.default_rng(block + k).integers(-50, 50, n).astype(np.int32)
    out = device.zeros((8 * n,), np.int64)
    run(device, lane_ops, groups, block, device.array(x), 20, k, out)
    want = np.zeros((n, 8), np.int64)
    d = size // k
    for g in range(groups):
        for sub in subgroups(block, size):
            base, count = g * block + sub.start, len(sub)
            v = x[base:base + count].astype(np.int64)
            p = v > 20
            for lane in range(count):
                t = base + lane
                up, down, last = lane - d, lane + d, lane + size - 1
                want[t, 0] = v[up] if 0 <= up < count else v[lane]
                want[t, 1] = v[down] if down < count else v[lane]
                want[t, 2], want[t, 3] = p.any(), p.all()
                want[t, 4] = sum(1 << j for j in range(count) if p[j])
                want[t, 7] = v[last] if last < count else v[lane]
            want[base:base + count, 5] = hillis_steele(v)
            want[base:base + count, 6] = np.concatenate([[0], hillis_steele(v)[:-1]])
    got = out.numpy().reshape(n, 8)
    for c, what in enumerate(("shuffle_up", "shuffle_down", "subgroup_any", "subgroup_all", "subgroup_ballot",
                              "subgroup_scan_inclusive_add", "subgroup_scan_exclusive_add", "shuffle_down(S - 1)")):
        assert_array_equal(got[:, c], want[:, c], what=f"hal.{what}")


@hal.kernel
def float_scans(x: hal.Ptr[hal.f32], out: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    out[2 * i] = hal.subgroup_scan_inclusive_add(x[i])
    out[2 * i + 1] = hal.subgroup_scan_exclusive_add(x[i])


def test_float_scans_are_bit_identical_in_the_fixed_order(device):
    size, block = device.info.subgroup_size, 96
    x = np.random.default_rng(7).standard_normal(2 * block).astype(np.float32) * np.float32(1e3)
    out = device.zeros((4 * block,), np.float32)
    run(device, float_scans, 2, block, device.array(x), out)
    want = np.zeros((2 * block, 2), np.float32)
    for b in range(0, 2 * block, size):
        inclusive = hillis_steele(x[b:b + size])
        want[b:b + size, 0] = inclusive
        want[b:b + size, 1] = np.concatenate([[np.float32(0)], inclusive[:-1]])
    assert_array_equal(out.numpy().reshape(-1, 2), want, what="float subgroup scans")


# ----------------------------------------- the CUDA samples' warp idioms, written for every S
@hal.kernel
def reduce6(x: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32], n: hal.i32):
    """CUDA samples' reduce6 (6_Advanced/reduction): a grid-stride sum, a shared-memory tree down
    to one subgroup's worth, then shuffles inside ``if tid < S`` (uniform within each subgroup)."""
    sdata = hal.shared(hal.i32, 256)
    tid = hal.local_id(0)
    i = hal.group_id(0) * 512 + tid
    s = hal.i32(0)
    while i < n:
        s += x[i]
        if i + 256 < n:
            s += x[i + 256]
        i += 512 * hal.num_groups(0)
    sdata[tid] = s
    hal.barrier()
    k = 128
    while k >= hal.subgroup_size() and k > 0:
        if tid < k:
            sdata[tid] = sdata[tid] + sdata[tid + k]
        hal.barrier()
        k //= 2
    if tid < hal.subgroup_size():
        v = sdata[tid]
        offset = hal.subgroup_size() // 2
        while offset > 0:
            v += hal.shuffle_down(v, offset)
            offset //= 2
        if tid == 0:
            out[hal.group_id(0)] = v


@hal.kernel
def warp_reduce_32(x: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32]):
    """The same last step as CUDA writes it (``if tid < 32``), with the builtin that is right for
    every subgroup size instead of five fixed shuffles."""
    tid = hal.local_id(0)
    total = hal.i32(0)
    if tid < 32:
        total = hal.subgroup_reduce_add(x[hal.global_id(0)])
    if hal.subgroup_local_id() == 0 and tid < 32:
        hal.atomic_add(out, hal.group_id(0), total)


@pytest.mark.feature("shared_memory")
@pytest.mark.feature("barriers")
def test_reduce6_with_shuffles_under_if_tid_below_the_subgroup(device):
    x = np.random.default_rng(6).integers(-1000, 1000, 70001).astype(np.int32)
    out = device.zeros((8,), np.int32)
    run(device, reduce6, 8, 256, device.array(x), out, len(x))
    assert int(out.numpy().astype(np.int64).sum()) == int(x.astype(np.int64).sum())


@pytest.mark.feature("atomics")
def test_a_warp_reduction_under_if_tid_below_32(device):
    x = np.random.default_rng(32).integers(-100, 100, 4 * 64).astype(np.int32)
    out = device.zeros((4,), np.int32)
    run(device, warp_reduce_32, 4, 64, device.array(x), out)
    assert_array_equal(out, x.reshape(4, 64)[:, :32].sum(axis=1), what="sum of the first 32 per group")


@hal.kernel
def shfl_scan(x: hal.Ptr[hal.i32], out: hal.Ptr[hal.i32], sums: hal.Ptr[hal.i32]):
    """CUDA samples' shfl_scan (2_Concepts_and_Techniques/shfl_scan): a scan per warp with
    ``shfl_up``, the warp totals scanned in shared memory, then added back; for any ``S``."""
    part = hal.shared(hal.i32, 256)
    tid = hal.local_id(0)
    lane = hal.subgroup_local_id()
    warp = tid // hal.subgroup_size()
    v = x[hal.global_id(0)]
    step = 1
    while step < hal.subgroup_size():
        n = hal.shuffle_up(v, step)
        if lane >= step:
            v += n
        step *= 2
    if lane == hal.subgroup_size() - 1:
        part[warp] = v
    hal.barrier()
    if tid == 0:
        acc = hal.i32(0)
        for w in range(hal.local_size(0) // hal.subgroup_size()):
            acc += part[w]
            part[w] = acc
        sums[hal.group_id(0)] = acc
    hal.barrier()
    if warp > 0:
        v += part[warp - 1]
    out[hal.global_id(0)] = v


@pytest.mark.feature("shared_memory")
@pytest.mark.feature("barriers")
def test_shfl_scan_sample(device):
    x = np.random.default_rng(5).integers(-100, 100, 4 * 256).astype(np.int32)
    out, sums = device.zeros((4 * 256,), np.int32), device.zeros((4,), np.int32)
    run(device, shfl_scan, 4, 256, device.array(x), out, sums)
    rows = x.reshape(4, 256)
    assert_array_equal(out, np.cumsum(rows, axis=1).reshape(-1), what="inclusive scan per work-group")
    assert_array_equal(sums, rows.sum(axis=1), what="work-group totals")
