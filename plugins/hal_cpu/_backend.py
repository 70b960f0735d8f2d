"""CpuBackend: the host's cores as one hal device."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import hal
from hal.backend import Backend

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._device import CpuDevice


class CpuBackend(Backend):
    """One device: every core the runtime uses (``HAL_CPU_THREADS`` narrows it)."""

    name: ClassVar[str] = "cpu"
    version: ClassVar[str] = hal.__version__
    Options: ClassVar[type[BaseModel] | None] = None

    def device_count(self) -> int:
        return 1

    def open_device(self, index: int, options: BaseModel | None) -> CpuDevice:
        from ._device import CpuDevice  # the C runtime loads when the device opens

        return CpuDevice(index)
