/* The CPU backend's C runtime (see hal_runtime.h for the contract).
 *
 * Threads: every queue has one worker thread that runs its commands in order.
 * Large copies, fills and launches are shared out over one process-wide pool
 * (hal_cpu_count() - 1 workers plus the thread that submits the job). The
 * pool serves one job at a time; a thread that finds it busy runs its job
 * alone instead of waiting, so queues never block each other. Idle threads
 * spin for a few microseconds, then sleep on a condition variable.
 *
 * Lifetimes: a queue is reference-counted (its creator, each pending wait of
 * another queue on it, each host thread waiting on it), so destroying a queue
 * that others still wait on is safe. After fork() the child's pool restarts
 * on first use, and the parent's queues are dead there: destroying one leaks
 * it, waiting on one returns at once, enqueueing on one does nothing.
 *
 * Faults: a kernel that touches memory it must not (SIGSEGV, SIGBUS) while
 * the runtime runs it becomes a fault of its launch, not a crash: the signal
 * handler jumps back to the runtime's guard around the kernel call. Large
 * blocks from hal_alloc end right before a PROT_NONE page, so running off the
 * end of one faults at once.
 */
#define _GNU_SOURCE
#include "hal_runtime.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
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
#define RANGE_MAX_ITEMS 65536           /* work-items per pooled range at most: abort and faults stop a launch within one */
#define SPIN_SECONDS 20e-6              /* how long an idle thread spins before it sleeps */
#define FOREVER_SECONDS 1e9             /* a timed wait at least this long (or NaN) waits untimed */
#define HUGE_ALIGN ((size_t)2 << 20)    /* transparent huge page size */
#define ALLOC_HEADER 64                 /* keeps the user pointer 64-byte aligned */
#define ALT_STACK_BYTES (64u << 10)     /* signal stack of each runtime thread (a kernel may overflow its own) */

double hal_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Spin until cond holds or `seconds` pass; checks the clock every 64 pauses. */
#define SPIN_FOR(cond, seconds)                                                 \
    do {                                                                        \
        double spin_end_ = hal_now() + (seconds);                               \
        for (unsigned spin_i_ = 1; !(cond); spin_i_++) {                        \
            CPU_RELAX();                                                        \
            if ((spin_i_ & 63) == 0 && hal_now() > spin_end_) break;            \
        }                                                                       \
    } while (0)
#define SPIN_UNTIL(cond) SPIN_FOR(cond, SPIN_SECONDS)

/* ---- memory ----------------------------------------------------------- */

/* Every block starts with a header (the 64 bytes before the user pointer)
 * saying how to give it back. Small blocks come from posix_memalign. Large
 * ones are mmap'ed 2 MiB-aligned (so THP can back them) with one PROT_NONE
 * page after the 2 MiB-rounded read-write part; the user bytes end right
 * before that guard page (their start rounded down to 64 bytes), so a kernel
 * running off the end of a block faults on its first byte past it. The slack
 * of the rounding lies before the user bytes. */
typedef struct alloc_header {
    void *base;     /* what free() or munmap() takes */
    size_t mapped;  /* bytes mapped, guard page included; 0 for posix_memalign blocks */
} alloc_header;

static size_t page_size(void) {
    static _Atomic size_t size;
    size_t s = atomic_load_explicit(&size, memory_order_relaxed);
    if (!s) {
        long p = sysconf(_SC_PAGE_SIZE);
        s = p > 0 ? (size_t)p : 4096;
        atomic_store_explicit(&size, s, memory_order_relaxed);
    }
    return s;
}

