/* Slab allocator for green-thread stacks (contract in stack.h). */
#define _GNU_SOURCE
#include "stack.h"

#include "fail.h"

#include "grove.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Slabs live in fixed chunks so the signal handler can walk them while a
 * spawn adds one: nothing it reads ever moves. */
#define SLAB_CHUNK 256
#define SLAB_CHUNKS 256

/* A class's k-th slab holds FIRST_SLAB << k stacks, up to SLAB_BYTES_MAX:
 * few mappings per stack for large populations, little address space for
 * small ones. */
#define FIRST_SLAB 16
#define SLAB_BYTES_MAX ((size_t)64 << 20)

#define GUARDED_BIT GR__STACK_GUARDED_BIT

struct gr__slab {
    char *base;
    size_t bytes;
    size_t region; /* page + usable size of each stack */
    int guarded;   /* 0 none, 1 lightweight, 2 mprotect (costs mappings) */
};

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 */
#endif

/* mprotect guards cost kernel mappings, a process-wide resource: their
 * budget is shared by every hub. */
static atomic_size_t guard_maps_used;
static size_t guard_maps_budget;
static size_t page_size;
/* -1 unknown, 0 no, 1 yes: does the kernel take MADV_GUARD_INSTALL? */
static atomic_int light_guards = -1;

