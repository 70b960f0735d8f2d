"""AccelBackend: discovery of the simulated NPU; cheap to import (pydantic loads on first use)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.backend import Backend

if TYPE_CHECKING:
    from ._device import AccelDevice
    from ._options import AccelOptions


class _LazyOptions:
    """Resolves ``AccelBackend.Options`` to the pydantic model on first access, so that
    ``hal.devices()`` never imports pydantic for this plugin."""

    def __get__(self, obj: object, owner: type) -> type[AccelOptions]:
        from ._options import AccelOptions

        return AccelOptions


class AccelBackend(Backend):
    """One simulated NPU, configured by a preset and options (see :class:`~._options.AccelOptions`)."""

    name = "accel"
    version = "0.1.0"
    Options = _LazyOptions()

    def device_count(self) -> int:
        return 1

    def open_device(self, index: int, options: Any) -> AccelDevice:
        from ._device import AccelDevice
        from ._presets import DEFAULT_PRESET, PRESETS

        part = options.resolve() if options is not None else PRESETS[DEFAULT_PRESET]
        return AccelDevice(index, part)
