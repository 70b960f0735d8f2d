"""FpgaBackend: what hal.devices() needs, and nothing heavier (the device loads when opened)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.backend import SDK_VERSION, Backend

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._device import FpgaDevice


class FpgaBackend(Backend):
    """One simulated card; ``hal.device("fpga", preset=..., slots=..., clock_mhz=..., pipeline=...)``."""

    name = "fpga"
    version = SDK_VERSION

    def options_model(self) -> type[BaseModel]:
        """Built on first use, so importing the plugin does not import pydantic."""
        from ._presets import options_model

        return options_model()

    def device_count(self) -> int:
        return 1

    def open_device(self, index: int, options: Any) -> FpgaDevice:
        from ._device import FpgaDevice
        from ._presets import DEFAULTS

        return FpgaDevice(index, options.model_dump() if options is not None else DEFAULTS)
