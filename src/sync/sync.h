/* What the synchronisation objects share: the public waiter lists seen as
 * the core's wait queues, and the one way every sync call waits.
 *
 * Two rules hold for every object (docs/sync.md explains them):
 * - Handoff: a waker gives what it releases (a unit, an item, a lock, a
 *   value) to the first waiter still parked, through gr__wq_pop_parked, and
 *   unparks it with status 0. A waiter that timed out or was killed is no
 *   longer parked, so it is skipped and can never swallow what was meant for
 *   it; a waiter woken with 0 owns what it was given, even if it is killed
 *   before it runs. A woken waiter never touches the object again, so the
 *   waker may free the object as soon as it is done with it.
 * - Cancellation: calls that take or hand over something (acquire, get, put,
 *   send, receive, wait on a condition) fail with ECANCELED at once in a
 *   killed thread, so a killed worker stops taking work. Calls that only wait
 *   for an outcome (event, async result, queue and group join, peek) succeed
 *   when the outcome is already there, as gr_join of a finished thread does,
 *   so clean-up code can collect it. Either kind fails with ECANCELED when it
 *   would have to wait. */
#ifndef GROVE_SYNC_H
#define GROVE_SYNC_H

#include "core/core.h"

#include <errno.h>
#include <stddef.h>

_Static_assert(sizeof(gr_waitq_) == sizeof(gr__wq), "gr_waitq_ must mirror gr__wq");
_Static_assert(offsetof(gr_waitq_, head_) == offsetof(gr__wq, head), "gr_waitq_.head_");
_Static_assert(offsetof(gr_waitq_, tail_) == offsetof(gr__wq, tail), "gr_waitq_.tail_");
_Static_assert(_Alignof(gr_waitq_) == _Alignof(gr__wq), "gr_waitq_ alignment");

/* The build uses -fno-strict-aliasing, and the layouts match (above). */
static inline gr__wq *gr__wq_of(gr_waitq_ *q)
{
    return (gr__wq *)(void *)q;
}

static inline int gr__sync_killed(const gr_hub *h)
{
    if (GR__UNLIKELY(h->current->cancelled)) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

/* Wait in q until a waker pops w and unparks it with 0 (what it hands over
 * is in w->data), or fail with the status a waker gave instead (EPIPE...),
 * ETIMEDOUT, ECANCELED, or EDEADLK (a hub callback, or a root nothing can
 * wake). On failure w is off the queue. A deadline already past fails with
 * ETIMEDOUT without parking, so a hub callback may try once without being
 * reported as blocking. */
static inline int gr__sync_wait(gr_hub *h, gr__wq *q, gr__waiter *w, int64_t deadline,
                                const char *what)
{
    if (gr__sync_killed(h) != 0)
        return -1;
    if (deadline >= 0 && deadline <= h->now) {
        errno = ETIMEDOUT;
        return -1;
    }
    gr__wq_push(q, w, h->current);
    if (GR__LIKELY(gr__park(deadline, what) == 0))
        return 0;
    gr__wq_remove(q, w);
    return -1;
}

/* Hand data to the first parked waiter of q and make it ready. Returns 0,
 * or -1 when nobody is parked there. */
static inline int gr__sync_handoff(gr__wq *q, void *data)
{
    gr__waiter *w;

    if (!q->head || !(w = gr__wq_pop_parked(q)))
        return -1;
    w->data = data;
    gr__unpark(w->g, 0);
    return 0;
}

/* Wake every parked waiter of q with data and status. */
static inline void gr__sync_wake_all(gr__wq *q, void *data, int status)
{
    gr__waiter *w;

    while ((w = gr__wq_pop_parked(q))) {
        w->data = data;
        gr__unpark(w->g, status);
    }
}

#endif
