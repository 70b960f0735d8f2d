/* host_cuda.h: just enough of CUDA C++ for g++ to compile, as host code, the text that
 * hal.kernel.simt emits for the CUDA dialect (tests/cuda/hostcuda.py includes it first).
 *
 * A launch runs its blocks one at a time, each with blockDim host threads running concurrently:
 * __shared__ arrays are static (every thread of the running block sees the same array),
 * __syncthreads() is a barrier over the block's threads, a warp is 32 consecutive linear thread
 * ids exchanging values through per-warp slots. Only the overloads CUDA declares are declared,
 * so code that relies on one CUDA lacks fails to compile here too. Semantics follow the PTX ISA
 * where it differs from the obvious host code (atom.add.f32 on global memory flushes subnormals).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The generated prelude typedefs the fixed-width names as CUDA does (int64_t is long long, not
 * glibc's long): rename them so its typedefs are new names and CUDA's overloads are picked. */
#define int8_t hal_int8_t
#define uint8_t hal_uint8_t
#define int16_t hal_int16_t
#define uint16_t hal_uint16_t
#define int32_t hal_int32_t
#define uint32_t hal_uint32_t
#define int64_t hal_int64_t
#define uint64_t hal_uint64_t
#undef INFINITY
#undef NAN

#define __global__
#define __device__
#define __forceinline__ inline
/* Shared arrays live in their own section: the linker's __start_/__stop_ symbols tell a shared
 * address from a global one, as a GPU's generic addressing does (atomicAdd on floats needs it). */
#define __shared__ static __attribute__((section("hal_shared"), aligned(16)))
extern "C" char __start_hal_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_hal_shared[] __attribute__((weak, visibility("hidden")));

struct hal_uint3 { unsigned int x, y, z; };
struct hal_dim3 { unsigned int x, y, z; };
static thread_local hal_uint3 threadIdx, blockIdx;
static hal_dim3 blockDim, gridDim;
static thread_local unsigned int hal_tid; /* linear thread id in the block */

/* ------------------------------------------------------------------ barriers
 * A thread that returns from the kernel leaves its block's barriers (counted as arrived, as on
 * Volta and newer), so a launch never deadlocks on threads that are gone. */
struct hal_barrier {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned int count, full, waiting, gen;
    void init(unsigned int n) {
        pthread_mutex_init(&m, 0); pthread_cond_init(&c, 0);
        count = full = n; waiting = 0; gen = 0;
    }
    void destroy() { pthread_mutex_destroy(&m); pthread_cond_destroy(&c); }
    void release() { waiting = 0; gen++; pthread_cond_broadcast(&c); }
    void wait() {
        pthread_mutex_lock(&m);
        unsigned int g = gen;
        if (++waiting >= count) release();
        else while (g == gen) pthread_cond_wait(&c, &m);
        pthread_mutex_unlock(&m);
    }
    void leave() { /* the last one to leave re-arms the barrier for the next block */
        pthread_mutex_lock(&m);
        if (--count == 0) count = full;
        else if (waiting && waiting >= count) release();
        pthread_mutex_unlock(&m);
    }
};

struct hal_warp {
    hal_barrier bar;
    unsigned int lanes;
    unsigned long long slot[32];
};

static hal_barrier hal_block_bar;
static hal_warp *hal_warps;
static const char *volatile hal_error;
static void hal_fail(const char *what) { hal_error = what; }

static inline void __syncthreads() { hal_block_bar.wait(); }
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

/* ------------------------------------------------------------------ bit casts */
template <class To, class From> static inline To hal_bitcast(From v) {
    static_assert(sizeof(To) == sizeof(From), "bit cast of different sizes");
    To r; memcpy(&r, &v, sizeof r); return r;
}
static inline float __int_as_float(int v) { return hal_bitcast<float>(v); }
static inline int __float_as_int(float v) { return hal_bitcast<int>(v); }
static inline float __uint_as_float(unsigned int v) { return hal_bitcast<float>(v); }
static inline unsigned int __float_as_uint(float v) { return hal_bitcast<unsigned int>(v); }
static inline long long __double_as_longlong(double v) { return hal_bitcast<long long>(v); }
static inline double __longlong_as_double(long long v) { return hal_bitcast<double>(v); }

/* CUDA's integer min/max overloads (the generated code calls min on int32). */
static inline int min(int a, int b) { return a < b ? a : b; }
static inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }

