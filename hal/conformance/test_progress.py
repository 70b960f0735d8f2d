"""Memory order and forward progress (docs/memory-model.md, "Forward progress"): the patterns the
rule allows, run on every device with atomics. A work-group takes a lock between work-groups in
one work-item (acquire), works in the critical section, and releases it (release); a work-group
waits for a flag that the work-group before it publishes (release after a fence). Expected values
are numpy's; a timeout bounds each synchronize so a backend that breaks the rule fails, not hangs."""

from __future__ import annotations

import numpy as np
import pytest

import hal

from ._compare import assert_array_equal

pytestmark = [pytest.mark.feature("kernels"), pytest.mark.feature("atomics")]
LIMIT = 60.0
"""Seconds a synchronize may take before the test fails with hal.DeviceTimeout."""


@hal.kernel
def locked_sum(x: hal.Ptr[hal.i32], lock: hal.Ptr[hal.i32], total: hal.Ptr[hal.i32], count: hal.Ptr[hal.i32],
               n: hal.i32):
    """Triton's layer-norm backward lock: a non-atomic read-modify-write of ``total`` made safe by
    a spin lock between work-groups (``atomic_cas`` to take it, ``atomic_exchange`` to give it back)."""
    i = hal.global_id(0)
    s = hal.group_reduce_add(x[i] if i < n else 0)
    if hal.local_id(0) == 0:
        while hal.atomic_cas(lock, 0, 0, 1, order="acquire") != 0:
            pass
        if count[0] == 0:
            total[0] = s
        else:
            total[0] = total[0] + s
        count[0] = count[0] + 1
        hal.atomic_exchange(lock, 0, 0, order="release")


@pytest.mark.feature("subgroups")
@pytest.mark.feature("barriers")
def test_a_spin_lock_between_work_groups(device):
    x = np.random.default_rng(1).integers(-1000, 1000, 40 * 128).astype(np.int32)
    lock, total, count = (device.zeros((1,), np.int32) for _ in range(3))
    locked_sum[40, 128, device.default_queue](device.array(x), lock, total, count, len(x))
    device.default_queue.synchronize(timeout=LIMIT)
    assert_array_equal(total, [int(x.sum())], what="the sum accumulated under the lock")
    assert_array_equal(count, [40], what="work-groups that held the lock")
    assert_array_equal(lock, [0], what="the lock after the kernel")


@hal.kernel
def chained_prefix(x: hal.Ptr[hal.i32], flags: hal.Ptr[hal.i32], prefix: hal.Ptr[hal.i32]):
    """Each work-group waits for the one before it (a lower linear id: allowed), adds its own value
    to that one's prefix, and publishes: a store, a device fence, then the flag with release."""
    g = hal.group_id(0)
    if hal.local_id(0) == 0:
        before = hal.i32(0)
        if g > 0:
            while hal.atomic_add(flags, g - 1, 0, order="acquire") == 0:
                pass
            before = prefix[g - 1]
        prefix[g] = before + x[g]
        hal.fence()
        hal.atomic_exchange(flags, g, 1, order="release")


def test_waiting_for_the_work_group_before(device):
    x = np.random.default_rng(2).integers(-50, 50, 24).astype(np.int32)
    flags, prefix = device.zeros((24,), np.int32), device.zeros((24,), np.int32)
    chained_prefix[24, 32, device.default_queue](device.array(x), flags, prefix)
    device.default_queue.synchronize(timeout=LIMIT)
    assert_array_equal(prefix, np.cumsum(x), what="prefix published group after group")


@hal.kernel
def fenced(x: hal.Ptr[hal.f32], y: hal.Ptr[hal.f32]):
    i = hal.global_id(0)
    y[i] = x[i] * 2.0
    hal.fence("group")
    hal.fence(scope="device")
    hal.atomic_add(y, i, 1.0, order="seq_cst")
    hal.atomic_max(y, i, 0.0, order="acq_rel")
    hal.atomic_min(y, i, 1e9, order="relaxed")


def test_fences_and_orders_keep_single_thread_results(device):
    x = np.arange(64, dtype=np.float32)
    y = device.zeros((64,), np.float32)
    fenced[2, 32, device.default_queue](device.array(x), y)
    device.default_queue.synchronize(timeout=LIMIT)
    assert_array_equal(y, x * 2 + 1, what="y after fences and ordered atomics")
