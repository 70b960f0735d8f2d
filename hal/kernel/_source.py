"""Reading a kernel's or ``@hal.func``'s definition: its AST, file and line, and typed signature.

Kernels are compiled from their source, never executed, so everything the
frontend knows about a function comes from here.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import sys
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


_TEXTS: dict[str, list[str]] = {}
"""Source lines by file name of code that has no file (``hal.kernel.from_source``); kept here as
well as in ``linecache``, which any tool may clear."""


def remember(filename: str, text: str) -> None:
    """Make ``text`` the source of functions compiled with ``filename`` (and show it in tracebacks)."""
    lines = text.splitlines(keepends=True)
    _TEXTS[filename] = lines
    linecache.cache[filename] = (len(text), None, lines, filename)


def _source_lines(fn: types.FunctionType) -> tuple[list[str], int]:
    """The lines of ``fn``'s definition and the number of its first line. Where ``inspect`` finds no
    file, the text comes from ``from_source`` or, for ``python -c``, from the command line."""
    try:
        return inspect.getsourcelines(fn)
    except (OSError, TypeError):
        code = fn.__code__
        lines = _TEXTS.get(code.co_filename) or _command_line(code.co_filename)
        block = inspect.getblock(lines[code.co_firstlineno - 1:]) if lines else []
        if not _defines(block, fn):
            raise
        return block, code.co_firstlineno


def _command_line(filename: str) -> list[str] | None:
    """The program of ``python -c PROGRAM`` when ``filename`` is its ("<string>"), else None.
    exec() of a string has that name too: the caller checks that the definition found matches."""
    argv = sys.orig_argv
    if filename != "<string>" or "-c" not in argv[:-1]:
        return None
    return argv[argv.index("-c") + 1].splitlines(keepends=True)


def _defines(block: list[str], fn: types.FunctionType) -> bool:
    """``block`` is the definition of ``fn`` (same name and parameters): a text found by file name
    only (``python -c`` shares "<string>" with every exec of a string) may be another one's."""
    try:
        tree = ast.parse(textwrap.dedent("".join(block)))
    except SyntaxError:
        return False
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef) or node.name != fn.__name__:
        return False
    code = fn.__code__
    return [a.arg for a in (*node.args.posonlyargs, *node.args.args)] == list(code.co_varnames[:code.co_argcount])


def _parse_source(fn: types.FunctionType, what: str) -> _Source:
    filename = fn.__code__.co_filename
    try:
        lines, first = _source_lines(fn)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError) as exc:
        raise CompileError(
            f"cannot read the source of {what} '{fn.__name__}' ({exc}); kernels are compiled from their source, "
            "never executed: define it with def in a .py file, or pass its text to "
            "hal.kernel.from_source(source)", filename, fn.__code__.co_firstlineno,
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
