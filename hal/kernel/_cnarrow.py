"""C for the narrow float types: ``hal_f16``/``hal_bf16`` are ``uint16_t`` bit patterns, converted
with integer code only, so every C dialect gets the same bits (no ``_Float16``, no ``cl_khr_fp16``).

Bit-exact with the reference interpreter (:mod:`._narrow`, hal's own rule): every conversion to f16 or
bf16 rounds the exact source value once, to nearest even (f64 never goes through f32, an integer
never through a float); f16 keeps a NaN's sign and top payload bits (never turning it into an
infinity), bf16 keeps only its sign (0x7fc0). A dialect defines ``hal_f32_bits``/``hal_bits_f32``
(and the f64 pair where it has doubles) before this text.
"""

from __future__ import annotations

NARROW = r"""
typedef uint16_t hal_f16;
typedef uint16_t hal_bf16;

/* v / 2**n rounded to nearest, ties to even (1 <= n <= 63) */
static inline uint64_t hal_rne(uint64_t v, uint32_t n) {
    uint64_t q = v >> n, rest = v & (((uint64_t)1 << n) - 1), mid = (uint64_t)1 << (n - 1);
    return q + (uint64_t)((rest > mid) | ((rest == mid) & (q & 1)));
}
static inline float hal_f16_to_f32(hal_f16 h) {
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = ((uint32_t)h >> 10) & 0x1fu, m = (uint32_t)h & 0x3ffu;
    if (e == 0x1fu) return hal_bits_f32(s | 0x7f800000u | (m << 13));
    if (e == 0) {  /* zero or subnormal: m * 2**-24 is exact in f32 */
        float v = (float)m * 5.9604644775390625e-8f;
        return s ? -v : v;
    }
    return hal_bits_f32(s | ((e + 112u) << 23) | (m << 13));
}
static inline hal_f16 hal_f16_from_f32(float x) {
    uint32_t f = hal_f32_bits(x), s = (f >> 16) & 0x8000u, e = (f >> 23) & 0xffu, m = f & 0x7fffffu;
    if (e == 0xffu) return (hal_f16)(s | 0x7c00u | (m ? ((m >> 13) ? (m >> 13) : 1u) : 0u));
    if (e >= 143u) return (hal_f16)(s | 0x7c00u);                                       /* >= 2**16 */
    if (e >= 113u) return (hal_f16)(s | (((e - 112u) << 10) + (uint32_t)hal_rne(m, 13))); /* a carry may give inf */
    if (e < 102u) return (hal_f16)s;                                                    /* < 2**-25 */
    return (hal_f16)(s | (uint32_t)hal_rne(m | 0x800000u, 126u - e));                  /* subnormal */
}
static inline float hal_bf16_to_f32(hal_bf16 h) { return hal_bits_f32((uint32_t)h << 16); }
static inline hal_bf16 hal_bf16_from_f32(float x) {
    uint32_t f = hal_f32_bits(x);
    if ((f & 0x7fffffffu) > 0x7f800000u) return (hal_bf16)(((f >> 16) & 0x8000u) | 0x7fc0u);
    return (hal_bf16)((f + 0x7fffu + ((f >> 16) & 1u)) >> 16);
}
/* the pattern nearest the integer a (mantissa bits mb, bias b, infinity's pattern inf), integer code only */
static inline uint32_t hal_half_from_u64(uint64_t a, uint32_t mb, uint32_t b, uint32_t inf) {
    uint64_t t = a;
    uint32_t p = 0;  /* the top set bit of a */
    if (t >> 32) { t >>= 32; p += 32u; }
    if (t >> 16) { t >>= 16; p += 16u; }
    if (t >> 8) { t >>= 8; p += 8u; }
    if (t >> 4) { t >>= 4; p += 4u; }
    if (t >> 2) { t >>= 2; p += 2u; }
    if (t >> 1) { p += 1u; }
    if (a == 0) return 0u;
    if (p + b >= (inf >> mb)) return inf;
    /* the significand keeps its implicit bit, which adds the 1 taken off the exponent (a carry may give inf) */
    return ((p + b - 1u) << mb) + (uint32_t)(p <= mb ? a << (mb - p) : hal_rne(a, p - mb));
}
static inline hal_f16 hal_f16_from_u64(uint64_t a) { return (hal_f16)hal_half_from_u64(a, 10u, 15u, 0x7c00u); }
static inline hal_bf16 hal_bf16_from_u64(uint64_t a) { return (hal_bf16)hal_half_from_u64(a, 7u, 127u, 0x7f80u); }
static inline hal_f16 hal_f16_from_i64(int64_t x) {
    uint64_t a = (uint64_t)x;
    return (hal_f16)(((uint32_t)(a >> 48) & 0x8000u) | hal_half_from_u64(x < 0 ? 0 - a : a, 10u, 15u, 0x7c00u));
}
static inline hal_bf16 hal_bf16_from_i64(int64_t x) {
    uint64_t a = (uint64_t)x;
    return (hal_bf16)(((uint32_t)(a >> 48) & 0x8000u) | hal_half_from_u64(x < 0 ? 0 - a : a, 7u, 127u, 0x7f80u));
}
"""
"""The conversions every dialect gets (``hal_rne`` is also the f64 ones')."""

NARROW_F64 = r"""
static inline hal_f16 hal_f16_from_f64(double x) {
    uint64_t d = hal_f64_bits(x), m = d & 0xfffffffffffffull;
    uint32_t s = (uint32_t)(d >> 48) & 0x8000u, e = (uint32_t)(d >> 52) & 0x7ffu, p = (uint32_t)(m >> 42);
    if (e == 0x7ffu) return (hal_f16)(s | 0x7c00u | (m ? (p ? p : 1u) : 0u));
    if (e >= 1039u) return (hal_f16)(s | 0x7c00u);
    if (e >= 1009u) return (hal_f16)(s | (((e - 1008u) << 10) + (uint32_t)hal_rne(m, 42)));
    if (e < 998u) return (hal_f16)s;
    return (hal_f16)(s | (uint32_t)hal_rne(m | 0x10000000000000ull, 1051u - e));
}
static inline hal_bf16 hal_bf16_from_f64(double x) {
    uint64_t d = hal_f64_bits(x), m = d & 0xfffffffffffffull;
    uint32_t s = (uint32_t)(d >> 48) & 0x8000u, e = (uint32_t)(d >> 52) & 0x7ffu;
    if (e == 0x7ffu) return (hal_bf16)(s | (m ? 0x7fc0u : 0x7f80u));
    if (e >= 1151u) return (hal_bf16)(s | 0x7f80u);                                       /* >= 2**128 */
    if (e >= 897u) return (hal_bf16)(s | (((e - 896u) << 7) + (uint32_t)hal_rne(m, 45)));  /* a carry may give inf */
    if (e < 889u) return (hal_bf16)s;                                                     /* < 2**-134 */
    return (hal_bf16)(s | (uint32_t)hal_rne(m | 0x10000000000000ull, 942u - e));          /* subnormal */
}
"""
"""f64 -> f16 and f64 -> bf16, each in one rounding, for dialects with doubles."""

C_BITS = r"""
static inline uint32_t hal_f32_bits(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
static inline float hal_bits_f32(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }
static inline uint64_t hal_f64_bits(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
"""
"""Bit casts in C99 (memcpy, which compilers turn into a register move)."""
