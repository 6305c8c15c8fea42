/* Timers: a binary min-heap keyed by (deadline, insertion order), with each
 * timer knowing its own position so it can be cancelled in O(log n). The
 * timer records live in the green threads that wait; the heap only points
 * at them. */
#include "core.h"

#include <errno.h>
#include <stdlib.h>

static int earlier(const gr__timer *a, const gr__timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void place(gr__timer_heap *h, uint32_t i, gr__timer *t)
{
    h->v[i] = t;
    t->idx = i + 1;
}

static void sift_up(gr__timer_heap *h, uint32_t i, gr__timer *t)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;

        if (!earlier(t, h->v[parent]))
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, t);
}

static void sift_down(gr__timer_heap *h, uint32_t i, gr__timer *t)
{
    for (;;) {
        uint32_t c = 2 * i + 1;

        if (c >= h->n)
            break;
        if (c + 1 < h->n && earlier(h->v[c + 1], h->v[c]))
            c++;
        if (!earlier(h->v[c], t))
            break;
        place(h, i, h->v[c]);
        i = c;
    }
    place(h, i, t);
}

int gr__timer_arm(gr__timer_heap *h, gr__timer *t, int64_t when)
{
    if (t->idx)
        gr__timer_disarm(h, t);
    if (h->n == h->cap) {
        uint32_t cap = h->cap ? 2 * h->cap : 64;
        gr__timer **v = realloc(h->v, cap * sizeof *v);

        if (!v) {
            errno = ENOMEM;
            return -1;
        }
        h->v = v;
        h->cap = cap;
    }
    t->when = when;
    t->seq = h->seq++;
    sift_up(h, h->n++, t);
    return 0;
}

void gr__timer_disarm(gr__timer_heap *h, gr__timer *t)
{
    uint32_t i = t->idx - 1;
    gr__timer *last;

    if (!t->idx)
        return;
    t->idx = 0;
    last = h->v[--h->n];
    if (i == h->n)
        return;
    /* The last timer takes the hole and moves whichever way it must. */
    if (i > 0 && earlier(last, h->v[(i - 1) / 2]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

void gr__timer_heap_fini(gr__timer_heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
