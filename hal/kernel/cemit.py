"""IR -> C: one kernel as a C translation unit following ``hal_kernel_abi.h``.

A toolkit piece: the CPU backend compiles its output with gcc, and any vendor
whose device runs C (a CPU, a soft core, an HLS flow) may reuse it. The entry
point runs a range of work-groups; inside a group the work-items are loops.

* Without barriers the body is one loop nest over (lz, ly, lx) whose inner loop
  gcc vectorises across work-items (``#pragma GCC ivdep``: work-items of one
  phase never depend on each other except through races, which the language
  leaves undefined).
* Barriers split the body into *phases* (loop fission): each phase runs for all
  work-items before the next starts, so a barrier is simply the phase boundary.
  Control flow that contains a barrier is uniform (checked by
  :func:`hal.kernel.analysis.check_barriers`), so it runs once per work-group
  with its condition read from work-item 0. Scalars live across phases become
  per-work-item arrays; ``break``/``continue``/``return`` that leave a phase set
  a per-work-item state byte that later phases respect.
* A ``for`` loop with work-group-uniform bounds and a simple body is also run
  as its own phases (loop interchange), so that its body vectorises across
  work-items instead of running one work-item's loop after another's. Only
  race-free kernels can tell, and they cannot.

* Wrapping index arithmetic hides from gcc that ``base + k * 256 + lid`` steps by
  one per work-item (it emits gathers). So a kernel whose indices use ``+ - *``
  gets a second function, ``hal_run_fast``, computing those in plain int64, and
  ``hal_fits`` decides per launch, by interval arithmetic on the launch's dims
  and scalar arguments, whether any of them could wrap; if none can, both
  functions compute the same values and the fast one runs (see :class:`_Ranges`).

Semantics are the IR's (see :mod:`hal.kernel.ir`): wrapping integers (explicit
unsigned arithmetic, so build *without* ``-fwrapv``: plain signed arithmetic,
which the fast path only uses where it cannot overflow, then stays affine and
loads vectorise contiguously), floor ``//`` and ``%`` (numpy's algorithm for floats), shift
counts modulo the width, NaN-propagating min/max, no contraction
(``-ffp-contract=off``). A zero ``range`` step is always a fault. In checked
mode every access is bounds-checked; a fault message matches the reference
interpreter's, the work-group range stops and the runtime stops the launch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from .._errors import CompileError
from . import ir
from .analysis import Uniformity, check_barriers, uniform_control
from .types import ScalarType

EMITTER_VERSION = 1
"""Bump when the generated code changes meaning (caches key on it)."""

I32, I64, U32 = ScalarType.I32, ScalarType.I64, ScalarType.U32
F32, F64, BOOL = ScalarType.F32, ScalarType.F64, ScalarType.BOOL
_SUFFIX = {I32: "i32", I64: "i64", U32: "u32", F32: "f32", F64: "f64", BOOL: "bool"}
_UNSIGNED = {I32: "uint32_t", I64: "uint64_t", U32: "uint32_t"}
_RET = 255
"""State byte of a work-item that returned (continue/break of group-level loop d: 2d+1 / 2d+2)."""


def emit(kernel: ir.Kernel, *, entry: str = "hal_entry", checked: bool = False, key: str = "") -> str:
    """C source of ``kernel``: ``void <entry>(const hal_launch *, int64_t, int64_t)``.

    ``checked`` adds bounds checks; ``key`` is stored as ``const char hal_kernel_key[]``
    so a cache can verify what a shared object holds. Raises CompileError for a
    barrier in divergent control flow.
    """
    check_barriers(kernel)
    return _Emitter(kernel, checked).source(entry, key)


# ------------------------------------------------------------------ planning
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


_Node = _Phase | _GroupIf | _GroupLoop


def _has(body: Iterable[ir.Stmt], kinds: tuple[type, ...]) -> bool:
    return any(isinstance(s, kinds) for s in ir.walk_statements(tuple(body)))


def _c_string(text: str) -> str:
    """A C string literal of ``text`` (UTF-8; anything unusual as an octal escape)."""
    out = []
    for byte in text.encode():
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name, flags=re.ASCII)


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
    remat: dict[str, ir.Expr] = field(default_factory=dict)
    """Scalars assigned once, at the top level, from thread indices and constants: recomputed where
    used instead of stored (so the vectoriser sees ``lid = local_id(0)`` as the loop index)."""


class _Emitter:
    def __init__(self, kernel: ir.Kernel, checked: bool) -> None:
        self.k = kernel
        self.checked = checked
        self.uniform: Uniformity = uniform_control(kernel)
        self.params = {p.name: p for p in kernel.params}
        self.var_types: dict[str, ScalarType] = dict(kernel.variables)
        for p in kernel.params:
            if not p.pointer:
                self.var_types.setdefault(p.name, p.type)
        self.decls = {a.name: a for a in kernel.arrays}
        self.names: dict[str, str] = {}
        for i, (name, _) in enumerate(kernel.variables):
            self.names[name] = f"v{i}_{_ident(name)}"
        for p in kernel.params:
            self.names[p.name] = ("P_" if p.pointer else "A_") + _ident(p.name)
        for i, a in enumerate(kernel.arrays):
            self.names[a.name] = ("S" if a.space == "shared" else "L") + f"{i}_{_ident(a.name)}"
        self.assigned = _defined(kernel.body)
        self.plan = self._plan()
        self.ranges = _Ranges(kernel, self.var_types, self.names, self.params, self.assigned)
        self.fast = False
        """Emitting ``hal_run_fast``: the ranges' fast nodes without wrapping, their variables in int64."""
        self.lines: list[str] = []

    # -------------------------------------------------------------- planning
    def _interchangeable(self, s: ir.Stmt) -> bool:
        """A uniform-bound ``for`` whose body is straight-line enough to vectorise across work-items."""
        return (isinstance(s, ir.For)
                and not _has(s.body, (ir.Barrier, ir.For, ir.While, ir.Break, ir.Continue, ir.Return,
                                      ir.AtomicRMW))
                and all(self.uniform.is_uniform(e) for e in (s.start, s.stop, s.step)))

    def _group_level(self, s: ir.Stmt) -> bool:
        return _has((s,), (ir.Barrier,)) or self._interchangeable(s)

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
            elif isinstance(s, ir.If) and self._group_level(s):
                flush()
                nodes.append(_GroupIf(s, self._split(s.then, depth, plan), self._split(s.orelse, depth, plan)))
            elif isinstance(s, (ir.For, ir.While)) and self._group_level(s):
                flush()
                nodes.append(_GroupLoop(s, self._split(s.body, depth + 1, plan), depth + 1))
            else:
                run.append(s)
        flush()
        return nodes

    def _plan(self) -> _Plan:
        plan = _Plan([])
        plan.nodes = self._split(self.k.body, 0, plan)
        single = len(plan.nodes) == 1 and isinstance(plan.nodes[0], _Phase)
        if single:
            return plan
        plan.remat = self._rematerialisable()
        group_fors = [n.stmt.var for n in _walk_nodes(plan.nodes)
                      if isinstance(n, _GroupLoop) and isinstance(n.stmt, ir.For)]
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

    # ---------------------------------------------------------------- output
    def out(self, text: str, indent: int) -> None:
        self.lines.append("    " * indent + text)

    def source(self, entry: str, key: str) -> str:
        k = self.k
        where = f"kernel {k.name!r} at {k.source_file or '<unknown>'}"
        segments = [(f"R{self.names[v]}", self.c_type(self.var_types[v]), "1") for v in sorted(self.plan.arrays)]
        segments += [(f"R{self.names[a]}", self.c_type(self.decls[a].type), str(self.decls[a].size))
                     for a in sorted(self.plan.local_rows)]
        if self.plan.state:
            segments.append(("hal_st", "uint8_t", "1"))
        self.lines = []
        self.run_function("hal_run", segments)
        if self.ranges.fast:
            self.fast = True
            self.run_function("hal_run_fast", segments)
            self.fast = False
            self.fits_function()
        scratch = " + ".join(f"hal_seg(nt, {n} * sizeof({t}))" for _, t, n in segments) or "0"
        head = [
            f"/* generated by hal.kernel.cemit v{EMITTER_VERSION}{' (checked)' if self.checked else ''} */",
            _INCLUDES,
            f"const char hal_kernel_key[] = {_c_string(key)};",
            "const int hal_kernel_abi = HAL_ABI_VERSION;",
            f"static const char hal_where[] = {_c_string(where)};",
            _HELPERS,
            _RANGE_HELPERS if self.ranges.fast else "",
        ]
        run = "(hal_fits(l) ? hal_run_fast : hal_run)" if self.ranges.fast else "hal_run"
        tail = f"""
void {entry}(const hal_launch *l, int64_t group_begin, int64_t group_end) {{
    hal_ctx C;
    const int64_t nt = l->block[0] * l->block[1] * l->block[2];
    size_t bytes = {scratch};
    char *scratch = bytes ? (char *)calloc(1, bytes) : NULL;
    (void)nt;
    if (bytes && !scratch) {{
        hal_raise_fault(l, "hal: out of memory for the work-items' state of kernel " {_c_string(k.name)});
        return;
    }}
    C.launch = l;
    if (setjmp(C.jump) == 0) {run}(&C, group_begin, group_end, scratch);
    free(scratch);
}}
"""
        return "\n".join(head + self.lines) + "\n" + tail

    def run_function(self, name: str, segments: list[tuple[str, str, str]]) -> None:
        """``hal_run`` (exact) or ``hal_run_fast`` (``self.fast``: proven-safe index arithmetic in int64)."""
        self.counter = 0
        self.out(f"static void __attribute__((noinline)) {name}(hal_ctx *C, int64_t group_begin, "
                 "int64_t group_end, char *scratch) {", 0)
        self.out("const hal_launch *l = C->launch;", 1)
        self.params_prologue(pointers=True)
        self.out("const int32_t bx = (int32_t)l->block[0], by = (int32_t)l->block[1], "
                 "bz = (int32_t)l->block[2];", 1)
        self.out("const int32_t ngx = (int32_t)l->grid[0], ngy = (int32_t)l->grid[1], "
                 "ngz = (int32_t)l->grid[2];", 1)
        self.out("const int64_t nt = (int64_t)bx * by * bz; (void)nt; (void)ngz; (void)scratch;", 1)
        self.out("size_t off = 0; (void)off;", 1)
        for name, t, n in segments:
            self.out(f"{t} *const {name} = ({t} *)(scratch + off); off += hal_seg(nt, {n} * sizeof({t}));", 1)
        for a in self.k.arrays:
            if a.space == "shared":
                self.out(f"{self.c_type(a.type)} {self.names[a.name]}[{_padded(a)}] "
                         "__attribute__((aligned(64)));", 1)
        for name in sorted(self.plan.group_scalars):
            self.out(f"{self.var_type(name)} {self.names[name]} = 0;", 1)
        self.out("for (int64_t g = group_begin; g < group_end; g++) {", 1)
        self.out("const int32_t grx = (int32_t)(g % ngx), gry = (int32_t)((g / ngx) % ngy), "
                 "grz = (int32_t)(g / ((int64_t)ngx * ngy));", 2)
        self.out("const int32_t gbx = grx * bx, gby = gry * by, gbz = grz * bz;", 2)
        self.out("(void)gbx; (void)gby; (void)gbz;", 2)
        self.out("C->group[0] = grx; C->group[1] = gry; C->group[2] = grz;", 2)
        if self.plan.state:
            self.out("memset(hal_st, 0, (size_t)nt);", 2)
        for name in sorted(self.plan.arrays & set(self.params)):
            self.out(f"for (int64_t w = 0; w < nt; w++) R{self.names[name]}[w] = {self.names[name]};", 2)
        self.nodes(self.plan.nodes, 2)
        self.out("}", 1)
        self.out("}", 0)

    def params_prologue(self, pointers: bool) -> None:
        slot = 0
        for p in self.k.params:
            name = self.names[p.name]
            t = self.c_type(p.type)
            if p.pointer:
                if pointers:
                    self.out(f"{t} *const {name} = ({t} *)hal_arg_ptr(l, {slot});", 1)
                    self.out(f"const int64_t N{name} = hal_arg_i64(l, {slot + 1});", 1)
                    self.out(f"(void){name}; (void)N{name};", 1)
                slot += 2
            else:
                getter = {F32: "hal_arg_f32", F64: "hal_arg_f64"}.get(p.type, "hal_arg_i64")
                self.out(f"const {t} {name} = ({t}){getter}(l, {slot}); (void){name};", 1)
                slot += 1

    def fits_function(self) -> None:
        """``hal_fits(l)``: whether every fast-path node's exact value fits its type in this launch."""
        self.out("static int hal_fits(const hal_launch *l) {", 0)
        self.params_prologue(pointers=False)
        self.out("const int64_t bx = (int32_t)l->block[0], by = (int32_t)l->block[1], "
                 "bz = (int32_t)l->block[2];", 1)
        self.out("const int64_t ngx = (int32_t)l->grid[0], ngy = (int32_t)l->grid[1], "
                 "ngz = (int32_t)l->grid[2];", 1)
        self.out("(void)bx; (void)by; (void)bz; (void)ngx; (void)ngy; (void)ngz;", 1)
        for line in self.ranges.lines:
            self.out(line, 1)
        self.out(f"return {' && '.join(self.ranges.fast.values())};", 1)
        self.out("}", 0)

    # ---------------------------------------------------------- group level
    def nodes(self, nodes: list[_Node], ind: int) -> None:
        for node in nodes:
            if isinstance(node, _Phase):
                self.phase(node, ind)
            elif isinstance(node, _GroupIf):
                self.out(f"if ({self.expr(node.stmt.cond, None)}) {{", ind)
                self.nodes(node.then, ind + 1)
                if node.orelse:
                    self.out("} else {", ind)
                    self.nodes(node.orelse, ind + 1)
                self.out("}", ind)
            else:
                self.group_loop(node, ind)

    def group_loop(self, node: _GroupLoop, ind: int) -> None:
        d, s = node.depth, node.stmt
        brk, cont = 2 * d + 2, 2 * d + 1
        state = self.plan.state
        self.out("{", ind)
        if isinstance(s, ir.For):
            self.counter += 1
            t = f"hal_t{self.counter}"
            self.range_header(s, t, ind + 1, None)
            var = s.var
            value = _loop_value(t, self.var_types[var])
            if var in self.plan.group_scalars:
                self.out(f"{self.names[var]} = {value};", ind + 2)
            else:
                self.out(f"for (int64_t w = 0; w < nt; w++) R{self.names[var]}[w] = {value};", ind + 2)
        else:
            self.out(f"while ({self.expr(s.cond, None)}) {{", ind + 1)
        if state:
            self.out(f"for (int64_t w = 0; w < nt; w++) if (hal_st[w] == {cont}) hal_st[w] = 0;", ind + 2)
        self.nodes(node.body, ind + 2)
        if state:
            self.out(f"if (hal_st[0] == {brk} || hal_st[0] == {_RET}) break;", ind + 2)
        self.out("}", ind + 1)
        if state:
            self.out(f"for (int64_t w = 0; w < nt; w++) if (hal_st[w] == {brk} || hal_st[w] == {cont}) "
                     "hal_st[w] = 0;", ind + 1)
        self.out("}", ind)

    def range_header(self, s: ir.For, t: str, ind: int, thread: str | None) -> None:
        """Declare hal_s0/hal_sp/hal_n (Python ``range`` semantics) and open ``for`` over ``t``."""
        vt = self.var_types[s.var]
        start, stop, step = (self.cast(self.expr(e, thread), e.type, vt) for e in (s.start, s.stop, s.step))
        self.out(f"const int64_t hal_s0 = (int64_t)({start}), hal_s1 = (int64_t)({stop}), "
                 f"hal_sp = (int64_t)({step});", ind)
        loc = "lx, ly, lz" if thread else "0, 0, 0"
        self.out(f"if (hal_sp == 0) hal_zero_step(C, {s.line}, {loc});", ind)
        self.out("const uint64_t hal_n = hal_trip(hal_s0, hal_s1, hal_sp);", ind)
        self.out(f"for (uint64_t {t} = 0; {t} < hal_n; {t}++) {{", ind)

    # ----------------------------------------------------------- work-items
    def phase(self, phase: _Phase, ind: int) -> None:
        p = phase.index
        self.out("for (int32_t lz = 0; lz < bz; lz++) for (int32_t ly = 0; ly < by; ly++) {", ind)
        self.out("const int64_t wrow = ((int64_t)lz * by + ly) * bx; (void)wrow;", ind + 1)
        self.out("#pragma GCC ivdep", ind + 1)
        self.out("for (int32_t lx = 0; lx < bx; lx++) {", ind + 1)
        self.out("const int64_t w = wrow + lx; (void)w;", ind + 2)
        if self.plan.state:
            self.out("if (hal_st[w]) continue;", ind + 2)
        refs = _referenced(phase.stmts)
        for name in sorted(refs):
            if name in self.decls:
                a = self.decls[name]
                if a.space == "local" and name not in self.plan.local_rows:
                    self.out(f"{self.c_type(a.type)} {self.names[name]}[{max(a.size, 1)}];", ind + 2)
                elif name in self.plan.local_rows:
                    self.out(f"{self.c_type(a.type)} *const {self.names[name]} = R{self.names[name]} + "
                             f"w * {a.size};", ind + 2)
            elif (name in self.var_types and name not in self.plan.arrays and name not in self.plan.group_scalars
                  and name not in self.plan.remat
                  and (name not in self.params or name in self.assigned)):
                init = f"A_{_ident(name)}" if name in self.params else "0"
                self.out(f"{self.var_type(name)} L{self.names[name]} = {init};", ind + 2)
        self.label = f"hal_wi_end{p}"
        self.block(phase.stmts, ind + 2, 0, self._group_depth(phase))
        self.out(f"{self.label}: ;", ind + 2)
        self.out("}", ind + 1)
        self.out("}", ind)

    def _group_depth(self, phase: _Phase) -> int:
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
        find(self.plan.nodes, 0)
        return depth

    def block(self, body: tuple[ir.Stmt, ...], ind: int, loops: int, gdepth: int) -> None:
        for s in body:
            self.stmt(s, ind, loops, gdepth)

    def stmt(self, s: ir.Stmt, ind: int, loops: int, gdepth: int) -> None:
        th = "w"
        if isinstance(s, ir.Assign):
            if s.target not in self.plan.remat:
                self.out(f"{self.var(s.target, th)} = {self.expr(s.value, th, s.line)};", ind)
        elif isinstance(s, ir.Store):
            ref = self.element(s.buffer, s.space, s.index, "store", s.line)
            self.out(f"{ref} = {self.expr(s.value, th, s.line)};", ind)
        elif isinstance(s, ir.AtomicRMW):
            self.atomic(s, ind)
        elif isinstance(s, ir.If):
            self.out(f"if ({self.expr(s.cond, th, s.line)}) {{", ind)
            self.block(s.then, ind + 1, loops, gdepth)
            if s.orelse:
                self.out("} else {", ind)
                self.block(s.orelse, ind + 1, loops, gdepth)
            self.out("}", ind)
        elif isinstance(s, ir.For):
            self.out("{", ind)
            self.counter += 1
            t = f"hal_t{self.counter}"
            self.range_header(s, t, ind + 1, th)
            vt = self.var_types[s.var]
            self.out(f"{self.var(s.var, th)} = {_loop_value(t, vt)};", ind + 2)
            self.block(s.body, ind + 2, loops + 1, gdepth)
            self.out("}", ind + 1)
            self.out("}", ind)
        elif isinstance(s, ir.While):
            self.out(f"while ({self.expr(s.cond, th, s.line)}) {{", ind)
            self.block(s.body, ind + 1, loops + 1, gdepth)
            self.out("}", ind)
        elif isinstance(s, (ir.Break, ir.Continue)):
            if loops:
                self.out("break;" if isinstance(s, ir.Break) else "continue;", ind)
            else:  # leaves the phase: the target is a group-level loop
                code = 2 * gdepth + (2 if isinstance(s, ir.Break) else 1)
                self.out(f"hal_st[w] = {code}; goto {self.label};", ind)
        elif isinstance(s, ir.Return):
            self.out(f"{f'hal_st[w] = {_RET}; ' if self.plan.state else ''}goto {self.label};", ind)
        else:
            raise CompileError(f"unexpected {type(s).__name__} inside a phase", self.k.source_file, s.line)

    def atomic(self, s: ir.AtomicRMW, ind: int) -> None:
        ref = self.element(s.buffer, s.space, s.index, f"atomic_{s.op}", s.line)
        kind = "atomic" if s.space == "global" else "plain"
        ops = ", ".join(self.cast(self.expr(e, "w", s.line), e.type, s.type) for e in s.operands)
        call = f"hal_{kind}_{s.op}_{_SUFFIX[s.type]}(&{ref}, {ops})"
        if s.result is None:
            self.out(f"(void){call};", ind)
        else:
            rt = self.var_types[s.result]
            self.out(f"{self.var(s.result, 'w')} = {self.cast(call, s.type, rt)};", ind)

    # ---------------------------------------------------------- expressions
    def c_type(self, t: ScalarType) -> str:
        return t.c_name

    def var_type(self, name: str) -> str:
        """C type of a scalar's phase-local or group-level copy (per-work-item arrays keep ``c_type``)."""
        return "int64_t" if self.fast and name in self.ranges.widened else self.c_type(self.var_types[name])

    def var(self, name: str, thread: str | None) -> str:
        c = self.names[name]
        if name in self.plan.remat:
            return f"({self.expr(self.plan.remat[name], thread)})"
        if name in self.plan.group_scalars:
            return c
        if name in self.plan.arrays:
            return f"R{c}[{thread or '0'}]"
        if name in self.params and name not in self.assigned:
            return c
        return f"L{c}"

    def element(self, buffer: str, space: str, index: ir.Expr, verb: str, line: int) -> str:
        c = self.names[buffer]
        idx = self.expr(index, "w", line)
        if not self.checked:
            return f"{c}[{idx}]"
        size = f"N{c}" if space == "global" else str(self.decls[buffer].size)
        what = _c_string(f"{verb} {space} buffer '{buffer}'")
        return (f"(*({{ const int64_t hal_i = (int64_t)({idx}); if ((uint64_t)hal_i >= (uint64_t)({size})) "
                f"hal_oob(C, {line}, {what}, hal_i, {size}, lx, ly, lz); &{c}[hal_i]; }}))")

    def cast(self, code: str, src: ScalarType, dst: ScalarType) -> str:
        if src == dst:
            return code
        if dst == BOOL:
            return f"(({code}) != 0)"
        if src.is_float and dst == U32:
            return f"((uint32_t)(int64_t)({code}))"
        return f"(({dst.c_name})({code}))"

    def expr(self, e: ir.Expr, thread: str | None, line: int = 0) -> str:
        if isinstance(e, ir.Const):
            return _const(e.value, e.type)
        if isinstance(e, ir.Var):
            return self.var(e.name, thread)
        if isinstance(e, ir.ThreadIndex):
            return _thread_index(e.kind, e.dim, thread is not None)
        if isinstance(e, ir.Load):
            return self.element(e.buffer, e.space, e.index, "load", line)
        if isinstance(e, ir.Cast):
            return self.cast(self.expr(e.value, thread, line), e.value.type, e.type)
        if isinstance(e, ir.Select):
            c, a, b = (self.expr(x, thread, line) for x in (e.cond, e.if_true, e.if_false))
            return f"(({c}) ? ({a}) : ({b}))"
        if isinstance(e, ir.Unary):
            a = self.expr(e.operand, thread, line)
            if self.fast and e in self.ranges.fast:
                return f"(0 - (int64_t)({a}))"
            return _unary(e.op, a, e.type)
        if isinstance(e, ir.Binary):
            a, b = self.expr(e.lhs, thread, line), self.expr(e.rhs, thread, line)
            if self.fast and e in self.ranges.fast:  # the exact value, as int64: see _Ranges
                return f"((int64_t)({a}) {_C_OPS[e.op]} (int64_t)({b}))"
            return _binary(e.op, a, b, e.lhs.type, e.rhs.type, e.type)
        if isinstance(e, ir.Call):
            args = [self.cast(self.expr(x, thread, line), x.type, e.type) for x in e.args]
            return _call(e.func, args, e.type)
        raise CompileError(f"unknown expression {type(e).__name__}", self.k.source_file, line)


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


