"""Loop fission at barriers: a kernel body as phases run by all work-items in turn, and what lives across them.

A barrier is a phase boundary; control flow around one (uniform, by
:func:`hal.kernel.analysis.check_barriers`) and interchangeable uniform ``for`` loops run once
per work-group. The plan also says where each scalar lives (per work-item array, per-group
scalar, rematerialised, or phase-local) so the emitter only prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from . import ir
from ._cinterchange import interchangeable, lane_varying
from .analysis import Uniformity, uniform_control


@dataclass
class _Phase:
    """Barrier-free statements run by every work-item before the next node starts."""

    stmts: tuple[ir.Stmt, ...]
    index: int
    in_loop: bool


@dataclass
class _GroupIf:
    stmt: ir.If
    then: list[_Node]
    orelse: list[_Node]


@dataclass
class _GroupLoop:
    stmt: ir.For | ir.While
    body: list[_Node]
    depth: int
    """1 for an outermost group-level loop."""
    lanes: bool = False
    """A lane-varying ``for`` (see :mod:`hal.kernel._cinterchange`): work-items run masked trips."""


@dataclass
class _GroupReduce:
    """A work-group reduction: the phase before it stored each work-item's value in scratch
    segment ``index``; this combines them in the IR's tree order and gives every work-item the result."""

    stmt: ir.Collective
    index: int


_Node = _Phase | _GroupIf | _GroupLoop | _GroupReduce


def _has(body: Iterable[ir.Stmt], kinds: tuple[type, ...]) -> bool:
    return any(isinstance(s, kinds) for s in ir.walk_statements(tuple(body)))


def _is_group_collective(s: ir.Stmt) -> bool:
    return isinstance(s, ir.Collective) and s.scope == "group"


def _barrier_like(body: Iterable[ir.Stmt]) -> bool:
    """Whether ``body`` holds a barrier or a work-group collective (a barrier as well)."""
    return any(isinstance(s, ir.Barrier) or _is_group_collective(s) for s in ir.walk_statements(tuple(body)))


@dataclass
class _Plan:
    """Which work-group-level structure a kernel gets, and where each scalar lives."""

    nodes: list[_Node]
    phases: list[_Phase] = field(default_factory=list)
    group_scalars: set[str] = field(default_factory=set)
    """Loop variables of group-level ``for`` loops that nothing else assigns: one per work-group."""
    arrays: set[str] = field(default_factory=set)
    """Scalars live across phases: one element per work-item."""
    local_rows: set[str] = field(default_factory=set)
    """``hal.local`` arrays live across phases: one row per work-item."""
    state: bool = False
    """Whether work-items carry a state byte (some left a phase early)."""
    reductions: list[_GroupReduce] = field(default_factory=list)
    """Every work-group reduction, in source order (each has a scratch segment of its own)."""
    remat: dict[str, ir.Expr] = field(default_factory=dict)
    """Scalars assigned once, at the top level, from thread indices and constants: recomputed where
    used instead of stored (so the vectoriser sees ``lid = local_id(0)`` as the loop index)."""

    def group_depth(self, phase: _Phase) -> int:
        """How many group-level loops enclose ``phase`` (its break/continue codes name the innermost)."""
        depth = 0

        def find(nodes: list[_Node], d: int) -> bool:
            nonlocal depth
            for n in nodes:
                if n is phase:
                    depth = d
                    return True
                if isinstance(n, _GroupIf) and (find(n.then, d) or find(n.orelse, d)):
                    return True
                if isinstance(n, _GroupLoop) and find(n.body, n.depth):
                    return True
            return False
        find(self.nodes, 0)
        return depth


def _plan(kernel: ir.Kernel, params: dict[str, ir.Param], decls: dict[str, ir.ArrayDecl],
          assigned: set[str]) -> _Plan:
    """The phases of ``kernel`` and where each of its scalars and local arrays lives."""
    return _Planner(kernel, params, decls, assigned).plan()


