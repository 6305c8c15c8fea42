/* Lock, RLock and Condition. A lock is owned by a green thread (its handle;
 * the root context has one too). Releasing hands the lock to the first
 * parked waiter, so the owner is never 0 while anyone is parked and a
 * newcomer cannot barge in. */
#include "sync/sync.h"

void gr_lock_init(gr_lock *l)
{
    l->q_.head_ = l->q_.tail_ = NULL;
    l->owner_ = 0;
    l->depth_ = 0;
    l->recursive_ = 0;
}

void gr_rlock_init(gr_lock *l)
{
    gr_lock_init(l);
    l->recursive_ = 1;
}

int gr_lock_acquire(gr_lock *l, int64_t deadline)
{
    gr__g *g = gr__running(EDEADLK);
    gr__waiter w;

    if (!g || gr__sync_killed(gr__tls_hub) != 0)
        return -1;
    if (l->owner_ == 0) {
        l->owner_ = g->handle;
        l->depth_ = 1;
        return 0;
    }
    if (l->owner_ == g->handle) {
        if (!l->recursive_) {
            errno = EDEADLK;
            return -1;
        }
        l->depth_++;
        return 0;
    }
    /* On success the releaser has made us the owner. */
    return gr__sync_wait(gr__tls_hub, gr__wq_of(&l->q_), &w, deadline, "lock");
}

static void pass_on(gr_lock *l)
{
    gr__waiter *w = gr__wq_pop_parked(gr__wq_of(&l->q_));

    if (!w) {
        l->owner_ = 0;
        l->depth_ = 0;
        return;
    }
    l->owner_ = w->g->handle;
    l->depth_ = 1;
    gr__unpark(w->g, 0);
}

int gr_lock_release(gr_lock *l)
{
    gr__g *g = gr__running(EPERM);

    if (!g)
        return -1;
    if (l->owner_ != g->handle) {
        errno = EPERM;
        return -1;
    }
    if (--l->depth_ == 0)
        pass_on(l);
    return 0;
}

int gr_lock_locked(const gr_lock *l)
{
    return l->owner_ != 0;
}

/* ------------------------------------------------------------ Condition */

void gr_cond_init(gr_cond *c)
{
    c->q_.head_ = c->q_.tail_ = NULL;
}

/* gr__park, but deaf to kills and timeout regions: a condition waiter must
 * hold its lock again when it returns, whatever ended its wait. A kill that
 * lands meanwhile wakes it (ECANCELED) and is remembered. */
static int park_regardless(gr__g *g)
{
    uint8_t cancelled = g->cancelled;
    int64_t region = g->timeout_eff;
    int rc;

    g->cancelled = 0;
    g->timeout_eff = -1;
    rc = gr__park(-1, "lock (condition re-acquire)");
    g->cancelled |= cancelled;
    g->timeout_eff = region;
    return rc;
}

/* Take l back at the given depth. Woken by a kill, the waiter keeps its
 * place if it still has one; a releaser that found it awake dropped it from
 * the queue, so it then starts over. Only a root that nothing can ever wake
 * gives up (EDEADLK), rather than spin in the deadlock detector. */
static int reacquire(gr__g *g, gr_lock *l, size_t depth)
{
    gr__wq *q = gr__wq_of(&l->q_);
    gr__waiter w;

    w.linked = 0;
    while (l->owner_ != g->handle) {
        if (l->owner_ == 0) {
            l->owner_ = g->handle;
            break;
        }
        if (!w.linked)
            gr__wq_push(q, &w, g);
        if (park_regardless(g) != 0 && errno == EDEADLK) {
            gr__wq_remove(q, &w);
            return -1;
        }
    }
    gr__wq_remove(q, &w);
    l->depth_ = depth;
    return 0;
}

int gr_cond_wait(gr_cond *c, gr_lock *l, int64_t deadline)
{
    gr__g *g = gr__running(EPERM);
    gr_hub *h = gr__tls_hub;
    size_t depth;
    gr__waiter w;
    int rc, err;

    if (!g)
        return -1;
    if (l->owner_ != g->handle) {
        errno = EPERM;
        return -1;
    }
    /* Fail before letting go of l, so the caller still holds it. */
    if (gr__sync_killed(h) != 0)
        return -1;
    if (deadline >= 0 && deadline <= h->now) {
        errno = ETIMEDOUT;
        return -1;
    }
    depth = l->depth_;
    pass_on(l);
    rc = gr__sync_wait(h, gr__wq_of(&c->q_), &w, deadline, "condition");
    err = errno;
    if (reacquire(g, l, depth) != 0)
        return -1;
    if (rc != 0)
        errno = err;
    return rc;
}

void gr_cond_signal(gr_cond *c)
{
    gr__sync_handoff(gr__wq_of(&c->q_), NULL);
}

void gr_cond_broadcast(gr_cond *c)
{
    gr__sync_wake_all(gr__wq_of(&c->q_), NULL, 0);
}
