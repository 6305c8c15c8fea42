/* The hub: one per OS thread. It owns the ready queue, the timers, the
 * poller and the stacks, and runs on a stack of its own whenever no green
 * thread can run (or every GR__BUDGET switches):
 *
 *   loop: read the clock -> fire due timers -> run posted callbacks
 *         -> nothing ready? settle gr_main/deadlock, else block in epoll
 *            until the next timer -> dispatch the first ready thread
 *
 * Threads then switch straight to one another through the ready queue;
 * after GR__BUDGET such switches the next one goes through the hub.
 */
#define _GNU_SOURCE
#include "layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#if defined(GR__ASAN)
#include <sanitizer/asan_interface.h>
#endif
#if defined(GR__TSAN)
#include <sanitizer/tsan_interface.h>
#endif

/* How often the hub gives the memory of surplus pooled stacks back, and
 * how many it keeps warm at least. */
#define GR__TRIM_EVERY_MS 1000
#define GR__WARM_MIN 16

__thread gr_hub *gr__tls_hub __attribute__((tls_model("initial-exec")));

static pthread_key_t hub_key;
static pthread_once_t hub_key_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int hubs_alive;
gr_config gr__cfg = {.stack_size = GR_STACK_DEFAULT};
#define config gr__cfg

/* ---------------------------------------------------------------- time */

static int64_t clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void gr__update_now(gr_hub *h)
{
    h->now_ns = clock_ns();
    h->now = h->now_ns / 1000000;
}

int64_t gr_now(void)
{
    gr_hub *h = gr__tls_hub;

    return h ? h->now : clock_ns() / 1000000;
}

int64_t gr_now_update(void)
{
    gr_hub *h = gr__tls_hub;

    if (!h)
        return clock_ns() / 1000000;
    gr__update_now(h);
    return h->now;
}

/* --------------------------------------------------------------- timers */

void gr__fire_timers(gr_hub *h)
{
    gr__timer *t;

    while ((t = gr__timer_min(&h->timers)) && t->when <= h->now) {
        gr__g *g = (gr__g *)(void *)((char *)t - offsetof(gr__g, timer));

        gr__timer_disarm(&h->timers, t);
        if (g->state == GR__NEW) {
            h->later--;
            gr__ready(h, g); /* gr_spawn_at's start time */
        } else if (g->state == GR__PARKED && g->park_deadline >= 0) {
            /* A lazy timer fires early: the park it was kept for ends later. */
            if (g->park_deadline <= h->now)
                gr__unpark(g, ETIMEDOUT);
            else
                gr__timer_arm(&h->timers, t, g->park_deadline);
        }
        /* Otherwise a timer left armed by a thread that woke earlier. */
    }
}

/* ------------------------------------------------------------ deadlock */

static void report_deadlock(gr_hub *h)
{
    char text[4096];
    gr_report r = {.kind = GR_REPORT_DEADLOCK, .message = text, .err = EDEADLK};
    size_t shown = 0;
    int n;

    n = snprintf(text, sizeof text,
                 "deadlock: %zu green thread(s) blocked and nothing can ever wake them "
                 "(no timers, no file descriptors, no gr_hub_ref):",
                 h->nlive);
    for (uint32_t i = 0; i < h->nslots && shown < 20 && n > 0 && (size_t)n < sizeof text; i++) {
        gr__g *g = h->slots[i].g;
        char name[GR_NAME_MAX + 1];

        if (!g || g->kind != GR__KIND_GREEN || g->state != GR__PARKED)
            continue;
        gr__format_name(g, name, sizeof name);
        n += snprintf(text + n, sizeof text - (size_t)n, "\n  %s [%s]", name,
                      g->wait_what ? g->wait_what : "?");
        shown++;
    }
    gr__report_deliver(&r);
}

static int nothing_can_happen(gr_hub *h)
{
    /* Left-over lazy timers do not count: they wake nobody. */
    return h->timed_waiters == 0 && h->later == 0 && h->nfd_waiters == 0 && h->nfd_cbs == 0 &&
           atomic_load(&h->refs) == 0 && atomic_load(&h->wake_sources) == 0 &&
           !atomic_load(&h->posted) && !atomic_load(&h->notified);
}

