/* The CPU backend's C runtime (see hal_runtime.h for the contract).
 *
 * Threads: every queue has one worker thread that runs its commands in order.
 * Large copies, fills and launches are shared out over one process-wide pool
 * (hal_cpu_count() - 1 workers plus the thread that submits the job). The
 * pool serves one job at a time; a thread that finds it busy runs its job
 * alone instead of waiting, so queues never block each other. Idle threads
 * spin for a few microseconds, then sleep on a condition variable.
 */
#define _GNU_SOURCE
#include "hal_runtime.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if defined(__AVX__)
#include <immintrin.h>
typedef __m256i hal_vec;
#define VEC_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define VEC_STREAM(p, v) _mm256_stream_si256((__m256i *)(p), (v))
#define HAVE_STREAM 1
#elif defined(__SSE2__)
#include <emmintrin.h>
typedef __m128i hal_vec;
#define VEC_LOAD(p) _mm_loadu_si128((const __m128i *)(p))
#define VEC_STREAM(p, v) _mm_stream_si128((__m128i *)(p), (v))
#define HAVE_STREAM 1
#else
#define HAVE_STREAM 0
#endif

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define HAL_TIME_HISTORY 65536          /* commands whose times a queue keeps (power of two) */
#define HAL_QUEUE_RING 1024             /* commands a queue holds before an enqueue waits (power of two) */
#define HAL_INLINE_SLOTS 24             /* argument slots stored inside a launch command */
#define HAL_THREAD_STACK (8u << 20)     /* generated kernels keep work-group memory on the stack */
#define PAR_MIN_BYTES (256u << 10)      /* smaller copies and fills stay on the calling thread */
#define NT_MIN_BYTES (4u << 20)         /* from here on, streaming stores beat the cache */
#define PAR_MIN_ITEMS 8192              /* smaller launches run inline on the queue's thread */
#define SPIN_SECONDS 20e-6              /* how long an idle thread spins before it sleeps */
#define HUGE_ALIGN ((size_t)2 << 20)    /* transparent huge page size */
#define ALLOC_HEADER 64                 /* keeps the user pointer 64-byte aligned */

double hal_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Spin until cond holds or SPIN_SECONDS pass; checks the clock every 64 pauses. */
#define SPIN_UNTIL(cond)                                                        \
    do {                                                                        \
        double spin_end_ = hal_now() + SPIN_SECONDS;                            \
        for (unsigned spin_i_ = 1; !(cond); spin_i_++) {                        \
            CPU_RELAX();                                                        \
            if ((spin_i_ & 63) == 0 && hal_now() > spin_end_) break;            \
        }                                                                       \
    } while (0)

/* ---- memory ----------------------------------------------------------- */

/* Every block starts with a header (the 64 bytes before the user pointer)
 * saying how to give it back: posix_memalign blocks go to free(), large ones
 * were mmap'ed 2 MiB-aligned (so THP can back them) and go to munmap(). */
typedef struct alloc_header {
    size_t mapped;  /* bytes mapped; 0 for posix_memalign blocks */
} alloc_header;

