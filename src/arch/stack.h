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
    char *lo;    /* lowest usable byte (the canary lives here) */
    size_t size; /* usable bytes above lo */
    int guarded; /* touching the page below lo faults */
} gr__stack;

#define GR__STACK_LIKELY(x) __builtin_expect(!!(x), 1)

/* Pointers in the free lists carry the guarded flag in their low bit
 * (stacks are page-aligned). */
#define GR__STACK_GUARDED_BIT ((uintptr_t)1)

typedef struct gr__stack_class {
    size_t size;     /* usable bytes */
    size_t region;   /* size + one page */
    uintptr_t *free; /* [0, ncold) cold (madvised), [ncold, nfree) warm */
    size_t nfree, capfree, ncold;
    size_t total; /* stacks of this class in all slabs */
    unsigned nslabs;
} gr__stack_class;

typedef struct gr__stack_pool {
    gr__stack_class *classes; /* one per distinct usable size */
    size_t nclasses;
    gr__stack_class *last;  /* the class last used: nearly always the one */
    struct gr__slab *slabs; /* every slab, for lookup and release */
    size_t nslabs, capslabs;
    int guard_mode; /* GR_GUARD_* */
    size_t mapped, guarded;
    size_t slab_bytes; /* address space of all slabs */
} gr__stack_pool;

/* Initialise an empty pool. guard_mode is one of GR_GUARD_*. */
void gr__stack_pool_init(gr__stack_pool *p, int guard_mode);

/* Unmap every slab. Stacks still in use become invalid. */
void gr__stack_pool_fini(gr__stack_pool *p);

/* Round a requested stack size up to what the pool hands out. */
size_t gr__stack_round(size_t size);

/* Take a stack of size usable bytes (a size from gr__stack_round). Returns
 * its free-list entry (see gr__stack_from_entry), or 0 with errno ENOMEM
 * when no slab can be mapped (or, with GR_GUARD_ALWAYS, guarded). Touches
 * no stack memory. The entry, a plain integer, stays in registers: a
 * gr__stack filled through a pointer and copied would cost a failed
 * store-to-load forward on the spawn path. */
uintptr_t gr__stack_get_slow(gr__stack_pool *p, size_t size);

static inline void gr__stack_from_entry(uintptr_t e, size_t size, gr__stack *out)
{
    out->lo = (char *)(e & ~GR__STACK_GUARDED_BIT);
    out->size = size;
    out->guarded = (e & GR__STACK_GUARDED_BIT) != 0;
}

/* The common case inline: a warm stack of the size last used. */
static inline uintptr_t gr__stack_get(gr__stack_pool *p, size_t size)
{
    gr__stack_class *c = p->last;

    if (GR__STACK_LIKELY(c && c->size == size && c->nfree > c->ncold))
        return c->free[--c->nfree];
    return gr__stack_get_slow(p, size);
}

/* Return a stack to its pool. No system call: it may be called while still
 * running on that stack, as long as nothing else runs before the caller
 * leaves it. */
void gr__stack_put_slow(gr__stack_pool *p, const gr__stack *s);

static inline void gr__stack_put(gr__stack_pool *p, const gr__stack *s)
{
    gr__stack_class *c = p->last;

    /* Room for every stack of the class was reserved when its slabs were
     * added: cannot fail. */
    if (c && c->size == s->size)
        c->free[c->nfree++] = (uintptr_t)s->lo | (s->guarded ? GR__STACK_GUARDED_BIT : 0);
    else
        gr__stack_put_slow(p, s);
}

/* Return a stack to its pool as cold: its pages are not the caller's to
 * give back (a forked child's discarded stacks, shared with the parent
 * until written), and it is reused after the warm ones. */
void gr__stack_put_cold(gr__stack_pool *p, const gr__stack *s);

/* How many stacks are pooled, ready for reuse. */
size_t gr__stack_pooled(const gr__stack_pool *p);

/* 1 when some size has more than keep warm stacks pooled (a trim would
 * give memory back). */
int gr__stack_surplus(const gr__stack_pool *p, size_t keep);

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
