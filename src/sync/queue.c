/* Queues (gevent.queue): FIFO, LIFO and priority order, bounded or not,
 * all joinable, plus gr_queue_post, the one thread-safe entry.
 *
 * Handoff keeps the order fair without retries:
 * - getters park only while the queue is empty, and a put with a parked
 *   getter hands it the item directly (it never enters storage);
 * - putters park only while the queue is full, and a get that makes room
 *   stores the first parked putter's item on its behalf and wakes it with
 *   its put complete, so a newcomer finds the queue full again. */
#include "sync/sync.h"

#include <stdatomic.h>
#include <stdlib.h>

typedef struct qent {
    void *item;
    uint64_t seq; /* put order: ties of the priority heap go first-in first */
} qent;

/* An item posted from another thread, on its way to the hub, and kept
 * aside if storage could not grow when it arrived. */
typedef struct qpost {
    struct qpost *next;
    gr_queue *q;
    void *item;
} qpost;

struct gr_queue {
    gr__wq getters, putters, peekers, joiners;
    qent *v; /* FIFO: a ring from head; LIFO: a stack; PRIORITY: a heap */
    size_t cap, head, n;
    size_t maxsize;    /* 0: unbounded */
    size_t unfinished; /* items put and not yet marked done */
    uint64_t seq;
    int kind;
    int (*cmp)(const void *a, const void *b);
    gr_hub *hub;
    qpost *spill, *spill_tail; /* posted items that found no room to grow */
    size_t nspill;
    atomic_size_t inflight; /* posts not yet arrived: the only shared field */
};

/* Room for a bounded queue's whole content up to this, so that its puts
 * never allocate; beyond it (and for unbounded queues) storage doubles. */
#define QUEUE_PREALLOC_MAX 1024
#define QUEUE_INITIAL 16

/* ------------------------------------------------------------- storage */

static int before(const gr_queue *q, const qent *a, const qent *b)
{
    int c = q->cmp(a->item, b->item);

    return c < 0 || (c == 0 && a->seq < b->seq);
}

static void sift_up(gr_queue *q, size_t i)
{
    qent e = q->v[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!before(q, &e, &q->v[parent]))
            break;
        q->v[i] = q->v[parent];
        i = parent;
    }
    q->v[i] = e;
}

static void sift_down(gr_queue *q, size_t i)
{
    qent e = q->v[i];

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= q->n)
            break;
        if (child + 1 < q->n && before(q, &q->v[child + 1], &q->v[child]))
            child++;
        if (!before(q, &q->v[child], &e))
            break;
        q->v[i] = q->v[child];
        i = child;
    }
    q->v[i] = e;
}

static size_t ring_at(const gr_queue *q, size_t i)
{
    size_t at = q->head + i;

    return at >= q->cap ? at - q->cap : at;
}

static int grow(gr_queue *q)
{
    size_t cap = q->cap * 2;
    qent *v;

    if (cap < q->cap || cap > SIZE_MAX / sizeof *v || !(v = gr__malloc(cap * sizeof *v))) {
        errno = ENOMEM;
        return -1;
    }
    /* Unrolls the FIFO ring; the stack and the heap start at 0 anyway. */
    for (size_t i = 0; i < q->n; i++)
        v[i] = q->v[ring_at(q, i)];
    free(q->v);
    q->v = v;
    q->cap = cap;
    q->head = 0;
    return 0;
}

static int store(gr_queue *q, void *item)
{
    qent e = {item, q->seq++};

    if (q->n == q->cap && grow(q) != 0)
        return -1;
    if (q->kind == GR_QUEUE_FIFO) {
        q->v[ring_at(q, q->n++)] = e;
    } else {
        q->v[q->n++] = e;
        if (q->kind == GR_QUEUE_PRIORITY)
            sift_up(q, q->n - 1);
    }
    return 0;
}

static void *front(const gr_queue *q)
{
    return q->v[q->kind == GR_QUEUE_LIFO ? q->n - 1 : q->head].item;
}

static void *take(gr_queue *q)
{
    void *item = front(q);

    q->n--;
    if (q->kind == GR_QUEUE_FIFO) {
        q->head = ring_at(q, 1);
    } else if (q->kind == GR_QUEUE_PRIORITY && q->n > 0) {
        q->v[0] = q->v[q->n];
        sift_down(q, 0);
    }
    return item;
}

/* Move spilled posts into storage, in arrival order, while it can grow. */
static void unspill(gr_queue *q)
{
    qpost *p;

    while ((p = q->spill) && store(q, p->item) == 0) {
        q->spill = p->next;
        if (!q->spill)
            q->spill_tail = NULL;
        q->nspill--;
        free(p);
    }
}

static size_t length(const gr_queue *q)
{
    return q->n + q->nspill;
}

/* ------------------------------------------------------- moving items */

/* Add an item the queue has room for (or that ignores maxsize): to the
 * first parked getter, else into storage, where waiting peekers see it. */
static int deliver(gr_queue *q, void *item)
{
    if (gr__handoff(&q->getters, item) != 0) {
        if (store(q, item) != 0)
            return -1;
        if (!gr__wq_empty(&q->peekers))
            gr__wake_all(&q->peekers, front(q), 0);
    }
    q->unfinished++;
    return 0;
}

/* Let parked putters in while there is room; each is woken with its put
 * done, or with ENOMEM if storage could not grow for its item. */
