/* The core's private layout: green-thread records, the hub, timers, the
 * ready queue and the one park/unpark primitive under every wait. Only
 * src/core includes this header; the layers above use the contract in
 * core.h, which this one extends. */
#ifndef GROVE_CORE_LAYOUT_H
#define GROVE_CORE_LAYOUT_H

#include "core.h"

#include "arch/ctx.h"
#include "arch/stack.h"
#include "backend/backend.h"
#include "timer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define GR__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GR__ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define GR__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GR__TSAN 1
#endif
#endif

#if defined(GR__TSAN)
#define GR__NO_TSAN __attribute__((no_sanitize_thread))
#else
#define GR__NO_TSAN
#endif

/* ------------------------------------------------------- green threads */
enum gr__state {
    GR__NEW,      /* spawned for later (gr_spawn_at), not yet runnable */
    GR__RUNNABLE, /* running, or in the ready queue */
    GR__PARKED,   /* blocked in gr__park */
    GR__DONE,     /* finished; record kept until joined */
    GR__GONE,     /* discarded in a forked child (fork.c), about to be freed */
};

typedef struct gr__exit_cb {
    struct gr__exit_cb *next;
    gr_exit_fn fn;
    void *arg;
} gr__exit_cb;

/* A green thread's record. It lives at the top of its own stack, so a
 * green thread costs one stack from the pool and nothing else; the record
 * (and the stack) stays until the thread is joined or, if detached, until
 * it finishes. The root and hub records are malloc'd. */
typedef struct gr__g {
    gr__ctx ctx;
    gr__ctx_entry entry; /* what the context runs when first resumed */
    char *start_top;     /* its stack runs from stack.lo up to here */
    uint8_t state;
    uint8_t cancelled;
    uint8_t detached;
    uint8_t kind;    /* GR__KIND_* */
    uint16_t shield; /* open gr_shield regions: kills are deferred while > 0 */
    uint8_t deaf;    /* in a park that kills and timeout regions cannot end */
    uint8_t ran;     /* its function was called (not killed before it started) */
    int wake;        /* park's outcome: 0 or an errno value */
    uint32_t slot;
    gr_t handle;
    gr_fn fn;
    void *arg;
    void *result;
    gr__timer timer;       /* may stay armed after a wake (lazy; see gr__park) */
    int64_t park_deadline; /* of the current or last park; -1: none */
    gr__waiter *qwait;     /* its waiter while in a queue wait */
    gr__waiter *fdw;       /* its waiters while in an fd wait or gr_poll... */
    uint32_t nfdw;         /* ...and how many (0: not waiting on fds) */
    gr__wq joiners;
    uint32_t collectors;       /* woken joiners yet to pick the result up */
    uint32_t nwatches;         /* of watches, while parked in gr__watch_park */
    gr__wq watchers;           /* watches of its end, which take nothing (watch.c) */
    struct gr__watch *watches; /* its watch set while in gr__watch_park */
    const char *wait_what;     /* why it is parked, for deadlock reports */
    int64_t timeout_eff;       /* innermost gr_timeout's effective deadline */
    gr_timeout *timeout;
    gr__exit_cb *exit_cbs, *exit_cbs_tail;
    struct gr__local *locals; /* GR_LOCAL_KEYS_MAX entries, or NULL */
    gr__stack stack;
#if defined(GR__ASAN)
    void *asan_fake;
    const void *asan_bottom;
    size_t asan_size;
#endif
#if defined(GR__TSAN)
    void *tsan_fiber; /* ThreadSanitizer's record of this context */
#endif
    char name[GR_NAME_MAX + 1];
} gr__g;

enum { GR__KIND_GREEN, GR__KIND_ROOT, GR__KIND_HUB };

/* --------------------------------------------------------------- hub */
typedef struct gr__slot {
    gr__g *g;
    uint32_t gen;
    uint32_t next_free;
} gr__slot;

typedef struct gr__post {
    struct gr__post *next;
    void (*cb)(void *);
    void *arg;
} gr__post;

/* Per-fd state. Records sit in fixed chunks and never move, so wait queues
 * may point into them. */
typedef struct gr__fdrec {
    gr__wq readers, writers;
    gr__fd_cb *on_readable; /* called at the next readable edge, then dropped */
    uint32_t gen;           /* the hub's fd_gen when last used; older: stale (forked) */
    uint8_t registered;
    uint8_t ready; /* GR_READ/GR_WRITE edges seen since the last EAGAIN */
} gr__fdrec;

