"""OpenCLBackend: discovery through the ICD loader, without importing pyopencl.

Counting devices runs on every ``hal.devices()``, so it asks libOpenCL directly (ctypes: about
20 ms, mostly the driver loading) instead of importing pyopencl (130 ms). The order is the ICD's,
the same pyopencl sees: platform by platform, device by device.
"""

from __future__ import annotations

import ctypes
import importlib.util
from typing import TYPE_CHECKING, Any

from hal.backend import DriverBackend

if TYPE_CHECKING:
    from ._device import OpenCLDevice

_ALL_DEVICES = 0xFFFFFFFF
_NO_DEVICE = -1


def _count_devices() -> tuple[int, str | None]:
    """(devices, None), or (0, why there are none and what to do)."""
    if importlib.util.find_spec("pyopencl") is None:
        return 0, "pyopencl is not installed: pip install 'hal-sdk[opencl]'"
    try:
        lib = ctypes.CDLL("libOpenCL.so.1")
    except OSError:
        return 0, "no OpenCL ICD loader (libOpenCL.so.1): install a driver, e.g. apt install pocl-opencl-icd"
    count = ctypes.c_uint(0)
    if lib.clGetPlatformIDs(0, None, ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "no OpenCL platform: install a driver (e.g. apt install pocl-opencl-icd) or its ICD file"
    platforms = (ctypes.c_void_p * count.value)()
    lib.clGetPlatformIDs(count.value, platforms, None)
    total = 0
    for platform in platforms:
        n = ctypes.c_uint(0)
        if lib.clGetDeviceIDs(ctypes.c_void_p(platform), _ALL_DEVICES, 0, None, ctypes.byref(n)) == 0:
            total += n.value
    return total, None if total else "the OpenCL platforms have no devices"


class OpenCLBackend(DriverBackend):
    """``opencl:N``: the N-th device over all platforms; it takes no options."""

    name = "opencl"

    def discover(self) -> tuple[int, str | None]:
        return _count_devices()

    def open_device(self, index: int, options: Any) -> OpenCLDevice:
        from ._device import OpenCLDevice  # pyopencl loads when a device opens

        return OpenCLDevice(index)
