"""Devices and DeviceInfo: what every backend must describe truthfully."""

import numpy as np
import pytest
from pydantic import ValidationError

import hal

from ._compare import assert_array_equal


def test_info_is_frozen_and_complete(device):
    info = device.info
    assert isinstance(info, hal.DeviceInfo)
    assert info.backend == device.backend.name
    assert info.kind in ("cpu", "gpu", "accelerator", "fpga")
    assert info.memory_bytes > 0 and info.compute_units >= 1 and info.max_block_size >= 1
    assert all(isinstance(f, hal.Feature) for f in info.features)
    with pytest.raises(ValidationError):
        info.name = "renamed"


def test_listed_and_found_by_spec(device):
    assert device in hal.devices()
    assert hal.device(device.spec) is device


def test_host_visible_feature_matches_info(device):
    assert device.supports("host_visible") == device.info.host_visible


def test_unknown_option_is_refused(device):
    """The backend's Options model forbids what it does not know (pydantic ``extra="forbid"``)."""
    with pytest.raises(hal.InvalidArgumentError):
        hal.device(device.backend.name, definitely_not_an_option=1)
    assert_array_equal(device.array(np.arange(4, dtype=np.int32)), np.arange(4), what="a round trip afterwards")