void *hal_alloc(size_t nbytes) {
    size_t total = nbytes + ALLOC_HEADER;
    if (total < nbytes) return NULL;
    char *base;
    size_t mapped = 0;
    if (nbytes >= 2 * HUGE_ALIGN) {
        size_t len = (total + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
        char *raw = mmap(NULL, len + HUGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) return NULL;
        base = (char *)(((uintptr_t)raw + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
        if (base > raw) munmap(raw, (size_t)(base - raw));
        size_t tail = (size_t)(raw + len + HUGE_ALIGN - (base + len));
        if (tail) munmap(base + len, tail);
#ifdef MADV_HUGEPAGE
        madvise(base, len, MADV_HUGEPAGE);
#endif
        mapped = len;
    } else {
        void *p;
        if (posix_memalign(&p, 64, total) != 0) return NULL;
        base = p;
    }
    ((alloc_header *)base)->mapped = mapped;
    return base + ALLOC_HEADER;
}

void hal_free(void *p) {
    if (!p) return;
    alloc_header *h = (alloc_header *)((char *)p - ALLOC_HEADER);
    if (h->mapped) munmap(h, h->mapped);
    else free(h);
}

size_t hal_physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (size_t)pages * (size_t)size : 0;
}

static int detect_cpu_count(void) {
    const char *env = getenv("HAL_CPU_THREADS");
    if (env && atoi(env) > 0) return atoi(env);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = online > 0 ? (int)online : 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 && CPU_COUNT(&set) < n)
        n = CPU_COUNT(&set);  /* a container or taskset may grant fewer cores than are online */
    return n;
}

int hal_cpu_count(void) {
    static _Atomic int count;
    if (!atomic_load_explicit(&count, memory_order_relaxed)) atomic_store(&count, detect_cpu_count());
    return atomic_load_explicit(&count, memory_order_relaxed);
}

/* ---- the worker pool -------------------------------------------------- */

typedef struct job job;
typedef void (*job_body)(const job *j, int64_t begin, int64_t end);

/* [0, total) handed out in ranges of grain through an atomic counter. */
struct job {
    job_body body;
    int64_t total, grain;
    _Atomic int64_t next;
    char *dst;
    const char *src;
    unsigned char pattern[64];  /* fills: the pattern repeated to 64 bytes */
    size_t pattern_size;
    int stream;                 /* use non-temporal stores */
    hal_kernel_fn fn;
    const hal_launch *launch;
};

static struct {
    pthread_once_t once;
    int nthreads;               /* workers + the submitting thread */
    _Atomic int busy;           /* a submitter owns the pool */
    _Atomic uint64_t state;     /* generation << 1 | open */
    _Atomic int active;         /* workers inside the current job */
    _Atomic int sleepers;
    _Atomic int owner_waiting;
    job *job;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
} pool = {.once = PTHREAD_ONCE_INIT, .mu = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void job_run(job *j) {
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&j->next, j->grain, memory_order_relaxed);
        if (b >= j->total) return;
        j->body(j, b, b + j->grain < j->total ? b + j->grain : j->total);
    }
}

static int job_ready(uint64_t s, uint64_t seen) { return (s & 1) && (s >> 1) != seen; }

static void *pool_worker(void *unused) {
    (void)unused;
    uint64_t seen = 0;  /* generation of the last job this worker took part in */
    for (;;) {
        uint64_t s;
        SPIN_UNTIL(job_ready(s = atomic_load(&pool.state), seen));
        if (!job_ready(s, seen)) {
            pthread_mutex_lock(&pool.mu);
            atomic_fetch_add(&pool.sleepers, 1);
            while (!job_ready(s = atomic_load(&pool.state), seen)) pthread_cond_wait(&pool.wake, &pool.mu);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.mu);
        }
        /* Join only if the job is still the one seen open: the owner closes it and then
         * waits for active == 0, so a job is never touched after its owner returned. */
        atomic_fetch_add(&pool.active, 1);
        if (atomic_load(&pool.state) == s) {
            job_run(pool.job);
            seen = s >> 1;
        }
        if (atomic_fetch_sub(&pool.active, 1) == 1 && atomic_load(&pool.owner_waiting)) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_broadcast(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
    }
    return NULL;
}

static void pool_start(void) {
    pool.nthreads = hal_cpu_count();
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, HAL_THREAD_STACK);
    int started = 1;
    for (int i = 1; i < pool.nthreads; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, pool_worker, NULL) != 0) break;
        pthread_detach(t);
        started++;
    }
    pthread_attr_destroy(&attr);
    pool.nthreads = started;
}

/* Run j on the pool, or alone on this thread if the pool is busy with another job. */
static void pool_run(job *j) {
    pthread_once(&pool.once, pool_start);
    int expected = 0;
    if (pool.nthreads < 2 || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        job_run(j);
        return;
    }
    pool.job = j;
    uint64_t gen = (atomic_load(&pool.state) >> 1) + 1;
    atomic_store(&pool.state, gen << 1 | 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mu);
    }
    job_run(j);
    atomic_store(&pool.state, gen << 1);  /* closed: late workers back off */
    SPIN_UNTIL(atomic_load(&pool.active) == 0);
    if (atomic_load(&pool.active) != 0) {
        pthread_mutex_lock(&pool.mu);
        atomic_store(&pool.owner_waiting, 1);
        while (atomic_load(&pool.active) != 0) pthread_cond_wait(&pool.done, &pool.mu);
        atomic_store(&pool.owner_waiting, 0);
        pthread_mutex_unlock(&pool.mu);
    }
    atomic_store(&pool.busy, 0);
}

/* Ranges for copies and fills: several per thread (a descheduled thread then holds up
 * little), whole pages, 64 KiB to 1 MiB. */
