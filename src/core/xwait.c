/* Cross-thread waits: a green thread of one hub, or a plain OS thread,
 * waits in the queue of an object that green threads of other hubs and
 * plain threads use too (the thread-safe Event and AsyncResult, the
 * cross-thread queues). The object has a lock of its own (gr__xlock); a
 * waker pops a waiter under it and ends the wait (gr__xwake):
 *
 * - a green thread of the waker's own hub is unparked on the spot;
 * - one of another hub goes on that hub's list of remote wakes (under the
 *   hub's post lock) and the hub is woken; the hub unparks it on its own
 *   thread at its next look around (gr__xwakes_run);
 * - a plain OS thread sleeps on a futex in the waiter and is woken there.
 *
 * A waiter lives on its thread's stack and is gone once its wait returns,
 * so the waker says when it is done with it: state goes WAITING -> CLAIMED
 * (popped under the object's lock: what it waited for is its) -> DONE (the
 * waker will not touch it again). A waiter that gives up (deadline, kill)
 * but finds itself claimed waits for DONE, a few instructions away, and
 * takes what it was given. */
#define _GNU_SOURCE
#include "layout.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { WAITING, CLAIMED, DONE };

/* One round of waiting for another thread that is a few instructions
 * away from what we wait for: spin, then yield, in case it was preempted. */
static inline void pause_round(int spins)
{
    if (spins > 100) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

/* --------------------------------------------------------------- lock */

void gr__xlock(int *l)
{
    for (int spins = 0; __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE); spins++)
        while (__atomic_load_n(l, __ATOMIC_RELAXED))
            pause_round(spins++);
}

