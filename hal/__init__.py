"""hal: one Python API for devices, memory, queues and kernels on every kind of hardware.

``import hal`` stays cheap: the pieces below load on first use (PEP 562), and
each plugin is imported only when devices are first looked up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
    CompileError,
    DeviceFault,
    DeviceNotFoundError,
    HalError,
    InvalidArgumentError,
    InvalidHandleError,
    OutOfMemoryError,
    PluginError,
    UnsupportedError,
)
from ._features import Feature
from .backend import API_VERSION
from .kernel.types import Ptr, ScalarType, bool_, f32, f64, i32, i64, u32

__version__ = "0.1.0"

_LAZY = {
    "backends": "._lookup", "devices": "._lookup", "device": "._lookup",
    "Device": "._device", "Array": "._memory", "Queue": "._queue", "Event": "._event",
    "CompiledKernel": "._launch", "MemoryStats": "._pool", "DeviceInfo": "._info",
    "BackendStatus": "._plugins", "profile": "._profile", "Profile": "._profile",
    "ProfileRecord": "._profile", "func": ".kernel", "KernelFunction": ".kernel",
    "register_plugin": "._plugins",
    "global_id": ".kernel.builtins", "local_id": ".kernel.builtins", "group_id": ".kernel.builtins",
    "local_size": ".kernel.builtins", "num_groups": ".kernel.builtins", "global_size": ".kernel.builtins",
    "shared": ".kernel.builtins", "local": ".kernel.builtins", "barrier": ".kernel.builtins",
    "atomic_add": ".kernel.builtins", "atomic_min": ".kernel.builtins", "atomic_max": ".kernel.builtins",
    "atomic_exchange": ".kernel.builtins", "atomic_cas": ".kernel.builtins",
    "sqrt": ".kernel.builtins", "exp": ".kernel.builtins", "log": ".kernel.builtins",
    "sin": ".kernel.builtins", "cos": ".kernel.builtins", "tanh": ".kernel.builtins",
    "abs": ".kernel.builtins", "min": ".kernel.builtins", "max": ".kernel.builtins",
    "floor": ".kernel.builtins", "ceil": ".kernel.builtins", "fma": ".kernel.builtins",
    "pow": ".kernel.builtins",
}
_SUBMODULES = {"kernel", "ops", "backend", "hookspecs", "conformance"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f".{name}", __name__)
    elif name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        value = getattr(module, "registry").register if name == "register_plugin" else getattr(module, name)
    else:
        raise AttributeError(f"module 'hal' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


if TYPE_CHECKING:
    from . import kernel, ops
    from ._device import Device
    from ._event import Event
    from ._info import DeviceInfo
    from ._launch import CompiledKernel
    from ._lookup import backends, device, devices
    from ._memory import Array
    from ._plugins import BackendStatus
    from ._pool import MemoryStats
    from ._profile import Profile, ProfileRecord, profile
    from ._queue import Queue
    from .kernel import KernelFunction, func
    from .kernel.builtins import (
        abs, atomic_add, atomic_cas, atomic_exchange, atomic_max, atomic_min, barrier, ceil, cos, exp,
        floor, fma, global_id, global_size, group_id, local, local_id, local_size, log, max, min,
        num_groups, pow, shared, sin, sqrt, tanh,
    )

__all__ = [
    "API_VERSION", "CompileError", "DeviceFault", "DeviceNotFoundError", "Feature", "HalError",
    "InvalidArgumentError", "InvalidHandleError", "OutOfMemoryError", "PluginError", "Ptr", "ScalarType",
    "UnsupportedError", "bool_", "f32", "f64", "i32", "i64", "u32", *sorted(_LAZY), *sorted(_SUBMODULES),
]
