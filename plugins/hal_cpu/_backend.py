"""CpuBackend: the host's cores as one hal device."""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, ClassVar

from hal.backend import Backend

from ._device import CpuDevice

if TYPE_CHECKING:
    from pydantic import BaseModel


def _version() -> str:
    """The installed distribution's version; a source checkout has none."""
    try:
        return metadata.version("hal-sdk")
    except metadata.PackageNotFoundError:
        return "0+source"


class CpuBackend(Backend):
    """One device: every core the runtime uses (``HAL_CPU_THREADS`` narrows it)."""

    name: ClassVar[str] = "cpu"
    version: ClassVar[str] = _version()
    Options: ClassVar[type[BaseModel] | None] = None

    def device_count(self) -> int:
        return 1

    def open_device(self, index: int, options: BaseModel | None) -> CpuDevice:
        return CpuDevice(index)
