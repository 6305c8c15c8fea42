/* Green threads: spawn, run, finish, join, kill, detach; the handle table. */
#include "layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(GR__ASAN)
#include <sanitizer/asan_interface.h>
#endif
#if defined(GR__TSAN)
#include <sanitizer/tsan_interface.h>
#endif

/* ------------------------------------------------------------- handles
 * A handle is (generation << 32 | slot). A slot's generation moves on each
 * time it is reused, so an old handle never names a new thread. */

static inline int slot_alloc(gr_hub *h, gr__g *g)
{
    uint32_t i;
    gr__slot *e;

    if (h->free_slot != GR__NO_SLOT) {
        i = h->free_slot;
        h->free_slot = h->slots[i].next_free;
    } else {
        if (h->nslots == h->capslots) {
            uint32_t cap = h->capslots ? 2 * h->capslots : 256;
            gr__slot *v = gr__realloc(h->slots, cap * sizeof *v);

            if (!v) {
                errno = ENOMEM;
                return -1;
            }
            h->slots = v;
            h->capslots = cap;
        }
        i = h->nslots++;
        h->slots[i].gen = 0;
    }
    e = &h->slots[i];
    e->gen = (e->gen + 1) & 0x7fffffff;
    if (!e->gen)
        e->gen = 1;
    e->g = g;
    g->slot = i;
    g->handle = (gr_t)((uint64_t)e->gen << 32 | i);
    return 0;
}

int gr__slot_alloc(gr_hub *h, gr__g *g)
{
    return slot_alloc(h, g);
}

void gr__slot_free(gr_hub *h, uint32_t i)
{
    h->slots[i].g = NULL;
    h->slots[i].next_free = h->free_slot;
    h->free_slot = i;
}

gr__g *gr__lookup(gr_hub *h, gr_t handle)
{
    uint32_t i = (uint32_t)handle;
    gr__slot *e;

    if (!h || handle <= 0 || i >= h->nslots)
        return NULL;
    e = &h->slots[i];
    if (!e->g || e->gen != (uint32_t)(handle >> 32))
        return NULL;
    return e->g;
}

void gr__release(gr_hub *h, gr__g *g)
{
    h->nfinished--;
#if defined(GR__TSAN)
    gr__tsan_fiber_drop(h, g);
#endif
    gr__slot_free(h, g->slot);
    gr__stack_put(&h->stacks, &g->stack);
}

/* --------------------------------------------------------------- life */

static void run_exit_cbs(gr__g *g)
{
    gr__exit_cb *cb;

    /* One at a time from the head, so a callback may add more. */
    while ((cb = g->exit_cbs)) {
        gr_exit_fn fn = cb->fn;
        void *arg = cb->arg;

        g->exit_cbs = cb->next;
        if (!g->exit_cbs)
            g->exit_cbs_tail = NULL;
        free(cb);
        fn(g->handle, g->result, arg);
    }
}

static gr__ctx *finish(gr_hub *h, gr__g *g)
{
    /* Its record (and timer) will be reused with the stack. */
    if (g->timer.idx)
        gr__timer_disarm(&h->timers, &g->timer);
    if (g->exit_cbs)
        run_exit_cbs(g);
    if (g->locals)
        gr__locals_destroy(g);
    g->state = GR__DONE;
    h->nlive--;
    h->nfinished++;
    if (g->joiners.head_)
        g->collectors = (uint32_t)gr__wake_all(&g->joiners, NULL, 0);
    /* Watches take no result: they leave no collector behind, and
     * gr__wake_all unlinks them all before the record may go. */
    if (g->watchers.head_)
        gr__wake_all(&g->watchers, NULL, 0);
    /* Nothing runs between this release and the switch below, so the stack
     * cannot be handed out while we are still on it. */
    if (g->detached && !g->collectors)
        gr__release(h, g);
    return gr__leave(h, g);
}

/* Runs on the thread's own stack, started by gr__ctx_start; returning hands
 * the processor to the context it names. Not instrumented by TSan: its own
 * return comes after the switch to the next context's fiber. */
