/* Helpers shared by the tests. */
#define _GNU_SOURCE
#ifndef GROVE_TEST_COMMON_H
#define GROVE_TEST_COMMON_H

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <grove.h>
#include <stdint.h>
#include <string.h>

/* Run fn(arg) under gr_main and require that it returned cleanly. */
static inline void run_main(gr_fn fn, void *arg)
{
    void *result = NULL;
    int rc = gr_main(fn, arg, &result);

    cr_assert_eq(rc, 0, "gr_main failed: %s", strerror(errno));
}

/* Assert a call failed with the given errno. */
#define assert_fails(call, err)                                                     \
    do {                                                                            \
        errno = 0;                                                                  \
        long rc_ = (long)(call);                                                    \
        int e_ = errno;                                                             \
        cr_assert_eq(rc_, -1, "%s returned %ld, expected -1", #call, rc_);          \
        cr_assert_eq(e_, (err), "%s: errno %d (%s), expected %d (%s)", #call, e_,   \
                     strerror(e_), (err), strerror(err));                           \
    } while (0)

#endif
