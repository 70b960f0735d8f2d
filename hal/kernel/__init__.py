"""The kernel language: a typed Python subset -> versioned, serialisable IR.

``hal.kernel`` is both this package and the ``@hal.kernel`` decorator: the
module object is callable. Everything a kernel's source refers to lives here
(scalar types, ``Ptr``, the intrinsics), so ``import hal.kernel as hk`` is
enough to write kernels. Parsing happens lazily, on a kernel's first use.
"""

from __future__ import annotations

import importlib
import sys
import types as _pytypes
from typing import TYPE_CHECKING, Any

from . import types
from .builtins import (
    abs,
    acos,
    asin,
    atan,
    atan2,
    atomic_add,
    atomic_and,
    atomic_cas,
    atomic_exchange,
    atomic_max,
    atomic_min,
    atomic_or,
    atomic_xor,
    barrier,
    ceil,
    clz,
    copysign,
    cos,
    cosh,
    ctz,
    erf,
    erfc,
    exp,
    exp2,
    expm1,
    fence,
    floor,
    fma,
    global_id,
    global_size,
    group_id,
    group_reduce_add,
    group_reduce_max,
    group_reduce_min,
    hypot,
    isfinite,
    isinf,
    isnan,
    local,
    local_id,
    local_size,
    log,
    log1p,
    log2,
    log10,
    max,
    min,
    num_groups,
    popcount,
    pow,
    round,
    rsqrt,
    shared,
    shuffle,
    shuffle_down,
    shuffle_up,
    shuffle_xor,
    sin,
    sinh,
    sqrt,
    subgroup_all,
    subgroup_any,
    subgroup_ballot,
    subgroup_local_id,
    subgroup_reduce_add,
    subgroup_reduce_max,
    subgroup_reduce_min,
    subgroup_scan_exclusive_add,
    subgroup_scan_inclusive_add,
    subgroup_size,
    tan,
    tanh,
    trunc,
)
from .function import DeviceFunction, KernelFunction, Launch, func
from .types import (
    Const,
    ConstType,
    DTypeVar,
    Ptr,
    PtrType,
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

__all__ = [
    "KernelFunction", "DeviceFunction", "Launch", "func", "from_source", "parse_kernel", "required_features",
    "uniform_control", "Uniformity", "ir", "types",
    "ScalarType", "PtrType", "Ptr", "i32", "i64", "u32", "f32", "f64", "bool_",
    "i8", "u8", "i16", "u16", "u64", "f16", "bf16",
    "global_id", "local_id", "group_id", "local_size", "num_groups", "global_size",
    "shared", "local", "barrier",
    "atomic_add", "atomic_min", "atomic_max", "atomic_exchange", "atomic_cas", "atomic_and", "atomic_or", "atomic_xor",
    "sqrt", "exp", "log", "sin", "cos", "tanh", "abs", "min", "max", "floor", "ceil", "fma", "pow",
    "subgroup_size", "subgroup_local_id", "shuffle", "shuffle_xor",
    "fence", "shuffle_up", "shuffle_down", "subgroup_any", "subgroup_all", "subgroup_ballot", "subgroup_scan_inclusive_add", "subgroup_scan_exclusive_add",
    "subgroup_reduce_add", "subgroup_reduce_max", "subgroup_reduce_min",
    "group_reduce_add", "group_reduce_max", "group_reduce_min",
    "DTypeVar", "dtype_var", "ConstType", "Const",
    "erf", "erfc", "exp2", "log2", "log10", "log1p", "expm1", "rsqrt", "tan", "asin", "acos", "atan", "atan2",
    "sinh", "cosh", "trunc", "round", "copysign", "hypot", "isnan", "isinf", "isfinite",
    "popcount", "clz", "ctz",
]


if TYPE_CHECKING:
    from . import ir
    from ._text import from_source
    from .analysis import Uniformity, required_features, uniform_control
    from .frontend import parse_kernel

_LAZY = {"ir": ".ir", "parse_kernel": ".frontend", "required_features": ".analysis", "uniform_control": ".analysis",
         "Uniformity": ".analysis", "from_source": "._text"}
"""Loaded on first use: parsing is only needed when a kernel is first compiled."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = module if name == "ir" else getattr(module, name)
    globals()[name] = value
    return value


class _KernelModule(_pytypes.ModuleType):
    """This module's class: calling it is the ``@hal.kernel`` decorator."""

    def __call__(self, fn: _pytypes.FunctionType) -> KernelFunction:
        return KernelFunction(fn)


sys.modules[__name__].__class__ = _KernelModule