static GR__NO_TSAN gr__ctx *green_entry(void *arg)
{
    gr__g *g = arg;
    gr_hub *h = gr__tls_hub;

#if defined(GR__ASAN)
    __sanitizer_finish_switch_fiber(NULL, &h->switch_from->asan_bottom, &h->switch_from->asan_size);
#endif
#if defined(GR__TSAN)
    gr__tsan_resumed(h);
#endif
    *h->errno_loc = 0;
    g->ran = !g->cancelled;
    g->result = g->ran ? g->fn(g->arg) : GR_CANCELED;
#if defined(GR__TSAN)
    {
        gr__ctx *next = finish(h, g);

        __tsan_switch_to_fiber(h->current->tsan_fiber, 0);
        return next;
    }
#else
    return finish(h, g);
#endif
}

static gr__g *green_new(gr_hub *h, gr_fn fn, void *arg, const gr_opts *opts, size_t size)
{
    uintptr_t e;
    char *lo;
    gr__g *g;

    /* Room in the ready queue and the timer heap for every thread, the
     * root and this one, so that waking and parking never fail. */
    if (GR__UNLIKELY(h->nlive + 2 > (size_t)h->ready_mask + 1 || h->nlive + 2 > h->timers.cap) &&
        (gr__ready_reserve(h, h->nlive + 2) != 0 ||
         gr__timer_reserve(&h->timers, h->nlive + 2) != 0))
        return NULL;
    if (!(e = gr__stack_get(&h->stacks, size)))
        return NULL;
    /* Scalars, not a gr__stack copied whole: see gr__stack_get. */
    lo = (char *)(e & ~GR__STACK_GUARDED_BIT);
    g = gr__record_at(lo, size);
    /* Field by field: a spawn should not pay for clearing the whole record. */
    g->state = GR__NEW;
    g->cancelled = 0;
    g->shield = 0;
    g->deaf = 0;
    g->ran = 0;
    g->detached = opts && (opts->flags & GR_DETACHED);
    g->kind = GR__KIND_GREEN;
    g->fn = fn;
    g->arg = arg;
    g->timer.idx = 0;
    g->park_deadline = -1;
    g->qwait = NULL;
    g->nfdw = 0;
    g->joiners.head_ = g->joiners.tail_ = NULL;
    g->watchers.head_ = g->watchers.tail_ = NULL;
    g->nwatches = 0;
    g->collectors = 0;
    g->timeout_eff = -1;
    g->timeout = NULL;
    g->exit_cbs = g->exit_cbs_tail = NULL;
    g->locals = NULL;
    g->stack.lo = lo;
    g->stack.size = size;
    g->stack.guarded = (e & GR__STACK_GUARDED_BIT) != 0;
    g->name[0] = '\0';
    if (slot_alloc(h, g) != 0) {
        gr__stack_put(&h->stacks, &g->stack);
        return NULL;
    }
    if (opts && opts->name) {
        strncpy(g->name, opts->name, GR_NAME_MAX);
        g->name[GR_NAME_MAX] = '\0';
    }
    gr__ctx_init(&g->ctx);
    g->entry = green_entry;
    g->start_top = (char *)g;
#if defined(GR__ASAN)
    g->asan_fake = NULL;
    g->asan_bottom = lo + GR__STACK_RESERVED;
    g->asan_size = (size_t)((char *)g - lo) - GR__STACK_RESERVED;
#endif
#if defined(GR__TSAN)
    gr__tsan_fiber_new(g);
#endif
    h->nlive++;
    return g;
}

static int check_opts(const gr_opts *opts, size_t *size)
{
    *size = gr__config()->stack_size;
    if (!opts)
        return 0;
    if (opts->flags & ~GR_DETACHED)
        return -1;
    if (opts->stack_size) {
        if (opts->stack_size < GR_STACK_MIN || opts->stack_size > GR_STACK_MAX)
            return -1;
        *size = gr__stack_round(opts->stack_size);
    }
    return 0;
}