static void *alloc_mapped(size_t nbytes) {
    size_t page = page_size();
    if (nbytes > SIZE_MAX / 2) return NULL;
    /* read-write bytes: the user's, the header and up to 63 bytes that align the user pointer */
    size_t len = (nbytes + 2 * ALLOC_HEADER + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
    size_t span = len + page;
    char *raw = mmap(NULL, span + HUGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *base = (char *)(((uintptr_t)raw + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
    if (base > raw) munmap(raw, (size_t)(base - raw));
    size_t tail = (size_t)(raw + span + HUGE_ALIGN - (base + span));
    if (tail) munmap(base + span, tail);
    if (mprotect(base + len, page, PROT_NONE) != 0) {
        munmap(base, span);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(base, len, MADV_HUGEPAGE);
#endif
    char *user = (char *)((uintptr_t)(base + len - nbytes) & ~(uintptr_t)63);
    alloc_header *h = (alloc_header *)(user - ALLOC_HEADER);
    h->base = base;
    h->mapped = span;
    return user;
}

void *hal_alloc(size_t nbytes) {
    if (nbytes >= 2 * HUGE_ALIGN) return alloc_mapped(nbytes);
    void *p;
    if (posix_memalign(&p, 64, nbytes + ALLOC_HEADER) != 0) return NULL;
    alloc_header *h = p;
    h->base = p;
    h->mapped = 0;
    return (char *)p + ALLOC_HEADER;
}

void hal_free(void *p) {
    if (!p) return;
    alloc_header *h = (alloc_header *)((char *)p - ALLOC_HEADER);
    if (h->mapped) munmap(h->base, h->mapped);
    else free(h->base);
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

/* ---- kernel faults and signal stacks ----------------------------------- */

/* Where a thread that runs a kernel range returns to if the kernel faults. */
typedef struct kernel_guard {
    sigjmp_buf jump;
    void *volatile address;     /* the faulting address, set by the signal handler */
} kernel_guard;

/* The guard of the range this thread is running, NULL outside one. initial-exec: the
 * signal handler reads it, and must not make glibc allocate a dlopen'ed module's TLS. */
static __thread kernel_guard *tls_guard __attribute__((tls_model("initial-exec")));
static struct sigaction previous_segv, previous_bus;

/* SIGSEGV/SIGBUS: inside a kernel range run by the runtime, leave the range through its
 * guard; anywhere else, behave as if this handler were not there. */
static void on_memory_fault(int sig, siginfo_t *info, void *context) {
    kernel_guard *g = tls_guard;
    if (g && info->si_code > 0) {  /* si_code > 0: raised by this thread's own access, not by kill() */
        tls_guard = NULL;
        g->address = info->si_addr;
        sigset_t unblock;  /* the guard was set without saving the mask (a syscall per range) */
        sigemptyset(&unblock);
        sigaddset(&unblock, sig);
        pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
        siglongjmp(g->jump, 1);
    }
    const struct sigaction *prev = sig == SIGBUS ? &previous_bus : &previous_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, info, context);
        return;
    }
    if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    if (info->si_code <= 0) raise(sig);  /* sent, not a fault: no instruction will raise it again */
}

static void install_fault_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_memory_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
}

/* Another library may replace the handlers after ours (Ray's core installs its own at ray.init,
 * without chaining, and sets SIG_DFL at ray.shutdown): then a kernel's wild access would kill the
 * process. A queue worker that wakes up puts ours back, chaining to whatever it found, at most
 * once a millisecond (the check is a system call, ~150 ns; a wake-up is a few microseconds). */
static _Atomic double fault_handlers_checked;

static void keep_fault_handlers(void) {
    double now = hal_now();
    if (now - atomic_load_explicit(&fault_handlers_checked, memory_order_relaxed) < 1e-3) return;
    atomic_store_explicit(&fault_handlers_checked, now, memory_order_relaxed);
    struct sigaction current;
    if (sigaction(SIGSEGV, NULL, &current) != 0) return;
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_memory_fault) return;
    install_fault_handlers();
}

/* Give this thread an alternate signal stack, so that a kernel that overflows its stack
 * still gets its fault reported. Returns the memory to pass to alt_stack_leave. mmap, not
 * malloc: a first malloc in a thread makes glibc reserve a 64 MiB arena for it, which moves
 * where later large blocks land (and how they alias in the caches). */
static void *alt_stack_enter(void) {
    void *stack = mmap(NULL, ALT_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) return NULL;
    stack_t ss = {.ss_sp = stack, .ss_size = ALT_STACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        munmap(stack, ALT_STACK_BYTES);
        return NULL;
    }
    return stack;
}

static void alt_stack_leave(void *stack) {
    if (!stack) return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(stack, ALT_STACK_BYTES);
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
    const char *where;          /* launches: the kernel's name and location, for fault messages */
};

/* The pool starts on first use, and again in a fork child (its workers do not exist there). */
static struct {
    _Atomic int started;
    pthread_mutex_t start_mu;
    int nthreads;               /* workers + the submitting thread */
    _Atomic int busy;           /* a submitter owns the pool */
    _Atomic uint64_t state;     /* generation << 1 | open */
    _Atomic int active;         /* workers inside the current job */
    _Atomic int sleepers;
    _Atomic int owner_waiting;
    job *job;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
} pool = {.start_mu = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

/* Incremented in every fork child: a queue made under another epoch belongs to an ancestor process. */
static _Atomic uint64_t fork_epoch;

static void after_fork_in_child(void) {
    atomic_fetch_add(&fork_epoch, 1);
    pthread_mutex_init(&pool.start_mu, NULL);
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.nthreads = 0;
    pool.job = NULL;
    atomic_store(&pool.busy, 0);
    atomic_store(&pool.state, 0);
    atomic_store(&pool.active, 0);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.owner_waiting, 0);
    atomic_store(&pool.started, 0);
}

static pthread_once_t runtime_once = PTHREAD_ONCE_INIT;

/* Once per process (a fork child inherits it): the fork handler and the fault handlers. */
static void runtime_init(void) {
    pthread_atfork(NULL, NULL, after_fork_in_child);
    install_fault_handlers();
}

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
    alt_stack_enter();  /* kept for the life of the process, as the thread */
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
    pthread_once(&runtime_once, runtime_init);
    pthread_mutex_lock(&pool.start_mu);
    if (!atomic_load(&pool.started)) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, HAL_THREAD_STACK);
        int started = 1, wanted = hal_cpu_count();
        for (int i = 1; i < wanted; i++) {
            pthread_t t;
            if (pthread_create(&t, &attr, pool_worker, NULL) != 0) break;
            pthread_detach(t);
            started++;
        }
        pthread_attr_destroy(&attr);
        pool.nthreads = started;
        atomic_store_explicit(&pool.started, 1, memory_order_release);
    }
    pthread_mutex_unlock(&pool.start_mu);
}

