/* Green-thread stacks: carved from large mmap'd slabs, pooled for reuse.
 *
 * Each stack occupies a region of one page plus its usable size; the page
 * at the bottom is the guard. How a slab's guard pages are made:
 * - Linux >= 6.13: lightweight guard regions (madvise MADV_GUARD_INSTALL),
 *   page-table markers that cost no kernel mapping, so every stack has one;
 * - older kernels: mprotect(PROT_NONE), two kernel mappings per stack, made
 *   while they fit in a share of vm.max_map_count;
 * - otherwise none: the guard page is merely never touched, and the word at
 *   the bottom of the usable area (the canary, zero: a fresh page reads as
 *   zero, so arming it touches nothing) is checked at every switch.
 * See docs/design.md for the trade-off.
 *
 * A pool belongs to one hub (one OS thread); only the guard budget is
 * process-wide. Nothing here knows about green threads. */
#ifndef GROVE_ARCH_STACK_H
#define GROVE_ARCH_STACK_H

#include <stddef.h>
#include <stdint.h>

/* The canary: the word at the lowest usable address of every stack, zero
 * until an overflow writes over it. Stack users must leave the lowest
 * GR__STACK_RESERVED bytes alone. */
#define GR__STACK_CANARY UINT64_C(0)
#define GR__STACK_RESERVED 64

typedef struct gr__stack {
    char *lo;      /* lowest usable byte (the canary lives here) */
    size_t size;   /* usable bytes above lo */
    int guarded;   /* touching the page below lo faults */
} gr__stack;

typedef struct gr__stack_class gr__stack_class;

typedef struct gr__stack_pool {
    gr__stack_class *classes; /* one per distinct usable size */
    size_t nclasses;
    gr__stack_class *last;    /* the class last used: nearly always the one */
    struct gr__slab *slabs;   /* every slab, for lookup and release */
    size_t nslabs, capslabs;
    int guard_mode;           /* GR_GUARD_* */
    size_t mapped, guarded, free;
    size_t slab_bytes;        /* address space of all slabs */
} gr__stack_pool;

/* Initialise an empty pool. guard_mode is one of GR_GUARD_*. */
void gr__stack_pool_init(gr__stack_pool *p, int guard_mode);

/* Unmap every slab. Stacks still in use become invalid. */
void gr__stack_pool_fini(gr__stack_pool *p);

/* Take a stack of at least size usable bytes (a multiple of the page size
 * after rounding up). Returns 0, or -1 with ENOMEM when no slab can be
 * mapped (or, with GR_GUARD_ALWAYS, guarded). Touches no stack memory. */
int gr__stack_get(gr__stack_pool *p, size_t size, gr__stack *out);

/* Return a stack to its pool. No system call: it may be called while still
 * running on that stack, as long as nothing else runs before the caller
 * leaves it. */
void gr__stack_put(gr__stack_pool *p, const gr__stack *s);

/* Give the memory of pooled stacks beyond keep per size back to the kernel
 * (madvise); they stay mapped and reusable. Must not be called on a stack
 * in the pool. */
void gr__stack_trim(gr__stack_pool *p, size_t keep);

/* Find the stack whose region holds addr. Returns 1 and fills *out and
 * *in_guard (1 when addr is in its guard page) if found, else 0.
 * Async-signal-safe: reads the slab table only. */
int gr__stack_find(const gr__stack_pool *p, const void *addr, gr__stack *out, int *in_guard);

/* 1 when the stack's canary is intact. Guarded stacks are not checked:
 * their guard page catches overflows before anything is overwritten. */
static inline int gr__stack_canary_ok(const gr__stack *s)
{
    return s->guarded || *(const volatile uint64_t *)(const void *)s->lo == GR__STACK_CANARY;
}

/* Which guard pages this kernel gives: "madvise" (lightweight guard
 * regions), "mprotect" or "none" (GR_GUARD_NEVER). For reports. */
const char *gr__stack_guard_kind(const gr__stack_pool *p);

#endif
