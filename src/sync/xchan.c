/* The cross-thread channel: a FIFO of pointers shared by green threads of
 * any hub and plain OS threads, built on the core's cross-thread waits
 * (core/xwait.c). Everything happens under the channel's lock; wakes are
 * made after it is released (gr__xwake_later), so a sender never holds it
 * across another hub's lock and a write(2).
 *
 * Handoff keeps the order FIFO without retries, as the hub-local queue's:
 * - receivers wait only while nothing is buffered and no sender waits, and
 *   a send with receivers waiting fills the first one's batch directly;
 * - senders wait only while the buffer is full (always, unbuffered), and a
 *   receive that makes room moves the first waiting sender's items in on
 *   its behalf (an unbuffered receive takes them straight from it), waking
 *   it once its whole batch is in.
 * So at most one of the two queues holds waiters, and buffered items are
 * always older than those of waiting senders.
 *
 * A waiter describes its batch on its own stack (xbatch); wakers read or
 * fill it under the lock while the waiter is queued. A waiting sender may
 * thus have part of its batch taken before it is woken or gives up: its
 * call then reports that part as sent. */
#include "arch/fail.h"
#include "sync/sync.h"

#include <stdlib.h>
#include <string.h>

struct gr_xchan {
    int lock;
    int closed;
    gr__xq senders, receivers;
    void **ring; /* the buffer: n items from head, cap slots */
    size_t cap, head, n;
    size_t capacity; /* as created: 0, a bound, or GR_XCHAN_UNBOUNDED */
};

typedef struct xbatch {
    void *const *src; /* a sender's items */
    void **dst;       /* a receiver's room */
    size_t n;         /* items to send, or room to fill */
    size_t done;      /* how many went (filled) so far */
} xbatch;

#define UNBOUNDED_INITIAL 64

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* -------------------------------------------------------------- buffer */

/* Append k items (k <= cap - n). */
static void ring_put(gr_xchan *c, void *const *items, size_t k)
{
    size_t tail = c->head + c->n;
    size_t first;

    if (k == 0)
        return; /* the ring or items may be NULL: not memcpy's to see */
    if (tail >= c->cap)
        tail -= c->cap;
    first = min_size(k, c->cap - tail);
    memcpy(c->ring + tail, items, first * sizeof *items);
    memcpy(c->ring, items + first, (k - first) * sizeof *items);
    c->n += k;
}

/* Remove the k oldest items (k <= n) into items. */
static void ring_take(gr_xchan *c, void **items, size_t k)
{
    size_t first = min_size(k, c->cap - c->head);

    if (k == 0)
        return;
    memcpy(items, c->ring + c->head, first * sizeof *items);
    memcpy(items + first, c->ring, (k - first) * sizeof *items);
    c->head += k;
    if (c->head >= c->cap)
        c->head -= c->cap;
    c->n -= k;
}

/* Double an unbounded channel's buffer. Called and returns with the lock
 * held, but allocates without it, so the caller must look at the channel
 * again. */
static int grow(gr_xchan *c)
{
    size_t want = c->cap * 2, n;
    void **v, **old;

    if (want < c->cap || want > SIZE_MAX / sizeof *v) {
        errno = ENOMEM;
        return -1;
    }
    gr__xunlock(&c->lock);
    v = gr__malloc(want * sizeof *v);
    gr__xlock(&c->lock);
    if (!v) {
        errno = ENOMEM;
        return -1;
    }
    if (c->cap >= want) { /* another sender grew it meanwhile */
        free(v);
        return 0;
    }
    old = c->ring;
    n = c->n;
    ring_take(c, v, n); /* unrolls the ring at 0 */
    c->n = n;
    c->ring = v;
    c->head = 0;
    c->cap = want;
    free(old);
    return 0;
}

/* ------------------------------------------------------- moving items */

/* Fill waiting receivers' batches from items (only when nothing is
 * buffered); returns how many items went. */