#define GR__FD_CHUNK 4096
#define GR__FD_CHUNKS 1024

struct gr_hub {
    gr__g *current;
    gr__g *root;
    gr__g *hubg;
    /* The ready queue: a ring of pointers, sized at spawn time for every
     * thread that could be ready at once, so making one ready never fails
     * and never writes into the thread's record. */
    gr__g **ready;
    uint32_t ready_head, ready_tail, ready_mask;
    uint32_t pass_mark;  /* ready_head when the hub last looked around */
    uint64_t dispatched; /* switches counted up to pass_mark */

    int64_t now;          /* cached ms */
    size_t timed_waiters; /* parked threads with a deadline */
    size_t later;         /* gr_spawn_at threads waiting to start */
    int64_t now_ns;       /* cached ns, for precise poll time-outs */
    int64_t spin_ns;      /* gr_config.idle_spin_us, in ns; 0 never */
    gr__timer_heap timers;

    gr__slot *slots;
    uint32_t nslots, capslots, free_slot;
    size_t nlive, nfinished;

    gr__stack_pool stacks;
    gr__stack hub_stack;
    int64_t trimmed_at; /* when surplus pooled stacks were last given back */

    gr__backend backend;
    gr__fdrec *fds[GR__FD_CHUNKS];
    size_t nfd_waiters;
    size_t nfd_cbs;  /* fds with a gr__fd_on_readable: they too wait for edges */
    size_t nqwait;   /* threads in queue waits (a forked child looks for them) */
    uint32_t fd_gen; /* bumped by a fork: every fd record is stale at once */

    /* Cross-thread: guarded by lock, except the atomics. */
    pthread_mutex_t lock;
    gr__post *posts_head, *posts_tail;
    gr__xwaiter *xwakes; /* green threads woken by other OS threads (xwait.c) */
    atomic_int posted;
    atomic_long refs;
    atomic_uint notified;     /* gr__hub_notify bits not yet handed to notify_fn */
    atomic_long wake_sources; /* gr__hub_wake_source: no deadlock while > 0 */
    void (*notify_fn)(void *arg, unsigned bits);
    void *notify_arg;
    int sleeping;  /* in the blocking poll: posters must write wakefd */
    int wake_sent; /* wakefd written since the hub last slept */
    int wakefd;
    atomic_int waking; /* wakefd writes decided, not yet made (post.c) */

    uint64_t root_canary;            /* the root's stack has no canary of ours: fake one */
    int *errno_loc;                  /* this thread's errno, without a libc call per switch */
    struct gr__hub_hook *on_destroy; /* subsystems' clean-up, newest first */
    struct gr__hub_hook *on_fork;    /* subsystems' rebuild in a forked child */
    uint8_t in_main;
    uint8_t root_draining;
#if defined(GR__ASAN)
    gr__g *switch_from; /* who switched to the context now resuming */
#endif
#if defined(GR__TSAN)
    void *tsan_zombie; /* a finished context's fiber, freed once off its stack */
#endif
    void *altstack;

    /* In the registry of live hubs, which other OS threads read under its
     * lock (inspect.c: run-info dumps; monitor.c: the blocking monitor). */
    struct gr_hub *reg_prev, *reg_next;
    uint64_t id; /* 1, 2, ... in creation order, for reports */
    pthread_t os_thread;
    int tid;
    struct gr__mon *mon; /* the blocking monitor's view of it, or NULL */
};

gr_hub *gr__hub_create(void);

/* The calling thread's hub, created on first use (NULL/ENOMEM). */
static inline gr_hub *gr__hub_get(void)
{
    gr_hub *h = gr__tls_hub;

    return GR__LIKELY(h != NULL) ? h : gr__hub_create();
}

/* The running green thread (or root context), creating the hub if needed.
 * NULL with errno ENOMEM, or err_in_hub when called in a hub callback,
 * where no green thread runs. */
static inline gr__g *gr__running(int err_in_hub)
{
    gr_hub *h = gr__hub_get();

    if (!h)
        return NULL;
    if (GR__UNLIKELY(h->current == h->hubg)) {
        errno = err_in_hub;
        return NULL;
    }
    return h->current;
}
static inline gr_hub *gr__hub_peek(void)
{
    return gr__tls_hub;
}

/* ------------------------------------------------------- scheduling */

static inline void gr__ready_push(gr_hub *h, gr__g *g)
{
    h->ready[h->ready_tail++ & h->ready_mask] = g;
}

