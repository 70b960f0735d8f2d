"""Demo tests need scikit-learn's bundled digits and the simulated backends (installed or in-process)."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

import hal

pytest.importorskip("sklearn")
_installed = {ep.name for ep in entry_points(group="hal")}
for _name, _module in (("simgpu", "hal_simgpu"), ("accel", "hal_accel")):
    if _name not in _installed:
        hal.register_plugin(pytest.importorskip(_module), _name)
