"""IR -> C: one kernel as a C translation unit following ``hal_kernel_abi.h``.

A toolkit piece: the CPU backend compiles its output with GCC or Clang, and any vendor
whose device runs C (a CPU, a soft core, an HLS flow) may reuse it. The entry
point runs a range of work-groups; inside a group the work-items are loops.

* Without barriers the body is one loop nest over (lz, ly, lx) whose inner loop
  the compiler vectorises across work-items (``HAL_IVDEP``: GCC's ``ivdep``, Clang's
  ``vectorize(assume_safety)``; work-items of one phase never depend on each other
  except through races, which the language leaves undefined).
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
  race-free kernels can tell, and they cannot. A lane-varying (grid-stride) loop
  whose body is one phase is also strip-mined: a strip of up to ``_STRIP``
  work-items runs all its trips in SIMD lanes, its variables in strip-local
  arrays, before the next strip starts (:meth:`_Emitter.strip_loop`), prefetching what it loads
  at the loop variable some trips ahead; a full strip runs the trips that all of the group's
  work-items run without the mask (:meth:`_Emitter.full_trips`). A uniform loop with a
  short constant trip count (a tile's k-loop) whose body is one phase runs the same way, per
  bundle of ``_BUNDLE`` work-items, its trips unrolled so those variables stay in registers.

* Wrapping index arithmetic hides from gcc that ``base + k * 256 + lid`` steps by
  one per work-item (it emits gathers). So a kernel whose indices use ``+ - *``
  gets a second function, ``hal_run_fast``, computing those in plain int64, and
  ``hal_fits`` decides per launch, by interval arithmetic on the launch's dims
  and scalar arguments, whether any of them could wrap; if none can, both
  functions compute the same values and the fast one runs (see :mod:`hal.kernel._cranges`).

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

import inspect
from pathlib import Path

from .._errors import CompileError
from . import _cexpr, _cinterchange, _cnarrow, _cphases, _cprelude, _cranges, ir
from ._cexpr import (
    _C_OPS,
    _SUFFIX,
    F32,
    F64,
    _binary,
    _c_string,
    _call,
    _cast,
    _const,
    _ident,
    _loop_value,
    _thread_index,
    _unary,
)
from ._cphases import _defined, _GroupIf, _GroupLoop, _GroupReduce, _has, _Node, _Phase, _plan, _referenced
from ._cprelude import _HELPERS, _INCLUDES, _RANGE_HELPERS
from ._cranges import _Ranges
from .analysis import check_barriers, walk_expressions
from .simt import ordering_fences
from .types import ScalarType

EMITTER_VERSION = 1
"""Bump when the generated code changes meaning (caches key on it)."""
SOURCES = (Path(__file__), *(Path(inspect.getfile(m)) for m in (_cexpr, _cinterchange, _cnarrow, _cphases,
                                                                  _cprelude, _cranges)))
"""The emitter's files: the CPU backend's kernel cache hashes them, so editing any one rebuilds kernels."""
_RET = 255
"""State byte of a work-item that returned (continue/break of group-level loop d: 2d+1 / 2d+2)."""
_STRIP = 256
"""Work-items per strip of a strip-mined lane-varying loop (see :meth:`_Emitter.strip_loop`): a whole
row of a usual work-group, so each trip of a grid-stride loop reads one contiguous run (1 KiB of f32)
instead of four runs of 256 bytes, each swept through memory separately."""
_PREFETCH = 32
"""Trips ahead that a strip-mined lane-varying loop prefetches what it loads at the loop variable
(plus uniform terms): its trips stride through memory (a grid stride), which the hardware prefetchers,
staying inside a page, do not follow. On the 64 x 256 grid-stride sum (1 KiB per trip, rows 64 KiB
apart) with its common trips unmasked (:meth:`_Emitter.full_trips`), 32 trips ahead into L2 took it
from 4.4 to 2.2-2.6 ms against 4 ahead into L1; in a copy of that loop 24-64 were alike and 16 slower.
Into L1, 4 had been best (more lines in flight there evict each other: a strip's rows map to the same
L1 sets). With the mask on every trip, no distance or locality changed anything."""
_PREFETCH_LOCALITY = 1
"""``__builtin_prefetch``'s locality: 1 fetches into the outer caches (x86 ``prefetcht2``), not L1,
so that ``_PREFETCH`` trips of lines in flight fit."""
_BUNDLE = 16
"""Work-items per bundle of a short uniform loop run per bundle (one 512-bit vector of f32): a
compile-time width, so gcc holds each per-work-item variable in one vector register."""
_UNROLL = 16
"""Most trips of a uniform loop run per bundle: gcc unrolls them completely, which is what keeps
the bundle's variables in registers (with a runtime trip count they go through memory on every trip,
and the store-to-load chain made a tiled sgemm 2.6x slower than work-items-innermost trips)."""
_STRIP_LANE = "const int32_t lx = hal_x0 + hal_j; const int64_t w = wrow + lx; (void)w;"
"""Opens a strip's lane ``hal_j``: the work-item's x index and its slot in the per-work-item arrays."""
_STOP_CHECK = "if (__builtin_expect(l->fault->set != 0, 0)) hal_quit(C);"
"""First statement of every ``while`` body (a ``continue`` cannot skip it): an unbounded loop stops
once its launch faulted elsewhere or was aborted. Not in ``for`` loops, which end by themselves and
must stay vectorisable."""


def emit(kernel: ir.Kernel, *, entry: str = "hal_entry", checked: bool = False, key: str = "") -> str:
    """C source of ``kernel``: ``void <entry>(const hal_launch *, int64_t, int64_t)``.

    ``checked`` adds bounds checks; ``key`` is stored as ``const char hal_kernel_key[]``
    so a cache can verify what a shared object holds. Raises CompileError for a
    barrier in divergent control flow.
    """
    check_barriers(kernel, 1)
    return _Emitter(kernel, checked).source(entry, key)


_NO_LOOP_VECTORS = """/* a comparison becomes an integer here: GCC 12's loop vectoriser then miscompiles loads whose
   index depends on it (the mask's bytes used as indices; tests/cpu/test_gcc_workarounds.py).
   Clang's vectoriser is another one, which builds the reproducer right: it keeps its loops. */
