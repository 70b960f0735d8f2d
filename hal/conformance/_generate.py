"""Random kernel programs for the differential tests (``test_differential.py``).

:func:`programs` is a hypothesis strategy that draws a :class:`Program`: the
source text of one ``@hal.kernel`` module, its launch shape and its arguments.
Drawing source text (not IR) is what makes a failure useful: hypothesis shrinks
the choices, and the smallest failing program is printed as a script a vendor
runs as it is (``python repro.py <device>``).

Programs are free of undefined and unspecified behaviour, so every backend must
match the reference interpreter on them:

* float -> integer casts only see clamped, non-NaN values; ``copysign`` never takes the sign of
  a NaN (IEEE 754 leaves it unspecified: x86 makes its invalid-operation NaN negative, LLVM's
  constant folder and other CPUs positive), so a NaN sign operand is replaced by 1.0;
* each thread writes only its own output slots; shared memory is written at
  ``[local_id]`` by every thread unconditionally, read only after a barrier, and
  overwritten only after another; barriers sit under work-group-uniform control only;
* atomics whose old value depends on the order of threads (colliding addresses)
  are statements whose buffer sees one commutative operation only (wrapping
  ``atomic_add``, ``atomic_min``, ``atomic_max``, ``atomic_and``, ``atomic_or`` or ``atomic_xor``
  on integers); old values are
  kept only from a thread's own slots;
* loops have bounded trip counts (``range`` with a non-zero constant step,
  ``while`` with a counter); variables are read only where assigned;
* transcendental functions (exp log sin cos tanh pow erf erfc exp2 log2 log10 log1p
  expm1 rsqrt tan asin acos atan atan2 sinh cosh hypot) feed only the ``approx_*``
  outputs, never other computation, so their libm differences cannot spread;
* narrow types (f16 bf16 i8 u8 i16 u16) are storage: inputs, outputs, scalars, variables
  and casts of their promoted type's expressions, read wherever that type is.

Integer division by zero (0), wrapping arithmetic, shift counts modulo the width,
NaN, infinities, signed zeros and subnormals are defined by the IR and are drawn on purpose.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st

from ..kernel.types import INT_RANGES, ScalarType

I32, U32, I64, F32, F64 = ScalarType.I32, ScalarType.U32, ScalarType.I64, ScalarType.F32, ScalarType.F64
U64, F16, BF16 = ScalarType.U64, ScalarType.F16, ScalarType.BF16
I8, U8, I16, U16 = ScalarType.I8, ScalarType.U8, ScalarType.I16, ScalarType.U16
ALL_TYPES = (I32, U32, I64, U64, F32, F64, F16, BF16, I8, U8, I16, U16)
Family = Literal["scalar", "shared", "atomic"]
Role = Literal["in", "out", "approx", "inout", "scalar"]

PER_THREAD = 4
"""Input values per thread and type: ``in_T[i * 4 + p]``."""
COLLIDE = 5
"""Addresses of the colliding atomics: few, so that threads collide."""
ULP_TOLERANCE = 4
"""Largest distance, in units in the last place, between an ``approx_*`` output and the reference."""

_TO_INT_CLAMP = {I32: (-2e9, 2e9), U32: (0.0, 4e9), I64: (-9e18, 9e18), U64: (0.0, 1.8e19),
                  **{t: (-2e9, 2e9) for t in (I8, U8, I16, U16)}}
"""Float -> int casts clamp to these (exactly representable in f32 and f64) so they are defined (an 8/16-bit
integer truncates to i32 and wraps)."""
_SPECIAL_INTS = {
    I32: [0, 1, -1, 2, 7, -8, 31, 32, 2**31 - 1, -(2**31), 65535],
    U32: [0, 1, 2, 7, 31, 32, 2**32 - 1, 2**31, 65535],
    I64: [0, 1, -1, 3, 63, 64, -(2**63), 2**63 - 1, 2**32, -(2**31)],
    U64: [0, 1, 2, 63, 64, 2**64 - 1, 2**63, 2**32],
    I8: [0, 1, -1, 7, 127, -128], U8: [0, 1, 7, 255, 128], I16: [0, 1, -1, 15, 32767, -32768],
    U16: [0, 1, 15, 65535, 32768],
}
_SPECIAL_FLOATS = [0.0, 1.0, -1.0, 0.5, -2.5, 3.0, -0.0, math.inf, -math.inf, math.nan,
                   1e-45, 1.5e38, -1e-30, 16777217.0, 0.1]


def _values(t: ScalarType) -> st.SearchStrategy[Any]:
    """Input and literal values of type ``t``: edge cases first (what shrinking moves towards), then any."""
    if t.is_int:
        lo, hi = INT_RANGES[t]
        return st.one_of(st.sampled_from(_SPECIAL_INTS[t]), st.integers(lo, hi))
    width: Literal[16, 32, 64] = 16 if t is F16 else 64 if t is F64 else 32
    with np.errstate(over="ignore"):
        specials = [float(t.np_dtype.type(v)) for v in _SPECIAL_FLOATS]
    floats = st.floats(width=width)
    return st.one_of(st.sampled_from(specials), floats.map(lambda v: float(t.np_dtype.type(v))) if t is BF16 else floats)


def _literal(value: Any) -> str:
    """Python source for a number, exact for every float (f32 values round-trip through float)."""
    if isinstance(value, float):
        if math.isnan(value):
            return "math.nan"
        if math.isinf(value):
            return "math.inf" if value > 0 else "-math.inf"
        return repr(value)
    return repr(int(value))


# ------------------------------------------------------------------ programs
@dataclass(frozen=True, eq=False)
class Arg:
    """One kernel argument: an array's initial contents, or a scalar's value."""

    name: str
    type: ScalarType
    role: Role
    value: Any

    def source(self) -> str:
        if self.role == "scalar":
            return _literal(self.value)
        items = ", ".join(_literal(float(v) if self.type.is_float else v) for v in self.value.tolist())
        return f"np.array([{items}], dtype=np.dtype({self.type.np_dtype.name!r}))"


@dataclass(frozen=True, eq=False)
class Program:
    """A generated kernel module: ``source`` defines ``gen`` and ``ARGS`` and runs as a reproducer."""

    family: Family
    grid: int
    block: int
    args: tuple[Arg, ...]
    source: str = field(repr=False)

    def __repr__(self) -> str:
        return f"<{self.family} program: {self.grid} x {self.block} threads, {self.source.count(chr(10))} lines>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints examples with this; the failure message carries the full source."""
        printer.text(repr(self))

    def load(self, directory: Path) -> Any:
        """Import the module from a real file (the frontend reads kernels with ``inspect``); returns ``gen``."""
        digest = hashlib.sha256(self.source.encode()).hexdigest()[:16]
        path = directory / f"hal_gen_{digest}.py"
        if not path.exists():
            path.write_text(self.source)
        spec = importlib.util.spec_from_file_location(f"hal_gen_{digest}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.gen

    def fresh_args(self) -> list[Any]:
        return [a.value.copy() if a.role != "scalar" else a.value for a in self.args]

    def reference(self, kernel: Any) -> dict[str, np.ndarray]:
        """Outputs of the reference interpreter."""
        from ..kernel import interpreter

        values = self.fresh_args()
        interpreter.run(kernel.ir, (self.grid, 1, 1), (self.block, 1, 1), values)
        return {a.name: v for a, v in zip(self.args, values) if a.role != "scalar"}

    def run(self, kernel: Any, device: Any) -> dict[str, np.ndarray]:
        """Outputs of ``device``."""
        values = [device.array(v) if isinstance(v, np.ndarray) else v for v in self.fresh_args()]
        kernel[self.grid, self.block, device.default_queue](*values)
        device.default_queue.synchronize()
        return {a.name: v.numpy() for a, v in zip(self.args, values) if a.role != "scalar"}

    def mismatches(self, got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> list[str]:
        """Every output element that breaks the comparison rule (see the test module), described."""
        out: list[str] = []
        for arg in self.args:
            if arg.role == "scalar":
                continue
            g, w = got[arg.name], want[arg.name]
            bad = np.flatnonzero(~_agree(g, w, ULP_TOLERANCE if arg.role == "approx" else 0))
            per = max(1, arg.value.size // (self.grid * self.block)) if arg.role in ("out", "approx") else 0
            for k in bad[:8]:
                where = f"thread {k // per}, slot {k % per}" if per else f"element {k}"
                out.append(f"{arg.name}[{k}] ({where}): device {_show(g[k])}, reference {_show(w[k])}")
            if len(bad) > 8:
                out.append(f"{arg.name}: {len(bad) - 8} more")
        return out


def _show(v: Any) -> str:
    return f"{float(v)!r} ({float(v).hex()})" if _is_float(np.asarray(v).dtype) else repr(int(v))


def _is_float(dtype: np.dtype[Any]) -> bool:
    """numpy floats and ml_dtypes' bfloat16 (whose kind is 'V')."""
    return dtype != np.bool_ and ScalarType.from_dtype(dtype).is_float


def _agree(a: np.ndarray, b: np.ndarray, ulps: int) -> np.ndarray:
    """Integers equal; floats bit-equal or both NaN, or within ``ulps`` units in the last place."""
    if not _is_float(a.dtype):
        return np.asarray(a == b)
    bits = np.dtype(f"u{a.dtype.itemsize}")
    both_nan = np.isnan(a) & np.isnan(b)
    same = a.view(bits) == b.view(bits)
    if not ulps:
        return np.asarray(same | both_nan)
    sign = 1 << (a.dtype.itemsize * 8 - 1)

    def ordered(x: np.ndarray) -> list[int]:
        return [-(u & (sign - 1)) if u & sign else u for u in x.view(bits).tolist()]

    close = np.array([abs(p - q) <= ulps for p, q in zip(ordered(a), ordered(b))], dtype=bool)
    return np.asarray(same | both_nan | (close & ~np.isnan(a) & ~np.isnan(b)))


# ----------------------------------------------------------------- generator
@dataclass(frozen=True)
class _Var:
    name: str
    type: ScalarType
    mutable: bool = True
    uniform: bool = False


@dataclass
class _Ctx:
    """Where a statement goes: indentation, visible variables and what may appear there."""

    indent: int
    scope: list[_Var]
    depth: int = 0
    in_loop: bool = False
    """``break``/``continue`` may appear (the innermost loop is thread-level)."""
    loops: int = 0
    shared_reads: tuple[str, ...] = ()
    """Shared arrays that are safe to read here (written, then a barrier)."""

    def inner(self, *, loop: bool | None = None) -> _Ctx:
        return _Ctx(self.indent + 1, list(self.scope), self.depth + 1,
                    self.in_loop if loop is None else loop, self.loops + (1 if loop else 0), self.shared_reads)


class _Gen:
    """Writes one kernel body from hypothesis draws; option 0 of every choice is the simplest."""

    def __init__(self, draw: Callable[..., Any], family: Family, types: Sequence[ScalarType], block: int,
                 budget: int) -> None:
        self.draw = draw
        self.family = family
        self.types = list(types)
        self.block = block
        self.budget = budget
        self.lines: list[str] = []
        self.names = 0
        self.slots: dict[str, int] = {}
        self.shared: dict[str, ScalarType] = {}
        self.atomics: dict[str, ScalarType] = {}
        self.nin = 0
        self.shared_atomics = False
        self.atomic_count = 0
        self.phases = 0

    # --------------------------------------------------------- plumbing
    def pick(self, n: int) -> int:
        return int(self.draw(st.integers(0, n - 1))) if n > 1 else 0

    def chance(self, percent: int) -> bool:
        return bool(self.draw(st.integers(0, 99)) >= 100 - percent)

    def fresh(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def emit(self, ctx: _Ctx | int, text: str) -> None:
        indent = ctx if isinstance(ctx, int) else ctx.indent
        self.lines.append("    " * indent + text)

    def slot(self, buffer: str) -> str:
        """A new output slot of this thread in ``buffer``: ``buffer[i * K + k]``."""
        return f"{buffer}[{self.slot_index(buffer)}]"

    def slot_index(self, buffer: str) -> str:
        k = self.slots.get(buffer, 0)
        self.slots[buffer] = k + 1
        return f"i * K_{buffer.upper()} + {k}"

    # ------------------------------------------------------ expressions
    def literal(self, t: ScalarType) -> str:
        return f"hal.{t.value}({_literal(self.draw(_values(t)))})"

    def leaf(self, t: ScalarType, ctx: _Ctx) -> str:
        options: list[Callable[[], str]] = [
            lambda: f"in_{t.value}[i * {PER_THREAD} + {self.pick(PER_THREAD)}]",
            lambda: self.literal(t),
            lambda: f"s_{t.value}",
            lambda: "i" if t is I32 else f"hal.{t.value}(i)",
        ]
        names = [v.name for v in ctx.scope if v.type is t]
        if names:
            options.insert(0, lambda: names[self.pick(len(names))])
        narrow = [n for n in self.types if n.is_narrow and n.promoted is t]
        if narrow:  # promoted where it is read
            options.append(lambda: self.leaf(narrow[self.pick(len(narrow))], ctx))
        shared = [s for s in ctx.shared_reads if self.shared[s] is t]
        if shared:
            options.insert(1, lambda: self.shared_load(shared[self.pick(len(shared))], ctx))
        if t.is_int:
            options.append(lambda: f"in_{t.value}[{self.expr(t, ctx, 1)} % {self.nin}]")
        return options[self.pick(len(options))]()

    def shared_load(self, name: str, ctx: _Ctx) -> str:
        if self.chance(30):
            return f"{name}[{self.expr(I32, ctx, 1)} % {self.block}]"
        return f"{name}[(lid + {self.pick(self.block)}) % {self.block}]"

    def expr(self, t: ScalarType, ctx: _Ctx, depth: int) -> str:
        if depth <= 0:
            return self.leaf(t, ctx)
        sub = depth - 1
        if t.is_narrow:  # storage only: a value, or a conversion of an expression
            kind = self.pick(3)
            if kind == 0:
                return self.leaf(t, ctx)
            return f"hal.{t.value}({self.expr(t.promoted, ctx, sub)})" if kind == 1 else self.cast(t, ctx, sub)
        kind = self.pick(8)
        if kind == 0:
            return self.leaf(t, ctx)
        if kind in (1, 2):
            ops = ["+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>"] if t.is_int else ["+", "-", "*", "/", "//", "%"]
            op = ops[self.pick(len(ops))]
            rhs = self.weak(t) if self.chance(20) else self.expr(t, ctx, sub)
            return f"({self.expr(t, ctx, sub)} {op} {rhs})"
        if kind == 3:
            op = ["-", "~"][self.pick(2)] if t.is_int else "-"
            return f"({op}{self.expr(t, ctx, sub)})"
        if kind == 4:
            funcs = ["abs", "min", "max"] + (["popcount", "clz", "ctz"] if t.is_int else
                                             ["sqrt", "floor", "ceil", "fma", "trunc", "round", "copysign"])
            f = funcs[self.pick(len(funcs))]
            n = {"min": 2, "max": 2, "fma": 3, "copysign": 2}.get(f, 1)
            args = [self.expr(t, ctx, sub) for _ in range(n)]
            if f == "copysign":  # the sign of a NaN is unspecified: never copy it
                args[1] = f"({args[1]} if {args[1]} == {args[1]} else 1.0)"
            return f"hal.{f}({', '.join(args)})"
        if kind == 5:
            return f"({self.expr(t, ctx, sub)} if {self.cond(ctx, sub)} else {self.expr(t, ctx, sub)})"
        if kind == 6:
            return self.cast(t, ctx, sub)
        return f"hal.{t.value}({self.cond(ctx, sub)})"

    def weak(self, t: ScalarType) -> str:
        """A bare literal, which takes the other operand's type."""
        if t.is_float and self.chance(50):
            return _literal(float(t.np_dtype.type(self.draw(st.sampled_from([0.5, 3.0, 0.1, -1.25])))))
        return str(self.draw(st.integers(-9 if t.is_signed else 0, 9)))

    def cast(self, t: ScalarType, ctx: _Ctx, depth: int) -> str:
        src = self.types[self.pick(len(self.types))]
        if src is t:
            return f"hal.{t.value}({self.expr(t, ctx, depth)})"
        if t.is_int and src.is_float:
            v = self.leaf(src, ctx)
            lo, hi = _TO_INT_CLAMP[t]
            return f"hal.{t.value}(hal.min(hal.max({v}, {lo!r}), {hi!r}) if {v} == {v} else 0.0)"
        return f"hal.{t.value}({self.expr(src, ctx, depth)})"

    def cond(self, ctx: _Ctx, depth: int) -> str:
        kind = self.pick(5) if depth > 0 else 0
        if kind <= 1:
            t = self.types[self.pick(len(self.types))]
            op = ["<", "==", "!=", "<=", ">", ">="][self.pick(6)]
            a, b = self.expr(t, ctx, depth - 1), self.expr(t, ctx, depth - 1)
            if kind == 1 and self.chance(30):
                return f"({a} {op} {b} < {self.expr(t, ctx, depth - 1)})"
            return f"({a} {op} {b})"
        if kind == 2:
            return f"(not {self.cond(ctx, depth - 1)})"
        if kind == 3:
            return f"({self.cond(ctx, depth - 1)} {['and', 'or'][self.pick(2)]} {self.cond(ctx, depth - 1)})"
        floats = [t for t in self.types if t.is_float]
        if floats and self.chance(30):
            f = ["isnan", "isinf", "isfinite"][self.pick(3)]
            return f"hal.{f}({self.expr(floats[self.pick(len(floats))], ctx, depth - 1)})"
        ints = [t for t in self.types if t.is_int]
        return f"hal.bool_({self.expr(ints[self.pick(len(ints))], ctx, depth - 1)})"

    def uniform_cond(self, ctx: _Ctx) -> str:
        """A condition with one value across a work-group: parameters, group ids, uniform loop variables."""
        uniform = [v.name for v in ctx.scope if v.uniform]
        t = self.types[self.pick(len(self.types))]
        options = [f"(s_i32 % 3 != {self.pick(3)})", f"(hal.group_id(0) % 2 == {self.pick(2)})",
                   f"(s_{t.value} > {self.literal(t)})"]
        options += [f"({u} % 2 == {self.pick(2)})" for u in uniform]
        return options[self.pick(len(options))]

    def approx(self, t: ScalarType, ctx: _Ctx) -> str:
        """A transcendental function of an exact value, on a domain where libms agree to a few ulp."""
        x = self.expr(t, ctx, self.pick(3))
        f = self.pick(11)
        if f == 0:
            return f"hal.{['exp', 'exp2', 'expm1'][self.pick(3)]}(hal.min(hal.max({x}, -80.0), 80.0))"
        if f == 1:
            return f"hal.{['log', 'log2', 'log10', 'rsqrt'][self.pick(4)]}(hal.abs({x}) + 0.5)"
        if f == 2:
            return f"hal.{['sin', 'cos', 'tan'][self.pick(3)]}(hal.min(hal.max({x}, -100.0), 100.0))"
        if f == 3:
            return f"hal.{['tanh', 'atan', 'erf'][self.pick(3)]}({x})"
        if f == 4:
            return f"hal.log1p(hal.abs({x}))"
        if f == 5:
            return f"hal.{['asin', 'acos'][self.pick(2)]}(hal.min(hal.max({x}, -1.0), 1.0))"
        if f == 6:
            return f"hal.{['sinh', 'cosh'][self.pick(2)]}(hal.min(hal.max({x}, -80.0), 80.0))"
        if f == 7:
            return f"hal.erfc(hal.min(hal.max({x}, -3.0), 3.0))"
        y = self.expr(t, ctx, self.pick(2))
        if f == 8:
            return f"hal.atan2({x}, {y})"
        if f == 9:
            return f"hal.hypot(hal.min(hal.max({x}, -1e15), 1e15), hal.min(hal.max({y}, -1e15), 1e15))"
        return f"hal.pow(hal.abs({x}) + 0.5, hal.min(hal.max({y}, -8.0), 8.0))"

    # ------------------------------------------------------- statements
    def stmts(self, ctx: _Ctx, most: int, make: Callable[[_Ctx], None] | None = None) -> None:
        start = len(self.lines)
        for _ in range(1 + self.pick(most)):
            if self.budget <= 0:
                break
            (make or self.statement)(ctx)
        if len(self.lines) == start:
            self.emit(ctx, "pass")

    def statement(self, ctx: _Ctx) -> None:
        self.budget -= 1
        kinds = ["assign", "assign", "update", "store"]
        if any(t.is_float for t in self.types):
            kinds.append("approx")
        if ctx.depth < 3 and self.budget > 2:
            kinds += ["if", "if"] + (["for", "while"] if ctx.loops < 2 else [])
        if ctx.in_loop:
            kinds.append("jump")
        if self.family == "scalar":
            kinds.append("return")
        if self.family == "atomic":
            kinds += ["atomic", "atomic", "atomic"]
        kind = kinds[self.pick(len(kinds))]
        if kind == "return" and not self.chance(25):
            kind = "assign"
        if kind == "assign":
            t = self.types[self.pick(len(self.types))]
            name = self.fresh("v")
            self.emit(ctx, f"{name} = {self.expr(t, ctx, self.pick(4))}")
            ctx.scope.append(_Var(name, t))
        elif kind == "update":
            targets = [v for v in ctx.scope if v.mutable]
            v = targets[self.pick(len(targets))]
            if self.chance(50):
                ops = ["+", "-", "*", "//", "%", "&", "|", "^", "<<", ">>"] if v.type.is_int else ["+", "-", "*", "/"]
                self.emit(ctx, f"{v.name} {ops[self.pick(len(ops))]}= {self.expr(v.type, ctx, self.pick(3))}")
            else:
                self.emit(ctx, f"{v.name} = {self.expr(v.type, ctx, self.pick(4))}")
        elif kind == "store":
            t = self.types[self.pick(len(self.types))]
            self.emit(ctx, f"{self.slot('out_' + t.value)} = {self.expr(t, ctx, self.pick(4))}")
        elif kind == "approx":
            floats = [t for t in self.types if t.is_float]
            t = floats[self.pick(len(floats))]
            self.emit(ctx, f"{self.slot('approx_' + t.value)} = {self.approx(t, ctx)}")
        elif kind == "if":
            self.if_statement(ctx)
        elif kind == "for":
            self.for_statement(ctx)
        elif kind == "while":
            self.while_statement(ctx)
        elif kind in ("jump", "return"):
            self.emit(ctx, f"if {self.cond(ctx, self.pick(3))}:")
            self.emit(ctx.indent + 1, ["break", "continue"][self.pick(2)] if kind == "jump" else "return")
        else:
            self.atomic(ctx)

    def if_statement(self, ctx: _Ctx) -> None:
        self.emit(ctx, f"if {self.cond(ctx, self.pick(3))}:")
        self.stmts(ctx.inner(), 3)
        for _ in range(self.pick(3)):
            self.emit(ctx, f"elif {self.cond(ctx, self.pick(3))}:")
            self.stmts(ctx.inner(), 2)
        if self.chance(50):
            self.emit(ctx, "else:")
            self.stmts(ctx.inner(), 3)

    def for_statement(self, ctx: _Ctx) -> None:
        var = self.fresh("k")
        t = [I32, I32, *[x for x in (U32, I64) if x in self.types]][self.pick(2 + len({U32, I64} & set(self.types)))]
        small = f"({self.expr(t, ctx, 1)} % 7)"
        step = self.draw(st.sampled_from([1, 2, -1, 3, -2]) if t is not U32 else st.sampled_from([1, 2, 3]))
        lo, hi = (small, str(self.pick(9))) if self.chance(50) else (str(self.pick(9) - 2 * (t is not U32)), small)
        if step < 0:
            lo, hi = hi, lo
        rng = f"range({hi})" if self.chance(20) and t is I32 else f"range({lo}, {hi}, {step})"
        if t is not I32:
            rng = f"range(hal.{t.value}({lo}), hal.{t.value}({hi}), {step})"
        self.emit(ctx, f"for {var} in {rng}:")
        body = ctx.inner(loop=True)
        body.scope.append(_Var(var, t, mutable=self.chance(20)))
        self.stmts(body, 4)

    def while_statement(self, ctx: _Ctx) -> None:
        counter = self.fresh("w")
        self.emit(ctx, f"{counter} = 0")
        extra = f" and {self.cond(ctx, self.pick(2))}" if self.chance(40) else ""
        self.emit(ctx, f"while {counter} < {1 + self.pick(6)}{extra}:")
        body = ctx.inner(loop=True)
        self.emit(body, f"{counter} += 1")
        body.scope.append(_Var(counter, I32, mutable=False))
        self.stmts(body, 4)

    # --------------------------------------------------------- families
    def shared_phase(self, ctx: _Ctx) -> None:
        """Every thread writes its slot, a barrier, reads of any slot, a barrier (before the next write)."""
        self.phases += 1
        name = list(self.shared)[self.pick(len(self.shared))]
        self.emit(ctx, f"{name}[lid] = {self.expr(self.shared[name], ctx, self.pick(3))}")
        self.emit(ctx, "hal.barrier()")
        reads = _Ctx(ctx.indent, ctx.scope, ctx.depth, False, ctx.loops, (*ctx.shared_reads, name))
        var = self.fresh("v")
        self.emit(ctx, f"{var} = {self.shared_load(name, reads)}")
        ctx.scope.append(_Var(var, self.shared[name]))
        if self.budget > 0:
            self.stmts(reads, 3)
        self.emit(ctx, "hal.barrier()")

    def uniform_statement(self, ctx: _Ctx) -> None:
        """A top-level statement of the shared family: thread code, a phase, or uniform control around phases."""
        kind = self.pick(6) if ctx.depth < 2 and self.budget > 2 else self.pick(2)
        if kind == 0:
            self.statement(ctx)
        elif kind in (1, 2):
            self.budget -= 1
            self.shared_phase(ctx)
        elif kind == 3:
            var = self.fresh("r")
            self.emit(ctx, f"for {var} in range({1 + self.pick(3)}):" if self.chance(70)
                      else f"for {var} in range(s_i32 % 3, 3):")
            body = ctx.inner(loop=False)
            body.scope.append(_Var(var, I32, mutable=False, uniform=True))
            self.stmts(body, 3, self.uniform_statement)
        elif kind == 4:
            self.emit(ctx, f"if {self.uniform_cond(ctx)}:")
            self.stmts(ctx.inner(loop=False), 3, self.uniform_statement)
            if self.chance(50):
                self.emit(ctx, "else:")
                self.stmts(ctx.inner(loop=False), 3, self.uniform_statement)
        else:  # a tree-like loop: uniform counter doubling up to the block size
            counter = self.fresh("u")
            self.emit(ctx, f"{counter} = 1")
            self.emit(ctx, f"while {counter} < {self.block}:")
            body = ctx.inner(loop=False)
            body.scope.append(_Var(counter, I32, mutable=False, uniform=True))
            self.stmts(body, 2, self.uniform_statement)
            self.emit(body, f"{counter} *= 2")

    def atomic(self, ctx: _Ctx) -> None:
        self.atomic_count += 1
        ints = [t for t in self.types if t in (I32, U32)]
        t = ints[self.pick(len(ints))]
        kind = self.pick(9)
        value = self.expr(t, ctx, self.pick(3))
        if kind <= 5:  # colliding addresses, one commutative operation per buffer
            op = ["add", "max", "min", "and", "or", "xor"][kind]
            buffer = f"{op}_{t.value}"
            if op == "add" and self.shared_atomics and self.chance(40):
                buffer = f"shadd_{t.value}"
            self.atomics[buffer] = t
            self.emit(ctx, f"hal.atomic_{op}({buffer}, {self.expr(t, ctx, 1)} % {COLLIDE}, {value})")
            return
        own = f"own_{t.value}"
        index = self.slot_index(own)
        old = self.fresh("a")
        if kind == 6:
            call = f"hal.atomic_{['add', 'max', 'min', 'and', 'or', 'xor'][self.pick(6)]}({own}, {index}, {value})"
        elif kind == 7:
            call = f"hal.atomic_exchange({own}, {index}, {value})"
        else:
            compare = f"{own}[{index}]" if self.chance(60) else self.expr(t, ctx, 1)
            call = f"hal.atomic_cas({own}, {index}, {compare}, {value})"
        self.emit(ctx, f"{old} = {call}")
        ctx.scope.append(_Var(old, t))

    def shared_atomic_frame(self, prologue: list[str], body: list[str]) -> list[str]:
        """Zero the shared histograms, barrier, the body, barrier, then add them into the global ones."""
        shared = {b: t for b, t in self.atomics.items() if b.startswith("shadd_")}
        for t in shared.values():
            self.atomics[f"add_{t.value}"] = t
        lines = list(prologue)
        lines += [f"    {b} = hal.shared(hal.{t.value}, {COLLIDE})" for b, t in shared.items()]
        for b in shared:
            lines += [f"    for z in range(lid, {COLLIDE}, {self.block}):", f"        {b}[z] = 0"]
        lines += ["    hal.barrier()", *body, "    hal.barrier()"]
        for b, t in shared.items():
            lines += [f"    for z in range(lid, {COLLIDE}, {self.block}):",
                      f"        hal.atomic_add(add_{t.value}, z, {b}[z])"]
        return lines


# ----------------------------------------------------------------- assembly
@st.composite
def programs(draw: Callable[..., Any], family: Family, types: Sequence[ScalarType],
             shared_atomics: bool = False) -> Program:
    """A random kernel of ``family`` over ``types`` (the numeric types the device declares).

    ``shared_atomics``: the atomic family may also use work-group histograms in shared memory.
    """
    types = [t for t in ALL_TYPES if t in types]
    blocks = [16, 2, 5, 32, 64] if family == "shared" else [8, 1, 3, 32, 64]
    grid, block = 1 + draw(st.integers(0, 2)), draw(st.sampled_from(blocks))
    threads = grid * block
    gen = _Gen(draw, family, types, block, budget=draw(st.integers(12, 40)))
    gen.nin = threads * PER_THREAD
    gen.shared_atomics = family == "atomic" and shared_atomics
    ctx = _Ctx(1, [])
    gen.emit(ctx, "i = hal.global_id(0)")
    if family == "shared" or gen.shared_atomics:
        gen.emit(ctx, "lid = hal.local_id(0)")
    if family == "shared":
        for _ in range(1 + draw(st.integers(0, 2))):
            name = gen.fresh("sh")
            gen.shared[name] = types[draw(st.integers(0, len(types) - 1))]
            gen.emit(ctx, f"{name} = hal.shared(hal.{gen.shared[name].value}, {block})")
    for t in types:
        name = gen.fresh("x")
        gen.emit(ctx, f"{name} = in_{t.value}[i * {PER_THREAD}]")
        ctx.scope.append(_Var(name, t))
    prologue = list(gen.lines)
    del gen.lines[:]
    while gen.budget > 0:
        (gen.uniform_statement if family == "shared" else gen.statement)(ctx)
    if family == "shared" and not gen.phases:
        gen.shared_phase(ctx)
    if family == "atomic" and not gen.atomic_count:
        gen.atomic(ctx)
    lines = prologue + gen.lines
    if any(b.startswith("shadd_") for b in gen.atomics):
        lines = gen.shared_atomic_frame(prologue, gen.lines)
    lines += [f"    {gen.slot('out_' + v.type.value)} = {v.name}" for v in ctx.scope]

    args: list[Arg] = []
    for t in types:
        pool = np.array(draw(st.lists(_values(t), min_size=1, max_size=12)), dtype=t.np_dtype)
        pick = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, pool.size, gen.nin)
        args.append(Arg(f"in_{t.value}", t, "in", pool[pick]))
        args.append(Arg(f"s_{t.value}", t, "scalar", float(pool[0]) if t.is_float else int(pool[0])))
    for buffer, count in sorted(gen.slots.items()):
        t = ScalarType(buffer.split("_")[1])
        role: Role = "approx" if buffer.startswith("approx_") else "inout" if buffer.startswith("own_") else "out"
        initial = np.zeros(threads * count, t.np_dtype)
        if role == "inout":
            initial = np.resize(np.array(draw(st.lists(_values(t), min_size=1, max_size=4)), t.np_dtype), initial.size)
        args.append(Arg(buffer, t, role, initial))
    for buffer, t in sorted(gen.atomics.items()):
        if not buffer.startswith("shadd_"):
            initial = np.array(draw(st.lists(_values(t), min_size=1, max_size=3)), t.np_dtype)
            args.append(Arg(buffer, t, "inout", np.resize(initial, COLLIDE)))
    consts = [f"K_{b.upper()} = {n}" for b, n in sorted(gen.slots.items())]
    return Program(family, grid, block, tuple(args), _module(family, grid, block, args, consts, lines))


def _module(family: Family, grid: int, block: int, args: list[Arg], consts: list[str], body: list[str]) -> str:
    params = ", ".join(f"{a.name}: hal.{a.type.value}" if a.role == "scalar"
                       else f"{a.name}: hal.Ptr[hal.{a.type.value}]" for a in args)
    arrays = ",\n    ".join(a.source() for a in args)
    return "\n".join([
        f'"""A generated {family} kernel (hal differential tests). Run: python <this file> <device>"""',
        "import math", "import sys", "", "import numpy as np", "", "import hal", "",
        *consts, f"ULP_TOLERANCE = {ULP_TOLERANCE}", "", "",
        "@hal.kernel",
        f"def gen({params}):",
        *body,
        "", "",
        f"GRID, BLOCK = {grid}, {block}",
        f"ARGS = [\n    {arrays},\n]",
        "", "",
        'if __name__ == "__main__":',
        "    from hal.kernel import interpreter",
        "",
        '    dev = hal.device(sys.argv[1] if len(sys.argv) > 1 else "cpu")',
        "    want = [a.copy() if isinstance(a, np.ndarray) else a for a in ARGS]",
        "    interpreter.run(gen.ir, (GRID, 1, 1), (BLOCK, 1, 1), want)",
        "    got = [dev.array(a) if isinstance(a, np.ndarray) else a for a in ARGS]",
        "    gen[GRID, BLOCK, dev.default_queue](*got)",
        "    for name, w, g in zip(gen.ir.params, want, got):",
        "        if not isinstance(w, np.ndarray):",
        "            continue",
        "        g = g.numpy()",
        "        bits = f\"u{w.itemsize}\"  # bits, as the suite compares: -0.0 is not 0.0; any NaN matches a NaN",
        "        differ = w.view(bits) != g.view(bits)",
        "        if w.dtype.kind not in \"biu\":",
        "            differ &= ~(np.isnan(w) & np.isnan(g))",
        "        allowed = f\" (within {ULP_TOLERANCE} ulp is allowed)\" if name.name.startswith(\"approx\") else \"\"",
        "        for k in np.flatnonzero(differ):",
        '            print(f"{name.name}[{k}]: device {g[k].item()!r}, reference {w[k].item()!r}{allowed}")',
        "",
    ])