# ------------------------------------------------------- the fast path's ranges
_RANGE = {I32: (-(2**31), 2**31 - 1), U32: (0, 2**32 - 1), I64: (-(2**63), 2**63 - 1), BOOL: (0, 1)}
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


# ------------------------------------------------------------- C snippets
def _const(value: int | float | bool, t: ScalarType) -> str:
    if t == BOOL:
        return "true" if value else "false"
    if t.is_int:
        bits = t.bits
        v = int(value) % (1 << bits)
        if t.is_signed and v >= 1 << (bits - 1):
            v -= 1 << bits
        if t.is_signed and v == -(1 << (bits - 1)):
            return f"(({t.c_name})({v + 1} - 1))"
        return f"(({t.c_name}){v}{'u' if t == U32 else ''}{'LL' if t == I64 else ''})"
    x = float(np.float32(value)) if t == F32 else float(value)
    suffix = "f" if t == F32 else ""
    if math.isnan(x):
        return f"(({t.c_name})NAN)"
    if math.isinf(x):
        return f"(({t.c_name}){'-' if x < 0 else ''}INFINITY)"
    return f"({x.hex()}{suffix})"


_THREAD = {
    "local_id": ("lx", "ly", "lz"),
    "group_id": ("grx", "gry", "grz"),
    "local_size": ("bx", "by", "bz"),
    "num_groups": ("ngx", "ngy", "ngz"),
    "global_size": ("(ngx * bx)", "(ngy * by)", "(ngz * bz)"),
    "global_id": ("(gbx + lx)", "(gby + ly)", "(gbz + lz)"),
}


