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

The lowering is layered, one concept per private module, each class adding
to the one below: :mod:`._scope` (state), :mod:`._typing` (literal and
promotion rules), :mod:`._resolve` (names), :mod:`._inline` (``@hal.func``
calls), :mod:`._expr` (expressions) and here, statements and the entry point.
"""

from __future__ import annotations

import ast
import builtins as _py
import dataclasses
import types
from collections.abc import Mapping
from typing import cast

from . import ir
from ._expr import _LANGUAGE, _Expressions
from ._inline import _contains_return, _returns_from_loop
from ._resolve import _call_error, _math_alias, _name_of
from ._scope import _Buffer, _Kernel
from ._source import ParamType, _annotations, _parse_source, _signature, _Source
from ._typing import BOOL, I32, _hal, _Value
from .analysis import check_barriers
from .builtins import Builtin
from .function import DeviceFunction
from .types import ConstType, DTypeVar, PtrType, ScalarType

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


class _Body(_Expressions):
    """Lowers one function body: the kernel itself, or one inlined call of a @hal.func."""

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
        if isinstance(callee, Builtin) and callee.kind == "fence":
            return [ir.Fence(self.fence_scope(call), self.line(node))]
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

    def fence_scope(self, call: ast.Call) -> str:
        """``hal.fence()``, ``hal.fence("group")`` or ``hal.fence(scope="device")``."""
        given = [*call.args, *(kw.value for kw in call.keywords)]
        names = [kw.arg for kw in call.keywords]
        value = given[0].value if len(given) == 1 and isinstance(given[0], ast.Constant) else None
        if not given:
            return "device"
        if len(given) != 1 or names not in ([], ["scope"]) or value not in ir.FENCE_SCOPES:
            self.error(call, "hal.fence takes one scope, a string constant: hal.fence('device') (every work-item "
                             "of the device, the default) or hal.fence('group') (this work-group)")
        return str(value)

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
        if name in self.constants:
            self.error(node, f"cannot assign to '{name}': it is a hal.Const parameter, a constant of the launch; "
                             "assign to a new variable instead")
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


def _target_kind(node: ast.AST) -> str:
    if isinstance(node, (ast.Tuple, ast.List)):
        return "several names at once (tuple unpacking)"
    if isinstance(node, ast.Attribute):
        return f"an attribute ({ast.unparse(node)})"
    return f"'{ast.unparse(node)}'"


# ------------------------------------------------------------------ entry point
def parse_kernel(fn: types.FunctionType, bindings: Mapping[DTypeVar, ScalarType] | None = None,
                 constants: Mapping[str, int | float | bool] | None = None) -> ir.Kernel:
    """Compile a kernel's Python source to typed IR, with every @hal.func inlined.

    A generic kernel is compiled for one specialisation: ``bindings`` says what each dtype
    variable means, ``constants`` the value of each ``hal.Const`` parameter (checked by the
    caller; those parameters are not parameters of the IR). Raises CompileError, at the
    kernel's file and line, for anything outside the language or a barrier in divergent
    control flow.
    """
    src = _parse_source(fn, "kernel")
    params = _signature(src, "kernel")
    if src.node.returns is not None and _annotations(src, "kernel").get("return") is not None:
        src.error(src.node, f"kernel '{fn.__name__}' returns nothing; remove the return annotation")
    taken = {n.id for n in ast.walk(src.node) if isinstance(n, ast.Name)} | {name for name, _ in params}
    state = _Kernel(src.filename, taken, bindings=dict(bindings or {}))
    body = _Body(state, src)
    ir_params: list[ir.Param] = []
    constants = constants or {}
    _check_specialised(src, params, state.bindings, constants)
    for name, generic in params:
        if isinstance(generic, ConstType):
            body.constants[name] = ir.Const(constants[name], generic.type)
            continue
        type_ = body.concrete(generic, src.node)
        if isinstance(type_, PtrType):
            assert isinstance(type_.elem, ScalarType)
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


def _check_specialised(src: _Source, params: list[tuple[str, ParamType]], bindings: Mapping[DTypeVar, ScalarType],
                       constants: Mapping[str, object]) -> None:
    """A generic kernel has no IR of its own: say how to get one of its specialisations."""
    missing: list[str] = []
    for name, t in params:
        var = t.elem if isinstance(t, PtrType) else t
        if isinstance(var, DTypeVar) and var not in bindings and var.name not in missing:
            missing.append(var.name)
        elif isinstance(t, ConstType) and name not in constants:
            missing.append(name)
    if missing:
        fn = src.fn.__name__
        src.error(src.node, f"kernel '{fn}' is generic over {', '.join(missing)}: launch it (dtypes come from the "
                            "arrays passed, constants from the arguments) or compile one specialisation, "
                            f"dev.compile({fn}.specialize({', '.join(f'{m}=...' for m in missing)}))")
