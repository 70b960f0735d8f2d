"""IR -> SIMT C: one work-item per hardware thread, the dialect-independent part.

GPU-style runtimes (OpenCL, CUDA, HIP, Level Zero) run a kernel as one thread per work-item, so
the IR prints almost line for line: no phases and no loop fission as in :mod:`hal.kernel.cemit`
(where a CPU core loops over work-items), a barrier is the dialect's barrier. This module owns
everything that follows from the IR's semantics — wrapping integers, floor ``//`` and ``%``,
``range`` trip counts, NaN-propagating min/max (the portable helpers of :mod:`._cprelude`), bounds
checks and their fault records, argument layout — and a :class:`Dialect` supplies only spelling:
qualifiers, thread indices, the barrier, the atomics and the prelude. :mod:`hal.kernel.opencl`
is the first dialect; a CUDA one adds its own class and nothing else.

Arguments: a pointer parameter ``x`` is three kernel arguments (the allocation, the byte offset
of element 0, the element count), a scalar one argument (``bool`` as ``uchar``), and the kernel
ends with the fault record (``int32 [FAULT_WORDS]``) and the launch's number. A fault (an
out-of-bounds access in checked mode, a zero ``range`` step) is written once, by the first
work-item to claim the record; the access continues at index 0 (in bounds: buffers are padded),
and the host turns the record into a ``DeviceFault`` with :func:`fault_message`.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._errors import CompileError, DeviceFault
from . import _cexpr, _cnarrow, _cprelude, ir
from ._cexpr import _SUFFIX, _binary, _call, _cast, _const, _ident, _loop_value, _unary
from .analysis import check_barriers
from .types import ScalarType, half_bits

SIMT_VERSION = 1
"""Bump when the generated code changes meaning (caches key on it)."""
FAULT_WORDS = 16
"""int32 words of the fault record: [claimed, launch, site, gx, gy, gz, grx, gry, grz, lx, ly, lz,
index lo, index hi, size lo, size hi]."""
ZERO_STEP = -1
"""Site number of a zero ``range`` step (sites >= 0 are bounds-checked accesses)."""
SOURCES = (Path(__file__), *(Path(inspect.getfile(m)) for m in (_cexpr, _cnarrow, _cprelude)))
"""The files the generated code depends on (a dialect adds its own): kernel caches hash them."""
THREAD_KINDS = ("global_id", "local_id", "group_id", "local_size", "num_groups", "global_size")
_REDUCE_FN = {"reduce_add": "add", "reduce_max": "max", "reduce_min": "min"}
"""The portable helper (``hal_<fn>_<type>`` of :mod:`._cprelude`) of each reduction."""


@dataclass(frozen=True)
class Site:
    """A place that can fault: its source line and what it does (for the message)."""

    line: int
    what: str


@dataclass(frozen=True)
class SimtSource:
    """Generated source and what a runtime needs to launch it and explain its faults."""

    text: str
    entry: str
    sites: tuple[Site, ...]
    can_fault: bool
    """Whether the kernel writes the fault record at all (checked, or a ``range`` step that may be 0)."""
    where: str
    """``kernel 'name' at file``: the prefix of fault messages."""


_ARG_CODES = {"bool": "B", "i8": "b", "u8": "B", "i16": "h", "u16": "H", "i32": "i", "u32": "I", "i64": "q",
              "u64": "Q", "f16": "H", "bf16": "H", "f32": "f", "f64": "d"}


@dataclass(frozen=True)
class ArgLayout:
    """The entry point's arguments before the fault record (see the module docstring), for runtimes
    that set them one by one or pack them into a block: ``codes`` holds a ``struct`` code per slot
    (a pointer is "Q" for its buffer's handle, then "q" for its byte offset and "q" for its count),
    ``buffers`` the slots of buffer handles, ``halves`` the slots of f16/bf16 scalars with the
    conversion of a host number to their bits, ``pointers`` which parameters are pointers."""

    codes: tuple[str, ...]
    buffers: tuple[int, ...]
    halves: tuple[tuple[int, Callable[[Any], int]], ...]
    pointers: tuple[bool, ...]

    @classmethod
    def of(cls, kernel: ir.Kernel) -> ArgLayout:
        codes: list[str] = []
        buffers: list[int] = []
        halves: list[tuple[int, Callable[[Any], int]]] = []
        for p in kernel.params:
            if p.pointer:
                buffers.append(len(codes))
                codes += ("Q", "q", "q")
                continue
            if p.type.is_narrow and p.type.is_float:
                halves.append((len(codes), half_bits(p.type)))
            codes.append(_ARG_CODES[p.type.value])
        return cls(tuple(codes), tuple(buffers), tuple(halves), tuple(p.pointer for p in kernel.params))

    @property
    def entry_codes(self) -> tuple[str, ...]:
        """Every slot of the entry point: the arguments', then the fault record's address ("Q", at
        slot ``len(codes)``) and the launch's number ("i")."""
        return (*self.codes, "Q", "i")

    def values(self, args: Sequence[Any]) -> list[Any]:
        """One value per slot: a pointer argument (``hal.backend.BufferArg``) as its buffer's
        ``handle``, offset and size; 16-bit floats as their bits."""
        values: list[Any] = []
        for pointer, a in zip(self.pointers, args):
            if pointer:
                values += (a.buffer.handle, a.offset, a.size)
            else:
                values.append(a)
        for slot, bits in self.halves:
            values[slot] = bits(values[slot])
        return values


class Dialect(ABC):
    """The spelling of one SIMT C dialect."""

    name: str
    global_space: str
    """Qualifier of pointers to device memory (``__global``, or empty)."""
    shared_space: str
    """Qualifier of a work-group array declaration (``__local``, ``__shared__``)."""
    kernel_prefix: str
    """What precedes ``void`` in the entry's definition (``__kernel``, ``extern "C" __global__``)."""
    barrier: str
    subgroup_size: int = 1
    """``S`` of the kernel's subgroups (a power of two): the device's ``DeviceInfo.subgroup_size``.
    Subgroups are aligned runs of ``S`` linear local ids, so a dialect with ``S > 1`` must run them
    in the hardware's subgroups of that size (a CUDA warp: linear thread id / 32) and spell
    :meth:`shuffle`; with ``S == 1`` the collectives are plain code."""
    max_group_size: int = 1024
    """Most work-items of a work-group: the size of the scratch array of ``hal.group_reduce_*``."""

    @abstractmethod
    def prelude(self, uses: frozenset[ScalarType]) -> str:
        """Pragmas, type names of ``ScalarType.c_name``, C99 math names, atomics and the fault writer
        ``hal_fault(F, launch, site, i, n)``; ``uses``: the scalar types the kernel touches."""

    @abstractmethod
    def thread_index(self, kind: str, dim: int) -> str:
        """An ``int32_t`` expression for one of THREAD_KINDS in dimension ``dim``."""

    @abstractmethod
    def atomic(self, op: str, space: str, t: ScalarType, ref: str, operands: list[str]) -> str:
        """The old value of ``hal.atomic_<op>`` on the element ``ref`` (in ``space``), or raise
        UnsupportedError when the device cannot do it."""

    def shuffle(self, value: str, lane: str, t: ScalarType) -> str | None:
        """The ``t`` value ``value`` of lane ``lane`` (``0 <= lane < S``) of this subgroup, as an
        expression every work-item of the subgroup evaluates (only asked when ``subgroup_size > 1``).
        None (the default): the emitter exchanges it through work-group memory instead (a store, a
        barrier, a load, a barrier: correct because collectives sit in uniform control flow)."""
        return None

    @abstractmethod
    def fence(self, scope: str, order: str) -> str:
        """A fence statement (without ``;``) of C11 order ``order`` (``acquire``, ``release`` or
        ``seq_cst``) for the work-items of ``scope`` (one of ``ir.FENCE_SCOPES``)."""

    def vote(self, op: str, pred: str) -> str | None:
        """``any``/``all`` (an int, 0 or 1) or ``ballot`` (lane bits, as an unsigned integer) of the
        int ``pred`` over this subgroup, or None (the default: gathered with :meth:`shuffle`)."""
        return None

    def storage(self, t: ScalarType) -> str:
        """The C type of ``t`` in memory and in kernel arguments (``bool`` has no fixed size)."""
        return "uchar" if t == ScalarType.BOOL else t.c_name


def ordering_fences(order: str) -> tuple[str | None, str | None]:
    """The fences around a relaxed atomic that give it C11 order ``order``: a release fence before
    (``release``, ``acq_rel``), an acquire fence after (``acquire``, ``acq_rel``), seq_cst fences on
    both sides (``seq_cst``). Fence-to-fence synchronisation is C11's own (7.17.4), so every dialect
    keeps its relaxed atomics and adds only its fence."""
    return {"relaxed": (None, None), "acquire": (None, "acquire"), "release": ("release", None),
            "acq_rel": ("release", "acquire"), "seq_cst": ("seq_cst", "seq_cst")}[order]


def emit(kernel: ir.Kernel, dialect: Dialect, *, checked: bool = False, entry: str = "hal_entry") -> SimtSource:
    """The kernel in ``dialect``; raises CompileError for a barrier in divergent control flow (and for
    a subgroup collective in control flow not uniform within the dialect's subgroups, or, where it
    exchanges through work-group memory, within the work-group)."""
    size = dialect.subgroup_size
    through_memory = size > 1 and any(
        isinstance(st, ir.Collective) and st.scope == "subgroup" and dialect.shuffle("v", "0", st.type) is None
        for st in ir.walk_statements(kernel.body))
    check_barriers(kernel, None if through_memory else size)
    return _Simt(kernel, dialect, checked).source(entry)


def first_fault(record: Sequence[int] | npt.NDArray[np.int32], launches: Sequence[Any]) -> DeviceFault | None:
    """The DeviceFault of a queue's fault record read back after a synchronize (``record[0]`` set:
    claimed), ``launches`` being the executables (with their ``source``) of the launches that could
    write it, by launch number; None when no fault was claimed."""
    if not record[0]:
        return None
    return DeviceFault(fault_message(launches[int(record[1])].source, [int(v) for v in record]))


def fault_message(source: SimtSource, record: list[int]) -> str:
    """The DeviceFault text of a claimed fault record, worded like the reference interpreter's."""
    site = record[2]
    index = (record[12] & 0xFFFFFFFF) | (record[13] << 32)
    size = (record[14] & 0xFFFFFFFF) | (record[15] << 32)
    if site == ZERO_STEP:
        line, what = record[14], "range() step is zero"
    else:
        s = source.sites[site]
        line, what = s.line, f"out-of-bounds {s.what}: index {index} is outside [0, {size})"
    g, grp, loc = record[3:6], record[6:9], record[9:12]
    return (f"{source.where}:{line}: {what} for thread global ({g[0]}, {g[1]}, {g[2]}) "
            f"(group ({grp[0]}, {grp[1]}, {grp[2]}), local ({loc[0]}, {loc[1]}, {loc[2]}))")


@dataclass
class _Simt:
    k: ir.Kernel
    d: Dialect
    checked: bool
    lines: list[str] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    counter: int = 0
    zero_step: bool = False

    def __post_init__(self) -> None:
        k = self.k
        self.params = {p.name: p for p in k.params}
        self.types: dict[str, ScalarType] = {p.name: p.type for p in k.params if not p.pointer}
        self.types.update((n, t) for n, t in k.variables if n not in self.params)
        self.decls = {a.name: a for a in k.arrays}
        self.names: dict[str, str] = {n: f"v{i}_{_ident(n)}" for i, (n, _) in enumerate(k.variables)}
        self.names.update((p.name, ("P_" if p.pointer else "A_") + _ident(p.name)) for p in k.params)
        self.names.update((a.name, ("S" if a.space == "shared" else "L") + f"{i}_{_ident(a.name)}")
                          for i, a in enumerate(k.arrays))

    def out(self, text: str, ind: int) -> None:
        self.lines.append("    " * ind + text)

    def source(self, entry: str) -> SimtSource:
        k, d = self.k, self.d
        g = d.global_space
        args, head = [], []
        for p in k.params:
            n, t = self.names[p.name], d.storage(p.type)
            if p.pointer:
                args += [f"{g} {t} *B{n}", f"int64_t O{n}", f"int64_t N{n}"]
                head.append(f"{g} {t} *const {n} = ({g} {t} *)(({g} uchar *)B{n} + O{n}); (void)N{n};")
            else:
                args.append(f"{t} a{n}")
                head.append(f"{p.type.c_name} {n} = ({p.type.c_name})a{n};")
        args += [f"{g} int *hal_F", "int hal_L"]
        for a in k.arrays:
            space = d.shared_space if a.space == "shared" else ""
            head.append(f"{space} {d.storage(a.type)} {self.names[a.name]}[{max(a.size, 1)}];".lstrip())
        head += [f"{t.c_name} {self.names[n]} = 0;" for n, t in self.types.items() if n not in self.params]
        head += self.collective_head()
        self.block(k.body, 1)
        uses = frozenset({*(p.type for p in k.params), *self.types.values(), *(a.type for a in k.arrays)})
        where = f"kernel {k.name!r} at {k.source_file or '<unknown>'}"
        text = "\n".join([
            f"/* generated by hal.kernel.simt v{SIMT_VERSION} ({d.name}){' (checked)' if self.checked else ''} */",
            d.prelude(uses),
            f"{d.kernel_prefix} void {entry}({', '.join(args)}) {{",
            *("    " + h for h in head),
            *self.lines,
            "}", ""])
        return SimtSource(text, entry, tuple(self.sites), self.checked or self.zero_step, where)

    # ------------------------------------------------------------ statements
    def block(self, body: tuple[ir.Stmt, ...], ind: int) -> None:
        for s in body:
            self.stmt(s, ind)

    def stmt(self, s: ir.Stmt, ind: int) -> None:
        if isinstance(s, ir.Assign):
            self.out(f"{self.names[s.target]} = {self.expr(s.value, s.line)};", ind)
        elif isinstance(s, ir.Store):
            self.out(f"{self.element(s.buffer, s.space, s.index, 'store', s.line)} = {self.expr(s.value, s.line)};",
                     ind)
        elif isinstance(s, ir.AtomicRMW):
            ref = self.element(s.buffer, s.space, s.index, f"atomic_{s.op}", s.line)
            ops = [_cast(self.expr(e, s.line), e.type, s.type) for e in s.operands]
            call = self.d.atomic(s.op, s.space, s.type, ref, ops)
            before, after = ordering_fences(s.order)
            if before:
                self.out(f"{self.d.fence('device', before)};", ind)
            if s.result is None:
                self.out(f"(void){call};", ind)
            else:
                self.out(f"{self.names[s.result]} = {_cast(call, s.type, self.types[s.result])};", ind)
            if after:
                self.out(f"{self.d.fence('device', after)};", ind)
        elif isinstance(s, ir.Fence):
            self.out(f"{self.d.fence(s.scope, 'seq_cst')};", ind)
        elif isinstance(s, ir.If):
            self.out(f"if ({self.expr(s.cond, s.line)}) {{", ind)
            self.block(s.then, ind + 1)
            if s.orelse:
                self.out("} else {", ind)
                self.block(s.orelse, ind + 1)
            self.out("}", ind)
        elif isinstance(s, ir.For):
            self.range_loop(s, ind)
        elif isinstance(s, ir.While):
            self.out(f"while ({self.expr(s.cond, s.line)}) {{", ind)
            self.block(s.body, ind + 1)
            self.out("}", ind)
        elif isinstance(s, ir.Break):
            self.out("break;", ind)
        elif isinstance(s, ir.Continue):
            self.out("continue;", ind)
        elif isinstance(s, ir.Return):
            self.out("return;", ind)
        elif isinstance(s, ir.Barrier):
            self.out(f"{self.d.barrier};", ind)
        elif isinstance(s, ir.Collective):
            self.collective(s, ind)
        else:
            raise CompileError(f"unexpected statement {type(s).__name__}", self.k.source_file, s.line)

    # ----------------------------------------------------------- collectives
    def collective_head(self) -> list[str]:
        """Declarations the collectives use: the linear local id, the subgroup's lanes, and one
        work-group scratch array per type that ``hal.group_reduce_*`` reduces."""
        collectives = [s for s in ir.walk_statements(self.k.body) if isinstance(s, ir.Collective)]
        lanes = any(isinstance(e, ir.ThreadIndex) and e.kind in ir.SUBGROUP_INDICES
                    for s in ir.walk_statements(self.k.body) for x in ir.statement_expressions(s)
                    for e in _walk(x))
        if not collectives and not lanes:
            return []
        li = [self.d.thread_index("local_id", d) for d in range(3)]
        ls = [self.d.thread_index("local_size", d) for d in range(3)]
        size = self.d.subgroup_size
        head = [f"const int32_t hal_tpg = {ls[0]} * {ls[1]} * {ls[2]}; (void)hal_tpg;",
                f"const int32_t hal_lid = {li[0]} + {ls[0]} * ({li[1]} + {ls[1]} * {li[2]}); (void)hal_lid;",
                f"const int32_t hal_lane = hal_lid % {size}; (void)hal_lane;",
                f"const int32_t hal_lanes = min({size}, hal_tpg - (hal_lid - hal_lane)); (void)hal_lanes;"]
        scratch = {s.type for s in collectives if s.scope == "group"}
        if size > 1:
            scratch |= {s.type for s in collectives if s.scope == "subgroup"
                        and self.d.shuffle("hal_v", "0", s.type) is None}
        for t in sorted(scratch, key=lambda t: t.value):
            head.append(f"{self.d.shared_space} {self.d.storage(t)} hal_red_{t.value}[{self.d.max_group_size}];")
        return head

    def shuffle(self, dst: str, value: str, lane: str, t: ScalarType, ind: int) -> None:
        """``dst = value`` of lane ``lane`` of this subgroup: the dialect's instruction, or work-group memory."""
        native = self.d.shuffle(value, lane, t)
        if native is not None:
            self.out(f"{dst} = {native};", ind)
            return
        red = f"hal_red_{t.value}"
        self.out(f"{red}[hal_lid] = {value};", ind)
        self.out(f"{self.d.barrier};", ind)
        self.out(f"{dst} = {red}[hal_lid - hal_lane + ({lane})];", ind)
        self.out(f"{self.d.barrier};", ind)

    def collective(self, s: ir.Collective, ind: int) -> None:
        """Every work-item of the subgroup (work-group) runs this together (uniform control flow)."""
        value = _cast(self.expr(s.args[0], s.line), s.args[0].type, s.type)
        result, rt, t = self.names[s.result], self.types[s.result], s.type
        self.out("{", ind)
        self.out(f"const {t.c_name} hal_v = {value};", ind + 1)
        if self.checked and s.op in ir.SHUFFLE_OPS and s.op != "shuffle":
            self.sites.append(Site(s.line, f"hal.{s.op}(v, d) distance (below hal.subgroup_size() = "
                                           f"{self.d.subgroup_size}, else the result depends on the device)"))
            self.out(f"(void)hal_chk(hal_F, hal_L, {len(self.sites) - 1}, (int64_t)({self.expr(s.args[1], s.line)}), "
                     f"{self.d.subgroup_size});", ind + 1)
        if s.scope == "group":
            self.group_reduce(s, ind + 1)
        elif self.d.subgroup_size == 1:  # one lane: every collective is the identity
            if len(s.args) > 1:
                self.out(f"(void)({self.expr(s.args[1], s.line)});", ind + 1)
            self.out(f"{t.c_name} hal_x = {'0' if s.op == 'scan_exclusive_add' else 'hal_v'};", ind + 1)
        elif s.op in ir.SHUFFLE_OPS:
            arg = self.expr(s.args[1], s.line)
            src = {"shuffle": f"({arg})", "shuffle_xor": f"(hal_lane ^ ({arg}))", "shuffle_up": f"(hal_lane - ({arg}))",
                   "shuffle_down": f"(hal_lane + ({arg}))"}[s.op]
            self.out(f"const int32_t hal_src = {src};", ind + 1)
            self.out("const int hal_ok = hal_src >= 0 && hal_src < hal_lanes;", ind + 1)
            self.out(f"{t.c_name} hal_y;", ind + 1)
            self.shuffle("hal_y", "hal_v", "hal_ok ? hal_src : hal_lane", t, ind + 1)
            self.out(f"{t.c_name} hal_x = hal_ok ? hal_y : hal_v;", ind + 1)
        elif s.op in ir.VOTE_OPS:
            self.vote(s.op, rt, ind + 1)
            self.out(f"{result} = hal_x;", ind + 1)
            self.out("}", ind)
            return
        elif s.op in ir.SCAN_OPS:
            fn = f"hal_add_{_SUFFIX[t]}"
            self.out(f"{t.c_name} hal_x = hal_v;", ind + 1)
            self.out(f"for (int32_t hal_s = 1; hal_s < {self.d.subgroup_size}; hal_s *= 2) {{", ind + 1)
            self.out(f"{t.c_name} hal_y;", ind + 2)
            self.shuffle("hal_y", "hal_x", "hal_lane >= hal_s ? hal_lane - hal_s : hal_lane", t, ind + 2)
            self.out(f"if (hal_lane >= hal_s) hal_x = {fn}(hal_y, hal_x);", ind + 2)
            self.out("}", ind + 1)
            if s.op == "scan_exclusive_add":
                self.out(f"{t.c_name} hal_y;", ind + 1)
                self.shuffle("hal_y", "hal_x", "hal_lane >= 1 ? hal_lane - 1 : hal_lane", t, ind + 1)
                self.out(f"hal_x = hal_lane >= 1 ? hal_y : ({t.c_name})0;", ind + 1)
        else:
            fn = f"hal_{_REDUCE_FN[s.op]}_{_SUFFIX[t]}"
            self.out(f"{t.c_name} hal_x = hal_v;", ind + 1)
            self.out(f"for (int32_t hal_s = 1; hal_s < {self.d.subgroup_size}; hal_s *= 2) {{", ind + 1)
            self.out("const int32_t hal_p = hal_lane + hal_s;", ind + 2)
            self.out(f"{t.c_name} hal_y;", ind + 2)
            self.shuffle("hal_y", "hal_x", "hal_p < hal_lanes ? hal_p : hal_lane", t, ind + 2)
            self.out(f"if (hal_lane % (2 * hal_s) == 0 && hal_p < hal_lanes) hal_x = {fn}(hal_x, hal_y);", ind + 2)
            self.out("}", ind + 1)
            self.shuffle("hal_x", "hal_x", "0", t, ind + 1)
        if s.scope != "group":
            self.out(f"{result} = {_cast('hal_x', t, rt)};", ind + 1)
        else:
            self.out(f"{result} = {_cast(f'hal_red_{t.value}[0]', t, rt)};", ind + 1)
            self.out(f"{self.d.barrier};", ind + 1)
        self.out("}", ind)

    def vote(self, op: str, rt: ScalarType, ind: int) -> None:
        """``hal_x`` (of type ``rt``) = the vote of ``hal_v`` (a bool) over the subgroup: the dialect's
        instruction, or a ballot gathered lane by lane with shuffles."""
        native = self.d.vote(op, "hal_v")
        if native is not None:
            self.out(f"{rt.c_name} hal_x = ({rt.c_name})({native});", ind)
            return
        self.out("uint64_t hal_b = 0;", ind)
        self.out(f"for (int32_t hal_j = 0; hal_j < {self.d.subgroup_size}; hal_j++) {{", ind)
        self.out("int32_t hal_p;", ind + 1)
        self.shuffle("hal_p", "(int32_t)(hal_v != 0)", "hal_j < hal_lanes ? hal_j : hal_lane", ScalarType.I32, ind + 1)
        self.out("if (hal_j < hal_lanes && hal_p) hal_b |= (uint64_t)1 << hal_j;", ind + 1)
        self.out("}", ind)
        every = "(hal_lanes == 64 ? ~(uint64_t)0 : (((uint64_t)1 << hal_lanes) - 1))"
        value = {"ballot": "hal_b", "any": "hal_b != 0", "all": f"hal_b == {every}"}[op]
        self.out(f"{rt.c_name} hal_x = ({rt.c_name})({value});", ind)

    def group_reduce(self, s: ir.Collective, ind: int) -> None:
        """The IR's tree over linear local ids in work-group scratch memory, one barrier per level.
        The caller reads ``scratch[0]`` and ends with a barrier, so the scratch may be reused."""
        red, fn = f"hal_red_{s.type.value}", f"hal_{_REDUCE_FN[s.op]}_{_SUFFIX[s.type]}"
        self.out(f"{red}[hal_lid] = hal_v;", ind)
        self.out(f"{self.d.barrier};", ind)
        self.out("for (int32_t hal_s = 1; hal_s < hal_tpg; hal_s *= 2) {", ind)
        self.out(f"if (hal_lid % (2 * hal_s) == 0 && hal_lid + hal_s < hal_tpg) "
                 f"{red}[hal_lid] = {fn}({red}[hal_lid], {red}[hal_lid + hal_s]);", ind + 1)
        self.out(f"{self.d.barrier};", ind + 1)
        self.out("}", ind)

    def range_loop(self, s: ir.For, ind: int) -> None:
        """Python ``range`` semantics: bounds once, trip count exact in uint64, a zero step faults."""
        vt = self.types[s.var]
        start, stop, step = (_cast(self.expr(e, s.line), e.type, vt) for e in (s.start, s.stop, s.step))
        self.counter += 1
        t = f"hal_t{self.counter}"
        self.out("{", ind)
        self.out(f"const int64_t hal_s0 = (int64_t)({start}), hal_s1 = (int64_t)({stop}), "
                 f"hal_sp = (int64_t)({step});", ind + 1)
        if isinstance(s.step, ir.Const) and s.step.value != 0:
            self.out("const uint64_t hal_n = hal_trip(hal_s0, hal_s1, hal_sp);", ind + 1)
        else:
            self.zero_step = True
            self.out(f"const uint64_t hal_n = hal_sp ? hal_trip(hal_s0, hal_s1, hal_sp) "
                     f": (hal_fault(hal_F, hal_L, {ZERO_STEP}, 0, {s.line}), 0);", ind + 1)
        self.out(f"for (uint64_t {t} = 0; {t} < hal_n; {t}++) {{", ind + 1)
        self.out(f"{self.names[s.var]} = {_loop_value(t, vt)};", ind + 2)
        self.block(s.body, ind + 2)
        self.out("}", ind + 1)
        self.out("}", ind)

    # ----------------------------------------------------------- expressions
    def element(self, buffer: str, space: str, index: ir.Expr, verb: str, line: int) -> str:
        c = self.names[buffer]
        idx = self.expr(index, line)
        if not self.checked:
            return f"{c}[{idx}]"
        size = f"N{c}" if space == "global" else str(self.decls[buffer].size)
        self.sites.append(Site(line, f"{verb} {space} buffer '{buffer}'"))
        return f"{c}[hal_chk(hal_F, hal_L, {len(self.sites) - 1}, (int64_t)({idx}), {size})]"

    def expr(self, e: ir.Expr, line: int) -> str:
        if isinstance(e, ir.Const):
            return _const(e.value, e.type)
        if isinstance(e, ir.Var):
            return self.names[e.name]
        if isinstance(e, ir.ThreadIndex):
            if e.kind == "subgroup_size":
                return str(self.d.subgroup_size)
            if e.kind == "subgroup_local_id":
                return "hal_lane"
            return self.d.thread_index(e.kind, e.dim)
        if isinstance(e, ir.Load):
            ref = self.element(e.buffer, e.space, e.index, "load", line)
            return f"({ref} != 0)" if e.type == ScalarType.BOOL else ref
        if isinstance(e, ir.Cast):
            return _cast(self.expr(e.value, line), e.value.type, e.type)
        if isinstance(e, ir.Select):
            c, a, b = (self.expr(x, line) for x in (e.cond, e.if_true, e.if_false))
            return f"(({c}) ? ({a}) : ({b}))"
        if isinstance(e, ir.Unary):
            return _unary(e.op, self.expr(e.operand, line), e.type)
        if isinstance(e, ir.Binary):
            return _binary(e.op, self.expr(e.lhs, line), self.expr(e.rhs, line), e.lhs.type, e.rhs.type, e.type)
        if isinstance(e, ir.Call):
            t = ir.call_type(e)
            return _call(e.func, [_cast(self.expr(x, line), x.type, t) for x in e.args], t)
        raise CompileError(f"unknown expression {type(e).__name__}", self.k.source_file, line)



def _walk(e: ir.Expr) -> list[ir.Expr]:
    """``e`` and all its sub-expressions."""
    out, todo = [], [e]
    while todo:
        x = todo.pop()
        out.append(x)
        todo.extend(ir.children(x))
    return out
