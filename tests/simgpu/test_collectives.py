"""simgpu's collectives: subgroups are warps of 32, and their cost follows the README's "Collectives"."""

from __future__ import annotations

import numpy as np
from hal_simgpu._tracer import WARP_STEPS

import hal
from hal.kernel import interpreter


@hal.kernel
def copy(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    y[i] = x[i]


@hal.kernel
def shuffled(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32], mask: hal.i32):
    i = hal.global_id(0)
    y[i] = hal.shuffle_xor(x[i], mask)


@hal.kernel
def positive_bit(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    y[i] = hal.f32(hal.u64(x[i] > 0.0))


@hal.kernel
def voted(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    y[i] = hal.f32(hal.subgroup_ballot(x[i] > 0.0))


@hal.kernel
def warp_sum(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    y[i] = hal.subgroup_reduce_add(x[i])


@hal.kernel
def block_sum(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    y[i] = hal.group_reduce_add(x[i])


def instructions(dev: hal.Device, kernel: object, blocks: int = 8, block: int = 256, *extra: int) -> int:
    x = dev.array(np.random.default_rng(0).standard_normal(blocks * block).astype(np.float32))
    y = dev.zeros((blocks * block,), np.float32)
    with hal.profile() as prof:
        kernel[blocks, block, dev.default_queue](x, y, *extra)  # type: ignore[index]
        dev.default_queue.synchronize()
    want = np.zeros(blocks * block, np.float32)
    interpreter.run(kernel.ir, (blocks, 1, 1), (block, 1, 1), [x.numpy(), want, *extra], subgroup_size=32)  # type: ignore[attr-defined]
    assert np.array_equal(y.numpy(), want)
    return int(prof.records[-1].counters["warp_instructions"])


def test_subgroups_are_warps(a100: hal.Device) -> None:
    assert a100.info.subgroup_size == a100.info.warp_size == 32 and a100.supports("subgroups")


def test_collective_costs(a100: hal.Device) -> None:
    warps = 8 * 256 // 32
    base = instructions(a100, copy)
    assert instructions(a100, shuffled, 8, 256, 1) == base + warps  # one SHFL per warp
    # a VOTE is one instruction per warp, as is the bool -> u64 conversion it stands in for (not a butterfly)
    assert instructions(a100, voted) == instructions(a100, positive_bit)
    assert instructions(a100, warp_sum) == base + warps * 2 * WARP_STEPS  # 5 x (SHFL + FADD)
    # the warp butterfly, a store and a load per warp, two barriers (an issue slot per warp each), and
    # per block: one warp's load, log2(8) SHFL + FADD, and store
    assert instructions(a100, block_sum) == base + warps * 2 * WARP_STEPS + 2 * warps + 2 * warps + 8 * (2 + 2 * 3)