/* Run j on the pool, or alone on this thread if the pool is busy with another job. */
static void pool_run(job *j) {
    if (!atomic_load_explicit(&pool.started, memory_order_acquire)) pool_start();
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

static const char *label(const char *where) { return where ? where : "kernel"; }

/* Run groups [b, e) of a launch; a memory fault in the kernel becomes the launch's fault.
 * sigsetjmp does not save the mask (that is a syscall per range): the handler unblocks
 * the signal itself before it jumps. Scratch the kernel allocated for the range leaks then. */
static void call_kernel(hal_kernel_fn fn, const hal_launch *l, const char *where, int64_t b, int64_t e) {
    kernel_guard g;
    if (sigsetjmp(g.jump, 0) == 0) {
        tls_guard = &g;
        fn(l, b, e);
    } else {
        char msg[HAL_FAULT_MESSAGE];
        snprintf(msg, sizeof msg, "%s: invalid memory access at address 0x%llx; rerun with HAL_CHECK=1 to "
                 "find the index", label(where), (unsigned long long)(uintptr_t)g.address);
        hal_raise_fault(l, msg);
    }
    tls_guard = NULL;
}

static void launch_body(const job *j, int64_t b, int64_t e) {
    if (__atomic_load_n(&j->launch->fault->set, __ATOMIC_RELAXED)) return;  /* stop early once it faulted */
    call_kernel(j->fn, j->launch, j->where, b, e);
}

static void run_launch(hal_kernel_fn fn, const hal_launch *l, const char *where) {
    int64_t groups = l->grid[0] * l->grid[1] * l->grid[2];
    int64_t per_group = l->block[0] * l->block[1] * l->block[2];
    if (groups <= 0) return;
    if (groups == 1 || groups * per_group < PAR_MIN_ITEMS) {
        call_kernel(fn, l, where, 0, groups);
        return;
    }
    int64_t grain = groups / ((int64_t)hal_cpu_count() * 16);
    if (grain > RANGE_MAX_ITEMS / per_group) grain = RANGE_MAX_ITEMS / per_group;
    job j = {.body = launch_body, .total = groups, .grain = grain > 0 ? grain : 1,
             .fn = fn, .launch = l, .where = where};
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
        struct { hal_queue *other; uint64_t seq; } wait;  /* holds a reference to other */
        struct {
            hal_kernel_fn fn;
            const char *where;
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
    pthread_cond_t done;            /* host waiters sleep here (CLOCK_MONOTONIC, for timed waits) */
    _Atomic int worker_sleeping, host_waiters, shutdown;
    _Atomic int fault_set;          /* written under mu; read without it by hal_queue_idle */
    char fault[HAL_FAULT_MESSAGE];
    _Atomic int refs;               /* the creator's, one per pending CMD_WAIT on it, one per sleeping host waiter */
    uint64_t epoch;                 /* fork_epoch when created */
    pthread_mutex_t run_mu;         /* the running launch, against hal_queue_abort */
    const hal_launch *running;
    const char *running_where;
    pthread_mutex_t times_mu;       /* readers of old times against the worker's overwrites */
    time_slot *times;
    cmd *ring;
    pthread_t thread;
};

/* A queue of an ancestor process (we are a fork child): its worker does not exist here. */
static inline int queue_stale(const hal_queue *q) {
    return q->epoch != atomic_load_explicit(&fork_epoch, memory_order_relaxed);
}

static void queue_retain(hal_queue *q) { atomic_fetch_add_explicit(&q->refs, 1, memory_order_relaxed); }

static void queue_release(hal_queue *q) {
    if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) != 1) return;
    pthread_mutex_destroy(&q->submit_mu);
    pthread_mutex_destroy(&q->mu);
    pthread_mutex_destroy(&q->run_mu);
    pthread_mutex_destroy(&q->times_mu);
    pthread_cond_destroy(&q->work);
    pthread_cond_destroy(&q->done);
    free(q->ring);
    free(q->times);
    free(q);
}