def _loop_value(t: str, vt: ScalarType) -> str:
    """Value of a ``range`` loop's variable on trip ``t``: exact int64 arithmetic for 32-bit types (it lies
    between start and stop, so nothing wraps and gcc sees it as affine), unsigned for i64 (t * step may
    exceed int64 when the range does)."""
    if vt.bits == 32:
        return f"(hal_s0 + (int64_t){t} * hal_sp)"
    return f"({vt.c_name})((uint64_t)hal_s0 + {t} * (uint64_t)hal_sp)"


def _thread_index(kind: str, dim: int, in_phase: bool) -> str:
    if not in_phase and kind in ("local_id", "global_id"):
        return ("gbx", "gby", "gbz")[dim] if kind == "global_id" else "0"
    return _THREAD[kind][dim]


def _unary(op: str, a: str, t: ScalarType) -> str:
    if op == "not" or (op == "invert" and t == BOOL):
        return f"(!({a}))"
    if op == "invert":
        return f"(({t.c_name})~({a}))"
    if op == "neg":
        if t.is_int:
            return f"(({t.c_name})(0 - ({_UNSIGNED[t]})({a})))"
        return f"(-({a}))"
    raise ValueError(f"unknown unary op {op!r}")


_C_OPS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "bitand": "&", "bitor": "|", "bitxor": "^",
          "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "and": "&&", "or": "||"}


