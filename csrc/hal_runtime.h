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
/* 64-byte aligned; NULL when it cannot. From 4 MiB on, the block ends right before an
 * inaccessible page (up to 63 bytes before it when nbytes is not a multiple of 64), so
 * a kernel that runs past its end faults instead of corrupting other memory. */
void *hal_alloc(size_t nbytes);
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
 * beyond that waits until the worker has caught up by half.
 *
 * After fork(), a queue created before it belongs to the parent: in the child,
 * an enqueue on it does nothing and returns 0, waits on it return at once, and
 * destroying it only forgets it (its memory leaks; its worker does not exist
 * there). Queues created in the child work as usual.
 *
 * A kernel that faults (a hal_raise_fault, or an invalid memory access, which
 * the runtime catches while it runs a kernel) stops its launch early; the
 * queue keeps the first fault for hal_queue_take_fault and runs later commands. */
typedef struct hal_queue hal_queue;

hal_queue *hal_queue_create(void);
/* Drains the queue, joins its worker and drops the creator's reference: the memory goes
 * once no other queue's pending wait and no waiting thread uses it. */
void hal_queue_destroy(hal_queue *q);

uint64_t hal_queue_copy(hal_queue *q, void *dst, const void *src, size_t nbytes);
uint64_t hal_queue_fill(hal_queue *q, void *dst, size_t nbytes, const void *pattern, size_t pattern_size);
/* args (nslots 8-byte slots) are copied into the command. `where` (NULL: none) names the
 * kernel and its source location in fault messages, as "kernel 'saxpy' (file.py:12)"; it
 * and fn must stay valid until the command completed. */
uint64_t hal_queue_launch(hal_queue *q, hal_kernel_fn fn, const int64_t grid[3], const int64_t block[3],
                          const uint64_t *args, int nslots, const char *where);
/* Variants that cost Python the least through cffi: base pointers plus byte offsets
 * (no pointer arithmetic in Python), and the argument slots as raw bytes (nbytes a
 * multiple of 8) so that a packed `bytes` object passes without conversion. */
uint64_t hal_queue_copy_at(hal_queue *q, void *dst, size_t dst_offset, const void *src, size_t src_offset,
                           size_t nbytes);
uint64_t hal_queue_fill_at(hal_queue *q, void *dst, size_t offset, size_t nbytes, const void *pattern,
                           size_t pattern_size);
uint64_t hal_queue_launch_bytes(hal_queue *q, hal_kernel_fn fn, const int64_t grid[3], const int64_t block[3],
                                const void *args, size_t nbytes, const char *where);
/* A graph replay (hal's `g.launch(q)`): n commands enqueued in order by one call, each exactly
 * as the *_at / launch_bytes call of its kind would. Launch: fn, where, grid, block and `args`
 * (nbytes of slots); copy: dst + dst_offset <- src + src_offset, nbytes; fill: dst + dst_offset,
 * nbytes, the first pattern_size bytes of `pattern`. Returns the last command's sequence number. */
enum { HAL_GRAPH_LAUNCH = 0, HAL_GRAPH_COPY = 1, HAL_GRAPH_FILL = 2 };
typedef struct hal_graph_cmd {
    int kind;
    hal_kernel_fn fn;
    const char *where;
    int64_t grid[3];
    int64_t block[3];
    const void *args;
    void *dst;
    size_t dst_offset;
    const void *src;
    size_t src_offset;
    size_t nbytes;
    uint64_t pattern;
    size_t pattern_size;
} hal_graph_cmd;
uint64_t hal_queue_submit_graph(hal_queue *q, const hal_graph_cmd *cmds, size_t n);
uint64_t hal_queue_marker(hal_queue *q);        /* does nothing; its completion time is kept */
/* Later commands of q wait for other's seq. The command holds a reference to other, so
 * other may be destroyed before it runs. */
uint64_t hal_queue_wait(hal_queue *q, hal_queue *other, uint64_t seq);

uint64_t hal_queue_submitted(hal_queue *q);
uint64_t hal_queue_completed(hal_queue *q);
/* 1 when every command submitted so far completed and no fault waits to be taken (exact,
 * lock-free) */
int hal_queue_idle(hal_queue *q);
/* Block the caller until seq completed; a seq past the last submitted waits for that one
 * (so UINT64_MAX waits for everything enqueued so far). */
void hal_queue_wait_host(hal_queue *q, uint64_t seq);
/* The same for at most `seconds` (>= 1e9, infinity or NaN: no limit); 1 when seq completed,
 * 0 on timeout. Short waits spin for a few microseconds before they sleep. */
int hal_queue_wait_host_for(hal_queue *q, uint64_t seq, double seconds);
/* Stop the launch running on q now, as a fault saying it was aborted (kernels stop at their
 * next range of work-groups or `while` iteration); later commands still run. 1 if a launch
 * was running. */
int hal_queue_abort(hal_queue *q);
/* start and end times (CLOCK_MONOTONIC seconds) of a command, if still in the
 * history ring (the last HAL_TIME_HISTORY commands); returns 0 when gone */
int hal_queue_times(hal_queue *q, uint64_t seq, double *start, double *end);
/* first fault since the last call, copied into buf; returns 1 if there was one and clears it */
int hal_queue_take_fault(hal_queue *q, char *buf, size_t buflen);

double hal_now(void);                           /* CLOCK_MONOTONIC seconds */

#endif
