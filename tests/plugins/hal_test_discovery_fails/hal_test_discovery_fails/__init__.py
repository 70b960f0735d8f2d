"""A plugin that loads, but whose driver fails while counting devices."""

from __future__ import annotations

from typing import Any

from hal.backend import Backend, hookimpl

api_version = (1, 0)


class FlakyDriverBackend(Backend):
    name = "flakydriver"
    version = "0.1"
    Options = None

    def device_count(self) -> int:
        raise RuntimeError("acme driver: /dev/acme0 not found (is the kernel module loaded?)")

    def open_device(self, index: int, options: Any) -> Any:
        raise AssertionError("no device was discovered, so none can be opened")


@hookimpl
def hal_backends() -> list[Backend]:
    return [FlakyDriverBackend()]
