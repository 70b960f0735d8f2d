"""Expression lowering: Python expressions -> typed IR expressions.

A call or atomic nested in an expression is hoisted into statements that go
to ``pre``, just before the statement being lowered.
"""

from __future__ import annotations

import ast
import math
from typing import cast

from . import ir
from ._inline import _Inliner
from ._resolve import _call_error, _math_alias
from ._scope import _Buffer
from ._typing import BOOL, I32, _hal, _Value
from .builtins import Builtin
from .function import DeviceFunction
from .types import ScalarType

_FLOAT_ONLY = frozenset(ir.MATH_FUNCS) - {"abs", "min", "max"}
_ARITY = {"fma": 3, "pow": 2, "min": 2, "max": 2, "atan2": 2, "copysign": 2, "hypot": 2}
_CMPOPS: dict[type, tuple[str, str]] = {
    ast.Eq: ("eq", "=="), ast.NotEq: ("ne", "!="), ast.Lt: ("lt", "<"),
    ast.LtE: ("le", "<="), ast.Gt: ("gt", ">"), ast.GtE: ("ge", ">="),
}
_CMP_NAMES = {ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}

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
    ast.NamedExpr: ("assignment expressions (:=)", "assign in its own statement"),
    ast.Starred: ("*-unpacking", "pass arguments one by one"),
    ast.Slice: ("slices", "index one element at a time: p[i]"),
    ast.Await: ("await", _LANGUAGE), ast.Yield: ("yield", _LANGUAGE), ast.YieldFrom: ("yield from", _LANGUAGE),
}