/* Called with nothing ready. Wakes the root when gr_main may return, or
 * with EDEADLK when nothing could ever wake anyone (then the root is the
 * one parked: it can only be running, ready or parked). Returns 1 if it
 * woke the root. */
static int settle(gr_hub *h)
{
    if (h->root->state != GR__PARKED)
        return 0;
    if (h->root_draining && h->nlive == 0 && atomic_load(&h->refs) == 0 &&
        !atomic_load(&h->posted)) {
        gr__unpark(h->root, 0);
        return 1;
    }
    if (nothing_can_happen(h)) {
        gr__unpark(h->root, EDEADLK);
        return 1;
    }
    return 0;
}

/* -------------------------------------------------------------- polling */

static void on_event(void *ctx, int fd, int ready)
{
    gr__fd_event(ctx, fd, ready);
}

/* Block until an fd edge, a post or timeout_ns (-1: forever). The sleeping
 * flag, set and cleared under the lock, tells posters whether the eventfd
 * must be written: only a sleeping hub needs the system call. */
static void poll_blocking(gr_hub *h, int64_t timeout_ns)
{
    pthread_mutex_lock(&h->lock);
    if (atomic_load(&h->posted) || atomic_load(&h->notified)) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    h->sleeping = 1;
    pthread_mutex_unlock(&h->lock);
    gr__backend_poll(&h->backend, timeout_ns, on_event, h);
    pthread_mutex_lock(&h->lock);
    h->sleeping = 0;
    h->wake_sent = 0;
    pthread_mutex_unlock(&h->lock);
}

/* Pooled stacks kept warm: a quarter of the live population's worth, and
 * a few more. */
static size_t warm_keep(const gr_hub *h)
{
    return h->nlive / 4 > GR__WARM_MIN ? h->nlive / 4 : GR__WARM_MIN;
}

static int64_t idle_timeout_ns(gr_hub *h)
{
    gr__timer *t = gr__timer_min(&h->timers);
    int64_t ns = -1, trim;

    if (t) {
        ns = t->when * 1000000 - h->now_ns;
        ns = ns > 0 ? ns : 1;
    }
    /* Wake for the next trim while there is one to do, so that a hub gone
     * idle after a burst gives its stacks' memory back too. */
    if (gr__stack_surplus(&h->stacks, warm_keep(h))) {
        trim = (h->trimmed_at + GR__TRIM_EVERY_MS) * 1000000 - h->now_ns;
        trim = trim > 0 ? trim : 1;
        ns = ns < 0 || trim < ns ? trim : ns;
    }
    return ns;
}

static void look_around(gr_hub *h)
{
    gr__update_now(h);
    gr__fire_timers(h);
    if (atomic_load_explicit(&h->posted, memory_order_relaxed))
        gr__posts_run(h);
    if (atomic_load_explicit(&h->notified, memory_order_relaxed))
        gr__notified_run(h);
}

/* Before sleeping, poll for up to spin_ns (never past the next timer).
 * Returns 1 when there is work: a thread made ready, or a post. */
static int spin_for_work(gr_hub *h)
{
    gr__timer *t = gr__timer_min(&h->timers);
    int64_t until = h->now_ns + h->spin_ns;

    if (t && t->when * 1000000 < until)
        until = t->when * 1000000;
    while (h->now_ns < until) {
        gr__backend_poll(&h->backend, 0, on_event, h);
        if (!gr__ready_empty(h) || atomic_load_explicit(&h->posted, memory_order_relaxed) ||
            atomic_load_explicit(&h->notified, memory_order_relaxed))
            return 1;
        gr__update_now(h);
    }
    return 0;
}

