/* Failure paths, swept: each hooked allocation and system call that an
 * operation makes (src/arch/fail.h) is made to fail in turn, N = 1, 2, ...
 * until the operation completes without reaching N. Every failure must
 * come out as the API promises (-1 or NULL with the injected errno), or be
 * absorbed where the documentation says it is (the server's back-off, the
 * thread pool's retried post); it must leave no descriptor open and no
 * memory behind (checked after every step: LeakSanitizer in the ASan
 * build), and the process must go on serving: the same operation, tried
 * again, succeeds.
 *
 * Each step of a sweep runs in a fresh gr_main, so that every step makes
 * the same calls: pools grown by one step would spare the next one its
 * allocations. Clients that must not count run on OS threads of their own
 * with plain libc calls, or in another process. */
#include "common.h"

#include "arch/fail.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* More hooked calls than any operation here makes: a sweep that gets
 * there has lost its end. */
#define SWEEP_MAX 300

typedef struct fault {
    unsigned site; /* the GR__FAIL_* site that was failed; 0: none */
    int err;       /* the error it was failed with */
} fault;

static void arm(long n)
{
    gr__fail_arm(GR__FAIL_ALL, n, 0);
}

/* The fault injected since arm(), if any; still armed. */
static fault fired(void)
{
    fault f;

    f.site = gr__fail_fired(&f.err);
    return f;
}

static fault disarm(void)
{
    gr__fail_disarm();
    return fired();
}

/* Assert that a call failed because of the injected fault. */
#define assert_injected(what, err)                                                                 \
    do {                                                                                           \
        fault f_ = fired();                                                                        \
        cr_assert_neq(f_.site, 0, "%s failed (%s) with no call failed", what, strerror(err));      \
        cr_assert_eq(err, f_.err, "%s: errno %d (%s), but site %#x was failed with %d (%s)", what, \
                     err, strerror(err), f_.site, f_.err, strerror(f_.err));                       \
    } while (0)

/* GROVE_FAIL_TRACE=1 in the environment prints each step: which call was
 * failed and how many hooked calls the step made. */
static void trace(long n)
{
    int err;
    unsigned site = gr__fail_fired(&err);

    if (!getenv("GROVE_FAIL_TRACE"))
        return;
    printf("step %ld: %ld hooked calls, site %#x failed with %s\n", n, gr__fail_count(), site,
           site ? strerror(err) : "-");
    fflush(stdout);
}

/* Steps in a row that must complete with no call failed for a sweep to
 * end. One is enough when every step makes the same calls; where timing
 * decides some (whether a peer's bytes are already there, so that a read
 * need not wait), a step may make fewer than the next. */
#define SWEEP_END 3

/* Run step(n) for n = 1, 2, ... until SWEEP_END steps in a row complete
 * with no call failed (step returns 0); each step must leave no
 * descriptor open and no memory leaked. Returns the last n failed: how
 * many hooked calls the sweep reached. */
static long sweep(int (*step)(long n))
{
    int fds = proc_self_count("fd");
    long last = 0;

    for (long n = 1; n <= last + SWEEP_END; n++) {
        cr_assert_lt(n, SWEEP_MAX, "the sweep did not end");
        if (step(n))
            last = n;
        trace(n);
        cr_assert_eq(proc_self_count("fd"), fds, "step %ld left %d descriptor(s) open", n,
                     proc_self_count("fd") - fds);
        cr_assert(!leaks_found(), "step %ld leaked memory (LeakSanitizer's report is on stderr)",
                  n);
    }
    return last;
}

/* A step run as a gr_main: n in, whether a call was failed out. */
typedef struct step_arg {
    long n;
    int failed;
} step_arg;

static int main_step(gr_fn fn, long n)
{
    step_arg a = {n, 0};

    run_main(fn, &a);
    cr_assert_eq(atomic_load(&gr__fail_sites), 0u, "still armed after the step");
    return a.failed;
}

/* ------------------------------------------------------------- gr_main */

static void *answer(void *arg)
{
    (void)arg;
    return (void *)42;
}

static int gr_main_step(long n)
{
    void *r = NULL;
    int rc, err;
    fault f;

    arm(n);
    rc = gr_main(answer, NULL, &r);
    err = errno;
    f = disarm();
    if (!f.site) {
        cr_assert_eq(rc, 0, "gr_main: %s", strerror(err));
        cr_assert_eq((intptr_t)r, 42);
        return 0;
    }
    cr_assert_eq(rc, -1, "call %ld (site %#x) failed, yet gr_main returned %d", n, f.site, rc);
    cr_assert_eq(err, f.err, "gr_main: errno %s, site %#x failed with %s", strerror(err), f.site,
                 strerror(f.err));
    return 1;
}

static void *echo_once(void *arg)
{
    int *sv = arg;
    char b[4];

    cr_assert_eq(gr_read_exact(sv[1], b, 4, NULL, gr_now() + 5000), 0);
    cr_assert_eq(gr_write(sv[1], b, 4, gr_now() + 5000), 4);
    return NULL;
}

static void *sleeper(void *arg)
{
    cr_assert_eq(gr_sleep(gr_now() + 1), 0);
    return arg;
}

/* What "the process keeps working" means for a hub: threads, timers and
 * descriptors. */
