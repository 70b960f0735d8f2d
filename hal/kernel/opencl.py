"""OpenCL C, the first dialect of :mod:`hal.kernel.simt`.

What OpenCL C lacks is mapped, not re-emitted: ``<stdint.h>`` names are typedefs, the C99 ``f``
math names are macros over OpenCL's overloads, so the portable helpers of :mod:`._cprelude` and
the expression spelling of :mod:`._cexpr` serve unchanged. ``#pragma OPENCL FP_CONTRACT OFF``
keeps ``a * b + c`` two roundings (build without ``-cl-fast-relaxed-math`` and with
``-cl-fp32-correctly-rounded-divide-sqrt``: :data:`BUILD_OPTIONS`).

Atomics: 32-bit integer add/min/max/exchange/cas are OpenCL's own (``atomic_*``, core since 1.1,
on ``__global`` and ``__local``); 64-bit integer add/exchange/cas are ``atom_*`` of
``cl_khr_int64_base_atomics``; everything else (float add, min and max, 64-bit min/max, every
``f64`` operation) is a compare-and-swap loop over the value's bits that applies the IR's
operation (wrapping add, NaN-propagating min/max). A 64-bit atomic on a device without the extension is an UnsupportedError.

Narrow types: ``char``/``short`` typedefs for the 8/16-bit integers; ``f16`` and ``bf16`` are ``ushort``
bit patterns converted by :mod:`._cnarrow`'s integer code, so no ``cl_khr_fp16`` is needed (PoCL has none)
and the bits match the CPU backend and the reference interpreter.

One-argument math goes through guards that keep NaN (and, for rounding, huge) arguments from the
driver's builtins, whose undefined behaviour on them makes PoCL's LLVM delete code around a call
with a constant argument (:func:`_guards`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._errors import UnsupportedError
from ._cnarrow import NARROW, NARROW_F64
from ._cprelude import _PORTABLE
from .simt import FAULT_WORDS, Dialect
from .types import ScalarType

I32, U32, I64, F32, F64 = ScalarType.I32, ScalarType.U32, ScalarType.I64, ScalarType.F32, ScalarType.F64
U64 = ScalarType.U64
BUILD_OPTIONS = ("-cl-std=CL1.2", "-cl-fp32-correctly-rounded-divide-sqrt", "-w")
"""Exact IEEE division and sqrt (OpenCL allows 2.5 ulp otherwise); never ``-cl-fast-relaxed-math``
or ``-cl-mad-enable``, which would change results against the reference interpreter."""
_MATH = ("sqrt", "exp", "log", "sin", "cos", "tanh", "floor", "ceil", "fma", "fmod", "copysign", "pow",
         "erf", "erfc", "exp2", "log2", "log10", "log1p", "expm1", "tan", "asin", "acos", "atan", "atan2", "sinh",
         "cosh", "trunc", "rint", "hypot")
_ROUNDING = ("floor", "ceil", "trunc", "rint")
_NAN_GUARDED = ("sqrt", "exp", "log", "sin", "cos", "tanh", "erf", "erfc", "exp2", "log2", "log10", "log1p", "expm1",
                "tan", "asin", "acos", "atan", "sinh", "cosh")
"""The one-argument functions, each called through a guard (:func:`_guards`)."""
_SUFFIX = {I32: "i32", I64: "i64", U32: "u32", U64: "u64", F32: "f32", F64: "f64"}
_BITS = {I32: ("uint", "as_int"), U32: ("uint", "as_uint"), F32: ("uint", "as_float"),
         I64: ("ulong", "as_long"), U64: ("ulong", "as_ulong"), F64: ("ulong", "as_double")}
_SPACES = {"global": ("g", "volatile __global"), "shared": ("l", "volatile __local")}
"""Where atomics may act (the language refuses them on per-work-item arrays)."""
_RMW = {"add": 0, "min": 1, "max": 2, "exchange": 3, "and": 4, "or": 5, "xor": 6}
_NATIVE32 = {"add": "atomic_add", "min": "atomic_min", "max": "atomic_max", "exchange": "atomic_xchg",
             "cas": "atomic_cmpxchg", "and": "atomic_and", "or": "atomic_or", "xor": "atomic_xor"}
_NATIVE64 = {"add": "atom_add", "exchange": "atom_xchg", "cas": "atom_cmpxchg"}

_HEAD = """#pragma OPENCL FP_CONTRACT OFF
typedef char int8_t;
typedef uchar uint8_t;
typedef short int16_t;
typedef ushort uint16_t;
typedef int int32_t;
typedef uint uint32_t;
typedef long int64_t;
typedef ulong uint64_t;
#define hal_f32_bits(x) as_uint(x)
#define hal_bits_f32(u) as_float(u)
#define hal_f64_bits(x) as_ulong(x)
#define fabsf fabs
""" + "".join(f"#define {m}f {m}\n" for m in _MATH if m not in (*_ROUNDING, *_NAN_GUARDED))

_FAULT = f"""
/* the first fault of a launch claims the record ({FAULT_WORDS} ints); the host reads it at synchronize */
static void hal_fault(__global int *F, int L, int site, int64_t i, int64_t n) {{
    if (atomic_cmpxchg((volatile __global int *)F, 0, 1) != 0) return;
    F[1] = L; F[2] = site;
    for (uint d = 0; d < 3; d++) {{
        F[3 + d] = (int)get_global_id(d); F[6 + d] = (int)get_group_id(d); F[9 + d] = (int)get_local_id(d);
    }}
    F[12] = (int)(i & 0xffffffff); F[13] = (int)(i >> 32); F[14] = (int)(n & 0xffffffff); F[15] = (int)(n >> 32);
}}
static int64_t hal_chk(__global int *F, int L, int site, int64_t i, int64_t n) {{
    if ((uint64_t)i < (uint64_t)n) return i;
    hal_fault(F, L, site, i, n);
    return 0;
}}
"""


def _guards(fp64: bool) -> str:
    """One-argument math through guards that keep a NaN (and, for the rounding functions, any
    argument of at least 2**23, or 2**52 in f64, which is already an integer) away from the
    driver's builtin; the results are the builtin's own for every other argument.

    Why: PoCL 3.1's builtins (SLEEF's scalar code) convert such arguments to an integer, undefined
    behaviour in C that is harmless at run time, but when LLVM knows the argument (a literal, or
    a value it propagates, as ``hal.floor(math.nan)`` or ``math.inf // 1.0`` through
    ``hal_divmod``), it concludes that the code reaching the call never runs and deletes it with
    the stores around it: ``out[i] = 5; out[i] = rint(-INFINITY);`` stores nothing. Exp, exp2,
    expm1, tanh, sinh, floor, ceil, trunc and rint of a constant NaN, and rint of a constant of
    at least 2**31 (2**63 in f64) or infinite, all do that on PoCL 3.1 (tests/opencl/test_pocl_builtins.py).
    A guard is a branch, never a select, so the builtin is not evaluated for those arguments."""
    types = [("float", "0x1p23f"), *([("double", "0x1p52")] if fp64 else [])]
    lines = []
    for t, big in types:
        lines += [f"static inline __attribute__((overloadable)) {t} hal_{f}({t} x) "
                  f"{{ if (!(fabs(x) < {big})) return x; return {f}(x); }}" for f in _ROUNDING]
        lines += [f"static inline __attribute__((overloadable)) {t} hal_{f}({t} x) "
                  f"{{ if (x != x) return x; return {f}(x); }}" for f in _NAN_GUARDED]
    lines += [f"#define {f}(x) hal_{f}(x)\n#define {f}f(x) hal_{f}(x)" for f in (*_ROUNDING, *_NAN_GUARDED)]
    return "\n".join(lines) + "\n"


def _helpers(fp64: bool) -> str:
    """The portable helpers in OpenCL C: a float is no ``?:`` condition there (the operator also
    selects vectors), so that one test is spelled out; the f64 ones only where the device has fp64."""
    text = _PORTABLE.replace("return b ? hal_divmod", "return b != 0 ? hal_divmod")
    assert text != _PORTABLE, "the portable helpers changed: update hal.kernel.opencl._helpers"
    return text if fp64 else text.replace("HAL_FLOAT(f64, double, , uint64_t, int64_t, 0x7ff0000000000000ull)\n", "")


def _cas_helpers(s: str, space: str, t: ScalarType) -> str:
    """``hal_<s>rmw_<t>`` (add/min/max/exchange by op 0-3) and ``hal_<s>cas_<t>`` for one address space."""
    n, c = _SUFFIX[t], t.c_name
    bits, as_t = _BITS[t]
    as_b = f"as_{bits}"
    cas, add = ("atomic_cmpxchg", "atomic_add") if bits == "uint" else ("atom_cmpxchg", "atom_add")
    new = f"op == 0 ? hal_add_{n}(o, v) : op == 1 ? hal_min_{n}(o, v) : op == 2 ? hal_max_{n}(o, v) : v"
    if t.is_int:  # and / or / xor: 64-bit ones through this loop (cl_khr_int64_base_atomics has none)
        new = new.replace(" : v", " : op == 4 ? (o & v) : op == 5 ? (o | v) : op == 6 ? (o ^ v) : v")
    # The first read is atomic too (adding 0): a plain one races with other work-items' swaps.
    loop = (f"{space} {bits} *q = ({space} {bits} *)p; {bits} old = {add}(q, ({bits})0);\n"
            f"    for (;;) {{\n        {c} o = {as_t}(old);\n")
    swap = f"        {bits} seen = {cas}(q, old, {as_b}(n));\n        if (seen == old) return o;\n        old = seen;\n    }}\n"
    return (f"static {c} hal_{s}rmw_{n}({space} {c} *p, {c} v, int op) {{\n    {loop}        {c} n = {new};\n{swap}}}\n"
            f"static {c} hal_{s}cas_{n}({space} {c} *p, {c} c, {c} v) {{\n    {loop}        if (!(o == c)) return o;\n"
            f"        {c} n = v;\n{swap}}}\n")


@dataclass(frozen=True)
class OpenCL(Dialect):
    """OpenCL C 1.2 for one device's capabilities (which helpers and extensions it may use)."""

    fp64: bool = True
    int64_atomics: bool = True
    subgroup_size: int = 1
    """1: OpenCL 1.2 has no subgroups, and cl_khr_subgroups fixes neither their size nor how they
    partition a work-group at compile time, which hal's deterministic collectives need."""
    max_group_size: int = 1024

    name = "OpenCL C"
    global_space = "__global"
    shared_space = "__local"
    kernel_prefix = "__kernel"
    barrier = "barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE)"

    def prelude(self, uses: frozenset[ScalarType]) -> str:
        parts = [_HEAD]
        if self.fp64:
            parts.append("#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n")
        if self.int64_atomics:
            parts.append("#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable\n")
        parts.append(_guards(self.fp64))
        parts.append(_helpers(self.fp64))
        parts.append(NARROW + (NARROW_F64 if self.fp64 else ""))
        parts.append(_FAULT)
        for t in (I32, U32, I64, U64, F32, F64):
            if t not in uses or (t == F64 and not self.fp64):
                continue
            for s, space in _SPACES.values():
                if t.bits == 64 and not self.int64_atomics:
                    continue
                parts.append(_cas_helpers(s, space, t))
        return "\n".join(parts)

    def thread_index(self, kind: str, dim: int) -> str:
        fn = {"global_id": "get_global_id", "local_id": "get_local_id", "group_id": "get_group_id",
              "local_size": "get_local_size", "num_groups": "get_num_groups", "global_size": "get_global_size"}[kind]
        return f"((int32_t){fn}({dim}))"

    def fence(self, scope: str, order: str) -> str:
        """``mem_fence`` (OpenCL C 1.2: orders this work-item's global and local accesses; 1.2's atomics
        are device-coherent, so with them it is the fence the lock patterns need)."""
        return "mem_fence(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE)"

    def atomic(self, op: str, space: str, t: ScalarType, ref: str, operands: list[str]) -> str:
        s = _SPACES[space][0]
        if t.bits == 64 and not self.int64_atomics:
            raise UnsupportedError(f"OpenCL: this device has no 64-bit atomics (cl_khr_int64_base_atomics) for "
                                   f"hal.atomic_{op} on {t.value}; use a 32-bit type", "atomics")
        args = ", ".join([f"&{ref}", *operands])
        native = _NATIVE32 if t in (I32, U32) else _NATIVE64 if t in (I64, U64) else {}
        if op in native:
            return f"{native[op]}({args})"
        if op == "cas":
            return f"hal_{s}cas_{_SUFFIX[t]}({args})"
        return f"hal_{s}rmw_{_SUFFIX[t]}({args}, {_RMW[op]})"
