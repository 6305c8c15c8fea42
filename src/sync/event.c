/* Event and AsyncResult: outcomes many threads wait for. Both are
 * thread-safe, built on the core's cross-thread waits (core/xwait.c): a
 * waiter may be a green thread of any hub or a plain OS thread.
 *
 * Lifetime: whoever sees the outcome may free the object at once (the
 * usual "done" event or result on a waiter's stack). So the setter
 * publishes the outcome under the object's lock, pops the waiters, and
 * wakes them only once it has unlocked, its last touch of the object; and
 * a caller that sees the outcome without taking the lock waits for the
 * lock to be free (gr__xlock_settle), which means the setter is gone.
 * Waiters are handed the outcome as they are woken, so none reads the
 * object after its wake-up either: the setter, too, may free the object as
 * soon as its set call returns. */
#include "sync/sync.h"

/* ---------------------------------------------------------------- Event */

void gr_event_init(gr_event *e)
{
    e->q_.head_ = e->q_.tail_ = NULL;
    e->lock_ = 0;
    e->set_ = 0;
}

void gr_event_set(gr_event *e)
{
    gr__xwakes wl = {NULL, NULL};
    gr__xwaiter *w;

    gr__xlock(&e->lock_);
    /* Atomic: gr_event_is_set and gr_event_clear use the flag unlocked. */
    __atomic_store_n(&e->set_, 1, __ATOMIC_RELEASE);
    while ((w = gr__xq_pop(&e->q_)))
        gr__xwake_later(&wl, w, NULL, 0);
    gr__xunlock(&e->lock_);
    gr__xwake_flush(&wl);
}

void gr_event_clear(gr_event *e)
{
    __atomic_store_n(&e->set_, 0, __ATOMIC_RELAXED);
}

int gr_event_is_set(const gr_event *e)
{
    int set = __atomic_load_n(&e->set_, __ATOMIC_ACQUIRE);

    if (set)
        gr__xlock_settle(&e->lock_);
    return set;
}

int gr_event_wait(gr_event *e, int64_t deadline)
{
    gr__xwaiter w;

    if (gr_event_is_set(e))
        return 0;
    if (gr__check_wait(deadline) != 0)
        return -1;
    gr__xlock(&e->lock_);
    if (__atomic_load_n(&e->set_, __ATOMIC_RELAXED)) {
        gr__xunlock(&e->lock_);
        return 0;
    }
    gr__xq_push(&e->q_, &w);
    /* Woken by a set: success even if the flag was cleared since (gevent's
     * wait() does the same), since the set did happen. */
    return gr__xwait(&e->q_, &e->lock_, &w, deadline, "event");
}

int gr__event_watch(gr_event *e, gr__watch *wt)
{
    int set;

    gr__xlock(&e->lock_);
    if (!(set = e->set_))
        gr__watch_xq(wt, &e->q_, &e->lock_);
    gr__xunlock(&e->lock_);
    return set;
}

/* ---------------------------------------------------------- AsyncResult */

enum { ASYNC_PENDING, ASYNC_VALUE, ASYNC_ERROR };

void gr_async_init(gr_async *a)
{
    a->q_.head_ = a->q_.tail_ = NULL;
    a->value_ = NULL;
    a->lock_ = 0;
    a->state_ = ASYNC_PENDING;
    a->error_ = 0;
}

static int deliver(gr_async *a, int state, void *value, int err)
{
    gr__xwakes wl = {NULL, NULL};
    gr__xwaiter *w;

    gr__xlock(&a->lock_);
    if (a->state_ != ASYNC_PENDING) {
        gr__xunlock(&a->lock_);
        errno = EALREADY;
        return -1;
    }
    a->value_ = value;
    a->error_ = err;
    __atomic_store_n(&a->state_, state, __ATOMIC_RELEASE);
    /* The error rides in the wake status: the wait returns it as errno. */
    while ((w = gr__xq_pop(&a->q_)))
        gr__xwake_later(&wl, w, value, err);
    gr__xunlock(&a->lock_);
    gr__xwake_flush(&wl);
    return 0;
}

int gr_async_set(gr_async *a, void *value)
{
    return deliver(a, ASYNC_VALUE, value, 0);
}

int gr_async_set_error(gr_async *a, int err)
{
    if (err <= 0) {
        errno = EINVAL;
        return -1;
    }
    return deliver(a, ASYNC_ERROR, NULL, err);
}

int gr_async_ready(const gr_async *a)
{
    if (__atomic_load_n(&a->state_, __ATOMIC_ACQUIRE) == ASYNC_PENDING)
        return 0;
    gr__xlock_settle(&a->lock_);
    return 1;
}

/* The outcome, once delivered (a->state_ read with acquire). */
static int take(const gr_async *a, void **value)
{
    if (a->state_ == ASYNC_ERROR) {
        errno = a->error_;
        return -1;
    }
    if (value)
        *value = a->value_;
    return 0;
}

int gr_async_get(gr_async *a, void **value, int64_t deadline)
{
    gr__xwaiter w;

    if (gr_async_ready(a))
        return take(a, value);
    if (gr__check_wait(deadline) != 0)
        return -1;
    gr__xlock(&a->lock_);
    if (a->state_ != ASYNC_PENDING) {
        gr__xunlock(&a->lock_);
        return take(a, value);
    }
    gr__xq_push(&a->q_, &w);
    if (gr__xwait(&a->q_, &a->lock_, &w, deadline, "async result") != 0)
        return -1;
    if (value)
        *value = w.data;
    return 0;
}

int gr__async_watch(gr_async *a, gr__watch *wt)
{
    int ready;

    gr__xlock(&a->lock_);
    if (!(ready = a->state_ != ASYNC_PENDING))
        gr__watch_xq(wt, &a->q_, &a->lock_);
    gr__xunlock(&a->lock_);
    return ready;
}
