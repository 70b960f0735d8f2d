"""Reading a kernel's or ``@hal.func``'s definition: its AST, file and line, and typed signature.

Kernels are compiled from their source, never executed, so everything the
frontend knows about a function comes from here.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from dataclasses import dataclass
from typing import Any, NoReturn

from .._errors import CompileError
from .types import ConstType, DTypeVar, PtrType, ScalarType

ParamType = ScalarType | PtrType | DTypeVar | ConstType
"""A parameter's annotation: a scalar type, a buffer, a dtype variable (generic) or a ``hal.Const``."""


@dataclass(frozen=True)
class _Source:
    """A function's parsed definition and where its lines are in its file."""

    fn: types.FunctionType
    node: ast.FunctionDef
    filename: str
    offset: int
    locals: frozenset[str]
    """Names Python treats as local to the function (parameters and assigned names)."""

    def line(self, node: ast.AST) -> int:
        return getattr(node, "lineno", self.node.lineno) + self.offset

    def error(self, node: ast.AST, message: str) -> NoReturn:
        raise CompileError(message, self.filename, self.line(node))

    def body(self) -> list[ast.stmt]:
        """The statements, without the docstring."""
        body = self.node.body
        first = body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            return body[1:]
        return body


def _parse_source(fn: types.FunctionType, what: str) -> _Source:
    filename = fn.__code__.co_filename
    try:
        lines, first = inspect.getsourcelines(fn)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError) as exc:
        raise CompileError(
            f"cannot read the source of {what} '{fn.__name__}' ({exc}); define it with def in a .py file "
            "(kernels are compiled from their source, never executed)",
            filename, fn.__code__.co_firstlineno,
        ) from None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef) or node.name != fn.__name__:
        raise CompileError(f"{what} '{fn.__name__}' must be a plain 'def' function (not a lambda or async def)",
                           filename, fn.__code__.co_firstlineno)
    return _Source(fn, node, filename, first - 1, frozenset(_local_names(node)))


def _local_names(node: ast.FunctionDef) -> set[str]:
    names = {a.arg for a in (*node.args.posonlyargs, *node.args.args)}
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.add(child.id)
    return names


def _signature(src: _Source, what: str) -> list[tuple[str, ParamType]]:
    """Parameter names and types, from the annotations; no defaults, no *args, no keywords."""
    args = src.node.args
    if args.vararg or args.kwarg or args.kwonlyargs:
        src.error(src.node, f"{what} '{src.fn.__name__}' may only have plain positional parameters "
                            "(no *args, **kwargs or keyword-only parameters)")
    if args.defaults:
        src.error(args.defaults[0], f"default parameter values are not allowed in {what} "
                                    f"'{src.fn.__name__}'; pass every argument explicitly")
    annotations = _annotations(src, what)
    params: list[tuple[str, ParamType]] = []
    for arg in (*args.posonlyargs, *args.args):
        if arg.arg not in annotations:
            src.error(arg, f"parameter '{arg.arg}' of {what} '{src.fn.__name__}' needs a type annotation, "
                           "e.g. hal.f32 for a scalar or hal.Ptr[hal.f32] for a buffer")
        params.append((arg.arg, _param_type(src, arg, annotations[arg.arg])))
    return params


def _annotations(src: _Source, what: str) -> dict[str, Any]:
    """The evaluated annotations. Not ``eval_str=True``: ScalarType members are str instances too."""
    try:
        return {name: eval(value, src.fn.__globals__) if type(value) is str else value  # noqa: S307
                for name, value in inspect.get_annotations(src.fn).items()}
    except Exception as exc:  # an annotation is arbitrary user code
        src.error(src.node, f"cannot evaluate the annotations of {what} '{src.fn.__name__}': {exc}; "
                            "annotate with hal scalar types and hal.Ptr[...] visible at module level")


def _param_type(src: _Source, arg: ast.arg, annotation: Any) -> ParamType:
    if isinstance(annotation, (ScalarType, PtrType, DTypeVar, ConstType)):
        return annotation
    hint = _PY_TYPE_HINT.get(annotation, "")
    src.error(arg, f"parameter '{arg.arg}' is annotated {annotation!r}; use a hal scalar type "
                   f"(hal.i32, hal.i64, hal.u32, hal.f32, hal.f64, hal.bool_, hal.f16, hal.bf16, hal.i8, ... "
                   f"see hal.ScalarType) or hal.Ptr[...]{hint}")


_PY_TYPE_HINT: dict[Any, str] = {
    int: " (Python int: use hal.i32 or hal.i64)",
    float: " (Python float: use hal.f32 or hal.f64)",
    bool: " (Python bool: use hal.bool_)",
}
