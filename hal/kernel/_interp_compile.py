"""IR -> Python closures, once per kernel, so that running a chunk is only numpy calls.

An expression becomes ``f(chunk, mask) -> value`` and a statement ``f(chunk,
mask) -> mask``: the threads that go on to the next statement (those that
broke, continued or returned drop out). Expressions are evaluated for every
thread of the chunk (all ops are total), except where the IR promises
laziness: ``and``/``or`` right-hand sides and ``Select`` sides run under the
narrower mask when they contain a load (or a tracer is watching), so an
untaken out-of-bounds load never faults. Tracing is compiled in or out: an
untraced program has no per-op tracer checks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import ir
from ._interp_chunk import Chunk, Mask
from ._interp_collective import group_reduce
from ._interp_ops import UNARY, Value, atomic, binary_fn, const, convert, math_fn
from .analysis import waits_on_memory
from .types import ScalarType

ExprFn = Callable[[Chunk, Mask], Value]
StmtFn = Callable[[Chunk, Mask], Mask]
BOOL = ScalarType.BOOL


@dataclass(frozen=True)
class Program:
    """A compiled kernel: its body, the initial value of every local scalar, and whether it may wait
    for other work-groups (then they run one at a time: :func:`hal.kernel.analysis.waits_on_memory`)."""

    body: StmtFn
    zeros: dict[str, Value]
    spins: bool = False


def compile_kernel(kernel: ir.Kernel, traced: bool) -> Program:
    c = _Compiler(kernel, traced)
    return Program(c.block(kernel.body, loop_depth=0), {n: const(0, t)[()] for n, t in kernel.variables},
                   waits_on_memory(kernel))


ABORT: ContextVar[threading.Event | None] = ContextVar("hal_interpreter_abort", default=None)
"""Set by a simulated queue around a command: once set, a running ``while`` loop stops the launch
with a DeviceFault (:meth:`hal.backend.QueueImpl.abort`)."""
_WATCH_FROM = 64
"""A ``while`` loop is checked for progress at iterations 64, 128, 256, ... (each check copies what
the body writes, so checks are exponentially rare and cost nothing measurable in loops that end)."""


def _written(body: tuple[ir.Stmt, ...]) -> tuple[list[str], list[str]]:
    """The scalars and buffers a loop body can change: all that one iteration can leave different."""
    names: set[str] = set()
    buffers: set[str] = set()
    for st in ir.walk_statements(body):
        if isinstance(st, ir.Assign):
            names.add(st.target)
        elif isinstance(st, (ir.AtomicRMW, ir.Collective)) and st.result is not None:
            names.add(st.result)
        elif isinstance(st, ir.For):
            names.add(st.var)
        if isinstance(st, (ir.Store, ir.AtomicRMW)):
            buffers.add(st.buffer)
    return sorted(names), sorted(buffers)


def _snapshot(chunk: Chunk, names: list[str], buffers: list[str]) -> list[np.ndarray]:
    return [np.array(chunk.env[n], copy=True) for n in names] + [chunk.buffers[b].copy() for b in buffers]


def _same(before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    return all(np.array_equal(a, b, equal_nan=a.dtype.kind == "f") for a, b in zip(before, after, strict=True))


def _has_load(e: ir.Expr) -> bool:
    """Whether evaluating ``e`` for extra threads could be observed (a load may fault)."""
    if isinstance(e, ir.Load):
        return True
    if isinstance(e, ir.Unary):
        return _has_load(e.operand)
    if isinstance(e, ir.Binary):
        return _has_load(e.lhs) or _has_load(e.rhs)
    if isinstance(e, ir.Select):
        return _has_load(e.cond) or _has_load(e.if_true) or _has_load(e.if_false)
    if isinstance(e, ir.Cast):
        return _has_load(e.value)
    if isinstance(e, ir.Call):
        return any(_has_load(a) for a in e.args)
    return False


def _and(chunk: Chunk, mask: Mask, cond: np.ndarray) -> Mask:
    """Threads of ``mask`` where the per-thread ``cond`` holds; None when that is all of them."""
    new = cond if mask is None else mask & cond
    return None if np.count_nonzero(new) == chunk.n else new


def _union(masks: Sequence[Mask], chunk: Chunk) -> Mask:
    if not masks:
        return chunk.empty
    if any(m is None for m in masks):
        return None
    out: np.ndarray = masks[0]  # type: ignore[assignment]
    for m in masks[1:]:
        out = out | m
    return out


def _assign(chunk: Chunk, mask: Mask, name: str, value: Value) -> None:
    env = chunk.env
    env[name] = value if mask is None else np.where(mask, value, env[name])


class _Compiler:
    def __init__(self, kernel: ir.Kernel, traced: bool) -> None:
        self.kernel = kernel
        self.traced = traced
        self.var_types: dict[str, ScalarType] = dict(kernel.variables)
        self.var_types.update((p.name, p.type) for p in kernel.params if not p.pointer)
        self.buffers: dict[str, tuple[str, ScalarType, int]] = {
            p.name: ("global", p.type, -1) for p in kernel.params if p.pointer}
        self.buffers.update((a.name, (a.space, a.type, a.size)) for a in kernel.arrays)
        self._for_count = 0

    # ------------------------------------------------------------- helpers
    def _error(self, line: int, message: str) -> ValueError:
        return ValueError(f"invalid IR in kernel '{self.kernel.name}' at line {line}: {message}")

    def _traced_op(self, fn: ExprFn, line: int, name: str, type_: ScalarType) -> ExprFn:
        if not self.traced:
            return fn

        def op(chunk: Chunk, mask: Mask) -> Value:
            value = fn(chunk, mask)
            chunk.tracer.op(line, name, type_, chunk.full(mask))  # type: ignore[union-attr]
            return value
        return op

    def _cast_to(self, fn: ExprFn, src: ScalarType, dst: ScalarType) -> ExprFn:
        if src == dst:
            return fn
        if src.is_narrow or dst.is_narrow:
            return lambda chunk, mask: convert(fn(chunk, mask), src, dst)
        dt = dst.np_dtype
        return lambda chunk, mask: fn(chunk, mask).astype(dt)

    def _computes(self, t: ScalarType, line: int, what: str) -> None:
        """Operators, comparisons and math run on promoted types only (the frontend inserts the casts)."""
        if t.is_narrow:
            raise self._error(line, f"{what} on narrow type {t.value}; promote it to {t.promoted.value} first")

    def _buffer(self, name: str, space: str, line: int) -> tuple[ScalarType, int]:
        decl = self.buffers.get(name)
        if decl is None or decl[0] != space:
            raise self._error(line, f"no {space} buffer named {name!r}")
        return decl[1], decl[2]

    # --------------------------------------------------------- expressions
    def expr(self, e: ir.Expr, line: int) -> ExprFn:
        method = {
            ir.Const: self._const, ir.Var: self._var, ir.ThreadIndex: self._threadindex, ir.Load: self._load,
            ir.Unary: self._unary, ir.Binary: self._binary, ir.Select: self._select, ir.Cast: self._cast,
            ir.Call: self._call,
        }.get(type(e))
        if method is None:
            raise self._error(line, f"unknown expression {type(e).__name__}")
        fn: ExprFn = method(e, line)  # type: ignore[operator]
        return fn

    def _const(self, e: ir.Const, line: int) -> ExprFn:
        value = const(e.value, e.type)[()]
        return lambda chunk, mask: value

    def _var(self, e: ir.Var, line: int) -> ExprFn:
        name = e.name
        if name not in self.var_types:
            raise self._error(line, f"undeclared variable {name!r}")
        return self._cast_to(lambda chunk, mask: chunk.env[name], self.var_types[name], e.type)

    def _threadindex(self, e: ir.ThreadIndex, line: int) -> ExprFn:
        kind, dim = e.kind, e.dim
        if (kind not in ir.THREAD_INDICES or dim not in (0, 1, 2)) and (kind not in ir.SUBGROUP_INDICES or dim):
            raise self._error(line, f"bad thread index {kind}({dim})")
        return lambda chunk, mask: chunk.thread_index(kind, dim)

    def _load(self, e: ir.Load, line: int) -> ExprFn:
        type_, _ = self._buffer(e.buffer, e.space, line)
        access = self._access(e.buffer, e.space, e.index, line, "load from")
        name, traced, itemsize = e.buffer, self.traced, type_.np_dtype.itemsize

        def load(chunk: Chunk, mask: Mask) -> Value:
            idx, flat = access(chunk, mask)
            if traced:
                chunk.tracer.memory(line, e.space, name, np.broadcast_to(idx, (chunk.n,)),  # type: ignore[union-attr]
                                    chunk.full(mask), False, itemsize)
            return chunk.buffers[name].take(flat)
        return self._cast_to(load, type_, e.type)

    def _unary(self, e: ir.Unary, line: int) -> ExprFn:
        fn = UNARY.get(e.op)
        if fn is None:
            raise self._error(line, f"unknown unary op {e.op!r}")
        self._computes(e.type, line, f"unary {e.op}")
        x = self._cast_to(self.expr(e.operand, line), e.operand.type, e.type)
        return self._traced_op(lambda chunk, mask: fn(x(chunk, mask)), line, e.op, e.type)

    def _binary(self, e: ir.Binary, line: int) -> ExprFn:
        if e.op in ("and", "or"):
            return self._logical(e, line)
        compare = e.type == BOOL and e.op in ("eq", "ne", "lt", "le", "gt", "ge")
        operand = e.lhs.type if compare else e.type
        self._computes(operand, line, f"binary {e.op}")
        try:
            fn = binary_fn(e.op, operand, e.type)
        except ValueError as exc:
            raise self._error(line, str(exc)) from None
        a = self._cast_to(self.expr(e.lhs, line), e.lhs.type, operand)
        b = self.expr(e.rhs, line)
        if e.op not in ("shl", "shr"):
            b = self._cast_to(b, e.rhs.type, operand)
        return self._traced_op(lambda chunk, mask: fn(a(chunk, mask), b(chunk, mask)), line, e.op, operand)

    def _logical(self, e: ir.Binary, line: int) -> ExprFn:
        """Short-circuit ``and``/``or``: the right side runs only where the left does not decide."""
        a, b = self.expr(e.lhs, line), self.expr(e.rhs, line)
        is_and = e.op == "and"
        if not self.traced and not _has_load(e.rhs):
            ufunc = np.logical_and if is_and else np.logical_or
            return lambda chunk, mask: ufunc(a(chunk, mask), b(chunk, mask))

        def logical(chunk: Chunk, mask: Mask) -> Value:
            lhs = a(chunk, mask)
            if np.ndim(lhs) == 0:
                return b(chunk, mask) if bool(lhs) == is_and else lhs
            rest = _and(chunk, mask, lhs if is_and else ~lhs)
            if rest is not None and not rest.any():
                return lhs
            rhs = b(chunk, rest)
            return lhs & rhs if is_and else lhs | rhs
        return self._traced_op(logical, line, e.op, BOOL)

    def _select(self, e: ir.Select, line: int) -> ExprFn:
        cond = self.expr(e.cond, line)
        t = self._cast_to(self.expr(e.if_true, line), e.if_true.type, e.type)
        f = self._cast_to(self.expr(e.if_false, line), e.if_false.type, e.type)
        if not self.traced and not (_has_load(e.if_true) or _has_load(e.if_false)):
            return lambda chunk, mask: np.asarray(np.where(cond(chunk, mask), t(chunk, mask), f(chunk, mask)))[()]
        zero = const(0, e.type)[()]

        def select(chunk: Chunk, mask: Mask) -> Value:
            c = cond(chunk, mask)
            if np.ndim(c) == 0:
                return t(chunk, mask) if c else f(chunk, mask)
            tm, fm = _and(chunk, mask, c), _and(chunk, mask, ~c)
            tv = t(chunk, tm) if tm is None or tm.any() else zero
            fv = f(chunk, fm) if fm is None or fm.any() else zero
            return np.where(c, tv, fv)
        return self._traced_op(select, line, "select", e.type)

    def _cast(self, e: ir.Cast, line: int) -> ExprFn:
        x = self.expr(e.value, line)
        if e.value.type == e.type:
            return x
        return self._traced_op(self._cast_to(x, e.value.type, e.type), line, "cast", e.type)

    def _call(self, e: ir.Call, line: int) -> ExprFn:
        computes = ir.call_type(e)
        self._computes(computes, line, f"hal.{e.func}")
        try:
            fn = math_fn(e.func, computes)
        except ValueError as exc:
            raise self._error(line, str(exc)) from None
        if e.func in ("floor", "ceil"):
            (arg,) = e.args
            x = self.expr(arg, line)
            inner = x if arg.type.is_int else (lambda chunk, mask: fn(x(chunk, mask)))
            call = self._cast_to(inner, arg.type, e.type)
        else:
            args = [self._cast_to(self.expr(a, line), a.type, computes) for a in e.args]
            if len(args) == 1:
                (x,) = args
                call = lambda chunk, mask: fn(x(chunk, mask))  # noqa: E731
            else:
                call = lambda chunk, mask: fn(*[a(chunk, mask) for a in args])  # noqa: E731
        return self._traced_op(call, line, e.func, computes)

    # --------------------------------------------------------------- memory
    def _access(self, name: str, space: str, index: ir.Expr, line: int,
                verb: str) -> Callable[[Chunk, Mask], tuple[Value, Value]]:
        """Evaluate an index, bounds-check it for the active threads, and flatten it.

        Returns ``(index, flat)``: the kernel's element index, and the position in the
        chunk-wide array (work-group row for shared, thread row for local memory).
        Inactive threads get a safe in-bounds flat position; their result is discarded.
        """
        _, _, size = self.buffers[name]
        idx_fn = self.expr(index, line)
        fixed = size >= 0

        def access(chunk: Chunk, mask: Mask) -> tuple[Value, Value]:
            idx = idx_fn(chunk, mask)
            n = size if fixed else len(chunk.buffers[name])
            if np.ndim(idx) == 0:
                if not 0 <= idx < n:
                    raise _oob(chunk, line, verb, space, name, idx, n, chunk.first(mask))
                safe = idx
            else:
                safe = idx if mask is None else np.where(mask, idx, 0)
                if safe.min() < 0 or safe.max() >= n:
                    bad = (idx < 0) | (idx >= n)
                    if mask is not None:
                        bad &= mask
                    t = int(np.argmax(bad))
                    raise _oob(chunk, line, verb, space, name, idx[t], n, t)
            if space == "global":  # intp: numpy's native index type, 3x faster to scatter with
                return idx, safe if np.ndim(safe) == 0 else safe.astype(np.intp, copy=False)
            return idx, chunk.row_base(size, space == "local") + safe
        return access

    # ----------------------------------------------------------- statements
    def block(self, body: tuple[ir.Stmt, ...], loop_depth: int) -> StmtFn:
        fns = [self.stmt(s, loop_depth) for s in body]
        if not fns:
            return lambda chunk, mask: mask
        if len(fns) == 1:
            return fns[0]

        def run(chunk: Chunk, mask: Mask) -> Mask:
            for fn in fns:
                new = fn(chunk, mask)
                if new is not mask:
                    if new is not None and not new.any():
                        return new
                    mask = new
            return mask
        return run

    def stmt(self, s: ir.Stmt, loop_depth: int) -> StmtFn:
        if isinstance(s, (ir.Break, ir.Continue)) and loop_depth == 0:
            raise self._error(s.line, f"{type(s).__name__.lower()} outside a loop")
        method = {
            ir.Assign: self._s_assign, ir.Store: self._s_store, ir.AtomicRMW: self._s_atomicrmw, ir.If: self._s_if,
            ir.For: self._s_for, ir.While: self._s_while, ir.Break: self._s_break, ir.Continue: self._s_continue,
            ir.Return: self._s_return, ir.Barrier: self._s_barrier, ir.Fence: self._s_fence, ir.Collective: self._s_collective,
        }.get(type(s))
        if method is None:
            raise self._error(getattr(s, "line", 0), f"unknown statement {type(s).__name__}")
        fn: StmtFn = method(s, loop_depth)  # type: ignore[operator]
        return fn

    def _target(self, name: str, line: int) -> ScalarType:
        if name not in self.var_types:
            raise self._error(line, f"assignment to undeclared variable {name!r}")
        return self.var_types[name]

    def _s_assign(self, s: ir.Assign, loop_depth: int) -> StmtFn:
        name = s.target
        value = self._cast_to(self.expr(s.value, s.line), s.value.type, self._target(name, s.line))

        def assign(chunk: Chunk, mask: Mask) -> Mask:
            _assign(chunk, mask, name, value(chunk, mask))
            return mask
        return assign

    def _s_store(self, s: ir.Store, loop_depth: int) -> StmtFn:
        type_, _ = self._buffer(s.buffer, s.space, s.line)
        value = self._cast_to(self.expr(s.value, s.line), s.value.type, type_)
        access = self._access(s.buffer, s.space, s.index, s.line, "store to")
        name, line, space, traced, itemsize = s.buffer, s.line, s.space, self.traced, type_.np_dtype.itemsize

        def store(chunk: Chunk, mask: Mask) -> Mask:
            v = value(chunk, mask)
            idx, flat = access(chunk, mask)
            buf = chunk.buffers[name]
            if mask is None:
                if np.ndim(flat) == 0 and np.ndim(v) != 0:
                    v = v[-1]  # every thread stores to one address: the last in reference order wins
                buf[flat] = v
            else:
                buf[np.broadcast_to(flat, (chunk.n,))[mask]] = v[mask] if np.ndim(v) else v
            if traced:
                chunk.tracer.memory(line, space, name, np.broadcast_to(idx, (chunk.n,)),  # type: ignore[union-attr]
                                    chunk.full(mask), True, itemsize)
            return mask
        return store

    def _s_atomicrmw(self, s: ir.AtomicRMW, loop_depth: int) -> StmtFn:
        type_, _ = self._buffer(s.buffer, s.space, s.line)
        arity = 2 if s.op == "cas" else 1
        if s.op not in ir.ATOMIC_OPS or len(s.operands) != arity:
            raise self._error(s.line, f"atomic_{s.op} with {len(s.operands)} operands")
        operands = [self._cast_to(self.expr(o, s.line), o.type, type_) for o in s.operands]
        access = self._access(s.buffer, s.space, s.index, s.line, f"atomic_{s.op} on")
        result = s.result
        result_dtype = self._target(result, s.line).np_dtype if result is not None else None
        name, line, space, op, traced = s.buffer, s.line, s.space, s.op, self.traced
        itemsize = type_.np_dtype.itemsize

        def atomic_rmw(chunk: Chunk, mask: Mask) -> Mask:
            vals = [o(chunk, mask) for o in operands]
            idx, flat = access(chunk, mask)
            n = chunk.n
            sel = slice(None) if mask is None else mask
            addr = np.broadcast_to(flat, (n,))[sel].astype(np.intp, copy=False)
            old = atomic(op, chunk.buffers[name], addr, [np.broadcast_to(v, (n,))[sel] for v in vals])
            if traced:
                chunk.tracer.atomic(line, space, name, np.broadcast_to(idx, (n,)),  # type: ignore[union-attr]
                                    chunk.full(mask), itemsize)
            if result is not None:
                full = old if mask is None else np.zeros(n, old.dtype)
                if mask is not None:
                    full[mask] = old
                _assign(chunk, mask, result, full.astype(result_dtype, copy=False))
            return mask
        return atomic_rmw

    def _branch(self, cond: ir.Expr, line: int) -> ExprFn:
        fn = self.expr(cond, line)
        if cond.type != BOOL:
            fn = self._cast_to(fn, cond.type, BOOL)
        return self._traced_op(fn, line, "branch", BOOL)

    def _s_if(self, s: ir.If, loop_depth: int) -> StmtFn:
        cond = self._branch(s.cond, s.line)
        then, orelse = self.block(s.then, loop_depth), self.block(s.orelse, loop_depth)
        has_else = bool(s.orelse)

        def if_(chunk: Chunk, mask: Mask) -> Mask:
            c = cond(chunk, mask)
            if np.ndim(c) == 0:
                return then(chunk, mask) if c else orelse(chunk, mask)
            tm = c if mask is None else mask & c
            k = np.count_nonzero(tm)
            if k == 0:
                return orelse(chunk, mask)
            em = ~c if mask is None else mask & ~c
            if k == chunk.n or (mask is not None and not em.any()):
                return then(chunk, mask)
            t_out = then(chunk, tm)
            e_out = orelse(chunk, em) if has_else else em
            if t_out is tm and e_out is em:
                return mask
            return _union([t_out, e_out], chunk)
        return if_

    def _loop(self, cond: Callable[[Chunk, Mask, int], Value], body: StmtFn,
              before_body: Callable[[Chunk, Mask], None] | None) -> StmtFn:
        """The masked loop shared by While and For: iterate while any thread of the chunk is active."""

        def loop(chunk: Chunk, mask: Mask) -> Mask:
            exits: list[Mask] = []
            active, j = mask, 0
            while True:
                c = cond(chunk, active, j)
                if np.ndim(c) == 0:
                    if not c:
                        exits.append(active)
                        break
                else:
                    new = _and(chunk, active, c)
                    if new is not active:
                        exits.append(~c if active is None else active & ~c)
                    if new is not None and not new.any():
                        break
                    active = new
                if before_body is not None:
                    before_body(chunk, active)
                breaks: list[Mask] = []
                continues: list[Mask] = []
                chunk.frames.append((breaks, continues))
                try:
                    out = body(chunk, active)
                finally:
                    chunk.frames.pop()
                exits.extend(breaks)
                active = _union([out, *continues], chunk) if continues else out
                if active is not None and not active.any():
                    break
                j += 1
            out = _union(exits, chunk)
            return None if out is not None and out.all() else out
        return loop

    def _s_while(self, s: ir.While, loop_depth: int) -> StmtFn:
        """A ``while`` loop that stops when aborted, and faults when an iteration changes nothing:
        the interpreter is deterministic and runs a chunk alone, so such a loop would repeat forever."""
        cond = self._branch(s.cond, s.line)
        body = self.block(s.body, loop_depth + 1)
        names, buffers = _written(s.body)
        key, line = id(s), s.line

        def counted(chunk: Chunk, mask: Mask, j: int) -> Value:
            chunk.while_trips[key] = j
            return cond(chunk, mask)

        def watched(chunk: Chunk, mask: Mask) -> Mask:
            stop = ABORT.get()
            if stop is not None and stop.is_set():
                raise chunk.fault(line, "aborted in this while loop (a synchronize(timeout=...) ran out, or "
                                        "Queue.abort())")
            j = chunk.while_trips[key]
            suspect = chunk.while_suspect.get(key) == j
            if not suspect and (j < _WATCH_FROM or j & (j - 1)):
                return body(chunk, mask)
            # first the variables only (cheap); memory too on the next iteration if they stayed
            watched_buffers = buffers if suspect else []
            before = _snapshot(chunk, names, watched_buffers)
            out = body(chunk, mask)
            breaks, continues = chunk.frames[-1]
            ahead = _union([out, *continues], chunk)
            same = (not any(m is None or m.any() for m in breaks)) and np.array_equal(
                chunk.full(ahead), chunk.full(mask)) and _same(before, _snapshot(chunk, names, watched_buffers))
            if same and not suspect:
                chunk.while_suspect[key] = j + 1
            elif same:
                t = chunk.first(mask)
                raise chunk.fault(line, f"this while loop cannot make progress: iteration {j} changed no variable "
                                        f"and no memory, so it would repeat forever ({chunk.describe(t)} is among "
                                        "the work-items in it). A work-item may wait only for work-groups of lower "
                                        "linear id, or for a lock that another work-group takes and releases, never "
                                        "for a work-item of its own work-group (take the lock in one work-item: "
                                        "see 'Forward progress' in docs/memory-model.md)")
            return out
        return self._loop(counted, watched, None)

    def _s_for(self, s: ir.For, loop_depth: int) -> StmtFn:
        """``range`` semantics: the trip count is fixed on entry; the variable is set at each iteration."""
        var = s.var
        if var not in self.var_types:
            raise self._error(s.line, f"undeclared loop variable {var!r}")
        vt = self.var_types[var]
        if not vt.is_int:
            raise self._error(s.line, f"loop variable {var!r} has type {vt.value}, not an integer")
        start, stop, step = (self._cast_to(self.expr(x, s.line), x.type, vt) for x in (s.start, s.stop, s.step))
        body = self.block(s.body, loop_depth + 1)
        traced, line = self.traced, s.line
        key = self._for_count
        self._for_count += 1

        def cond(chunk: Chunk, mask: Mask, j: int) -> Value:
            if traced:
                chunk.tracer.op(line, "branch", BOOL, chunk.full(mask))  # type: ignore[union-attr]
            return chunk.loop_state[key][0] > j

        def set_var(chunk: Chunk, mask: Mask) -> None:
            state = chunk.loop_state[key]
            _assign(chunk, mask, var, state[1])
            state[1] = state[1] + state[2]

        loop = self._loop(cond, body, set_var)

        def for_(chunk: Chunk, mask: Mask) -> Mask:
            a, b, st = start(chunk, mask), stop(chunk, mask), step(chunk, mask)
            zero = st == 0
            if np.ndim(zero) and mask is not None:
                zero = zero & mask
            if np.any(zero):
                t = int(np.argmax(zero)) if np.ndim(zero) else chunk.first(mask)
                raise chunk.fault(line, f"range() step is zero for {chunk.describe(t)}")
            chunk.loop_state[key] = [_trip_count(a, b, st), a, st]
            return loop(chunk, mask)
        return for_

    def _s_break(self, s: ir.Break, loop_depth: int) -> StmtFn:
        def brk(chunk: Chunk, mask: Mask) -> Mask:
            chunk.frames[-1][0].append(mask)
            return chunk.empty
        return brk

    def _s_continue(self, s: ir.Continue, loop_depth: int) -> StmtFn:
        def cont(chunk: Chunk, mask: Mask) -> Mask:
            chunk.frames[-1][1].append(mask)
            return chunk.empty
        return cont

    def _s_return(self, s: ir.Return, loop_depth: int) -> StmtFn:
        return lambda chunk, mask: chunk.empty

    def _s_fence(self, s: ir.Fence, loop_depth: int) -> StmtFn:
        """Nothing to do: the interpreter applies every access at once, in the reference order."""
        return lambda chunk, mask: mask

    def _s_barrier(self, s: ir.Barrier, loop_depth: int) -> StmtFn:
        line, traced = s.line, self.traced

        def barrier(chunk: Chunk, mask: Mask) -> Mask:
            if traced:
                chunk.tracer.barrier(line, chunk.full(mask))  # type: ignore[union-attr]
            if mask is None:
                return mask
            rows = mask.reshape(chunk.groups, chunk.tpg)
            count = np.count_nonzero(rows, axis=1)
            divergent = (count != 0) & (count != chunk.tpg)
            if divergent.any():
                g = int(np.argmax(divergent))
                t = g * chunk.tpg + int(np.argmin(rows[g]))
                arrived = int(count[g])
                raise chunk.fault(line, f"barrier divergence: {arrived} of {chunk.tpg} threads of the work-group "
                                        f"reached the barrier; {chunk.describe(t)} did not")
            return mask
        return barrier

    def _s_collective(self, s: ir.Collective, loop_depth: int) -> StmtFn:
        """A subgroup or work-group exchange (:mod:`._interp_collective`): all of the unit or none."""
        if s.op not in ir.COLLECTIVE_OPS.get(s.scope, ()) or len(s.args) != (2 if s.op in ir.SHUFFLE_OPS else 1):
            raise self._error(s.line, f"bad collective {s.scope} {s.op} with {len(s.args)} arguments")
        value = self._cast_to(self.expr(s.args[0], s.line), s.args[0].type, s.type)
        lane = self._cast_to(self.expr(s.args[1], s.line), s.args[1].type, ScalarType.I32) if len(s.args) > 1 \
            else None
        result, rtype = s.result, self._target(s.result, s.line).np_dtype
        line, scope, op, type_, traced = s.line, s.scope, s.op, s.type, self.traced
        dtype = type_.np_dtype
        spelled = s.op if s.op in ir.SHUFFLE_OPS else f"{s.scope}_{s.op}"

        def collective(chunk: Chunk, mask: Mask) -> Mask:
            launch = chunk.launch
            sub = launch.subgroups
            if traced:
                full = chunk.full(mask)
                if scope == "group":
                    chunk.tracer.barrier(line, full)  # type: ignore[union-attr]
                hook = getattr(chunk.tracer, "collective", None)
                if hook is not None:
                    hook(line, scope, op, type_, full)
            if mask is not None:
                _check_reached(chunk, mask, scope, line, spelled)
            v = np.broadcast_to(np.asarray(value(chunk, mask), dtype), (chunk.n,))
            local = launch.local_linear[:chunk.n]
            if lane is not None:
                arg = np.broadcast_to(np.asarray(lane(chunk, mask), np.int32), (chunk.n,))
                if op != "shuffle":
                    _check_distance(chunk, mask, arg, sub.size, line, spelled)
                own = sub.lane(local)
                source = {"shuffle": arg, "shuffle_xor": own ^ arg, "shuffle_up": own - arg,
                          "shuffle_down": own + arg}[op]
                out = sub.shuffle(v, local, source)
            elif scope == "group":
                out = group_reduce(op, v, chunk.groups, chunk.tpg)
            elif op in ir.VOTE_OPS:
                out = sub.vote(op, v, chunk.groups)
            elif op in ir.SCAN_OPS:
                out = sub.scan(op, v, local)
            else:
                out = sub.reduce(op, v, chunk.groups)
            _assign(chunk, mask, result, out.astype(rtype, copy=False))
            return mask
        return collective


def _check_reached(chunk: Chunk, mask: np.ndarray, scope: str, line: int, what: str) -> None:
    """Fault unless every subgroup (work-group) of the chunk reached the collective with all or none of its threads."""
    if scope == "group":
        rows = mask.reshape(chunk.groups, chunk.tpg)
        count = np.count_nonzero(rows, axis=1)
        divergent = (count != 0) & (count != chunk.tpg)
        if not divergent.any():
            return
        g = int(np.argmax(divergent))
        t, arrived, of, unit = g * chunk.tpg + int(np.argmin(rows[g])), int(count[g]), chunk.tpg, "work-group"
    else:
        first = chunk.launch.subgroups.divergent(mask, chunk.groups)
        if first is None:
            return
        sub = chunk.launch.subgroups
        local = int(chunk.launch.local_linear[first])
        lanes = int(sub.lanes_of(np.array([local]))[0])
        base = first - local % sub.size
        t, arrived, of, unit = first, int(np.count_nonzero(mask[base:base + lanes])), lanes, "subgroup"
    raise chunk.fault(line, f"{unit} divergence: {arrived} of {of} threads of the {unit} reached hal.{what}(); "
                            f"{chunk.describe(t)} did not")


def _check_distance(chunk: Chunk, mask: Mask, arg: np.ndarray, size: int, line: int, what: str) -> None:
    """Fault where a shuffle's mask or delta is outside ``[0, S)``: the kernel assumed other subgroups."""
    bad = (arg < 0) | (arg >= size)
    if mask is not None:
        bad &= mask
    if bad.any():
        t = int(np.argmax(bad))
        raise chunk.fault(line, f"hal.{what}(v, {int(arg[t])}) on a device whose subgroups have {size} lane"
                                f"{'s' if size > 1 else ''} ({chunk.describe(t)}): the distance must be in "
                                f"[0, hal.subgroup_size()), else the result depends on the device; derive it from "
                                "hal.subgroup_size() or use hal.subgroup_reduce_add / hal.subgroup_scan_*")


def _trip_count(start: Value, stop: Value, step: Value) -> Value:
    """``len(range(start, stop, step))`` per thread (step != 0), exact for every integer type."""
    s, e, st = (np.asarray(v).astype(np.int64) for v in (start, stop, step))
    up = st > 0
    dist = np.where(up, e - s, s - e).astype(np.uint64)
    stride = np.where(up, st, -st).astype(np.uint64)
    nonempty = np.where(up, e > s, s > e)
    trips = np.where(nonempty, (dist - np.uint64(1)) // np.maximum(stride, np.uint64(1)) + np.uint64(1), np.uint64(0))
    return trips[()]


def _oob(chunk: Chunk, line: int, verb: str, space: str, name: str, index: Any, size: int, t: int) -> Exception:
    return chunk.fault(line, f"out-of-bounds {verb} {space} buffer '{name}': index {int(index)} is outside "
                             f"[0, {size}) for {chunk.describe(t)}")
