"""SimGpuBackend: one simulated device per preset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.backend import SDK_VERSION, Backend

if TYPE_CHECKING:
    from ._device import SimGpuDevice
    from ._options import Options

PRESET_ORDER = ("a100", "h100", "h200")
"""Device index -> preset (kept here so hal.devices() need not import pydantic or numpy work)."""


class SimGpuBackend(Backend):
    name = "simgpu"
    version = SDK_VERSION

    def device_count(self) -> int:
        return len(PRESET_ORDER)

    def options_model(self) -> type[Options]:
        from ._options import Options

        return Options

    def open_device(self, index: int, options: Any) -> SimGpuDevice:
        from ._device import SimGpuDevice
        from ._options import Options
        from ._presets import PRESETS

        opts = options if isinstance(options, Options) else Options()
        return SimGpuDevice(index, PRESETS[opts.preset or PRESET_ORDER[index]], opts)
