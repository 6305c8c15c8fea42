/* The test runner of the ThreadSanitizer build (criterion.h here says
 * why it is not Criterion's): every test in a child process of its own,
 * killed at its time limit (times TIME_FACTOR: TSan runs code 5-15 times
 * slower), its init and fini around it. Options as Criterion's that ctest
 * passes: --filter suite/name (fnmatch), others ignored. Exit status 1 if
 * any test failed. */
#define _GNU_SOURCE
#include "criterion/criterion.h"

#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define TIME_FACTOR 4

static struct cr_test *tests, **tests_tail = &tests;

void cr_register(struct cr_test *t)
{
    *tests_tail = t;
    tests_tail = &t->next;
}

void cr_fail_at(const char *file, int line, const char *what, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s:%d: assertion failed: %s", file, line, what);
    if (*fmt) {
        fputs(": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1); /* from any thread: the whole test fails */
}

static int run(const struct cr_test *t)
{
    char name[256];
    int status;
    pid_t pid;

    snprintf(name, sizeof name, "%s/%s", t->suite, t->name);
    fflush(NULL);
    if ((pid = fork()) < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        if (t->timeout > 0)
            alarm((unsigned)(t->timeout * TIME_FACTOR + 1));
        if (t->init)
            t->init();
        t->fn();
        if (t->fini)
            t->fini();
        fflush(NULL);
        _exit(0);
    }
    if (waitpid(pid, &status, 0) < 0) {
        perror("waitpid");
        return 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("[PASS] %s\n", name);
        return 0;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        printf("[FAIL] %s: timed out\n", name);
    else if (WIFSIGNALED(status))
        printf("[FAIL] %s: killed by signal %d\n", name, WTERMSIG(status));
    else
        printf("[FAIL] %s: exit status %d\n", name, WEXITSTATUS(status));
    return 1;
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    int failed = 0, ran = 0;

    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
    for (const struct cr_test *t = tests; t; t = t->next) {
        char name[256];

        snprintf(name, sizeof name, "%s/%s", t->suite, t->name);
        if (filter && fnmatch(filter, name, 0) != 0)
            continue;
        failed += run(t);
        ran++;
    }
    printf("[====] Tested: %d | Passing: %d | Failing: %d\n", ran, ran - failed, failed);
    return failed ? 1 : 0;
}
