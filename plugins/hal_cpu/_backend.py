"""CpuBackend: the host's cores as one hal device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.backend import SDK_VERSION, Backend, UnsupportedError

if TYPE_CHECKING:
    from ._device import CpuDevice


class CpuBackend(Backend):
    """One device: every core the runtime uses (``HAL_CPU_THREADS`` narrows it); it takes no options."""

    name = "cpu"

    @property
    def version(self) -> str:  # type: ignore[override]
        """hal's version and the C compiler kernels build with, and why that one (``hal backends``
        shows it): found by PATH look-ups, no process runs. Without one the device still works,
        kernels excepted."""
        from . import _cc

        try:
            return f"{SDK_VERSION} (kernels: {_cc.find().describe()})"
        except UnsupportedError as exc:
            return f"{SDK_VERSION} (no kernels: {str(exc).removeprefix('cpu: ')})"

    def device_count(self) -> int:
        return 1

    def open_device(self, index: int, options: Any) -> CpuDevice:
        from ._device import CpuDevice  # the C runtime loads when the device opens

        return CpuDevice(index)