static void queue_fault(hal_queue *q, const char *message) {
    pthread_mutex_lock(&q->mu);
    if (!q->fault_set) {
        strncpy(q->fault, message, HAL_FAULT_MESSAGE - 1);
        q->fault[HAL_FAULT_MESSAGE - 1] = 0;
        atomic_store(&q->fault_set, 1);
    }
    pthread_mutex_unlock(&q->mu);
}

static void queue_launch(hal_queue *q, const cmd *c) {
    hal_fault fault;
    fault.set = 0;
    hal_launch l = {.args = c->nslots <= HAL_INLINE_SLOTS ? c->u.launch.args : c->u.launch.heap_args,
                    .fault = &fault};
    memcpy(l.grid, c->u.launch.grid, sizeof l.grid);
    memcpy(l.block, c->u.launch.block, sizeof l.block);
    if (l.args) {
        pthread_mutex_lock(&q->run_mu);
        q->running = &l;
        q->running_where = c->u.launch.where;
        pthread_mutex_unlock(&q->run_mu);
        run_launch(c->u.launch.fn, &l, c->u.launch.where);
        pthread_mutex_lock(&q->run_mu);
        q->running = NULL;
        pthread_mutex_unlock(&q->run_mu);
    } else {
        hal_raise_fault(&l, "hal runtime: out of memory copying the launch's arguments");
    }
    free(c->u.launch.heap_args);
    if (fault.set) queue_fault(q, fault.message);
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
        queue_release(c->u.wait.other);
        break;
    case CMD_LAUNCH:
        queue_launch(q, c);
        break;
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
    void *alt_stack = alt_stack_enter();
    for (;;) {
        uint64_t done = atomic_load_explicit(&q->completed, memory_order_relaxed);
        if (atomic_load(&q->tail) == done) {
            if (atomic_load(&q->shutdown)) break;  /* drained: destroy comes after the last enqueue */
            queue_idle(q, done);
            keep_fault_handlers();
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
    alt_stack_leave(alt_stack);
    return NULL;
}

hal_queue *hal_queue_create(void) {
    pthread_once(&runtime_once, runtime_init);
    hal_queue *q = aligned_alloc(64, sizeof *q);
    if (!q) return NULL;
    memset(q, 0, sizeof *q);
    atomic_store(&q->refs, 1);
    q->epoch = atomic_load(&fork_epoch);
    q->ring = malloc(HAL_QUEUE_RING * sizeof *q->ring);
    q->times = calloc(HAL_TIME_HISTORY, sizeof *q->times);
    pthread_mutex_init(&q->submit_mu, NULL);
    pthread_mutex_init(&q->mu, NULL);
    pthread_mutex_init(&q->run_mu, NULL);
    pthread_mutex_init(&q->times_mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&q->done, &monotonic);
    pthread_condattr_destroy(&monotonic);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, HAL_THREAD_STACK);
    int failed = !q->ring || !q->times || pthread_create(&q->thread, &attr, queue_worker, q) != 0;
    pthread_attr_destroy(&attr);
    if (failed) {
        queue_release(q);
        return NULL;
    }
    return q;
}

void hal_queue_destroy(hal_queue *q) {
    if (!q || queue_stale(q)) return;  /* a parent's queue in a fork child: nothing to join; it leaks */
    pthread_mutex_lock(&q->mu);
    atomic_store(&q->shutdown, 1);
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    queue_release(q);
}

/* Take submit_mu and return the next free slot, waiting while the ring is full; NULL (and
 * nothing locked) for a parent's queue in a fork child. */
static cmd *ring_acquire(hal_queue *q) {
    if (queue_stale(q)) return NULL;
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
    if (!c) return 0;
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
    if (!c) return 0;
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
                                const void *args, size_t nbytes, const char *where) {
    int nslots = (int)(nbytes / 8);
    uint64_t *heap = NULL;
    if (nslots > HAL_INLINE_SLOTS && (heap = malloc(nbytes))) memcpy(heap, args, nbytes);  /* outside the lock */
    cmd *c = ring_acquire(q);
    if (!c) {
        free(heap);
        return 0;
    }
    c->kind = CMD_LAUNCH;
    c->nslots = nslots;
    c->u.launch.fn = fn;
    c->u.launch.where = where;
    memcpy(c->u.launch.grid, grid, sizeof c->u.launch.grid);
    memcpy(c->u.launch.block, block, sizeof c->u.launch.block);
    c->u.launch.heap_args = heap;
    if (nslots <= HAL_INLINE_SLOTS) memcpy(c->u.launch.args, args, nbytes);
    return ring_push(q);
}

uint64_t hal_queue_launch(hal_queue *q, hal_kernel_fn fn, const int64_t grid[3], const int64_t block[3],
                          const uint64_t *args, int nslots, const char *where) {
    return hal_queue_launch_bytes(q, fn, grid, block, args, (size_t)nslots * 8, where);
}

uint64_t hal_queue_submit_graph(hal_queue *q, const hal_graph_cmd *cmds, size_t n) {
    uint64_t seq = 0;
    for (size_t i = 0; i < n; i++) {
        const hal_graph_cmd *c = &cmds[i];
        if (c->kind == HAL_GRAPH_LAUNCH)
            seq = hal_queue_launch_bytes(q, c->fn, c->grid, c->block, c->args, c->nbytes, c->where);
        else if (c->kind == HAL_GRAPH_COPY)
            seq = hal_queue_copy_at(q, c->dst, c->dst_offset, c->src, c->src_offset, c->nbytes);
        else
            seq = hal_queue_fill_at(q, c->dst, c->dst_offset, c->nbytes, &c->pattern, c->pattern_size);
    }
    return seq;
}

uint64_t hal_queue_marker(hal_queue *q) {
    cmd *c = ring_acquire(q);
    if (!c) return 0;
    c->kind = CMD_MARKER;
    return ring_push(q);
}

uint64_t hal_queue_wait(hal_queue *q, hal_queue *other, uint64_t seq) {
    if (queue_stale(other)) return hal_queue_marker(q);  /* a parent's queue never runs here: nothing to wait for */
    queue_retain(other);
    cmd *c = ring_acquire(q);
    if (!c) {
        queue_release(other);
        return 0;
    }
    c->kind = CMD_WAIT;
    c->u.wait.other = other;
    c->u.wait.seq = seq;
    return ring_push(q);
}

uint64_t hal_queue_submitted(hal_queue *q) { return atomic_load(&q->tail); }

uint64_t hal_queue_completed(hal_queue *q) { return atomic_load(&q->completed); }

int hal_queue_idle(hal_queue *q) {
    if (queue_stale(q)) return 1;
    uint64_t done = atomic_load(&q->completed);  /* first: completed <= tail, so equality means all ran */
    return done == atomic_load(&q->tail) && !atomic_load(&q->fault_set);
}

int hal_queue_wait_host_for(hal_queue *q, uint64_t seq, double seconds) {
    if (queue_stale(q)) return 1;
    uint64_t submitted = atomic_load(&q->tail);
    if (seq > submitted) seq = submitted;  /* never wait for a command nobody enqueued */
    if (atomic_load(&q->completed) >= seq) return 1;
    int forever = !(seconds < FOREVER_SECONDS);  /* NaN too */
    SPIN_FOR(atomic_load_explicit(&q->completed, memory_order_relaxed) >= seq,
             forever || seconds > SPIN_SECONDS ? SPIN_SECONDS : seconds);
    if (atomic_load(&q->completed) >= seq) return 1;
    if (!forever && seconds <= SPIN_SECONDS) return 0;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (!forever) {
        double whole = (double)(int64_t)seconds;
        deadline.tv_sec += (time_t)whole;
        deadline.tv_nsec += (long)((seconds - whole) * 1e9);
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    queue_retain(q);  /* a destroy while this thread sleeps must not free the queue under it */
    pthread_mutex_lock(&q->mu);
    atomic_fetch_add(&q->host_waiters, 1);
    while (atomic_load(&q->completed) < seq) {
        if (forever) pthread_cond_wait(&q->done, &q->mu);
        else if (pthread_cond_timedwait(&q->done, &q->mu, &deadline) == ETIMEDOUT) break;
    }
    int done = atomic_load(&q->completed) >= seq;
    atomic_fetch_sub(&q->host_waiters, 1);
    pthread_mutex_unlock(&q->mu);
    queue_release(q);
    return done;
}

void hal_queue_wait_host(hal_queue *q, uint64_t seq) { (void)hal_queue_wait_host_for(q, seq, INFINITY); }

int hal_queue_abort(hal_queue *q) {
    if (queue_stale(q)) return 0;
    pthread_mutex_lock(&q->run_mu);
    const hal_launch *l = q->running;
    if (l) {
        char msg[HAL_FAULT_MESSAGE];
        snprintf(msg, sizeof msg, "%s: aborted before it finished (a synchronize time limit, or q.abort()); its results are incomplete",
                 label(q->running_where));
        hal_raise_fault(l, msg);
    }
    pthread_mutex_unlock(&q->run_mu);
    return l != NULL;
}

int hal_queue_times(hal_queue *q, uint64_t seq, double *start, double *end) {
    if (queue_stale(q)) return 0;
    pthread_mutex_lock(&q->times_mu);
    time_slot t = q->times[seq & (HAL_TIME_HISTORY - 1)];
    pthread_mutex_unlock(&q->times_mu);
    if (seq == 0 || t.seq != seq) return 0;
    *start = t.start;
    *end = t.end;
    return 1;
}

int hal_queue_take_fault(hal_queue *q, char *buf, size_t buflen) {
    if (queue_stale(q)) return 0;
    pthread_mutex_lock(&q->mu);
    int had = q->fault_set;
    if (had && buflen) {
        strncpy(buf, q->fault, buflen - 1);
        buf[buflen - 1] = 0;
    }
    atomic_store(&q->fault_set, 0);
    pthread_mutex_unlock(&q->mu);
    return had;
}
