"""Devices and DeviceInfo: what every backend must describe truthfully."""

import pytest
from pydantic import ValidationError

import hal


def test_info_is_frozen_and_complete(device):
    info = device.info
    assert isinstance(info, hal.DeviceInfo)
    assert info.backend == device.backend.name
    assert info.kind in ("cpu", "gpu", "accelerator", "fpga")
    assert info.memory_bytes > 0 and info.compute_units >= 1 and info.max_block_size >= 1
    assert all(isinstance(f, hal.Feature) for f in info.features)
    with pytest.raises(ValidationError):
        info.name = "renamed"


def test_simulated_devices_name_their_model(device):
    if device.info.simulated:
        assert device.info.model, "a simulated device says which preset and model version produced its figures"


def test_listed_and_found_by_spec(device):
    assert device in hal.devices()
    assert hal.device(device.spec) is device


def test_supports_matches_declared_features(device):
    for feature in hal.Feature:
        assert device.supports(feature.value) == (feature in device.info.features)


def test_host_visible_feature_matches_info(device):
    assert device.supports("host_visible") == device.info.host_visible
