"""CudaBackend: discovery through the driver, without importing cuda.core.

Counting devices runs on every ``hal.devices()``: it asks ``libcuda`` directly (ctypes ``cuInit``
and ``cuDeviceGetCount``), so a machine without a driver or GPU pays a failed ``dlopen`` and
nothing else, and says why in ``hal backends``.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
from typing import TYPE_CHECKING, Any

from hal.backend import DriverBackend

if TYPE_CHECKING:
    from ._device import CudaDevice


def _installed(namespace: str, package: str) -> bool:
    """Whether ``namespace.package`` can be imported, found without importing ``namespace`` (which
    ``importlib.util.find_spec`` would: ``import hal; hal.devices()`` leaves every CUDA module unloaded)."""
    spec = importlib.machinery.PathFinder.find_spec(namespace)
    paths = spec.submodule_search_locations if spec is not None else None
    return paths is not None and importlib.machinery.PathFinder.find_spec(f"{namespace}.{package}", list(paths)) is not None


def _count_devices() -> tuple[int, str | None]:
    """(devices, None), or (0, why there are none and what to do)."""
    if not _installed("cuda", "core"):
        return 0, "cuda-core is not installed: pip install 'hal-sdk[cuda]' (or 'hal-sdk[cuda12]' for drivers < 580)"
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0, "no NVIDIA driver (libcuda.so.1 not found): install the driver to use NVIDIA GPUs"
    if (err := lib.cuInit(0)) != 0:
        return 0, f"the NVIDIA driver did not initialise (CUresult {err}): check nvidia-smi"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return 0, "the NVIDIA driver sees no GPU"
    return count.value, None


class CudaBackend(DriverBackend):
    """``cuda:N``: the N-th GPU in the driver's order (``CUDA_VISIBLE_DEVICES`` applies); no options."""

    name = "cuda"

    def discover(self) -> tuple[int, str | None]:
        return _count_devices()

    def open_device(self, index: int, options: Any) -> CudaDevice:
        from ._device import CudaDevice  # cuda.core loads when a device opens

        return CudaDevice(index)
