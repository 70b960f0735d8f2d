"""C spelling of IR scalars: literals, names, thread indices and operators with the IR's semantics.

Pure string functions (no kernel state), shared by the emitter and its range analysis.
"""

from __future__ import annotations

import math
import re

import numpy as np

from . import ir
from ._narrow import scalar_half_bits
from .types import ScalarType

I32, I64, U32, U64 = ScalarType.I32, ScalarType.I64, ScalarType.U32, ScalarType.U64
F32, F64, BOOL = ScalarType.F32, ScalarType.F64, ScalarType.BOOL
F16, BF16 = ScalarType.F16, ScalarType.BF16
_SUFFIX = {t: t.value for t in ScalarType}
_UNSIGNED = {I32: "uint32_t", I64: "uint64_t", U32: "uint32_t", U64: "uint64_t"}
_WRAPPING = (I32, U32, I64, U64)
"""The integer types arithmetic happens in (narrow ones are promoted first)."""


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


def _const(value: int | float | bool, t: ScalarType) -> str:
    if t == BOOL:
        return "true" if value else "false"
    if t.is_int:
        bits = t.bits
        v = int(value) % (1 << bits)
        if t.is_signed and v >= 1 << (bits - 1):
            v -= 1 << bits
        if t.is_signed and v == -(1 << (bits - 1)):
            return f"(({t.c_name})({v + 1}{'LL' if t == I64 else ''} - 1))"
        return f"(({t.c_name}){v}{'u' if t == U32 else ''}{'LL' if t == I64 else ''}{'ULL' if t == U64 else ''})"
    if t.is_narrow:  # a bit pattern
        return f"(({t.c_name})0x{scalar_half_bits(value, t):04x}u)"
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
    "subgroup_size": ("1", "1", "1"),
    "subgroup_local_id": ("0", "0", "0"),
}
"""C of each thread index (subgroups: of one work-item, the only size :mod:`hal.kernel.cemit` emits)."""


def _cast(code: str, src: ScalarType, dst: ScalarType) -> str:
    """An IR cast: to bool by comparison; a float to u32 through int64 (as numpy does); f16/bf16 through
    the bit-exact helpers of :mod:`._cnarrow` (one rounding from any source); a float to an 8/16-bit
    integer through i32 (then wrapping), as the reference interpreter."""
    if src == dst:
        return code
    if src in (F16, BF16):
        code, src = f"hal_{src.value}_to_f32({code})", F32
        if dst == F32:
            return code
    if dst == BOOL:
        return f"(({code}) != 0)"
    if dst in (F16, BF16):
        if src.is_float:
            return f"hal_{dst.value}_from_{src.value}({code})"
        wide = "i64" if src.is_signed else "u64"
        return f"hal_{dst.value}_from_{wide}(({'int64_t' if src.is_signed else 'uint64_t'})({code}))"
    if src.is_float and dst == U32:
        return f"((uint32_t)(int64_t)({code}))"
    if src.is_float and dst.is_narrow:
        return f"(({dst.c_name})(int32_t)({code}))"
    return f"(({dst.c_name})({code}))"


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
    if op in ("add", "sub", "mul") and t in _WRAPPING:
        u = _UNSIGNED[t]
        return f"(({t.c_name})(({u})({a}) {_C_OPS[op]} ({u})({b})))"
    if op in ("bitand", "bitor", "bitxor") and t != BOOL:
        return f"(({t.c_name})(({a}) {_C_OPS[op]} ({b})))"
    if op in _C_OPS:
        return f"(({a}) {_C_OPS[op]} ({b}))"
    raise ValueError(f"unknown binary op {op!r}")


_F32_FUNCS = {"sqrt": "sqrtf", "exp": "expf", "log": "logf", "sin": "sinf", "cos": "cosf", "tanh": "tanhf",
              "abs": "fabsf", "floor": "floorf", "ceil": "ceilf", "fma": "fmaf", "round": "rintf",
              **{f: f + "f" for f in ("erf", "erfc", "exp2", "log2", "log10", "log1p", "expm1", "tan", "asin",
                                      "acos", "atan", "atan2", "sinh", "cosh", "trunc", "copysign", "hypot")}}
"""C99 <math.h> names (single precision; the double ones drop the ``f``). ``round`` is ``rint``: ties to even."""


def _call(func: str, args: list[str], t: ScalarType) -> str:
    if func in ir.BIT_FUNCS:  # helpers of the portable prelude, on the unsigned pattern
        bits = 64 if t.bits == 64 else 32
        fn = {"popcount": "popc", "clz": "clz", "ctz": "ctz"}[func]
        return f"(({t.c_name})hal_{fn}{bits}((uint{bits}_t)({args[0]})))"
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
    if func in ("isnan", "isinf", "isfinite"):  # type-generic macros (OpenCL: overloads returning int)
        return f"({func}({args[0]}) != 0)"
    if func == "rsqrt":  # two correctly rounded operations, the same on every C backend
        return f"((float)1 / sqrtf({args[0]}))" if t == F32 else f"(1.0 / sqrt({args[0]}))"
    name = _F32_FUNCS[func] if t == F32 else _F32_FUNCS[func][:-1]
    return f"{name}({', '.join(args)})"
