"""Plugins that break the vendor contract, one per module (each module is one entry point)."""

from __future__ import annotations

from typing import Any

from hal.backend import Backend


class Counted(Backend):
    """A backend reporting ``count`` devices (whatever that is) that opens none."""

    version = "0.1"
    count: Any = 1

    def device_count(self) -> int:
        return self.count  # type: ignore[no-any-return]

    def open_device(self, index: int, options: Any) -> Any:
        raise RuntimeError("firmware not loaded")
