"""The simgpu plugin, registered in-process unless an installed entry point already provides it."""

from __future__ import annotations

from importlib.metadata import entry_points

import hal_simgpu
import pytest

import hal

if not any(ep.name == "simgpu" for ep in entry_points(group="hal")):
    hal.register_plugin(hal_simgpu, "simgpu")


@pytest.fixture
def h100() -> hal.Device:
    return hal.device("simgpu", preset="h100")


@pytest.fixture
def a100() -> hal.Device:
    return hal.device("simgpu", preset="a100")


@pytest.fixture
def checked() -> hal.Device:
    return hal.device("simgpu", preset="a100", checked=True)
