"""Errors the core raises before any backend is involved (moved out of the conformance suite, which
tests what a backend does): every error is a hal.HalError, and a freed array is refused."""

from __future__ import annotations

import numpy as np
import pytest

import hal


@pytest.mark.parametrize("name", ["DeviceNotFoundError", "OutOfMemoryError", "InvalidHandleError",
                                  "InvalidArgumentError", "UnsupportedError", "CompileError", "DeviceFault",
                                  "DeviceTimeout", "HazardError", "PluginError"])
def test_every_error_is_a_hal_error(name: str) -> None:
    assert issubclass(getattr(hal, name), hal.HalError)


def test_a_freed_array_is_refused_by_copy(fake: hal.Device) -> None:
    a, b = fake.empty((4,), np.float32), fake.empty((4,), np.float32)
    a.free()
    with pytest.raises(hal.InvalidHandleError):
        fake.default_queue.copy(b, a)
    with pytest.raises(hal.InvalidHandleError):
        fake.default_queue.copy(a, b)
    fake.default_queue.fill(b, 1.0)
    assert (b.numpy() == 1.0).all()