static void hub_pass(gr_hub *h)
{
    look_around(h);
    if (gr__ready_empty(h) && !settle(h)) {
        if (!h->spin_ns || !spin_for_work(h))
            poll_blocking(h, idle_timeout_ns(h));
        look_around(h);
    } else if (h->nfd_waiters || h->nfd_cbs) {
        gr__backend_poll(&h->backend, 0, on_event, h);
    }
    /* Give surplus pooled stacks' memory back, looking once a second: a
     * server whose threads come and go with each request (its idle
     * connections hold none) would otherwise give pages back and fault them
     * in again all the time. */
    if (h->now - h->trimmed_at >= GR__TRIM_EVERY_MS) {
        gr__stack_trim(&h->stacks, warm_keep(h));
        h->trimmed_at = h->now;
    }
}

static gr__ctx *hub_loop(void *arg)
{
    gr_hub *h = gr__tls_hub;

    (void)arg;
#if defined(GR__ASAN)
    __sanitizer_finish_switch_fiber(NULL, &h->switch_from->asan_bottom, &h->switch_from->asan_size);
#endif
#if defined(GR__TSAN)
    gr__tsan_resumed(h);
#endif
    for (;;) {
        gr__g *next;

        hub_pass(h);
        if (!(next = gr__ready_pop(h)))
            continue;
        h->dispatched += h->ready_head - h->pass_mark;
        h->pass_mark = h->ready_head;
        gr__switch(h, h->hubg, next);
    }
    __builtin_unreachable(); /* the hub is freed, never finished */
}

/* ------------------------------------------------------------ lifetime */

static void hub_key_destructor(void *p)
{
    gr_hub *h = p;

    if (h && gr__tls_hub == h && h->current == h->root)
        gr__hub_destroy(h);
}

/* Locks another OS thread may hold at the fork are taken first, so the
 * child does not inherit them locked; then the child rebuilds its hub
 * (fork.c). Only the forking thread exists in the child, and so does only
 * its hub. */
static void fork_prepare(void)
{
    pthread_mutex_lock(&config_lock);
    pthread_mutex_lock(&gr__registry_lock);
    if (gr__tls_hub)
        pthread_mutex_lock(&gr__tls_hub->lock);
}

static void fork_parent(void)
{
    if (gr__tls_hub)
        pthread_mutex_unlock(&gr__tls_hub->lock);
    pthread_mutex_unlock(&gr__registry_lock);
    pthread_mutex_unlock(&config_lock);
}

static void fork_child(void)
{
    fork_parent();
    atomic_store(&hubs_alive, gr__tls_hub != NULL);
    gr__registry_after_fork(gr__tls_hub);
    gr__monitor_after_fork();
    if (gr__tls_hub)
        gr__hub_after_fork(gr__tls_hub);
}

static void make_hub_key(void)
{
    pthread_key_create(&hub_key, hub_key_destructor);
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static gr__g *new_context(gr_hub *h, int kind)
{
    gr__g *g = gr__calloc(1, sizeof *g);

    if (g) {
        g->kind = (uint8_t)kind;
        g->timeout_eff = -1;
        g->stack.lo = (char *)&h->root_canary;
        g->stack.guarded = 1; /* not ours to check */
    }
    return g;
}

static int hub_init(gr_hub *h)
{
    uintptr_t e;

    h->free_slot = GR__NO_SLOT;
    h->backend.fd = -1;
    h->wakefd = -1;
    h->root_canary = GR__STACK_CANARY;
    h->errno_loc = &errno;
    gr__stack_pool_init(&h->stacks, config.stack_guard);
    if (pthread_mutex_init(&h->lock, NULL) != 0)
        return -1;
    if (!(h->root = new_context(h, GR__KIND_ROOT)) || !(h->hubg = new_context(h, GR__KIND_HUB)))
        return -1;
    h->root->state = GR__RUNNABLE;
    h->current = h->root;
    if (gr__slot_alloc(h, h->root) != 0 || gr__ready_reserve(h, 2) != 0 ||
        gr__timer_reserve(&h->timers, 2) != 0)
        return -1;
    if (gr__backend_init(&h->backend) != 0)
        return -1;
    h->wakefd = gr__eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->wakefd < 0 || gr__backend_add(&h->backend, h->wakefd) != 0)
        return -1;
    if (!(e = gr__stack_get(&h->stacks, config.stack_size)))
        return -1;
    gr__stack_from_entry(e, config.stack_size, &h->hubg->stack);
    gr__ctx_init(&h->hubg->ctx);
    h->hubg->entry = hub_loop;
    h->hubg->start_top = h->hubg->stack.lo + h->hubg->stack.size;
#if defined(GR__ASAN)
    h->hubg->asan_bottom = h->hubg->stack.lo + GR__STACK_RESERVED;
    h->hubg->asan_size = h->hubg->stack.size - GR__STACK_RESERVED;
#endif
#if defined(GR__TSAN)
    h->root->tsan_fiber = __tsan_get_current_fiber(); /* the thread's own */
    gr__tsan_fiber_new(h->hubg);
#endif
    h->spin_ns =
        config.idle_spin_us < 0
            ? 0
            : (int64_t)(config.idle_spin_us ? config.idle_spin_us : GR_IDLE_SPIN_DEFAULT_US) * 1000;
    gr__update_now(h);
    return gr__overflow_trap_init(h);
}

