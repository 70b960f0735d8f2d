"""Kernels from source text: ``hal.kernel.from_source(source)``.

A kernel is compiled from its source, which ``inspect`` finds in the function's file. Code
generated at run time, typed into a tool that keeps no file, or passed to ``exec`` has none;
this gives it one: the text is remembered under a name of its own (and shown in tracebacks),
so compile errors point into it like into a file.
"""

from __future__ import annotations

import ast
import hashlib
import sys
import textwrap
import types
from typing import Any

from .._errors import InvalidArgumentError
from ._source import remember
from .function import KernelFunction


def from_source(source: str, name: str | None = None, globals: dict[str, Any] | None = None) -> KernelFunction:
    """The kernel defined by ``source``: Python text with one or more ``def`` (``@hal.func``
    helpers first); ``name`` picks the kernel, else it is the last top-level ``def``. The text runs
    like a module body (a ``def`` only makes the function; kernels are never executed as Python),
    with the names of ``globals``, by default a copy of the caller's module globals, so the kernel
    sees ``hal`` and the constants and ``@hal.func`` helpers the caller sees."""
    if not isinstance(source, str):
        raise InvalidArgumentError(f"hal.kernel.from_source takes the kernel's text as a str, got "
                                   f"{type(source).__name__}")
    text = textwrap.dedent(source)
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise InvalidArgumentError(f"the source given to hal.kernel.from_source is not valid Python: {exc}") from None
    defs = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    kernel = name if name is not None else (defs[-1] if defs else None)
    if kernel is None or kernel not in defs:
        found = f"it defines {', '.join(defs)}" if defs else "it has no def"
        raise InvalidArgumentError(f"hal.kernel.from_source found no function {kernel or ''!r} in its source "
                                   f"({found}); pass the text of a def and, if several, name= the kernel")
    filename = f"<hal.kernel.from_source {kernel} {hashlib.sha1(text.encode()).hexdigest()[:12]}>"
    remember(filename, text)
    namespace = dict(sys._getframe(1).f_globals if globals is None else globals)
    exec(compile(tree, filename, "exec"), namespace)  # noqa: S102 - the caller's own code, as a module body
    fn = namespace[kernel]
    if isinstance(fn, KernelFunction):
        return fn
    if not isinstance(fn, types.FunctionType):
        raise InvalidArgumentError(f"'{kernel}' in the source given to hal.kernel.from_source is "
                                   f"{type(fn).__name__} after its decorators; leave the def undecorated or "
                                   "decorate it with @hal.kernel")
    return KernelFunction(fn)