def _binary(op: str, a: str, b: str, ta: ScalarType, tb: ScalarType, t: ScalarType) -> str:
    if op in ("floordiv", "mod", "pow"):
        return f"hal_{op}_{_SUFFIX[t]}({a}, {b})"
    if op in ("shl", "shr"):
        return f"hal_{op}_{_SUFFIX[t]}({a}, (uint64_t)({b}))"
    if op in ("add", "sub", "mul") and t in (I32, U32, I64):
        u = _UNSIGNED[t]
        return f"(({t.c_name})(({u})({a}) {_C_OPS[op]} ({u})({b})))"
    if op in ("bitand", "bitor", "bitxor") and t != BOOL:
        return f"(({t.c_name})(({a}) {_C_OPS[op]} ({b})))"
    if op in _C_OPS:
        return f"(({a}) {_C_OPS[op]} ({b}))"
    raise ValueError(f"unknown binary op {op!r}")


_F32_FUNCS = {"sqrt": "sqrtf", "exp": "expf", "log": "logf", "sin": "sinf", "cos": "cosf", "tanh": "tanhf",
              "abs": "fabsf", "floor": "floorf", "ceil": "ceilf", "fma": "fmaf"}


def _call(func: str, args: list[str], t: ScalarType) -> str:
    if func in ("min", "max"):
        out = args[0]
        for a in args[1:]:
            out = f"hal_{func}_{_SUFFIX[t]}({out}, {a})"
        return out
    if func == "pow":
        return f"hal_pow_{_SUFFIX[t]}({args[0]}, {args[1]})"
    if func == "abs" and t.is_int:
        return f"hal_abs_{_SUFFIX[t]}({args[0]})"
    if t.is_int and func in ("floor", "ceil"):
        return args[0]
    if t.is_int and func == "fma":
        return _binary("add", _binary("mul", args[0], args[1], t, t, t), args[2], t, t, t)
    name = _F32_FUNCS[func] if t == F32 else _F32_FUNCS[func][:-1]
    return f"{name}({', '.join(args)})"


