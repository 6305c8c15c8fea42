/* The ready queue: order, fairness, and that polling is not starved. */
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#define LOG_MAX 256

static int log_[LOG_MAX];
static int nlog;

static void note(int v)
{
    cr_assert_lt(nlog, LOG_MAX);
    log_[nlog++] = v;
}

static void *yielder(void *arg)
{
    int id = (int)(intptr_t)arg;

    for (int i = 0; i < 3; i++) {
        note(id * 10 + i);
        gr_yield();
    }
    return NULL;
}

static void *three_yielders(void *arg)
{
    gr_t g[3];

    (void)arg;
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(yielder, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gr_join(g[i], NULL, -1), 0);
    return NULL;
}

Test(sched, yield_round_robin_in_spawn_order, .timeout = 10)
{
    static const int want[] = {10, 20, 30, 11, 21, 31, 12, 22, 32};

    run_main(three_yielders, NULL);
    cr_assert_eq(nlog, 9);
    for (int i = 0; i < 9; i++)
        cr_assert_eq(log_[i], want[i], "position %d: %d, want %d", i, log_[i], want[i]);
}

static void *records(void *arg)
{
    note((int)(intptr_t)arg);
    return NULL;
}

static void *spawn_does_not_run_at_once(void *arg)
{
    (void)arg;
    gr_spawn_opts(records, (void *)1, &(gr_opts){.flags = GR_DETACHED});
    note(0); /* the spawner keeps running until it blocks */
    gr_spawn_opts(records, (void *)2, &(gr_opts){.flags = GR_DETACHED});
    gr_yield();
    note(3);
    return NULL;
}

Test(sched, spawned_threads_wait_their_turn, .timeout = 10)
{
    run_main(spawn_does_not_run_at_once, NULL);
    cr_assert_eq(nlog, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(log_[i], i);
}

/* A thread that yields goes behind every ready thread, including the ones
 * that became ready while it ran. */
static void *late_comer(void *arg)
{
    (void)arg;
    note(2);
    return NULL;
}

static void *yield_goes_behind_new_arrivals(void *arg)
{
    (void)arg;
    note(1);
    gr_spawn_opts(late_comer, NULL, &(gr_opts){.flags = GR_DETACHED});
    gr_yield();
    note(3);
    return NULL;
}

Test(sched, yield_goes_to_the_back, .timeout = 10)
{
    run_main(yield_goes_behind_new_arrivals, NULL);
    cr_assert_eq(nlog, 3);
    cr_assert_eq(log_[0], 1);
    cr_assert_eq(log_[1], 2);
    cr_assert_eq(log_[2], 3);
}

/* Threads that never stop yielding must not starve I/O: a reader waiting
 * on a pipe gets its data while 4 threads spin on gr_yield. */
static int spinning;
static int pipe_fds[2];

static void *spinner(void *arg)
{
    long *count = arg;

    while (spinning) {
        (*count)++;
        gr_yield();
    }
    return NULL;
}

static void *reader(void *arg)
{
    char c;

    (void)arg;
    cr_assert_eq(gr_wait_fd(pipe_fds[0], GR_READ, gr_now() + 5000), GR_READ);
    cr_assert_eq(read(pipe_fds[0], &c, 1), 1);
    spinning = 0;
    return NULL;
}

static void *writer(void *arg)
{
    (void)arg;
    cr_assert_eq(write(pipe_fds[1], "x", 1), 1);
    return NULL;
}

static void *io_not_starved(void *arg)
{
    long counts[4] = {0};
    gr_t s[4], r, w;

    (void)arg;
    cr_assert_eq(pipe2(pipe_fds, O_NONBLOCK), 0);
    spinning = 1;
    r = gr_spawn(reader, NULL);
    for (int i = 0; i < 4; i++)
        s[i] = gr_spawn(spinner, &counts[i]);
    w = gr_spawn(writer, NULL);
    cr_assert_eq(gr_join(r, NULL, gr_now() + 5000), 0, "reader starved");
    cr_assert_eq(gr_join(w, NULL, -1), 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(gr_join(s[i], NULL, -1), 0);
        cr_assert_gt(counts[i], 0);
    }
    /* Fair among spinners: none ran more than one round ahead of another. */
    for (int i = 1; i < 4; i++)
        cr_assert_leq(labs(counts[i] - counts[0]), 1);
    gr_close(pipe_fds[0]);
    gr_close(pipe_fds[1]);
    return NULL;
}

Test(sched, yield_loops_do_not_starve_io, .timeout = 10)
{
    run_main(io_not_starved, NULL);
}

/* Timers are not starved by yield loops either. */
static void *sleeper_then_stop(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_sleep(gr_now() + 20), 0);
    spinning = 0;
    return NULL;
}

static void *timers_not_starved(void *arg)
{
    long count = 0;
    int64_t start = gr_now_update();
    gr_t a, b;

    (void)arg;
    spinning = 1;
    a = gr_spawn(sleeper_then_stop, NULL);
    b = gr_spawn(spinner, &count);
    cr_assert_eq(gr_join(a, NULL, -1), 0);
    cr_assert_eq(gr_join(b, NULL, -1), 0);
    cr_assert_lt(gr_now_update() - start, 1000);
    cr_assert_gt(count, 0);
    return NULL;
}

Test(sched, yield_loops_do_not_starve_timers, .timeout = 10)
{
    run_main(timers_not_starved, NULL);
}

static void *errno_keeper(void *arg)
{
    int mine = (int)(intptr_t)arg;

    errno = mine;
    for (int i = 0; i < 5; i++) {
        gr_yield();
        cr_assert_eq(errno, mine, "errno changed across a switch");
    }
    return NULL;
}

static void *errno_per_thread(void *arg)
{
    gr_t a, b;

    (void)arg;
    a = gr_spawn(errno_keeper, (void *)(intptr_t)EAGAIN);
    b = gr_spawn(errno_keeper, (void *)(intptr_t)EPIPE);
    errno = EIO;
    gr_yield();
    cr_assert_eq(errno, EIO);
    cr_assert_eq(gr_join(a, NULL, -1), 0);
    cr_assert_eq(gr_join(b, NULL, -1), 0);
    return NULL;
}

Test(sched, errno_is_saved_per_green_thread, .timeout = 10)
{
    run_main(errno_per_thread, NULL);
}

Test(sched, root_context_can_block_without_gr_main, .timeout = 10)
{
    int64_t t0 = gr_now_update();

    cr_assert_eq(gr_sleep(t0 + 5), 0);
    cr_assert_geq(gr_now_update(), t0 + 5);
    cr_assert_eq(gr_yield(), 0);
    cr_assert_gt(gr_self(), 0);
}