static void *real_work(void *arg)
{
    gr_t t[100], e;
    int sv[2];
    char b[4];

    (void)arg;
    for (intptr_t i = 0; i < 100; i++)
        cr_assert_gt(t[i] = gr_spawn(sleeper, (void *)i), 0);
    for (intptr_t i = 0; i < 100; i++) {
        void *r;

        cr_assert_eq(gr_join(t[i], &r, -1), 0);
        cr_assert_eq((intptr_t)r, i);
    }
    tcp_pair(sv);
    cr_assert_gt(e = gr_spawn(echo_once, sv), 0);
    cr_assert_eq(gr_write(sv[0], "ping", 4, gr_now() + 5000), 4);
    cr_assert_eq(gr_read_exact(sv[0], b, 4, NULL, gr_now() + 5000), 0);
    cr_assert_eq(gr_join(e, NULL, -1), 0);
    close_pair(sv);
    return NULL;
}

Test(fail, gr_main, .timeout = 60)
{
    /* The hub alone: its record, the ready ring, the handle table, the
     * timer heap, epoll, the eventfd, a stack slab, the signal stack. */
    cr_assert_geq(sweep(gr_main_step), 12);
    run_main(real_work, NULL);
}

/* ------------------------------------------------------------ gr_spawn */

/* Enough spawns to grow every table a spawn uses at least once: the
 * handle table (256), the ready ring and the timer heap (64, 128...), and
 * stack slabs of 16, 32, 64, 128 stacks; the last spawn asks for another
 * stack size, a new class of stacks. */
#define SPAWNS 300

static void *child(void *arg)
{
    return arg;
}

static void *spawn_sweep_main(void *arg)
{
    step_arg *a = arg;
    gr_opts other = {.name = "other", .stack_size = 256 * 1024};
    static gr_t t[SPAWNS + 1];
    intptr_t k;
    int err = 0;
    fault f;

    arm(a->n);
    for (k = 0; k <= SPAWNS; k++) {
        t[k] = k < SPAWNS ? gr_spawn(child, (void *)k) : gr_spawn_opts(child, (void *)k, &other);
        if (t[k] < 0) {
            err = errno;
            assert_injected("gr_spawn", err);
            cr_assert_eq(err, ENOMEM);
            break;
        }
    }
    f = disarm();
    cr_assert(k <= SPAWNS || !f.site, "site %#x failed, yet every spawn succeeded", f.site);
    a->failed = f.site != 0;
    /* The threads made before the failure run and are joined as usual,
     * and the spawn that failed now succeeds. */
    for (intptr_t i = 0; i < k; i++) {
        void *r;

        cr_assert_eq(gr_join(t[i], &r, -1), 0);
        cr_assert_eq((intptr_t)r, i);
    }
    if (k <= SPAWNS) {
        void *r;

        cr_assert_gt(t[k] = gr_spawn_opts(child, (void *)k, &other), 0);
        cr_assert_eq(gr_join(t[k], &r, -1), 0);
        cr_assert_eq((intptr_t)r, k);
    }
    return NULL;
}

static int spawn_step(long n)
{
    return main_step(spawn_sweep_main, n);
}

Test(fail, gr_spawn, .timeout = 60)
{
    cr_assert_geq(sweep(spawn_step), 15);
    run_main(real_work, NULL);
}

/* ------------------------------------------------ waiting on descriptors
 * gr_poll on more descriptors than it keeps waiters for on its stack, the
 * one that becomes ready last, and gr_wait_fd: a descriptor that could not
 * be registered would never wake the caller, so the call must fail. */

#define POLL_FDS 10

static void *write_one(void *arg)
{
    cr_assert_eq(gr_write(*(int *)arg, "x", 1, gr_now() + 5000), 1);
    return NULL;
}

static void *fd_wait_sweep_main(void *arg)
{
    step_arg *a = arg;
    struct pollfd pf[POLL_FDS];
    int p[POLL_FDS + 1][2], n, err; /* the last one for gr_wait_fd */
    gr_t w[2] = {0, 0};
    fault f;

    for (int i = 0; i <= POLL_FDS; i++)
        cr_assert_eq(pipe2(p[i], O_NONBLOCK | O_CLOEXEC), 0);
    for (int i = 0; i < POLL_FDS; i++)
        pf[i] = (struct pollfd){.fd = p[i][0], .events = POLLIN};
    /* Each writes once the waiter below has parked. */
    cr_assert_gt(w[0] = gr_spawn(write_one, &p[POLL_FDS - 1][1]), 0);
    arm(a->n);
    n = gr_poll(pf, POLL_FDS, gr_now() + 5000);
    err = errno;
    if (n >= 0) {
        cr_assert_eq(fired().site, 0u, "site %#x failed, yet gr_poll returned %d", fired().site, n);
        cr_assert_eq(n, 1);
        cr_assert(pf[POLL_FDS - 1].revents & POLLIN);
        cr_assert_gt(w[1] = gr_spawn(write_one, &p[POLL_FDS][1]), 0);
        n = gr_wait_fd(p[POLL_FDS][0], GR_READ, gr_now() + 5000);
        err = errno;
    }
    f = disarm();
    if (n < 0)
        assert_injected("gr_poll or gr_wait_fd", err);
    else
        cr_assert_eq(f.site, 0u, "site %#x failed, yet gr_wait_fd returned %d", f.site, n);
    a->failed = f.site != 0;
    for (int i = 0; i < 2; i++)
        cr_assert(!w[i] || gr_join(w[i], NULL, -1) == 0);
    for (int i = 0; i <= POLL_FDS; i++) {
        gr_close(p[i][0]);
        gr_close(p[i][1]);
    }
    return NULL;
}

static int fd_wait_step(long n)
{
    return main_step(fd_wait_sweep_main, n);
}

Test(fail, fd_waits, .timeout = 60)
{
    cr_assert_geq(sweep(fd_wait_step), 12);
}
