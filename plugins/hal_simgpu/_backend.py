"""SimGpuBackend: one simulated device per preset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from hal.backend import Backend

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._device import SimGpuDevice

PRESET_ORDER = ("a100", "h100", "h200")
"""Device index -> preset (kept here so hal.devices() need not import pydantic or numpy work)."""


class _LazyOptions:
    """``Backend.Options`` resolved on first access: importing the plugin stays cheap."""

    def __get__(self, obj: Any, owner: type) -> type[BaseModel]:
        from ._options import Options

        return Options


class SimGpuBackend(Backend):
    name: ClassVar[str] = "simgpu"
    version: ClassVar[str] = "0.1.0"
    Options = _LazyOptions()

    def device_count(self) -> int:
        return len(PRESET_ORDER)

    def open_device(self, index: int, options: BaseModel | None) -> SimGpuDevice:
        from ._device import SimGpuDevice
        from ._options import Options
        from ._presets import PRESETS

        opts = options if isinstance(options, Options) else Options()
        return SimGpuDevice(index, PRESETS[opts.preset or PRESET_ORDER[index]], opts)
