"""``@hal.func`` inlining: a call's statements go before the calling statement.

Device functions are inlined, never called: each call site lowers the
function's body again under fresh names. A return that is not in tail
position sets a 'done' flag that the statement layer turns into skips and
breaks (see ``frontend._Body.block``).
"""

from __future__ import annotations

import ast
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import cast

from . import ir
from ._resolve import _Resolver
from ._scope import _Buffer, _Return
from ._source import ParamType, _annotations, _parse_source, _signature, _Source
from ._typing import BOOL, _Value
from .function import DeviceFunction
from .types import ConstType, DTypeVar, PtrType, ScalarType


@dataclass(frozen=True)
class _FuncSource:
    """A ``@hal.func``'s parse, cached on the DeviceFunction and reused by every call site."""

    src: _Source
    params: list[tuple[str, ParamType]]
    result: ScalarType | DTypeVar | None
    tails: frozenset[ast.Return]
    """Returns in tail position: nothing of the function runs after them."""
    needs_flag: bool
    """Some return is not in tail position: inlining needs a 'done' flag."""


def _func_source(func: DeviceFunction) -> _FuncSource:
    if func._parsed is None:
        src = _parse_source(func.fn, "@hal.func")
        params = _signature(src, "@hal.func")
        result = _annotations(src, "@hal.func").get("return")
        returns = [n for n in ast.walk(src.node) if isinstance(n, ast.Return)]
        for name, ptype in params:
            if isinstance(ptype, ConstType):
                src.error(src.node, f"parameter '{name}' of @hal.func '{func.name}' is a hal.Const; only kernel "
                                    "parameters are launch constants: pass a plain scalar")
        if result is not None and not isinstance(result, (ScalarType, DTypeVar)):
            src.error(src.node, f"@hal.func '{func.name}' is annotated to return {result!r}; "
                                "annotate the result with a hal scalar type (-> hal.f32) or nothing")
        for ret in returns:
            if (ret.value is not None) != (result is not None):
                src.error(ret, f"@hal.func '{func.name}' returns {'a value' if ret.value else 'nothing'} "
                               f"here but is annotated {'-> ' + repr(result) if result else 'without a result'}; "
                               "annotate the result type (-> hal.f32) and return a value on every path")
        body = src.body()
        if result is not None and not _always_returns(body):
            src.error(src.node, f"@hal.func '{func.name}' may finish without returning a value; "
                                "end every path with 'return <value>'")
        tails = frozenset(_tail_returns(body))
        func._parsed = _FuncSource(src, params, result, tails, not tails.issuperset(returns))
    return cast(_FuncSource, func._parsed)


def _tail_returns(body: list[ast.stmt]) -> list[ast.Return]:
    if not body:
        return []
    last = body[-1]
    if isinstance(last, ast.Return):
        return [last]
    if isinstance(last, ast.If):
        return _tail_returns(last.body) + _tail_returns(last.orelse)
    return []


def _always_returns(body: list[ast.stmt]) -> bool:
    if not body:
        return False
    last = body[-1]
    if isinstance(last, ast.Return):
        return True
    if isinstance(last, ast.If):
        return _always_returns(last.body) and _always_returns(last.orelse)
    return False


def _contains_return(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Return) for n in ast.walk(node))


def _returns_from_loop(node: ast.AST) -> bool:
    """Whether a ``return`` sits inside a loop within node (node itself included)."""
    return any(isinstance(n, (ast.For, ast.While)) and _contains_return(n) for n in ast.walk(node))


