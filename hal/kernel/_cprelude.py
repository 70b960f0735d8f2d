"""The C text every generated kernel starts with: includes, the work-group context, and helpers.

Kept apart from the emitter because it is fixed C, not generated: helpers give the IR's
semantics (wrapping integers, floor ``//`` and ``%``, shift counts modulo the width,
NaN-propagating min/max, atomics) one definition each, which the emitted code calls.
"""

from __future__ import annotations

from ._cnarrow import C_BITS, NARROW, NARROW_F64

_INCLUDES = r"""
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "hal_kernel_abi.h"

/* before a loop over work-items, which never depend on each other within a phase */
#if defined(__clang__)
#define HAL_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define HAL_IVDEP _Pragma("GCC ivdep")
#endif
/* before a loop over a bundle's 16 lanes: one vector operation per statement, so that the bundle's
   variables stay in registers (GCC: kept rolled; Clang: at width 16, which ends the loop) */
#if defined(__clang__)
#define HAL_BUNDLE_LANES _Pragma("clang loop vectorize_width(16) interleave_count(1)")
#else
#define HAL_BUNDLE_LANES _Pragma("GCC unroll 1")
#endif

typedef struct hal_ctx {
    const hal_launch *launch;
    int32_t group[3];
    jmp_buf jump;
} hal_ctx;
"""

_CPU_FAULTS = r"""
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

/* the launch faulted or was aborted while a `while` loop runs: leave the range (each iteration checks) */
static void __attribute__((noinline, cold, noreturn)) hal_quit(hal_ctx *C) { longjmp(C->jump, 1); }

"""

_PORTABLE = r"""
/* popcount / clz / ctz of 32- and 64-bit patterns (plain C: the same text in every dialect) */
static inline int32_t hal_popc32(uint32_t x) {
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    return (int32_t)((((x + (x >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24);
}
static inline int32_t hal_popc64(uint64_t x) { return hal_popc32((uint32_t)x) + hal_popc32((uint32_t)(x >> 32)); }
static inline int32_t hal_clz32(uint32_t x) {
    int32_t n = 0;
    if (x == 0) return 32;
    if (x <= 0x0000ffffu) { n += 16; x <<= 16; }
    if (x <= 0x00ffffffu) { n += 8; x <<= 8; }
    if (x <= 0x0fffffffu) { n += 4; x <<= 4; }
    if (x <= 0x3fffffffu) { n += 2; x <<= 2; }
    if (x <= 0x7fffffffu) { n += 1; }
    return n;
}
static inline int32_t hal_clz64(uint64_t x) {
    return (x >> 32) != 0 ? hal_clz32((uint32_t)(x >> 32)) : 32 + hal_clz32((uint32_t)x);
}
static inline int32_t hal_ctz32(uint32_t x) { return x == 0 ? 32 : 31 - hal_clz32(x & (0u - x)); }
static inline int32_t hal_ctz64(uint64_t x) { return x == 0 ? 64 : 63 - hal_clz64(x & ((uint64_t)0 - x)); }
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

#define HAL_UNSIGNED(N, T) \
static inline T hal_add_##N(T a, T b) { return a + b; } \
static inline T hal_floordiv_##N(T a, T b) { return b ? a / b : 0; } \
static inline T hal_mod_##N(T a, T b) { return b ? a % b : 0; } \
static inline T hal_shl_##N(T a, uint64_t c) { return a << (c & (sizeof(T) * 8 - 1)); } \
static inline T hal_shr_##N(T a, uint64_t c) { return a >> (c & (sizeof(T) * 8 - 1)); } \
static inline T hal_abs_##N(T a) { return a; } \
static inline T hal_pow_##N(T a, T b) { \
    T r = 1; \
    while (b) { if (b & 1) r *= a; a *= a; b >>= 1; } \
    return r; \
}
HAL_UNSIGNED(u32, uint32_t)
HAL_UNSIGNED(u64, uint64_t)

/* floats: numpy's divmod (Python's floor meaning); min/max as numpy.minimum (a NaN operand, the first
   one, wins; of equal values b), ordered on the bits read as sign and magnitude (+0 and -0 are equal):
   with no float compare to select on, no compiler can rewrite the select. LLVM up to 15 (PoCL 3.1)
   turns `x > 0 ? -0.0 : x` into `x >= 0 ? -0.0 : x` (llvm-project#57357), so a float compare made
   min(-0.0, +0.0) -0.0 wherever it had first canonicalized `-0.0 < x` into `x > 0` */
#define HAL_FLOAT(N, T, F, B, S, INF) \
static inline T hal_divmod_##N(T a, T b, T *modulus) { \
    T mod = fmod##F(a, b); \
    if (!b) { *modulus = mod; return a / b; } \
    T div = (a - mod) / b; \
    if (mod) { if ((b < 0) != (mod < 0)) { mod += b; div -= 1; } } \
    else mod = copysign##F((T)0, b); \
    T fd; \
    if (div) { fd = floor##F(div); if (div - fd > (T)0.5) fd += 1; } \
    else fd = copysign##F((T)0, a / b); \
    *modulus = mod; \
    return fd; \
} \
static inline T hal_floordiv_##N(T a, T b) { T m; return b ? hal_divmod_##N(a, b, &m) : a / b; } \
static inline T hal_mod_##N(T a, T b) { T m; if (!b) return fmod##F(a, b); hal_divmod_##N(a, b, &m); return m; } \
static inline T hal_add_##N(T a, T b) { return a + b; } \
static inline S hal_order_##N(B u) { S m = (S)(u & ((B)-1 >> 1)); return u >> (sizeof(B) * 8 - 1) ? -m : m; } \
static inline int hal_isnan_##N(B u) { return (u & ((B)-1 >> 1)) > INF; } \
static inline T hal_min_##N(T a, T b) { \
    B u = hal_##N##_bits(a), v = hal_##N##_bits(b); \
    return hal_isnan_##N(u) ? a : hal_isnan_##N(v) ? b : hal_order_##N(u) < hal_order_##N(v) ? a : b; \
} \
static inline T hal_max_##N(T a, T b) { \
    B u = hal_##N##_bits(a), v = hal_##N##_bits(b); \
    return hal_isnan_##N(u) ? a : hal_isnan_##N(v) ? b : hal_order_##N(u) > hal_order_##N(v) ? a : b; \
} \
static inline T hal_pow_##N(T a, T b) { return pow##F(a, b); }
HAL_FLOAT(f32, float, f, uint32_t, int32_t, 0x7f800000u)
HAL_FLOAT(f64, double, , uint64_t, int64_t, 0x7ff0000000000000ull)

#define HAL_INT_MINMAX(N, T) \
static inline T hal_min_##N(T a, T b) { return a < b ? a : b; } \
static inline T hal_max_##N(T a, T b) { return a > b ? a : b; }
HAL_INT_MINMAX(i32, int32_t)
HAL_INT_MINMAX(i64, int64_t)
HAL_INT_MINMAX(u32, uint32_t)
HAL_INT_MINMAX(u64, uint64_t)

"""
"""Helpers in the C subset every dialect compiles (C99, OpenCL C with C99 math names mapped, CUDA):
trip counts, floor ``//`` and ``%``, shifts, pow, NaN-propagating min/max. Reused by :mod:`hal.kernel.simt`;
a dialect defines ``hal_f32_bits`` and ``hal_f64_bits`` before this text (the float min/max compare bits)."""