static inline gr__g *gr__ready_pop(gr_hub *h)
{
    if (h->ready_head == h->ready_tail)
        return NULL;
    return h->ready[h->ready_head++ & h->ready_mask];
}

static inline int gr__ready_empty(const gr_hub *h)
{
    return h->ready_head == h->ready_tail;
}

/* Make room in the ready queue for n threads. -1/ENOMEM. */
int gr__ready_reserve(gr_hub *h, size_t n);

/* Append g to the ready queue and mark it runnable. */
static inline void gr__ready(gr_hub *h, gr__g *g)
{
    g->state = GR__RUNNABLE;
    gr__ready_push(h, g);
}

/* Make a parked g ready; its gr__park returns 0 for status 0, else -1
 * with errno = status. Does nothing if g is not parked. */
static inline void gr__unpark(gr__g *g, int status)
{
    if (g->state != GR__PARKED)
        return;
    g->wake = status;
    gr__ready(gr__tls_hub, g);
}

/* ------------------------------------------------------------ wait queues
 * Inline: they sit on the path of every handoff (a channel message, a
 * semaphore release), where a call each would show. */

static inline void gr__wq_push(gr__wq *q, gr__waiter *w, gr__g *g)
{
    w->q = q;
    w->g = g;
    w->next = NULL;
    w->prev = q->tail_;
    w->fired = 0;
    w->linked = 1;
    if (q->tail_)
        q->tail_->next = w;
    else
        q->head_ = w;
    q->tail_ = w;
}

/* Unlink w from the queue it is in, if any. */
static inline void gr__wq_remove(gr__waiter *w)
{
    gr__wq *q = w->q;

    if (!w->linked)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head_ = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail_ = w->prev;
    w->linked = 0;
}

/* Pop the first waiter whose thread is still parked, or NULL. */
static inline gr__waiter *gr__wq_pop_parked(gr__wq *q)
{
    gr__waiter *w;

    while ((w = q->head_)) {
        gr__wq_remove(w);
        if (w->g->state == GR__PARKED)
            return w;
    }
    return NULL;
}

/* Where a green thread's record sits in its stack: near the top, shifted
 * down by a "colour" of 0-15 cache lines taken from the stack's address.
 * Without it every record and every stack top would sit at the same offset
 * in its page, and the CPU would take the stores of the thread switching
 * out for the loads of the thread switching in (4K aliasing), stalling
 * every switch. */
static inline gr__g *gr__record_at(char *lo, size_t size)
{
    uintptr_t top = (uintptr_t)(lo + size);
    uintptr_t colour = ((uintptr_t)lo >> 12) & 15;

    return (gr__g *)(((top - sizeof(gr__g)) & ~(uintptr_t)63) - colour * 64);
}

static inline gr__g *gr__record_of(const gr__stack *s)
{
    return gr__record_at(s->lo, s->size);
}

/* How many direct switches between two looks at I/O and timers: few
 * enough to keep I/O latency low, many enough to amortise a clock read. */
#define GR__BUDGET 64

/* Block the current green thread until gr__unpark(), the deadline (or an
 * enclosing gr_timeout's) or a kill. what names the wait in deadlock
 * reports. Returns 0 when unparked with status 0, else -1 with errno set:
 * ETIMEDOUT, ECANCELED, EDEADLK (in a hub callback, or nothing can wake the
 * root), or the status given to gr__unpark. */
int gr__park(int64_t deadline, const char *what);

/* gr__park deaf to kills and gr_timeout regions, without a deadline: it
 * ends only by gr__unpark (or -1/EDEADLK when nothing can wake the caller). */
int gr__park_deaf(const char *what);

/* Give up the processor: the current thread has already been queued or
 * parked. */
void gr__schedule(gr_hub *h);

/* Precondition for every blocking call: -1/EDEADLK in the hub context,
 * -1/ECANCELED if the caller was killed outside a shielded region, 0
 * otherwise. */
int gr__may_block(gr_hub *h);

/* Killed, and not shielded: its blocking calls must fail with ECANCELED. */
static inline int gr__killed(const gr__g *g)
{
    return GR__UNLIKELY(g->cancelled) && !g->shield;
}

/* ---------------------------------------------------- registry, monitor
 * The registry of live hubs (inspect.c): a hub is added once made, and
 * removed first thing when it is destroyed, under gr__registry_lock, which
 * the run-info dump and the blocking monitor hold while they look at it. */
