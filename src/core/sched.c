/* The scheduler: the ready queue, switching, and the one park/unpark
 * primitive under every blocking call. */
#include "core.h"

#include <errno.h>
#include <stdlib.h>

#if defined(GR__ASAN)
#include <sanitizer/asan_interface.h>
#endif

/* ------------------------------------------------------------ wait queues */

size_t gr__wq_wake_all(gr__wq *q, int status)
{
    size_t n = 0;
    gr__waiter *w;

    while ((w = gr__wq_pop_parked(q))) {
        gr__unpark(w->g, status);
        n++;
    }
    return n;
}

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
    if (cap > UINT32_MAX / 2 || !(v = malloc(cap * sizeof *v))) {
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

/* Resume to, starting it if it has never run. */
static inline __attribute__((always_inline)) void resume(gr__g *from, gr__g *to)
{
    if (GR__LIKELY(gr__ctx_started(&to->ctx)))
        gr__ctx_switch(&from->ctx, &to->ctx);
    else
        gr__ctx_start(&from->ctx, &to->ctx, to->stack.lo + GR__STACK_RESERVED,
                      (size_t)(to->start_top - to->stack.lo) - GR__STACK_RESERVED, to->entry, to);
}

/* Inlined into each blocking call: every call level between a blocking
 * call and the context switch is a return the CPU mispredicts when the
 * thread is resumed, since the return-stack predictor still holds the
 * calls of the thread that ran before. */
static inline __attribute__((always_inline)) void switch_inline(gr_hub *h, gr__g *from,
                                                                gr__g *to)
{
    /* errno rides across the switch in a callee-saved register. */
    int *errno_loc = h->errno_loc;
    int saved_errno = *errno_loc;

    if (GR__UNLIKELY(!gr__stack_canary_ok(&from->stack)))
        gr__overflow_canary(from);
    h->current = to;
#if defined(GR__ASAN)
    h->switch_from = from;
    __sanitizer_start_switch_fiber(&from->asan_fake, to->asan_bottom, to->asan_size);
    resume(from, to);
    __sanitizer_finish_switch_fiber(from->asan_fake, &h->switch_from->asan_bottom,
                                    &h->switch_from->asan_size);
#else
    resume(from, to);
#endif
    *errno_loc = saved_errno;
}

void gr__switch(gr_hub *h, gr__g *from, gr__g *to)
{
    switch_inline(h, from, to);
}

/* Straight to the next ready thread, but through the hub every so often,
 * so I/O and timers are looked at even when threads never stop being
 * ready. */
static inline gr__g *pick_next(gr_hub *h)
{
    if (h->ready_head - h->pass_mark < GR__BUDGET && !gr__ready_empty(h))
        return gr__ready_pop(h);
    return h->hubg;
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
    if (GR__LIKELY(gr__ctx_started(&to->ctx)))
        return &to->ctx;
    /* Never run yet: start it from here. Nothing returns to this frame; the
     * save into our record is harmless, nothing can reuse it before the
     * switch. */
    resume(from, to);
    __builtin_unreachable();
}

static inline __attribute__((always_inline)) void schedule_inline(gr_hub *h)
{
    gr__g *cur = h->current;
    gr__g *next = pick_next(h);

    if (next != cur)
        switch_inline(h, cur, next);
}

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
    if (GR__UNLIKELY(h->current->cancelled)) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

static int64_t effective_deadline(const gr__g *g, int64_t deadline)
{
    if (g->timeout_eff >= 0 && (deadline < 0 || g->timeout_eff < deadline))
        return g->timeout_eff;
    return deadline;
}

/* A thread's timer is left armed when it wakes before its deadline, and
 * kept for the next park when that one's deadline is at most this much
 * later: the timer then fires early, finds the thread parked with a later
 * deadline and is armed again for it. A connection that reads with a
 * time-out thus moves its timer in the heap a few times a second, not at
 * every read (nginx's lazy timers). */
#define TIMER_LAZY_MS 300

static int arm_for_park(gr_hub *h, gr__g *g, int64_t deadline)
{
    gr__timer *t = &g->timer;

    if (t->idx && t->when <= deadline && deadline - t->when <= TIMER_LAZY_MS)
        return 0;
    return gr__timer_arm(&h->timers, t, deadline);
}

int gr__park(int64_t deadline, const char *what)
{
    gr_hub *h = gr__tls_hub;
    gr__g *g = h->current;

    if (gr__may_block(h) != 0)
        return -1;
    deadline = effective_deadline(g, deadline);
    if (deadline >= 0) {
        if (deadline <= h->now) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (arm_for_park(h, g, deadline) != 0)
            return -1;
        h->timed_waiters++;
    }
    g->park_deadline = deadline;
    g->state = GR__PARKED;
    g->wake = 0;
    g->wait_what = what;
    schedule_inline(h);
    if (deadline >= 0)
        h->timed_waiters--;
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
    if (g->cancelled) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int gr_sleep(int64_t deadline)
{
    gr_hub *h = gr__hub();

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

    if (h && h->current->cancelled) {
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
