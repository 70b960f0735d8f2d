"""examples/softmax_layernorm.py: generic group-reduction kernels agree with numpy on every kernel device."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import hal

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "softmax_layernorm.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("softmax_layernorm", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_device_agrees_with_numpy(capsys: pytest.CaptureFixture[str]) -> None:
    example = load()
    devices = example.default_devices()
    assert {d.info.backend for d in devices} >= {"cpu", "simgpu", "fpga"}
    assert example.main([d.spec for d in devices]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * len(devices) and all(line.endswith("ok") for line in lines)


def test_each_dtype_compiles_its_own_specialisation() -> None:
    example = load()
    dev = hal.device("cpu")
    for dtype in (np.float32, np.float64, np.float32):
        example.run(dev, dtype, rows=2, cols=50)
    specializer = example.softmax.specializer
    assert sorted(t[0][0].value for t in specializer._by_binding) == ["f32", "f64"]
