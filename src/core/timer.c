/* Timers: a 4-ary min-heap keyed by (deadline, insertion order). Four
 * children per node halve the depth of a binary heap, and their keys share
 * one cache line; each key is stored beside its timer pointer so sifting
 * never dereferences a timer. Each timer knows its position, so cancelling
 * one is O(log n). */
#include "layout.h"

#include <errno.h>
#include <stdlib.h>

#define ARITY 4

static inline int earlier(const gr__timer_slot *a, const gr__timer_slot *b)
{
    /* Ties are rare: only then look at the insertion order. */
    return a->when < b->when || (a->when == b->when && a->t->seq < b->t->seq);
}

static inline void place(gr__timer_heap *h, uint32_t i, gr__timer_slot s)
{
    h->v[i] = s;
    s.t->idx = i + 1;
}

static void sift_up(gr__timer_heap *h, uint32_t i, gr__timer_slot s)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / ARITY;

        if (!earlier(&s, &h->v[parent]))
            break;
        place(h, i, h->v[parent]);
        i = parent;
    }
    place(h, i, s);
}

static void sift_down(gr__timer_heap *h, uint32_t i, gr__timer_slot s)
{
    for (;;) {
        uint32_t first = ARITY * i + 1, best, end;

        if (first >= h->n)
            break;
        end = first + ARITY < h->n ? first + ARITY : h->n;
        best = first;
        for (uint32_t c = first + 1; c < end; c++)
            if (earlier(&h->v[c], &h->v[best]))
                best = c;
        if (!earlier(&h->v[best], &s))
            break;
        place(h, i, h->v[best]);
        i = best;
    }
    place(h, i, s);
}

int gr__timer_reserve(gr__timer_heap *h, size_t n)
{
    size_t cap = h->cap ? h->cap : 64;
    gr__timer_slot *v;

    if (n <= h->cap)
        return 0;
    while (cap < n)
        cap *= 2;
    if (cap > UINT32_MAX || !(v = gr__realloc(h->v, cap * sizeof *v))) {
        errno = ENOMEM;
        return -1;
    }
    h->v = v;
    h->cap = (uint32_t)cap;
    return 0;
}

int gr__timer_arm(gr__timer_heap *h, gr__timer *t, int64_t when)
{
    if (t->idx)
        gr__timer_disarm(h, t);
    if (h->n == h->cap && gr__timer_reserve(h, (size_t)h->n + 1) != 0)
        return -1;
    t->when = when;
    t->seq = h->seq++;
    sift_up(h, h->n++, (gr__timer_slot){when, t});
    return 0;
}

void gr__timer_disarm(gr__timer_heap *h, gr__timer *t)
{
    uint32_t i = t->idx - 1;
    gr__timer_slot last;

    if (!t->idx)
        return;
    t->idx = 0;
    last = h->v[--h->n];
    if (i == h->n)
        return;
    /* The last timer takes the hole and moves whichever way it must. */
    if (i > 0 && earlier(&last, &h->v[(i - 1) / ARITY]))
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
