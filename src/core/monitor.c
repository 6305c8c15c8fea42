/* The monitor thread: one OS thread per process, started on demand, with
 * two jobs.
 *
 * The blocking monitor (gevent's max_blocking_time). A hub that has not
 * switched for max_blocking_ms while a green thread (or a root context
 * with green threads waiting behind it) runs is reported once per episode:
 * which thread, for how long, and where it is stuck. The monitor samples
 * each hub every quarter of that time, reading two words the hub writes
 * anyway (the running context and the ready queue's head, which moves at
 * every dispatch), so the hub pays nothing for being watched. When it
 * finds a hub stuck it sends the hub's OS thread a real-time signal whose
 * handler takes backtrace(3) of the interrupted stack, on the alternate
 * signal stack, and hands the frames back; the monitor then symbolizes
 * them and reports (GR_REPORT_BLOCKING). backtrace is called once when the
 * monitor starts, so the unwinder is loaded before any handler needs it.
 *
 * Signal-triggered dumps (gr_dump_on_signal): the handler only wakes this
 * thread, which writes the run-info dump as any thread can. */
#define _GNU_SOURCE
#include "layout.h"

#include "grove/debug.h"

#include <execinfo.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define MON_FRAMES 48
#define ANSWER_WAIT_MS 100

/* A hub as the monitor sees it. Sampling state is the monitor's own; the
 * rest is the handshake with the signal handler on the hub's thread. */
struct gr__mon {
    const void *seen_current;
    uint32_t seen_head;
    int64_t since_ns;
    int reported;
    int asked; /* ASK_* (atomic; the futex word) */
    int nframes, first;
    uint32_t head;
    gr_t handle;
    void *frames[MON_FRAMES];
    char name[GR_NAME_MAX + 1];
    atomic_size_t reports;
};

enum { ASK_IDLE, ASK_ASKED, ASK_ANSWERED };

/* The settings, fixed when the first hub is made (gr__monitor_configure),
 * and the thread. Under gr__registry_lock, except the atomics. */
static atomic_int max_ms;
static atomic_int mon_sig;
static int thread_started, wakefd = -1;
static atomic_int dump_sig, dump_fd = -1, dump_wanted;
static struct sigaction dump_old;

