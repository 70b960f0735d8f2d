"""Elastic local SGD on remote devices: a worker killed mid-run is dropped and training finishes (the
two-device ``hal demo --data-parallel`` run itself is in tests/test_commands.py)."""

from __future__ import annotations

import pytest

import hal
from hal.demo.train import Config

pytest.importorskip("sklearn")


def test_a_worker_killed_mid_run_is_dropped_and_training_finishes(pair: list[hal.Device]) -> None:
    from hal.demo.cli import kill_worker
    from hal.demo.data import load_digits
    from hal.demo.elastic import Churn, LocalSGD
    from hal.demo.outer import Outer

    from .conftest import fresh

    victim = fresh(1)
    config = Config(epochs=1, batch=32, limit=300)
    result = LocalSGD([pair[0], victim], load_digits(limit=300), config, 2, Outer("diloco", compress="int8"), None,
                      Churn(kill_at=3, kill=kill_worker)).run()
    kinds = [(e.kind, e.device) for e in result.events]
    assert kinds == [("killed", "remote:1"), ("dropped", "remote:1")] and result.events[1].step >= 3
    assert "its Ray worker is gone" in result.events[1].detail
    assert len(result.losses) == 7 and result.losses[-1] < result.losses[0]
    with pytest.raises(hal.InvalidArgumentError, match="kills a remote device's worker"):
        kill_worker(hal.device("cpu"))