gr_t gr_spawn_opts(gr_fn fn, void *arg, const gr_opts *opts)
{
    size_t size;
    gr_hub *h;
    gr__g *g;

    if (!fn || check_opts(opts, &size) != 0) {
        errno = EINVAL;
        return -1;
    }
    if (!(h = gr__hub_get()) || !(g = green_new(h, fn, arg, opts, size)))
        return -1;
    gr__ready(h, g);
    return g->handle;
}

gr_t gr_spawn(gr_fn fn, void *arg)
{
    gr_hub *h;
    gr__g *g;

    if (!fn) {
        errno = EINVAL;
        return -1;
    }
    if (!(h = gr__hub_get()) || !(g = green_new(h, fn, arg, NULL, gr__config()->stack_size)))
        return -1;
    gr__ready(h, g);
    return g->handle;
}

gr_t gr_spawn_at(int64_t when, gr_fn fn, void *arg, const gr_opts *opts)
{
    size_t size;
    gr_hub *h;
    gr__g *g;

    if (!fn || when < 0 || check_opts(opts, &size) != 0) {
        errno = EINVAL;
        return -1;
    }
    if (!(h = gr__hub_get()) || !(g = green_new(h, fn, arg, opts, size)))
        return -1;
    if (when <= gr_now_update()) {
        gr__ready(h, g);
        return g->handle;
    }
    /* Stays NEW, out of the ready queue, until the timer makes it ready. */
    if (gr__timer_arm(&h->timers, &g->timer, when) == 0) {
        h->later++;
    } else {
        h->nlive--;
        h->nfinished++;
        gr__release(h, g);
        return -1;
    }
    return g->handle;
}

/* ------------------------------------------------------ joining & co */

gr__g *gr__lookup_green(gr_hub *h, gr_t handle)
{
    gr__g *g = gr__lookup(h, handle);

    if (!g) {
        errno = ESRCH;
        return NULL;
    }
    if (g->kind != GR__KIND_GREEN) {
        errno = EINVAL;
        return NULL;
    }
    return g;
}

static void take_result(gr_hub *h, gr__g *g, void **result)
{
    if (result)
        *result = g->result;
    if (g->collectors == 0)
        gr__release(h, g);
}

int gr_join(gr_t handle, void **result, int64_t deadline)
{
    gr_hub *h = gr__hub_peek();
    gr__g *g = gr__lookup(h, handle);
    gr__waiter w;

    if (!g) {
        errno = ESRCH;
        return -1;
    }
    if (g == h->current) {
        gr__warn("a green thread cannot join itself (gr_join fails with EDEADLK)");
        errno = EDEADLK;
        return -1;
    }
    if (g->kind != GR__KIND_GREEN || g->detached) {
        errno = EINVAL;
        return -1;
    }
    if (g->state == GR__DONE) {
        take_result(h, g, result);
        return 0;
    }
    if (gr__wait_queue(&g->joiners, &w, deadline, "join") != 0)
        return -1;
    /* finish() counted us among the collectors. */
    g->collectors--;
    take_result(h, g, result);
    return 0;
}

int gr_kill(gr_t handle)
{
    gr_hub *h = gr__hub_peek();
    gr__g *g = gr__lookup_green(h, handle);

    if (!g)
        return -1;
    if (g->state == GR__DONE || g->cancelled)
        return 0;
    g->cancelled = 1;
    if (g->state == GR__PARKED) {
        /* A shielded or deaf wait goes on; the kill waits for its end. */
        if (!g->shield && !g->deaf)
            gr__unpark(g, ECANCELED);
    } else if (g->state == GR__NEW) {
        /* Run it now: it will see it is cancelled and finish at once. */
        gr__timer_disarm(&h->timers, &g->timer);
        h->later--;
        gr__ready(h, g);
    }
    return 0;
}

int gr_detach(gr_t handle)
{
    gr_hub *h = gr__hub_peek();
    gr__g *g = gr__lookup_green(h, handle);

    if (!g)
        return -1;
    if (g->detached) {
        errno = EINVAL;
        return -1;
    }
    g->detached = 1;
    if (g->state == GR__DONE && !g->collectors)
        gr__release(h, g);
    return 0;
}

