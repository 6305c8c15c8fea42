/* The scheduler: the ready queue, switching, and the one park/unpark
 * primitive under every blocking call (the waits built on it are in
 * wait.c). */
#include "switch.h"

#include <errno.h>
#include <stdlib.h>

/* ---------------------------------------------------------- switching */

int gr__ready_reserve(gr_hub *h, size_t n)
{
    size_t cap = h->ready ? (size_t)h->ready_mask + 1 : 0;
    uint32_t count = h->ready_tail - h->ready_head;
    gr__g **v;

    if (n <= cap)
        return 0;
    if (!cap)
        cap = 64;
    while (cap < n)
        cap *= 2;
    if (cap > UINT32_MAX / 2 || !(v = gr__malloc(cap * sizeof *v))) {
        errno = ENOMEM;
        return -1;
    }
    for (uint32_t i = 0; i < count; i++)
        v[i] = h->ready[(h->ready_head + i) & h->ready_mask];
    free(h->ready);
    h->ready = v;
    h->ready_head = 0;
    h->ready_tail = count;
    h->ready_mask = (uint32_t)cap - 1;
    return 0;
}

void gr__switch(gr_hub *h, gr__g *from, gr__g *to)
{
    switch_inline(h, from, to);
}

gr__ctx *gr__leave(gr_hub *h, gr__g *from)
{
    gr__g *to = pick_next(h);

    if (GR__UNLIKELY(!gr__stack_canary_ok(&from->stack)))
        gr__overflow_canary(from);
    h->current = to;
#if defined(GR__ASAN)
    h->switch_from = from;
    __sanitizer_start_switch_fiber(NULL, to->asan_bottom, to->asan_size);
#endif
    /* Under TSan, green_entry switches fibers once it has returned from
     * here (a return is a TSan function exit, owed to this fiber). */
    if (GR__LIKELY(gr__ctx_started(&to->ctx)))
        return &to->ctx;
        /* Never run yet: start it from here. Nothing returns to this frame; the
         * save into our record is harmless, nothing can reuse it before the
         * switch. */
#if defined(GR__TSAN)
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    resume(from, to);
    __builtin_unreachable();
}

#if defined(GR__TSAN)
void gr__tsan_fiber_new(gr__g *g)
{
    g->tsan_fiber = __tsan_create_fiber(0);
}

void gr__tsan_fiber_drop(gr_hub *h, gr__g *g)
{
    if (!g->tsan_fiber)
        return;
    if (g == h->current)
        h->tsan_zombie = g->tsan_fiber; /* finishing: still running on it */
    else
        __tsan_destroy_fiber(g->tsan_fiber);
    g->tsan_fiber = NULL;
}

void gr__tsan_resumed(gr_hub *h)
{
    if (h->tsan_zombie) {
        __tsan_destroy_fiber(h->tsan_zombie);
        h->tsan_zombie = NULL;
    }
}
#endif

void gr__schedule(gr_hub *h)
{
    schedule_inline(h);
}

/* ---------------------------------------------------------- park/unpark */

int gr__may_block(gr_hub *h)
{
    if (GR__UNLIKELY(h->current == h->hubg)) {
        gr__warn("a blocking call was made in a hub callback, where nothing can block "
                 "(it fails with EDEADLK)");
        errno = EDEADLK;
        return -1;
    }
    if (gr__killed(h->current)) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int gr__park(int64_t deadline, const char *what)
{
    return park_inline(deadline, what);
}

int gr__park_deaf(const char *what)
{
    gr_hub *h = gr__tls_hub;
    gr__g *g = h->current;

    if (GR__UNLIKELY(g == h->hubg)) {
        errno = EDEADLK;
        return -1;
    }
    g->park_deadline = -1;
    g->state = GR__PARKED;
    g->wake = 0;
    g->wait_what = what;
    g->deaf = 1;
    schedule_inline(h);
    g->deaf = 0;
    if (g->wake) {
        errno = g->wake;
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------- public calls */

int gr_yield(void)
{
    gr__g *g = gr__running(EDEADLK);
    gr_hub *h = gr__tls_hub;

    if (!g)
        return -1;
    if (gr__ready_empty(h) && h->ready_head - h->pass_mark < GR__BUDGET) {
        /* Nobody else is ready: count the dispatch (the hub must still
         * come round) without writing the queue. */
        h->ready_head++;
        h->ready_tail++;
    } else {
        gr__ready_push(h, g); /* already runnable */
        schedule_inline(h);
    }
    if (gr__killed(g)) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int gr_sleep(int64_t deadline)
{
    gr_hub *h = gr__hub_get();

    if (!h)
        return -1;
    if (gr__park(deadline, "sleep") == 0)
        return 0; /* nothing unparks a sleeper with success; kept for symmetry */
    /* Reaching one's own deadline is what sleeping is for; a timeout region
     * that ends first is an error. */
    if (errno == ETIMEDOUT && deadline >= 0 && h->now >= deadline)
        return 0;
    return -1;
}

int gr_testcancel(void)
{
    gr_hub *h = gr__tls_hub;

    if (h && gr__killed(h->current)) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- Timeout */

int gr_timeout_begin(gr_timeout *t, int64_t deadline)
{
    gr__g *g = gr__running(EPERM);

    if (!g)
        return -1;
    t->deadline_ = deadline < 0 ? -1 : deadline;
    t->outer_ = g->timeout;
    t->owner_ = g;
    t->effective_ = effective_deadline(g, t->deadline_);
    g->timeout = t;
    g->timeout_eff = t->effective_;
    return 0;
}

int gr_timeout_end(gr_timeout *t)
{
    gr_hub *h = gr__tls_hub;
    gr__g *g = h ? h->current : NULL;

    if (!g || g->timeout != t || t->owner_ != g) {
        errno = EINVAL;
        return -1;
    }
    g->timeout = t->outer_;
    g->timeout_eff = t->outer_ ? t->outer_->effective_ : -1;
    return gr_timeout_expired(t);
}

int gr_timeout_expired(const gr_timeout *t)
{
    return t->deadline_ >= 0 && gr_now() >= t->deadline_;
}
