/* Signals delivered to green threads: sigaction, a counter per signal and
 * per hub, and the hub's asynchronous notification (not signalfd: see
 * docs/design.md, "Signals").
 *
 *   handler (any thread)   count[sig]++, info[sig] = *si, notify the hub
 *   hub (its next pass)    count != seen: the signal was delivered once
 *                          more (coalesced), for every subscription
 *
 * The handler must never touch a hub being destroyed. Hubs are reached
 * through a fixed table of slots (static memory, never freed); a handler
 * announces itself in a slot (inflight) before it reads the slot's hub,
 * and a hub leaving its slot clears it and then waits for inflight to be
 * zero. With sequentially consistent atomics, a handler either sees the
 * slot cleared or is waited for. Only the handler's part is lock-free: who
 * subscribes, installs and restores takes reg.lock, which the handler
 * never takes. */
#define _GNU_SOURCE
#include "arch/fail.h"
#include "core/core.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 64 /* hubs subscribed at once */
#define NSIGS 64 /* signals 1..64 */
#define INFO_WORDS (sizeof(siginfo_t) / sizeof(unsigned long))

/* The last delivery's siginfo_t, as words the handler writes and the hub
 * reads atomically; seq is odd while a handler writes (a seqlock whose
 * writers never wait: a second concurrent writer skips its copy). */
typedef struct info_box {
    atomic_uint seq;
    atomic_ulong w[INFO_WORDS];
} info_box;

/* A hub's signal state, alive as long as the hub. */
typedef struct hubsig {
    gr_hub *hub;
    int slot;              /* in reg.slots, or -1 */
    uint64_t interest;     /* signals some subscription wants */
    unsigned nsubs[NSIGS]; /* subscriptions per signal */
    size_t nopen;          /* subscriptions open: wake sources */
    int fork_hooked;
    unsigned seen[NSIGS];     /* count[] as the hub last took it */
    atomic_uint count[NSIGS]; /* deliveries, counted by the handler */
    info_box info[NSIGS];
    gr_signals *subs;
} hubsig;

struct gr_signals {
    gr_signals *prev, *next;
    hubsig *hs; /* NULL once its hub is gone */
    uint64_t sigs;
    uint64_t pending; /* delivered, not yet taken by gr_signal_next */
    gr_signal_fn fn;  /* a handler subscription: a green thread per delivery */
    void *arg;
    gr__wq q; /* green threads in gr_signal_next */
};

typedef struct slot {
    _Atomic(hubsig *) hs;
    atomic_ullong mask;   /* hs->interest, as the handler reads it */
    atomic_uint inflight; /* handlers between reading hs and done with it */
} slot;

static struct {
    pthread_mutex_t lock;
    slot slots[SLOTS];
    atomic_uint used;            /* slots ever used: the handler looks at [0, used) */
    unsigned hubs[NSIGS];        /* hubs subscribed, per signal */
    struct sigaction old[NSIGS]; /* dispositions before grove's */
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static __thread hubsig *tls_hs;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static inline uint64_t bit(int sig)
{
    return GR_SIG(sig);
}

/* Iterate over the signals of a mask: for (sig = first(m); m; ...). */
static inline int take_lowest(uint64_t *m)
{
    int sig = __builtin_ctzll(*m) + 1;

    *m &= *m - 1;
    return sig;
}

/* ------------------------------------------------------------ handler */

static void record(hubsig *hs, int sig, const siginfo_t *si)
{
    info_box *b = &hs->info[sig - 1];
    unsigned seq = atomic_load(&b->seq);
    unsigned long w[INFO_WORDS];

    if (!(seq & 1) && atomic_compare_exchange_strong(&b->seq, &seq, seq + 1)) {
        memcpy(w, si, sizeof w);
        for (size_t i = 0; i < INFO_WORDS; i++)
            atomic_store_explicit(&b->w[i], w[i], memory_order_relaxed);
        atomic_store(&b->seq, seq + 2);
    }
    atomic_fetch_add(&hs->count[sig - 1], 1);
}

/* Async-signal-safe: atomics, and gr__hub_notify's write(2). */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
    int err = errno;
    unsigned n = atomic_load(&reg.used);

    (void)uc;
    for (unsigned i = 0; i < n; i++) {
        slot *s = &reg.slots[i];
        hubsig *hs;

        if (!(atomic_load_explicit(&s->mask, memory_order_relaxed) & bit(sig)))
            continue;
        atomic_fetch_add(&s->inflight, 1);
        if ((hs = atomic_load(&s->hs)) && (atomic_load(&s->mask) & bit(sig))) {
            record(hs, sig, si);
            gr__hub_notify(hs->hub, 1);
        }
        atomic_fetch_sub(&s->inflight, 1);
    }
    errno = err;
}

