/* The wait core: every blocking call of the layers above is built on these
 * few waits (core.h states the contract). Queue waits and latches park
 * through the inlined switch path, like gr__park itself. */
#include "switch.h"

#include <errno.h>

/* ----------------------------------------------------------- the caller */

int gr__enter(void)
{
    gr_hub *h = gr__hub_get();

    return h ? gr__may_block(h) : -1;
}

int gr__check_cancel(void)
{
    gr_hub *h = gr__tls_hub;

    if (h && gr__killed(h->current)) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int gr__check_wait(int64_t deadline)
{
    if (gr__check_cancel() != 0)
        return -1;
    if (deadline >= 0 && deadline <= gr_now()) {
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;
}

gr_t gr__self(int err_in_hub)
{
    gr__g *g = gr__running(err_in_hub);

    return g ? g->handle : -1;
}

int gr__in_hub_callback(void)
{
    gr_hub *h = gr__tls_hub;

    return h && h->current == h->hubg;
}

int gr__in_green_thread(void)
{
    gr_hub *h = gr__tls_hub;

    return h && h->current->kind == GR__KIND_GREEN;
}

int gr__handle_alive(gr_t t)
{
    gr__g *g = gr__lookup(gr__tls_hub, t);

    return g && g->state != GR__DONE && g->state != GR__GONE;
}

int gr__will_run(gr_t t)
{
    gr__g *g = gr__lookup(gr__tls_hub, t);

    return g && g->kind == GR__KIND_GREEN && g->state != GR__DONE && !g->cancelled;
}

/* ----------------------------------------------------------- wait queues */

int gr__wait_queue(gr__wq *q, gr__waiter *w, int64_t deadline, const char *what)
{
    gr_hub *h = gr__hub_get();

    if (GR__UNLIKELY(!h))
        return -1;
    if (gr__killed(h->current)) {
        errno = ECANCELED;
        return -1;
    }
    if (deadline >= 0 && deadline <= h->now) {
        errno = ETIMEDOUT;
        return -1;
    }
    gr__wq_push(q, w, h->current);
    h->current->qwait = w;
    h->nqwait++;
    if (GR__LIKELY(park_inline(deadline, what) == 0)) {
        h->nqwait--;
        h->current->qwait = NULL;
        return 0;
    }
    h->nqwait--;
    h->current->qwait = NULL;
    gr__wq_remove(w);
    return -1;
}

int gr__wait_queue_deaf(gr__wq *q, gr__waiter *w, const char *what)
{
    gr_hub *h = gr__hub_get();
    int rc = 0;

    if (!h)
        return -1;
    gr__wq_push(q, w, h->current);
    h->current->qwait = w;
    h->nqwait++;
    /* Only a waker that popped w ends the wait: anything else (a latch
     * fired at this thread) parks it again. */
    while (w->linked) {
        if (gr__park_deaf(what) != 0 && errno == EDEADLK) {
            gr__wq_remove(w);
            rc = -1;
        }
    }
    h->nqwait--;
    h->current->qwait = NULL;
    return rc;
}

gr__waiter *gr__wq_pop(gr__wq *q)
{
    return gr__wq_pop_parked(q);
}

void gr__wake(gr__waiter *w, int status)
{
    gr__unpark(w->g, status);
}

gr_t gr__waiter_thread(const gr__waiter *w)
{
    return w->g->handle;
}

int gr__handoff(gr__wq *q, void *data)
{
    gr__waiter *w;

    if (!q->head_ || !(w = gr__wq_pop_parked(q)))
        return -1;
    w->data = data;
    gr__unpark(w->g, 0);
    return 0;
}

size_t gr__wake_all(gr__wq *q, void *data, int status)
{
    size_t n = 0;
    gr__waiter *w;

    while ((w = gr__wq_pop_parked(q))) {
        w->data = data;
        gr__unpark(w->g, status);
        n++;
    }
    return n;
}

/* --------------------------------------------------------------- latches */

void gr__latch_arm(gr__latch *l, unsigned wake_on)
{
    l->waiter = gr__tls_hub->current->handle;
    l->wake_on = wake_on;
}

void gr__latch_disarm(gr__latch *l)
{
    l->waiter = 0;
    l->wake_on = 0;
}

unsigned gr__latch_take(gr__latch *l)
{
    unsigned r = l->fired;

    l->fired = 0;
    return r;
}

/* The latch, not errno, says why: the wait it ends fails with EINTR. */
void gr__latch_fire(gr__latch *l, unsigned reason)
{
    gr__g *g;

    l->fired |= reason;
    if (l->waiter && (reason & l->wake_on) && (g = gr__lookup(gr__tls_hub, l->waiter)))
        gr__unpark(g, EINTR);
}

int gr__latch_wait(gr__latch *l, unsigned wake_on, int64_t deadline, const char *what)
{
    gr__latch was = *l;
    unsigned got;

    gr__latch_arm(l, wake_on);
    while (!(l->fired & wake_on)) {
        if (park_inline(deadline, what) != 0 && errno != EINTR)
            break;
    }
    l->waiter = was.waiter;
    l->wake_on = was.wake_on;
    if (!(got = l->fired & wake_on))
        return -1;
    l->fired &= ~got;
    return (int)got;
}

/* -------------------------------------------------------------- shields */

int gr_shield_begin(void)
{
    gr__g *g = gr__running(EPERM);

    if (!g)
        return -1;
    if (g->shield == UINT16_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    g->shield++;
    return 0;
}

int gr_shield_end(void)
{
    gr_hub *h = gr__tls_hub;
    gr__g *g = h ? h->current : NULL;

    if (!g || g == h->hubg || !g->shield) {
        errno = EINVAL;
        return -1;
    }
    g->shield--;
    return g->cancelled != 0;
}
