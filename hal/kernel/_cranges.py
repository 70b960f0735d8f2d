"""The fast path's range analysis: which index arithmetic may skip wrapping, and ``hal_fits``'s C.

Wrapping index arithmetic hides from gcc that an index steps by one per work-item, so the
emitter adds ``hal_run_fast`` computing proven-safe ``+ - *`` in int64; :class:`_Ranges`
picks those nodes and writes the launch-time check that nothing could wrap.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ir
from ._cexpr import BOOL, I32, I64, U32
from .types import INT_RANGES, ScalarType

_RANGE = {**{t: INT_RANGES[t] for t in (I32, U32, I64, *(t for t in ScalarType if t.is_narrow and t.is_int))},
          BOOL: (0, 1)}
"""Integer types whose values fit int64 (u64 does not: always the whole type)."""
_ARITH = ("add", "sub", "mul")


def _c64(v: int) -> str:
    return "INT64_MIN" if v == -(2**63) else f"{v}LL"


@dataclass(frozen=True)
class _Iv:
    """A C ``hal_iv`` holding, at launch time, bounds of an expression's (or variable's) values."""

    name: str
    bounded: bool
    """False: statically nothing better than the whole range of its type (nothing to gain)."""


class _Ranges:
    """Which integer ``+ - *`` feeding an index may be emitted without wrapping, and the C that checks it.

    A flow-insensitive interval analysis whose bounds are computed by C at launch time
    (``hal_fits``) from the launch's dims and scalar arguments: a local id lies in
    ``[0, block - 1]``, a group id in ``[0, grid - 1]``, an unassigned scalar parameter is its
    value, a variable with one definition (an assignment or a ``for``, not reading itself) holds
    0 or a value of that definition (``for``: between its start and stop), a wrapping operation
    whose exact interval leaves its type can be anywhere in the type. Every ``+ - *`` (and ``-x``)
    inside an index whose operands are bounded is a *fast node*: ``hal_run_fast`` computes it as
    plain int64 (the exact value, which gcc sees as affine), and runs only when ``hal_fits`` finds
    every fast node's exact interval inside its type, i.e. where wrapping cannot happen, so both
    functions compute the same values. Variables of 32-bit types that indices read are int64 in
    ``hal_run_fast`` (they hold the same values; no narrowing hides the affine index from gcc).
    """

    def __init__(self, kernel: ir.Kernel, var_types: dict[str, ScalarType], names: dict[str, str],
                 params: dict[str, ir.Param], assigned: set[str]) -> None:
        self.var_types, self.names, self.params, self.assigned = var_types, names, params, assigned
        self.lines: list[str] = []
        """C statements of ``hal_fits`` computing the intervals (``hal_rN``) and fit flags (``hal_fN``)."""
        self.memo: dict[ir.Expr, _Iv] = {}
        self.vars: dict[str, _Iv] = {}
        self.busy: set[str] = set()
        self.flags: dict[ir.Expr, str] = {}
        self.defs: dict[str, list[ir.Stmt]] = {}
        for st in ir.walk_statements(kernel.body):
            if isinstance(st, ir.Assign):
                self.defs.setdefault(st.target, []).append(st)
            elif isinstance(st, ir.For):
                self.defs.setdefault(st.var, []).append(st)
            elif isinstance(st, ir.AtomicRMW) and st.result is not None:
                self.defs.setdefault(st.result, []).append(st)
            elif isinstance(st, ir.Collective):
                self.defs.setdefault(st.result, []).append(st)
        self.fast: dict[ir.Expr, str] = {}
        """Fast node -> its fit flag."""
        self.widened: set[str] = set()
        self._select(kernel.body)

    # --------------------------------------------------------- which nodes
    def _select(self, body: tuple[ir.Stmt, ...]) -> None:
        roots: list[ir.Expr] = []
        for st in ir.walk_statements(body):
            if isinstance(st, (ir.Store, ir.AtomicRMW)):
                roots.append(st.index)
            stack = list(ir.statement_expressions(st))
            while stack:
                e = stack.pop()
                if isinstance(e, ir.Load):
                    roots.append(e.index)
                stack.extend(ir.children(e))
        seen: set[str] = set()
        while roots:
            e = roots.pop()
            if isinstance(e, ir.Var) and e.name not in seen and self.tracked(e.name):
                seen.add(e.name)
                if e.type in (I32, U32):
                    self.widened.add(e.name)
                (d,) = self.defs[e.name]
                if isinstance(d, ir.Assign):
                    roots.append(d.value)
            elif isinstance(e, (ir.Binary, ir.Unary)) and e.op in (*_ARITH, "neg") and e.type in (I32, U32, I64):
                if self.of(e).bounded:
                    self.fast[e] = self.flags[e]
            if not isinstance(e, ir.Load):
                roots.extend(ir.children(e))

    def tracked(self, name: str) -> bool:
        d = self.defs.get(name, [])
        return (len(d) == 1 and isinstance(d[0], (ir.Assign, ir.For)) and name not in self.params
                and self.var_types.get(name) in _RANGE)

    # ------------------------------------------------------------ intervals
    def new(self, code: str, bounded: bool) -> _Iv:
        iv = _Iv(f"hal_r{len(self.lines)}", bounded)
        self.lines.append(f"const hal_iv {iv.name} = {code};")
        return iv

    def exact(self, lo: str, hi: str) -> _Iv:
        return self.new(f"hal_iv_of({lo}, {hi})", True)

    def top(self, t: ScalarType) -> _Iv:
        lo, hi = _RANGE.get(t, _RANGE[I64])
        return self.new(f"hal_iv_of({_c64(lo)}, {_c64(hi)})", False)

    def wrap(self, fn: str, args: list[_Iv], t: ScalarType, e: ir.Expr) -> _Iv:
        """The interval of a wrapping operation, with a flag saying whether it fits ``t``."""
        if not all(a.bounded for a in args):
            return self.top(t)
        flag = f"hal_f{len(self.lines)}"
        lo, hi = _RANGE[t]
        self.lines.append(f"int {flag};")
        self.flags[e] = flag
        return self.new(f"hal_iv_{fn}({', '.join(a.name for a in args)}, {_c64(lo)}, {_c64(hi)}, &{flag})", True)

    def of(self, e: ir.Expr) -> _Iv:
        if e not in self.memo:
            self.memo[e] = self._of(e) if e.type in _RANGE else self.top(e.type)
        return self.memo[e]

    def _of(self, e: ir.Expr) -> _Iv:
        t = e.type
        if t == BOOL:
            return self.exact("0", "1")
        if isinstance(e, ir.Const):
            lo, hi = _RANGE[t]
            v = (int(e.value) - lo) % (hi - lo + 1) + lo
            return self.exact(_c64(v), _c64(v))
        if isinstance(e, ir.Var):
            return self.var(e.name)
        if isinstance(e, ir.ThreadIndex):
            return self.thread(e.kind, e.dim)
        if isinstance(e, ir.Cast):
            if e.value.type not in _RANGE:
                return self.top(t)
            a, (lo, hi), (slo, shi) = self.of(e.value), _RANGE[t], _RANGE[e.value.type]
            if lo <= slo and shi <= hi:
                return a
            return self.wrap("wrap", [a], t, e) if a.bounded else self.top(t)
        if isinstance(e, ir.Select):
            a, b = self.of(e.if_true), self.of(e.if_false)
            return self.new(f"hal_iv_hull({a.name}, {b.name})", a.bounded and b.bounded)
        if isinstance(e, ir.Call) and e.func in ("min", "max"):
            ivs = [self.of(x) if x.type == t else self.top(t) for x in e.args]
            out = ivs[0]
            for b in ivs[1:]:
                out = self.new(f"hal_iv_{e.func}({out.name}, {b.name})", out.bounded and b.bounded)
            return out
        if isinstance(e, ir.Unary) and e.op == "neg":
            return self.wrap("sub", [self.exact("0", "0"), self.of(e.operand)], t, e)
        if isinstance(e, ir.Binary):
            return self.binary(e)
        return self.top(t)

    def binary(self, e: ir.Binary) -> _Iv:
        t, rhs = e.type, e.rhs
        if e.op in _ARITH:
            return self.wrap(e.op, [self.of(e.lhs), self.of(rhs)], t, e)
        c = int(rhs.value) if isinstance(rhs, ir.Const) else None
        if e.op == "mod" and c is not None and c > 0:
            return self.exact("0", _c64(c - 1))
        if e.op == "bitand" and c is not None and c >= 0:
            return self.exact("0", _c64(c))
        if e.op in ("floordiv", "shr") and c is not None:
            d = c if e.op == "floordiv" else 1 << (c % t.bits)
            if d > 0 and d < 2**62:
                a = self.of(e.lhs)
                return self.new(f"hal_iv_fdiv({a.name}, {d}LL)", a.bounded) if a.bounded else self.top(t)
        return self.top(t)

    def thread(self, kind: str, dim: int) -> _Iv:
        if kind in ir.SUBGROUP_INDICES:  # subgroups of one work-item (the only size cemit emits)
            one = "1" if kind == "subgroup_size" else "0"
            return self.exact(one, one)
        b, g = ("bx", "by", "bz")[dim], ("ngx", "ngy", "ngz")[dim]
        size = {"local_id": b, "group_id": g, "global_id": f"{g} * {b}"}.get(kind)
        if size is not None:
            return self.exact("0", f"({size}) > 0 ? ({size}) - 1 : 0")
        value = {"local_size": b, "num_groups": g, "global_size": f"{g} * {b}"}[kind]
        return self.exact(value, value)

    def var(self, name: str) -> _Iv:
        if name in self.vars:
            return self.vars[name]
        t = self.var_types[name]
        p = self.params.get(name)
        if p is not None and not p.pointer and name not in self.assigned and t in _RANGE:
            iv = self.exact(self.names[name], self.names[name])
        elif not self.tracked(name) or name in self.busy:
            return self.top(t)
        else:
            self.busy.add(name)
            (d,) = self.defs[name]
            if isinstance(d, ir.Assign):
                value = self.of(_as(d.value, t))
            else:
                assert isinstance(d, ir.For)
                a, b = self.of(_as(d.start, t)), self.of(_as(d.stop, t))
                value = self.new(f"hal_iv_hull({a.name}, {b.name})", a.bounded and b.bounded)
            self.busy.discard(name)
            zero = self.exact("0", "0")
            iv = self.new(f"hal_iv_hull({zero.name}, {value.name})", value.bounded)
        self.vars[name] = iv
        return iv


def _as(e: ir.Expr, t: ScalarType) -> ir.Expr:
    return e if e.type == t else ir.Cast(e, t)
