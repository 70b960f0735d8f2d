"""SimGpuExecutable: the IR plus the static facts the timing model needs (registers, shared layout, divisions)."""

from __future__ import annotations

from hal.backend import Executable
from hal.kernel import ir

from ._presets import Preset

BASE_REGISTERS = 8
"""Thread and block indices, a predicate and the stack pointer every kernel keeps live."""
MIN_REGISTERS = 16
"""``nvcc`` rarely allocates fewer, even for a one-line kernel."""


def estimate_registers(kernel: ir.Kernel, preset: Preset) -> int:
    """Registers per thread: every scalar variable kept live (an upper bound on the real liveness),
    two per 64-bit value, two per pointer parameter (its address), the deepest expression's
    temporaries, plus :data:`BASE_REGISTERS`; clamped to [MIN_REGISTERS, the part's maximum]."""
    words = sum(2 if t.bits == 64 else 1 for _, t in kernel.variables)
    pointers = 2 * sum(p.pointer for p in kernel.params)
    temps = max((_depth(e) for s in ir.walk_statements(kernel.body) for e in ir.statement_expressions(s)), default=0)
    return max(MIN_REGISTERS, min(BASE_REGISTERS + words + pointers + temps, preset.max_registers_per_thread))




def _depth(e: ir.Expr) -> int:
    """Registers for temporaries while evaluating ``e`` (Sethi-Ullman-like: depth of operand nesting)."""
    if isinstance(e, (ir.Const, ir.Var, ir.ThreadIndex)):
        return 0
    if isinstance(e, ir.Load):
        return 1 + _depth(e.index)
    if isinstance(e, ir.Unary):
        return _depth(e.operand)
    if isinstance(e, ir.Cast):
        return _depth(e.value)
    if isinstance(e, ir.Binary):
        return max(_depth(e.lhs), 1 + _depth(e.rhs))
    if isinstance(e, ir.Select):
        return 1 + max(_depth(e.cond), _depth(e.if_true), _depth(e.if_false))
    if isinstance(e, ir.Call):
        return max((i + _depth(a) for i, a in enumerate(e.args)), default=0)
    return 0


def _subexpressions(e: ir.Expr) -> tuple[ir.Expr, ...]:
    if isinstance(e, ir.Load):
        return (e.index,)
    if isinstance(e, ir.Unary):
        return (e.operand,)
    if isinstance(e, ir.Cast):
        return (e.value,)
    if isinstance(e, ir.Binary):
        return (e.lhs, e.rhs)
    if isinstance(e, ir.Select):
        return (e.cond, e.if_true, e.if_false)
    if isinstance(e, ir.Call):
        return tuple(e.args)
    return ()


def constant_division_lines(kernel: ir.Kernel) -> frozenset[int]:
    """Lines whose every integer ``//`` and ``%`` divides by a constant: ``nvcc`` strength-reduces them.

    The tracer sees an op's line, not its operands, so a line mixing constant and
    variable divisors keeps the general (slow) cost for all of them.
    """
    constant: set[int] = set()
    variable: set[int] = set()
    for stmt in ir.walk_statements(kernel.body):
        todo = list(ir.statement_expressions(stmt))
        while todo:
            e = todo.pop()
            todo.extend(_subexpressions(e))
            if isinstance(e, ir.Binary) and e.op in ("floordiv", "mod") and not e.type.is_float:
                (constant if isinstance(e.rhs, ir.Const) else variable).add(stmt.line)
    return frozenset(constant - variable)


def shared_layout(kernel: ir.Kernel) -> dict[str, int]:
    """Word offset of each shared array, laid out in declaration order with 16-byte alignment."""
    out: dict[str, int] = {}
    at = 0
    for a in kernel.arrays:
        if a.space == "shared":
            out[a.name] = at // 4
            at += -(-a.size * a.type.np_dtype.itemsize // 16) * 16
    return out


class SimGpuExecutable(Executable):
    """A kernel 'compiled' for a simulated GPU: what ``nvcc --resource-usage`` would tell."""

    def __init__(self, kernel: ir.Kernel, preset: Preset) -> None:
        self.kernel = kernel
        self.registers = estimate_registers(kernel, preset)
        self.shared_bytes = kernel.shared_bytes
        self.shared_base = shared_layout(kernel)
        self.constant_division_lines = constant_division_lines(kernel)

    def report(self) -> dict[str, int | str]:
        return {"kernel": self.kernel.name, "registers_per_thread": self.registers,
                "shared_bytes_per_block": self.shared_bytes}
