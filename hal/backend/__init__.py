"""The vendor interface: everything a backend plugin needs, in one public package.

A plugin module declares ``api_version = (major, minor)`` and implements the ``hal_backends``
hook (decorated with :data:`hookimpl`) returning :class:`Backend` instances, and optionally
``hal_ops`` returning :class:`NativeOp` values. It imports from here and from ``hal``'s public
names only. The core validates every argument before it reaches these classes (sizes, dtypes,
devices, bounds of copies, launch limits, kernel features against ``DeviceInfo.features``), so
implementations never repeat those checks: they do the work.

Object graph: ``Backend`` -> ``DeviceImpl`` -> ``Buffer`` / ``QueueImpl`` / ``Executable``; a
``QueueImpl`` hands out ``EventImpl`` markers. docs/writing-a-backend.md lists every method.

``import hal`` loads this package, so it stays light: ``DeviceInfo`` (pydantic), ``hookimpl``
(pluggy) and the reference interpreter load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .._errors import (
    CacheWarning,
    CompileError,
    DeviceFault,
    DeviceNotFoundError,
    DeviceTimeout,
    HalError,
    HalWarning,
    HazardError,
    InvalidArgumentError,
    InvalidHandleError,
    OutOfMemoryError,
    PluginError,
    UnsupportedError,
    ZeroCopyError,
)
from .._features import Feature, dtypes_for
from ._backend import Backend, DriverBackend, KnownFailure
from ._device import DeviceImpl
from ._event import EventImpl
from ._graph import (
    CallCommand,
    Command,
    CopyCommand,
    FillCommand,
    GraphImpl,
    LaunchCommand,
    QueueReplay,
    WriteCommand,
    enqueue,
)
from ._memory import ArgBuffer, Buffer, host_bytes, kernel_args
from ._ops import FAMILIES, FAMILY_OF, NativeOp, Operand, operand_view
from ._program import Executable, bounds_checks, checked_mode
from ._queue import CommandTrace, Dim3, QueueImpl
from ._version import API_VERSION, SDK_VERSION
from ._waiter import Waiter

_LAZY = {"DeviceInfo": "hal._info", "hookimpl": "hal.backend._hooks", "interpret": "hal.kernel.interpreter",
         **dict.fromkeys(("CacheInfo", "cache_clear", "cache_info", "cache_read", "cache_write", "kernel_cache_dir",
                          "trusted_cache_dir"), "hal.backend._cache")}
"""Loaded on first use, so that ``import hal`` imports neither pydantic nor pluggy (nor the kernel cache)."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module.run if name == "interpret" else getattr(module, name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from .._info import DeviceInfo as DeviceInfo
    from ..kernel.interpreter import run as interpret
    from ._cache import CacheInfo as CacheInfo
    from ._cache import cache_clear as cache_clear
    from ._cache import cache_info as cache_info
    from ._cache import cache_read as cache_read
    from ._cache import cache_write as cache_write
    from ._cache import kernel_cache_dir as kernel_cache_dir
    from ._cache import trusted_cache_dir as trusted_cache_dir
    from ._hooks import hookimpl as hookimpl

__all__ = [
    "API_VERSION", "SDK_VERSION", "FAMILIES", "FAMILY_OF",
    "Backend", "DriverBackend", "DeviceImpl", "QueueImpl", "EventImpl", "Buffer", "Executable",
    "ArgBuffer", "CommandTrace", "Command", "LaunchCommand", "CopyCommand", "FillCommand", "WriteCommand",
    "CallCommand", "GraphImpl", "QueueReplay", "enqueue", "Dim3", "KnownFailure", "NativeOp", "Operand",
    "DeviceInfo", "Feature", "dtypes_for", "hookimpl", "interpret", "host_bytes", "kernel_args", "operand_view",
    "checked_mode", "bounds_checks", "kernel_cache_dir", "trusted_cache_dir", "cache_read", "cache_write", "cache_info", "cache_clear",
    "CacheInfo", "Waiter",
    "HalError", "HalWarning", "CacheWarning", "CompileError", "DeviceFault", "DeviceNotFoundError", "DeviceTimeout", "HazardError",
    "InvalidArgumentError", "InvalidHandleError", "OutOfMemoryError", "PluginError", "UnsupportedError",
    "ZeroCopyError",
]
