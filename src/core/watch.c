/* Watching several things at once (core.h states the contract): a green
 * thread links a watch in the queue of each thing it waits for, parks
 * once, and unlinks them all when it runs again. Three kinds of queue:
 * wait queues of this hub (a thread's watchers, a queue's peekers, a
 * channel's watchers), descriptor queues (fd.c links those), and the
 * cross-thread queues of Event and AsyncResult, whose wakers may run on
 * other OS threads (xwait.c): leaving one of those must wait for a waker
 * that has already claimed the watch. */
#include "switch.h"

void gr__watch_queue(gr__watch *wt, gr__wq *q)
{
    gr__wq_push(q, &wt->u.w[0], gr__tls_hub->current);
    wt->kind = GR__WATCH_QUEUE;
}

int gr__thread_done(gr_t t)
{
    gr__g *g = gr__lookup_green(gr__hub_peek(), t);

    return g ? g->state == GR__DONE : -1;
}

int gr__watch_thread(gr__watch *wt, gr_t t)
{
    gr__g *g = gr__lookup_green(gr__hub_peek(), t);

    if (!g)
        return -1;
    if (g->state == GR__DONE)
        return 1;
    gr__watch_queue(wt, &g->watchers);
    return 0;
}

void gr__watch_xq(gr__watch *wt, gr__xq *q, int *lock)
{
    gr__xq_push(q, &wt->u.x.xw);
    wt->u.x.q = q;
    wt->u.x.lock = lock;
    wt->kind = GR__WATCH_X;
}

int gr__watches_fds(const gr__g *g)
{
    if (g->state != GR__PARKED && g->state != GR__RUNNABLE)
        return 0;
    for (uint32_t i = 0; i < g->nwatches; i++)
        if (g->watches[i].kind == GR__WATCH_FD)
            return 1;
    return 0;
}

int gr__watch_park(gr__watch *wts, size_t n, int64_t deadline, const char *what)
{
    gr_hub *h = gr__hub_get();
    int fds = 0, cross = 0, rc;
    gr__g *g;

    if (!h)
        return -1;
    g = h->current;
    for (size_t i = 0; i < n; i++) {
        fds |= wts[i].kind == GR__WATCH_FD;
        cross |= wts[i].kind == GR__WATCH_X;
    }
    /* A descriptor or another OS thread may wake us: no deadlock then. */
    if (fds)
        h->nfd_waiters++;
    if (cross)
        gr__hub_wake_source(h, 1);
    g->watches = wts;
    g->nwatches = (uint32_t)n;
    h->nqwait++;
    rc = park_inline(deadline, what);
    h->nqwait--;
    if (cross)
        gr__hub_wake_source(h, -1);
    if (fds)
        h->nfd_waiters--;
    g->nwatches = 0;
    return rc;
}

void gr__unwatch(gr__watch *wts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        gr__watch *wt = &wts[i];

        switch (wt->kind) {
        case GR__WATCH_FD:
            gr__wq_remove(&wt->u.w[1]);
            /* fall through */
        case GR__WATCH_QUEUE:
            gr__wq_remove(&wt->u.w[0]);
            break;
        case GR__WATCH_X:
            gr__xq_leave(wt->u.x.q, wt->u.x.lock, &wt->u.x.xw);
            break;
        default:
            break;
        }
        wt->kind = GR__WATCH_NONE;
    }
}

int gr__wq_has_parked(const gr__wq *q)
{
    for (const gr__waiter *w = q->head_; w; w = w->next)
        if (w->g->state == GR__PARKED)
            return 1;
    return 0;
}