gr_t gr_self(void)
{
    gr__g *g = gr__running(EPERM);

    return g ? g->handle : -1;
}

int gr_on_exit(gr_t handle, gr_exit_fn fn, void *arg)
{
    gr_hub *h = gr__hub_peek();
    gr__g *g;
    gr__exit_cb *cb;

    if (!fn) {
        errno = EINVAL;
        return -1;
    }
    if (!(g = gr__lookup_green(h, handle)))
        return -1;
    if (g->state == GR__DONE) {
        fn(handle, g->result, arg);
        return 0;
    }
    if (!(cb = gr__malloc(sizeof *cb))) {
        errno = ENOMEM;
        return -1;
    }
    *cb = (gr__exit_cb){NULL, fn, arg};
    if (g->exit_cbs_tail)
        g->exit_cbs_tail->next = cb;
    else
        g->exit_cbs = cb;
    g->exit_cbs_tail = cb;
    return 0;
}

/* Async-signal-safe: the stack-overflow reporter uses it. */
size_t gr__format_name(const gr__g *g, char *buf, size_t len)
{
    char tmp[GR_NAME_MAX + 16];
    size_t n = 0;

    if (g->name[0]) {
        while (g->name[n] && n < sizeof tmp - 1) {
            tmp[n] = g->name[n];
            n++;
        }
    } else if (g->kind != GR__KIND_GREEN) {
        const char *s = g->kind == GR__KIND_ROOT ? "root" : "hub";

        while (s[n]) {
            tmp[n] = s[n];
            n++;
        }
    } else {
        char digits[12];
        size_t d = 0;
        uint32_t v = g->slot;

        do
            digits[d++] = (char)('0' + v % 10);
        while ((v /= 10));
        tmp[n++] = 'g';
        while (d)
            tmp[n++] = digits[--d];
    }
    if (len == 0)
        return n;
    if (n >= len)
        n = len - 1;
    memcpy(buf, tmp, n);
    buf[n] = '\0';
    return n;
}

int gr_name(gr_t handle, char *buf, size_t len)
{
    gr__g *g = gr__lookup(gr__hub_peek(), handle);

    if (!buf || !len) {
        errno = EINVAL;
        return -1;
    }
    if (!g) {
        errno = ESRCH;
        return -1;
    }
    gr__format_name(g, buf, len);
    return 0;
}

/* ----------------------------------------------------------- inspection */

static int info_state(const gr_hub *h, const gr__g *g)
{
    if (g == h->current)
        return GR_THREAD_RUNNING;
    switch (g->state) {
    case GR__NEW:
        return GR_THREAD_NEW;
    case GR__PARKED:
        return GR_THREAD_BLOCKED;
    case GR__DONE:
        return GR_THREAD_FINISHED;
    default:
        return GR_THREAD_READY;
    }
}

int gr_thread_info_get(gr_t handle, gr_thread_info *info)
{
    gr_hub *h = gr__hub_peek();
    gr__g *g = gr__lookup(h, handle);

    if (!info) {
        errno = EINVAL;
        return -1;
    }
    if (!g || g->kind == GR__KIND_HUB || g->state == GR__GONE) {
        errno = ESRCH;
        return -1;
    }
    memset(info, 0, sizeof *info);
    info->state = info_state(h, g);
    info->killed = g->cancelled;
    info->started = g->kind == GR__KIND_ROOT || g->ran;
    info->detached = g->detached;
    info->deadline = -1;
    if (info->state == GR_THREAD_FINISHED) {
        info->result = g->result;
    } else if (info->state == GR_THREAD_BLOCKED) {
        info->wait = g->wait_what;
        info->deadline = g->park_deadline;
    }
    info->stack_size = g->kind == GR__KIND_GREEN ? g->stack.size : 0;
    gr__format_name(g, info->name, sizeof info->name);
    return 0;
}
