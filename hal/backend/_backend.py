"""Backend: a family of devices, what discovery sees; and KnownFailure, its conformance debts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ._device import DeviceImpl


@dataclass(frozen=True)
class KnownFailure:
    """A conformance test this backend is known to fail: run as a strict xfail, so an
    unexpected pass fails the run and the list cannot rot."""

    test: str
    """Test id or fnmatch glob, e.g. ``"test_kernels.py::test_atomics*"``."""
    reason: str
    device: str | None = None
    """Only on devices whose ``DeviceInfo.name`` matches this glob (None: all)."""


class Backend(ABC):
    """A family of devices (one plugin may register several backends). Discovery calls
    ``name``, ``version`` and ``device_count()`` on every ``hal.devices()`` start-up: keep them cheap."""

    name: ClassVar[str]
    """Used in device specs: ``hal.device("<name>:<index>")``."""
    version: ClassVar[str] = "0"
    Options: ClassVar[type[BaseModel] | None] = None
    """API 1.0's way to declare options; 1.2 plugins override :meth:`options_model` instead."""
    known_failures: ClassVar[tuple[KnownFailure, ...]] = ()
    """Conformance tests expected to fail (see :class:`KnownFailure`)."""

    @abstractmethod
    def device_count(self) -> int:
        """How many devices exist (cheap; 0, not an exception, when the driver or device is missing)."""

    @abstractmethod
    def open_device(self, index: int, options: Any) -> DeviceImpl[Any]:
        """Create device ``index`` (0 <= index < ``device_count()``) with options validated by
        ``options_model()`` (None when the caller gave none). Called once per device."""

    def options_model(self) -> type[BaseModel] | None:
        """Optional (1.2): the pydantic model (``extra="forbid"``) of the options
        ``hal.device(name, **options)`` accepts, or None for none. Called only when options are
        given, so import the model here: pydantic stays out of hal's start-up."""
        return self.Options


class DriverBackend(Backend):
    """A backend over a vendor driver that may be missing (OpenCL, CUDA): :meth:`discover` counts the
    devices once, cheaply, and says why there are none; ``hal backends`` shows the reason with the
    version, and tests skip with it."""

    def __init__(self) -> None:
        self._found: tuple[int, str | None] | None = None

    @abstractmethod
    def discover(self) -> tuple[int, str | None]:
        """(devices, None), or (0, why there are none and what to do); called once."""

    @property
    def reason(self) -> str | None:
        """Why there is no device (None when there is one)."""
        return self._discovered()[1]

    @property
    def version(self) -> str:  # type: ignore[override]
        from ._version import SDK_VERSION

        why = self.reason
        return SDK_VERSION if why is None else f"{SDK_VERSION} (no devices: {why})"

    def device_count(self) -> int:
        return self._discovered()[0]

    def _discovered(self) -> tuple[int, str | None]:
        if self._found is None:
            self._found = self.discover()
        return self._found
