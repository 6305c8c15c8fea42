/* Event and AsyncResult: outcomes many green threads wait for. Waiters are
 * handed the outcome as they are woken, so none reads the object after its
 * wake-up: the setter may free it once the set call returns. */
#include "sync/sync.h"

/* ---------------------------------------------------------------- Event */

void gr_event_init(gr_event *e)
{
    e->q_.head_ = e->q_.tail_ = NULL;
    e->set_ = 0;
}

void gr_event_set(gr_event *e)
{
    e->set_ = 1;
    gr__wake_all(&e->q_, NULL, 0);
}

void gr_event_clear(gr_event *e)
{
    e->set_ = 0;
}

int gr_event_is_set(const gr_event *e)
{
    return e->set_;
}

int gr_event_wait(gr_event *e, int64_t deadline)
{
    gr__waiter w;

    if (e->set_)
        return 0;
    /* Woken by a set: success even if the flag was cleared since (gevent's
     * wait() does the same), since the set did happen. */
    return gr__wait_queue(&e->q_, &w, deadline, "event");
}

/* ---------------------------------------------------------- AsyncResult */

enum { ASYNC_PENDING, ASYNC_VALUE, ASYNC_ERROR };

void gr_async_init(gr_async *a)
{
    a->q_.head_ = a->q_.tail_ = NULL;
    a->value_ = NULL;
    a->state_ = ASYNC_PENDING;
    a->error_ = 0;
}

static int deliver(gr_async *a, int state, void *value, int err)
{
    if (a->state_ != ASYNC_PENDING) {
        errno = EALREADY;
        return -1;
    }
    a->state_ = state;
    a->value_ = value;
    a->error_ = err;
    /* The error rides in the wake status: park returns it as errno. */
    gr__wake_all(&a->q_, value, err);
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
    return a->state_ != ASYNC_PENDING;
}

int gr_async_get(gr_async *a, void **value, int64_t deadline)
{
    gr__waiter w;

    if (a->state_ == ASYNC_ERROR) {
        errno = a->error_;
        return -1;
    }
    if (a->state_ == ASYNC_VALUE) {
        w.data = a->value_;
    } else if (gr__wait_queue(&a->q_, &w, deadline, "async result") != 0) {
        return -1;
    }
    if (value)
        *value = w.data;
    return 0;
}
