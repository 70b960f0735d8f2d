"""C for the narrow float types: ``hal_f16``/``hal_bf16`` are ``uint16_t`` bit patterns, converted
with integer code only, so every C dialect gets the same bits (no ``_Float16``, no ``cl_khr_fp16``).

Bit-exact with the reference interpreter (numpy's float16 and ``ml_dtypes``' bfloat16): round to
nearest even everywhere; f32 -> f16 and f64 -> f16 round once (numpy), keeping a NaN's sign and
top payload bits (never turning it into an infinity); f32 -> bf16 keeps only a NaN's sign (0x7fc0,
as ml_dtypes). A dialect defines ``hal_f32_bits``/``hal_bits_f32`` (and the f64 pair where it has
doubles) before this text.
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
"""
"""The conversions every dialect gets (``hal_rne`` is also the f64 one's)."""

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
"""
"""f64 -> f16 in one rounding, for dialects with doubles (f64 -> bf16 goes through f32, as in ml_dtypes)."""

C_BITS = r"""
static inline uint32_t hal_f32_bits(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
static inline float hal_bits_f32(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }
static inline uint64_t hal_f64_bits(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
"""
"""Bit casts in C99 (memcpy, which compilers turn into a register move)."""
