/* The timer heap: a 4-ary min-heap of timers that live in their owners'
 * records (a green thread's timer sits on its own stack). Private to
 * src/core (and to the micro-benchmark that measures it). */
#ifndef GROVE_CORE_TIMER_H
#define GROVE_CORE_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct gr__timer {
    int64_t when; /* absolute ms */
    uint64_t seq; /* insertion order breaks ties: equal deadlines fire FIFO */
    uint32_t idx; /* position in the heap + 1; 0 when not armed */
} gr__timer;

/* The heap stores each key beside its pointer, so ordering it never
 * touches the timers themselves (they live in many different stacks). */
typedef struct gr__timer_slot {
    int64_t when;
    gr__timer *t;
} gr__timer_slot;

typedef struct gr__timer_heap {
    gr__timer_slot *v;
    uint32_t n, cap;
    uint64_t seq;
} gr__timer_heap;

/* Arming fails (ENOMEM) only beyond the reserved capacity: spawn reserves
 * one timer per green thread, so parking never fails for want of memory. */
int gr__timer_reserve(gr__timer_heap *h, size_t n);
int gr__timer_arm(gr__timer_heap *h, gr__timer *t, int64_t when);
void gr__timer_disarm(gr__timer_heap *h, gr__timer *t);
static inline gr__timer *gr__timer_min(const gr__timer_heap *h)
{
    return h->n ? h->v[0].t : NULL;
}
void gr__timer_heap_fini(gr__timer_heap *h);

#endif