class _Planner:
    """The passes that build a :class:`_Plan`, over the kernel tables the emitter also keeps."""

    def __init__(self, kernel: ir.Kernel, params: dict[str, ir.Param], decls: dict[str, ir.ArrayDecl],
                 assigned: set[str]) -> None:
        self.k = kernel
        self.uniform: Uniformity = uniform_control(kernel)
        self.params, self.decls, self.assigned = params, decls, assigned
        self.types = dict(kernel.variables)

    def _group_level(self, s: ir.Stmt) -> bool:
        return _barrier_like((s,)) or interchangeable(s, self.uniform, self.types)

    def _split(self, body: tuple[ir.Stmt, ...], depth: int, plan: _Plan) -> list[_Node]:
        nodes: list[_Node] = []
        run: list[ir.Stmt] = []

        def flush() -> None:
            if run:
                phase = _Phase(tuple(run), len(plan.phases), depth > 0)
                plan.phases.append(phase)
                nodes.append(phase)
                run.clear()

        for s in body:
            if isinstance(s, ir.Barrier):
                flush()
            elif isinstance(s, ir.Collective) and s.scope == "group":
                run.append(s)  # the phase stores each work-item's value; the node combines them
                flush()
                reduce = _GroupReduce(s, len(plan.reductions))
                plan.reductions.append(reduce)
                nodes.append(reduce)
            elif isinstance(s, ir.If) and self._group_level(s):
                flush()
                nodes.append(_GroupIf(s, self._split(s.then, depth, plan), self._split(s.orelse, depth, plan)))
            elif isinstance(s, (ir.For, ir.While)) and self._group_level(s):
                flush()
                lanes = isinstance(s, ir.For) and lane_varying(s, self.uniform, self.types)
                nodes.append(_GroupLoop(s, self._split(s.body, depth + 1, plan), depth + 1, lanes))
            else:
                run.append(s)
        flush()
        return nodes

    def plan(self) -> _Plan:
        plan = _Plan([])
        plan.nodes = self._split(self.k.body, 0, plan)
        single = len(plan.nodes) == 1 and isinstance(plan.nodes[0], _Phase)
        if single:
            return plan
        plan.remat = self._rematerialisable()
        group_fors = [n.stmt.var for n in _walk_nodes(plan.nodes)
                      if isinstance(n, _GroupLoop) and isinstance(n.stmt, ir.For) and not n.lanes]
        phase_defs: set[str] = set()
        for phase in plan.phases:
            phase_defs |= _defined(phase.stmts)
        plan.group_scalars = {v for v in group_fors if v not in phase_defs and v not in self.params}
        group_reads: set[str] = set()
        for n in _walk_nodes(plan.nodes):
            if isinstance(n, _GroupIf):
                group_reads |= _reads_expr(n.stmt.cond)
            elif isinstance(n, _GroupLoop) and isinstance(n.stmt, ir.While):
                group_reads |= _reads_expr(n.stmt.cond)
            elif isinstance(n, _GroupLoop) and isinstance(n.stmt, ir.For):
                group_reads |= _reads_expr(n.stmt.start, n.stmt.stop, n.stmt.step)
                if n.stmt.var not in plan.group_scalars:
                    group_reads.add(n.stmt.var)
        uses: dict[str, list[_Phase]] = {}
        for phase in plan.phases:
            for name in _referenced(phase.stmts):
                uses.setdefault(name, []).append(phase)
        for name, phases in uses.items():
            if name in plan.group_scalars or name in plan.remat:
                continue
            if name in self.decls:
                if self.decls[name].space == "local" and (len(phases) > 1 or phases[0].in_loop):
                    plan.local_rows.add(name)
                continue
            if name in self.params and name not in self.assigned:
                continue
            killed = all(_killed(p.stmts, name) for p in phases)
            if not killed and (len(phases) > 1 or phases[0].in_loop or name in self.params):
                plan.arrays.add(name)
        plan.arrays |= {v for v in group_reads if v not in plan.group_scalars and v not in plan.remat
                        and (v not in self.params or v in self.assigned)}
        plan.state = any(_escapes(p.stmts) for p in plan.phases)
        plan.arrays |= {r.stmt.result for r in plan.reductions}  # written by the group, read by work-items
        return plan

    def _rematerialisable(self) -> dict[str, ir.Expr]:
        counts: dict[str, int] = {}
        for s in ir.walk_statements(self.k.body):
            for name in _defined((s,)) if not isinstance(s, (ir.If, ir.For, ir.While)) else (
                    (s.var,) if isinstance(s, ir.For) else ()):
                counts[name] = counts.get(name, 0) + 1
        top = {s.target: s.value for s in self.k.body if isinstance(s, ir.Assign)}
        remat: dict[str, ir.Expr] = {}
        grown = True
        while grown:
            grown = False
            for name, value in top.items():
                if name in remat or counts.get(name) != 1 or name in self.params:
                    continue
                if _pure(value, lambda v: v in remat or (v in self.params and v not in self.assigned)):
                    remat[name] = value
                    grown = True
        return remat


