/* libgrove-patch.so's own parts: the originals (resolved before main, or
 * earlier on demand, without allocating or recursing), the family
 * switches (GROVE_PATCH, gr_patch_set) and the public gr_patch_ calls. */
#include "patch/patch.h"

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>

gr__patch_orig gr__orig;
unsigned gr__patch_on = GR_PATCH_ALL;
int gr__patch_used;

static const struct entry {
    const char *name;
    size_t off;
} entries[] = {
#define GR_PATCH(fam, how, ret, name, params, note) {#name, offsetof(gr__patch_orig, name)},
#include "patch/table.h"
#undef GR_PATCH
};

#define NENTRIES (sizeof entries / sizeof entries[0])

/* ------------------------------------------------------------ originals */

static int resolved;                /* all looked up (atomic) */
static __thread int resolving_here; /* this thread is inside dlsym */

int gr__patch_resolve(void)
{
    if (__atomic_load_n(&resolved, __ATOMIC_ACQUIRE))
        return 1;
    if (resolving_here)
        return 0; /* dlsym called the allocator, which called us */
    resolving_here = 1;
    for (size_t i = 0; i < NENTRIES; i++) {
        void *p = dlsym(RTLD_NEXT, entries[i].name);

        __atomic_store_n((void **)((char *)&gr__orig + entries[i].off), p, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&resolved, 1, __ATOMIC_RELEASE);
    resolving_here = 0;
    return 1;
}

long gr__patch_enosys(void)
{
    errno = ENOSYS;
    return -1;
}

/* ------------------------------------------------------------- families */

static const struct family {
    const char *name;
    unsigned bit;
} families[] = {
    {"socket", GR_PATCH_SOCKET}, {"select", GR_PATCH_SELECT},
    {"time", GR_PATCH_TIME},     {"dns", GR_PATCH_DNS},
    {"signal", GR_PATCH_SIGNAL}, {"process", GR_PATCH_PROCESS},
    {"all", GR_PATCH_ALL},       {"none", 0},
};

/* The bits of the item s[0..len), or -1. */
static long family_bits(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strlen(families[i].name) == len && !strncmp(families[i].name, s, len))
            return families[i].bit;
    return -1;
}

/* Apply spec to *on item by item; unknown items are counted in *bad and
 * the first is pointed to by *first_bad (with its length). */
static void apply_spec(const char *spec, unsigned *on, int *bad, const char **first_bad,
                       size_t *first_len)
{
    const char *p = spec;

    while (*p) {
        size_t len = strcspn(p, ",");
        const char *item = p;
        size_t ilen = len;
        int minus = 0;
        long bits;

        while (ilen && (*item == ' ' || *item == '\t'))
            item++, ilen--;
        while (ilen && (item[ilen - 1] == ' ' || item[ilen - 1] == '\t'))
            ilen--;
        if (ilen && *item == '-')
            minus = 1, item++, ilen--;
        if (ilen) {
            if ((bits = family_bits(item, ilen)) < 0) {
                if (!(*bad)++)
                    *first_bad = item, *first_len = ilen;
            } else if (minus) {
                *on &= ~(unsigned)bits;
            } else {
                *on = bits ? *on | (unsigned)bits : 0;
            }
        }
        p += len + (p[len] == ',');
    }
}

int gr_patch_parse(const char *spec, unsigned *out)
{
    unsigned on = 0;
    int bad = 0;
    const char *first = NULL;
    size_t flen = 0;

    if (!spec || !out) {
        errno = EINVAL;
        return -1;
    }
    apply_spec(spec, &on, &bad, &first, &flen);
    if (bad) {
        errno = EINVAL;
        return -1;
    }
    *out = on;
    return 0;
}

int gr_patch_set(unsigned fams)
{
    if (fams & ~GR_PATCH_ALL) {
        errno = EINVAL;
        return -1;
    }
    if (__atomic_load_n(&gr__patch_used, __ATOMIC_RELAXED)) {
        errno = EBUSY;
        return -1;
    }
    __atomic_store_n(&gr__patch_on, fams, __ATOMIC_RELAXED);
    return 0;
}

unsigned gr_patch_families(void)
{
    return __atomic_load_n(&gr__patch_on, __ATOMIC_RELAXED);
}

void *gr_patch_original(const char *name)
{
    if (!name) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < NENTRIES; i++) {
        if (strcmp(entries[i].name, name))
            continue;
        if (gr__patch_resolve()) {
            void *p = *(void **)((char *)&gr__orig + entries[i].off);

            if (p)
                return p;
        }
        errno = ENOSYS;
        return NULL;
    }
    errno = ENOENT;
    return NULL;
}

int gr_patch_cooperative(void)
{
    return gr__glue_in_green();
}

/* --------------------------------------------------------------- startup */

/* A bad GROVE_PATCH is said once on stderr; the known items still apply.
 * Written with one write(2): no stdio this early. */
static void warn_bad_spec(const char *first, size_t len, unsigned on)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "grove: GROVE_PATCH: unknown family '%.*s' ignored (known: socket, select, "
                     "time, dns, signal, process, all, none); patching 0x%x\n",
                     (int)(len > 64 ? 64 : len), first, on);

    if (n > 0)
        syscall(SYS_write, 2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

/* Before every other constructor of this object, and before main: an
 * allocator or another library's constructor may call in earlier, and is
 * served by gr__patch_resolve on demand. */
__attribute__((constructor(101))) static void patch_init(void)
{
    const char *spec = getenv("GROVE_PATCH");

    gr__patch_resolve();
    if (spec) {
        unsigned on = 0;
        int bad = 0;
        const char *first = NULL;
        size_t flen = 0;

        apply_spec(spec, &on, &bad, &first, &flen);
        gr__patch_on = on;
        if (bad)
            warn_bad_spec(first, flen, on);
    }
}

/* ------------------------------------------------------------ deadlines */

int64_t gr__deadline_in_ms(int64_t ms)
{
    struct timespec ts;

    if (ms < 0)
        return -1;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000;
    return gr__deadline_in_ts(&ts);
}

/* Rounded up, so a wait is never shorter than asked: the hub's timers
 * count whole ms of the same monotonic clock. */
int64_t gr__deadline_in_ts(const struct timespec *ts)
{
    struct timespec now;
    int64_t ns, ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (ts->tv_sec > INT64_MAX / 4000000000LL)
        return -1; /* centuries: forever */
    ns = (int64_t)now.tv_nsec + ts->tv_nsec;
    ms = ((int64_t)now.tv_sec + ts->tv_sec) * 1000 + (ns + 999999) / 1000000;
    return ms;
}