static int is_ours(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_signal;
}

/* -------------------------------------------------- the process's side
 * All under reg.lock. */

static int install(int sig)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, &reg.old[sig - 1]);
}

/* Put the saved disposition back, unless the program has replaced ours
 * meanwhile (then its own stays). */
static void restore(int sig)
{
    struct sigaction cur;

    if (sigaction(sig, NULL, &cur) == 0 && is_ours(&cur))
        sigaction(sig, &reg.old[sig - 1], NULL);
}

static int take_slot(hubsig *hs)
{
    for (int i = 0; i < SLOTS; i++) {
        slot *s = &reg.slots[i];

        if (atomic_load(&s->hs))
            continue;
        atomic_store(&s->mask, 0);
        atomic_store(&s->hs, hs);
        if ((unsigned)i >= atomic_load(&reg.used))
            atomic_store(&reg.used, (unsigned)i + 1);
        hs->slot = i;
        return 0;
    }
    errno = EAGAIN;
    return -1;
}

/* After this, no handler holds or will take hs. */
static void release_slot(hubsig *hs)
{
    slot *s = &reg.slots[hs->slot];

    atomic_store(&s->mask, 0);
    atomic_store(&s->hs, NULL);
    while (atomic_load(&s->inflight))
        sched_yield(); /* a handler on another thread, a few instructions from done */
    hs->slot = -1;
}

static void registry_child(void);

static void lock_registry(void)
{
    pthread_mutex_lock(&reg.lock);
}

static void unlock_registry(void)
{
    pthread_mutex_unlock(&reg.lock);
}

static void register_atfork(void)
{
    pthread_atfork(lock_registry, unlock_registry, registry_child);
}

/* hs now wants gained too: the slot's mask first, then the handler, so a
 * signal that comes in between finds someone or the old disposition. */
static int registry_add(hubsig *hs, uint64_t gained)
{
    uint64_t done = 0, m = gained;
    int rc = 0;

    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&reg.lock);
    if (hs->slot < 0 && take_slot(hs) != 0) {
        pthread_mutex_unlock(&reg.lock);
        return -1;
    }
    atomic_store(&reg.slots[hs->slot].mask, hs->interest | gained);
    while (m && !rc) {
        int sig = take_lowest(&m);

        if (reg.hubs[sig - 1]++ == 0 && install(sig) != 0) {
            reg.hubs[sig - 1]--;
            rc = -1;
        } else {
            done |= bit(sig);
        }
    }
    if (rc) {
        int err = errno;

        atomic_store(&reg.slots[hs->slot].mask, hs->interest);
        while (done) {
            int sig = take_lowest(&done);

            if (--reg.hubs[sig - 1] == 0)
                restore(sig);
        }
        if (!hs->interest)
            release_slot(hs);
        errno = err;
    }
    pthread_mutex_unlock(&reg.lock);
    return rc;
}

/* hs no longer wants lost (hs->interest already says so): the old
 * disposition back first where hs was the last, then the mask. */
static void registry_drop(hubsig *hs, uint64_t lost)
{
    if (hs->slot < 0)
        return;
    pthread_mutex_lock(&reg.lock);
    while (lost) {
        int sig = take_lowest(&lost);

        if (--reg.hubs[sig - 1] == 0)
            restore(sig);
    }
    atomic_store(&reg.slots[hs->slot].mask, hs->interest);
    if (!hs->interest)
        release_slot(hs);
    pthread_mutex_unlock(&reg.lock);
}

/* A forked child has only the thread that forked, and only its hub: every
 * other slot is a dead hub's, and a handler that was running elsewhere is
 * not. Dispositions nobody here wants any more go back. */
static void registry_child(void)
{
    uint64_t mine = tls_hs && tls_hs->slot >= 0 ? tls_hs->interest : 0;

    pthread_mutex_unlock(&reg.lock);
    for (int i = 0; i < SLOTS; i++) {
        slot *s = &reg.slots[i];

        atomic_store(&s->inflight, 0);
        if (atomic_load(&s->hs) != tls_hs) {
            atomic_store(&s->mask, 0);
            atomic_store(&s->hs, NULL);
        }
    }
    for (int sig = 1; sig <= NSIGS; sig++) {
        unsigned now = (mine & bit(sig)) != 0;

        if (reg.hubs[sig - 1] && !now)
            restore(sig);
        reg.hubs[sig - 1] = now;
    }
}