gr_hub *gr__hub_create(void)
{
    gr_hub *h;
    int err;

    pthread_mutex_lock(&config_lock);
    if (atomic_fetch_add(&hubs_alive, 1) == 0)
        gr__monitor_configure(); /* the configuration is fixed from now on */
    pthread_mutex_unlock(&config_lock);
    pthread_once(&hub_key_once, make_hub_key);
    if (!(h = gr__calloc(1, sizeof *h))) {
        atomic_fetch_sub(&hubs_alive, 1);
        errno = ENOMEM;
        return NULL;
    }
    gr__tls_hub = h;
    if (hub_init(h) != 0) {
        err = errno ? errno : ENOMEM;
        gr__hub_destroy(h);
        errno = err;
        return NULL;
    }
    pthread_setspecific(hub_key, h);
    gr__registry_add(h);
    return h;
}

gr_hub *gr_hub_current(void)
{
    return gr__hub_get();
}

void gr__record_extras_free(gr__g *g)
{
    gr__exit_cb *cb;

    while ((cb = g->exit_cbs)) {
        g->exit_cbs = cb->next;
        free(cb);
    }
    free(g->locals);
    g->locals = NULL;
}

/* Called from the root context. Green threads still alive are abandoned:
 * their stacks are unmapped without running them again. */
int gr__hub_on_destroy(gr_hub *h, void (*fn)(void *arg), void *arg)
{
    gr__hub_hook *k = gr__malloc(sizeof *k);

    if (!k) {
        errno = ENOMEM;
        return -1;
    }
    *k = (gr__hub_hook){h->on_destroy, fn, arg};
    h->on_destroy = k;
    return 0;
}

static void run_destroy_hooks(gr_hub *h)
{
    gr__hub_hook *k;

    while ((k = h->on_destroy)) {
        h->on_destroy = k->next;
        k->fn(k->arg);
        free(k);
    }
    while ((k = h->on_fork)) {
        h->on_fork = k->next;
        free(k);
    }
}

void gr__hub_destroy(gr_hub *h)
{
    gr__registry_remove(h);  /* first: no other thread may look at it afterwards */
    gr__hub_wakes_settle(h); /* another thread may be about to write wakefd */
    run_destroy_hooks(h);
    gr__overflow_trap_fini(h);
    for (uint32_t i = 0; i < h->nslots; i++) {
        if (h->slots[i].g)
            gr__record_extras_free(h->slots[i].g);
#if defined(GR__TSAN)
        if (h->slots[i].g && h->slots[i].g->kind == GR__KIND_GREEN)
            gr__tsan_fiber_drop(h, h->slots[i].g);
#endif
    }
#if defined(GR__TSAN)
    if (h->hubg)
        gr__tsan_fiber_drop(h, h->hubg);
#endif
    gr__posts_fini(h);
    gr__fds_fini(h);
    gr__timer_heap_fini(&h->timers);
    if (h->wakefd >= 0)
        close(h->wakefd);
    gr__backend_fini(&h->backend);
    gr__stack_pool_fini(&h->stacks);
    pthread_mutex_destroy(&h->lock);
    free(h->slots);
    free(h->ready);
    free(h->root);
    free(h->hubg);
    free(h);
    gr__tls_hub = NULL;
    pthread_setspecific(hub_key, NULL);
    atomic_fetch_sub(&hubs_alive, 1);
}

