"""Static analyses of kernel IR that the frontend and every backend share.

* :func:`uniform_control` finds what is the same for every thread of a
  work-group, so that a barrier in thread-dependent control flow is a compile
  error and an emitter knows the control flow around each barrier is uniform.
* :func:`required_features` says which device features a kernel needs, so a
  backend refuses it up front with the feature's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .._errors import CompileError
from .._features import Feature
from . import ir
from .types import ScalarType

_UNIFORM_INDICES = frozenset({"group_id", "num_groups", "local_size", "global_size", "subgroup_size"})


@dataclass(frozen=True)
class Uniformity:
    """Which scalars are work-group uniform, and which barriers are not reached uniformly."""

    nonuniform: frozenset[str]
    """Variables that may differ between threads of one work-group (parameters never do)."""
    divergent_barriers: tuple[tuple[ir.Barrier | ir.Collective, str], ...]
    """Each barrier (or collective, which every work-item must reach as well) under
    thread-dependent control flow, with the reason."""

    def is_uniform(self, expr: ir.Expr) -> bool:
        """Whether ``expr`` has one value across a work-group (conservative: False when unsure)."""
        return _is_uniform(expr, self.nonuniform)


def _is_uniform(expr: ir.Expr, nonuniform: set[str] | frozenset[str]) -> bool:
    if isinstance(expr, ir.Const):
        return True
    if isinstance(expr, ir.Var):
        return expr.name not in nonuniform
    if isinstance(expr, ir.ThreadIndex):
        return expr.kind in _UNIFORM_INDICES
    if isinstance(expr, ir.Load):
        return False  # another thread may have written it
    return all(_is_uniform(child, nonuniform) for child in ir.children(expr))




PORTABLE_SUBGROUP = 32
"""The subgroup size the frontend checks control flow around subgroup collectives against: code
uniform over aligned runs of 32 lanes is uniform over the subgroups of every device whose ``S``
divides 32 (all bundled ones: 1 or 32). A backend checks again with its own ``S``."""


@dataclass(frozen=True)
class _Escape:
    """Reasons a block left early under thread-dependent control (None: it did not): ``ret``/``brk``/
    ``cont`` under work-group divergence, ``sub`` (a return) and ``subloop`` (a break or continue)
    under divergence within a subgroup."""

    ret: str | None = None
    brk: str | None = None
    cont: str | None = None
    sub: str | None = None
    subloop: str | None = None

    def merge(self, other: _Escape) -> _Escape:
        return _Escape(self.ret or other.ret, self.brk or other.brk, self.cont or other.cont, self.sub or other.sub,
                       self.subloop or other.subloop)

    @property
    def any(self) -> str | None:
        return self.ret or self.brk or self.cont


@dataclass(frozen=True)
class _Div:
    """Why control here may differ between work-items: of one work-group (``group``), of one subgroup
    (``sub``, implied by nothing: control that differs between subgroups is still uniform in each)."""

    group: str | None = None
    sub: str | None = None

    def join(self, group: str | None, sub: str | None) -> _Div:
        return _Div(self.group or group, self.sub or sub)


def _aligned_facts(kernel: ir.Kernel, size: int) -> tuple[frozenset[str], frozenset[str]]:
    """Variables always equal to ``local_id(0)`` (the lane-aligned index: in a 1-D work-group, or one
    whose x extent is a multiple of ``S``, ``local_id(0) // S`` is the subgroup), and variables always
    a multiple of ``size``: each only ever assigned such values (a greatest fixed point)."""
    assigns: dict[str, list[ir.Expr | None]] = {}
    for st in ir.walk_statements(kernel.body):
        if isinstance(st, ir.Assign):
            assigns.setdefault(st.target, []).append(st.value)
        elif isinstance(st, (ir.AtomicRMW, ir.Collective)) and st.result is not None:
            assigns.setdefault(st.result, []).append(None)
        elif isinstance(st, ir.For):
            assigns.setdefault(st.var, []).append(None)
    alias, multiple = set(assigns), set(assigns)
    while True:
        a = {v for v in alias if all(e is not None and _is_lid(e, alias) for e in assigns[v])}
        m = {v for v in multiple if all(e is not None and _multiple(e, multiple, size) for e in assigns[v])}
        if a == alias and m == multiple:
            return frozenset(alias), frozenset(multiple)
        alias, multiple = a, m


def _is_lid(e: ir.Expr, alias: set[str] | frozenset[str]) -> bool:
    return (isinstance(e, ir.ThreadIndex) and e.kind == "local_id" and e.dim == 0) or \
        (isinstance(e, ir.Var) and e.name in alias)


def _multiple(e: ir.Expr, multiple: set[str] | frozenset[str], size: int) -> bool:
    """Whether ``e`` is a (uniform) multiple of ``size`` on every device whose ``S`` divides ``size``."""
    if isinstance(e, ir.Const):
        return e.type.is_int and isinstance(e.value, int) and e.value % size == 0
    if isinstance(e, ir.ThreadIndex):
        return e.kind == "subgroup_size"  # a multiple of every device's own S
    if isinstance(e, ir.Var):
        return e.name in multiple
    if isinstance(e, ir.Cast):
        return e.type.is_int and _multiple(e.value, multiple, size)
    if isinstance(e, ir.Binary) and e.op == "mul":
        return _multiple(e.lhs, multiple, size) or _multiple(e.rhs, multiple, size)
    if isinstance(e, ir.Binary) and e.op in ("add", "sub"):
        return _multiple(e.lhs, multiple, size) and _multiple(e.rhs, multiple, size)
    return False


@dataclass
class _Pass:
    """One walk over the kernel; repeated until the non-uniform sets stop growing."""

    nonuniform: set[str]
    lanevar: set[str]
    """Variables that may differ between work-items of one subgroup (a subset of ``nonuniform``)."""
    size: int | None
    """The subgroup size ``S`` checked against; None: subgroup collectives need work-group uniformity."""
    alias: frozenset[str] = frozenset()
    multiple: frozenset[str] = frozenset()
    changed: bool = False
    barriers: dict[int, tuple[ir.Barrier | ir.Collective, str]] = field(default_factory=dict)

    def mark(self, name: str, lane: bool = True) -> None:
        for names, add in ((self.nonuniform, True), (self.lanevar, lane)):
            if add and name not in names:
                names.add(name)
                self.changed = True

    def block(self, body: tuple[ir.Stmt, ...], div: _Div) -> _Escape:
        escape = _Escape()
        for stmt in body:
            left = self.stmt(stmt, div)
            escape = escape.merge(left)
            div = div.join(left.any, left.sub or left.subloop)
        return escape

    def stmt(self, stmt: ir.Stmt, div: _Div) -> _Escape:
        if isinstance(stmt, ir.Assign):
            if div.group or not _is_uniform(stmt.value, self.nonuniform):
                self.mark(stmt.target, bool(div.sub) or not self.sub_uniform(stmt.value))
        elif isinstance(stmt, ir.AtomicRMW):
            if stmt.result is not None:
                self.mark(stmt.result)
        elif isinstance(stmt, ir.Barrier):
            if div.group:
                self.barriers.setdefault(id(stmt), (stmt, div.group))
        elif isinstance(stmt, ir.Collective):
            whole = stmt.scope == "group" or self.size is None
            reason = div.group if whole else div.sub
            if reason:
                self.barriers.setdefault(id(stmt), (stmt, reason))
            # a group reduction gives every work-item one value, a subgroup reduction or vote one per
            # subgroup; what a shuffle or scan gives differs between lanes
            per_subgroup = stmt.op in ir.REDUCE_OPS or stmt.op in ir.VOTE_OPS[:2]
            if div.group or stmt.scope == "subgroup":
                self.mark(stmt.result, bool(div.sub) or not per_subgroup)
        elif isinstance(stmt, (ir.Return, ir.Break, ir.Continue)):
            word = {ir.Return: "returned", ir.Break: "left the loop", ir.Continue: "skipped ahead"}[type(stmt)]
            why = f"some threads {word} at line {stmt.line} ({{}})"
            group, sub = div.group and why.format(div.group), div.sub and why.format(div.sub)
            if isinstance(stmt, ir.Return):
                return _Escape(ret=group, sub=sub)
            return _Escape(brk=group, subloop=sub) if isinstance(stmt, ir.Break) else _Escape(cont=group, subloop=sub)
        elif isinstance(stmt, ir.If):
            inner = self.reason(div, (stmt.cond,), "if condition", stmt.line)
            return self.block(stmt.then, inner).merge(self.block(stmt.orelse, inner))
        elif isinstance(stmt, ir.For):
            inner = self.reason(div, (stmt.start, stmt.stop, stmt.step), "loop bounds", stmt.line)
            return self.loop(stmt.body, inner, stmt.var)
        elif isinstance(stmt, ir.While):
            return self.loop(stmt.body, self.reason(div, (stmt.cond,), "loop condition", stmt.line))
        return _Escape()

    def loop(self, body: tuple[ir.Stmt, ...], div: _Div, var: str | None = None) -> _Escape:
        """A loop absorbs break/continue; a thread-dependent exit makes later iterations divergent."""
        escape = self.block(body, div)
        exit_reason = escape.ret or escape.brk
        sub_exit = escape.sub or escape.subloop
        if (div.group is None and exit_reason) or (div.sub is None and sub_exit):
            div = div.join(exit_reason, sub_exit)
            self.block(body, div)
        if var is not None and div.group:
            self.mark(var, bool(div.sub))
        return _Escape(ret=escape.ret, sub=escape.sub)

    def reason(self, div: _Div, exprs: tuple[ir.Expr, ...], what: str, line: int) -> _Div:
        why = f"the {what} at line {line} depends on the thread"
        group = None if all(_is_uniform(e, self.nonuniform) for e in exprs) else why
        sub = None if all(self.sub_uniform(e) for e in exprs) else \
            f"{why} within a subgroup of {self.size} lanes"
        return div.join(group, sub)

    def sub_uniform(self, e: ir.Expr) -> bool:
        """Whether ``e`` has one value across each subgroup of ``size`` lanes (conservative)."""
        size = self.size
        if size is None:
            return _is_uniform(e, self.nonuniform)
        if size == 1 or _is_uniform(e, self.nonuniform):
            return True
        if isinstance(e, ir.Var):
            return e.name not in self.lanevar
        if isinstance(e, (ir.Load, ir.ThreadIndex)):
            return False
        if isinstance(e, ir.Binary):
            lhs, rhs, op = e.lhs, e.rhs, e.op
            if _is_lid(rhs, self.alias) and op in _MIRROR:
                lhs, rhs, op = rhs, lhs, _MIRROR[op]
            if _is_lid(lhs, self.alias):
                if op in ("lt", "ge", "floordiv"):
                    return _multiple(rhs, self.multiple, size)
                if op in ("le", "gt") and isinstance(rhs, ir.Const) and isinstance(rhs.value, int):
                    return (rhs.value + 1) % size == 0
                if op == "shr" and isinstance(rhs, ir.Const) and isinstance(rhs.value, int):
                    return 0 <= rhs.value < 63 and (1 << rhs.value) % size == 0
        return all(self.sub_uniform(c) for c in ir.children(e))


_MIRROR = {"lt": "gt", "gt": "lt", "le": "ge", "ge": "le"}
"""``c < x`` is ``x > c``: comparisons with the aligned index on the right, turned around."""


def uniform_control(kernel: ir.Kernel, subgroup_size: int | None = PORTABLE_SUBGROUP) -> Uniformity:
    """Work-group uniformity of every variable and of the control flow around each barrier.

    Uniform: constants, scalar parameters, ``group_id``/``num_groups``/
    ``local_size``/``global_size`` and variables only ever assigned uniform
    values under uniform control. Not uniform: ``global_id``/``local_id``,
    loads, atomic results and anything derived from them.

    Subgroup collectives need only control flow that is uniform within each subgroup of
    ``subgroup_size`` lanes: besides work-group uniform values, ``local_id(0)`` (or a variable
    holding it) compared with ``<``/``>=`` to a multiple of the size (``tid < 32``), divided by one
    (``tid // 32``), and values computed from those. None: subgroup collectives need work-group
    uniform control (an emitter that exchanges through work-group memory).
    """
    nonuniform: set[str] = set()
    lanevar: set[str] = set()
    alias, multiple = _aligned_facts(kernel, subgroup_size or 1)
    while True:
        walk = _Pass(nonuniform, lanevar, subgroup_size, alias, multiple)
        walk.block(kernel.body, _Div())
        if not walk.changed:
            return Uniformity(frozenset(nonuniform), tuple(walk.barriers.values()))


def check_barriers(kernel: ir.Kernel, subgroup_size: int | None = PORTABLE_SUBGROUP) -> None:
    """Raise CompileError at the first barrier (or collective) that not every thread of a work-group
    (of a subgroup of ``subgroup_size`` lanes, for a subgroup collective) reaches together."""
    divergent = uniform_control(kernel, subgroup_size).divergent_barriers
    if divergent:
        barrier, reason = min(divergent, key=lambda item: item[0].line)
        what = "hal.barrier()" if isinstance(barrier, ir.Barrier) else f"hal.{_collective_name(barrier)}()"
        sub = isinstance(barrier, ir.Collective) and barrier.scope == "subgroup" and subgroup_size is not None
        unit = "subgroup" if sub else "work-group"
        hint = ("make the condition the same for every lane of a subgroup (compare hal.local_id(0) with a "
                f"multiple of {subgroup_size}: if tid < 32), or move it out of the if/loop" if sub else
                "move it out of the thread-dependent if/loop (compute the condition first, then let all "
                "threads reach it)")
        raise CompileError(
            f"{'barrier' if isinstance(barrier, ir.Barrier) else what} in divergent control flow: {reason}; "
            f"every thread of a {unit} must reach {what} together, so {hint}",
            kernel.source_file, barrier.line,
        )


def waits_on_memory(kernel: ir.Kernel) -> bool:
    """Whether some ``while`` loop may wait for memory that other work-items write (a spin): its
    condition, or the condition of an ``if`` around a ``break`` in it, depends on a load or an atomic.
    Such a kernel may wait for other work-groups, so the interpreter runs its work-groups one at a
    time (the forward-progress rule, docs/memory-model.md)."""
    deps: set[str] = set()
    while True:
        before = len(deps)
        for st in ir.walk_statements(kernel.body):
            if isinstance(st, ir.AtomicRMW) and st.result is not None:
                deps.add(st.result)
            elif isinstance(st, ir.Assign) and _reads_memory(st.value, deps):
                deps.add(st.target)
            elif isinstance(st, ir.Collective) and any(_reads_memory(a, deps) for a in st.args):
                deps.add(st.result)
        if len(deps) == before:
            break
    for st in ir.walk_statements(kernel.body):
        if isinstance(st, ir.While):
            if _reads_memory(st.cond, deps):
                return True
            exits = (x for x in ir.walk_statements(st.body) if isinstance(x, ir.If)
                     and any(isinstance(b, ir.Break) for b in ir.walk_statements(x.then + x.orelse)))
            if any(_reads_memory(x.cond, deps) for x in exits):
                return True
    return False


def _reads_memory(e: ir.Expr, deps: set[str]) -> bool:
    return any(isinstance(x, ir.Load) or (isinstance(x, ir.Var) and x.name in deps) for x in _walk_expr(e))


def _collective_name(c: ir.Collective) -> str:
    """How a collective is spelled in kernel source."""
    if c.op in ir.SHUFFLE_OPS:
        return c.op
    return f"{c.scope}_{c.op}"


def walk_expressions(body: tuple[ir.Stmt, ...]) -> Iterator[ir.Expr]:
    """Every expression of a body, sub-expressions included."""
    for stmt in ir.walk_statements(body):
        for expr in ir.statement_expressions(stmt):
            yield from _walk_expr(expr)




def _walk_expr(expr: ir.Expr) -> Iterator[ir.Expr]:
    yield expr
    for child in ir.children(expr):
        yield from _walk_expr(child)


def required_features(kernel: ir.Kernel) -> frozenset[Feature]:
    """The device features a kernel needs: a backend lacking one refuses it by that name."""
    features = {Feature.KERNELS}
    types = {p.type for p in kernel.params} | {t for _, t in kernel.variables}
    types |= {a.type for a in kernel.arrays}
    for expr in walk_expressions(kernel.body):
        types.add(expr.type)
        if isinstance(expr, ir.ThreadIndex) and expr.dim > 0:
            features.add(Feature.MULTI_DIM)
        if isinstance(expr, ir.ThreadIndex) and expr.kind in ir.SUBGROUP_INDICES:
            features.add(Feature.SUBGROUPS)
    for stmt in ir.walk_statements(kernel.body):
        if isinstance(stmt, ir.AtomicRMW):
            features.add(Feature.ATOMICS)
            types.add(stmt.type)
        elif isinstance(stmt, ir.Barrier):
            features.add(Feature.BARRIERS)
        elif isinstance(stmt, ir.Collective):
            features.add(Feature.SUBGROUPS)
            types.add(stmt.type)
    if ScalarType.F64 in types:
        features.add(Feature.F64)
    if types & {ScalarType.I64, ScalarType.U64}:
        features.add(Feature.I64)
    if ScalarType.F16 in types:
        features.add(Feature.F16)
    if ScalarType.BF16 in types:
        features.add(Feature.BF16)
    if any(t.is_narrow and t.is_int for t in types):
        features.add(Feature.SMALL_INTS)
    spaces = {a.space for a in kernel.arrays}
    if "shared" in spaces:
        features.add(Feature.SHARED_MEMORY)
    if "local" in spaces:
        features.add(Feature.LOCAL_ARRAYS)
    return frozenset(features)
