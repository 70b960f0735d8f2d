"""The Backend: all that hal's start-up touches, so it imports nothing heavy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.backend import Backend

if TYPE_CHECKING:
    from .device import RuntimeDevice, RuntimeOptions


class RuntimeBackend(Backend):
    name = "runtime"
    version = "0.1.0"
    known_failures = ()  # KnownFailure("test_kernels.py::test_atomics*", "firmware 2.1", device="Example*"), ...

    def device_count(self) -> int:
        return 1  # ask the driver (cuDeviceGetCount); 0 when it is missing, never an exception

    def options_model(self) -> type[RuntimeOptions]:
        from .device import RuntimeOptions  # pydantic loads only when options are given

        return RuntimeOptions

    def open_device(self, index: int, options: Any) -> RuntimeDevice:
        from .device import RuntimeDevice, RuntimeOptions

        return RuntimeDevice(index, options if isinstance(options, RuntimeOptions) else RuntimeOptions())
