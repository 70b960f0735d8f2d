"""The outer step of local-SGD training: averaging and DiLoCo's Nesterov step on the averaged
delta, checked against the formulas computed here, on replicas of two backends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import hal
from hal.demo.cli import main
from hal.demo.outer import Outer, OuterOptimizer
from hal.demo.parallel import run_parallel
from hal.demo.placement import Tensor
from hal.demo.train import Config

DEVICES = ("cpu", "simgpu:1")


@dataclass
class _Replica:
    """What the outer step touches of a model: its parameters."""

    params: list[Tensor]


def _set(replicas: list[_Replica], values: list[list[np.ndarray]]) -> None:
    for r, vs, spec in zip(replicas, values, DEVICES):
        r.params = [Tensor(hal.device(spec).array(v)) for v in vs]


def _params(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((1, 4)).astype(np.float32)]


@pytest.mark.parametrize("method", ["average", "diloco"])
def test_outer_steps_follow_the_formulas(method: str) -> None:
    rng = np.random.default_rng(3)
    start = _params(rng)
    devices = [hal.device(s) for s in DEVICES]
    replicas = [_Replica([Tensor(d.array(p)) for p in start]) for d in devices]
    outer = Outer(method, lr=0.7, momentum=0.9)
    opt = OuterOptimizer(outer, replicas, devices)  # type: ignore[arg-type]
    anchor = np.concatenate([p.ravel() for p in start]).astype(np.float64)
    velocity = np.zeros_like(anchor)
    for _ in range(3):
        trained = [_params(rng) for _ in devices]
        _set(replicas, trained)
        opt.step(replicas)  # type: ignore[arg-type]
        delta = np.mean([anchor - np.concatenate([p.ravel() for p in t]) for t in trained], axis=0)
        if method == "average":
            anchor = anchor - delta
        else:
            velocity = 0.9 * velocity + delta
            anchor = anchor - 0.7 * (delta + 0.9 * velocity)
        for r in replicas:
            got = np.concatenate([p.numpy().ravel() for p in r.params])
            np.testing.assert_allclose(got, anchor, rtol=1e-5, atol=1e-5)
        assert np.array_equal(*(np.concatenate([p.numpy().ravel() for p in r.params]) for r in replicas))
    with pytest.raises(hal.InvalidArgumentError, match="outer method must be one of average, diloco"):
        OuterOptimizer(Outer("adam"), replicas, devices)  # type: ignore[arg-type]
    with pytest.raises(hal.InvalidArgumentError, match="0 <= momentum < 1"):
        OuterOptimizer(Outer("diloco", momentum=1.0), replicas, devices)  # type: ignore[arg-type]


def test_diloco_and_compressed_deltas_train() -> None:
    config = Config(epochs=2, batch=32, limit=400)
    result = run_parallel(list(DEVICES), config, sync_every=(4,),
                          outers=(Outer("average"), Outer("diloco"), Outer("diloco", compress="int8")))
    grads, averaged, diloco, int8 = result.runs
    assert [r.outer.method if r.outer else None for r in result.runs] == [None, "average", "diloco", "diloco"]
    assert int8.outer is not None and int8.outer.compress == "int8"
    assert diloco.collectives == averaged.collectives == int8.collectives > 0
    for r in (averaged, diloco, int8):
        assert r.accuracy > 0.7 and r.losses[-1] < r.losses[0] / 2
    assert diloco.losses != averaged.losses and int8.losses != diloco.losses  # three different outer steps


def test_cli_refuses_an_unknown_outer_step() -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--data-parallel", "cpu,simgpu:1", "--sync-every", "8", "--outer", "adam"])
