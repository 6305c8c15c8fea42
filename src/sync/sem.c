/* Semaphore and BoundedSemaphore. A release with waiters hands its unit to
 * the first parked one instead of raising the count, so a thread arriving
 * later cannot take it first: the count is never above zero while anyone
 * is parked. */
#include "sync/sync.h"

#include <stdint.h>

void gr_sem_init(gr_sem *s, size_t value)
{
    s->q_.head_ = s->q_.tail_ = NULL;
    s->value_ = value;
    s->bound_ = 0;
}

void gr_sem_init_bounded(gr_sem *s, size_t value)
{
    gr_sem_init(s, value);
    /* One past the largest count allowed, so that a bound of 0 (a semaphore
     * nobody may release) stays distinct from "unbounded". SIZE_MAX wraps
     * to 0, which is the same limit. */
    s->bound_ = value + 1;
}

int gr_sem_acquire(gr_sem *s, int64_t deadline)
{
    gr__waiter w;

    if (gr__check_cancel() != 0)
        return -1;
    if (s->value_ > 0) {
        s->value_--;
        return 0;
    }
    return gr__wait_queue(&s->q_, &w, deadline, "semaphore");
}

int gr_sem_release(gr_sem *s)
{
    size_t limit = s->bound_ ? s->bound_ - 1 : SIZE_MAX;

    /* Checked before the handoff: releasing is raising the count by one,
     * whoever takes the unit next. */
    if (s->value_ >= limit) {
        errno = EOVERFLOW;
        return -1;
    }
    if (gr__handoff(&s->q_, NULL) != 0)
        s->value_++;
    return 0;
}

size_t gr_sem_value(const gr_sem *s)
{
    return s->value_;
}