_INCLUDES = r"""
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "hal_kernel_abi.h"

typedef struct hal_ctx {
    const hal_launch *launch;
    int32_t group[3];
    jmp_buf jump;
} hal_ctx;
"""

_HELPERS = r"""
/* bytes of one per-work-item segment of nt elements of `size` bytes: 64-byte aligned */
static inline size_t hal_seg(int64_t nt, size_t size) { return ((size_t)nt * size + 63) & ~(size_t)63; }

static void __attribute__((noinline, cold, noreturn))
hal_fail(hal_ctx *C, int line, const char *what, int32_t lx, int32_t ly, int32_t lz) {
    const hal_launch *l = C->launch;
    char msg[HAL_FAULT_MESSAGE];
    int32_t g[3] = {C->group[0], C->group[1], C->group[2]};
    snprintf(msg, sizeof msg, "%s:%d: %s for thread global (%lld, %lld, %lld) (group (%d, %d, %d), "
             "local (%d, %d, %d))", hal_where, line, what,
             (long long)g[0] * l->block[0] + lx, (long long)g[1] * l->block[1] + ly,
             (long long)g[2] * l->block[2] + lz, g[0], g[1], g[2], lx, ly, lz);
    hal_raise_fault(l, msg);
    longjmp(C->jump, 1);
}

static void __attribute__((noinline, cold, noreturn))
hal_oob(hal_ctx *C, int line, const char *what, int64_t index, int64_t size, int32_t lx, int32_t ly, int32_t lz) {
    char text[200];
    snprintf(text, sizeof text, "out-of-bounds %s: index %lld is outside [0, %lld)", what,
             (long long)index, (long long)size);
    hal_fail(C, line, text, lx, ly, lz);
}

static void __attribute__((noinline, cold, noreturn))
hal_zero_step(hal_ctx *C, int line, int32_t lx, int32_t ly, int32_t lz) {
    hal_fail(C, line, "range() step is zero", lx, ly, lz);
}

/* len(range(a, b, s)) for s != 0 */
static inline uint64_t hal_trip(int64_t a, int64_t b, int64_t s) {
    if (s > 0) return a < b ? ((uint64_t)b - (uint64_t)a - 1) / (uint64_t)s + 1 : 0;
    return a > b ? ((uint64_t)a - (uint64_t)b - 1) / (0 - (uint64_t)s) + 1 : 0;
}

/* integers: floor division and modulo with Python's meaning, 0 for a zero divisor */
#define HAL_SIGNED_DIV(N, T, U) \
static inline T hal_floordiv_##N(T a, T b) { \
    if (b == 0) return 0; \
    if (b == -1) return (T)(0 - (U)a); \
    T q = a / b; \
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--; \
    return q; \
} \
static inline T hal_mod_##N(T a, T b) { \
    if (b == 0 || b == -1) return 0; \
    T r = a % b; \
    if (r != 0 && ((r < 0) != (b < 0))) r += b; \
    return r; \
} \
static inline T hal_add_##N(T a, T b) { return (T)((U)a + (U)b); } \
static inline T hal_shl_##N(T a, uint64_t c) { return (T)((U)a << (c & (sizeof(T) * 8 - 1))); } \
static inline T hal_shr_##N(T a, uint64_t c) { return (T)(a >> (c & (sizeof(T) * 8 - 1))); } \
static inline T hal_abs_##N(T a) { return a < 0 ? (T)(0 - (U)a) : a; } \
static inline T hal_pow_##N(T a, T b) { \
    if (b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0; \
    U r = 1, x = (U)a, e = (U)b; \
    while (e) { if (e & 1) r *= x; x *= x; e >>= 1; } \
    return (T)r; \
}
HAL_SIGNED_DIV(i32, int32_t, uint32_t)
HAL_SIGNED_DIV(i64, int64_t, uint64_t)

static inline uint32_t hal_add_u32(uint32_t a, uint32_t b) { return a + b; }
static inline uint32_t hal_floordiv_u32(uint32_t a, uint32_t b) { return b ? a / b : 0; }
static inline uint32_t hal_mod_u32(uint32_t a, uint32_t b) { return b ? a % b : 0; }
static inline uint32_t hal_shl_u32(uint32_t a, uint64_t c) { return a << (c & 31); }
static inline uint32_t hal_shr_u32(uint32_t a, uint64_t c) { return a >> (c & 31); }
static inline uint32_t hal_abs_u32(uint32_t a) { return a; }
static inline uint32_t hal_pow_u32(uint32_t a, uint32_t b) {
    uint32_t r = 1;
    while (b) { if (b & 1) r *= a; a *= a; b >>= 1; }
    return r;
}

/* floats: numpy's divmod (Python's floor meaning), NaN-propagating min/max as numpy.minimum */
#define HAL_FLOAT(N, T, F) \
static inline T hal_divmod_##N(T a, T b, T *modulus) { \
    T mod = fmod##F(a, b); \
    if (!b) { *modulus = mod; return a / b; } \
    T div = (a - mod) / b; \
    if (mod) { if ((b < 0) != (mod < 0)) { mod += b; div -= 1; } } \
    else mod = copysign##F(0, b); \
    T fd; \
    if (div) { fd = floor##F(div); if (div - fd > (T)0.5) fd += 1; } \
    else fd = copysign##F(0, a / b); \
    *modulus = mod; \
    return fd; \
} \
static inline T hal_floordiv_##N(T a, T b) { T m; return b ? hal_divmod_##N(a, b, &m) : a / b; } \
static inline T hal_mod_##N(T a, T b) { T m; if (!b) return fmod##F(a, b); hal_divmod_##N(a, b, &m); return m; } \
static inline T hal_add_##N(T a, T b) { return a + b; } \
static inline T hal_min_##N(T a, T b) { return a != a ? a : b != b ? b : (a < b ? a : b); } \
static inline T hal_max_##N(T a, T b) { return a != a ? a : b != b ? b : (a > b ? a : b); } \
static inline T hal_pow_##N(T a, T b) { return pow##F(a, b); }
HAL_FLOAT(f32, float, f)
HAL_FLOAT(f64, double, )

#define HAL_INT_MINMAX(N, T) \
static inline T hal_min_##N(T a, T b) { return a < b ? a : b; } \
static inline T hal_max_##N(T a, T b) { return a > b ? a : b; }
HAL_INT_MINMAX(i32, int32_t)
HAL_INT_MINMAX(i64, int64_t)
HAL_INT_MINMAX(u32, uint32_t)

/* atomics on global memory: the old value; wrapping adds, CAS loops for the rest */
#define HAL_ATOMICS(N, T, B) \
static inline T hal_from_bits_##N(B b) { T t; memcpy(&t, &b, sizeof t); return t; } \
static inline B hal_to_bits_##N(T t) { B b; memcpy(&b, &t, sizeof b); return b; } \
static inline T hal_plain_add_##N(T *p, T v) { T o = *p; *p = hal_add_##N(o, v); return o; } \
static inline T hal_plain_min_##N(T *p, T v) { T o = *p; *p = hal_min_##N(o, v); return o; } \
static inline T hal_plain_max_##N(T *p, T v) { T o = *p; *p = hal_max_##N(o, v); return o; } \
static inline T hal_plain_exchange_##N(T *p, T v) { T o = *p; *p = v; return o; } \
static inline T hal_plain_cas_##N(T *p, T c, T v) { T o = *p; if (o == c) *p = v; return o; } \
static inline T hal_atomic_rmw_##N(T *p, T v, int op) { \
    B *q = (B *)p, old = __atomic_load_n(q, __ATOMIC_RELAXED); \
    for (;;) { \
        T o = hal_from_bits_##N(old); \
        T n = op == 0 ? hal_add_##N(o, v) : op == 1 ? hal_min_##N(o, v) : hal_max_##N(o, v); \
        if (__atomic_compare_exchange_n(q, &old, hal_to_bits_##N(n), 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) \
            return o; \
    } \
} \
static inline T hal_atomic_min_##N(T *p, T v) { return hal_atomic_rmw_##N(p, v, 1); } \
static inline T hal_atomic_max_##N(T *p, T v) { return hal_atomic_rmw_##N(p, v, 2); } \
static inline T hal_atomic_exchange_##N(T *p, T v) { \
    return hal_from_bits_##N(__atomic_exchange_n((B *)p, hal_to_bits_##N(v), __ATOMIC_RELAXED)); \
} \
static inline T hal_atomic_cas_##N(T *p, T c, T v) { \
    B *q = (B *)p, old = __atomic_load_n(q, __ATOMIC_RELAXED); \
    for (;;) { \
        T o = hal_from_bits_##N(old); \
        if (!(o == c)) return o; \
        if (__atomic_compare_exchange_n(q, &old, hal_to_bits_##N(v), 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) \
            return o; \
    } \
}
HAL_ATOMICS(i32, int32_t, uint32_t)
HAL_ATOMICS(i64, int64_t, uint64_t)
HAL_ATOMICS(u32, uint32_t, uint32_t)
HAL_ATOMICS(f32, float, uint32_t)
HAL_ATOMICS(f64, double, uint64_t)
static inline int32_t hal_atomic_add_i32(int32_t *p, int32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline int64_t hal_atomic_add_i64(int64_t *p, int64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline uint32_t hal_atomic_add_u32(uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline float hal_atomic_add_f32(float *p, float v) { return hal_atomic_rmw_f32(p, v, 0); }
static inline double hal_atomic_add_f64(double *p, double v) { return hal_atomic_rmw_f64(p, v, 0); }
"""


