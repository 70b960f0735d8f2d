"""Static name resolution: what a non-local name in a kernel means (closure, globals, builtins).

Names resolve the way Python would, but only to things the language knows;
int/float/bool constants (and numpy scalars) are inlined as literals, and
anything else is an error that says what to write instead.
"""

from __future__ import annotations

import ast
import builtins as _py
import difflib
import math
import types
from typing import Any, NoReturn

import numpy as np

from . import ir
from ._typing import BOOL, F64, I32, _hal, _Typing, _Value
from .builtins import Builtin
from .function import DeviceFunction, KernelFunction
from .types import DTypeVar, ScalarType

_PY_ALIASES: dict[Any, str] = {
    _py.abs: "abs", _py.min: "min", _py.max: "max", _py.pow: "pow",
    math.sqrt: "sqrt", math.exp: "exp", math.log: "log", math.sin: "sin", math.cos: "cos",
    math.tanh: "tanh", math.floor: "floor", math.ceil: "ceil", math.pow: "pow", math.fabs: "abs",
}
"""Python functions that mean the hal math function of the same name inside a kernel."""

_NP_SCALARS = {t.np_dtype: t for t in ScalarType}


class _Resolver(_Typing):
    """Resolves names and callees of one body; kernel variables are never resolved statically."""

    def callee(self, node: ast.Call) -> Any:
        """The Python object a call refers to; keyword and *-arguments are refused."""
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.error(arg, "*-unpacking is not allowed in kernel calls; pass arguments one by one")
        if not isinstance(node.func, (ast.Name, ast.Attribute)):
            self.error(node, "kernels only call hal intrinsics, casts and @hal.func functions by name")
        callee = self.resolve(node.func)
        if node.keywords and not _takes_keywords(callee, node):
            self.error(node, "keyword arguments are not allowed in kernel calls; pass arguments by position "
                             "(only hal.atomic_*(..., order=...) and hal.fence(scope=...) take keywords)")
        return callee

    def resolve(self, node: ast.expr) -> Any:
        """Statically resolve a (dotted) name that is not a kernel variable."""
        if isinstance(node, ast.Name):
            if node.id in self.scalars or node.id in self.buffers or node.id in self.src.locals:
                self.error(node, f"'{node.id}' is a kernel variable, not a function, type or constant")
            return self.lookup(node.id, node)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in self.src.locals:
                self.error(node, f"attribute access on kernel variables ({ast.unparse(node)}) is not allowed; "
                                 "pass sizes and other properties as scalar parameters")
            base = self.resolve(node.value)
            if not isinstance(base, types.ModuleType):
                self.error(node, f"attribute access on Python objects ({ast.unparse(node)}) is not allowed in "
                                 "kernels; only module attributes such as hal.f32 or math.pi")
            try:
                return self.bound(getattr(base, node.attr), node)
            except AttributeError:
                self.error(node, f"module '{base.__name__}' has no attribute '{node.attr}'")
        self.error(node, f"'{ast.unparse(node)}' is not a name the kernel language can resolve")

    def lookup(self, name: str, node: ast.AST) -> Any:
        """A non-local name, as Python finds it: closure, then module globals, then builtins."""
        fn = self.src.fn
        if name in fn.__code__.co_freevars and fn.__closure__:
            cell = fn.__closure__[fn.__code__.co_freevars.index(name)]
            try:
                return self.bound(cell.cell_contents, node)
            except ValueError:
                self.error(node, f"'{name}' is not bound yet where the kernel is compiled")
        if name in fn.__globals__:
            return self.bound(fn.__globals__[name], node)
        if hasattr(_py, name):
            return getattr(_py, name)
        self.undefined(node, name)

    def defined(self, name: str) -> bool:
        """Whether a non-local name exists where the kernel is defined (closure, globals, builtins)."""
        fn = self.src.fn
        return name in fn.__code__.co_freevars or name in fn.__globals__ or hasattr(_py, name)

    def undefined(self, node: ast.AST, name: str) -> NoReturn:
        """A name that is neither a kernel variable nor defined around the kernel, with a
        did-you-mean among the kernel's parameters and variables."""
        close = difflib.get_close_matches(name, sorted(self.src.locals), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else \
            "; define it as a parameter, assign it in the kernel, or define it at module level"
        self.error(node, f"name '{name}' is not defined{hint}")

    def bound(self, value: Any, node: ast.AST) -> Any:
        """A dtype variable means the scalar type this specialisation binds it to; anything else is itself."""
        if not isinstance(value, DTypeVar):
            return value
        type_ = self.k.bindings.get(value)
        if type_ is None:
            self.error(node, f"dtype variable {value.name} is not bound here: a generic kernel binds it through "
                             f"a parameter annotated hal.Ptr[{value.name}], from the dtype of the array passed")
        return type_

    def constant(self, value: Any, node: ast.AST, name: str) -> _Value:
        if isinstance(value, bool):
            return _Value(ir.Const(value, BOOL))
        if isinstance(value, int):
            return _Value(ir.Const(value, I32), weak=True)
        if isinstance(value, float):
            return _Value(ir.Const(value, F64), weak=True)
        if isinstance(value, ScalarType):
            self.error(node, f"{name} is a type; use it to cast: {_hal(value)}(x)")
        if isinstance(value, (Builtin, DeviceFunction)):
            self.error(node, f"{name} is a function; call it")
        if isinstance(value, np.generic) and value.dtype in _NP_SCALARS:
            type_ = _NP_SCALARS[value.dtype]
            return _Value(self.const(value.item(), type_, node))
        what = "strings" if isinstance(value, str) else f"{type(value).__name__} values"
        self.error(node, f"{name} cannot be used in a kernel: {what} are not kernel values; kernels use "
                         "int/float/bool constants, scalar parameters and hal.Ptr buffers")


def _math_alias(obj: Any) -> str | None:
    """The hal math function a Python builtin or math-module function stands for."""
    return _PY_ALIASES.get(obj) if isinstance(obj, types.BuiltinFunctionType) else None


_OTHER_NAMES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arctan2": "atan2", "rint": "round",
                "absolute": "abs", "fabs": "abs", "minimum": "min", "maximum": "max", "power": "pow", "fmin": "min",
                "fmax": "max"}
