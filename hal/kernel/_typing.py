"""Literal and type-promotion rules: numpy 2's weak literals, explicit casts, constant folding.

A literal is *weak* (it adopts the other operand's type; alone it is ``i32`` or
``f64``) and every other conversion is an explicit cast, so a kernel computes
the same in every backend. The one implicit conversion is C's for narrow types
(``f16 bf16 i8 u8 i16 u16``): an operand of one is promoted to its
``ScalarType.promoted`` type (``f32``/``i32``) before any operator, comparison,
condition, index or math function, and a value converts implicitly where it is
assigned, stored, passed or returned when both types promote to the same type
(``f32 <-> f16 <-> bf16``, ``i32 <-> i8 <-> u8 <-> i16 <-> u16``: rounding to
nearest even, or wrapping).
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from . import ir
from ._narrow import to_half
from ._scope import _Scope
from .types import FLOAT_MAX, INT_RANGES, ScalarType

I32, I64, U32 = ScalarType.I32, ScalarType.I64, ScalarType.U32
F32, F64, BOOL = ScalarType.F32, ScalarType.F64, ScalarType.BOOL

_BINOPS: dict[type, tuple[str, str]] = {
    ast.Add: ("add", "+"), ast.Sub: ("sub", "-"), ast.Mult: ("mul", "*"), ast.Div: ("div", "/"),
    ast.FloorDiv: ("floordiv", "//"), ast.Mod: ("mod", "%"), ast.Pow: ("pow", "**"),
    ast.BitAnd: ("bitand", "&"), ast.BitOr: ("bitor", "|"), ast.BitXor: ("bitxor", "^"),
    ast.LShift: ("shl", "<<"), ast.RShift: ("shr", ">>"),
}
_FOLD: dict[str, Any] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "floordiv": lambda a, b: a // b, "mod": lambda a, b: a % b,
    "pow": lambda a, b: a**b, "bitand": lambda a, b: a & b, "bitor": lambda a, b: a | b,
    "bitxor": lambda a, b: a ^ b, "shl": lambda a, b: a << b, "shr": lambda a, b: a >> b,
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}
_COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})


@dataclass(frozen=True)
class _Value:
    """A lowered expression; ``weak`` marks a literal that adopts the other operand's type."""

    expr: ir.Expr
    weak: bool = False

    @property
    def type(self) -> ScalarType:
        return self.expr.type

    @property
    def literal(self) -> int | float:
        """The Python number of a weak literal."""
        return cast(ir.Const, self.expr).value