static int64_t byte_grain(size_t nbytes) {
    size_t g = nbytes / ((size_t)hal_cpu_count() * 8);
    if (g < (64u << 10)) g = 64u << 10;
    if (g > (1u << 20)) g = 1u << 20;
    return (int64_t)((g + 4095) & ~(size_t)4095);
}

/* ---- copies ----------------------------------------------------------- */

static void copy_stream(char *d, const char *s, size_t n) {
#if HAVE_STREAM
    size_t head = (size_t)(-(uintptr_t)d & 63);
    if (head > n) head = n;
    memcpy(d, s, head);
    d += head, s += head, n -= head;
    for (; n >= 64; n -= 64, d += 64, s += 64)
        for (size_t k = 0; k < 64; k += sizeof(hal_vec)) VEC_STREAM(d + k, VEC_LOAD(s + k));
    _mm_sfence();
#endif
    memcpy(d, s, n);
}

static void copy_body(const job *j, int64_t b, int64_t e) {
    if (j->stream) copy_stream(j->dst + b, j->src + b, (size_t)(e - b));
    else memcpy(j->dst + b, j->src + b, (size_t)(e - b));
}

void hal_copy(void *dst, const void *src, size_t nbytes) {
    const char *d = dst, *s = src;
    int overlap = d < s + nbytes && s < d + nbytes;
    if (nbytes < PAR_MIN_BYTES || overlap) {
        memmove(dst, src, nbytes);
        return;
    }
    job j = {.body = copy_body, .total = (int64_t)nbytes, .grain = byte_grain(nbytes),
             .dst = dst, .src = src, .stream = HAVE_STREAM && nbytes >= NT_MIN_BYTES};
    pool_run(&j);
}

/* ---- fills ------------------------------------------------------------ */

/* Fill [d, d + n) where d sits at byte offset `phase` of the pattern (64 % pattern size == 0). */
static void fill_range(char *d, size_t n, const unsigned char pat[64], size_t phase, int stream) {
    unsigned char rot[64] __attribute__((aligned(64)));
    size_t head = (size_t)(-(uintptr_t)d & 63);
    if (head > n) head = n;
    for (size_t i = 0; i < head; i++) d[i] = (char)pat[(phase + i) & 63];
    d += head, n -= head, phase += head;
    for (size_t i = 0; i < 64; i++) rot[i] = pat[(phase + i) & 63];
#if HAVE_STREAM
    if (stream) {
        for (; n >= 64; n -= 64, d += 64)
            for (size_t k = 0; k < 64; k += sizeof(hal_vec)) VEC_STREAM(d + k, VEC_LOAD(rot + k));
        _mm_sfence();
    }
#endif
    for (; n >= 64; n -= 64, d += 64) memcpy(d, rot, 64);
    memcpy(d, rot, n);
}

static void fill_body(const job *j, int64_t b, int64_t e) {
    if (j->pattern_size == 1 && !j->stream) memset(j->dst + b, j->pattern[0], (size_t)(e - b));
    else fill_range(j->dst + b, (size_t)(e - b), j->pattern, (size_t)b & 63, j->stream);
}

/* pattern sizes other than 1, 2, 4 and 8 are ignored (the core validates them) */
void hal_fill(void *dst, size_t nbytes, const void *pattern, size_t pattern_size) {
    if (pattern_size == 0 || pattern_size > 8 || (pattern_size & (pattern_size - 1))) return;
    job j = {.body = fill_body, .total = (int64_t)nbytes, .grain = byte_grain(nbytes),
             .dst = dst, .pattern_size = pattern_size, .stream = HAVE_STREAM && nbytes >= NT_MIN_BYTES};
    for (size_t i = 0; i < 64; i += pattern_size) memcpy(j.pattern + i, pattern, pattern_size);
    if (nbytes < PAR_MIN_BYTES) fill_body(&j, 0, j.total);
    else pool_run(&j);
}

/* ---- launches --------------------------------------------------------- */

static void launch_body(const job *j, int64_t b, int64_t e) {
    if (__atomic_load_n(&j->launch->fault->set, __ATOMIC_RELAXED)) return;  /* stop early once it faulted */
    j->fn(j->launch, b, e);
}

