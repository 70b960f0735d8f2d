"""hal.collective among remote devices: the ring moves the data worker to worker (the host
path never runs), with the same results as the host path; mixed with local devices it goes
through the host."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import hal
from hal.collective import _host


@pytest.fixture
def no_host_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise AssertionError("remote arrays went through the driver")
    monkeypatch.setattr(_host, "run", refuse)


@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_all_reduce_moves_data_worker_to_worker(pair: list[hal.Device], op: str, no_host_path: None) -> None:
    rng = np.random.default_rng(1)
    data = [rng.standard_normal((33, 5)).astype(np.float32) for _ in pair]
    arrays = [d.array(x) for d, x in zip(pair, data)]
    with hal.profile() as prof:
        hal.collective.all_reduce(arrays, op=op)
    want = {"sum": data[0] + data[1], "max": np.maximum(*data), "min": np.minimum(*data)}[op]
    for a in arrays:
        np.testing.assert_array_equal(a.numpy(), want)
    moved = [r.nbytes for r in prof.records if r.kind == "collective"]
    assert moved == [2 * data[0].nbytes] * 2  # half out and half in, twice (reduce-scatter, all-gather)


def test_broadcast_all_gather_reduce_scatter(pair: list[hal.Device], no_host_path: None) -> None:
    data = [np.arange(12, dtype=np.int64).reshape(6, 2) * (i + 2) for i in range(2)]
    arrays = [d.array(x) for d, x in zip(pair, data)]
    for g in hal.collective.all_gather(arrays):
        np.testing.assert_array_equal(g.numpy(), np.concatenate(data))
    for i, s in enumerate(hal.collective.reduce_scatter(arrays, op="max")):
        np.testing.assert_array_equal(s.numpy(), np.maximum(*data)[3 * i:3 * (i + 1)])
    hal.collective.broadcast(arrays, root=1)
    for a in arrays:
        np.testing.assert_array_equal(a.numpy(), data[1])


def test_large_all_reduce_sees_queued_work(pair: list[hal.Device], no_host_path: None) -> None:
    arrays = [d.empty((1 << 20,), np.float32) for d in pair]
    for i, a in enumerate(arrays):
        a.device.queue().fill(a, float(i + 1))  # not synchronised: the collective waits for it
    hal.collective.all_reduce(arrays)
    assert all((a.numpy() == 3).all() for a in arrays)


def test_remote_with_local_devices_goes_through_the_host(pair: list[hal.Device]) -> None:
    arrays = [pair[0].array(np.ones(10, np.float32)), hal.device("cpu").array(np.full(10, 2, np.float32)),
              hal.device("simgpu").array(np.full(10, 3, np.float32))]
    hal.collective.all_reduce(arrays)
    assert all((a.numpy() == 6).all() for a in arrays)


def test_views_at_offsets(pair: list[hal.Device], no_host_path: None) -> None:
    bases = [d.array(np.arange(40, dtype=np.float32).reshape(10, 4) * (i + 1)) for i, d in enumerate(pair)]
    views = [b[3:7] for b in bases]
    hal.collective.all_reduce(views, op="max")
    for i, b in enumerate(bases):
        want = np.arange(40, dtype=np.float32).reshape(10, 4) * (i + 1)
        want[3:7] *= 2 / (i + 1)
        np.testing.assert_array_equal(b.numpy(), want)
