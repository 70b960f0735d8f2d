"""The accel plugin, registered in-process unless an installed entry point already provides it."""

from __future__ import annotations

from importlib.metadata import entry_points

import hal_accel
import pytest

import hal

if not any(ep.name == "accel" for ep in entry_points(group="hal")):
    hal.register_plugin(hal_accel, "accel")


@pytest.fixture
def accel() -> hal.Device:
    """The default preset: a first-generation TPU."""
    return hal.device("accel")


@pytest.fixture
def small() -> hal.Device:
    """The 32x32 array of SCALE-Sim's worked example, output-stationary."""
    return hal.device("accel", rows=32, cols=32, dataflow="os")