#if !defined(__clang__)
#pragma GCC optimize ("no-tree-loop-vectorize")
#endif"""


def _bool_as_integer(kernel: ir.Kernel) -> bool:
    """Whether a comparison's result becomes an integer value: a cast of a bool to an integer type,
    or an integer select between two constants (which gcc turns into that cast)."""
    for e in walk_expressions(kernel.body):
        if isinstance(e, ir.Cast) and e.value.type is ScalarType.BOOL and e.type.is_int:
            return True
        if (isinstance(e, ir.Select) and e.type.is_int and isinstance(e.if_true, ir.Const)
                and isinstance(e.if_false, ir.Const)):
            return True
    return False


class _Emitter:
    def __init__(self, kernel: ir.Kernel, checked: bool) -> None:
        self.k = kernel
        self.checked = checked
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
        self.plan = _plan(kernel, self.params, self.decls, self.assigned)
        self.ranges = _Ranges(kernel, self.var_types, self.names, self.params, self.assigned)
        self.masks: list[tuple[ir.For, int]] = []
        """The lane-varying loops around the code being emitted, with their counters."""
        self.strip: dict[str, str] = {}
        """Inside a strip-mined loop: per-work-item variables held in strip-local arrays (index ``hal_j``)."""
        self.unmasked = 0
        """Inside :meth:`full_trips`: the lane-varying loop whose lanes all run the current trip."""
        self.fast = False
        """Emitting ``hal_run_fast``: the ranges' fast nodes without wrapping, their variables in int64."""
        self.lines: list[str] = []

    # ---------------------------------------------------------------- output
    def out(self, text: str, indent: int) -> None:
        self.lines.append("    " * indent + text)

    def source(self, entry: str, key: str) -> str:
        k = self.k
        where = f"kernel {k.name!r} at {k.source_file or '<unknown>'}"
        segments = [(f"R{self.names[v]}", self.c_type(self.var_types[v]), "1") for v in sorted(self.plan.arrays)]
        segments += [(f"R{self.names[a]}", self.c_type(self.decls[a].type), str(self.decls[a].size))
                     for a in sorted(self.plan.local_rows)]
        segments += [(f"hal_red{r.index}", self.c_type(r.stmt.type), "1") for r in self.plan.reductions]
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
            _NO_LOOP_VECTORS if _bool_as_integer(k) else "",
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
        self.labels = 0
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
            elif isinstance(node, _GroupReduce):
                self.group_reduce(node, ind)
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
        if isinstance(s, ir.For) and len(node.body) == 1 and isinstance(node.body[0], _Phase) and (
                node.lanes or 0 < (_cinterchange.constant_trips(s, self.var_types[s.var]) or 0) <= _UNROLL):
            self.strip_loop(s, node.body[0], ind, node.lanes)
            return
        self.out("{", ind)
        if node.lanes:
            assert isinstance(s, ir.For)
            self.lanes_header(s, ind + 1)
            self.out(f"for (uint64_t hal_t{self.counter} = 0; hal_t{self.counter} < hal_n{self.counter}; "
                     f"hal_t{self.counter}++) {{", ind + 1)
        elif isinstance(s, ir.For):
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
            self.out(_STOP_CHECK, ind + 2)
        if state:
            self.out(f"for (int64_t w = 0; w < nt; w++) if (hal_st[w] == {cont}) hal_st[w] = 0;", ind + 2)
        self.nodes(node.body, ind + 2)
        if node.lanes:
            self.masks.pop()
        elif state and _has(s.body, (ir.Break, ir.Return)):
            # uniform control: work-item 0 left when all did (not so for one that returned before the
            # loop: an interchanged loop's body never leaves, so it runs to its end)
            self.out(f"if (hal_st[0] == {brk} || hal_st[0] == {_RET}) break;", ind + 2)
        self.out("}", ind + 1)
        if state:
            self.out(f"for (int64_t w = 0; w < nt; w++) if (hal_st[w] == {brk} || hal_st[w] == {cont}) "
                     "hal_st[w] = 0;", ind + 1)
        self.out("}", ind)

    def group_reduce(self, node: _GroupReduce, ind: int) -> None:
        """Combine the work-items' values (stored by the phase before) in the IR's tree order:
        ``x[i] = x[i] op x[i + s]`` for i a multiple of 2s, s = 1, 2, 4, ...; then give every
        work-item ``x[0]``. Reached by all work-items or none (uniform control): skipped when
        work-item 0 left (returned, or broke out of / continued a group-level loop)."""
        s, red = node.stmt, f"hal_red{node.index}"
        fn = f"hal_{s.op.removeprefix('reduce_')}_{_SUFFIX[s.type]}"
        self.out(f"if ({'hal_st[0] == 0' if self.plan.state else '1'}) {{", ind)
        self.out("for (int64_t hal_s = 1; hal_s < nt; hal_s *= 2)", ind + 1)
        self.out(f"for (int64_t hal_i = 0; hal_i + hal_s < nt; hal_i += 2 * hal_s) "
                 f"{red}[hal_i] = {fn}({red}[hal_i], {red}[hal_i + hal_s]);", ind + 2)
        rt = self.var_types[s.result]
        self.out(f"for (int64_t w = 0; w < nt; w++) {self.storage(s.result, 'w')} = "
                 f"{self.cast(f'{red}[0]', s.type, rt)};", ind + 1)
        self.out("}", ind)

    def collective(self, s: ir.Collective, ind: int) -> None:
        """In a phase: a work-group reduction stores this work-item's value for :meth:`group_reduce`;
        a subgroup operation is the identity, since subgroups here are single work-items (a shuffle's
        lane is still evaluated: it may fault; a vote is the value itself, a ballot its bit 0, an
        exclusive scan 0)."""
        value = self.cast(self.expr(s.args[0], "w", s.line), s.args[0].type, s.type)
        if s.scope == "group":
            index = next(r.index for r in self.plan.reductions if r.stmt is s)
            self.out(f"hal_red{index}[w] = {value};", ind)
            return
        if len(s.args) > 1 and self.checked and s.op != "shuffle":
            what = _c_string(f"hal.{s.op}(v, d) with d outside [0, hal.subgroup_size()) = [0, 1): its result "
                             "depends on the subgroup size")
            self.out(f"if ((uint32_t)({self.expr(s.args[1], 'w', s.line)}) != 0u) hal_fail(C, {s.line}, {what}, "
                     "lx, ly, lz);", ind)
        elif len(s.args) > 1:
            self.out(f"(void)({self.expr(s.args[1], 'w', s.line)});", ind)
        if s.op == "scan_exclusive_add":  # the sum over no lanes
            value = f"(({s.type.c_name})0)"
        self.out(f"{self.var(s.result, 'w')} = {self.cast(value, s.type, self.var_types[s.result])};", ind)

    def range_header(self, s: ir.For, t: str, ind: int, thread: str | None) -> None:
        """Declare hal_s0/hal_sp/hal_n (Python ``range`` semantics) and open ``for`` over ``t``."""
        self.range_trips(s, ind, thread)
        self.out(f"for (uint64_t {t} = 0; {t} < hal_n; {t}++) {{", ind)

    def range_trips(self, s: ir.For, ind: int, thread: str | None) -> None:
        """Declare hal_s0/hal_s1/hal_sp and the trip count hal_n of ``s`` (a zero step faults)."""
        vt = self.var_types[s.var]
        start, stop, step = (self.cast(self.expr(e, thread), e.type, vt) for e in (s.start, s.stop, s.step))
        self.out(f"const int64_t hal_s0 = (int64_t)({start}), hal_s1 = (int64_t)({stop}), "
                 f"hal_sp = (int64_t)({step});", ind)
        loc = "lx, ly, lz" if thread else "0, 0, 0"
        self.out(f"if (hal_sp == 0) hal_zero_step(C, {s.line}, {loc});", ind)
        self.out("const uint64_t hal_n = hal_trip(hal_s0, hal_s1, hal_sp);", ind)

    def lanes_header(self, s: ir.For, ind: int, least: bool = False) -> None:
        """Open a lane-varying ``for`` (:mod:`hal.kernel._cinterchange`): the group runs the largest
        trip count of its live work-items; :meth:`lane_masks` skips a work-item past its own.
        ``least``: also the smallest, ``hal_lo<c>`` (see :meth:`full_trips`)."""
        self.counter += 1
        c = self.counter
        vt = self.var_types[s.var]
        stop, step = (self.cast(self.expr(e, None), e.type, vt) for e in (s.stop, s.step))
        self.out(f"const int64_t hal_s1_{c} = (int64_t)({stop}), hal_sp_{c} = (int64_t)({step});", ind)
        self.out(f"uint64_t hal_n{c} = 0;", ind)
        if least:
            self.out(f"uint64_t hal_lo{c} = UINT64_MAX;", ind)
        self.lane_loop(ind)
        self.lane_masks(ind + 2)
        self.out(f"if (hal_sp_{c} == 0) hal_zero_step(C, {s.line}, lx, ly, lz);", ind + 2)
        start = self.cast(self.expr(s.start, "w"), s.start.type, vt)
        self.out(f"const uint64_t hal_m = hal_trip((int64_t)({start}), hal_s1_{c}, hal_sp_{c});", ind + 2)
        self.out(f"if (hal_m > hal_n{c}) hal_n{c} = hal_m;", ind + 2)
        if least:
            self.out(f"if (hal_m < hal_lo{c}) hal_lo{c} = hal_m;", ind + 2)
        self.out("}", ind + 1)
        self.out("}", ind)
        self.masks.append((s, c))

    def strip_loop(self, s: ir.For, phase: _Phase, ind: int, lanes: bool) -> None:
        """A loop whose body is one phase, run strip by strip: each strip of consecutive work-items
        (along x) runs all its trips before the next strip starts, the strip's work-items in SIMD
        lanes. Each work-item still runs its own iterations in order, so results are bit-identical;
        its variables stay in strip-local arrays (registers) across trips instead of going through the
        per-work-item arrays on every trip, which left the loop bound by loads and stores rather than
        by the data it reads.

        A lane-varying loop takes strips of up to ``_STRIP`` work-items. A uniform one (short and
        constant, see ``_UNROLL``) takes bundles of exactly ``_BUNDLE`` (a remainder as a shorter
        strip) and unrolls its trips: a constant width and trip count are what let gcc keep the
        bundle's variables in vector registers."""
        self.out("{", ind)
        split = lanes and self.splittable(s)
        if lanes:
            self.lanes_header(s, ind + 1, least=split)
        else:
            self.counter += 1
            self.range_trips(s, ind + 1, None)
        c = self.counter
        names = sorted(n for n in _referenced(phase.stmts) | {s.var} if n in self.plan.arrays)
        self.out("for (int32_t lz = 0; lz < bz; lz++) for (int32_t ly = 0; ly < by; ly++) {", ind + 1)
        self.out("const int64_t wrow = ((int64_t)lz * by + ly) * bx; (void)wrow;", ind + 2)
        width = _STRIP if lanes else _BUNDLE
        self.out(f"for (int32_t hal_x0 = 0; hal_x0 < bx; hal_x0 += {width}) {{  /* strip-mined lanes */", ind + 2)
        if lanes:
            self.strip_run(s, phase, names, f"bx - hal_x0 < {_STRIP} ? bx - hal_x0 : {_STRIP}", c, True, ind + 3,
                           split=split)
        else:
            self.out(f"if (bx - hal_x0 >= {_BUNDLE}) {{", ind + 3)
            self.strip_run(s, phase, names, str(_BUNDLE), c, False, ind + 4, _UNROLL)
            self.out("} else {", ind + 3)
            self.strip_run(s, phase, names, "bx - hal_x0", c, False, ind + 4, 1)  # rare: kept small, compiles fast
            self.out("}", ind + 3)
        self.out("}", ind + 2)
        self.out("}", ind + 1)
        if lanes:
            self.masks.pop()
        self.out("}", ind)

    def strip_run(self, s: ir.For, phase: _Phase, names: list[str], width: str, c: int, lanes: bool,
                  ind: int, unroll: int = 0, split: bool = False) -> None:
        """One strip of :meth:`strip_loop`: ``width`` work-items from ``hal_x0`` run the trips of loop
        ``c``, ``names`` in strip-local arrays; ``unroll``: the trips' ``#pragma GCC unroll``, if any.
        A uniform loop's variable takes each trip's value here. ``split`` (a lane-varying loop, see
        :meth:`splittable`): a full strip first runs the trips that all the group's work-items run,
        without the mask (:meth:`full_trips`)."""
        cap = _STRIP if lanes else _BUNDLE
        self.out(f"const int32_t hal_xn = {width};", ind)
        for name in names:
            self.strip[name] = f"K{self.names[name]}"
            self.out(f"{self.c_type(self.var_types[name])} K{self.names[name]}[{cap}];", ind)
            self.lanes_for(f"K{self.names[name]}[hal_j] = R{self.names[name]}[wrow + hal_x0 + hal_j];", lanes, ind)
        first = "0"
        if split:
            first = f"hal_f{c}"
            self.out(f"uint64_t {first} = 0;", ind)
            self.out(f"if (hal_xn == {_STRIP}) {{  /* a full strip: its constant width vectorises best */", ind)
            self.out(f"const int32_t hal_xn = {_STRIP};", ind + 1)
            self.full_trips(s, phase, c, ind + 1)
            self.out(f"{first} = hal_lo{c};", ind + 1)
            self.out("}", ind)
        t = f"hal_t{c}"
        if unroll:
            self.out(f"#pragma GCC unroll {unroll}", ind)
        self.out(f"for (uint64_t {t} = {first}; {t} < hal_n{c if lanes else ''}; {t}++) {{", ind)
        if lanes:
            self.prefetch(s, phase, c, ind + 1)
        value = _loop_value(t, self.var_types[s.var])
        if not lanes and s.var in self.plan.group_scalars:
            self.out(f"{self.names[s.var]} = {value};", ind + 1)
        self.out("HAL_IVDEP", ind + 1)
        self.lanes_for("{", lanes, ind + 1)
        self.out(_STRIP_LANE, ind + 2)
        if not lanes and s.var not in self.plan.group_scalars:
            self.out(f"{self.storage(s.var, 'w')} = {value};", ind + 2)
        self.phase_body(phase, ind + 2)
        self.out("}", ind + 1)
        self.out("}", ind)
        self.strip = {}
        for name in names:
            self.lanes_for(f"R{self.names[name]}[wrow + hal_x0 + hal_j] = K{self.names[name]}[hal_j];", lanes, ind)

    def splittable(self, s: ir.For) -> bool:
        """Whether the strips of lane-varying loop ``s`` may run their common trips unmasked
        (:meth:`full_trips`): only its own bound can then stop a lane (no state byte, no enclosing
        lane-varying loop), and the body leaves its variable alone, so that its final value is known
        from the trip count."""
        return not (self.plan.state or self.masks
                    or any(isinstance(x, ir.Assign) and x.target == s.var for x in ir.walk_statements(s.body)))

    def full_trips(self, s: ir.For, phase: _Phase, c: int, ind: int) -> None:
        """In a full strip of lane-varying loop ``c``: the trips that every work-item of the group runs
        (``hal_lo<c>``, the least trip count), without the mask or the store of the loop variable:
        at the strip's constant width gcc then holds its variables in registers across trips (the
        grid-stride sum's trip: one ``vaddps`` per 16 work-items instead of ~25 instructions with a
        load and a store of the sum; 1.9x faster along with ``_PREFETCH``). Then the variable's value
        after trip ``hal_lo<c> - 1``. Trips from there on run masked, as before, and set it for the
        work-items that go on. Partial strips (work-groups narrower than a strip, a row's remainder)
        run all their trips masked: unmasked too, 64- and 128-wide grid-stride sums ran ~25% faster,
        but gcc took ~0.1 s longer over a third copy of the body."""
        vt = self.var_types[s.var]
        start = self.cast(self.expr(s.start, "w"), s.start.type, vt)
        t = f"hal_t{c}"
        self.out(f"for (uint64_t {t} = 0; {t} < hal_lo{c}; {t}++) {{", ind)
        self.prefetch(s, phase, c, ind + 1)
        self.out("HAL_IVDEP", ind + 1)
        self.lanes_for("{", True, ind + 1)
        self.out(_STRIP_LANE, ind + 2)
        self.unmasked = c
        self.phase_body(phase, ind + 2)
        self.unmasked = 0
        self.out("}", ind + 1)
        self.out("}", ind)
        if s.var in self.strip:
            self.out(f"if (hal_lo{c} > 0)", ind)
            self.lanes_for(f"{{ {_STRIP_LANE} {self.storage(s.var, 'w')} = ({vt.c_name})((int64_t)({start}) + "
                           f"(int64_t)(hal_lo{c} - 1) * hal_sp_{c}); }}", True, ind + 1)

    def lanes_for(self, body: str, lanes: bool, ind: int) -> None:
        """``for`` over a strip's lanes, then ``body``. A bundle's is kept rolled (``HAL_BUNDLE_LANES``):
        with its constant width gcc would unroll it first, then build vectors element by element
        (copies) or vectorise the trips around it in order, one lane after another (the body). Clang
        is told the width instead: at its own (8, one interleave) the lanes stayed a loop."""
        if not lanes:
            self.out("HAL_BUNDLE_LANES", ind)
        self.out(f"for (int32_t hal_j = 0; hal_j < hal_xn; hal_j++) {body}", ind)

    def prefetch(self, s: ir.For, phase: _Phase, c: int, ind: int) -> None:
        """In a strip's trip of lane-varying loop ``c``: prefetch, ``_PREFETCH`` trips ahead, one
        element per cache line of the strip for each global load at the loop variable plus uniform
        terms (:meth:`ahead`). A prefetch never faults, so the lanes past their range may ask too."""
        if not self.trip_invariant(s.start):  # it reads an enclosing lane-varying loop's variable
            return
        loads = {(e.buffer, e.index, e.type.np_dtype.itemsize) for e in walk_expressions(phase.stmts)
                 if isinstance(e, ir.Load) and e.space == "global" and self.ahead(e.index, s.var)}
        start = self.cast(self.expr(s.start, "w"), s.start.type, self.var_types[s.var])
        for buffer, index, size in sorted(loads, key=repr):
            self.out(f"for (int32_t hal_j = 0; hal_j < hal_xn; hal_j += {max(64 // size, 1)}) {{", ind)
            self.out(_STRIP_LANE, ind + 1)
            self.out(f"const int64_t hal_v{c} = (int64_t)({start}) + (int64_t)(hal_t{c} + {_PREFETCH}) * "
                     f"hal_sp_{c};", ind + 1)
            self.out(f"__builtin_prefetch(&{self.names[buffer]}[{self.expr(index, 'w')}], 0, {_PREFETCH_LOCALITY});", ind + 1)
            self.out("}", ind)

    def ahead(self, index: ir.Expr, var: str) -> bool:
        """Whether ``index`` is ``var`` plus or minus terms that are the same on every trip (constants,
        unassigned scalar parameters, thread indices, group scalars, rematerialised values): evaluated
        a few trips ahead it then only moves by whole steps, and it cannot overflow doing so."""
        if isinstance(index, ir.Var) and index.name == var:
            return True
        if isinstance(index, ir.Cast) and index.value.type.is_int:
            return self.ahead(index.value, var)
        if isinstance(index, ir.Binary) and index.op in ("add", "sub"):
            return ((self.ahead(index.lhs, var) and self.trip_invariant(index.rhs))
                    or (index.op == "add" and self.ahead(index.rhs, var) and self.trip_invariant(index.lhs)))
        return False

    def trip_invariant(self, e: ir.Expr) -> bool:
        """Whether ``e`` reads no memory and only values a strip's trips share."""
        if isinstance(e, ir.Load):
            return False
        if isinstance(e, ir.Var) and not (e.name in self.plan.group_scalars or e.name in self.plan.remat
                                          or (e.name in self.params and e.name not in self.assigned)):
            return False
        return all(self.trip_invariant(x) for x in ir.children(e))

    def lane_masks(self, ind: int) -> None:
        """In a lane loop: skip a work-item that left, or whose lane-varying loops ran out; else set
        their variables (``start + t * step``, exact in int64 for 32-bit variables)."""
        if self.plan.state:
            self.out("if (hal_st[w]) continue;", ind)
        for s, c in self.masks:
            vt = self.var_types[s.var]
            start = self.cast(self.expr(s.start, "w"), s.start.type, vt)
            self.out(f"const int64_t hal_v{c} = (int64_t)({start}) + (int64_t)hal_t{c} * hal_sp_{c};", ind)
            if c == self.unmasked:
                continue
            self.out(f"if (hal_sp_{c} > 0 ? hal_v{c} >= hal_s1_{c} : hal_v{c} <= hal_s1_{c}) continue;", ind)
            self.out(f"{self.storage(s.var, 'w')} = ({vt.c_name})hal_v{c};", ind)

    # ----------------------------------------------------------- work-items
    def lane_loop(self, ind: int) -> None:
        """Open the loop nest over the work-items of a group (``w``: linear id); two braces to close."""
        self.out("for (int32_t lz = 0; lz < bz; lz++) for (int32_t ly = 0; ly < by; ly++) {", ind)
        self.out("const int64_t wrow = ((int64_t)lz * by + ly) * bx; (void)wrow;", ind + 1)
        self.out("HAL_IVDEP", ind + 1)
        self.out("for (int32_t lx = 0; lx < bx; lx++) {", ind + 1)
        self.out("const int64_t w = wrow + lx; (void)w;", ind + 2)

    def phase(self, phase: _Phase, ind: int) -> None:
        self.lane_loop(ind)
        self.phase_body(phase, ind + 2)
        self.out("}", ind + 1)
        self.out("}", ind)

    def phase_body(self, phase: _Phase, ind: int) -> None:
        """One work-item's share of ``phase``, inside a lane loop (``w``, ``lx``, ``ly``, ``lz`` set)."""
        self.lane_masks(ind)
        refs = _referenced(phase.stmts)
        for name in sorted(refs):
            if name in self.decls:
                a = self.decls[name]
                if a.space == "local" and name not in self.plan.local_rows:
                    self.out(f"{self.c_type(a.type)} {self.names[name]}[{max(a.size, 1)}];", ind)
                elif name in self.plan.local_rows:
                    self.out(f"{self.c_type(a.type)} *const {self.names[name]} = R{self.names[name]} + "
                             f"w * {a.size};", ind)
            elif (name in self.var_types and name not in self.plan.arrays and name not in self.plan.group_scalars
                  and name not in self.plan.remat
                  and (name not in self.params or name in self.assigned)):
                init = f"A_{_ident(name)}" if name in self.params else "0"
                self.out(f"{self.var_type(name)} L{self.names[name]} = {init};", ind)
        self.labels += 1  # not the phase's index: a phase run by bundles is emitted twice
        self.label = f"hal_wi_end{self.labels}"
        self.block(phase.stmts, ind, 0, self.plan.group_depth(phase))
        self.out(f"{self.label}: ;", ind)

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
        elif isinstance(s, ir.Collective):
            self.collective(s, ind)
        elif isinstance(s, ir.Fence):
            self.fence(s, ind)
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
            self.out(_STOP_CHECK, ind + 1)
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
        before, after = ordering_fences(s.order) if s.space == "global" else (None, None)
        if before:
            self.out(f"__atomic_thread_fence(__ATOMIC_{before.upper()});", ind)
        if s.result is None:
            self.out(f"(void){call};", ind)
        else:
            rt = self.var_types[s.result]
            self.out(f"{self.var(s.result, 'w')} = {self.cast(call, s.type, rt)};", ind)
        if after:
            self.out(f"__atomic_thread_fence(__ATOMIC_{after.upper()});", ind)

    def fence(self, s: ir.Fence, ind: int) -> None:
        """A device fence is C11's; a work-group's work-items run on this thread in turn, so for them
        only the compiler must not move accesses across it."""
        fn = "__atomic_thread_fence" if s.scope == "device" else "__atomic_signal_fence"
        self.out(f"{fn}(__ATOMIC_SEQ_CST);", ind)

    # ---------------------------------------------------------- expressions
    def c_type(self, t: ScalarType) -> str:
        return t.c_name

    def var_type(self, name: str) -> str:
        """C type of a scalar's phase-local or group-level copy (per-work-item arrays keep ``c_type``)."""
        return "int64_t" if self.fast and name in self.ranges.widened else self.c_type(self.var_types[name])

    def var(self, name: str, thread: str | None) -> str:
        if thread is not None and any(s.var == name for s, _ in self.masks):
            # inside its lane-varying loop: the exact int64 value (gcc sees the index as affine)
            return f"hal_v{next(k for s, k in reversed(self.masks) if s.var == name)}"
        return self.storage(name, thread)

    def storage(self, name: str, thread: str | None) -> str:
        """Where a scalar lives: a per-group scalar, a work-item's array element or a phase-local."""
        c = self.names[name]
        if name in self.plan.remat:
            return f"({self.expr(self.plan.remat[name], thread)})"
        if name in self.plan.group_scalars:
            return c
        if thread is not None and name in self.strip:
            return f"{self.strip[name]}[hal_j]"
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
        return _cast(code, src, dst)

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
            t = ir.call_type(e)
            args = [self.cast(self.expr(x, thread, line), x.type, t) for x in e.args]
            return _call(e.func, args, t)
        raise CompileError(f"unknown expression {type(e).__name__}", self.k.source_file, line)


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
