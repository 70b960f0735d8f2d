"""The kernel-language frontend: a kernel's Python source -> typed :mod:`~hal.kernel.ir`.

The body is read with :mod:`ast` and never executed. Names resolve the way
Python would (locals, then the closure, the module globals, the builtins), but
only to things the language knows: hal intrinsics, scalar types, ``@hal.func``
functions and int/float/bool constants (inlined). Everything else is a
:class:`~hal.CompileError` at the kernel's own file and line that says what to
write instead.

Typing follows numpy 2: a literal is *weak* (it adopts the other operand's
type; alone it is ``i32`` or ``f64``) and every other conversion is an
explicit cast. ``@hal.func`` calls are inlined; a call or atomic nested in an
expression is hoisted into a temporary just before the statement.
"""

from __future__ import annotations

import ast
import builtins as _py
import dataclasses
import inspect
import math
import textwrap
import types
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

import numpy as np

from .._errors import CompileError
from . import ir
from .analysis import check_barriers
from .builtins import Builtin
from .function import DeviceFunction, KernelFunction
from .types import PtrType, ScalarType

I32, I64, U32 = ScalarType.I32, ScalarType.I64, ScalarType.U32
F32, F64, BOOL = ScalarType.F32, ScalarType.F64, ScalarType.BOOL

_INT_RANGE = {I32: (-(2**31), 2**31 - 1), I64: (-(2**63), 2**63 - 1), U32: (0, 2**32 - 1)}
_F32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max

_PY_ALIASES: dict[Any, str] = {
    _py.abs: "abs", _py.min: "min", _py.max: "max", _py.pow: "pow",
    math.sqrt: "sqrt", math.exp: "exp", math.log: "log", math.sin: "sin", math.cos: "cos",
    math.tanh: "tanh", math.floor: "floor", math.ceil: "ceil", math.pow: "pow", math.fabs: "abs",
}
"""Python functions that mean the hal math function of the same name inside a kernel."""

_FLOAT_ONLY = frozenset({"sqrt", "exp", "log", "sin", "cos", "tanh", "floor", "ceil", "fma", "pow"})
_ARITY = {"fma": 3, "pow": 2, "min": 2, "max": 2}

