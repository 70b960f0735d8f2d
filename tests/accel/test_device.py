"""The accel device: options, description, timing of copies, and refusal of general kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hal_accel._options import AccelOptions, PresetName
from hal_accel._presets import PRESETS

import hal


def test_default_preset_is_the_first_tpu(accel: hal.Device) -> None:
    info = accel.info
    assert info.kind == "accelerator" and info.simulated and not info.host_visible
    assert info.features == frozenset({hal.Feature.TENSOR_OPS, hal.Feature.INT8, hal.Feature.SIMULATED_TIMING})
    assert not accel.supports("kernels")
    assert "tpu-v1" in info.model and "256x256" in info.model and "analytic estimate" in info.model
    assert PRESETS["tpu-v1"].peak_ops == pytest.approx(91.75e12, rel=1e-4)


def test_options_override_the_preset(small: hal.Device) -> None:
    assert "32x32" in small.info.name and "output-stationary" in small.info.model
    assert hal.device("accel", preset="tpu-v1-gddr5").info.model.endswith("DRAM 180 GB/s")


@pytest.mark.parametrize(("options", "field"), [
    ({"rows": 0}, "rows"), ({"dataflow": "rs"}, "dataflow"), ({"clock_hz": -1.0}, "clock_hz"),
    ({"preset": "tpu-v9"}, "preset"), ({"colums": 8}, "colums"), ({"unified_buffer_bytes": 10}, "unified_buffer"),
])
def test_bad_options_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(hal.InvalidArgumentError, match=field):
        hal.device("accel", **options)


def test_preset_names_and_presets_agree() -> None:
    assert set(PresetName.__args__) == set(PRESETS)  # type: ignore[attr-defined]
    assert AccelOptions().resolve() is PRESETS["tpu-v1"]


def test_host_copies_take_pcie_time(accel: hal.Device) -> None:
    q = accel.queue()
    x = accel.empty((3_000_000,), np.float32)
    host = np.ones(3_000_000, np.float32)
    e0 = q.record()
    q.copy(x, host)
    e1 = q.record()
    e1.synchronize()
    assert e1.elapsed(e0) == pytest.approx(12e6 / 12e9)


@hal.kernel
def _scale(x: hal.Ptr[hal.f32], n: hal.i32) -> None:
    i = hal.global_id(0)
    if i < n:
        x[i] = x[i] * 2.0


def test_general_kernels_are_refused_and_the_device_keeps_working(accel: hal.Device) -> None:
    x = accel.array(np.arange(8, dtype=np.float32))
    with pytest.raises(hal.UnsupportedError, match="kernels") as info:
        _scale[1, 8](x, 8)
    assert info.value.feature == "kernels"
    with pytest.raises(hal.UnsupportedError, match="kernels"):
        accel.compile(_scale)
    y = hal.ops.add(x, 1.0)
    np.testing.assert_array_equal(y.numpy(), np.arange(8, dtype=np.float32) + 1)


def test_the_backend_refuses_compiling_even_if_asked_directly(accel: hal.Device) -> None:
    with pytest.raises(hal.UnsupportedError, match="kernels") as info:
        accel.impl.compile(_scale.ir)
    assert info.value.feature == "kernels"
