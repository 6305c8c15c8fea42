/* Helpers of the synchronisation tests (test_sync.c, test_queue.c): a
 * trail of marks that asserts the exact order in which green threads got
 * somewhere, and the moment two racing threads' timers share. */
#ifndef GROVE_TEST_SYNC_COMMON_H
#define GROVE_TEST_SYNC_COMMON_H

#include "common.h"

static char trail[256];
static size_t ntrail;

static inline void mark(char c)
{
    cr_assert_lt(ntrail, sizeof trail - 1);
    trail[ntrail++] = c;
}

static inline void reset_trail(void)
{
    ntrail = 0;
    memset(trail, 0, sizeof trail);
}

#define assert_trail(want) cr_assert_str_eq(trail, want)

#define ARG(c) ((void *)(intptr_t)(c))

static inline void join_all(const gr_t *g, int n)
{
    for (int i = 0; i < n; i++)
        cr_assert_eq(gr_join(g[i], NULL, -1), 0);
}

/* Still blocked: a join that cannot wait fails. */
static inline void assert_blocked(gr_t g)
{
    assert_fails(gr_join(g, NULL, 0), ETIMEDOUT);
}

/* When a race is set up to happen: timers armed for the same instant fire
 * in arming order in one hub pass, so the race always goes one way. */
static int64_t instant __attribute__((unused));

#endif
