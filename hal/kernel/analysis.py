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




@dataclass(frozen=True)
class _Escape:
    """Reasons a block left early under thread-dependent control (None: it did not)."""

    ret: str | None = None
    brk: str | None = None
    cont: str | None = None

    def merge(self, other: _Escape) -> _Escape:
        return _Escape(self.ret or other.ret, self.brk or other.brk, self.cont or other.cont)

    @property
    def any(self) -> str | None:
        return self.ret or self.brk or self.cont


@dataclass
class _Pass:
    """One walk over the kernel; repeated until the non-uniform set stops growing."""

    nonuniform: set[str]
    changed: bool = False
    barriers: dict[int, tuple[ir.Barrier | ir.Collective, str]] = field(default_factory=dict)

    def mark(self, name: str) -> None:
        if name not in self.nonuniform:
            self.nonuniform.add(name)
            self.changed = True

    def block(self, body: tuple[ir.Stmt, ...], div: str | None) -> _Escape:
        escape = _Escape()
        for stmt in body:
            left = self.stmt(stmt, div)
            escape = escape.merge(left)
            div = div or left.any
        return escape

    def stmt(self, stmt: ir.Stmt, div: str | None) -> _Escape:
        if isinstance(stmt, ir.Assign):
            if div or not _is_uniform(stmt.value, self.nonuniform):
                self.mark(stmt.target)
        elif isinstance(stmt, ir.AtomicRMW):
            if stmt.result is not None:
                self.mark(stmt.result)
        elif isinstance(stmt, ir.Barrier):
            if div:
                self.barriers.setdefault(id(stmt), (stmt, div))
        elif isinstance(stmt, ir.Collective):
            if div:
                self.barriers.setdefault(id(stmt), (stmt, div))
            # a group reduction gives every work-item one value; anything a subgroup exchanges may differ
            if div or stmt.scope == "subgroup":
                self.mark(stmt.result)
        elif isinstance(stmt, ir.Return):
            return _Escape(ret=div and f"some threads returned at line {stmt.line} ({div})")
        elif isinstance(stmt, ir.Break):
            return _Escape(brk=div and f"some threads left the loop at line {stmt.line} ({div})")
        elif isinstance(stmt, ir.Continue):
            return _Escape(cont=div and f"some threads skipped ahead at line {stmt.line} ({div})")
        elif isinstance(stmt, ir.If):
            inner = div or self.reason((stmt.cond,), "if condition", stmt.line)
            return self.block(stmt.then, inner).merge(self.block(stmt.orelse, inner))
        elif isinstance(stmt, ir.For):
            inner = div or self.reason((stmt.start, stmt.stop, stmt.step), "loop bounds", stmt.line)
            return self.loop(stmt.body, inner, stmt.var)
        elif isinstance(stmt, ir.While):
            return self.loop(stmt.body, div or self.reason((stmt.cond,), "loop condition", stmt.line))
        return _Escape()

    def loop(self, body: tuple[ir.Stmt, ...], div: str | None, var: str | None = None) -> _Escape:
        """A loop absorbs break/continue; a thread-dependent exit makes later iterations divergent."""
        escape = self.block(body, div)
        exit_reason = escape.ret or escape.brk
        if div is None and exit_reason:
            div = exit_reason
            self.block(body, div)
        if var is not None and div:
            self.mark(var)
        return _Escape(ret=escape.ret)

    def reason(self, exprs: tuple[ir.Expr, ...], what: str, line: int) -> str | None:
        if all(_is_uniform(e, self.nonuniform) for e in exprs):
            return None
        return f"the {what} at line {line} depends on the thread"


def uniform_control(kernel: ir.Kernel) -> Uniformity:
    """Work-group uniformity of every variable and of the control flow around each barrier.

    Uniform: constants, scalar parameters, ``group_id``/``num_groups``/
    ``local_size``/``global_size`` and variables only ever assigned uniform
    values under uniform control. Not uniform: ``global_id``/``local_id``,
    loads, atomic results and anything derived from them.
    """
    nonuniform: set[str] = set()
    while True:
        walk = _Pass(nonuniform)
        walk.block(kernel.body, None)
        if not walk.changed:
            return Uniformity(frozenset(nonuniform), tuple(walk.barriers.values()))


def check_barriers(kernel: ir.Kernel) -> None:
    """Raise CompileError at the first barrier (or collective) that not every thread of a work-group reaches."""
    divergent = uniform_control(kernel).divergent_barriers
    if divergent:
        barrier, reason = min(divergent, key=lambda item: item[0].line)
        what = "hal.barrier()" if isinstance(barrier, ir.Barrier) else f"hal.{_collective_name(barrier)}()"
        raise CompileError(
            f"{'barrier' if isinstance(barrier, ir.Barrier) else what} in divergent control flow: {reason}; "
            f"every thread of a work-group must reach {what} together, so move it out of the thread-dependent "
            "if/loop (compute the condition first, then let all threads reach it)",
            kernel.source_file, barrier.line,
        )


def _collective_name(c: ir.Collective) -> str:
    """How a collective is spelled in kernel source."""
    if c.op.startswith("shuffle"):
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
