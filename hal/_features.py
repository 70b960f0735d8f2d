"""The closed vocabulary of device features.

Backends declare a subset in ``DeviceInfo.features``; the conformance suite
tags each test with the feature it needs and skips what a device does not
declare. New names arrive only with a new core minor version.
"""

from __future__ import annotations

import enum


class Feature(str, enum.Enum):
    """A capability a device may declare; the value is the name used everywhere."""

    KERNELS = "kernels"
    """Runs general kernels written in the kernel language."""
    F64 = "f64"
    """Double precision in kernels and arrays."""
    I64 = "i64"
    """64-bit integers in kernels."""
    ATOMICS = "atomics"
    """``hal.atomic_*`` on global memory."""
    SHARED_MEMORY = "shared_memory"
    """``hal.shared`` work-group memory."""
    BARRIERS = "barriers"
    """``hal.barrier()`` inside a work-group."""
    LOCAL_ARRAYS = "local_arrays"
    """``hal.local`` per-thread arrays."""
    MULTI_DIM = "multi_dim"
    """Launches with 2- and 3-dimensional grids and blocks."""
    HOST_VISIBLE = "host_visible"
    """Device memory is host memory: ``np.from_dlpack`` is zero-copy."""
    BOUNDS_CHECKS = "bounds_checks"
    """Out-of-bounds accesses raise ``DeviceFault`` (always, or in checked mode)."""
    SIMULATED_TIMING = "simulated_timing"
    """Events and profiles report simulated device time with model counters."""
    TENSOR_OPS = "tensor_ops"
    """Runs ``hal.ops`` operators natively."""
    INT8 = "int8"
    """int8 gemm with int32 accumulation."""
    SUBGROUPS = "subgroups"
    """Subgroup and work-group collectives in kernels: ``hal.subgroup_size``, ``hal.shuffle``,
    ``hal.subgroup_reduce_*``, ``hal.group_reduce_*`` (``DeviceInfo.subgroup_size`` says the width)."""
    F16 = "f16"
    """IEEE half precision (``hal.f16``, numpy float16) in kernels and arrays; computes in f32."""
    BF16 = "bf16"
    """bfloat16 (``hal.bf16``, ``ml_dtypes.bfloat16``) in kernels and arrays; computes in f32."""
    SMALL_INTS = "small_ints"
    """8- and 16-bit integers (``hal.i8 u8 i16 u16``) in kernels, and int16/uint16 arrays; compute in i32."""

    def __str__(self) -> str:
        return self.value


BASE_DTYPES = ("bool", "int8", "uint8", "int32", "uint32", "int64", "float32", "float64")
"""Array dtypes of a device by default (``DeviceInfo.dtypes``)."""
FEATURE_DTYPES: dict[Feature, tuple[str, ...]] = {
    Feature.I64: ("uint64",),
    Feature.F16: ("float16",),
    Feature.BF16: ("bfloat16",),
    Feature.SMALL_INTS: ("int16", "uint16"),
}
"""Array dtypes that come with a feature: a device declaring it stores them."""


def dtypes_for(features: frozenset[Feature] | set[Feature], base: tuple[str, ...] = BASE_DTYPES) -> tuple[str, ...]:
    """``base`` plus the dtypes of the declared features: what a backend puts in ``DeviceInfo.dtypes``."""
    extra = [d for f, names in FEATURE_DTYPES.items() if f in features for d in names if d not in base]
    return (*base, *extra)


def feature_of_dtype(name: str) -> Feature | None:
    """The feature that brings array dtype ``name`` (None for the base dtypes)."""
    return next((f for f, names in FEATURE_DTYPES.items() if name in names), None)


def parse_feature(name: str | Feature) -> Feature:
    """The Feature called ``name``; an unknown name is an InvalidArgumentError listing the vocabulary."""
    try:
        return Feature(name)
    except ValueError:
        from ._errors import InvalidArgumentError

        known = ", ".join(f.value for f in Feature)
        raise InvalidArgumentError(f"unknown feature {name!r}; hal.Feature names are: {known}") from None