static void run_launch(hal_kernel_fn fn, const hal_launch *l) {
    int64_t groups = l->grid[0] * l->grid[1] * l->grid[2];
    int64_t items = groups * l->block[0] * l->block[1] * l->block[2];
    if (groups <= 0) return;
    if (groups == 1 || items < PAR_MIN_ITEMS) {
        fn(l, 0, groups);
        return;
    }
    int64_t grain = groups / ((int64_t)hal_cpu_count() * 16);
    job j = {.body = launch_body, .total = groups, .grain = grain > 0 ? grain : 1,
             .fn = fn, .launch = l};
    pool_run(&j);
}

/* ---- queues ----------------------------------------------------------- */

/* A fixed ring of commands. Producers (any thread) serialise on submit_mu, write
 * the slot, then publish it by advancing `tail`; the worker runs slots in place
 * and publishes each by advancing `completed`, which also frees the slot. A
 * producer that finds the ring full waits until half of it has run (waking per
 * command would ping-pong). The worker never takes submit_mu, so an enqueue does
 * not contend with it. */

enum { CMD_COPY, CMD_FILL, CMD_LAUNCH, CMD_MARKER, CMD_WAIT };

typedef struct cmd {
    int32_t kind;
    int32_t nslots;
    union {
        struct { void *dst; const void *src; size_t nbytes; } copy;
        struct { void *dst; size_t nbytes; uint64_t pattern; size_t pattern_size; } fill;
        struct { hal_queue *other; uint64_t seq; } wait;
        struct {
            hal_kernel_fn fn;
            int64_t grid[3], block[3];
            uint64_t *heap_args;  /* when nslots > HAL_INLINE_SLOTS; NULL there if out of memory */
            uint64_t args[HAL_INLINE_SLOTS];
        } launch;
    } u;
} cmd;

typedef struct time_slot { uint64_t seq; double start, end; } time_slot;

struct hal_queue {
    /* written by producers */
    _Alignas(64) pthread_mutex_t submit_mu;
    _Atomic uint64_t tail;          /* seq of the last submitted command */
    /* written by the worker */
    _Alignas(64) _Atomic uint64_t completed;   /* seq of the last finished command */
    /* sleeping and waking (worker sleep, host waits, faults) */
    _Alignas(64) pthread_mutex_t mu;
    pthread_cond_t work;            /* the worker sleeps here when the ring is empty */
    pthread_cond_t done;            /* host waiters sleep here */
    _Atomic int worker_sleeping, host_waiters, shutdown;
    int fault_set;
    char fault[HAL_FAULT_MESSAGE];
    pthread_mutex_t times_mu;       /* readers of old times against the worker's overwrites */
    time_slot *times;
    cmd *ring;
    pthread_t thread;
};

static void queue_fault(hal_queue *q, const char *message) {
    pthread_mutex_lock(&q->mu);
    if (!q->fault_set) {
        strncpy(q->fault, message, HAL_FAULT_MESSAGE - 1);
        q->fault[HAL_FAULT_MESSAGE - 1] = 0;
        q->fault_set = 1;
    }
    pthread_mutex_unlock(&q->mu);
}

static void queue_execute(hal_queue *q, const cmd *c) {
    switch (c->kind) {
    case CMD_COPY:
        hal_copy(c->u.copy.dst, c->u.copy.src, c->u.copy.nbytes);
        break;
    case CMD_FILL:
        hal_fill(c->u.fill.dst, c->u.fill.nbytes, &c->u.fill.pattern, c->u.fill.pattern_size);
        break;
    case CMD_WAIT:
        hal_queue_wait_host(c->u.wait.other, c->u.wait.seq);
        break;
    case CMD_LAUNCH: {
        hal_fault fault;
        fault.set = 0;
        hal_launch l = {.args = c->nslots <= HAL_INLINE_SLOTS ? c->u.launch.args : c->u.launch.heap_args,
                        .fault = &fault};
        memcpy(l.grid, c->u.launch.grid, sizeof l.grid);
        memcpy(l.block, c->u.launch.block, sizeof l.block);
        if (l.args) run_launch(c->u.launch.fn, &l);
        else hal_raise_fault(&l, "hal runtime: out of memory copying the launch's arguments");
        free(c->u.launch.heap_args);
        if (fault.set) queue_fault(q, fault.message);
        break;
    }
    default:  /* CMD_MARKER */
        break;
    }
}