"""numpy's names of the kernel math functions, where they differ."""


def _math_hint(callee: Any) -> str | None:
    """For a ``math``/numpy function (or ``round``) used in a kernel: what to write instead."""
    module, name = getattr(callee, "__module__", None), getattr(callee, "__name__", None)
    if not isinstance(name, str) or not (callee is _py.round or module == "math" or isinstance(callee, np.ufunc)
                                         or (isinstance(module, str) and module.startswith("numpy"))):
        return None
    where = "" if callee is _py.round else "np." if module != "math" else "math."
    hal_name = _OTHER_NAMES.get(name, name)
    if hal_name in ir.MATH_FUNCS:
        return (f"{where}{name}() is not kernel syntax; use hal.{hal_name}(...) (see docs/kernel-math.md for its "
                "accuracy)")
    return (f"{where}{name}() has no kernel counterpart; the kernel math functions are hal."
            + ", hal.".join(ir.MATH_FUNCS))


def _name_of(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or repr(obj)


def _call_error(callee: Any) -> str:
    if callee is _py.range:
        return "range() is only allowed as the iterable of a for loop: for i in range(n)"
    if callee in (_py.int, _py.float, _py.bool):
        hint = {_py.int: "hal.i32(x) or hal.i64(x)", _py.float: "hal.f32(x) or hal.f64(x)", _py.bool: "hal.bool_(x)"}
        return f"{callee.__name__}() is not kernel syntax; cast with {hint[callee]}"
    if callee is _py.print:
        return "print() is not available in kernels; store values to a buffer and inspect them on the host"
    if isinstance(callee, type) and issubclass(callee, np.generic) and np.dtype(callee) in _NP_SCALARS:
        return f"np.{callee.__name__}() is not kernel syntax; cast with {_hal(_NP_SCALARS[np.dtype(callee)])}(x)"
    advice = _math_hint(callee)
    if advice is not None:
        return advice
    if isinstance(callee, KernelFunction):
        return f"a kernel cannot call another kernel ('{callee.name}'); make the shared code a @hal.func"
    name = _name_of(callee)
    return (f"calling the Python function '{name}' is not allowed in kernels; kernels call hal intrinsics, "
            f"casts (hal.f32(x)) and @hal.func functions (decorate '{name}' with @hal.func)")


def _takes_keywords(callee: Any, node: ast.Call) -> bool:
    """The builtins with keywords: an atomic's ``order=``, ``hal.fence``'s ``scope=`` (they check them)."""
    if not isinstance(callee, Builtin):
        return False
    allowed = {"atomic": "order", "fence": "scope"}.get(callee.kind)
    return all(kw.arg == allowed for kw in node.keywords)
