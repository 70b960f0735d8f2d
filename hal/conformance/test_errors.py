"""Every error is a hal.HalError subclass, and the device keeps working after it."""

import numpy as np
import pytest

import hal


def _still_works(device) -> None:
    np.testing.assert_array_equal(device.array(np.arange(4, dtype=np.int32)).numpy(), np.arange(4))


def test_unknown_device_lists_available():
    with pytest.raises(hal.DeviceNotFoundError, match="available devices"):
        hal.device("no-such-backend:0")


def test_bad_dtype(device):
    with pytest.raises(hal.InvalidArgumentError):
        device.array(np.zeros(3, np.complex128))
    _still_works(device)


def test_freed_array_in_copy(device):
    a = device.empty((4,), np.float32)
    b = device.empty((4,), np.float32)
    a.free()
    with pytest.raises(hal.InvalidHandleError):
        device.default_queue.copy(b, a)
    _still_works(device)


def test_errors_are_hal_errors():
    for name in ("DeviceNotFoundError", "OutOfMemoryError", "InvalidHandleError", "InvalidArgumentError",
                 "UnsupportedError", "CompileError", "DeviceFault", "PluginError"):
        assert issubclass(getattr(hal, name), hal.HalError)


def test_unknown_option_is_refused(device):
    with pytest.raises(hal.InvalidArgumentError):
        hal.device(device.backend.name, definitely_not_an_option=1)
    _still_works(device)