/* Sleep until a command is submitted or the queue shuts down. */
static void queue_idle(hal_queue *q, uint64_t done) {
    SPIN_UNTIL(atomic_load_explicit(&q->tail, memory_order_relaxed) != done ||
               atomic_load_explicit(&q->shutdown, memory_order_relaxed));
    pthread_mutex_lock(&q->mu);
    atomic_store(&q->worker_sleeping, 1);
    while (atomic_load(&q->tail) == done && !atomic_load(&q->shutdown)) pthread_cond_wait(&q->work, &q->mu);
    atomic_store(&q->worker_sleeping, 0);
    pthread_mutex_unlock(&q->mu);
}

static void *queue_worker(void *arg) {
    hal_queue *q = arg;
    for (;;) {
        uint64_t done = atomic_load_explicit(&q->completed, memory_order_relaxed);
        if (atomic_load(&q->tail) == done) {
            if (atomic_load(&q->shutdown)) return NULL;  /* drained: destroy comes after the last enqueue */
            queue_idle(q, done);
            continue;
        }
        uint64_t seq = done + 1;
        double start = hal_now();
        queue_execute(q, &q->ring[done & (HAL_QUEUE_RING - 1)]);
        double end = hal_now();
        pthread_mutex_lock(&q->times_mu);
        q->times[seq & (HAL_TIME_HISTORY - 1)] = (time_slot){seq, start, end};
        pthread_mutex_unlock(&q->times_mu);
        atomic_store(&q->completed, seq);  /* frees the slot */
        if (atomic_load(&q->host_waiters)) {
            pthread_mutex_lock(&q->mu);
            pthread_cond_broadcast(&q->done);
            pthread_mutex_unlock(&q->mu);
        }
    }
}

hal_queue *hal_queue_create(void) {
    hal_queue *q = aligned_alloc(64, sizeof *q);
    if (!q) return NULL;
    memset(q, 0, sizeof *q);
    q->ring = malloc(HAL_QUEUE_RING * sizeof *q->ring);
    q->times = calloc(HAL_TIME_HISTORY, sizeof *q->times);
    pthread_mutex_init(&q->submit_mu, NULL);
    pthread_mutex_init(&q->mu, NULL);
    pthread_mutex_init(&q->times_mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->done, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, HAL_THREAD_STACK);
    int failed = !q->ring || !q->times || pthread_create(&q->thread, &attr, queue_worker, q) != 0;
    pthread_attr_destroy(&attr);
    if (failed) {
        free(q->ring);
        free(q->times);
        free(q);
        return NULL;
    }
    return q;
}

void hal_queue_destroy(hal_queue *q) {
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    atomic_store(&q->shutdown, 1);
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_mutex_destroy(&q->submit_mu);
    pthread_mutex_destroy(&q->mu);
    pthread_mutex_destroy(&q->times_mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->done);
    free(q->ring);
    free(q->times);
    free(q);
}

/* Take submit_mu and return the next free slot, waiting while the ring is full. */
static cmd *ring_acquire(hal_queue *q) {
    pthread_mutex_lock(&q->submit_mu);
    uint64_t next = atomic_load_explicit(&q->tail, memory_order_relaxed) + 1;
    if (next - atomic_load(&q->completed) > HAL_QUEUE_RING) hal_queue_wait_host(q, next - HAL_QUEUE_RING / 2);
    return &q->ring[(next - 1) & (HAL_QUEUE_RING - 1)];
}

/* Publish the slot from ring_acquire, wake the worker if it sleeps, release submit_mu. */
static uint64_t ring_push(hal_queue *q) {
    uint64_t seq = atomic_load_explicit(&q->tail, memory_order_relaxed) + 1;
    atomic_store(&q->tail, seq);
    if (atomic_load(&q->worker_sleeping)) {
        pthread_mutex_lock(&q->mu);
        pthread_cond_signal(&q->work);
        pthread_mutex_unlock(&q->mu);
    }
    pthread_mutex_unlock(&q->submit_mu);
    return seq;
}

uint64_t hal_queue_copy(hal_queue *q, void *dst, const void *src, size_t nbytes) {
    cmd *c = ring_acquire(q);
    c->kind = CMD_COPY;
    c->u.copy.dst = dst;
    c->u.copy.src = src;
    c->u.copy.nbytes = nbytes;
    return ring_push(q);
}

uint64_t hal_queue_copy_at(hal_queue *q, void *dst, size_t dst_offset, const void *src, size_t src_offset,
                           size_t nbytes) {
    return hal_queue_copy(q, (char *)dst + dst_offset, (const char *)src + src_offset, nbytes);
}

