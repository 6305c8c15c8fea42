/* Shell commands for the tests that run real peers (curl, openssl): run
 * on the thread pool, so the hub keeps serving while they talk to it. */
#ifndef GROVE_TEST_SHELL_COMMON_H
#define GROVE_TEST_SHELL_COMMON_H

#include "common.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct cmd {
    char line[2048];
    char out[65536];
    int status;
} cmd;

static inline void *run_cmd(void *arg)
{
    cmd *c = arg;
    FILE *p = popen(c->line, "r");
    size_t n = 0, k;

    if (!p)
        return NULL;
    while (n < sizeof c->out - 1 && (k = fread(c->out + n, 1, sizeof c->out - 1 - n, p)) > 0)
        n += k;
    c->out[n] = '\0';
    c->status = pclose(p);
    return c;
}

/* Run a shell command on the thread pool (the hub keeps serving) and
 * return its output, stdout and stderr together. */
static inline const char *sh(cmd *c, const char *fmt, ...)
{
    va_list ap;
    void *res = NULL;

    va_start(ap, fmt);
    vsnprintf(c->line, sizeof c->line - 8, fmt, ap);
    va_end(ap);
    strcat(c->line, " 2>&1");
    cr_assert_eq(gr_threadpool_run(run_cmd, c, &res, NULL, gr_now() + 30000), 0);
    cr_assert_not_null(res, "popen: %s", c->line);
    return c->out;
}

static inline void need_curl(void)
{
    if (access("/usr/bin/curl", X_OK) != 0)
        cr_skip_test("curl is not installed (scripts/deps.sh test installs it)");
}

#endif