_RANGE_HELPERS = r"""
/* launch-time interval arithmetic for hal_fits (the bounds are int64; an overflow gives up) */
typedef struct hal_iv { int64_t lo, hi; } hal_iv;
static inline hal_iv hal_iv_of(int64_t lo, int64_t hi) { hal_iv r = {lo, hi}; return r; }
static inline hal_iv hal_iv_hull(hal_iv a, hal_iv b) {
    return hal_iv_of(a.lo < b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi);
}
static inline hal_iv hal_iv_min(hal_iv a, hal_iv b) {
    return hal_iv_of(a.lo < b.lo ? a.lo : b.lo, a.hi < b.hi ? a.hi : b.hi);
}
static inline hal_iv hal_iv_max(hal_iv a, hal_iv b) {
    return hal_iv_of(a.lo > b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi);
}
/* a wrapping result: its exact interval if that fits the type [lo, hi] (*fits = 1), else the whole type */
static inline hal_iv hal_iv_fit(int overflow, hal_iv r, int64_t lo, int64_t hi, int *fits) {
    *fits = !overflow && r.lo >= lo && r.hi <= hi;
    return *fits ? r : hal_iv_of(lo, hi);
}
static inline hal_iv hal_iv_wrap(hal_iv a, int64_t lo, int64_t hi, int *fits) { return hal_iv_fit(0, a, lo, hi, fits); }
static inline hal_iv hal_iv_add(hal_iv a, hal_iv b, int64_t lo, int64_t hi, int *fits) {
    hal_iv r;
    int o = __builtin_add_overflow(a.lo, b.lo, &r.lo) | __builtin_add_overflow(a.hi, b.hi, &r.hi);
    return hal_iv_fit(o, r, lo, hi, fits);
}
static inline hal_iv hal_iv_sub(hal_iv a, hal_iv b, int64_t lo, int64_t hi, int *fits) {
    hal_iv r;
    int o = __builtin_sub_overflow(a.lo, b.hi, &r.lo) | __builtin_sub_overflow(a.hi, b.lo, &r.hi);
    return hal_iv_fit(o, r, lo, hi, fits);
}
static inline hal_iv hal_iv_mul(hal_iv a, hal_iv b, int64_t lo, int64_t hi, int *fits) {
    int64_t p[4];
    int o = __builtin_mul_overflow(a.lo, b.lo, &p[0]) | __builtin_mul_overflow(a.lo, b.hi, &p[1])
          | __builtin_mul_overflow(a.hi, b.lo, &p[2]) | __builtin_mul_overflow(a.hi, b.hi, &p[3]);
    hal_iv r = hal_iv_of(p[0], p[0]);
    for (int i = 1; i < 4; i++) r = hal_iv_hull(r, hal_iv_of(p[i], p[i]));
    return hal_iv_fit(o, r, lo, hi, fits);
}
/* floor division by d > 0 is monotonic */
static inline int64_t hal_fdiv64(int64_t a, int64_t d) { int64_t q = a / d; return q - (a % d != 0 && a < 0); }
static inline hal_iv hal_iv_fdiv(hal_iv a, int64_t d) { return hal_iv_of(hal_fdiv64(a.lo, d), hal_fdiv64(a.hi, d)); }
"""


def _padded(array: ir.ArrayDecl) -> int:
    """Elements to declare for a work-group array: its size rounded up to whole 64-byte lines.

    GCC 12 with AVX-512 (-O3 -march=native) miscompiles masked vector loops over an array
    whose declared length is shorter than one vector (value-range propagation takes the
    length as the trip-count bound; a 5-element u32 array gave wrong lanes). Padding keeps
    every vector access inside the object; bounds are still the declared size, which checked
    mode enforces and the reference interpreter defines.
    """
    itemsize = array.type.np_dtype.itemsize
    return -(-max(array.size, 1) * itemsize // 64) * 64 // itemsize

