"""Elastic membership of local-SGD training: a replica whose device faults is dropped (at an
inner step or at the outer step, which the survivors redo) and a joining device receives the
global parameters. Local devices stand in for workers: a test "kills" one by making its
operations raise the DeviceFault a dead remote worker raises (tests/remote kills a real one)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import hal
from hal.demo import elastic
from hal.demo.data import load_digits
from hal.demo.elastic import Churn, LocalSGD
from hal.demo.nn import MLP
from hal.demo.outer import Outer
from hal.demo.train import Config

CONFIG = Config(epochs=2, batch=32, limit=300)


@pytest.fixture
def dead(monkeypatch: pytest.MonkeyPatch) -> set[hal.Device]:
    """Devices in this set fail every training step and every liveness probe, as lost ones do."""
    gone: set[hal.Device] = set()
    step = MLP.train_step

    def train_step(self: MLP, *args: Any) -> Any:
        if self.placer.device in gone:
            raise hal.DeviceFault(f"{self.placer.device.spec}: its Ray worker is gone")
        return step(self, *args)
    monkeypatch.setattr(MLP, "train_step", train_step)
    monkeypatch.setattr(elastic, "_alive", lambda d: d not in gone)
    return gone


def _kill(dead: set[hal.Device]) -> Any:
    def kill(device: hal.Device) -> str:
        dead.add(device)
        return "made to fail"
    return kill


def test_a_replica_that_dies_is_dropped_and_the_others_finish(dead: set[hal.Device]) -> None:
    devices = [hal.device(s) for s in ("cpu", "simgpu:0", "simgpu:1")]
    data = load_digits(limit=CONFIG.limit)
    with hal.profile() as prof:
        result = LocalSGD(devices, data, CONFIG, 2, Outer("diloco"), None, Churn(kill_at=3, kill=_kill(dead))).run()
    assert [(e.step, e.kind, e.device) for e in result.events] == [(3, "killed", "simgpu:1"), (3, "dropped", "simgpu:1")]
    moved = {d.spec: sum(r.nbytes for r in prof.records if r.kind == "collective" and r.device == d.spec)
             for d in devices}
    steps = 2 * data.steps_per_epoch(32)
    assert moved["cpu:0"] == moved["simgpu:0"] == -(-steps // 2) * moved["simgpu:1"] > 0  # it was in the first only
    assert len(result.losses) == steps and not np.isnan(result.losses).any()
    assert result.accuracy > 0.6


def test_a_fault_in_the_outer_step_drops_the_dead_and_the_survivors_redo_it(
        dead: set[hal.Device], monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [hal.device(s) for s in ("cpu", "simgpu:0", "simgpu:1")]
    real = hal.collective.all_reduce
    calls: list[int] = []

    def all_reduce(arrays: list[hal.Array], *args: Any, **kwargs: Any) -> None:
        calls.append(len(arrays))
        if len(calls) == 2:  # the worker dies between the inner steps and the second outer step
            dead.add(devices[1])
        if any(a.device in dead for a in arrays):
            raise hal.DeviceFault("remote:1: its Ray worker is gone")
        real(arrays, *args, **kwargs)
    monkeypatch.setattr(hal.collective, "all_reduce", all_reduce)
    data = load_digits(limit=CONFIG.limit)
    result = LocalSGD(devices, data, CONFIG, 2, Outer("average", compress="int8"), None).run()
    assert calls[:3] == [3, 3, 2] and set(calls[3:]) == {2}  # redone at once by the two survivors
    assert [(e.step, e.kind, e.device) for e in result.events] == [(4, "dropped", "simgpu:0")]
    assert result.losses[-1] < result.losses[0] / 1.5 and result.accuracy > 0.3  # it goes on learning


def test_a_joining_device_receives_the_parameters_and_contributes() -> None:
    devices = [hal.device(s) for s in ("cpu", "simgpu:0")]
    joiner = hal.device("simgpu:2")
    data = load_digits(limit=CONFIG.limit)
    with hal.profile() as prof:
        run = LocalSGD(devices, data, CONFIG, 2, Outer("diloco"), None, Churn(join=joiner, join_at=3))
        result = run.run()
    assert [(e.step, e.kind, e.device) for e in result.events] == [(4, "joined", "simgpu:2")]
    assert result.devices == ["cpu:0", "simgpu:0", "simgpu:2"]
    joined = [r for r in prof.records if r.kind == "collective" and r.device == "simgpu:2"]
    total = len({r.start_s for r in prof.records if r.kind == "collective"})
    assert len(joined) == total - 2  # every outer step after steps 2 and 4
    final = [np.concatenate([p.numpy().ravel() for p in m.model.params]) for m in run.members]
    assert all(np.array_equal(final[0], f) for f in final[1:])  # one global model, the joiner's too
