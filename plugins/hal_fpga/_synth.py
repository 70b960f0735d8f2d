"""Synthesis model: kernel IR -> pipelines (depth, II) and fabric use, as an HLS tool would build them.

* Structure. The work-items of a launch form the outermost loop (the
  "work-item loop"); every ``for``/``while`` is a loop inside it. A loop whose
  body holds no other loop is pipelined (HLS pipelines innermost loops); a loop
  that holds loops runs its iterations one after another, each costing its
  straight-line latency plus its inner loops. ``if``/``else`` is if-converted:
  both sides are built and the later one sets the latency.
* Depth is the ASAP schedule of one iteration over the latency table of
  :mod:`._ops`: each operation starts when its operands are ready. A barrier
  (and, outside pipelines, a loop) ends one phase; the next starts after it.
* Collectives: subgroups are single work-items (``DeviceInfo.subgroup_size`` 1), so
  ``hal.shuffle`` and ``hal.subgroup_reduce_*`` are wires (their value as is). A
  ``hal.group_reduce_*`` is a barrier (it ends a phase) whose result is ready one
  operator latency after it: the work-items' values stream through one accumulator
  as they are produced (the interpreter's tree order fixes the result, not the timing).
* II = max(1, II_resource, II_recurrence). II_resource: an m_axi port (one per
  pointer argument) reads one element and writes one element per cycle; a BRAM
  (hal.shared / hal.local array) has two ports. II_recurrence: the longest path
  from a variable's value at the start of an iteration to its new value (an f32
  accumulator: the adder's latency), and from the first load of an array to its
  last store when the iteration may write what a later iteration reads (every
  access of the array not at one same index that moves with the loop variable).
  Work-items are independent, so the work-item loop has no recurrence.
* Cycles of a pipeline entered once for ``trips`` iterations: ``depth + II *
  (trips - 1)`` (UG1399); unpipelined: ``depth * trips``.
* Resources: one operator instance per IR operation (no sharing), loop control,
  one m_axi adapter per pointer argument, BRAM36 blocks per array.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from hal.backend import CompileError, UnsupportedError
from hal.kernel import ir

from ._ops import (
    BRAM36_BITS,
    KERNEL_CONTROL,
    LOOP_CONTROL,
    M_AXI,
    M_AXI_BRAM,
    MEMORY,
    Cost,
    cast_cost,
    op_cost,
    type_class,
)
from ._presets import RESOURCES

_NEG = float("-inf")
_CMP = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})


@dataclass(frozen=True)
class Pipeline:
    """One loop as built: the work-item loop (``line`` 0) or a ``for``/``while`` of the kernel."""

    name: str
    kind: str
    """``"work-items"``, ``"for"`` or ``"while"``."""
    line: int
    pipelined: bool
    """False when the body holds loops: iterations then run one after another."""
    depth: int
    """Pipelined: latency of one iteration. Otherwise: straight-line latency of one iteration, inner loops excluded."""
    ii: int
    ii_resource: int
    ii_recurrence: int
    ii_reason: str
    trips: int | None
    """Iterations per entry when the bounds are constants, else None."""
    trips_expr: str
    inner: tuple[int, ...]
    """Lines of the loops directly inside."""
    lines: frozenset[int]
    """Source lines of the header and of every statement inside (how the tracer tells loops apart)."""

    def cycles(self, trips: int) -> int:
        """Cycles of one entry with ``trips`` iterations, inner loops excluded."""
        if trips <= 0:
            return 0
        return self.depth + self.ii * (trips - 1) if self.pipelined else self.depth * trips


@dataclass(frozen=True)
class Design:
    """What synthesis produced for one kernel."""

    kernel: str
    workitems: Pipeline
    loops: tuple[Pipeline, ...]
    """Every loop, in source order."""
    resources: dict[str, int]
    operators: tuple[tuple[str, int, Cost], ...]
    """``("mul f64", count, cost of one)``, most DSP-hungry first."""
    arrays: tuple[tuple[str, str, int], ...]
    """``(name, space, BRAM36 blocks)`` of each array, m_axi burst buffers included."""
    barriers: bool

    def loop(self, line: int) -> Pipeline:
        return next(p for p in self.loops if p.line == line)

    def static_cycles(self, p: Pipeline) -> int | None:
        """Cycles of one entry of ``p`` with its inner loops when every trip count is a constant."""
        if p.trips is None:
            return None
        total = p.cycles(p.trips)
        for line in p.inner:
            inner = self.static_cycles(self.loop(line))
            if inner is None:
                return None
            total += p.trips * inner
        return total


# --------------------------------------------------------------------- schedule
class _Timeline:
    """ASAP schedule of one body: when each variable's value and each side effect is ready.

    ``base`` is when values from before the body (or the current phase) are ready:
    0 for depth; -inf when tracing the path from one seeded variable (recurrences).
    """

    def __init__(self, base: float, seeds: dict[str, float] | None = None) -> None:
        self.base = base
        self.end = base
        self.ready: dict[str, float] = dict(seeds or {})
        self.first_load: dict[str, float] = {}
        self.last_store: dict[str, float] = {}

    def depth(self) -> float:
        return max([self.end, *self.ready.values()])

    def expr(self, e: ir.Expr) -> float:
        if isinstance(e, (ir.Const, ir.ThreadIndex)):
            return self.base
        if isinstance(e, ir.Var):
            return max(self.ready.get(e.name, self.base), self.base)
        if isinstance(e, ir.Load):
            issue = self.expr(e.index)
            self.first_load[e.buffer] = min(self.first_load.get(e.buffer, math.inf), issue)
            return issue + MEMORY.latency
        return max((self.expr(c) for c in ir.children(e)), default=self.base) + expr_cost(e).latency

    def block(self, body: tuple[ir.Stmt, ...], pred: float) -> None:
        for s in body:
            self.stmt(s, pred)

    def stmt(self, s: ir.Stmt, pred: float) -> None:
        if isinstance(s, ir.Assign):
            self.ready[s.target] = self.expr(s.value)
        elif isinstance(s, ir.Store):
            done = max(self.expr(s.index), self.expr(s.value), pred) + MEMORY.latency
            self.last_store[s.buffer] = max(self.last_store.get(s.buffer, _NEG), done)
            self.end = max(self.end, done)
        elif isinstance(s, ir.If):
            self._if(s, max(pred, self.expr(s.cond)))
        elif isinstance(s, (ir.For, ir.While)):
            header = (s.start, s.stop, s.step) if isinstance(s, ir.For) else (s.cond,)
            self.end = max(self.end, pred, *(self.expr(x) for x in header))
            self._new_phase()
        elif isinstance(s, ir.Barrier):
            self._new_phase()
        elif isinstance(s, ir.Collective):
            ready = max(self.expr(a) for a in s.args)
            if s.scope == "group":
                self.end = max(self.end, ready)
                self._new_phase()
                ready = self.base + op_cost(s.op.removeprefix("reduce_"), s.type).latency
            self.ready[s.result] = ready
        elif isinstance(s, (ir.Break, ir.Continue, ir.Return)):
            self.end = max(self.end, pred)
        elif isinstance(s, ir.AtomicRMW):
            raise _atomics(s)

    def _if(self, s: ir.If, cond: float) -> None:
        before, base = dict(self.ready), self.base
        self.block(s.then, cond)
        then, then_base = self.ready, self.base
        self.ready, self.base = dict(before), base
        self.block(s.orelse, cond)
        merged = self.ready
        for name in set(then) | set(merged):
            if then.get(name) != before.get(name) or merged.get(name) != before.get(name):
                merged[name] = max(then.get(name, then_base), merged.get(name, self.base), cond)
        self.base = max(self.base, then_base)

    def _new_phase(self) -> None:
        """A loop or barrier: what follows starts after everything before it."""
        self.base = self.end = self.depth()
        self.ready = {}




def expr_cost(e: ir.Expr) -> Cost:
    """The operator an expression node instantiates (a zero cost for leaves)."""
    if isinstance(e, ir.Binary):
        return op_cost(e.op, e.lhs.type if e.op in _CMP else e.type)
    if isinstance(e, ir.Unary):
        return op_cost(e.op, e.type)
    if isinstance(e, ir.Call):
        return op_cost(e.func, e.args[0].type if e.func in ("abs", "min", "max") else ir.call_type(e))
    if isinstance(e, ir.Select):
        return op_cost("select", e.type)
    if isinstance(e, ir.Cast):
        return cast_cost(e.value.type, e.type)
    if isinstance(e, ir.Load):
        return MEMORY
    return Cost(0)


def _op_name(e: ir.Expr) -> str | None:
    if isinstance(e, ir.Binary):
        return f"{e.op} {type_class(e.lhs.type if e.op in _CMP else e.type)}"
    if isinstance(e, ir.Unary):
        return f"{e.op} {type_class(e.type)}"
    if isinstance(e, ir.Call):
        return f"{e.func} {type_class(e.args[0].type)}"
    if isinstance(e, ir.Select):
        return f"select {type_class(e.type)}"
    if isinstance(e, ir.Cast):
        return f"cast {type_class(e.value.type)}->{type_class(e.type)}"
    if isinstance(e, ir.Load):
        return f"load {e.space}"
    return None


def _atomics(s: ir.AtomicRMW) -> UnsupportedError:
    return UnsupportedError(
        f"hal.atomic_{s.op} (line {s.line}) cannot be synthesised: an HLS kernel's m_axi ports have no "
        "atomic read-modify-write, and this backend does not declare 'atomics'; accumulate per work-item "
        "and reduce in a second kernel instead", feature="atomics")


# ------------------------------------------------------------------ traversal
def _exprs_of(s: ir.Stmt) -> tuple[ir.Expr, ...]:
    if isinstance(s, ir.AtomicRMW):
        raise _atomics(s)
    return ir.statement_expressions(s)


def _walk_expr(e: ir.Expr) -> Iterator[ir.Expr]:
    yield e
    for c in ir.children(e):
        yield from _walk_expr(c)


def _shallow(body: tuple[ir.Stmt, ...]) -> Iterator[ir.Stmt]:
    """Statements of a body and its ifs, not descending into loops (their headers included)."""
    for s in body:
        yield s
        if isinstance(s, ir.If):
            yield from _shallow(s.then)
            yield from _shallow(s.orelse)


def _accesses(body: tuple[ir.Stmt, ...]) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]],
                                                   dict[str, set[ir.Expr]]]:
    """Loads and stores per ``(space, buffer)`` of one iteration, and the index expressions of each buffer."""
    loads: Counter[tuple[str, str]] = Counter()
    stores: Counter[tuple[str, str]] = Counter()
    indices: dict[str, set[ir.Expr]] = {}
    for s in _shallow(body):
        if isinstance(s, ir.Store):
            stores[s.space, s.buffer] += 1
            indices.setdefault(s.buffer, set()).add(s.index)
        for root in _exprs_of(s):
            for e in _walk_expr(root):
                if isinstance(e, ir.Load):
                    loads[e.space, e.buffer] += 1
                    indices.setdefault(e.buffer, set()).add(e.index)
    return loads, stores, indices


def _mentions(e: ir.Expr, name: str) -> bool:
    return any(isinstance(x, ir.Var) and x.name == name for x in _walk_expr(e))


def _has_loop(body: tuple[ir.Stmt, ...]) -> bool:
    return any(isinstance(s, (ir.For, ir.While)) for s in ir.walk_statements(body))


# ------------------------------------------------------------------ pipelines
@dataclass
class _Builder:
    pipeline_loops: bool
    loops: list[Pipeline] = field(default_factory=list)

    def build(self, kind: str, line: int, body: tuple[ir.Stmt, ...], header: ir.Stmt | None) -> Pipeline:
        inner = tuple(s.line for s in _shallow(body) if isinstance(s, (ir.For, ir.While)))
        pipelined = not _has_loop(body)
        cond = header.cond if isinstance(header, ir.While) else None
        timeline = _Timeline(0.0)
        pred = timeline.expr(cond) if cond is not None else 0.0
        timeline.block(body, pred)
        depth = math.ceil(timeline.depth())
        if pipelined:
            depth = max(1, depth)
        ii_res, res_reason = _ii_resource(body) if pipelined else (1, "")
        ii_rec, rec_reason = (_ii_recurrence(body, header, timeline) if pipelined and kind != "work-items"
                              else (1, ""))
        ii = max(1, ii_res, ii_rec)
        reason = res_reason if ii_res >= ii_rec else rec_reason
        if not pipelined:
            ii, reason = depth, "not pipelined: the body holds loops"
        elif not self.pipeline_loops:
            ii, reason = depth, "pipelining disabled (pipeline=False)"
        trips, trips_expr = _trips(header)
        lines = frozenset({line} | {s.line for s in ir.walk_statements(body)})
        var = f" {header.var}" if isinstance(header, ir.For) else ""
        name = "work-items" if kind == "work-items" else f"{kind}{var} (line {line})"
        return Pipeline(name, kind, line, pipelined, depth, ii, ii_res, ii_rec, reason or "-", trips,
                        trips_expr, inner, lines)

    def walk(self, body: tuple[ir.Stmt, ...]) -> None:
        for s in ir.walk_statements(body):
            if isinstance(s, (ir.For, ir.While)):
                self.loops.append(self.build(type(s).__name__.lower(), s.line, s.body, s))


def _ii_resource(body: tuple[ir.Stmt, ...]) -> tuple[int, str]:
    loads, stores, _ = _accesses(body)
    worst, reason = 1, ""
    for key in set(loads) | set(stores):
        space, buffer = key
        if space == "global":
            ii = max(loads[key], stores[key])
            why = f"'{buffer}': {loads[key]} loads, {stores[key]} stores per iteration on one m_axi port"
        else:
            ii = math.ceil((loads[key] + stores[key]) / 2)
            why = f"'{buffer}': {loads[key] + stores[key]} accesses per iteration on a dual-port BRAM"
        if ii > worst:
            worst, reason = ii, why
    return worst, reason


def _ii_recurrence(body: tuple[ir.Stmt, ...], header: ir.Stmt | None, depth: _Timeline) -> tuple[int, str]:
    loop_var = header.var if isinstance(header, ir.For) else None
    cond = header.cond if isinstance(header, ir.While) else None
    worst, reason = 1, ""
    carried = {s.target for s in ir.walk_statements(body) if isinstance(s, ir.Assign)} - {loop_var}
    for name in sorted(carried):
        path = _Timeline(_NEG, {name: 0.0})
        first_test = path.expr(cond) if cond is not None else _NEG
        path.block(body, _NEG)
        length = path.ready.get(name, _NEG)
        if first_test > _NEG:  # the next iteration's test waits for the new value
            length = max(length, path.expr(cond) - first_test)  # type: ignore[arg-type]
        if length > worst:
            worst, reason = math.ceil(length), f"loop-carried dependence on '{name}' ({math.ceil(length)} cycles)"
    _, stores, indices = _accesses(body)
    for _, buffer in stores:
        first = depth.first_load.get(buffer)
        if first is None:
            continue
        same = len(indices[buffer]) == 1
        if same and loop_var is not None and _mentions(next(iter(indices[buffer])), loop_var):
            continue
        length = math.ceil(depth.last_store[buffer] - first)
        if length > worst:
            worst, reason = length, f"memory dependence on '{buffer}': a store may feed a later iteration's load"
    return worst, reason


def _trips(header: ir.Stmt | None) -> tuple[int | None, str]:
    if isinstance(header, ir.For):
        start, stop, step = header.start, header.stop, header.step
        if isinstance(start, ir.Const) and isinstance(stop, ir.Const) and isinstance(step, ir.Const) and step.value:
            trips = len(range(int(start.value), int(stop.value), int(step.value)))
            return trips, str(trips)
        if isinstance(header.start, ir.Const) and header.start.value == 0 and \
                isinstance(header.step, ir.Const) and header.step.value == 1:
            return None, text(header.stop)
        return None, f"len(range({text(header.start)}, {text(header.stop)}, {text(header.step)}))"
    if isinstance(header, ir.While):
        return None, "?"
    return None, "grid x block"


_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%", "pow": "**",
            "bitand": "&", "bitor": "|", "bitxor": "^", "shl": "<<", "shr": ">>", "eq": "==", "ne": "!=",
            "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "and": "and", "or": "or"}


def text(e: ir.Expr) -> str:
    """Python-like source of an expression (symbolic trip counts in reports)."""
    if isinstance(e, ir.Const):
        return repr(e.value)
    if isinstance(e, ir.Var):
        return e.name
    if isinstance(e, ir.ThreadIndex):
        return f"{e.kind}({e.dim})"
    if isinstance(e, ir.Load):
        return f"{e.buffer}[{text(e.index)}]"
    if isinstance(e, ir.Binary):
        return f"({text(e.lhs)} {_SYMBOLS[e.op]} {text(e.rhs)})"
    if isinstance(e, ir.Unary):
        return f"{ {'neg': '-', 'not': 'not ', 'invert': '~'}[e.op]}{text(e.operand)}"
    if isinstance(e, ir.Cast):
        return f"{e.type.value}({text(e.value)})"
    if isinstance(e, ir.Call):
        return f"{e.func}({', '.join(text(a) for a in e.args)})"
    if isinstance(e, ir.Select):
        return f"({text(e.if_true)} if {text(e.cond)} else {text(e.if_false)})"
    return "?"


# ------------------------------------------------------------------ resources
def _resources(kernel: ir.Kernel, loops: int) -> tuple[dict[str, int], tuple[tuple[str, int, Cost], ...],
                                                       tuple[tuple[str, str, int], ...]]:
    ops: Counter[str] = Counter()
    costs: dict[str, Cost] = {}
    for s in ir.walk_statements(kernel.body):
        if isinstance(s, ir.Store):
            ops[f"store {s.space}"] += 1
            costs[f"store {s.space}"] = MEMORY
        for root in _exprs_of(s):
            for e in _walk_expr(root):
                name = _op_name(e)
                if name is not None:
                    ops[name] += 1
                    costs[name] = expr_cost(e)
    pointers = [p for p in kernel.params if p.pointer]
    fixed = [(KERNEL_CONTROL, 1), (LOOP_CONTROL, loops), (M_AXI, len(pointers))]
    fixed += [(costs[name], n) for name, n in ops.items()]
    used = {
        "LUT": sum(c.lut * n for c, n in fixed),
        "FF": sum(c.ff * n for c, n in fixed),
        "DSP": sum(c.dsp * n for c, n in fixed),
    }
    arrays = [(p.name, "global", M_AXI_BRAM) for p in pointers]
    arrays += [(a.name, a.space, math.ceil(a.size * a.type.bits / BRAM36_BITS)) for a in kernel.arrays]
    used["BRAM"] = sum(n for _, _, n in arrays)
    operators = sorted(((name, n, costs[name]) for name, n in ops.items()),
                       key=lambda item: (-item[1] * item[2].dsp, -item[1] * item[2].lut, item[0]))
    return {k: used[k] for k in RESOURCES}, tuple(operators), tuple(arrays)


# ------------------------------------------------------------------ entry point
def synthesize(kernel: ir.Kernel, pipeline: bool = True) -> Design:
    """The design HLS would build for ``kernel``; UnsupportedError names a construct it cannot build."""
    builder = _Builder(pipeline)
    workitems = builder.build("work-items", 0, kernel.body, None)
    builder.walk(kernel.body)
    resources, operators, arrays = _resources(kernel, len(builder.loops))
    barriers = any(isinstance(s, ir.Barrier) for s in ir.walk_statements(kernel.body))
    return Design(kernel.name, workitems, tuple(builder.loops), resources, operators, arrays, barriers)


def check_fit(kernel: ir.Kernel, design: Design, budget: dict[str, int], device: str, slots: int) -> None:
    """CompileError listing every resource over ``budget`` and by how much."""
    over = [f"{k} {design.resources[k]:,} of {budget[k]:,} (+{design.resources[k] - budget[k]:,} over)"
            for k in RESOURCES if design.resources[k] > budget[k]]
    if not over:
        return
    top = ", ".join(f"{n:,} x {name} ({n * cost.dsp:,} DSP, {n * cost.lut:,} LUT)"
                    for name, n, cost in design.operators[:3])
    where = "the whole device" if slots == 1 else f"one of {slots} reconfigurable slots"
    raise CompileError(
        f"kernel '{kernel.name}' does not fit {device} ({where}): {'; '.join(over)}. Largest operators: "
        f"{top or 'none'}. Do less per work-item (fewer operations, smaller hal.shared/hal.local arrays), "
        f"split the kernel, or use a larger part (hal.device('fpga', preset=...))"
        f"{' or fewer slots' if slots > 1 else ''}",
        kernel.source_file or None, kernel.source_line or None)
