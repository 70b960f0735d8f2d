"""One small local Ray cluster for the whole test session (hal uses the cluster it finds), shut
down at the end so that no Ray process outlives the tests; always a new one ("local"), never a
cluster another process's `ray start` left on the machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import hal

ray = pytest.importorskip("ray")
os.environ["HAL_REMOTE"] = "cpu,cpu"  # what these tests expect, whatever the environment says


@pytest.fixture(scope="session", autouse=True)
def cluster() -> Iterator[Any]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def remote(cluster: Any) -> hal.Device:
    """remote:0, hosting the CPU (HAL_REMOTE's default)."""
    return hal.device("remote:0")


@pytest.fixture
def pair(cluster: Any) -> list[hal.Device]:
    """remote:0 and remote:1, each with a worker hosting its CPU."""
    return [hal.device("remote:0"), hal.device("remote:1")]


def fresh(index: int = 1) -> hal.Device:
    """A remote device with a worker of its own, outside hal's cache of devices: tests that kill
    workers use these, so that remote:0 and remote:1 stay alive for the others."""
    from hal._device import Device
    from hal._plugins import registry

    registry.ensure_loaded()
    return Device(registry.backends["remote"], index, None, f"remote:{index}")
