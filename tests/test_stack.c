/* Stacks: overflow reports, sizes, many threads, running out. */
#include "common.h"

#include "core/layout.h" /* the running thread's stack */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Run fn in a child process; return its exit status and what it wrote to
 * stderr. */
static int in_child(void (*fn)(void), char *err, size_t errlen)
{
    int pfd[2], status;
    size_t n = 0;
    ssize_t r;
    pid_t pid;

    cr_assert_eq(pipe(pfd), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[0]);
        fn();
        _exit(0);
    }
    close(pfd[1]);
    while (n < errlen - 1 && (r = read(pfd[0], err + n, errlen - 1 - n)) > 0)
        n += (size_t)r;
    err[n] = '\0';
    close(pfd[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static void *overflows(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse_forever(NULL, 0);
}

static void *spawn_overflower(void *arg)
{
    gr_t g =
        gr_spawn_opts(overflows, NULL, &(gr_opts){.name = "deep-diver", .stack_size = 64 * 1024});

    (void)arg;
    gr_join(g, NULL, -1);
    return NULL;
}

static void overflow_guarded(void)
{
    gr_main(spawn_overflower, NULL, NULL);
}

Test(stack, overflow_hits_guard_page_and_names_the_thread, .timeout = 20)
{
    char err[4096];
    int status = in_child(overflow_guarded, err, sizeof err);

#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer's own handler runs after ours and ends the process
     * its own way. */
    cr_assert(WIFSIGNALED(status) || WEXITSTATUS(status) != 0, "%s", err);
#else
    cr_assert(WIFSIGNALED(status), "child did not die of a signal: %s", err);
    cr_assert_eq(WTERMSIG(status), SIGSEGV, "signal %d: %s", WTERMSIG(status), err);
#endif
    cr_assert_not_null(strstr(err, "grove: stack overflow in green thread \"deep-diver\""),
                       "message was: %s", err);
    cr_assert_not_null(strstr(err, "65536-byte stack"), "message was: %s", err);
    cr_assert_not_null(strstr(err, "guard page"), "message was: %s", err);
}

/* Without guard pages the canary catches it at the next switch. */
static void *overflows_a_little_then_yields(void *arg)
{
    /* The stack's lowest usable byte, where the canary is. How far this
     * frame sits above it depends on the stack's colour (its address) and
     * on the switch (ucontext's frames are larger), so it is looked up,
     * not guessed: guessed, the scribble below sometimes ran past the
     * guard page into unmapped memory (SIGSEGV, not the canary's abort). */
    char *lo = gr__tls_hub->current->stack.lo;

    (void)arg;
    /* As a runaway recursion would: down over the canary and 2 KiB into
     * the (unprotected) guard page, short of the next stack. */
    for (char *a = lo + 2048; a > lo - 2048; a--)
        *(volatile char *)a = 1;
    gr_yield();
    return NULL;
}

static void *spawn_canary_breaker(void *arg)
{
    gr_t g = gr_spawn_opts(overflows_a_little_then_yields, NULL,
                           &(gr_opts){.name = "canary-breaker", .stack_size = 64 * 1024});

    (void)arg;
    gr_join(g, NULL, -1);
    return NULL;
}

static void overflow_unguarded(void)
{
    gr_configure(&(gr_config){.stack_guard = GR_GUARD_NEVER});
    gr_main(spawn_canary_breaker, NULL, NULL);
}

Test(stack, overflow_without_guard_is_caught_by_canary, .timeout = 20)
{
    char err[4096];
    int status = in_child(overflow_unguarded, err, sizeof err);

    cr_assert(WIFSIGNALED(status), "child did not die: %s", err);
    cr_assert_eq(WTERMSIG(status), SIGABRT, "signal %d: %s", WTERMSIG(status), err);
    cr_assert_not_null(strstr(err, "\"canary-breaker\""), "message was: %s", err);
    cr_assert_not_null(strstr(err, "canary"), "message was: %s", err);
}

/* A thread may use nearly all of its stack. */
static int use_stack(int kib)
{
    volatile char buf[1024];

    buf[0] = 1;
    if (kib > 1)
        return use_stack(kib - 1) + buf[0];
    return buf[0];
}

static void *uses_most_of_its_stack(void *arg)
{
    return (void *)(intptr_t)use_stack((int)(intptr_t)arg);
}

static void *stack_sizes(void *arg)
{
    static const size_t sizes[] = {16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024, 8 << 20};

    (void)arg;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int kib = (int)(sizes[i] / 1024 / 2);
        gr_t g = gr_spawn_opts(uses_most_of_its_stack, (void *)(intptr_t)kib,
                               &(gr_opts){.stack_size = sizes[i]});
        void *r;

        cr_assert_gt(g, 0);
        cr_assert_eq(gr_join(g, &r, -1), 0);
        cr_assert_eq((intptr_t)r, kib);
    }
    return NULL;
}

Test(stack, per_spawn_stack_sizes, .timeout = 20)
{
    run_main(stack_sizes, NULL);
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, c;

    cr_assert_not_null(f);
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* 100,000 green threads alive at once at the default vm.max_map_count. */
enum { MANY = 100000 };
static int asleep;

static void *sleeps_until_killed(void *arg)
{
    (void)arg;
    asleep++;
    gr_sleep(-1);
    return NULL;
}

static void *hundred_thousand(void *arg)
{
    gr_t *g = malloc(MANY * sizeof *g);
    gr_stats st;

    (void)arg;
    for (int i = 0; i < MANY; i++)
        cr_assert_gt(g[i] = gr_spawn(sleeps_until_killed, NULL), 0, "spawn %d: %s", i,
                     strerror(errno));
    gr_yield();
    cr_assert_eq(asleep, MANY);
    gr_stats_get(&st);
    cr_assert_eq(st.threads, MANY + 1);
    cr_assert_gt(st.stacks_guarded, 0, "the first stacks at least should be guarded");
    /* Far fewer kernel mappings than stacks: vm.max_map_count holds. */
    cr_assert_lt(count_maps(), 40000);
    for (int i = 0; i < MANY; i++)
        gr_kill(g[i]);
    for (int i = 0; i < MANY; i++)
        cr_assert_eq(gr_join(g[i], NULL, -1), 0);
    free(g);
    return NULL;
}

Test(stack, hundred_thousand_concurrent_threads, .timeout = 120)
{
    run_main(hundred_thousand, NULL);
}

/* Out of address space: spawn fails with ENOMEM, nothing crashes. */
static void *until_enomem(void *arg)
{
    int n = 0;

    (void)arg;
    for (;;) {
        gr_t g = gr_spawn_opts(sleeps_until_killed, NULL,
                               &(gr_opts){.flags = GR_DETACHED, .stack_size = 1 << 20});

        if (g < 0) {
            cr_assert_eq(errno, ENOMEM);
            break;
        }
        n++;
        cr_assert_lt(n, 100000, "never ran out");
    }
    printf("%d\n", n);
    return NULL;
}

static void out_of_memory(void)
{
    struct rlimit rl = {512 << 20, 512 << 20};

    setrlimit(RLIMIT_AS, &rl);
    gr_main(until_enomem, NULL, NULL);
}

Test(stack, spawn_fails_with_enomem_when_out_of_stacks, .timeout = 30)
{
    char err[4096];

#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("AddressSanitizer cannot run under RLIMIT_AS");
#endif
    int status = in_child(out_of_memory, err, sizeof err);

    /* gr_main reports the deadlock of the sleepers left behind and exits
     * normally: no crash. */
    cr_assert(WIFEXITED(status), "child crashed: %s", err);
    cr_assert_eq(WEXITSTATUS(status), 0, "%s", err);
}