/* ------------------------------------------------------------- gr_main */

static void kill_all(gr_hub *h)
{
    for (uint32_t i = 0; i < h->nslots; i++) {
        gr__g *g = h->slots[i].g;

        if (g && g->kind == GR__KIND_GREEN && g->state != GR__DONE)
            gr_kill(g->handle);
    }
}

/* Park the root until every green thread has finished, killing them all
 * the first time nothing could ever wake them. Returns 1 if that happened. */
static int drain(gr_hub *h)
{
    int deadlocked = 0;

    h->root_draining = 1;
    while (h->nlive > 0 || atomic_load(&h->refs) > 0 || atomic_load(&h->posted)) {
        if (gr__park(-1, "gr_main") != 0 && errno == EDEADLK) {
            if (!deadlocked)
                report_deadlock(h);
            deadlocked = 1;
            kill_all(h);
        }
    }
    h->root_draining = 0;
    return deadlocked;
}

int gr_main(gr_fn fn, void *arg, void **result)
{
    gr_hub *h = gr__tls_hub;
    int deadlocked = 0;
    gr_t g;

    if (!fn || (h && (h->current != h->root || h->in_main))) {
        errno = EINVAL;
        return -1;
    }
    if (!(h = gr__hub_get()))
        return -1;
    h->in_main = 1;
    if ((g = gr_spawn(fn, arg)) < 0) {
        int err = errno;

        gr__hub_destroy(h);
        errno = err;
        return -1;
    }
    /* The join normally finishes; on a deadlock it fails, everything is
     * killed, and once all have unwound the result is there to take. */
    while (gr_join(g, result, -1) != 0) {
        if (errno != EDEADLK) /* cannot happen: the root is never killed */
            break;
        if (!deadlocked)
            report_deadlock(h);
        deadlocked = 1;
        kill_all(h);
    }
    deadlocked |= drain(h);
    gr__hub_destroy(h);
    if (deadlocked) {
        errno = EDEADLK;
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------- monitoring */

int gr_stats_get(gr_stats *st)
{
    gr_hub *h = gr__tls_hub;

    if (!st) {
        errno = EINVAL;
        return -1;
    }
    memset(st, 0, sizeof *st);
    if (!h)
        return 0;
    st->threads = h->nlive;
    st->finished = h->nfinished;
    st->ready = h->ready_tail - h->ready_head;
    st->timers = h->timed_waiters + h->later;
    st->fd_waiters = h->nfd_waiters;
    st->stacks_mapped = h->stacks.mapped;
    st->stacks_guarded = h->stacks.guarded;
    st->stacks_free = gr__stack_pooled(&h->stacks);
    st->switches = h->dispatched + (h->ready_head - h->pass_mark);
    st->blocking_reports = gr__monitor_reports(h);
    return 0;
}

int gr_configure(const gr_config *cfg)
{
    int rc = 0;

    if (!cfg ||
        (cfg->stack_size && (cfg->stack_size < GR_STACK_MIN || cfg->stack_size > GR_STACK_MAX)) ||
        cfg->stack_guard < GR_GUARD_AUTO || cfg->stack_guard > GR_GUARD_NEVER ||
        cfg->idle_spin_us < -1 || cfg->idle_spin_us > GR_IDLE_SPIN_MAX_US ||
        cfg->max_blocking_ms < -1 || !gr__monitor_signal_ok(cfg->monitor_signal)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&config_lock);
    if (atomic_load(&hubs_alive) > 0) {
        errno = EBUSY;
        rc = -1;
    } else {
        config = *cfg;
        config.stack_size =
            gr__stack_round(config.stack_size ? config.stack_size : GR_STACK_DEFAULT);
    }
    pthread_mutex_unlock(&config_lock);
    return rc;
}
