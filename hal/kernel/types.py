"""Scalar and pointer types of the kernel language.

``hal.f32`` and friends are :class:`ScalarType` members: kernels use them as
annotations and casts (``hal.f32(x)`` inside a kernel); the IR stores their
string values.

*Narrow* types (``f16 bf16 i8 u8 i16 u16``) are storage types, as in C, OpenCL
and CUDA: a value of one is promoted to its :attr:`ScalarType.promoted` type
(``f32`` for the two half-precision floats, ``i32`` for the small integers)
before any arithmetic, comparison or math function, and a value of the
promoted type converts back where it is assigned or stored to a narrow
variable or element (floats round to nearest even, integers wrap). ``bf16``'s
numpy dtype comes from ``ml_dtypes`` (numpy has no bfloat16), imported the first time it is asked for
(it takes longer to import than numpy itself; ``import hal`` stays light).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


class ScalarType(str, enum.Enum):
    """A scalar type of the kernel language; the value is its IR spelling."""

    I32 = "i32"
    I64 = "i64"
    U32 = "u32"
    F32 = "f32"
    F64 = "f64"
    BOOL = "bool"
    I8 = "i8"
    U8 = "u8"
    I16 = "i16"
    U16 = "u16"
    U64 = "u64"
    F16 = "f16"
    BF16 = "bf16"

    @property
    def np_dtype(self) -> np.dtype[Any]:
        return bfloat16() if self is ScalarType.BF16 else _NP[self]

    @property
    def is_float(self) -> bool:
        return self in _FLOATS

    @property
    def is_int(self) -> bool:
        return self in _INTS

    @property
    def is_signed(self) -> bool:
        return self in _SIGNED

    @property
    def is_narrow(self) -> bool:
        """A storage type that computes in :attr:`promoted` (f16, bf16, i8, u8, i16, u16)."""
        return self in _PROMOTED

    @property
    def promoted(self) -> ScalarType:
        """The type arithmetic on this type happens in: f32 for f16/bf16, i32 for 8/16-bit integers, else itself."""
        return _PROMOTED.get(self, self)

    @property
    def bits(self) -> int:
        return 16 if self is ScalarType.BF16 else 8 if self is ScalarType.BOOL else _NP[self].itemsize * 8

    @property
    def c_name(self) -> str:
        """The C type of a value (``hal_f16``/``hal_bf16`` are ``uint16_t`` bit patterns in every C dialect)."""
        return _C[self]

    @classmethod
    def from_dtype(cls, dtype: Any) -> ScalarType:
        """The scalar type of a numpy dtype; raises KeyError when there is none."""
        dt = np.dtype(dtype)
        if dt.name == "bfloat16" and dt == bfloat16():  # only ml_dtypes makes one, so it is imported
            return ScalarType.BF16
        return _FROM_NP[dt]

    def __call__(self, value: Any) -> Any:
        """Casts are kernel syntax (``hal.f32(x)``); on the host they convert numbers too (to f16/bf16 by
        hal's rounding rule, :mod:`._narrow`)."""
        if self in (ScalarType.F16, ScalarType.BF16):
            from ._narrow import to_half

            return to_half(value, self)
        return self.np_dtype.type(value)

    def __repr__(self) -> str:
        return f"hal.{self.value}"

    def __str__(self) -> str:
        return self.value


_NP: dict[ScalarType, np.dtype[Any]] = {
    ScalarType.I32: np.dtype(np.int32),
    ScalarType.I64: np.dtype(np.int64),
    ScalarType.U32: np.dtype(np.uint32),
    ScalarType.F32: np.dtype(np.float32),
    ScalarType.F64: np.dtype(np.float64),
    ScalarType.BOOL: np.dtype(np.bool_),
    ScalarType.I8: np.dtype(np.int8),
    ScalarType.U8: np.dtype(np.uint8),
    ScalarType.I16: np.dtype(np.int16),
    ScalarType.U16: np.dtype(np.uint16),
    ScalarType.U64: np.dtype(np.uint64),
    ScalarType.F16: np.dtype(np.float16),
}
"""numpy dtypes of every type but bf16 (:func:`bfloat16`)."""
_FROM_NP = {dt: st for st, dt in _NP.items()}
_C = {
    ScalarType.I32: "int32_t",
    ScalarType.I64: "int64_t",
    ScalarType.U32: "uint32_t",
    ScalarType.F32: "float",
    ScalarType.F64: "double",
    ScalarType.BOOL: "bool",
    ScalarType.I8: "int8_t",
    ScalarType.U8: "uint8_t",
    ScalarType.I16: "int16_t",
    ScalarType.U16: "uint16_t",
    ScalarType.U64: "uint64_t",
    ScalarType.F16: "hal_f16",
    ScalarType.BF16: "hal_bf16",
}
_FLOATS = frozenset({ScalarType.F16, ScalarType.BF16, ScalarType.F32, ScalarType.F64})
_INTS = frozenset({ScalarType.I8, ScalarType.U8, ScalarType.I16, ScalarType.U16, ScalarType.I32, ScalarType.U32,
                   ScalarType.I64, ScalarType.U64})
_SIGNED = _FLOATS | {ScalarType.I8, ScalarType.I16, ScalarType.I32, ScalarType.I64}
_PROMOTED = {
    ScalarType.F16: ScalarType.F32, ScalarType.BF16: ScalarType.F32,
    ScalarType.I8: ScalarType.I32, ScalarType.U8: ScalarType.I32,
    ScalarType.I16: ScalarType.I32, ScalarType.U16: ScalarType.I32,
}
INT_RANGES: dict[ScalarType, tuple[int, int]] = {
    t: (int(np.iinfo(t.np_dtype).min), int(np.iinfo(t.np_dtype).max)) for t in _INTS
}
"""The values of each integer type."""
FLOAT_MAX: dict[ScalarType, float] = {
    ScalarType.F16: 65504.0, ScalarType.BF16: 3.3895313892515355e38,
    ScalarType.F32: 3.4028234663852886e38, ScalarType.F64: 1.7976931348623157e308,
}
"""The largest finite value of each float type."""



@functools.cache
def bfloat16() -> np.dtype[Any]:
    """numpy's dtype for ``hal.bf16`` (``ml_dtypes.bfloat16``), importing ml_dtypes on first use."""
    import ml_dtypes

    dtype: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
    return dtype


def half_bits(t: ScalarType) -> Callable[[Any], int]:
    """Host number -> the 16-bit pattern of f16/bf16 ``t``, rounded once to nearest even (hal's rule,
    :mod:`._narrow`): how a backend that stores these types as ``uint16_t`` passes a scalar argument."""
    from ._narrow import scalar_half_bits

    if not (t.is_narrow and t.is_float):
        raise ValueError(f"{t.value} is not a 16-bit float type")
    return lambda value: scalar_half_bits(value, t)


i32 = ScalarType.I32
i64 = ScalarType.I64
u32 = ScalarType.U32
f32 = ScalarType.F32
f64 = ScalarType.F64
bool_ = ScalarType.BOOL
i8 = ScalarType.I8
u8 = ScalarType.U8
i16 = ScalarType.I16
u16 = ScalarType.U16
u64 = ScalarType.U64
f16 = ScalarType.F16
bf16 = ScalarType.BF16


@dataclass(frozen=True, eq=False)
class DTypeVar:
    """``T = hal.dtype_var("T")``: a scalar type a generic kernel is specialised over at launch.

    ``x: hal.Ptr[T]`` binds ``T`` to the dtype of the array passed for ``x``; ``a: T``, ``T(0)``,
    ``hal.shared(T, n)`` and ``v: T = ...`` then mean that type. Compared by identity: two
    variables of one name are two variables.
    """

    name: str

    def __call__(self, value: Any) -> Any:
        raise TypeError(f"dtype variable {self.name} is kernel syntax: {self.name}(x) casts only inside a "
                        "generic @hal.kernel")

    def __repr__(self) -> str:
        return f"hal.dtype_var({self.name!r})"


def dtype_var(name: str) -> DTypeVar:
    """A new dtype variable for generic kernels: ``T = hal.dtype_var("T")``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise TypeError(f"hal.dtype_var takes the variable's name as an identifier string, not {name!r}")
    return DTypeVar(name)


@dataclass(frozen=True)
class PtrType:
    """``hal.Ptr[hal.f32]``: a kernel parameter that receives an Array of that dtype (``hal.Ptr[T]``
    for a :class:`DTypeVar` ``T`` in a generic kernel)."""

    elem: ScalarType | DTypeVar

    def __repr__(self) -> str:
        return f"hal.Ptr[{self.elem!r}]"


class _PtrFactory:
    def __getitem__(self, elem: ScalarType | DTypeVar) -> PtrType:
        if not isinstance(elem, (ScalarType, DTypeVar)):
            raise TypeError(f"Ptr[...] takes a hal scalar type such as hal.f32 (or a hal.dtype_var), not {elem!r}")
        return PtrType(elem)


Ptr = _PtrFactory()


@dataclass(frozen=True)
class ConstType:
    """``hal.Const[hal.i32]``: a parameter whose value is a compile-time constant of each launch.

    Inside the kernel its name is that value, as a literal (usable as a ``hal.shared`` size or a
    loop bound, like a module-level constant); each distinct value compiles its own specialisation.
    """

    type: ScalarType

    def __repr__(self) -> str:
        return f"hal.Const[{self.type!r}]"


class _ConstFactory:
    def __getitem__(self, type_: ScalarType) -> ConstType:
        if not isinstance(type_, ScalarType):
            raise TypeError(f"Const[...] takes a hal scalar type such as hal.i32, not {type_!r}")
        return ConstType(type_)


Const = _ConstFactory()
