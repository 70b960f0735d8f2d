"""The error hierarchy: everything hal raises is a :class:`HalError`.

Each error says what failed and what to do about it. A failed call leaves the
device usable: errors are raised before any state changes, or after the state
has been restored.
"""

from __future__ import annotations


class HalError(Exception):
    """Base class of every error raised by hal."""


class DeviceNotFoundError(HalError, LookupError):
    """No device matches the requested spec; the message lists the available ones."""


class OutOfMemoryError(HalError, MemoryError):
    """An allocation does not fit in the device's memory (pool included)."""


class InvalidHandleError(HalError):
    """An array, buffer, queue or event was used after it was freed or closed."""


class InvalidArgumentError(HalError, ValueError):
    """An argument has the wrong type, shape, dtype, device or value."""


class ZeroCopyError(InvalidArgumentError):
    """``copy=False`` (``dev.asarray``, ``hal.from_dlpack``, ``np.asarray(x, copy=False)``) where
    sharing the memory is impossible; the message says why (device, layout, dtype, read-only
    producer) and what to pass instead. A ValueError, as numpy's ``copy=False`` raises."""


class UnsupportedError(HalError):
    """The device cannot run something; the message names the missing feature."""

    def __init__(self, message: str, feature: str | None = None) -> None:
        super().__init__(message)
        self.feature = feature


class CompileError(HalError):
    """Kernel source outside the language, reported at the kernel's file and line."""

    def __init__(self, message: str, filename: str | None = None, line: int | None = None) -> None:
        where = f"{filename}:{line}: " if filename and line else ""
        super().__init__(f"{where}{message}")
        self.filename = filename
        self.line = line
        self.reason = message


class DeviceFault(HalError):
    """A kernel did something illegal at run time (out-of-bounds access, divergent barrier).

    Raised at the next synchronisation point of the queue that ran the kernel;
    the device and the queue keep working afterwards.
    """


class DeviceTimeout(HalError, TimeoutError):
    """A wait with ``timeout=`` ran out before the device finished (the message names the
    queue and its last kernel and says whether the running command was aborted)."""


class HazardError(HalError):
    """``HAL_CHECK=1``: two commands on different queues touch one array (at least one
    writes) and no event wait orders them; the message names both commands, both queues
    and the array. Order them with ``other.wait(q.record())``."""


class PluginError(HalError):
    """A backend plugin could not be imported, initialised or accepted."""


class HalWarning(UserWarning):
    """Base class of every warning hal issues."""


class CacheWarning(HalWarning):
    """The kernel cache is not used: its directory is unusable (a file, read-only, full) or not
    trusted (another user's, or writable by others). Kernels still compile, without the cache;
    the message names the directory, says why and how to fix it. Issued once per directory and process."""


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` for a message, a huge number cut short (``10**400`` is 401 digits)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:12]}...{text[-4:]} ({len(text)} characters)"
