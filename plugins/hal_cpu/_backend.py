"""CpuBackend: the host's cores as one hal device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.backend import SDK_VERSION, Backend

if TYPE_CHECKING:
    from ._device import CpuDevice


class CpuBackend(Backend):
    """One device: every core the runtime uses (``HAL_CPU_THREADS`` narrows it); it takes no options."""

    name = "cpu"
    version = SDK_VERSION

    def device_count(self) -> int:
        return 1

    def open_device(self, index: int, options: Any) -> CpuDevice:
        from ._device import CpuDevice  # the C runtime loads when the device opens

        return CpuDevice(index)