/* ------------------------------------------------------------------ atomics (relaxed, as CUDA's) */
#define HAL_RELAXED __ATOMIC_RELAXED
#define HAL_FETCH(NAME, T, BUILTIN) \
    static inline T NAME(T *p, T v) { return BUILTIN(p, v, HAL_RELAXED); }
HAL_FETCH(atomicAdd, int, __atomic_fetch_add)
HAL_FETCH(atomicAdd, unsigned int, __atomic_fetch_add)
HAL_FETCH(atomicAdd, unsigned long long, __atomic_fetch_add)
HAL_FETCH(atomicExch, int, __atomic_exchange_n)
HAL_FETCH(atomicExch, unsigned int, __atomic_exchange_n)
HAL_FETCH(atomicExch, unsigned long long, __atomic_exchange_n)
#define HAL_FETCH_BITS(T) HAL_FETCH(atomicAnd, T, __atomic_fetch_and) HAL_FETCH(atomicOr, T, __atomic_fetch_or) \
    HAL_FETCH(atomicXor, T, __atomic_fetch_xor)
HAL_FETCH_BITS(int)
HAL_FETCH_BITS(unsigned int)
HAL_FETCH_BITS(unsigned long long)

template <class T> static inline T hal_atomic_minmax(T *p, T v, bool is_min) {
    T old = __atomic_load_n(p, HAL_RELAXED);
    while ((is_min ? v < old : v > old) &&
           !__atomic_compare_exchange_n(p, &old, v, false, HAL_RELAXED, HAL_RELAXED)) {}
    return old;
}
#define HAL_MINMAX(T) \
    static inline T atomicMin(T *p, T v) { return hal_atomic_minmax<T>(p, v, true); } \
    static inline T atomicMax(T *p, T v) { return hal_atomic_minmax<T>(p, v, false); }
HAL_MINMAX(int)
HAL_MINMAX(unsigned int)
HAL_MINMAX(long long)
HAL_MINMAX(unsigned long long)

#define HAL_CAS(T) \
    static inline T atomicCAS(T *p, T compare, T v) { \
        __atomic_compare_exchange_n(p, &compare, v, false, HAL_RELAXED, HAL_RELAXED); \
        return compare; \
    }
HAL_CAS(int)
HAL_CAS(unsigned int)
HAL_CAS(unsigned long long)
HAL_CAS(unsigned short)

static inline bool hal_is_shared(const void *p) {
    return (const char *)p >= __start_hal_shared && (const char *)p < __stop_hal_shared;
}
/* sign-preserving flush of a subnormal float to zero */
static inline float hal_ftz(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }

/* atom.add.f32 (PTX ISA): round to nearest even; on global memory it flushes subnormal inputs
 * and results to sign-preserving zero, on shared memory it does not. */
static inline float atomicAdd(float *p, float v) {
    const bool ftz = !hal_is_shared(p);
    unsigned int *q = (unsigned int *)p, old = __atomic_load_n(q, HAL_RELAXED);
    for (;;) {
        float o = __uint_as_float(old), n = ftz ? hal_ftz(hal_ftz(o) + hal_ftz(v)) : o + v;
        if (__atomic_compare_exchange_n(q, &old, __float_as_uint(n), false, HAL_RELAXED, HAL_RELAXED)) return o;
    }
}
/* atom.add.f64 keeps subnormals */
static inline double atomicAdd(double *p, double v) {
    unsigned long long *q = (unsigned long long *)p, old = __atomic_load_n(q, HAL_RELAXED);
    for (;;) {
        double o = __longlong_as_double((long long)old);
        if (__atomic_compare_exchange_n(q, &old, (unsigned long long)__double_as_longlong(o + v), false,
                                        HAL_RELAXED, HAL_RELAXED)) return o;
    }
}
static inline float atomicExch(float *p, float v) {
    return __uint_as_float(__atomic_exchange_n((unsigned int *)p, __float_as_uint(v), HAL_RELAXED));
}

/* ------------------------------------------------------------------ warp shuffles
 * __shfl_sync(mask, v, lane): every lane named in mask (the lanes present in this warp) stores
 * its value in the warp's slot, waits for the others, reads the source lane's slot, and waits
 * again before the slots may be reused. */
