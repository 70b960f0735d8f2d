"""FpgaBackend: what hal.devices() needs, and nothing heavier (the device loads when opened)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import hal
from hal.backend import Backend

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._device import FpgaDevice


class FpgaBackend(Backend):
    """One simulated card; ``hal.device("fpga", preset=..., slots=..., clock_mhz=..., pipeline=...)``."""

    name: ClassVar[str] = "fpga"
    version: ClassVar[str] = hal.__version__

    @property
    def Options(self) -> type[BaseModel]:  # type: ignore[override]  # noqa: N802 - the vendor interface's name
        """Built on first use, so importing the plugin does not import pydantic."""
        from ._presets import options_model

        return options_model()

    def device_count(self) -> int:
        return 1

    def open_device(self, index: int, options: BaseModel | None) -> FpgaDevice:
        from ._device import FpgaDevice
        from ._presets import DEFAULTS

        return FpgaDevice(index, options.model_dump() if options is not None else DEFAULTS)