# --------------------------------------------------------------- IR queries
def _walk_nodes(nodes: list[_Node]) -> Iterable[_Node]:
    for n in nodes:
        yield n
        if isinstance(n, _GroupIf):
            yield from _walk_nodes(n.then)
            yield from _walk_nodes(n.orelse)
        elif isinstance(n, _GroupLoop):
            yield from _walk_nodes(n.body)


def _reads_expr(*exprs: ir.Expr) -> set[str]:
    """Variables and buffers an expression reads."""
    out: set[str] = set()
    stack = list(exprs)
    while stack:
        e = stack.pop()
        if isinstance(e, ir.Var):
            out.add(e.name)
        elif isinstance(e, ir.Load):
            out.add(e.buffer)
        stack.extend(ir.children(e))
    return out


def _pure(e: ir.Expr, var_ok: Callable[[str], bool]) -> bool:
    """Whether ``e`` reads no memory and only variables ``var_ok`` accepts."""
    if isinstance(e, ir.Load):
        return False
    if isinstance(e, ir.Var) and not var_ok(e.name):
        return False
    return all(_pure(c, var_ok) for c in ir.children(e))


def _referenced(body: tuple[ir.Stmt, ...]) -> set[str]:
    """Every scalar and array name a body reads or writes."""
    out: set[str] = set()
    for s in ir.walk_statements(body):
        out |= _reads_expr(*ir.statement_expressions(s))
        if isinstance(s, ir.Assign):
            out.add(s.target)
        elif isinstance(s, ir.Collective):
            out.add(s.result)
        elif isinstance(s, (ir.Store, ir.AtomicRMW)):
            out.add(s.buffer)
            if isinstance(s, ir.AtomicRMW) and s.result is not None:
                out.add(s.result)
        elif isinstance(s, ir.For):
            out.add(s.var)
    return out


def _defined(body: tuple[ir.Stmt, ...]) -> set[str]:
    out: set[str] = set()
    for s in ir.walk_statements(body):
        if isinstance(s, ir.Assign):
            out.add(s.target)
        elif isinstance(s, ir.AtomicRMW) and s.result is not None:
            out.add(s.result)
        elif isinstance(s, ir.Collective):
            out.add(s.result)
        elif isinstance(s, ir.For):
            out.add(s.var)
    return out


def _killed(body: tuple[ir.Stmt, ...], name: str) -> bool:
    """Whether ``name`` is written before it is read on every path of ``body`` (so the phase needs no
    value from elsewhere): its first top-level mention assigns it without reading it."""
    for i, s in enumerate(body):
        if name not in _referenced((s,)):
            continue
        if isinstance(s, ir.Assign) and s.target == name:
            return name not in _reads_expr(s.value)
        if isinstance(s, ir.For) and s.var == name:
            return (name not in _reads_expr(s.start, s.stop, s.step)
                    and all(name not in _referenced((t,)) for t in body[i + 1:]))
        return False
    return True


def _escapes(body: tuple[ir.Stmt, ...]) -> bool:
    """Whether a break/continue/return in ``body`` leaves it (not counting loops inside it)."""
    for s in body:
        if isinstance(s, (ir.Break, ir.Continue, ir.Return)):
            return True
        if isinstance(s, ir.If) and (_escapes(s.then) or _escapes(s.orelse)):
            return True
        if isinstance(s, (ir.For, ir.While)) and _has(s.body, (ir.Return,)):
            return True
    return False
