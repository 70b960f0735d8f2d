"""A worker that dies is a DeviceFault naming its device at the next synchronisation, never a
hang; the other devices keep working. Each test kills workers of its own."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

import hal

from .conftest import fresh
from .test_queue import N, _slow_copy


def _kill(dev: hal.Device, ray: Any) -> None:
    """Kill the device's worker and wait until Ray says it is dead (the kill is asynchronous)."""
    ray.kill(dev.impl.worker)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ray.get(dev.impl.worker.release.remote([], []), timeout=5)
        except Exception:
            return
        time.sleep(0.05)
    raise AssertionError("the worker did not die")


def test_a_dead_worker_fails_the_next_synchronize_and_every_later_use(cluster: Any, pair: list[hal.Device]) -> None:
    dev = fresh()
    q = dev.queue()
    x = dev.array(np.ones(N, np.float32))
    y = dev.empty((N,), np.float32)
    _slow_copy[N // 256, 256, q](x, y, 100000, N)  # in flight when the worker dies
    event = q.record()
    _kill(dev, cluster)
    start = time.monotonic()
    with pytest.raises(hal.DeviceFault, match="remote:1: its Ray worker is gone"):
        q.synchronize()
    assert time.monotonic() - start < 10
    for _ in range(2):  # the fault is sticky: every later synchronize raises it again
        with pytest.raises(hal.DeviceFault, match="remote:1: its Ray worker is gone"):
            q.synchronize()
        with pytest.raises(hal.DeviceFault, match="remote:1: its Ray worker is gone"):
            dev.synchronize()
    with pytest.raises(hal.DeviceFault, match="remote:1"):
        event.synchronize()
    with pytest.raises(hal.DeviceFault, match="remote:1"):
        y.numpy()
    with pytest.raises(hal.DeviceFault, match="remote:1"):
        dev.array(np.ones(4, np.float32))
    x.free()  # freeing memory of a lost device is quiet
    for other in pair:  # the other devices keep working
        np.testing.assert_array_equal(other.array(np.arange(4, dtype=np.int32)).numpy(), np.arange(4))


def test_a_worker_that_dies_while_idle_fails_its_next_use(cluster: Any) -> None:
    dev = fresh(0)
    x = dev.array(np.ones(4, np.float32))
    _kill(dev, cluster)
    with pytest.raises(hal.DeviceFault, match="remote:0"):
        dev.default_queue.fill(x, 2.0)
        x.numpy()


def test_a_collective_with_a_dead_rank_names_it(cluster: Any, pair: list[hal.Device]) -> None:
    dead, alive = fresh(1), pair[0]
    arrays = [alive.array(np.ones(1 << 16, np.float32)), dead.array(np.ones(1 << 16, np.float32))]
    _kill(dead, cluster)
    with pytest.raises(hal.DeviceFault, match="remote:1: its Ray worker is gone"):
        hal.collective.all_reduce(arrays)
    assert alive.impl.dead is None  # the survivor dropped its part and keeps working
    other = [alive.array(np.ones(8, np.float32)), pair[1].array(np.ones(8, np.float32))]
    hal.collective.all_reduce(other)
    assert (other[0].numpy() == 2).all()
