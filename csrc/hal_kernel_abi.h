/* The ABI between the CPU runtime (hal_runtime.c) and kernels that hal's C
 * emitter generates. Header-only: generated kernels are separate shared
 * objects and link against nothing of the runtime.
 *
 * A launch runs total = grid[0]*grid[1]*grid[2] work-groups. The runtime
 * splits [0, total) across its worker threads and calls the kernel's entry
 * point once per contiguous range of linear group ids (x fastest, then y, z):
 *
 *     void <entry>(const hal_launch *launch, int64_t group_begin, int64_t group_end);
 *
 * Arguments are packed in 8-byte slots, in parameter order:
 *   scalar i32/u32/bool/i64 : one slot, the value (sign/zero-extended to 64 bits)
 *   scalar f32              : one slot, the float's bits in the low 4 bytes
 *   scalar f64              : one slot, the double's bits
 *   pointer                 : two slots, the element address, then the element count
 */
#ifndef HAL_KERNEL_ABI_H
#define HAL_KERNEL_ABI_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define HAL_ABI_VERSION 1
#define HAL_FAULT_MESSAGE 384

typedef struct hal_fault {
    volatile int32_t set;               /* 0 until the first fault; then 1 */
    char message[HAL_FAULT_MESSAGE];     /* what, where (kernel, line), which thread, which index */
} hal_fault;

typedef struct hal_launch {
    int64_t grid[3];        /* work-groups per dimension */
    int64_t block[3];       /* work-items per work-group per dimension */
    const uint64_t *args;   /* packed argument slots */
    hal_fault *fault;       /* first fault wins; the launch stops early once set (the runtime sets it too:
                               Queue.abort(), memory faults), so unbounded loops poll it */
} hal_launch;

typedef void (*hal_kernel_fn)(const hal_launch *launch, int64_t group_begin, int64_t group_end);

/* Record a fault (first one wins). The kernel returns soon after. */
static inline void hal_raise_fault(const hal_launch *launch, const char *message) {
    if (__sync_bool_compare_and_swap(&launch->fault->set, 0, 1))
        snprintf(launch->fault->message, HAL_FAULT_MESSAGE, "%s", message);
}

static inline int hal_faulted(const hal_launch *launch) { return launch->fault->set != 0; }

static inline int64_t hal_arg_i64(const hal_launch *l, int slot) { return (int64_t)l->args[slot]; }
static inline float hal_arg_f32(const hal_launch *l, int slot) {
    float f; memcpy(&f, &l->args[slot], sizeof f); return f;
}
static inline double hal_arg_f64(const hal_launch *l, int slot) {
    double d; memcpy(&d, &l->args[slot], sizeof d); return d;
}
static inline void *hal_arg_ptr(const hal_launch *l, int slot) { return (void *)(uintptr_t)l->args[slot]; }

#endif