class _Inliner(_Resolver, ABC):
    """Inlines @hal.func calls into the body being lowered."""

    @abstractmethod
    def expr(self, node: ast.expr, pre: list[ir.Stmt]) -> _Value:
        """Lower an expression: implemented by the expression layer (``_expr._Expressions``)."""

    @abstractmethod
    def block(self, stmts: list[ast.stmt]) -> list[ir.Stmt]:
        """Lower statements: implemented by the statement layer (``frontend._Body``)."""

    def inline(self, func: DeviceFunction, node: ast.Call, pre: list[ir.Stmt], want_value: bool) -> _Value | None:
        """Inline a @hal.func call: its statements go to ``pre``, its result is a fresh variable."""
        if self.conditional:
            self.error(node, self.conditional_error(f"the call of @hal.func '{func.name}'"))
        if func in self.k.stack:
            chain = " -> ".join(f.name for f in (*self.k.stack[self.k.stack.index(func):], func))
            self.error(node, f"recursive call of @hal.func '{func.name}' ({chain}); device functions are "
                             "inlined, so recursion is not allowed: rewrite it as a loop")
        fsrc = _func_source(func)
        if len(node.args) != len(fsrc.params):
            self.error(node, f"@hal.func '{func.name}' takes {len(fsrc.params)} arguments, got {len(node.args)}")
        if want_value and fsrc.result is None:
            self.error(node, f"@hal.func '{func.name}' returns no value; call it as a statement, or annotate "
                             "its result (-> hal.f32) and return one")
        self.k.inlined += 1
        prefix = f"_f_{func.name}_{self.k.inlined}_"
        same_file = fsrc.src.filename == self.k.filename
        ret = _Return(None, None, None, fsrc.tails)
        # type(self): the full body class (frontend._Body), which also lowers statements
        child = type(self)(self.k, fsrc.src, prefix=prefix, ret=ret, call_line=None if same_file else self.line(node))
        line = self.line(node)
        result_type = self.bound(fsrc.result, node) if fsrc.result is not None else None
        for (pname, generic), arg in zip(fsrc.params, node.args, strict=True):
            ptype = self.concrete(generic, node)
            if isinstance(ptype, PtrType):
                child.buffers[pname] = self.pointer_arg(func, pname, ptype, arg)
                continue
            value = self.coerce(self.expr(arg, pre), ptype, arg,
                                f"passing {{}} as parameter '{pname}' ({ptype.value}) of @hal.func '{func.name}'")
            pre.append(ir.Assign(child.declare(pname, ptype), value, line))
        ret.type = result_type
        if result_type is not None:
            ret.result = self.k.declare(self.k.fresh(prefix + "result"), result_type)
        if fsrc.needs_flag:
            ret.done = self.k.declare(self.k.fresh(prefix + "done"), BOOL)
            pre.append(ir.Assign(ret.done, ir.Const(False, BOOL), line))
        self.k.stack.append(func)
        try:
            pre.extend(child.block(fsrc.src.body()))
        finally:
            self.k.stack.pop()
        if ret.result is None or result_type is None:
            return None
        return _Value(ir.Var(ret.result, result_type))

    def concrete(self, ptype: ParamType, node: ast.AST) -> ScalarType | PtrType:
        """A parameter's type in this specialisation: dtype variables replaced by what they are bound to."""
        if isinstance(ptype, PtrType) and isinstance(ptype.elem, DTypeVar):
            return PtrType(self.bound(ptype.elem, node))
        if isinstance(ptype, ConstType):
            return ptype.type
        bound: ScalarType | PtrType = self.bound(ptype, node)
        return bound

    def pointer_arg(self, func: DeviceFunction, pname: str, ptype: PtrType, arg: ast.expr) -> _Buffer:
        if not (isinstance(arg, ast.Name) and arg.id in self.buffers):
            self.error(arg, f"parameter '{pname}' of @hal.func '{func.name}' is a hal.Ptr: pass a buffer name "
                            "(a hal.Ptr parameter or a hal.shared/hal.local array)")
        buffer = self.buffers[arg.id]
        if buffer.type is not ptype.elem:
            self.error(arg, f"parameter '{pname}' of @hal.func '{func.name}' is {ptype!r} but buffer "
                            f"'{arg.id}' holds {buffer.type.value}")
        return buffer

    def conditional_error(self, what: str) -> str:
        return (f"{what} inside 'and'/'or', a chained comparison or 'x if c else y' is not allowed: "
                "Python may skip it there, but it would run anyway; compute it in its own statement first")
