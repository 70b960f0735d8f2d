"""``hal demo --data-parallel`` on two remote devices: replicas in step, the one-device curve."""

from __future__ import annotations

import pytest

import hal
from hal.demo.train import Config

pytest.importorskip("sklearn")


def test_data_parallel_training_on_two_remote_devices(pair: list[hal.Device]) -> None:
    from hal.demo.parallel import run_parallel

    result = run_parallel(["remote:0", "remote:1"], Config(epochs=1, batch=32, limit=400), sync_every=(4,))
    grads, averaged = result.runs
    assert grads.agrees and grads.accuracy == result.reference.accuracy
    assert min(grads.moved_bytes) > 3 * max(averaged.moved_bytes) > 0
