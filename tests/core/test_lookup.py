import numpy as np
import pytest
from pydantic import ValidationError

import hal


def test_backends_and_devices_list_the_fake():
    names = {s.name for s in hal.backends()}
    assert "fake" in names
    specs = {d.spec for d in hal.devices()}
    assert {"fake:0", "fake:1"} <= specs


def test_device_lookup_is_cached_and_described():
    dev = hal.device("fake:1")
    assert dev is hal.device("fake:1")
    assert dev.info.name == "Fake device 1" and dev.info.simulated
    assert dev.supports("kernels") and not dev.supports(hal.Feature.F64)
    with pytest.raises(hal.InvalidArgumentError, match="hal.Feature names"):
        dev.supports("warp_drive")
    with pytest.raises(ValidationError):
        dev.info.name = "x"  # frozen


def test_default_device_from_environment(monkeypatch):
    monkeypatch.setenv("HAL_DEVICE", "fake:1")
    assert hal.device().spec == "fake:1"


@pytest.mark.parametrize("spec", ["nope", "fake:7", "fake:x", "fake:-1"])
def test_unknown_devices_list_the_available_ones(spec):
    with pytest.raises(hal.DeviceNotFoundError, match="fake:0"):
        hal.device(spec)


def test_options_are_validated():
    with pytest.raises(hal.InvalidArgumentError, match="takes no options"):
        hal.device("fake", turbo=True)


def test_device_still_works_after_errors():
    dev = hal.device("fake:0")
    with pytest.raises(hal.HalError):
        dev.empty((-1,))
    np.testing.assert_array_equal(dev.array([1, 2, 3]).numpy(), [1, 2, 3])