class _Expressions(_Inliner):
    """Lowers the expressions of one body."""

    def expr(self, node: ast.expr, pre: list[ir.Stmt]) -> _Value:
        """Lower ``node``; statements it needs first (inlined calls, atomics) go to ``pre``."""
        method = getattr(self, f"expr_{type(node).__name__}", None)
        if method is None:
            what, hint = _UNSUPPORTED_EXPR.get(type(node), (f"'{type(node).__name__}' expressions", _LANGUAGE))
            self.error(node, f"{what} are not allowed in kernels; {hint}")
        return cast(_Value, method(node, pre))

    def expr_Constant(self, node: ast.Constant, pre: list[ir.Stmt]) -> _Value:
        return self.constant(node.value, node, repr(node.value))

    def expr_Name(self, node: ast.Name, pre: list[ir.Stmt]) -> _Value:
        return self.name_value(node)

    def name_value(self, node: ast.Name) -> _Value:
        name = node.id
        if name in self.constants:
            return _Value(self.constants[name], weak=self.constants[name].type is not BOOL)
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
        value = self.promote(value)
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
        if callee.kind == "lane":
            if node.args:
                self.error(node, f"hal.{callee.name}() takes no arguments")
            return _Value(ir.ThreadIndex(callee.name, 0))
        if callee.kind == "collective":
            return self.collective(callee, node, pre)
        if callee.kind == "array":
            self.error(node, f"hal.{callee.name}(...) must be assigned directly to a name: "
                             f"tile = hal.{callee.name}(hal.f32, 256)")
        self.error(node, "hal.barrier() is a statement; call it on its own line")

    def collective(self, callee: Builtin, node: ast.Call, pre: list[ir.Stmt]) -> _Value:
        """``hal.shuffle(v, lane)``, ``hal.subgroup_reduce_add(v)``, ...: hoisted into a Collective
        statement (it exchanges values between work-items) whose result is a fresh temporary."""
        name = callee.name
        scope, op = ("group", name.removeprefix("group_")) if name.startswith("group_") else \
            ("subgroup", name.removeprefix("subgroup_"))
        shuffles, votes = op in ir.SHUFFLE_OPS, op in ir.VOTE_OPS
        if self.conditional:
            self.error(node, self.conditional_error(f"hal.{name}"))
        if len(node.args) != (2 if shuffles else 1) or node.keywords:
            second = {"shuffle": "lane", "shuffle_xor": "mask"}.get(op, "delta")
            usage = f"(v, {second})" if shuffles else "(p)" if votes else "(v)"
            self.error(node, f"hal.{name} takes {usage}")
        value = self.expr(node.args[0], pre)
        if op in ir.REDUCE_OPS or op in ir.SCAN_OPS:
            value = self.promote(value)  # narrow types are storage only: sums compute in i32 / f32
        if votes:
            expr = self.truth(value, node.args[0])
        else:
            expr = self.materialize(value, node)
            if expr.type is BOOL:
                self.error(node, f"hal.{name} takes a number, not bool; cast with hal.i32(...)")
        args: tuple[ir.Expr, ...] = (expr,)
        if shuffles:
            lane = self.expr(node.args[1], pre)
            args += (self.coerce(lane, I32, node, f"the lane of hal.{name} is {{}}, not i32"),)
            if op != "shuffle" and isinstance(args[1], ir.Const) and args[1].value != 0:
                what = "mask" if op == "shuffle_xor" else "delta"
                self.error(node, f"hal.{name}(v, {args[1].value}) reads a lane that does not exist where subgroups "
                                 f"have fewer than {abs(int(args[1].value)) + 1} lanes (a CPU's have 1), so its result "
                                 f"depends on the device; derive the {what} from hal.subgroup_size() (offset = "
                                 "hal.subgroup_size() // 2, then while offset > 0: ...; offset //= 2), or use "
                                 "hal.subgroup_reduce_add / hal.subgroup_scan_inclusive_add, which are right for "
                                 "every subgroup size")
        rtype = (ScalarType.U64 if op == "ballot" else BOOL) if votes else expr.type
        result = self.temp(rtype)
        pre.append(ir.Collective(scope, op, args, result, expr.type, self.line(node)))  # type: ignore[arg-type]
        return _Value(ir.Var(result, rtype))

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
        if name in ir.BIT_FUNCS and not type_.is_int:
            self.error(node, f"hal.{name} takes integers, not {type_.value}; cast with hal.u32(...) or hal.i64(...)")
        if name in _FLOAT_ONLY and not type_.is_float:
            self.error(node, f"hal.{name} takes floats, not {type_.value}; cast with hal.f32(...) or "
                             "hal.f64(...) (or write a float literal such as 2.0)")
        if name in ("min", "max"):
            result = args[0]
            for arg in args[1:]:
                result = ir.Call(name, (result, arg), type_)
            return _Value(result)
        return _Value(ir.Call(name, tuple(args), BOOL if name in ir.PREDICATES else type_))

    def buffer_arg(self, node: ast.Call, callee: Builtin) -> _Buffer:
        if not node.args:
            self.error(node, f"hal.{callee.name} takes (buffer, index, ...)")
        return self.buffer_of(node.args[0])

    def atomic(self, callee: Builtin, node: ast.Call, pre: list[ir.Stmt], result: str | None) -> ir.AtomicRMW:
        op = callee.name.removeprefix("atomic_")
        order = self.memory_order(callee, node)
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
        if op in ir.BITWISE_ATOMICS and not buffer.type.is_int:
            self.error(node, f"hal.{callee.name} takes an integer buffer, not {buffer.type.value} ('{name}'); "
                             "for floats use hal.atomic_cas on their bits")
        if buffer.type.is_narrow:
            self.error(node, f"atomics on {buffer.type.value} buffers are not supported ('{name}'); use a buffer "
                             f"of {buffer.type.promoted.value} (or another 32/64-bit type)")
        index = self.index(node.args[1], pre)
        operands = tuple(
            self.coerce(self.expr(a, pre), buffer.type, node,
                        f"passing {{}} to hal.{callee.name} on {buffer.type.value} buffer '{name}'")
            for a in node.args[2:]
        )
        return ir.AtomicRMW(op, buffer.name, buffer.space, index, operands, result, buffer.type, self.line(node),
                            order)

    def memory_order(self, callee: Builtin, node: ast.Call) -> str:
        """The ``order="acquire"`` keyword of an atomic (``relaxed`` without it)."""
        order = "relaxed"
        for kw in node.keywords:
            value = kw.value.value if isinstance(kw.value, ast.Constant) else None
            if kw.arg != "order" or value not in ir.MEMORY_ORDERS:
                self.error(node, f"hal.{callee.name} takes one keyword, order=, a string constant of "
                                 f"{', '.join(map(repr, ir.MEMORY_ORDERS))}")
            order = str(value)
        return order

    def buffer_of(self, node: ast.expr) -> _Buffer:
        if isinstance(node, ast.Name):
            if node.id in self.buffers:
                return self.buffers[node.id]
            if node.id in self.scalars:
                self.error(node, f"'{node.id}' is a scalar ({self.k.types[self.scalars[node.id]].value}), not a "
                                 "buffer; only hal.Ptr parameters and hal.shared/hal.local arrays can be indexed")
            if node.id not in self.src.locals and not self.defined(node.id):
                self.undefined(node, node.id)
        self.error(node, f"'{ast.unparse(node)}' is not a buffer; only hal.Ptr parameters and "
                         "hal.shared/hal.local arrays can be indexed")

    def index(self, node: ast.expr, pre: list[ir.Stmt]) -> ir.Expr:
        if isinstance(node, ast.Tuple):
            self.error(node, "multi-dimensional indexing is not supported; index with a flat offset such "
                             "as p[row * width + col]")
        value = self.promote(self.expr(node, pre))
        if value.weak:
            if not isinstance(value.literal, int):
                self.error(node, f"index {value.literal!r} is not an integer")
            if value.literal < 0:
                self.error(node, f"negative index {value.literal}: kernel indices do not wrap around as "
                                 "in Python; compute the element's offset explicitly")
            return self.const(value.literal, I32, node)
        if not value.type.is_int:
            self.error(node, f"an index must be an integer (such as i32, i64 or u32), not {value.type.value}; "
                             "cast with hal.i32(...)")
        return value.expr
