"""Scalar and pointer types of the kernel language.

``hal.f32`` and friends are :class:`ScalarType` members: kernels use them as
annotations and casts (``hal.f32(x)`` inside a kernel); the IR stores their
string values.
"""

from __future__ import annotations

import enum
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

    @property
    def np_dtype(self) -> np.dtype[Any]:
        return _NP[self]

    @property
    def is_float(self) -> bool:
        return self in (ScalarType.F32, ScalarType.F64)

    @property
    def is_int(self) -> bool:
        return self in (ScalarType.I32, ScalarType.I64, ScalarType.U32)

    @property
    def is_signed(self) -> bool:
        return self in (ScalarType.I32, ScalarType.I64, ScalarType.F32, ScalarType.F64)

    @property
    def bits(self) -> int:
        return 8 if self is ScalarType.BOOL else self.np_dtype.itemsize * 8

    @property
    def c_name(self) -> str:
        return _C[self]

    @classmethod
    def from_dtype(cls, dtype: Any) -> ScalarType:
        """The scalar type of a numpy dtype; raises KeyError when there is none."""
        return _FROM_NP[np.dtype(dtype)]

    def __call__(self, value: Any) -> Any:
        """Casts are kernel syntax (``hal.f32(x)``); on the host they convert numbers too."""
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
}
_FROM_NP = {dt: st for st, dt in _NP.items()}
_C = {
    ScalarType.I32: "int32_t",
    ScalarType.I64: "int64_t",
    ScalarType.U32: "uint32_t",
    ScalarType.F32: "float",
    ScalarType.F64: "double",
    ScalarType.BOOL: "bool",
}

i32 = ScalarType.I32
i64 = ScalarType.I64
u32 = ScalarType.U32
f32 = ScalarType.F32
f64 = ScalarType.F64
bool_ = ScalarType.BOOL


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
