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
    masks = rng.integers(0, 2 * size, n).astype(np.int32)
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