_BINOPS: dict[type, tuple[str, str]] = {
    ast.Add: ("add", "+"), ast.Sub: ("sub", "-"), ast.Mult: ("mul", "*"), ast.Div: ("div", "/"),
    ast.FloorDiv: ("floordiv", "//"), ast.Mod: ("mod", "%"), ast.Pow: ("pow", "**"),
    ast.BitAnd: ("bitand", "&"), ast.BitOr: ("bitor", "|"), ast.BitXor: ("bitxor", "^"),
    ast.LShift: ("shl", "<<"), ast.RShift: ("shr", ">>"),
}
_CMPOPS: dict[type, tuple[str, str]] = {
    ast.Eq: ("eq", "=="), ast.NotEq: ("ne", "!="), ast.Lt: ("lt", "<"),
    ast.LtE: ("le", "<="), ast.Gt: ("gt", ">"), ast.GtE: ("ge", ">="),
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

_LANGUAGE = "kernels are a typed subset of Python (see 'The kernel language' in the hal design)"
_CONTAINER_HINT = "use hal.local(dtype, n) for a per-thread array, or pass a hal.Ptr buffer"
_UNSUPPORTED_EXPR: dict[type, tuple[str, str]] = {
    ast.List: ("lists", _CONTAINER_HINT), ast.Tuple: ("tuples", _CONTAINER_HINT),
    ast.Dict: ("dicts", _CONTAINER_HINT), ast.Set: ("sets", _CONTAINER_HINT),
    ast.ListComp: ("list comprehensions", "write a for loop"),
    ast.SetComp: ("set comprehensions", "write a for loop"),
    ast.DictComp: ("dict comprehensions", "write a for loop"),
    ast.GeneratorExp: ("generator expressions", "write a for loop"),
    ast.Lambda: ("lambdas", "define a @hal.func at module level"),
    ast.JoinedStr: ("f-strings", "kernels have no strings"),
    ast.NamedExpr: ("the := operator", "assign in its own statement"),
    ast.Starred: ("*-unpacking", "pass arguments one by one"),
    ast.Slice: ("slices", "index one element at a time: p[i]"),
    ast.Await: ("await", _LANGUAGE), ast.Yield: ("yield", _LANGUAGE), ast.YieldFrom: ("yield from", _LANGUAGE),
}
_UNSUPPORTED_STMT: dict[type, tuple[str, str]] = {
    ast.Global: ("'global' statements", "write results through a hal.Ptr parameter"),
    ast.Nonlocal: ("'nonlocal' statements", "write results through a hal.Ptr parameter"),
    ast.With: ("'with' blocks", _LANGUAGE),
    ast.Try: ("'try' blocks", "kernels cannot raise or catch exceptions"),
    ast.Raise: ("'raise'", "kernels cannot raise exceptions; write an error flag to a buffer"),
    ast.Assert: ("'assert'", "check on the host, or write an error flag to a buffer"),
    ast.Import: ("imports", "import at module level"),
    ast.ImportFrom: ("imports", "import at module level"),
    ast.FunctionDef: ("nested functions", "define a @hal.func at module level"),
    ast.AsyncFunctionDef: ("nested functions", "define a @hal.func at module level"),
    ast.ClassDef: ("classes", _LANGUAGE),
    ast.Delete: ("'del'", "variables live until the kernel ends"),
    ast.AsyncFor: ("'async for'", _LANGUAGE), ast.AsyncWith: ("'async with'", _LANGUAGE),
    ast.Match: ("'match' statements", "use if/elif/else"),
}


# ---------------------------------------------------------------- source files
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


def _signature(src: _Source, what: str) -> list[tuple[str, ScalarType | PtrType]]:
    """Parameter names and types, from the annotations; no defaults, no *args, no keywords."""
    args = src.node.args
    if args.vararg or args.kwarg or args.kwonlyargs:
        src.error(src.node, f"{what} '{src.fn.__name__}' may only have plain positional parameters "
                            "(no *args, **kwargs or keyword-only parameters)")
    if args.defaults:
        src.error(args.defaults[0], f"default parameter values are not allowed in {what} "
                                    f"'{src.fn.__name__}'; pass every argument explicitly")
    annotations = _annotations(src, what)
    params: list[tuple[str, ScalarType | PtrType]] = []
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


def _param_type(src: _Source, arg: ast.arg, annotation: Any) -> ScalarType | PtrType:
    if isinstance(annotation, (ScalarType, PtrType)):
        return annotation
    hint = _PY_TYPE_HINT.get(annotation, "")
    src.error(arg, f"parameter '{arg.arg}' is annotated {annotation!r}; use a hal scalar type "
                   f"(hal.i32, hal.i64, hal.u32, hal.f32, hal.f64, hal.bool_) or hal.Ptr[...]{hint}")


_PY_TYPE_HINT: dict[Any, str] = {
    int: " (Python int: use hal.i32 or hal.i64)",
    float: " (Python float: use hal.f32 or hal.f64)",
    bool: " (Python bool: use hal.bool_)",
}


@dataclass(frozen=True)
class _FuncSource:
    """A ``@hal.func``'s parse, cached on the DeviceFunction and reused by every call site."""

    src: _Source
    params: list[tuple[str, ScalarType | PtrType]]
    result: ScalarType | None
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
        if result is not None and not isinstance(result, ScalarType):
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


# ---------------------------------------------------------------- kernel state
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


@dataclass
class _Return:
    """Where an inlined function's ``return`` goes: the result variable and the 'done' flag."""

    result: str | None
    type: ScalarType | None
    done: str | None
    tails: frozenset[ast.Return]
    """Returns in tail position: they need not set the 'done' flag."""


# ------------------------------------------------------------------- lowering
class _Body:
    """Lowers one function body: the kernel itself, or one inlined call of a @hal.func."""

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
        self.loop_depth = 0
        self.conditional = 0
        """>0 inside sub-expressions that Python may skip (and/or operands, ternary branches)."""

    # ------------------------------------------------------------ helpers
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

    # --------------------------------------------------------- statements
    def block(self, stmts: list[ast.stmt]) -> list[ir.Stmt]:
        out: list[ir.Stmt] = []
        for i, node in enumerate(stmts):
            out.extend(self.stmt(node))
            if isinstance(node, ast.Return):
                break  # what follows is dead code
            if self.ret is None or self.ret.done is None or not _contains_return(node):
                continue
            # An inlined function returned early somewhere inside node: skip what follows.
            done = ir.Var(self.ret.done, BOOL)
            line = self.line(node)
            rest = stmts[i + 1:]
            if self.loop_depth:
                if _returns_from_loop(node):  # that return only left the inner loop
                    out.append(ir.If(done, (ir.Break(line),), (), line))
            elif rest:
                out.append(ir.If(ir.Unary("not", done, BOOL), tuple(self.block(rest)), (), line))
                break
        return out

    def stmt(self, node: ast.stmt) -> list[ir.Stmt]:
        method = getattr(self, f"stmt_{type(node).__name__}", None)
        if method is None:
            what, hint = _UNSUPPORTED_STMT.get(type(node), (f"'{type(node).__name__}' statements", _LANGUAGE))
            self.error(node, f"{what} are not allowed in kernels; {hint}")
        return cast(list[ir.Stmt], method(node))

    def stmt_Pass(self, node: ast.Pass) -> list[ir.Stmt]:
        return []

    def stmt_Break(self, node: ast.Break) -> list[ir.Stmt]:
        return [ir.Break(self.line(node))]

    def stmt_Continue(self, node: ast.Continue) -> list[ir.Stmt]:
        return [ir.Continue(self.line(node))]

    def stmt_Return(self, node: ast.Return) -> list[ir.Stmt]:
        line = self.line(node)
        if self.ret is None:
            if node.value is not None:
                self.error(node, "a kernel cannot return a value; store results through a hal.Ptr "
                                 "parameter (a bare 'return' ends the thread)")
            return [ir.Return(line)]
        out: list[ir.Stmt] = []
        if self.ret.result is not None and self.ret.type is not None and node.value is not None:
            value = self.coerce(self.expr(node.value, out), self.ret.type, node,
                                f"returning {{}} from a function annotated -> hal.{self.ret.type.value}")
            out.append(ir.Assign(self.ret.result, value, line))
        if self.ret.done and node not in self.ret.tails:
            out.append(ir.Assign(self.ret.done, ir.Const(True, BOOL), line))
            if self.loop_depth:
                out.append(ir.Break(line))
        return out

    def stmt_Expr(self, node: ast.Expr) -> list[ir.Stmt]:
        call = node.value
        if not isinstance(call, ast.Call):
            self.error(node, "an expression on its own does nothing in a kernel; only calls to hal.barrier(), "
                             "hal.atomic_*() and @hal.func functions may stand alone")
        callee = self.callee(call)
        pre: list[ir.Stmt] = []
        if isinstance(callee, Builtin) and callee.kind == "barrier":
            if call.args:
                self.error(call, "hal.barrier() takes no arguments")
            return [ir.Barrier(self.line(node))]
        if isinstance(callee, Builtin) and callee.kind == "atomic":
            stmt = self.atomic(callee, call, pre, None)
            return [*pre, stmt]
        if isinstance(callee, DeviceFunction):
            self.inline(callee, call, pre, want_value=False)
            return pre
        if isinstance(callee, (Builtin, ScalarType)) or _math_alias(callee):
            self.error(node, f"calling {_name_of(callee)} as a statement does nothing; assign its result "
                             "to a variable")
        self.error(node, _call_error(callee))

    def stmt_Assign(self, node: ast.Assign) -> list[ir.Stmt]:
        if len(node.targets) != 1:
            self.error(node, "chained assignment (a = b = ...) is not allowed; assign one name per statement")
        target = node.targets[0]
        if isinstance(target, ast.Subscript):
            return self.store(target, node.value, node)
        if not isinstance(target, ast.Name):
            self.error(target, f"assignment to {_target_kind(target)} is not allowed; assign one name "
                               "(x = ...) or one element (p[i] = ...) per statement")
        call = node.value if isinstance(node.value, ast.Call) else None
        callee = self.callee(call) if call is not None else None
        if call is not None and isinstance(callee, Builtin) and callee.kind == "array":
            return self.declare_array(target.id, callee, call)
        self.check_not_buffer(target.id, target)
        pre: list[ir.Stmt] = []
        if call is not None and isinstance(callee, Builtin) and callee.kind == "atomic":
            stmt = self.atomic(callee, call, pre, None)
            result = self.assignable(target.id, stmt.type, target)
            return [*pre, dataclasses.replace(stmt, result=result)]
        value = self.expr(node.value, pre)
        return [*pre, self.assign(target.id, value, node)]

    def assignable(self, name: str, type_: ScalarType, node: ast.AST) -> str:
        """The IR name of scalar ``name`` for a value of ``type_``, declaring it on first assignment."""
        self.check_not_buffer(name, node)
        ir_name = self.scalars.get(name)
        if ir_name is None:
            return self.declare(name, type_)
        have = self.k.types[ir_name]
        if have is not type_:
            self.error(node, f"assigning {type_.value} to variable '{name}' of type {have.value}; "
                             f"cast explicitly with {_hal(have)}(...)")
        return ir_name

    def assign(self, name: str, value: _Value, node: ast.AST) -> ir.Assign:
        self.check_not_buffer(name, node)
        ir_name = self.scalars.get(name)
        if ir_name is None:
            expr = self.materialize(value, node)
            ir_name = self.declare(name, expr.type)
        else:
            have = self.k.types[ir_name]
            expr = self.coerce(value, have, node,
                               f"assigning {{}} to variable '{name}' of type {have.value}")
        return ir.Assign(ir_name, expr, self.line(node))

    def check_not_buffer(self, name: str, node: ast.AST) -> None:
        if name in self.buffers:
            self.error(node, f"cannot assign to buffer '{name}'; store elements with {name}[i] = ..., "
                             "and declare each hal.shared/hal.local array once")

    def stmt_AnnAssign(self, node: ast.AnnAssign) -> list[ir.Stmt]:
        if not isinstance(node.target, ast.Name):
            self.error(node, "annotate a plain variable name: x: hal.f32 = 0.0")
        declared = self.resolve(node.annotation)
        if not isinstance(declared, ScalarType):
            self.error(node, f"variable annotation {declared!r} is not a hal scalar type such as hal.f32")
        name = node.target.id
        self.check_not_buffer(name, node)
        if name not in self.scalars:
            self.declare(name, declared)
        elif self.k.types[self.scalars[name]] is not declared:
            self.error(node, f"variable '{name}' already has type {self.k.types[self.scalars[name]].value}; "
                             "a variable keeps one type")
        if node.value is None:
            return []
        pre: list[ir.Stmt] = []
        value = self.expr(node.value, pre)
        return [*pre, self.assign(name, value, node)]

    def stmt_AugAssign(self, node: ast.AugAssign) -> list[ir.Stmt]:
        op, symbol = self.binop(node.op, node)
        pre: list[ir.Stmt] = []
        target = node.target
        if isinstance(target, ast.Subscript):
            buffer = self.buffer_of(target.value)
            index = self.index(target.slice, pre)
            old = _Value(ir.Load(buffer.name, buffer.space, index, buffer.type))
            new = self.binary(op, symbol + "=", old, self.expr(node.value, pre), node)
            value = self.coerce(new, buffer.type, node, f"storing {{}} into {buffer.type.value} buffer "
                                                        f"'{ast.unparse(target.value)}'")
            return [*pre, ir.Store(buffer.name, buffer.space, index, value, self.line(node))]
        if not isinstance(target, ast.Name):
            self.error(node, f"augmented assignment to {_target_kind(target)} is not allowed")
        self.check_not_buffer(target.id, node)
        old = self.name_value(target)
        new = self.binary(op, symbol + "=", old, self.expr(node.value, pre), node)
        return [*pre, self.assign(target.id, new, node)]

    def store(self, target: ast.Subscript, value_node: ast.expr, node: ast.AST) -> list[ir.Stmt]:
        pre: list[ir.Stmt] = []
        buffer = self.buffer_of(target.value)
        value = self.expr(value_node, pre)
        index = self.index(target.slice, pre)
        name = ast.unparse(target.value)
        expr = self.coerce(value, buffer.type, node, f"storing {{}} into {buffer.type.value} buffer '{name}'")
        return [*pre, ir.Store(buffer.name, buffer.space, index, expr, self.line(node))]

    def declare_array(self, name: str, callee: Builtin, call: ast.Call) -> list[ir.Stmt]:
        if name in self.buffers or name in self.scalars:
            self.error(call, f"'{name}' is already declared; declare each hal.{callee.name} array once "
                             "under its own name")
        if len(call.args) != 2:
            self.error(call, f"hal.{callee.name} takes (dtype, n): e.g. hal.{callee.name}(hal.f32, 256)")
        dtype = self.resolve(call.args[0])
        if not isinstance(dtype, ScalarType):
            self.error(call, f"the first argument of hal.{callee.name} must be a hal scalar type such as "
                             f"hal.f32, not {dtype!r}")
        size = self.expr(call.args[1], [])
        if not (size.weak and isinstance(size.literal, int)):
            self.error(call, f"the size of hal.{callee.name} must be a compile-time integer constant "
                             "(a literal, a module-level int, or arithmetic of those)")
        if size.literal <= 0:
            self.error(call, f"hal.{callee.name} size must be positive, not {size.literal}")
        space: ir.Space = "shared" if callee.name == "shared" else "local"
        ir_name = self.k.fresh(self.prefix + name) if self.prefix else name
        self.k.arrays.append(ir.ArrayDecl(ir_name, dtype, size.literal, space))
        self.buffers[name] = _Buffer(ir_name, space, dtype)
        return []

    def stmt_If(self, node: ast.If) -> list[ir.Stmt]:
        pre: list[ir.Stmt] = []
        cond = self.truth(self.expr(node.test, pre), node.test)
        then = tuple(self.block(node.body))
        orelse = tuple(self.block(node.orelse))
        if isinstance(cond, ir.Const):  # a closure/global flag specialises the kernel
            return [*pre, *(then if cond.value else orelse)]
        return [*pre, ir.If(cond, then, orelse, self.line(node))]

    def stmt_While(self, node: ast.While) -> list[ir.Stmt]:
        if node.orelse:
            self.error(node, "while ... else is not allowed in kernels; use a flag variable")
        pre: list[ir.Stmt] = []
        cond = self.truth(self.expr(node.test, pre), node.test)
        body = self.loop_body(node.body)
        line = self.line(node)
        if not pre:
            return [ir.While(cond, body, line)]
        # The condition needs statements (an inlined call): evaluate them on every iteration.
        leave = ir.If(ir.Unary("not", cond, BOOL), (ir.Break(line),), (), line)
        return [ir.While(ir.Const(True, BOOL), (*pre, leave, *body), line)]

    def stmt_For(self, node: ast.For) -> list[ir.Stmt]:
        if node.orelse:
            self.error(node, "for ... else is not allowed in kernels; use a flag variable")
        if not isinstance(node.target, ast.Name):
            self.error(node, "a for loop needs one loop variable: for i in range(n)")
        call = node.iter
        if not (isinstance(call, ast.Call) and self.callee(call) is _py.range):
            self.error(node, "kernels only loop over range(...): for i in range(start, stop, step)")
        if not 1 <= len(call.args) <= 3:
            self.error(call, "range() takes 1 to 3 integer arguments")
        pre: list[ir.Stmt] = []
        values = [self.expr(a, pre) for a in call.args]
        if len(values) == 1:
            values.insert(0, _Value(ir.Const(0, I32), weak=True))
        if len(values) == 2:
            values.append(_Value(ir.Const(1, I32), weak=True))
        (start, stop, step), type_ = self.common(values, call, "range()")
        if not type_.is_int:
            self.error(call, f"range() takes integers, not {type_.value}; cast with hal.i32(...)")
        if isinstance(step, ir.Const) and step.value == 0:
            self.error(call, "range() step must not be zero")
        var = self.assignable(node.target.id, type_, node.target)
        body = self.loop_body(node.body)
        return [*pre, ir.For(var, start, stop, step, body, self.line(node))]

    def loop_body(self, stmts: list[ast.stmt]) -> tuple[ir.Stmt, ...]:
        self.loop_depth += 1
        try:
            return tuple(self.block(stmts))
        finally:
            self.loop_depth -= 1

    # -------------------------------------------------------- expressions
    def expr(self, node: ast.expr, pre: list[ir.Stmt]) -> _Value:
        """Lower ``node``; statements it needs first (inlined calls, atomics) go to ``pre``."""
        method = getattr(self, f"expr_{type(node).__name__}", None)
        if method is None:
            what, hint = _UNSUPPORTED_EXPR.get(type(node), (f"'{type(node).__name__}' expressions", _LANGUAGE))
            self.error(node, f"{what} are not allowed in kernels; {hint}")
        return cast(_Value, method(node, pre))

    def expr_Constant(self, node: ast.Constant, pre: list[ir.Stmt]) -> _Value:
        return self.constant(node.value, node, repr(node.value))

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

    def expr_Name(self, node: ast.Name, pre: list[ir.Stmt]) -> _Value:
        return self.name_value(node)

    def name_value(self, node: ast.Name) -> _Value:
        name = node.id
        if name in self.buffers:
            self.error(node, f"buffer '{name}' cannot be used as a value; index it: {name}[i]")
        if name in self.scalars:
            ir_name = self.scalars[name]
            return _Value(ir.Var(ir_name, self.k.types[ir_name]))
        if name in self.src.locals:
            self.error(node, f"variable '{name}' is used before it is assigned; assign it first "
                             "(a variable's first assignment decides its type)")
        return self.constant(self.lookup(name, node), node, f"'{name}'")

    def expr_Attribute(self, node: ast.Attribute, pre: list[ir.Stmt]) -> _Value:
        return self.constant(self.resolve(node), node, f"'{ast.unparse(node)}'")

    def expr_Subscript(self, node: ast.Subscript, pre: list[ir.Stmt]) -> _Value:
        buffer = self.buffer_of(node.value)
        index = self.index(node.slice, pre)
        return _Value(ir.Load(buffer.name, buffer.space, index, buffer.type))

    def expr_BinOp(self, node: ast.BinOp, pre: list[ir.Stmt]) -> _Value:
        op, symbol = self.binop(node.op, node)
        lhs = self.expr(node.left, pre)
        return self.binary(op, symbol, lhs, self.expr(node.right, pre), node)

    def expr_UnaryOp(self, node: ast.UnaryOp, pre: list[ir.Stmt]) -> _Value:
        value = self.expr(node.operand, pre)
        if isinstance(node.op, ast.Not):
            cond = self.truth(value, node)
            if isinstance(cond, ir.Const):
                return _Value(ir.Const(not cond.value, BOOL))
            return _Value(ir.Unary("not", cond, BOOL))
        symbol, op = {ast.USub: ("-", "neg"), ast.UAdd: ("+", "pos"), ast.Invert: ("~", "invert")}[type(node.op)]
        if value.type is BOOL:
            self.error(node, f"unary '{symbol}' on a bool is not allowed; use 'not', or cast with hal.i32(...)")
        if op == "invert" and value.type.is_float:
            self.error(node, f"'~' needs an integer, not {value.type.value}")
        if value.weak:
            folded = value.literal
            if op == "neg":
                folded = -folded
            elif op == "invert":
                folded = ~int(folded)
            return _Value(ir.Const(folded, value.type), weak=True)
        if op == "pos":
            return value
        return _Value(ir.Unary(op, value.expr, value.type))

    def expr_BoolOp(self, node: ast.BoolOp, pre: list[ir.Stmt]) -> _Value:
        op = "and" if isinstance(node.op, ast.And) else "or"
        result = self.truth(self.expr(node.values[0], pre), node.values[0])
        self.conditional += 1
        try:
            for operand in node.values[1:]:
                rhs = self.truth(self.expr(operand, pre), operand)
                result = ir.Binary(op, result, rhs, BOOL)
        finally:
            self.conditional -= 1
        return _Value(result)

    def expr_Compare(self, node: ast.Compare, pre: list[ir.Stmt]) -> _Value:
        lhs = self.expr(node.left, pre)
        parts: list[_Value] = []
        for i, (cmp, operand) in enumerate(zip(node.ops, node.comparators, strict=True)):
            if type(cmp) not in _CMPOPS:
                self.error(node, f"'{_CMP_NAMES.get(type(cmp), type(cmp).__name__)}' is not allowed in kernels; "
                                 "compare numbers with == != < <= > >=")
            op, symbol = _CMPOPS[type(cmp)]
            later = 1 if i else 0  # Python skips later comparisons once one is false
            self.conditional += later
            try:
                rhs = self.expr(operand, pre)
            finally:
                self.conditional -= later
            parts.append(self.binary(op, symbol, lhs, rhs, node))
            lhs = rhs
        result = parts[0]
        for part in parts[1:]:
            result = _Value(ir.Binary("and", result.expr, part.expr, BOOL))
        return result

    def expr_IfExp(self, node: ast.IfExp, pre: list[ir.Stmt]) -> _Value:
        cond = self.truth(self.expr(node.test, pre), node.test)
        self.conditional += 1
        try:
            values = [self.expr(node.body, pre), self.expr(node.orelse, pre)]
        finally:
            self.conditional -= 1
        if isinstance(cond, ir.Const):
            return values[0] if cond.value else values[1]
        (if_true, if_false), type_ = self.common(values, node, "'x if c else y'")
        return _Value(ir.Select(cond, if_true, if_false, type_))

    def expr_Call(self, node: ast.Call, pre: list[ir.Stmt]) -> _Value:
        callee = self.callee(node)
        if isinstance(callee, ScalarType):
            return self.cast(callee, node, pre)
        if isinstance(callee, Builtin):
            return self.builtin_call(callee, node, pre)
        alias = _math_alias(callee)
        if alias:
            return self.math(alias, node, pre)
        if isinstance(callee, DeviceFunction):
            value = self.inline(callee, node, pre, want_value=True)
            assert value is not None
            return value
        self.error(node, _call_error(callee))

    def builtin_call(self, callee: Builtin, node: ast.Call, pre: list[ir.Stmt]) -> _Value:
        if callee.kind == "thread":
            return _Value(ir.ThreadIndex(callee.name, self.dimension(callee, node)))
        if callee.kind == "math":
            return self.math(callee.name, node, pre)
        if callee.kind == "atomic":
            if self.conditional:
                self.error(node, self.conditional_error(f"hal.{callee.name}"))
            result = self.temp(self.buffer_arg(node, callee).type)
            pre.append(self.atomic(callee, node, pre, result))
            return _Value(ir.Var(result, self.k.types[result]))
        if callee.kind == "array":
            self.error(node, f"hal.{callee.name}(...) must be assigned directly to a name: "
                             f"tile = hal.{callee.name}(hal.f32, 256)")
        self.error(node, "hal.barrier() is a statement; call it on its own line")

    def dimension(self, callee: Builtin, node: ast.Call) -> int:
        if len(node.args) == 1:
            dim = self.expr(node.args[0], [])
            if dim.weak and isinstance(dim.literal, int) and dim.literal in (0, 1, 2):
                return dim.literal
        self.error(node, f"hal.{callee.name}(d) needs the dimension d as a constant 0, 1 or 2")

    def cast(self, type_: ScalarType, node: ast.Call, pre: list[ir.Stmt]) -> _Value:
        if len(node.args) != 1:
            self.error(node, f"the cast {_hal(type_)}(x) takes exactly one argument")
        value = self.expr(node.args[0], pre)
        if value.weak:
            v = value.literal
            if type_ is BOOL:
                return _Value(ir.Const(bool(v), BOOL))
            if type_.is_int and isinstance(v, float):
                if not math.isfinite(v):
                    self.error(node, f"cannot cast {v!r} to {type_.value}")
                v = int(v)  # C's truncation toward zero
            return _Value(self.const(v, type_, node))
        if value.type is type_:
            return value
        if type_ is BOOL:
            return _Value(self.truth(value, node))
        return _Value(ir.Cast(value.expr, type_))

    def math(self, name: str, node: ast.Call, pre: list[ir.Stmt]) -> _Value:
        arity = _ARITY.get(name, 1)
        count = len(node.args)
        if count != arity and not (name in ("min", "max") and count > 2):
            self.error(node, f"hal.{name} takes {arity} argument{'s' if arity > 1 else ''}, not {count}")
        args, type_ = self.common([self.expr(a, pre) for a in node.args], node, f"hal.{name}")
        if type_ is BOOL:
            self.error(node, f"hal.{name} takes numbers, not bool")
        if name in _FLOAT_ONLY and not type_.is_float:
            self.error(node, f"hal.{name} takes floats, not {type_.value}; cast with hal.f32(...) or "
                             "hal.f64(...) (or write a float literal such as 2.0)")
        if name in ("min", "max"):
            result = args[0]
            for arg in args[1:]:
                result = ir.Call(name, (result, arg), type_)
            return _Value(result)
        return _Value(ir.Call(name, tuple(args), type_))

    # ------------------------------------------------------ atomics & calls
    def buffer_arg(self, node: ast.Call, callee: Builtin) -> _Buffer:
        if not node.args:
            self.error(node, f"hal.{callee.name} takes (buffer, index, ...)")
        return self.buffer_of(node.args[0])

    def atomic(self, callee: Builtin, node: ast.Call, pre: list[ir.Stmt], result: str | None) -> ir.AtomicRMW:
        op = callee.name.removeprefix("atomic_")
        count = 4 if op == "cas" else 3
        if len(node.args) != count:
            usage = "(p, i, compare, value)" if op == "cas" else "(p, i, value)"
            self.error(node, f"hal.{callee.name} takes {usage}")
        buffer = self.buffer_of(node.args[0])
        name = ast.unparse(node.args[0])
        if buffer.space == "local":
            self.error(node, f"atomics need a hal.Ptr or hal.shared buffer; '{name}' is a per-thread "
                             "hal.local array, so update it with plain loads and stores")
        if buffer.type is BOOL:
            self.error(node, f"atomics on bool buffers are not supported ('{name}')")
        index = self.index(node.args[1], pre)
        operands = tuple(
            self.coerce(self.expr(a, pre), buffer.type, node,
                        f"passing {{}} to hal.{callee.name} on {buffer.type.value} buffer '{name}'")
            for a in node.args[2:]
        )
        return ir.AtomicRMW(op, buffer.name, buffer.space, index, operands, result, buffer.type, self.line(node))

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
        ret = _Return(None, fsrc.result, None, fsrc.tails)
        child = _Body(self.k, fsrc.src, prefix=prefix, ret=ret, call_line=None if same_file else self.line(node))
        line = self.line(node)
        for (pname, ptype), arg in zip(fsrc.params, node.args, strict=True):
            if isinstance(ptype, PtrType):
                child.buffers[pname] = self.pointer_arg(func, pname, ptype, arg)
                continue
            value = self.coerce(self.expr(arg, pre), ptype, arg,
                                f"passing {{}} as parameter '{pname}' ({ptype.value}) of @hal.func '{func.name}'")
            pre.append(ir.Assign(child.declare(pname, ptype), value, line))
        if fsrc.result is not None:
            ret.result = self.k.declare(self.k.fresh(prefix + "result"), fsrc.result)
        if fsrc.needs_flag:
            ret.done = self.k.declare(self.k.fresh(prefix + "done"), BOOL)
            pre.append(ir.Assign(ret.done, ir.Const(False, BOOL), line))
        self.k.stack.append(func)
        try:
            pre.extend(child.block(fsrc.src.body()))
        finally:
            self.k.stack.pop()
        if ret.result is None or fsrc.result is None:
            return None
        return _Value(ir.Var(ret.result, fsrc.result))

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

    # --------------------------------------------------------- resolution
    def callee(self, node: ast.Call) -> Any:
        """The Python object a call refers to; keyword and *-arguments are refused."""
        if node.keywords:
            self.error(node, "keyword arguments are not allowed in kernel calls; pass arguments by position")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.error(arg, "*-unpacking is not allowed in kernel calls; pass arguments one by one")
        if not isinstance(node.func, (ast.Name, ast.Attribute)):
            self.error(node, "kernels only call hal intrinsics, casts and @hal.func functions by name")
        return self.resolve(node.func)

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
                return getattr(base, node.attr)
            except AttributeError:
                self.error(node, f"module '{base.__name__}' has no attribute '{node.attr}'")
        self.error(node, f"'{ast.unparse(node)}' is not a name the kernel language can resolve")

    def lookup(self, name: str, node: ast.AST) -> Any:
        """A non-local name, as Python finds it: closure, then module globals, then builtins."""
        fn = self.src.fn
        if name in fn.__code__.co_freevars and fn.__closure__:
            cell = fn.__closure__[fn.__code__.co_freevars.index(name)]
            try:
                return cell.cell_contents
            except ValueError:
                self.error(node, f"'{name}' is not bound yet where the kernel is compiled")
        if name in fn.__globals__:
            return fn.__globals__[name]
        if hasattr(_py, name):
            return getattr(_py, name)
        self.error(node, f"name '{name}' is not defined")

    # ------------------------------------------------------------- buffers
    def buffer_of(self, node: ast.expr) -> _Buffer:
        if isinstance(node, ast.Name) and node.id in self.buffers:
            return self.buffers[node.id]
        self.error(node, f"'{ast.unparse(node)}' is not a buffer; only hal.Ptr parameters and "
                         "hal.shared/hal.local arrays can be indexed")

    def index(self, node: ast.expr, pre: list[ir.Stmt]) -> ir.Expr:
        if isinstance(node, ast.Tuple):
            self.error(node, "multi-dimensional indexing is not supported; index with a flat offset such "
                             "as p[row * width + col]")
        value = self.expr(node, pre)
        if value.weak:
            if not isinstance(value.literal, int):
                self.error(node, f"index {value.literal!r} is not an integer")
            if value.literal < 0:
                self.error(node, f"negative index {value.literal}: kernel indices do not wrap around as "
                                 "in Python; compute the element's offset explicitly")
            return self.const(value.literal, I32, node)
        if not value.type.is_int:
            self.error(node, f"an index must be an integer (i32, i64 or u32), not {value.type.value}; "
                             "cast with hal.i32(...)")
        return value.expr

    # -------------------------------------------------------------- typing
    def binop(self, op: ast.operator, node: ast.AST) -> tuple[str, str]:
        if type(op) not in _BINOPS:
            self.error(node, "the '@' operator is not allowed in kernels; use hal.ops.gemm on the host side")
        return _BINOPS[type(op)]

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
        """Give values one type: typed ones must agree, literals adopt it (or default to i32/f64)."""
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
            low, high = _INT_RANGE[type_]
            if not low <= value <= high:
                self.error(node, f"integer literal {value} is out of range for {type_.value}; "
                                 f"write it as hal.i64({value}) or hal.u32(...) if it fits those")
            return ir.Const(int(value), type_)
        value = float(value)
        if type_ is F32 and math.isfinite(value) and abs(value) > _F32_MAX:
            self.error(node, f"float literal {value!r} is out of range for f32; use hal.f64")
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
            self.error(node, f"{what.format(value.type.value)}; cast explicitly with {_hal(type_)}(...)")
        return value.expr

    def truth(self, value: _Value, node: ast.AST) -> ir.Expr:
        """A condition as bool: numbers are true when non-zero (``x != 0``)."""
        if value.type is BOOL:
            return value.expr
        if value.weak:
            return ir.Const(bool(value.literal), BOOL)
        zero = ir.Const(0.0 if value.type.is_float else 0, value.type)
        return ir.Binary("ne", value.expr, zero, BOOL)


_NP_SCALARS = {t.np_dtype: t for t in ScalarType}
_CMP_NAMES = {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}


def _math_alias(obj: Any) -> str | None:
    """The hal math function a Python builtin or math-module function stands for."""
    return _PY_ALIASES.get(obj) if isinstance(obj, types.BuiltinFunctionType) else None


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


def _target_kind(node: ast.AST) -> str:
    if isinstance(node, (ast.Tuple, ast.List)):
        return "several names at once (tuple unpacking)"
    if isinstance(node, ast.Attribute):
        return f"an attribute ({ast.unparse(node)})"
    return f"'{ast.unparse(node)}'"


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
    if isinstance(callee, KernelFunction):
        return f"a kernel cannot call another kernel ('{callee.name}'); make the shared code a @hal.func"
    name = _name_of(callee)
    return (f"calling the Python function '{name}' is not allowed in kernels; kernels call hal intrinsics, "
            f"casts (hal.f32(x)) and @hal.func functions (decorate '{name}' with @hal.func)")


# ------------------------------------------------------------------ entry point
def parse_kernel(fn: types.FunctionType) -> ir.Kernel:
    """Compile a kernel's Python source to typed IR, with every @hal.func inlined.

    Raises CompileError, at the kernel's file and line, for anything outside the
    language or a barrier in divergent control flow.
    """
    src = _parse_source(fn, "kernel")
    params = _signature(src, "kernel")
    if src.node.returns is not None and _annotations(src, "kernel").get("return") is not None:
        src.error(src.node, f"kernel '{fn.__name__}' returns nothing; remove the return annotation")
    taken = {n.id for n in ast.walk(src.node) if isinstance(n, ast.Name)} | {name for name, _ in params}
    state = _Kernel(src.filename, taken)
    body = _Body(state, src)
    ir_params: list[ir.Param] = []
    for name, type_ in params:
        if isinstance(type_, PtrType):
            body.buffers[name] = _Buffer(name, "global", type_.elem)
            ir_params.append(ir.Param(name, type_.elem, True))
        else:
            body.scalars[name] = name
            state.types[name] = type_
            ir_params.append(ir.Param(name, type_, False))
    stmts = body.block(src.body())
    kernel = ir.Kernel(
        name=fn.__name__,
        params=tuple(ir_params),
        variables=tuple(state.variables.items()),
        arrays=tuple(state.arrays),
        body=tuple(stmts),
        source_file=src.filename,
        source_line=src.line(src.node),
    )
    check_barriers(kernel)
    return kernel