void gr__xunlock(int *l)
{
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

void gr__xlock_settle(const int *l)
{
    for (int spins = 0; __atomic_load_n(l, __ATOMIC_ACQUIRE); spins++)
        pause_round(spins);
}

/* -------------------------------------------------------------- queues */

void gr__xq_push(gr__xq *q, gr__xwaiter *w)
{
    gr_hub *h = gr__tls_hub;

    w->next = NULL;
    w->prev = q->tail_;
    w->linked = 1;
    w->queued = 0;
    w->data = NULL;
    w->status = 0;
    __atomic_store_n(&w->state, WAITING, __ATOMIC_RELAXED);
    /* A green thread or a root context parks in its hub; a thread without
     * a hub sleeps on the futex (and a hub callback cannot wait at all). */
    if (h && h->current != h->hubg) {
        w->hub = h;
        w->g = h->current;
    } else {
        w->hub = NULL;
        w->g = NULL;
    }
    if (q->tail_)
        q->tail_->next = w;
    else
        q->head_ = w;
    q->tail_ = w;
}

static void xq_unlink(gr__xq *q, gr__xwaiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head_ = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail_ = w->prev;
    w->linked = 0;
}

gr__xwaiter *gr__xq_pop(gr__xq *q)
{
    gr__xwaiter *w = q->head_;

    if (w) {
        xq_unlink(q, w);
        __atomic_store_n(&w->state, CLAIMED, __ATOMIC_RELAXED);
    }
    return w;
}

/* ------------------------------------------------------------- waking */

static long futex(int *word, int op, int val, const struct timespec *ts)
{
    return syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

/* Put w on its hub's list of remote wakes and wake the hub. */
static void wake_remote(gr__xwaiter *w)
{
    gr_hub *h = w->hub;
    int wake;

    pthread_mutex_lock(&h->lock);
    w->rnext = h->xwakes;
    h->xwakes = w;
    w->queued = 1;
    wake = gr__hub_wake_locked(h);
    /* DONE under the hub's lock: the waiter takes that lock to leave. */
    __atomic_store_n(&w->state, DONE, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&h->lock);
    if (wake)
        gr__hub_wake_write(h); /* the hub waits for it before it goes */
}

void gr__xwake(gr__xwaiter *w, void *data, int status)
{
    w->data = data;
    w->status = status;
    if (!w->hub) {
        __atomic_store_n(&w->state, DONE, __ATOMIC_RELEASE);
        futex(&w->state, FUTEX_WAKE_PRIVATE, 1, NULL);
    } else if (w->hub == gr__tls_hub) {
        __atomic_store_n(&w->state, DONE, __ATOMIC_RELEASE);
        gr__unpark(w->g, 0); /* the wait reads its outcome from w */
    } else {
        wake_remote(w);
    }
}

void gr__xwake_later(gr__xwakes *l, gr__xwaiter *w, void *data, int status)
{
    /* Popped: its queue link is free to chain the list. */
    w->data = data;
    w->status = status;
    w->next = NULL;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
}

void gr__xwake_flush(gr__xwakes *l)
{
    gr__xwaiter *w = l->head, *next;

    l->head = l->tail = NULL;
    for (; w; w = next) {
        next = w->next; /* w may be gone once woken */
        gr__xwake(w, w->data, w->status);
    }
}

/* In the hub, on its thread: unpark the green threads woken from other
 * threads. Called with the post lock held (gr__posts_run). */
void gr__xwakes_run_locked(gr_hub *h)
{
    gr__xwaiter *w = h->xwakes;

    h->xwakes = NULL;
    for (; w; w = w->rnext) {
        w->queued = 0;
        gr__unpark(w->g, 0);
    }
}

/* ------------------------------------------------------------- waiting */

/* The waiter gave up; if a waker claimed it meanwhile, the wait is over
 * after all: wait for the waker to be done, then leave no trace. */
static int give_up(gr__xq *q, int *lock, gr__xwaiter *w)
{
    /* Claimed already: the object may be gone (a setter may free it once
     * its call returns, if every waiter is of its own hub), so do not
     * touch it. */
    if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == WAITING) {
        gr__xlock(lock);
        if (w->linked) {
            xq_unlink(q, w);
            gr__xunlock(lock);
            return -1;
        }
        gr__xunlock(lock);
    }
    /* A waker may claim under the object's lock and wake after it (and be
     * preempted in between). */
    for (int spins = 0; __atomic_load_n(&w->state, __ATOMIC_ACQUIRE) != DONE; spins++)
        pause_round(spins);
    if (w->queued) { /* on the hub's list, not yet run: take it off */
        gr_hub *h = w->hub;

        pthread_mutex_lock(&h->lock);
        for (gr__xwaiter **p = &h->xwakes; *p; p = &(*p)->rnext) {
            if (*p == w) {
                *p = w->rnext;
                break;
            }
        }
        w->queued = 0;
        pthread_mutex_unlock(&h->lock);
    }
    return 0;
}

int gr__xq_leave(gr__xq *q, int *lock, gr__xwaiter *w)
{
    return give_up(q, lock, w) == 0;
}

static int outcome(gr__xwaiter *w)
{
    if (w->status) {
        errno = w->status;
        return -1;
    }
    return 0;
}

static int wait_green(gr__xq *q, int *lock, gr__xwaiter *w, int64_t deadline, const char *what)
{
    gr_hub *h = w->hub;
    int rc;

    gr__hub_wake_source(h, 1); /* a thread the hub cannot see may wake it */
    do {
        rc = gr__park(deadline, what);
    } while (rc == 0 && __atomic_load_n(&w->state, __ATOMIC_ACQUIRE) != DONE);
    gr__hub_wake_source(h, -1);
    if (rc == 0)
        return outcome(w);
    rc = errno;
    if (give_up(q, lock, w) == 0)
        return outcome(w);
    errno = rc;
    return -1;
}

/* A plain thread (or a root context) sleeps on the futex until DONE. */
static int wait_plain(gr__xq *q, int *lock, gr__xwaiter *w, int64_t deadline)
{
    for (;;) {
        struct timespec ts, *tp = NULL;
        int64_t left;

        if (__atomic_load_n(&w->state, __ATOMIC_ACQUIRE) == DONE)
            return outcome(w);
        if (deadline >= 0) {
            if ((left = deadline - gr_now_update()) <= 0)
                break;
            ts = (struct timespec){left / 1000, (left % 1000) * 1000000};
            tp = &ts;
        }
        futex(&w->state, FUTEX_WAIT_PRIVATE, WAITING, tp);
        futex(&w->state, FUTEX_WAIT_PRIVATE, CLAIMED, tp);
    }
    if (give_up(q, lock, w) == 0)
        return outcome(w);
    errno = ETIMEDOUT;
    return -1;
}

int gr__xwait(gr__xq *q, int *lock, gr__xwaiter *w, int64_t deadline, const char *what)
{
    gr__xunlock(lock);
    if (w->hub)
        return wait_green(q, lock, w, deadline, what);
    if (gr__in_hub_callback()) {
        if (give_up(q, lock, w) == 0)
            return outcome(w);
        errno = EDEADLK;
        return -1;
    }
    return wait_plain(q, lock, w, deadline);
}
