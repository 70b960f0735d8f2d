"""RemoteBackend: ``remote:<i>`` is the device that the i-th entry of ``HAL_REMOTE`` names,
hosted by a Ray worker. Listing devices reads ``HAL_REMOTE`` only; Ray starts when one opens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from hal.backend import SDK_VERSION, Backend

from ._cluster import hosted

if TYPE_CHECKING:
    from pydantic import BaseModel

    from hal.collective import CollectiveCall

    from ._device import RemoteDevice


class RemoteBackend(Backend):
    name: ClassVar[str] = "remote"
    version: ClassVar[str] = SDK_VERSION

    def __init__(self) -> None:
        self._hosted: list[str] | None = None

    def hosted(self) -> list[str]:
        """``HAL_REMOTE`` as hal found it when it listed the devices: the count and what each
        device hosts stay consistent for the process."""
        if self._hosted is None:
            self._hosted = hosted()
        return self._hosted

    def device_count(self) -> int:
        return len(self.hosted())

    def options_model(self) -> type[BaseModel]:
        from ._link import Options

        return Options

    def open_device(self, index: int, options: BaseModel | None) -> RemoteDevice:
        from ._device import RemoteDevice
        from ._link import Link, Options, split_entry

        spec, link = split_entry(self.hosted()[index])
        if isinstance(options, Options) and options.link is not None:
            link = Link.parse(options.link)
        return RemoteDevice(index, spec, link)

    def collective(self, call: CollectiveCall) -> Sequence[int] | None:
        """hal.collective's hook: among remote devices, the data moves worker to worker."""
        from ._collective import collective

        return collective(call)