static size_t to_receivers(gr_xchan *c, void *const *items, size_t n, gr__xwakes *wl)
{
    size_t sent = 0;
    gr__xwaiter *w;

    while (sent < n && (w = gr__xq_pop(&c->receivers))) {
        xbatch *b = w->data;
        size_t k = min_size(b->n, n - sent);

        memcpy(b->dst, items + sent, k * sizeof *items);
        b->done = k;
        sent += k;
        gr__xwake_later(wl, w, NULL, 0);
    }
    return sent;
}

/* Take up to n items from the waiting senders, in order, into dst (NULL:
 * into the buffer, which has room for n); a sender whose batch is all
 * taken is woken. Returns how many were taken. */
static size_t from_senders(gr_xchan *c, void **dst, size_t n, gr__xwakes *wl)
{
    size_t got = 0;
    gr__xwaiter *w;

    while (got < n && (w = c->senders.head_)) {
        xbatch *b = w->data;
        size_t k = min_size(n - got, b->n - b->done);

        if (dst)
            memcpy(dst + got, b->src + b->done, k * sizeof *dst);
        else
            ring_put(c, b->src + b->done, k);
        b->done += k;
        got += k;
        if (b->done == b->n)
            gr__xwake_later(wl, gr__xq_pop(&c->senders), NULL, 0);
    }
    return got;
}

/* Receive up to n items without waiting: the buffered ones first, then
 * (buffer empty) straight from waiting senders; then let waiting senders
 * into the room made. */
static size_t take(gr_xchan *c, void **items, size_t n, gr__xwakes *wl)
{
    size_t got = min_size(n, c->n);

    ring_take(c, items, got);
    if (got < n && c->senders.head_)
        got += from_senders(c, items + got, n - got, wl);
    if (c->senders.head_ && c->n < c->capacity)
        from_senders(c, NULL, c->capacity - c->n, wl);
    return got;
}

/* ----------------------------------------------------------------- API */

