"""CUDA C++, the second dialect of :mod:`hal.kernel.simt` (compiled by NVRTC: :mod:`hal.kernel.nvrtc`).

NVRTC compiles without the C library's headers, so the prelude names the ``<stdint.h>`` types and
the ``INFINITY``/``NAN`` macros itself; CUDA's device math library supplies the C99 names
(``sqrtf``, ``fmod``, ``copysignf``...), so the portable helpers of :mod:`._cprelude` serve
unchanged once marked ``__device__``. Exactness comes from the compile options
(:data:`NVRTC_OPTIONS`): no fused multiply-add contraction, IEEE division and square root, no
flush of subnormals to zero.

Atomics: integer add/min/max/exchange/cas, ``f64`` add, ``f32`` add in shared memory and ``f32``
exchange are CUDA's own (``atomicAdd`` on doubles needs sm_60, which every supported architecture
has; 64-bit min/max need sm_35); float min/max (NaN-propagating, as the IR defines them), float and
``f64`` cas, ``f64`` exchange and ``f32`` add in global memory are a compare-and-swap loop over the
value's bits. ``atomicAdd(float *)`` is PTX ``atom.add.f32``, which flushes subnormal operands and
results to zero on global memory (the PTX ISA; ``.noftz`` needs sm_90 and PTX 9.4) whatever
``--ftz`` says, where the IR keeps them; on shared memory it keeps them. CUDA's atomics work on the
generic address space, so one helper serves global and shared memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._cnarrow import NARROW, NARROW_F64
from ._cprelude import _PORTABLE
from .simt import FAULT_WORDS, Dialect
from .types import ScalarType

I32, U32, I64, U64 = ScalarType.I32, ScalarType.U32, ScalarType.I64, ScalarType.U64
F32, F64 = ScalarType.F32, ScalarType.F64
NVRTC_OPTIONS = ("--disable-warnings", "--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false", "-std=c++17")
"""Results equal the reference interpreter's: never ``--use_fast_math``, which would contract
``a * b + c`` and approximate division, square root and the transcendental functions."""

_HEAD = """typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef unsigned char uchar;
#define INFINITY __int_as_float(0x7f800000)
#define NAN __int_as_float(0x7fc00000)
#define hal_f32_bits(x) __float_as_uint(x)
#define hal_bits_f32(u) __uint_as_float(u)
#define hal_f64_bits(x) ((uint64_t)__double_as_longlong(x))
"""

_FAULT = f"""
/* the first fault of a launch claims the record ({FAULT_WORDS} ints); the host reads it at synchronize */
static __device__ void hal_fault(int *F, int L, int site, int64_t i, int64_t n) {{
    if (atomicCAS(F, 0, 1) != 0) return;
    F[1] = L; F[2] = site;
    const unsigned g[3] = {{blockIdx.x * blockDim.x + threadIdx.x, blockIdx.y * blockDim.y + threadIdx.y,
                           blockIdx.z * blockDim.z + threadIdx.z}};
    const unsigned b[3] = {{blockIdx.x, blockIdx.y, blockIdx.z}}, t[3] = {{threadIdx.x, threadIdx.y, threadIdx.z}};
    for (int d = 0; d < 3; d++) {{ F[3 + d] = (int)g[d]; F[6 + d] = (int)b[d]; F[9 + d] = (int)t[d]; }}
    F[12] = (int)(i & 0xffffffff); F[13] = (int)(i >> 32); F[14] = (int)(n & 0xffffffff); F[15] = (int)(n >> 32);
    __threadfence_system();
}}
static __device__ int64_t hal_chk(int *F, int L, int site, int64_t i, int64_t n) {{
    if ((uint64_t)i < (uint64_t)n) return i;
    hal_fault(F, L, site, i, n);
    return 0;
}}
"""

_SUFFIX = {I32: "i32", I64: "i64", U32: "u32", U64: "u64", F32: "f32", F64: "f64"}
_BITS = {F32: ("unsigned int", "__float_as_uint", "__uint_as_float"),
         F64: ("unsigned long long", "__double_as_longlong", "__longlong_as_double")}
_RMW = {"add": 0, "min": 1, "max": 2, "exchange": 3}
_NATIVE = {
    (I32, "add"): "atomicAdd", (I32, "min"): "atomicMin", (I32, "max"): "atomicMax",
    (I32, "exchange"): "atomicExch", (I32, "cas"): "atomicCAS",
    (U32, "add"): "atomicAdd", (U32, "min"): "atomicMin", (U32, "max"): "atomicMax",
    (U32, "exchange"): "atomicExch", (U32, "cas"): "atomicCAS",
    (F32, "add"): "atomicAdd", (F32, "exchange"): "atomicExch", (F64, "add"): "atomicAdd",
    **{(t, op): f"atomic{op.capitalize()}" for t in (I32, U32) for op in ("and", "or", "xor")},
}
_FLUSHES_IN_GLOBAL = {(F32, "add")}
"""Native atomics that flush subnormals to zero on global memory (PTX ``atom.add.f32``): a
compare-and-swap loop there, the native one in shared memory."""
_ULL = "unsigned long long"
_NATIVE64 = {(t, op): (fn, _ULL if op in ("add", "exchange", "cas", "and", "or", "xor") or t == U64 else "long long")
             for t in (I64, U64) for op, fn in (("add", "atomicAdd"), ("exchange", "atomicExch"), ("cas", "atomicCAS"),
                                                ("min", "atomicMin"), ("max", "atomicMax"), ("and", "atomicAnd"),
                                                ("or", "atomicOr"), ("xor", "atomicXor"))}
"""64-bit atomics through CUDA's ``unsigned long long`` overloads (wrapping add, bit-exact exchange and
cas), signed min/max through the ``long long`` ones."""


def _cas_helpers(t: ScalarType) -> str:
    """``hal_rmw_<t>`` (min/max/exchange by op 1-3) and ``hal_cas_<t>`` of a float type, as CAS loops."""
    n, c = _SUFFIX[t], t.c_name
    bits, to_bits, from_bits = _BITS[t]
    new = f"op == 1 ? hal_min_{n}(o, v) : op == 2 ? hal_max_{n}(o, v) : op == 0 ? hal_add_{n}(o, v) : v"
    loop = (f"{bits} *q = ({bits} *)p; {bits} old = *(volatile {bits} *)q;\n"
            f"    for (;;) {{\n        {c} o = {from_bits}(old);\n")
    swap = (f"        {bits} seen = atomicCAS(q, old, {to_bits}(n));\n        if (seen == old) return o;\n"
            "        old = seen;\n    }\n")
    return (f"static __device__ {c} hal_rmw_{n}({c} *p, {c} v, int op) {{\n    {loop}        {c} n = {new};\n{swap}}}\n"
            f"static __device__ {c} hal_cas_{n}({c} *p, {c} c, {c} v) {{\n    {loop}"
            f"        if (!(o == c)) return o;\n        {c} n = v;\n{swap}}}\n")


_SHUFFLED = {I32, U32, I64, U64, F32, F64}
"""Types ``__shfl_sync`` moves as they are; the narrow ones (integers in C, ``f16``/``bf16`` as their
``uint16_t`` bits) move widened to ``int``, so no collective needs work-group memory."""


_WARP_MASK = "(hal_lanes == 32 ? 0xffffffffu : ((1u << hal_lanes) - 1u))"
"""The lanes of this warp that exist (a partial last warp has fewer than 32): every ``*_sync`` names them."""


@dataclass(frozen=True)
class Cuda(Dialect):
    """CUDA C++ for NVRTC; every architecture hal targets (sm_60 and newer) has the same atomics.
    Subgroups are warps: 32 lanes, linear thread id / 32, exchanged with ``__shfl_sync``."""

    subgroup_size: int = 32
    max_group_size: int = 1024

    name = "CUDA C++"
    global_space = ""
    shared_space = "__shared__"
    kernel_prefix = 'extern "C" __global__'
    barrier = "__syncthreads()"

    def prelude(self, uses: frozenset[ScalarType]) -> str:
        portable = _PORTABLE + NARROW + NARROW_F64
        helpers = portable.replace("static inline ", "static __device__ inline ")
        assert "static inline" not in helpers and helpers != portable, "update hal.kernel.cuda.Cuda.prelude"
        parts = [_HEAD, helpers, _FAULT]
        parts += [_cas_helpers(t) for t in (F32, F64) if t in uses]
        return "\n".join(parts)

    def thread_index(self, kind: str, dim: int) -> str:
        a = "xyz"[dim]
        expr = {"global_id": f"blockIdx.{a} * blockDim.{a} + threadIdx.{a}", "local_id": f"threadIdx.{a}",
                "group_id": f"blockIdx.{a}", "local_size": f"blockDim.{a}", "num_groups": f"gridDim.{a}",
                "global_size": f"gridDim.{a} * blockDim.{a}"}[kind]
        return f"((int32_t)({expr}))"

    def shuffle(self, value: str, lane: str, t: ScalarType) -> str | None:
        """The mask names exactly the lanes that exist: a partial last warp has fewer than 32."""
        if t not in _SHUFFLED:
            return f"(({t.c_name})__shfl_sync({_WARP_MASK}, (int)({value}), ({lane})))"
        return f"__shfl_sync({_WARP_MASK}, ({value}), ({lane}))"

    def fence(self, scope: str, order: str) -> str:
        """PTX ``fence.sc`` (``__threadfence``: device, ``__threadfence_block``: block) for every order:
        CUDA C++ has no weaker fence without libcu++, and a stronger fence is a correct one."""
        return "__threadfence()" if scope == "device" else "__threadfence_block()"

    def vote(self, op: str, pred: str) -> str | None:
        return f"__{op}_sync({_WARP_MASK}, ({pred}))"

    def atomic(self, op: str, space: str, t: ScalarType, ref: str, operands: list[str]) -> str:
        if (t, op) in _NATIVE64:
            fn, as_t = _NATIVE64[t, op]
            return f"({t.c_name}){fn}(({as_t} *)&{ref}, {', '.join(f'({as_t})({o})' for o in operands)})"
        native = None if space == "global" and (t, op) in _FLUSHES_IN_GLOBAL else _NATIVE.get((t, op))
        args = ", ".join([f"&{ref}", *operands])
        if native is not None:
            return f"{native}({args})"
        if op == "cas":
            return f"hal_cas_{_SUFFIX[t]}({args})"
        return f"hal_rmw_{_SUFFIX[t]}({args}, {_RMW[op]})"