static size_t read_max_map_count(void)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
    unsigned long v = 65530;

    if (f) {
        if (fscanf(f, "%lu", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

/* Once for the process: hubs of several OS threads start at once. */
static pthread_once_t limits_once = PTHREAD_ONCE_INIT;

static void read_limits(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    /* Half of the map count for guards leaves the rest to malloc,
     * libraries and the unguarded slabs. */
    guard_maps_budget = read_max_map_count() / 2;
}

void gr__stack_pool_init(gr__stack_pool *p, int guard_mode)
{
    memset(p, 0, sizeof *p);
    p->guard_mode = guard_mode;
    pthread_once(&limits_once, read_limits);
}

const char *gr__stack_guard_kind(const gr__stack_pool *p)
{
    if (p->guard_mode == GR_GUARD_NEVER)
        return "none";
    return atomic_load(&light_guards) == 0 ? "mprotect" : "madvise";
}

static struct gr__slab *slab_at(const gr__stack_pool *p, size_t i)
{
    struct gr__slab **chunks = (struct gr__slab **)p->slabs;

    return &chunks[i / SLAB_CHUNK][i % SLAB_CHUNK];
}

void gr__stack_pool_fini(gr__stack_pool *p)
{
    struct gr__slab **chunks = (struct gr__slab **)p->slabs;

    for (size_t i = 0; i < p->nslabs; i++) {
        struct gr__slab *s = slab_at(p, i);
        munmap(s->base, s->bytes);
        if (s->guarded == 2)
            atomic_fetch_sub(&guard_maps_used, 2 * (s->bytes / s->region));
    }
    for (size_t c = 0; chunks && c < SLAB_CHUNKS && chunks[c]; c++)
        free(chunks[c]);
    free(chunks);
    for (size_t i = 0; i < p->nclasses; i++)
        free(p->classes[i].free);
    free(p->classes);
    memset(p, 0, sizeof *p);
}

static gr__stack_class *class_for(gr__stack_pool *p, size_t size)
{
    gr__stack_class *c;

    if (p->last && p->last->size == size)
        return p->last;
    for (size_t i = 0; i < p->nclasses; i++)
        if (p->classes[i].size == size)
            return p->last = &p->classes[i];
    c = gr__realloc(p->classes, (p->nclasses + 1) * sizeof *c);
    if (!c)
        return NULL;
    p->classes = c;
    c = &p->classes[p->nclasses++];
    memset(c, 0, sizeof *c);
    c->size = size;
    c->region = size + page_size;
    return p->last = c;
}

static int reserve_guard_maps(gr__stack_pool *p, size_t n)
{
    size_t want = 2 * n;

    if (p->guard_mode == GR_GUARD_ALWAYS) {
        atomic_fetch_add(&guard_maps_used, want);
        return 1;
    }
    if (atomic_fetch_add(&guard_maps_used, want) + want <= guard_maps_budget)
        return 1;
    atomic_fetch_sub(&guard_maps_used, want);
    return 0;
}

/* Lightweight guards: no mapping cost, so every stack gets one. Returns 1
 * on success, 0 when the kernel lacks them (then never tried again). */
static int light_guard_slab(char *base, size_t n, size_t region)
{
    if (atomic_load(&light_guards) == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (madvise(base + i * region, page_size, MADV_GUARD_INSTALL) != 0) {
            if (i == 0 && (errno == EINVAL || errno == ENOSYS)) {
                atomic_store(&light_guards, 0);
                return 0;
            }
            return -1;
        }
    }
    atomic_store(&light_guards, 1);
    return 1;
}

static int mprotect_guard_slab(char *base, size_t n, size_t region)
{
    for (size_t i = 0; i < n; i++)
        if (mprotect(base + i * region, page_size, PROT_NONE) != 0)
            return -1;
    return 0;
}

/* Returns 2 (mprotect guards: budgeted), 1 (lightweight guards), 0 (none),
 * -1 (GR_GUARD_ALWAYS could not guard). */
static int guard_slab(gr__stack_pool *p, char *base, size_t n, size_t region)
{
    int light;

    if (p->guard_mode == GR_GUARD_NEVER)
        return 0;
    if ((light = light_guard_slab(base, n, region)) != 0)
        return light > 0 ? 1 : (p->guard_mode == GR_GUARD_ALWAYS ? -1 : 0);
    if (!reserve_guard_maps(p, n))
        return 0;
    if (mprotect_guard_slab(base, n, region) == 0)
        return 2;
    atomic_fetch_sub(&guard_maps_used, 2 * n);
    /* Out of mappings: undo the guards already made. */
    mprotect(base, n * region, PROT_READ | PROT_WRITE);
    return p->guard_mode == GR_GUARD_ALWAYS ? -1 : 0;
}

static struct gr__slab *slab_slot(gr__stack_pool *p)
{
    struct gr__slab **chunks = (struct gr__slab **)p->slabs;
    size_t c = p->nslabs / SLAB_CHUNK;

    if (!chunks) {
        chunks = gr__calloc(SLAB_CHUNKS, sizeof *chunks);
        if (!chunks)
            return NULL;
        p->slabs = (struct gr__slab *)chunks;
    }
    if (c >= SLAB_CHUNKS)
        return NULL;
    if (!chunks[c] && !(chunks[c] = gr__calloc(SLAB_CHUNK, sizeof **chunks)))
        return NULL;
    return &chunks[c][p->nslabs % SLAB_CHUNK];
}

static int grow_free(gr__stack_class *c, size_t need)
{
    size_t cap = c->capfree ? c->capfree : 64;
    uintptr_t *v;

    while (cap < need)
        cap *= 2;
    if (cap == c->capfree)
        return 0;
    v = gr__realloc(c->free, cap * sizeof *v);
    if (!v)
        return -1;
    c->free = v;
    c->capfree = cap;
    return 0;
}

static int add_slab(gr__stack_pool *p, gr__stack_class *c)
{
    size_t max_n = SLAB_BYTES_MAX / c->region;
    size_t n = (size_t)FIRST_SLAB << (c->nslabs < 10 ? c->nslabs : 10);
    struct gr__slab *s = slab_slot(p);
    char *base;
    int guarded;

    if (max_n < 1)
        max_n = 1;
    if (n > max_n)
        n = max_n;
    if (!s || grow_free(c, c->total + n) != 0)
        return -1;
    base = gr__mmap(NULL, n * c->region, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED)
        return -1;
    /* A huge page would turn each idle stack's one touched page into 2 MiB. */
    madvise(base, n * c->region, MADV_NOHUGEPAGE);
    if ((guarded = guard_slab(p, base, n, c->region)) < 0) {
        munmap(base, n * c->region);
        return -1;
    }
    *s = (struct gr__slab){base, n * c->region, c->region, guarded};
    p->nslabs++;
    /* The free list is a LIFO: push from the top of the slab down so the
     * lowest stack is handed out first and use stays dense. */
    memmove(c->free + n, c->free, c->nfree * sizeof *c->free);
    for (size_t i = 0; i < n; i++)
        c->free[i] =
            (uintptr_t)(base + (n - 1 - i) * c->region + page_size) | (guarded ? GUARDED_BIT : 0);
    /* New stacks are untouched memory: cold, like madvised ones. */
    c->nfree += n;
    c->ncold += n;
    c->total += n;
    c->nslabs++;
    p->mapped += n;
    p->slab_bytes += n * c->region;
    if (guarded)
        p->guarded += n;
    return 0;
}

size_t gr__stack_round(size_t size)
{
    pthread_once(&limits_once, read_limits);
    return (size + page_size - 1) & ~(page_size - 1);
}

uintptr_t gr__stack_get_slow(gr__stack_pool *p, size_t size)
{
    gr__stack_class *c = class_for(p, size);
    uintptr_t e;

    if (!c || (c->nfree == 0 && add_slab(p, c) != 0)) {
        errno = ENOMEM;
        return 0;
    }
    e = c->free[--c->nfree];
    if (c->ncold > c->nfree)
        c->ncold = c->nfree;
    return e;
}

void gr__stack_put_slow(gr__stack_pool *p, const gr__stack *s)
{
    gr__stack_class *c = class_for(p, s->size);

    c->free[c->nfree++] = (uintptr_t)s->lo | (s->guarded ? GUARDED_BIT : 0);
}

void gr__stack_put_cold(gr__stack_pool *p, const gr__stack *s)
{
    gr__stack_class *c = class_for(p, s->size);

    /* [0, ncold) is the cold part: move its first warm neighbour out of
     * the way, to the end. */
    c->free[c->nfree++] = c->free[c->ncold];
    c->free[c->ncold++] = (uintptr_t)s->lo | (s->guarded ? GUARDED_BIT : 0);
}

size_t gr__stack_pooled(const gr__stack_pool *p)
{
    size_t n = 0;

    for (size_t i = 0; i < p->nclasses; i++)
        n += p->classes[i].nfree;
    return n;
}

int gr__stack_surplus(const gr__stack_pool *p, size_t keep)
{
    for (size_t i = 0; i < p->nclasses; i++)
        if (p->classes[i].nfree - p->classes[i].ncold > keep)
            return 1;
    return 0;
}

void gr__stack_trim(gr__stack_pool *p, size_t keep)
{
    for (size_t i = 0; i < p->nclasses; i++) {
        gr__stack_class *c = &p->classes[i];

        while (c->nfree - c->ncold > keep) {
            char *lo = (char *)(c->free[c->ncold++] & ~GUARDED_BIT);
            madvise(lo, c->size, MADV_DONTNEED);
        }
    }
}

int gr__stack_find(const gr__stack_pool *p, const void *addr, gr__stack *out, int *in_guard)
{
    const char *a = addr;

    for (size_t i = 0; i < p->nslabs; i++) {
        const struct gr__slab *s = slab_at(p, i);

        if (a >= s->base && a < s->base + s->bytes) {
            size_t idx = (size_t)(a - s->base) / s->region;
            char *region = s->base + idx * s->region;

            out->lo = region + page_size;
            out->size = s->region - page_size;
            out->guarded = s->guarded != 0;
            *in_guard = a < out->lo;
            return 1;
        }
    }
    return 0;
}
