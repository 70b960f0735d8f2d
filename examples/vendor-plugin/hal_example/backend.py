"""An honest, minimal hal backend: the Backend, which is all that hal's start-up touches.

Replace ``device.py``'s ``execute`` with your device's launch, ``allocate`` with its
allocator and ``transfer_seconds`` with its real link, and keep the rest. Everything the
core validates (arguments, dtypes, launch limits, kernel features) never reaches it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hal.backend import Backend

if TYPE_CHECKING:
    from .device import ExampleDevice, ExampleOptions


class ExampleBackend(Backend):
    name = "example"
    version = "0.1.0"
    known_failures = (
        # How a vendor records what does not pass yet. Each entry runs as a strict xfail: once
        # the bug is fixed the test passes, the run fails, and the entry must be removed.
        # KnownFailure("test_kernels.py::test_atomics*", "atomics land in firmware 2.1", device="Example*"),
    )

    def device_count(self) -> int:
        return 1

    def options_model(self) -> type[ExampleOptions]:
        """Called only when options are passed: pydantic stays out of hal's start-up."""
        from .device import ExampleOptions

        return ExampleOptions

    def open_device(self, index: int, options: Any) -> ExampleDevice:
        from .device import ExampleDevice, ExampleOptions  # loaded when the device is first used

        return ExampleDevice(options if isinstance(options, ExampleOptions) else ExampleOptions())