/* -------------------------------------------------------- the hub's side */

static void read_info(hubsig *hs, int sig, gr_siginfo *out)
{
    info_box *b = &hs->info[sig - 1];
    unsigned long w[INFO_WORDS];
    siginfo_t si;

    for (;;) {
        unsigned seq = atomic_load(&b->seq);

        if (seq & 1) {
            sched_yield(); /* a handler writing on another thread */
            continue;
        }
        for (size_t i = 0; i < INFO_WORDS; i++)
            w[i] = atomic_load_explicit(&b->w[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load(&b->seq) == seq)
            break;
    }
    memcpy(&si, w, sizeof si);
    memset(out, 0, sizeof *out);
    out->signo = sig;
    out->code = si.si_signo == sig ? si.si_code : SI_KERNEL;
    if (si.si_signo != sig)
        return; /* never recorded (a second writer skipped its copy) */
    if (sig == SIGCHLD && si.si_code > 0) {
        out->pid = si.si_pid;
        out->uid = si.si_uid;
        out->status = si.si_status;
    } else if (si.si_code == SI_USER || si.si_code == SI_TKILL || si.si_code == SI_QUEUE) {
        out->pid = si.si_pid;
        out->uid = si.si_uid;
    }
    if (si.si_code == SI_QUEUE || si.si_code == SI_TIMER || si.si_code == SI_MESGQ)
        out->value = (intptr_t)si.si_value.sival_ptr;
}

typedef struct handler_call {
    gr_signal_fn fn;
    void *arg;
    gr_siginfo info;
} handler_call;

static void *run_handler(void *p)
{
    handler_call c = *(handler_call *)p;

    free(p);
    c.fn(&c.info, c.arg);
    return NULL;
}

static void spawn_handler(gr_signals *s, const gr_siginfo *info)
{
    handler_call *c = gr__malloc(sizeof *c);
    gr_opts o = {.name = "signal", .flags = GR_DETACHED};

    if (c) {
        *c = (handler_call){s->fn, s->arg, *info};
        if (gr_spawn_opts(run_handler, c, &o) >= 0)
            return;
        free(c);
    }
    gr__warn("signal %d: no green thread for its handler (%s): delivery dropped", info->signo,
             strerror(ENOMEM));
}

static void deliver(hubsig *hs, int sig)
{
    gr_siginfo info;
    int have_info = 0;

    for (gr_signals *s = hs->subs; s; s = s->next) {
        if (!(s->sigs & bit(sig)))
            continue;
        if (s->fn) {
            if (!have_info++)
                read_info(hs, sig, &info);
            spawn_handler(s, &info);
        } else if (!(s->pending & bit(sig))) {
            s->pending |= bit(sig);
            gr__handoff(&s->q, NULL);
        }
    }
}

/* Take what the handler counted since the hub last looked. Runs as the
 * hub's notification, and in gr_signal_next, which may not wait for it. */
static void scan(hubsig *hs)
{
    uint64_t m = hs->interest;

    while (m) {
        int sig = take_lowest(&m);
        unsigned c = atomic_load(&hs->count[sig - 1]);

        if (c != hs->seen[sig - 1]) {
            hs->seen[sig - 1] = c;
            deliver(hs, sig);
        }
    }
}

static void on_notify(void *arg, unsigned bits)
{
    (void)bits;
    scan(arg);
}

/* The hub is going: leave the table (so no handler reaches hs), give the
 * signals back, and cut the subscriptions loose (their owners close them
 * later). */
static void hub_gone(void *arg)
{
    hubsig *hs = arg;
    uint64_t all = hs->interest;

    hs->interest = 0;
    registry_drop(hs, all);
    for (gr_signals *s = hs->subs; s; s = s->next)
        s->hs = NULL;
    if (tls_hs == hs)
        tls_hs = NULL;
    free(hs);
}

/* A forked child: pending signals are not inherited (as the kernel's are
 * not), and the core has forgotten the wake sources. Subscriptions stay,
 * as dispositions do across fork. */
static void hub_forked(void *arg)
{
    hubsig *hs = arg;

    for (int sig = 1; sig <= NSIGS; sig++)
        hs->seen[sig - 1] = atomic_load(&hs->count[sig - 1]);
    for (gr_signals *s = hs->subs; s; s = s->next)
        s->pending = 0;
    if (hs->nopen)
        gr__hub_wake_source(hs->hub, (int)hs->nopen);
}

/* The calling thread's hub's signal state, made on first use. */
static hubsig *this_hub(void)
{
    hubsig *hs = tls_hs;
    gr_hub *h;

    if (!hs) {
        if (!(h = gr_hub_current()))
            return NULL;
        if (!(hs = gr__calloc(1, sizeof *hs))) {
            errno = ENOMEM;
            return NULL;
        }
        hs->hub = h;
        hs->slot = -1;
        if (gr__hub_on_destroy(h, hub_gone, hs) != 0) {
            free(hs);
            return NULL;
        }
        /* From here on hs lives as long as the hub (the hook frees it). */
        if (gr__hub_set_notify(h, on_notify, hs) != 0)
            return NULL;
        tls_hs = hs;
    }
    if (!hs->fork_hooked) {
        if (gr__hub_on_fork(hs->hub, hub_forked, hs) != 0)
            return NULL;
        hs->fork_hooked = 1;
    }
    return hs;
}

/* ------------------------------------------------------- subscriptions */

static int refused(int sig)
{
    return sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE ||
           sig == SIGILL || (sig >= 32 && sig < SIGRTMIN);
}

static int valid_set(uint64_t sigs)
{
    uint64_t m = sigs;

    if (!sigs)
        return 0;
    while (m)
        if (refused(take_lowest(&m)))
            return 0;
    return 1;
}

static gr_signals *subscribe(uint64_t sigs, gr_signal_fn fn, void *arg)
{
    hubsig *hs;
    gr_signals *s;
    uint64_t gained, m;

    if (!valid_set(sigs)) {
        errno = EINVAL;
        return NULL;
    }
    if (!(hs = this_hub()))
        return NULL;
    if (!(s = gr__calloc(1, sizeof *s))) {
        errno = ENOMEM;
        return NULL;
    }
    gained = sigs & ~hs->interest;
    for (m = gained; m;) {
        int sig = take_lowest(&m);

        hs->seen[sig - 1] = atomic_load(&hs->count[sig - 1]);
    }
    if (gained && registry_add(hs, gained) != 0) {
        free(s);
        return NULL;
    }
    hs->interest |= gained;
    for (m = sigs; m;)
        hs->nsubs[take_lowest(&m) - 1]++;
    *s = (gr_signals){NULL, hs->subs, hs, sigs, 0, fn, arg, {0}};
    if (hs->subs)
        hs->subs->prev = s;
    hs->subs = s;
    hs->nopen++;
    gr__hub_wake_source(hs->hub, 1);
    return s;
}

static void unsubscribe(gr_signals *s)
{
    hubsig *hs = s->hs;
    uint64_t lost = 0, m;

    if (s->prev)
        s->prev->next = s->next;
    else
        hs->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    for (m = s->sigs; m;) {
        int sig = take_lowest(&m);

        if (--hs->nsubs[sig - 1] == 0)
            lost |= bit(sig);
    }
    hs->interest &= ~lost;
    hs->nopen--;
    gr__hub_wake_source(hs->hub, -1);
    if (lost)
        registry_drop(hs, lost);
}

gr_signals *gr_signal_open(uint64_t sigs)
{
    return subscribe(sigs, NULL, NULL);
}

gr_signals *gr_signal_handler(uint64_t sigs, gr_signal_fn fn, void *arg)
{
    if (!fn) {
        errno = EINVAL;
        return NULL;
    }
    return subscribe(sigs, fn, arg);
}

int gr_signal_next(gr_signals *s, gr_siginfo *info, int64_t deadline)
{
    int sig;

    if (!s || s->fn || !s->hs || s->hs != tls_hs) {
        errno = EINVAL;
        return -1;
    }
    if (gr__check_cancel() != 0)
        return -1;
    scan(s->hs);
    while (!s->pending) {
        gr__waiter w = {0};

        if (gr__wait_queue(&s->q, &w, deadline, "gr_signal_next") != 0)
            return -1;
    }
    sig = take_lowest(&s->pending);
    if (info)
        read_info(s->hs, sig, info);
    return sig;
}

int gr_signal_close(gr_signals *s)
{
    if (!s || (s->hs && s->hs != tls_hs)) {
        errno = EINVAL;
        return -1;
    }
    if (!gr__wq_empty(&s->q)) {
        errno = EBUSY;
        return -1;
    }
    if (s->hs)
        unsubscribe(s);
    free(s);
    return 0;
}

int gr_signal_wait(uint64_t sigs, gr_siginfo *info, int64_t deadline)
{
    gr_signals *s = gr_signal_open(sigs);
    int sig, err;

    if (!s)
        return -1;
    sig = gr_signal_next(s, info, deadline);
    err = errno;
    gr_signal_close(s);
    errno = err;
    return sig;
}