template <class T> static inline T hal_shfl(unsigned int mask, T v, int lane) {
    hal_warp &w = hal_warps[hal_tid / 32];
    const unsigned int expected = w.lanes == 32 ? 0xffffffffu : (1u << w.lanes) - 1u;
    if (mask != expected) hal_fail("__shfl_sync: the mask does not name exactly the warp's lanes");
    const unsigned int src = (unsigned int)lane & 31u; /* CUDA: srcLane modulo the width (32) */
    if (src >= w.lanes) hal_fail("__shfl_sync: the source lane is not in the warp");
    memcpy(&w.slot[hal_tid % 32], &v, sizeof v);
    w.bar.wait();
    T r;
    memcpy(&r, &w.slot[src < w.lanes ? src : hal_tid % 32], sizeof r);
    w.bar.wait();
    return r;
}
#define HAL_SHFL(T) static inline T __shfl_sync(unsigned int mask, T v, int lane) { return hal_shfl<T>(mask, v, lane); }
HAL_SHFL(int)
HAL_SHFL(unsigned int)
HAL_SHFL(long)
HAL_SHFL(unsigned long)
HAL_SHFL(long long)
HAL_SHFL(unsigned long long)
HAL_SHFL(float)
HAL_SHFL(double)

/* __ballot_sync / __any_sync / __all_sync: the same mask rule, the predicate gathered with shuffles */
static inline unsigned int __ballot_sync(unsigned int mask, int p) {
    const hal_warp &w = hal_warps[hal_tid / 32];
    unsigned int bits = 0;
    for (int j = 0; j < w.lanes; j++) bits |= hal_shfl<int>(mask, p != 0, j) ? 1u << j : 0u;
    return bits;
}
static inline int __any_sync(unsigned int mask, int p) { return __ballot_sync(mask, p) != 0; }
static inline int __all_sync(unsigned int mask, int p) { return __ballot_sync(mask, p) == mask; }

/* ------------------------------------------------------------------ the launch
 * hal_host_launch is cuLaunchKernel for this one kernel: ``params`` is the void *[] of slot
 * addresses of hal_cuda's argument block, and hal_host_call (generated after the kernel) reads
 * each parameter from its slot. The blocks run in linear order (x fastest), one at a time. */
extern "C" void hal_host_call(void **params);

namespace hal_host {
struct launch { hal_dim3 grid; void **params; pthread_barrier_t between; };
static launch *current;
static pthread_mutex_t one_at_a_time = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    launch &l = *current;
    const unsigned int t = (unsigned int)(uintptr_t)arg, bx = blockDim.x, by = blockDim.y;
    hal_tid = t;
    threadIdx = {t % bx, (t / bx) % by, t / (bx * by)};
    for (unsigned int z = 0; z < l.grid.z; z++)
        for (unsigned int y = 0; y < l.grid.y; y++)
            for (unsigned int x = 0; x < l.grid.x; x++) {
                blockIdx = {x, y, z};
                hal_host_call(l.params);
                hal_warps[t / 32].bar.leave();
                hal_block_bar.leave();
                pthread_barrier_wait(&l.between); /* the block is over for every thread */
            }
    return 0;
}
}  // namespace hal_host

extern "C" const char *hal_host_error(void) { return hal_error; }

extern "C" int hal_host_launch(unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                               unsigned int bz, void **params) {
    using namespace hal_host;
    pthread_mutex_lock(&one_at_a_time);
    const unsigned int n = bx * by * bz, nwarps = (n + 31) / 32;
    launch l = {{gx, gy, gz}, params, {}};
    current = &l;
    blockDim = {bx, by, bz};
    gridDim = {gx, gy, gz};
    hal_error = 0;
    pthread_barrier_init(&l.between, 0, n);
    hal_block_bar.init(n);
    hal_warps = new hal_warp[nwarps];
    for (unsigned int w = 0; w < nwarps; w++) {
        hal_warps[w].lanes = n - 32 * w < 32 ? n - 32 * w : 32;
        hal_warps[w].bar.init(hal_warps[w].lanes);
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t *threads = new pthread_t[n];
    unsigned int started = 0;
    for (; started < n; started++)
        if (pthread_create(&threads[started], &attr, worker, (void *)(uintptr_t)started) != 0) break;
    int rc = 0;
    if (started < n) { /* cannot happen in the tests' sizes; the started threads would wait forever */
        fprintf(stderr, "host_cuda: could not start %u threads\n", n);
        abort();
    }
    for (unsigned int t = 0; t < n; t++) pthread_join(threads[t], 0);
    if (hal_error) rc = 1;
    delete[] threads;
    pthread_attr_destroy(&attr);
    for (unsigned int w = 0; w < nwarps; w++) hal_warps[w].bar.destroy();
    delete[] hal_warps;
    hal_warps = 0;
    hal_block_bar.destroy();
    pthread_barrier_destroy(&l.between);
    current = 0;
    pthread_mutex_unlock(&one_at_a_time);
    return rc;
}
