/* The CPU backend's C runtime: aligned allocation, multi-threaded copies and
 * fills, in-order asynchronous queues each served by its own worker thread,
 * and a shared worker pool that runs kernel launches across work-groups.
 *
 * Every function here is called through cffi (API mode), which releases the
 * GIL around the call. Nothing here calls back into Python.
 */
#ifndef HAL_RUNTIME_H
#define HAL_RUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include "hal_kernel_abi.h"

/* ---- memory ----------------------------------------------------------- */
void *hal_alloc(size_t nbytes);                 /* 64-byte aligned; NULL when it cannot */
void hal_free(void *p);
size_t hal_physical_memory(void);               /* bytes of RAM of this machine */
int hal_cpu_count(void);                        /* cores the runtime uses */

/* synchronous, multi-threaded for large sizes */
void hal_copy(void *dst, const void *src, size_t nbytes);
void hal_fill(void *dst, size_t nbytes, const void *pattern, size_t pattern_size); /* pattern_size 1,2,4,8 */

/* ---- queues ----------------------------------------------------------- */
/* Each enqueue returns the command's sequence number (1, 2, 3, ...). Commands
 * run in order, on the queue's own worker thread, which uses the shared pool
 * for large copies, fills and launches. Several queues run at once. All
 * functions are thread-safe. A queue holds 1024 pending commands; an enqueue
 * beyond that waits until the worker has caught up by half. */
typedef struct hal_queue hal_queue;

hal_queue *hal_queue_create(void);
void hal_queue_destroy(hal_queue *q);           /* drains, then joins the worker */

uint64_t hal_queue_copy(hal_queue *q, void *dst, const void *src, size_t nbytes);
uint64_t hal_queue_fill(hal_queue *q, void *dst, size_t nbytes, const void *pattern, size_t pattern_size);
/* args (nslots 8-byte slots) are copied into the command */
uint64_t hal_queue_launch(hal_queue *q, hal_kernel_fn fn, const int64_t grid[3], const int64_t block[3],
                          const uint64_t *args, int nslots);
/* Variants that cost Python the least through cffi: base pointers plus byte offsets
 * (no pointer arithmetic in Python), and the argument slots as raw bytes (nbytes a
 * multiple of 8) so that a packed `bytes` object passes without conversion. */
uint64_t hal_queue_copy_at(hal_queue *q, void *dst, size_t dst_offset, const void *src, size_t src_offset,
                           size_t nbytes);
uint64_t hal_queue_fill_at(hal_queue *q, void *dst, size_t offset, size_t nbytes, const void *pattern,
                           size_t pattern_size);
uint64_t hal_queue_launch_bytes(hal_queue *q, hal_kernel_fn fn, const int64_t grid[3], const int64_t block[3],
                                const void *args, size_t nbytes);
uint64_t hal_queue_marker(hal_queue *q);        /* does nothing; its completion time is kept */
uint64_t hal_queue_wait(hal_queue *q, hal_queue *other, uint64_t seq); /* later commands wait for other's seq */

uint64_t hal_queue_submitted(hal_queue *q);
uint64_t hal_queue_completed(hal_queue *q);
/* block the caller until seq completed; a seq past the last submitted waits for that one
 * (so UINT64_MAX waits for everything enqueued so far) */
void hal_queue_wait_host(hal_queue *q, uint64_t seq);
/* start and end times (CLOCK_MONOTONIC seconds) of a command, if still in the
 * history ring (the last HAL_TIME_HISTORY commands); returns 0 when gone */
int hal_queue_times(hal_queue *q, uint64_t seq, double *start, double *end);
/* first fault since the last call, copied into buf; returns 1 if there was one and clears it */
int hal_queue_take_fault(hal_queue *q, char *buf, size_t buflen);

double hal_now(void);                           /* CLOCK_MONOTONIC seconds */

#endif
