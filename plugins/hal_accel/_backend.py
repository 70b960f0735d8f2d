"""AccelBackend: discovery of the simulated NPU; cheap to import (pydantic loads on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.backend import SDK_VERSION, Backend

if TYPE_CHECKING:
    from ._device import AccelDevice
    from ._options import AccelOptions


class AccelBackend(Backend):
    """One simulated NPU, configured by a preset and options (see :class:`~._options.AccelOptions`)."""

    name = "accel"
    version = SDK_VERSION

    def device_count(self) -> int:
        return 1

    def options_model(self) -> type[AccelOptions]:
        from ._options import AccelOptions

        return AccelOptions

    def open_device(self, index: int, options: Any) -> AccelDevice:
        from ._device import AccelDevice
        from ._presets import DEFAULT_PRESET, PRESETS

        part = options.resolve() if options is not None else PRESETS[DEFAULT_PRESET]
        return AccelDevice(index, part)