class _Typing(_Scope):
    """The typing rules, as methods so that their errors point at the body's source."""

    def binop(self, op: ast.operator, node: ast.AST) -> tuple[str, str]:
        if type(op) not in _BINOPS:
            self.error(node, "the '@' operator is not allowed in kernels; use hal.ops.gemm on the host side")
        return _BINOPS[type(op)]

    def promote(self, value: _Value) -> _Value:
        """A narrow-typed value as its promoted type (C's integer promotion; f16/bf16 compute in f32)."""
        if value.weak or not value.type.is_narrow:
            return value
        wide = value.type.promoted
        if isinstance(value.expr, ir.Const):
            return _Value(ir.Const(value.expr.value, wide))
        return _Value(ir.Cast(value.expr, wide))

    def binary(self, op: str, symbol: str, lhs: _Value, rhs: _Value, node: ast.AST) -> _Value:
        if lhs.weak and rhs.weak:
            return self.fold(op, symbol, lhs, rhs, node)
        (a, b), type_ = self.common([lhs, rhs], node, f"'{symbol}'")
        self.check_operator(op, symbol, type_, node)
        return _Value(ir.Binary(op, a, b, BOOL if op in _COMPARISONS else type_))

    def check_operator(self, op: str, symbol: str, type_: ScalarType, node: ast.AST) -> None:
        if op in _COMPARISONS:
            return
        if op in ("bitand", "bitor", "bitxor"):
            if type_.is_float:
                self.error(node, f"'{symbol}' needs integers or bools, not {type_.value}")
            return
        if type_ is BOOL:
            self.error(node, f"'{symbol}' on bool is not allowed; cast with hal.i32(...) first")
        if op in ("shl", "shr") and type_.is_float:
            self.error(node, f"'{symbol}' needs integers, not {type_.value}")
        if op == "div" and type_.is_int:
            self.error(node, f"'/' is float division and both sides are {type_.value}; use // for integer "
                             "(floor) division, or cast one side with hal.f32(...)")
        if op == "pow" and type_.is_int:
            self.error(node, f"'**' needs floats, not {type_.value}; cast with hal.f32(...) (for small "
                             "integer powers, multiply)")

    def fold(self, op: str, symbol: str, lhs: _Value, rhs: _Value, node: ast.AST) -> _Value:
        """Two literals: compute now as Python would; the result is still a weak literal."""
        a, b = lhs.literal, rhs.literal
        if op in ("pow", "shl") and isinstance(b, int) and abs(b) > 256:
            self.error(node, f"constant {a!r} {symbol} {b!r} is out of range")
        try:
            value = _FOLD[op](a, b)
        except (ZeroDivisionError, OverflowError, TypeError, ValueError) as exc:
            self.error(node, f"cannot evaluate the constant expression {a!r} {symbol} {b!r}: {exc}")
        if isinstance(value, bool):
            return _Value(ir.Const(value, BOOL))
        return _Value(ir.Const(value, F64 if isinstance(value, float) else I32), weak=True)

    def common(self, values: list[_Value], node: ast.AST, what: str) -> tuple[list[ir.Expr], ScalarType]:
        """Give values one type: typed ones (promoted) must agree, literals adopt it (or default to i32/f64)."""
        values = [self.promote(v) for v in values]
        typed = [v for v in values if not v.weak]
        if typed:
            type_ = typed[0].type
            for other in typed[1:]:
                if other.type is not type_:
                    self.mixed_error(type_, other.type, node, what)
        else:
            type_ = F64 if any(isinstance(v.literal, float) for v in values) else I32
        return [self.adopt(v, type_, node, what) if v.weak else v.expr for v in values], type_

    def mixed_error(self, a: ScalarType, b: ScalarType, node: ast.AST, what: str) -> NoReturn:
        self.error(node, f"cannot mix {a.value} and {b.value} in {what}; cast one side explicitly, "
                         f"e.g. {_hal(_cast_hint(a, b))}(...)")

    def adopt(self, literal: _Value, type_: ScalarType, node: ast.AST, what: str) -> ir.Const:
        value = literal.literal
        if type_ is BOOL:
            self.error(node, f"cannot combine bool with the number {value!r} in {what}; use True/False, "
                             "or cast the bool with hal.i32(...)")
        if isinstance(value, float) and type_.is_int:
            self.error(node, f"float literal {value!r} with an {type_.value} operand in {what}; cast "
                             f"explicitly, e.g. hal.f32(...) on the {type_.value} side, or write an integer")
        return self.const(value, type_, node)

    def const(self, value: int | float, type_: ScalarType, node: ast.AST) -> ir.Const:
        """A typed constant; out of the type's range is a compile error."""
        if type_ is BOOL:
            return ir.Const(bool(value), BOOL)
        if type_.is_int:
            low, high = INT_RANGES[type_]
            if not low <= value <= high:
                self.error(node, f"integer literal {value} is out of range for {type_.value} [{low}, {high}]; "
                                 f"use a wider type such as hal.i64(...) or hal.u64(...) if it fits those")
            return ir.Const(int(value), type_)
        value = float(value)
        if type_ is not F64 and math.isfinite(value) and abs(value) > FLOAT_MAX[type_]:
            self.error(node, f"float literal {value!r} is out of range for {type_.value} "
                             f"(|x| <= {FLOAT_MAX[type_]:.7g}); use a wider type such as hal.f64")
        if type_.is_narrow:  # the IR holds the exact value of the type (rounded to nearest even)
            value = float(to_half(value, type_))
        return ir.Const(value, type_)

    def materialize(self, value: _Value, node: ast.AST) -> ir.Expr:
        """A value standing alone: a literal takes its default type (i32 or f64)."""
        if not value.weak:
            return value.expr
        return self.const(value.literal, value.type, node)

    def coerce(self, value: _Value, type_: ScalarType, node: ast.AST, what: str) -> ir.Expr:
        """``value`` as ``type_`` for an assignment, store or argument: literals adopt, others must match.

        ``what`` has a ``{}`` for the value's type name.
        """
        if value.weak:
            literal = value.literal
            if type_ is BOOL or (isinstance(literal, float) and type_.is_int):
                kind = "a float literal" if isinstance(literal, float) else "an integer literal"
                self.error(node, f"{what.format(kind)}; cast explicitly with {_hal(type_)}(...)")
            return self.const(literal, type_, node)
        if value.type is not type_:
            if value.type is not BOOL and value.type.promoted is type_.promoted and \
                    (value.type.is_narrow or type_.is_narrow):
                return ir.Cast(value.expr, type_)  # C's implicit conversion between a narrow type and its promotion
            self.error(node, f"{what.format(value.type.value)}; cast explicitly with {_hal(type_)}(...)")
        return value.expr

    def truth(self, value: _Value, node: ast.AST) -> ir.Expr:
        """A condition as bool: numbers are true when non-zero (``x != 0``)."""
        if value.type is BOOL:
            return value.expr
        if value.weak:
            return ir.Const(bool(value.literal), BOOL)
        value = self.promote(value)
        zero = ir.Const(0.0 if value.type.is_float else 0, value.type)
        return ir.Binary("ne", value.expr, zero, BOOL)


def _hal(type_: ScalarType) -> str:
    """How a type is spelled in kernel source."""
    return "hal.bool_" if type_ is BOOL else f"hal.{type_.value}"


def _cast_hint(a: ScalarType, b: ScalarType) -> ScalarType:
    """The type to suggest casting to when a and b meet: the wider float, else i64, else the non-bool."""
    floats = [t for t in (a, b) if t.is_float]
    if floats:
        return F64 if F64 in floats else F32
    if BOOL in (a, b):
        return b if a is BOOL else a
    return I64

