"""What a body's lowering knows: kernel-wide state, the body's own names, and where errors point.

Shared by every layer of the frontend's lowering (the kernel body and each
inlined ``@hal.func`` is one :class:`_Scope`); it knows no language rules.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import NoReturn

from . import ir
from ._source import _Source
from .function import DeviceFunction
from .types import DTypeVar, ScalarType


@dataclass(frozen=True)
class _Buffer:
    """What a buffer name means: its IR name, memory space and element type."""

    name: str
    space: ir.Space
    type: ScalarType


@dataclass
class _Kernel:
    """State shared by the kernel body and every function inlined into it."""

    filename: str
    taken: set[str]
    types: dict[str, ScalarType] = field(default_factory=dict)
    variables: dict[str, ScalarType] = field(default_factory=dict)
    arrays: list[ir.ArrayDecl] = field(default_factory=list)
    inlined: int = 0
    temps: int = 0
    stack: list[DeviceFunction] = field(default_factory=list)
    bindings: dict[DTypeVar, ScalarType] = field(default_factory=dict)
    """What each dtype variable of a generic kernel means in this specialisation."""

    def fresh(self, base: str) -> str:
        """A name used nowhere in the kernel: inliner and hoisting temporaries."""
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def declare(self, name: str, type_: ScalarType) -> str:
        self.types[name] = type_
        self.variables[name] = type_
        return name


@dataclass
class _Return:
    """Where an inlined function's ``return`` goes: the result variable and the 'done' flag."""

    result: str | None
    type: ScalarType | None
    done: str | None
    tails: frozenset[ast.Return]
    """Returns in tail position: they need not set the 'done' flag."""


class _Scope:
    """One function body's lowering state: the kernel itself, or one inlined call of a @hal.func."""

    def __init__(self, kernel: _Kernel, src: _Source, *, prefix: str = "", ret: _Return | None = None,
                 call_line: int | None = None) -> None:
        self.k = kernel
        self.src = src
        self.prefix = prefix
        """Prefix of the IR names of this body's locals ("" for the kernel itself)."""
        self.ret = ret
        self.call_line = call_line
        """Inlined from another file: its statements carry the call site's line."""
        self.scalars: dict[str, str] = {}
        self.buffers: dict[str, _Buffer] = {}
        self.constants: dict[str, ir.Const] = {}
        """``hal.Const`` parameters: their launch's value (a literal of the declared type)."""
        self.loop_depth = 0
        self.conditional = 0
        """>0 inside sub-expressions that Python may skip (and/or operands, ternary branches)."""

    def error(self, node: ast.AST, message: str) -> NoReturn:
        self.src.error(node, message)

    def line(self, node: ast.AST) -> int:
        return self.call_line if self.call_line is not None else self.src.line(node)

    def local_name(self, name: str) -> str:
        return self.k.fresh(self.prefix + name) if self.prefix else name

    def declare(self, name: str, type_: ScalarType) -> str:
        ir_name = self.k.declare(self.local_name(name), type_)
        self.scalars[name] = ir_name
        return ir_name

    def temp(self, type_: ScalarType) -> str:
        self.k.temps += 1
        return self.k.declare(self.k.fresh(f"_t{self.k.temps}"), type_)
