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


def test_rays_line_about_a_dead_worker_of_hal_is_not_printed(cluster: Any, pair: list[hal.Device],
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """hal says a worker died (the DeviceFault above); Ray's driver also printed "(raylet) A worker
    died ..." from a thread, at a random point of the program's output. Ray's other lines still print,
    and so does the line about a worker that is not hal's."""
    from ray._private import worker as ray_worker

    pid = int(pair[0].info.name.rpartition("pid ")[2].rstrip(")"))

    def died(who: int) -> str:
        return (f"A worker died or was killed while executing a task by an unexpected system error. Worker ID: ab "
                f"Worker PID: {who} Worker exit type: SYSTEM_ERROR")

    for line in (died(pid), died(pid + 100000), "The autoscaler could not find a node"):
        ray_worker.print_to_stdstream({"lines": [line], "pid": "raylet", "is_err": True}, ignore_prefix=False)
    out = capsys.readouterr()
    printed = out.out + out.err
    assert f"Worker PID: {pid} " not in printed
    assert f"Worker PID: {pid + 100000} " in printed and "The autoscaler could not find a node" in printed