uint64_t hal_queue_fill(hal_queue *q, void *dst, size_t nbytes, const void *pattern, size_t pattern_size) {
    cmd *c = ring_acquire(q);
    c->kind = CMD_FILL;
    c->u.fill.dst = dst;
    c->u.fill.nbytes = nbytes;
    c->u.fill.pattern = 0;
    memcpy(&c->u.fill.pattern, pattern, pattern_size <= 8 ? pattern_size : 8);
    c->u.fill.pattern_size = pattern_size;
    return ring_push(q);
}

uint64_t hal_queue_fill_at(hal_queue *q, void *dst, size_t offset, size_t nbytes, const void *pattern,
                           size_t pattern_size) {
    return hal_queue_fill(q, (char *)dst + offset, nbytes, pattern, pattern_size);
}

uint64_t hal_queue_launch_bytes(hal_queue *q, hal_kernel_fn fn, const int64_t grid[3], const int64_t block[3],
                                const void *args, size_t nbytes) {
    int nslots = (int)(nbytes / 8);
    uint64_t *heap = NULL;
    if (nslots > HAL_INLINE_SLOTS && (heap = malloc(nbytes))) memcpy(heap, args, nbytes);  /* outside the lock */
    cmd *c = ring_acquire(q);
    c->kind = CMD_LAUNCH;
    c->nslots = nslots;
    c->u.launch.fn = fn;
    memcpy(c->u.launch.grid, grid, sizeof c->u.launch.grid);
    memcpy(c->u.launch.block, block, sizeof c->u.launch.block);
    c->u.launch.heap_args = heap;
    if (nslots <= HAL_INLINE_SLOTS) memcpy(c->u.launch.args, args, nbytes);
    return ring_push(q);
}

uint64_t hal_queue_launch(hal_queue *q, hal_kernel_fn fn, const int64_t grid[3], const int64_t block[3],
                          const uint64_t *args, int nslots) {
    return hal_queue_launch_bytes(q, fn, grid, block, args, (size_t)nslots * 8);
}

uint64_t hal_queue_marker(hal_queue *q) {
    cmd *c = ring_acquire(q);
    c->kind = CMD_MARKER;
    return ring_push(q);
}

uint64_t hal_queue_wait(hal_queue *q, hal_queue *other, uint64_t seq) {
    cmd *c = ring_acquire(q);
    c->kind = CMD_WAIT;
    c->u.wait.other = other;
    c->u.wait.seq = seq;
    return ring_push(q);
}

uint64_t hal_queue_submitted(hal_queue *q) { return atomic_load(&q->tail); }

uint64_t hal_queue_completed(hal_queue *q) { return atomic_load(&q->completed); }

void hal_queue_wait_host(hal_queue *q, uint64_t seq) {
    uint64_t submitted = atomic_load(&q->tail);
    if (seq > submitted) seq = submitted;  /* never wait for a command nobody enqueued */
    if (atomic_load(&q->completed) >= seq) return;
    SPIN_UNTIL(atomic_load_explicit(&q->completed, memory_order_relaxed) >= seq);
    if (atomic_load(&q->completed) >= seq) return;
    pthread_mutex_lock(&q->mu);
    atomic_fetch_add(&q->host_waiters, 1);
    while (atomic_load(&q->completed) < seq) pthread_cond_wait(&q->done, &q->mu);
    atomic_fetch_sub(&q->host_waiters, 1);
    pthread_mutex_unlock(&q->mu);
}

int hal_queue_times(hal_queue *q, uint64_t seq, double *start, double *end) {
    pthread_mutex_lock(&q->times_mu);
    time_slot t = q->times[seq & (HAL_TIME_HISTORY - 1)];
    pthread_mutex_unlock(&q->times_mu);
    if (seq == 0 || t.seq != seq) return 0;
    *start = t.start;
    *end = t.end;
    return 1;
}

int hal_queue_take_fault(hal_queue *q, char *buf, size_t buflen) {
    pthread_mutex_lock(&q->mu);
    int had = q->fault_set;
    if (had && buflen) {
        strncpy(buf, q->fault, buflen - 1);
        buf[buflen - 1] = 0;
    }
    q->fault_set = 0;
    pthread_mutex_unlock(&q->mu);
    return had;
}