static int64_t clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long futex(int *word, int op, int val, const struct timespec *ts)
{
    return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

/* ------------------------------------------------------------ settings */

int gr__monitor_signal_ok(int sig)
{
    return sig == 0 || sig == -1 || (sig >= SIGRTMIN && sig <= SIGRTMAX);
}

static int from_environment(void)
{
    const char *s = getenv("GROVE_MAX_BLOCKING_MS");
    char *end;
    long v;

    if (!s || !*s)
        return 0;
    v = strtol(s, &end, 10);
    if (*end || v <= 0 || v > INT32_MAX) {
        gr__report(GR_REPORT_MISUSE, EINVAL,
                   "GROVE_MAX_BLOCKING_MS=%s is not a positive number of ms: the blocking "
                   "monitor stays off",
                   s);
        return 0;
    }
    return (int)v;
}

static void *monitor_main(void *arg);

/* Under the registry lock. */
static int start_thread(void)
{
    sigset_t all, old;
    pthread_attr_t attr;
    pthread_t t;
    int err;

    if (thread_started)
        return 0;
    if (wakefd < 0 && (wakefd = gr__eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return -1;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* Born with every signal blocked: process signals go to the program's
     * threads, the monitor's own never comes here. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = gr__pthread_create(&t, &attr, monitor_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err) {
        errno = err;
        return -1;
    }
    thread_started = 1;
    return 0;
}

static void on_monitor_signal(int sig, siginfo_t *si, void *uc);

static void install_handler(int sig)
{
    struct sigaction sa;
    void *warm[2];

    backtrace(warm, 2); /* loads the unwinder, which a handler must not */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_monitor_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

void gr__monitor_configure(void)
{
    const gr_config *cfg = gr__config();
    int ms = cfg->max_blocking_ms < 0 ? 0 : cfg->max_blocking_ms;
    int sig = cfg->monitor_signal;

    if (ms == 0 && cfg->max_blocking_ms == 0)
        ms = from_environment();
    if (sig == 0)
        sig = SIGRTMAX - 3;
    atomic_store(&max_ms, ms);
    atomic_store(&mon_sig, sig > 0 ? sig : 0);
    if (!ms)
        return;
    pthread_mutex_lock(&gr__registry_lock);
    if (sig > 0)
        install_handler(sig);
    if (start_thread() != 0)
        gr__report(GR_REPORT_MISUSE, errno, "the blocking monitor could not start: %s",
                   strerror(errno));
    else if (wakefd >= 0)
        eventfd_write(wakefd, 1); /* it may be sleeping without a period */
    pthread_mutex_unlock(&gr__registry_lock);
}

/* Under the registry lock (gr__registry_add, gr__registry_remove). */
void gr__monitor_hub_added(gr_hub *h)
{
    if (atomic_load(&max_ms) > 0 && (h->mon = gr__calloc(1, sizeof *h->mon)))
        atomic_init(&h->mon->reports, 0);
}

/* A late signal (one its thread had blocked) may still run the handler on
 * this thread: it must find no record before the record goes. */
void gr__monitor_hub_removed(gr_hub *h)
{
    struct gr__mon *m = h->mon;

    __atomic_store_n(&h->mon, NULL, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    free(m);
}

size_t gr__monitor_reports(const gr_hub *h)
{
    return h->mon ? atomic_load(&h->mon->reports) : 0;
}

/* ------------------------------------------------------- the handshake */

static uintptr_t interrupted_pc(const void *uc)
{
    const ucontext_t *u = uc;

#if defined(__x86_64__)
    return (uintptr_t)u->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)u->uc_mcontext.pc;
#else
    (void)u;
    return 0;
#endif
}

/* On the stuck hub's thread, on its alternate signal stack. Async-signal-
 * safe but for backtrace(3), whose unwinder was loaded beforehand. */
static void on_monitor_signal(int sig, siginfo_t *si, void *uc)
{
    gr_hub *h = gr__tls_hub;
    struct gr__mon *m = h ? __atomic_load_n(&h->mon, __ATOMIC_RELAXED) : NULL;
    int err = errno;
    uintptr_t pc = interrupted_pc(uc);

    (void)sig;
    (void)si;
    if (!m || __atomic_load_n(&m->asked, __ATOMIC_ACQUIRE) != ASK_ASKED)
        return;
    m->nframes = backtrace(m->frames, MON_FRAMES);
    /* Leave out this handler and the signal trampoline. */
    m->first = m->nframes > 2 ? 2 : 0;
    for (int i = 0; i < m->nframes && i < 8; i++) {
        if ((uintptr_t)m->frames[i] == pc) {
            m->first = i;
            break;
        }
    }
    gr__format_name(h->current, m->name, sizeof m->name);
    m->handle = h->current->handle;
    m->head = h->ready_head;
    __atomic_store_n(&m->asked, ASK_ANSWERED, __ATOMIC_RELEASE);
    futex(&m->asked, FUTEX_WAKE_PRIVATE, 1, NULL);
    errno = err;
}

/* Ask the hub's thread where it stands; wait up to ANSWER_WAIT_MS. Returns
 * 1 with m->frames filled, 0 without an answer. */
static int ask_for_backtrace(gr_hub *h, struct gr__mon *m, int sig)
{
    int64_t until = clock_ns() + (int64_t)ANSWER_WAIT_MS * 1000000;
    int answered;

    __atomic_store_n(&m->asked, ASK_ASKED, __ATOMIC_RELEASE);
    if (pthread_kill(h->os_thread, sig) != 0) {
        __atomic_store_n(&m->asked, ASK_IDLE, __ATOMIC_RELEASE);
        return 0;
    }
    while (__atomic_load_n(&m->asked, __ATOMIC_ACQUIRE) == ASK_ASKED) {
        int64_t left = until - clock_ns();
        struct timespec ts = {left / 1000000000, left % 1000000000};

        if (left <= 0)
            break;
        futex(&m->asked, FUTEX_WAIT_PRIVATE, ASK_ASKED, &ts);
    }
    /* A late answer lands on ASK_IDLE and is ignored (the handler checks). */
    answered = __atomic_exchange_n(&m->asked, ASK_IDLE, __ATOMIC_ACQ_REL) == ASK_ANSWERED;
    return answered;
}

/* ------------------------------------------------------------ sampling */

typedef struct stuck {
    gr_hub *hub; /* for its id and thread only: not touched after the lock */
    uint64_t id;
    int tid;
    int64_t ms;
    gr_t handle;
    char name[GR_NAME_MAX + 1];
    int nframes, why_none;
    void *frames[MON_FRAMES];
} stuck;

enum { BT_OK, BT_NO_SIGNAL, BT_NO_ANSWER };

/* Another thread's words, read as they are: a torn view only delays a
 * report by a period. Not instrumented by ThreadSanitizer on purpose. */
__attribute__((no_sanitize("thread"))) static int sample(const gr_hub *h, const void **cur,
                                                         uint32_t *head)
{
    const gr__g *c = __atomic_load_n(&h->current, __ATOMIC_RELAXED);

    *cur = c;
    *head = __atomic_load_n(&h->ready_head, __ATOMIC_RELAXED);
    /* The hub itself runs (idle in epoll, or its callbacks): not stuck. A
     * root context that runs with no green thread behind it starves none. */
    return c && c != h->hubg && (c != h->root || __atomic_load_n(&h->nlive, __ATOMIC_RELAXED));
}

/* The running thread's name without a signal: its record does not move
 * while it runs. */
__attribute__((no_sanitize("thread"))) static void peek_name(const void *cur, stuck *s)
{
    const gr__g *g = cur;

    gr__format_name(g, s->name, sizeof s->name);
    s->handle = g->handle;
}

/* Under the registry lock: 1 if h has been stuck long enough to report
 * (and fill s). */
static int check_hub(gr_hub *h, int64_t now, int64_t limit_ns, int sig, stuck *s)
{
    struct gr__mon *m = h->mon;
    const void *cur;
    uint32_t head;

    if (!sample(h, &cur, &head)) {
        m->seen_current = NULL;
        m->reported = 0;
        return 0;
    }
    if (cur != m->seen_current || head != m->seen_head) {
        m->seen_current = cur;
        m->seen_head = head;
        m->since_ns = now;
        m->reported = 0;
        return 0;
    }
    if (m->reported || now - m->since_ns < limit_ns)
        return 0;
    memset(s, 0, sizeof *s);
    s->why_none = sig ? BT_NO_ANSWER : BT_NO_SIGNAL;
    if (sig && ask_for_backtrace(h, m, sig)) {
        if (m->head != head)
            return 0; /* it moved on meanwhile: no episode after all */
        s->why_none = BT_OK;
        s->nframes = m->nframes - m->first;
        memcpy(s->frames, m->frames + m->first, (size_t)s->nframes * sizeof(void *));
        memcpy(s->name, m->name, sizeof s->name);
        s->handle = m->handle;
    } else {
        peek_name(cur, s);
    }
    m->reported = 1;
    atomic_fetch_add(&m->reports, 1);
    s->hub = h;
    s->id = h->id;
    s->tid = h->tid;
    s->ms = (clock_ns() - m->since_ns) / 1000000;
    return 1;
}

static void report_stuck(const stuck *s, int sig)
{
    char *text = NULL, **names = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    gr_report r = {.kind = GR_REPORT_BLOCKING, .thread = s->handle, .thread_name = s->name};

    if (!out)
        return;
    fprintf(out,
            "blocking: hub %llu (OS thread %d) has not switched for %lld ms: green thread "
            "\"%s\" (handle %lld) has been running all that time",
            (unsigned long long)s->id, s->tid, (long long)s->ms, s->name, (long long)s->handle);
    if (s->why_none == BT_NO_SIGNAL)
        fprintf(out, " (no backtrace: gr_config.monitor_signal is -1)");
    else if (s->why_none == BT_NO_ANSWER)
        fprintf(out, " (no backtrace: its thread did not answer signal %d; does it block it?)",
                sig);
    else
        fprintf(out, ", at:");
    if (s->nframes > 0)
        names = backtrace_symbols((void *const *)s->frames, s->nframes);
    for (int i = 0; i < s->nframes; i++) {
        if (names)
            fprintf(out, "\n  #%d %s", i, names[i]);
        else
            fprintf(out, "\n  #%d %p", i, s->frames[i]);
    }
    free(names);
    if (fclose(out) == 0) {
        r.message = text;
        gr__report_deliver(&r);
    }
    free(text);
}

#define MAX_STUCK 8

static void check_hubs(void)
{
    int ms = atomic_load(&max_ms), sig = atomic_load(&mon_sig), n = 0;
    int64_t now = clock_ns();
    stuck found[MAX_STUCK];

    pthread_mutex_lock(&gr__registry_lock);
    for (gr_hub *h = gr__registry_head; h && n < MAX_STUCK; h = h->reg_next)
        if (h->mon && check_hub(h, now, (int64_t)ms * 1000000, sig, &found[n]))
            n++;
    pthread_mutex_unlock(&gr__registry_lock);
    for (int i = 0; i < n; i++)
        report_stuck(&found[i], sig);
}

/* ---------------------------------------------------------- the thread */

static void *monitor_main(void *arg)
{
    (void)arg;
    for (;;) {
        int ms = atomic_load(&max_ms);
        int period = ms > 0 ? (ms >= 4 ? ms / 4 : 1) : -1;
        struct pollfd p = {wakefd, POLLIN, 0};
        eventfd_t v;

        if (poll(&p, 1, period) > 0)
            eventfd_read(wakefd, &v);
        if (atomic_exchange(&dump_wanted, 0)) {
            int fd = atomic_load(&dump_fd);

            if (fd >= 0)
                gr_dump_fd(fd, gr_now() + 2000);
        }
        if (ms > 0)
            check_hubs();
    }
    return NULL;
}

/* --------------------------------------------------- dumps on a signal */

static void on_dump_signal(int sig)
{
    int err = errno;

    (void)sig;
    atomic_store(&dump_wanted, 1);
    if (wakefd >= 0)
        eventfd_write(wakefd, 1);
    errno = err;
}

static int dump_sig_ok(int sig)
{
    return sig == 0 || (sig > 0 && sig < NSIG && sig != SIGKILL && sig != SIGSTOP &&
                        sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL &&
                        sig != atomic_load(&mon_sig) && !(sig >= 32 && sig < SIGRTMIN));
}

int gr_dump_on_signal(int sig, int fd)
{
    struct sigaction sa, old;
    int prev, rc = 0;

    if (!dump_sig_ok(sig) || (sig && fd < 0)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&gr__registry_lock);
    if (sig && start_thread() != 0) {
        rc = -1;
        goto out;
    }
    prev = atomic_load(&dump_sig);
    atomic_store(&dump_fd, fd);
    if (sig && sig != prev) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_dump_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, &old) != 0) {
            rc = -1;
            goto out;
        }
    }
    if (prev && sig != prev)
        sigaction(prev, &dump_old, NULL);
    if (sig && sig != prev)
        dump_old = old;
    atomic_store(&dump_sig, sig);
out:
    pthread_mutex_unlock(&gr__registry_lock);
    return rc;
}

/* --------------------------------------------------------------- fork */

/* In a forked child (with the registry lock held since the prepare
 * handler): the monitor thread is the parent's, and so is its eventfd.
 * Start anew if there is work. */
void gr__monitor_after_fork(void)
{
    if (wakefd >= 0)
        close(wakefd);
    wakefd = -1;
    thread_started = 0;
    if (atomic_load(&max_ms) > 0 || atomic_load(&dump_sig))
        start_thread();
}
