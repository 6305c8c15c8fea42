/* The switch path, inlined into every wait of src/core: each call level
 * between a blocking call and the context switch is a return the CPU
 * mispredicts when the thread is resumed, since the return-stack predictor
 * still holds the calls of the thread that ran before. Private to
 * src/core (sched.c and wait.c). */
#ifndef GROVE_CORE_SWITCH_H
#define GROVE_CORE_SWITCH_H

#include "layout.h"

#if defined(GR__ASAN)
#include <sanitizer/asan_interface.h>
#endif
#if defined(GR__TSAN)
#include <sanitizer/tsan_interface.h>
#endif

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
static inline __attribute__((always_inline)) void switch_inline(gr_hub *h, gr__g *from, gr__g *to)
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
#elif defined(GR__TSAN)
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
    resume(from, to);
    gr__tsan_resumed(h);
#else
    resume(from, to);
#endif
    *errno_loc = saved_errno;
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

static inline __attribute__((always_inline)) void schedule_inline(gr_hub *h)
{
    gr__g *cur = h->current;
    gr__g *next = pick_next(h);

    if (next != cur)
        switch_inline(h, cur, next);
}

static inline int64_t effective_deadline(const gr__g *g, int64_t deadline)
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

static inline int arm_for_park(gr_hub *h, gr__g *g, int64_t deadline)
{
    gr__timer *t = &g->timer;

    if (t->idx && t->when <= deadline && deadline - t->when <= TIMER_LAZY_MS)
        return 0;
    return gr__timer_arm(&h->timers, t, deadline);
}

static inline __attribute__((always_inline)) int park_inline(int64_t deadline, const char *what)
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

#endif
