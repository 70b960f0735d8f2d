"""hal: one Python API for devices, memory, queues and kernels on every kind of hardware.

``import hal`` stays cheap: the pieces below load on first use (PEP 562), and
each plugin is imported only when devices are first looked up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import (
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
from ._features import Feature
from .backend import API_VERSION, SDK_VERSION
from .kernel import function as _function
from .kernel.types import (
    Const,
    Ptr,
    ScalarType,
    bf16,
    bool_,
    dtype_var,
    f16,
    f32,
    f64,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
)

__version__ = SDK_VERSION

_LAZY = {
    "backends": "._lookup", "devices": "._lookup", "device": "._lookup",
    "Device": "._device", "Array": "._memory", "Queue": "._queue", "Event": "._event",
    "CompiledKernel": "._launch", "MemoryStats": "._pool", "DeviceInfo": "._info",
    "BackendStatus": "._plugins", "profile": "._profile", "Profile": "._profile",
    "ProfileRecord": "._profile", "func": ".kernel", "KernelFunction": ".kernel",
    "register_plugin": "._plugins", "from_dlpack": "._interop",
    "Graph": "._graph", "CaptureError": "._capture", "verify": "._graphfile", "GraphFileError": "._graphfile",
    "VerifyReport": "._graphfile",
    "global_id": ".kernel.builtins", "local_id": ".kernel.builtins", "group_id": ".kernel.builtins",
    "local_size": ".kernel.builtins", "num_groups": ".kernel.builtins", "global_size": ".kernel.builtins",
    "shared": ".kernel.builtins", "local": ".kernel.builtins", "barrier": ".kernel.builtins",
    "atomic_add": ".kernel.builtins", "atomic_min": ".kernel.builtins", "atomic_max": ".kernel.builtins",
    "atomic_exchange": ".kernel.builtins", "atomic_cas": ".kernel.builtins",
    "atomic_and": ".kernel.builtins", "atomic_or": ".kernel.builtins", "atomic_xor": ".kernel.builtins",
    "sqrt": ".kernel.builtins", "exp": ".kernel.builtins", "log": ".kernel.builtins",
    "sin": ".kernel.builtins", "cos": ".kernel.builtins", "tanh": ".kernel.builtins",
    "abs": ".kernel.builtins", "min": ".kernel.builtins", "max": ".kernel.builtins",
    "floor": ".kernel.builtins", "ceil": ".kernel.builtins", "fma": ".kernel.builtins",
    "pow": ".kernel.builtins",
    "subgroup_size": ".kernel.builtins",
    "subgroup_local_id": ".kernel.builtins",
    "shuffle": ".kernel.builtins",
    "shuffle_xor": ".kernel.builtins",
    "popcount": ".kernel.builtins",
    "clz": ".kernel.builtins",
    "ctz": ".kernel.builtins",
    "fence": ".kernel.builtins",
    "shuffle_up": ".kernel.builtins",
    "shuffle_down": ".kernel.builtins",
    "subgroup_any": ".kernel.builtins",
    "subgroup_all": ".kernel.builtins",
    "subgroup_ballot": ".kernel.builtins",
    "subgroup_scan_inclusive_add": ".kernel.builtins",
    "subgroup_scan_exclusive_add": ".kernel.builtins",
    "subgroup_reduce_add": ".kernel.builtins",
    "subgroup_reduce_max": ".kernel.builtins",
    "subgroup_reduce_min": ".kernel.builtins",
    "group_reduce_add": ".kernel.builtins",
    "group_reduce_max": ".kernel.builtins",
    "group_reduce_min": ".kernel.builtins",
    "erf": ".kernel.builtins",
    "erfc": ".kernel.builtins",
    "exp2": ".kernel.builtins",
    "log2": ".kernel.builtins",
    "log10": ".kernel.builtins",
    "log1p": ".kernel.builtins",
    "expm1": ".kernel.builtins",
    "rsqrt": ".kernel.builtins",
    "tan": ".kernel.builtins",
    "asin": ".kernel.builtins",
    "acos": ".kernel.builtins",
    "atan": ".kernel.builtins",
    "atan2": ".kernel.builtins",
    "sinh": ".kernel.builtins",
    "cosh": ".kernel.builtins",
    "trunc": ".kernel.builtins",
    "round": ".kernel.builtins",
    "copysign": ".kernel.builtins",
    "hypot": ".kernel.builtins",
    "isnan": ".kernel.builtins",
    "isinf": ".kernel.builtins",
    "isfinite": ".kernel.builtins",
}
_SUBMODULES = {"kernel", "ops", "backend", "hookspecs", "conformance", "collective"}


def _default_device_queue() -> Any:
    """Where ``kernel[grid, block](...)`` runs when no argument names a device."""
    from ._lookup import device

    return device().default_queue


_function.default_device_queue = _default_device_queue


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f".{name}", __name__)
    elif name in _LAZY:
        module = importlib.import_module(_LAZY[name], __name__)
        value = module.registry.register if name == "register_plugin" else getattr(module, name)
    else:
        raise AttributeError(f"module 'hal' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)


if TYPE_CHECKING:  # the lazy names, spelled out for type checkers ("X as X" re-exports)
    from . import collective as collective
    from . import kernel as kernel
    from . import ops as ops
    from ._capture import CaptureError as CaptureError
    from ._device import Device as Device
    from ._event import Event as Event
    from ._graph import Graph as Graph
    from ._graphfile import GraphFileError as GraphFileError
    from ._graphfile import VerifyReport as VerifyReport
    from ._graphfile import verify as verify
    from ._info import DeviceInfo as DeviceInfo
    from ._interop import from_dlpack as from_dlpack
    from ._launch import CompiledKernel as CompiledKernel
    from ._lookup import backends as backends
    from ._lookup import device as device
    from ._lookup import devices as devices
    from ._memory import Array as Array
    from ._plugins import BackendStatus as BackendStatus
    from ._pool import MemoryStats as MemoryStats
    from ._profile import Profile as Profile
    from ._profile import ProfileRecord as ProfileRecord
    from ._profile import profile as profile
    from ._queue import Queue as Queue
    from .kernel import KernelFunction as KernelFunction
    from .kernel import func as func
    from .kernel.builtins import abs as abs
    from .kernel.builtins import acos as acos
    from .kernel.builtins import asin as asin
    from .kernel.builtins import atan as atan
    from .kernel.builtins import atan2 as atan2
    from .kernel.builtins import atomic_add as atomic_add
    from .kernel.builtins import atomic_and as atomic_and
    from .kernel.builtins import atomic_cas as atomic_cas
    from .kernel.builtins import atomic_exchange as atomic_exchange
    from .kernel.builtins import atomic_max as atomic_max
    from .kernel.builtins import atomic_min as atomic_min
    from .kernel.builtins import atomic_or as atomic_or
    from .kernel.builtins import atomic_xor as atomic_xor
    from .kernel.builtins import barrier as barrier
    from .kernel.builtins import ceil as ceil
    from .kernel.builtins import clz as clz
    from .kernel.builtins import copysign as copysign
    from .kernel.builtins import cos as cos
    from .kernel.builtins import cosh as cosh
    from .kernel.builtins import ctz as ctz
    from .kernel.builtins import erf as erf
    from .kernel.builtins import erfc as erfc
    from .kernel.builtins import exp as exp
    from .kernel.builtins import exp2 as exp2
    from .kernel.builtins import expm1 as expm1
    from .kernel.builtins import fence as fence
    from .kernel.builtins import floor as floor
    from .kernel.builtins import fma as fma
    from .kernel.builtins import global_id as global_id
    from .kernel.builtins import global_size as global_size
    from .kernel.builtins import group_id as group_id
    from .kernel.builtins import group_reduce_add as group_reduce_add
    from .kernel.builtins import group_reduce_max as group_reduce_max
    from .kernel.builtins import group_reduce_min as group_reduce_min
    from .kernel.builtins import hypot as hypot
    from .kernel.builtins import isfinite as isfinite
    from .kernel.builtins import isinf as isinf
    from .kernel.builtins import isnan as isnan
    from .kernel.builtins import local as local
    from .kernel.builtins import local_id as local_id
    from .kernel.builtins import local_size as local_size
    from .kernel.builtins import log as log
    from .kernel.builtins import log1p as log1p
    from .kernel.builtins import log2 as log2
    from .kernel.builtins import log10 as log10
    from .kernel.builtins import max as max
    from .kernel.builtins import min as min
    from .kernel.builtins import num_groups as num_groups
    from .kernel.builtins import popcount as popcount
    from .kernel.builtins import pow as pow
    from .kernel.builtins import round as round
    from .kernel.builtins import rsqrt as rsqrt
    from .kernel.builtins import shared as shared
    from .kernel.builtins import shuffle as shuffle
    from .kernel.builtins import shuffle_down as shuffle_down
    from .kernel.builtins import shuffle_up as shuffle_up
    from .kernel.builtins import shuffle_xor as shuffle_xor
    from .kernel.builtins import sin as sin
    from .kernel.builtins import sinh as sinh
    from .kernel.builtins import sqrt as sqrt
    from .kernel.builtins import subgroup_all as subgroup_all
    from .kernel.builtins import subgroup_any as subgroup_any
    from .kernel.builtins import subgroup_ballot as subgroup_ballot
    from .kernel.builtins import subgroup_local_id as subgroup_local_id
    from .kernel.builtins import subgroup_reduce_add as subgroup_reduce_add
    from .kernel.builtins import subgroup_reduce_max as subgroup_reduce_max
    from .kernel.builtins import subgroup_reduce_min as subgroup_reduce_min
    from .kernel.builtins import subgroup_scan_exclusive_add as subgroup_scan_exclusive_add
    from .kernel.builtins import subgroup_scan_inclusive_add as subgroup_scan_inclusive_add
    from .kernel.builtins import subgroup_size as subgroup_size
    from .kernel.builtins import tan as tan
    from .kernel.builtins import tanh as tanh
    from .kernel.builtins import trunc as trunc

    def register_plugin(plugin: object, name: str) -> None: ...

__all__ = [
    "API_VERSION", "CacheWarning", "CompileError", "DeviceFault", "DeviceNotFoundError", "DeviceTimeout", "Feature", "HalError", "HalWarning",
    "HazardError",
    "InvalidArgumentError", "InvalidHandleError", "OutOfMemoryError", "PluginError", "Ptr", "Const", "ScalarType",
    "UnsupportedError", "ZeroCopyError", "bf16", "bool_", "dtype_var", "f16", "f32", "f64", "i8", "i16", "i32", "i64",
    "u8", "u16", "u32", "u64", *sorted(_LAZY), *sorted(_SUBMODULES),
]
