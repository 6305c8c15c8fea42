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
    gr_t me = gr__self(EDEADLK);
    gr__waiter w;

    if (me < 0 || gr__check_cancel() != 0)
        return -1;
    if (l->owner_ == 0) {
        l->owner_ = me;
        l->depth_ = 1;
        return 0;
    }
    if (l->owner_ == me) {
        if (!l->recursive_) {
            errno = EDEADLK;
            return -1;
        }
        l->depth_++;
        return 0;
    }
    /* On success the releaser has made us the owner. */
    return gr__wait_queue(&l->q_, &w, deadline, "lock");
}

static void pass_on(gr_lock *l)
{
    gr__waiter *w = gr__wq_pop(&l->q_);

    if (!w) {
        l->owner_ = 0;
        l->depth_ = 0;
        return;
    }
    l->owner_ = gr__waiter_thread(w);
    l->depth_ = 1;
    gr__wake(w, 0);
}

int gr_lock_release(gr_lock *l)
{
    gr_t me = gr__self(EPERM);

    if (me < 0)
        return -1;
    if (l->owner_ != me) {
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

/* Take l back at the given depth, deaf to kills and timeout regions: a
 * condition waiter must hold its lock again when it returns, whatever ended
 * its wait. A kill that lands meanwhile is kept for the next blocking call.
 * Only a root that nothing can ever wake gives up (EDEADLK). */
static int reacquire(gr_t me, gr_lock *l, size_t depth)
{
    gr__waiter w;

    if (l->owner_ == 0)
        l->owner_ = me;
    else if (gr__wait_queue_deaf(&l->q_, &w, "lock (condition re-acquire)") != 0)
        return -1;
    /* Handed over by pass_on, which made us the owner at depth 1. */
    l->depth_ = depth;
    return 0;
}

int gr_cond_wait(gr_cond *c, gr_lock *l, int64_t deadline)
{
    gr_t me = gr__self(EPERM);
    size_t depth;
    gr__waiter w;
    int rc, err;

    if (me < 0)
        return -1;
    if (l->owner_ != me) {
        errno = EPERM;
        return -1;
    }
    /* Fail before letting go of l, so the caller still holds it. */
    if (gr__check_wait(deadline) != 0)
        return -1;
    depth = l->depth_;
    pass_on(l);
    rc = gr__wait_queue(&c->q_, &w, deadline, "condition");
    err = errno;
    if (reacquire(me, l, depth) != 0)
        return -1;
    if (rc != 0)
        errno = err;
    return rc;
}

void gr_cond_signal(gr_cond *c)
{
    gr__handoff(&c->q_, NULL);
}

void gr_cond_broadcast(gr_cond *c)
{
    gr__wake_all(&c->q_, NULL, 0);
}
