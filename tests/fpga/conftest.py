"""Make the fpga backend visible to hal.device() when it is not installed as an entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

import hal

if "fpga" not in {ep.name for ep in entry_points(group="hal")}:
    import hal_fpga

    hal.register_plugin(hal_fpga, "fpga")


@pytest.fixture
def fpga() -> hal.Device:
    """The default card: Alveo U250 preset, one slot, 300 MHz."""
    return hal.device("fpga")