extern pthread_mutex_t gr__registry_lock;
extern gr_hub *gr__registry_head;
void gr__registry_add(gr_hub *h);
void gr__registry_remove(gr_hub *h);
void gr__registry_after_fork(gr_hub *kept);

/* The blocking monitor (monitor.c). configure: fix the settings from
 * gr_config and GROVE_MAX_BLOCKING_MS as the first hub is made (under
 * the configuration lock); hub_added/removed: from the registry. */
void gr__monitor_configure(void);
void gr__monitor_hub_added(gr_hub *h);
void gr__monitor_hub_removed(gr_hub *h);
size_t gr__monitor_reports(const gr_hub *h);
void gr__monitor_after_fork(void);
int gr__monitor_signal_ok(int sig);

/* ---------------------------------------------------------------- watches
 * What a gr__watch holds (watch.c). */
enum { GR__WATCH_NONE, GR__WATCH_QUEUE, GR__WATCH_FD, GR__WATCH_X };

/* 1 if g, parked in gr__watch_park, watches a descriptor (it counts in
 * nfd_waiters meanwhile). */
int gr__watches_fds(const gr__g *g);

/* Take a cross-thread waiter out of q whatever state it is in (woken,
 * claimed by a waker, or still waiting): on return nothing refers to it.
 * Returns 1 if it had been woken. */
int gr__xq_leave(gr__xq *q, int *lock, gr__xwaiter *w);

/* ------------------------------------------------------------ internal */
#define GR__NO_SLOT UINT32_MAX
int gr__slot_alloc(gr_hub *h, gr__g *g);
void gr__slot_free(gr_hub *h, uint32_t i);
gr__g *gr__lookup(gr_hub *h, gr_t handle);
/* gr__lookup of a green thread: NULL with ESRCH (stale) or EINVAL (a root
 * context). */
gr__g *gr__lookup_green(gr_hub *h, gr_t handle);
void gr__release(gr_hub *h, gr__g *g);
void gr__switch(gr_hub *h, gr__g *from, gr__g *to);
/* The context a finishing green thread hands the processor to: returned by
 * its entry function (see gr__ctx_start). */
gr__ctx *gr__leave(gr_hub *h, gr__g *from);
void gr__fire_timers(gr_hub *h);
void gr__hub_destroy(gr_hub *h);

typedef struct gr__hub_hook {
    struct gr__hub_hook *next;
    void (*fn)(void *arg);
    void *arg;
} gr__hub_hook;
void gr__update_now(gr_hub *h);
void gr__fd_event(gr_hub *h, int fd, int ready);
void gr__fds_fini(gr_hub *h);
void gr__posts_run(gr_hub *h);
/* With h->lock held, after queueing work for h: mark it posted, and return
 * 1 if h sleeps and nobody has woken it yet; the caller then calls
 * gr__hub_wake_write(h) once it has released the lock. */
int gr__hub_wake_locked(gr_hub *h);
void gr__hub_wake_write(gr_hub *h);
/* Wait until no wake write is pending: before h's wakefd is closed. */
void gr__hub_wakes_settle(gr_hub *h);
void gr__notified_run(gr_hub *h);
void gr__xwakes_run_locked(gr_hub *h);
int gr__posts_pending(gr_hub *h);
void gr__posts_fini(gr_hub *h);
int gr__overflow_trap_init(gr_hub *h);
void gr__overflow_trap_fini(gr_hub *h);
void gr__overflow_canary(gr__g *g) __attribute__((noreturn));
size_t gr__format_name(const gr__g *g, char *buf, size_t len);
void gr__locals_destroy(gr__g *g);
/* Free what a record owns besides its stack (exit callbacks, locals),
 * running nothing. */
void gr__record_extras_free(gr__g *g);
#if defined(GR__TSAN)
/* ThreadSanitizer sees each context as a fiber of its own, switched to
 * right before every context switch (with synchronisation: contexts of one
 * hub run one after another). A fiber cannot be freed while it runs, so a
 * finished thread's is freed by the next context to resume. */
void gr__tsan_fiber_new(gr__g *g);
void gr__tsan_fiber_drop(gr_hub *h, gr__g *g);
void gr__tsan_resumed(gr_hub *h);
#endif
/* The pthread_atfork child handler's work on the forking thread's hub. */
void gr__hub_after_fork(gr_hub *h);
/* Process-wide configuration (gr_configure), read-only once a hub exists. */
extern gr_config gr__cfg;
static inline const gr_config *gr__config(void)
{
    return &gr__cfg;
}

#endif /* GROVE_CORE_LAYOUT_H */