_CPU_ATOMICS = r"""
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
HAL_ATOMICS(u64, uint64_t, uint64_t)
HAL_ATOMICS(f32, float, uint32_t)
HAL_ATOMICS(f64, double, uint64_t)
static inline int32_t hal_atomic_add_i32(int32_t *p, int32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline int64_t hal_atomic_add_i64(int64_t *p, int64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline uint32_t hal_atomic_add_u32(uint32_t *p, uint32_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline uint64_t hal_atomic_add_u64(uint64_t *p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
#define HAL_BIT_ATOMICS(N, T) \
static inline T hal_plain_and_##N(T *p, T v) { T o = *p; *p = o & v; return o; } \
static inline T hal_plain_or_##N(T *p, T v) { T o = *p; *p = o | v; return o; } \
static inline T hal_plain_xor_##N(T *p, T v) { T o = *p; *p = o ^ v; return o; } \
static inline T hal_atomic_and_##N(T *p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); } \
static inline T hal_atomic_or_##N(T *p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); } \
static inline T hal_atomic_xor_##N(T *p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_RELAXED); }
HAL_BIT_ATOMICS(i32, int32_t)
HAL_BIT_ATOMICS(i64, int64_t)
HAL_BIT_ATOMICS(u32, uint32_t)
HAL_BIT_ATOMICS(u64, uint64_t)
static inline float hal_atomic_add_f32(float *p, float v) { return hal_atomic_rmw_f32(p, v, 0); }
static inline double hal_atomic_add_f64(double *p, double v) { return hal_atomic_rmw_f64(p, v, 0); }
"""

_HELPERS = _CPU_FAULTS + C_BITS[1:] + _PORTABLE[1:] + _CPU_ATOMICS[1:] + NARROW[1:] + NARROW_F64[1:]


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