static void admit_putters(gr_queue *q)
{
    gr__waiter *w;

    while (q->maxsize && length(q) < q->maxsize && (w = gr__wq_pop(&q->putters))) {
        if (store(q, w->data) != 0) {
            gr__wake(w, ENOMEM);
            continue;
        }
        q->unfinished++;
        gr__wake(w, 0);
    }
}

/* ---------------------------------------------------------------- API */

gr_queue *gr_queue_new(int kind, size_t maxsize, int (*cmp)(const void *a, const void *b))
{
    gr_hub *h;
    gr_queue *q;

    if (kind < GR_QUEUE_FIFO || kind > GR_QUEUE_PRIORITY || (kind == GR_QUEUE_PRIORITY && !cmp)) {
        errno = EINVAL;
        return NULL;
    }
    if (!(h = gr_hub_current()))
        return NULL;
    if (!(q = gr__calloc(1, sizeof *q))) {
        errno = ENOMEM;
        return NULL;
    }
    q->cap = maxsize && maxsize <= QUEUE_PREALLOC_MAX ? maxsize : QUEUE_INITIAL;
    if (!(q->v = gr__malloc(q->cap * sizeof *q->v))) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->kind = kind;
    q->maxsize = maxsize;
    q->cmp = cmp;
    q->hub = h;
    atomic_init(&q->inflight, 0);
    return q;
}

int gr_queue_free(gr_queue *q)
{
    if (!q)
        return 0;
    /* A waiter still linked may be one that timed out and has yet to run
     * and unlink itself: it will touch the queue. */
    if (!gr__wq_empty(&q->getters) || !gr__wq_empty(&q->putters) || !gr__wq_empty(&q->peekers) ||
        !gr__wq_empty(&q->joiners) || atomic_load(&q->inflight) > 0) {
        errno = EBUSY;
        return -1;
    }
    while (q->spill) {
        qpost *p = q->spill;

        q->spill = p->next;
        free(p);
    }
    free(q->v);
    free(q);
    return 0;
}

int gr_queue_put(gr_queue *q, void *item, int64_t deadline)
{
    gr__waiter w;

    if (gr__check_cancel() != 0)
        return -1;
    unspill(q);
    if (q->maxsize && length(q) >= q->maxsize) {
        /* Success means a getter stored the item for us (admit_putters). */
        w.data = item;
        return gr__wait_queue(&q->putters, &w, deadline, "queue put");
    }
    return deliver(q, item);
}

int gr_queue_get(gr_queue *q, void **item, int64_t deadline)
{
    gr__waiter w;

    if (gr__check_cancel() != 0)
        return -1;
    unspill(q);
    if (q->n > 0) {
        w.data = take(q);
        admit_putters(q);
    } else if (gr__wait_queue(&q->getters, &w, deadline, "queue get") != 0) {
        return -1;
    }
    if (item)
        *item = w.data;
    return 0;
}

int gr_queue_peek(gr_queue *q, void **item, int64_t deadline)
{
    gr__waiter w;

    unspill(q);
    if (q->n > 0)
        w.data = front(q);
    else if (gr__wait_queue(&q->peekers, &w, deadline, "queue peek") != 0)
        return -1;
    if (item)
        *item = w.data;
    return 0;
}

size_t gr_queue_size(const gr_queue *q)
{
    return length(q);
}

int gr_queue_task_done(gr_queue *q)
{
    if (q->unfinished == 0) {
        errno = EINVAL;
        return -1;
    }
    if (--q->unfinished == 0)
        gr__wake_all(&q->joiners, NULL, 0);
    return 0;
}

int gr_queue_join(gr_queue *q, int64_t deadline)
{
    gr__waiter w;

    if (q->unfinished == 0)
        return 0;
    return gr__wait_queue(&q->joiners, &w, deadline, "queue join");
}

/* A watch waits with the peekers: woken whole when an item is stored. */
int gr__queue_watch(gr_queue *q, gr__watch *wt)
{
    unspill(q);
    if (length(q) > 0)
        return 1;
    gr__watch_queue(wt, &q->peekers);
    return 0;
}

/* ------------------------------------------------------------ posting */

/* Runs in the queue's hub. An item that cannot be stored (no memory to
 * grow) waits in the spill list rather than being lost; so do the posts
 * behind it, to keep each poster's order. */
static void post_arrived(void *arg)
{
    qpost *p = arg;
    gr_queue *q = p->q;

    if (!q->spill && deliver(q, p->item) == 0) {
        free(p);
    } else {
        p->next = NULL;
        if (q->spill_tail)
            q->spill_tail->next = p;
        else
            q->spill = p;
        q->spill_tail = p;
        q->nspill++;
        q->unfinished++;
    }
    atomic_fetch_sub(&q->inflight, 1);
}

int gr_queue_post(gr_queue *q, void *item)
{
    qpost *p = gr__malloc(sizeof *p);

    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    p->q = q;
    p->item = item;
    /* Counted before the post, so gr_queue_free refuses (EBUSY) until the
     * item has arrived, instead of freeing what the callback will touch. */
    atomic_fetch_add(&q->inflight, 1);
    if (gr_hub_post(q->hub, post_arrived, p) != 0) {
        int err = errno;

        atomic_fetch_sub(&q->inflight, 1);
        free(p);
        errno = err;
        return -1;
    }
    return 0;
}