gr_xchan *gr_xchan_new(size_t capacity)
{
    size_t cap = capacity == GR_XCHAN_UNBOUNDED ? UNBOUNDED_INITIAL : capacity;
    gr_xchan *c = gr__calloc(1, sizeof *c);

    if (!c || cap > SIZE_MAX / sizeof *c->ring ||
        (cap && !(c->ring = gr__malloc(cap * sizeof *c->ring)))) {
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->cap = cap;
    c->capacity = capacity;
    return c;
}

int gr_xchan_free(gr_xchan *c)
{
    int busy;

    if (!c)
        return 0;
    /* A waiter still queued may have given up and be about to take the
     * lock to leave: it will touch the channel. */
    gr__xlock(&c->lock);
    busy = c->senders.head_ || c->receivers.head_;
    gr__xunlock(&c->lock);
    if (busy) {
        errno = EBUSY;
        return -1;
    }
    free(c->ring);
    free(c);
    return 0;
}

/* Whether a call that must wait may: -1/ETIMEDOUT when the deadline has
 * passed, so trying once queues nothing (and a hub callback gets
 * ETIMEDOUT, not EDEADLK). */
static int may_wait(int64_t deadline)
{
    if (deadline >= 0 && deadline <= gr_now()) {
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;
}

/* The result of a batch call that sent (or got) k and then failed. */
static ssize_t partial(size_t k)
{
    return k ? (ssize_t)k : -1;
}

ssize_t gr_xchan_send_many(gr_xchan *c, void *const *items, size_t n, int64_t deadline)
{
    gr__xwakes wl = {NULL, NULL};
    size_t sent = 0;
    gr__xwaiter w;
    xbatch b;

    if (!c || (!items && n)) {
        errno = EINVAL;
        return -1;
    }
    if (gr__check_cancel() != 0)
        return -1;
    gr__xlock(&c->lock);
    for (;;) {
        size_t room;

        if (c->closed) {
            errno = EPIPE;
            break;
        }
        if (!c->n)
            sent += to_receivers(c, items + sent, n - sent, &wl);
        /* No room while senders wait: they wait only on a full buffer. */
        room = min_size(n - sent, c->cap - c->n);
        ring_put(c, items + sent, room);
        sent += room;
        if (sent == n) {
            gr__xunlock(&c->lock);
            gr__xwake_flush(&wl);
            return (ssize_t)n;
        }
        if (c->capacity == GR_XCHAN_UNBOUNDED) {
            if (grow(c) != 0)
                break;
            continue;
        }
        if (may_wait(deadline) != 0)
            break;
        gr__xwake_flush(&wl); /* rare: receivers filled and still no room */
        b = (xbatch){.src = items + sent, .n = n - sent};
        gr__xq_push(&c->senders, &w);
        w.data = &b;
        /* On success a receiver took all of b; otherwise maybe part. */
        if (gr__xwait(&c->senders, &c->lock, &w, deadline, "channel send") == 0)
            return (ssize_t)n;
        return partial(sent + b.done);
    }
    gr__xunlock(&c->lock);
    gr__xwake_flush(&wl);
    return partial(sent);
}

ssize_t gr_xchan_recv_many(gr_xchan *c, void **items, size_t n, int64_t deadline)
{
    gr__xwakes wl = {NULL, NULL};
    gr__xwaiter w;
    xbatch b;
    size_t got;

    if (!c || !items) {
        errno = EINVAL;
        return -1;
    }
    if (n == 0)
        return 0;
    if (gr__check_cancel() != 0)
        return -1;
    gr__xlock(&c->lock);
    if ((got = take(c, items, n, &wl)) > 0) {
        gr__xunlock(&c->lock);
        gr__xwake_flush(&wl);
        return (ssize_t)got;
    }
    if (c->closed || may_wait(deadline) != 0) {
        if (c->closed)
            errno = EPIPE;
        gr__xunlock(&c->lock);
        return -1;
    }
    b = (xbatch){.dst = items, .n = n};
    gr__xq_push(&c->receivers, &w);
    w.data = &b;
    if (gr__xwait(&c->receivers, &c->lock, &w, deadline, "channel receive") != 0)
        return -1;
    return (ssize_t)b.done;
}

int gr_xchan_send(gr_xchan *c, void *item, int64_t deadline)
{
    return gr_xchan_send_many(c, &item, 1, deadline) == 1 ? 0 : -1;
}

int gr_xchan_recv(gr_xchan *c, void **item, int64_t deadline)
{
    void *v;

    if (gr_xchan_recv_many(c, &v, 1, deadline) != 1)
        return -1;
    if (item)
        *item = v;
    return 0;
}

void gr_xchan_close(gr_xchan *c)
{
    gr__xwakes wl = {NULL, NULL};
    gr__xwaiter *w;

    if (!c)
        return;
    gr__xlock(&c->lock);
    c->closed = 1;
    while ((w = gr__xq_pop(&c->senders)))
        gr__xwake_later(&wl, w, NULL, EPIPE);
    while ((w = gr__xq_pop(&c->receivers)))
        gr__xwake_later(&wl, w, NULL, EPIPE);
    gr__xunlock(&c->lock);
    gr__xwake_flush(&wl);
}

static size_t count_waiters(const gr__xq *q)
{
    size_t n = 0;

    for (const gr__xwaiter *w = q->head_; w; w = w->next)
        n++;
    return n;
}

int gr_xchan_stats_get(gr_xchan *c, gr_xchan_stats *st)
{
    if (!c || !st) {
        errno = EINVAL;
        return -1;
    }
    gr__xlock(&c->lock);
    st->size = c->n;
    st->capacity = c->capacity;
    st->senders = count_waiters(&c->senders);
    st->receivers = count_waiters(&c->receivers);
    st->closed = c->closed;
    gr__xunlock(&c->lock);
    return 0;
}
