/* How deep a green thread's stack goes: the figure behind a stack size
 * choice (a request of the HTTP server, say). Stacks come from a pool and
 * hold what their last user wrote, so a mark first gives the pages below
 * the caller's current depth back to the kernel (they read as zero, and are
 * memory returned as well); the deepest point since is the lowest resident
 * page (mincore) and, within it, the lowest word written non-zero. */
#define _GNU_SOURCE
#include "layout.h"

#include <sys/mman.h>
#include <unistd.h>

/* The part of the running green thread's stack below the page it runs in,
 * leaving the canary's page alone: [*lo, *hi). 0 when there is none (the
 * root or a hub callback, or under ASan, whose fake frames live elsewhere). */
#if defined(GR__ASAN)
static int below_current(char **lo, char **hi, char **top)
{
    (void)lo, (void)hi, (void)top;
    return 0;
}
#else
static int below_current(char **lo, char **hi, char **top)
{
    gr_hub *h = gr__tls_hub;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    char here;
    gr__g *g;

    if (!h || (g = h->current)->kind != GR__KIND_GREEN)
        return 0;
    *lo = g->stack.lo + page; /* page-aligned, above the canary's page */
    *hi = (char *)(((uintptr_t)&here & ~(page - 1)) - page); /* a page of slack */
    *top = g->start_top;
    return *hi > *lo;
}
#endif

void gr__stack_mark(void)
{
    char *lo, *hi, *top;

    if (below_current(&lo, &hi, &top))
        madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
}

size_t gr__stack_deepest(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char vec[256];
    char *lo, *hi, *top;

    if (!below_current(&lo, &hi, &top))
        return 0;
    /* A window at a time, from the bottom: stacks are rarely used deeply,
     * so the first resident page is usually near the top. */
    for (char *p = lo; p < hi; p += sizeof vec * page) {
        size_t n = (size_t)(hi - p) / page;

        if (n > sizeof vec)
            n = sizeof vec;
        if (mincore(p, n * page, vec) != 0)
            return 0;
        for (size_t i = 0; i < n; i++) {
            const uint64_t *w = (const uint64_t *)(const void *)(p + i * page);
            size_t k = 0;

            if (!(vec[i] & 1))
                continue;
            /* A page read but never written maps the zero page: look on. */
            while (k < page / sizeof *w && !w[k])
                k++;
            if (k < page / sizeof *w)
                return (size_t)(top - (const char *)&w[k]);
        }
    }
    return (size_t)(top - hi);
}
