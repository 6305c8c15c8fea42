/* Green threads: spawn, join, kill, detach, on-exit callbacks, names,
 * local storage, and handle safety. */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static void *ret_arg_times_two(void *arg)
{
    return (void *)((intptr_t)arg * 2);
}

static void *join_results(void *arg)
{
    gr_t g[10];

    (void)arg;
    for (int i = 0; i < 10; i++)
        g[i] = gr_spawn(ret_arg_times_two, (void *)(intptr_t)i);
    for (int i = 9; i >= 0; i--) {
        void *r = NULL;

        cr_assert_eq(gr_join(g[i], &r, -1), 0);
        cr_assert_eq((intptr_t)r, 2 * i);
    }
    return (void *)42;
}

Test(green, join_returns_each_result, .timeout = 10)
{
    void *r = NULL;

    cr_assert_eq(gr_main(join_results, NULL, &r), 0);
    cr_assert_eq((intptr_t)r, 42);
}

static void *double_join(void *arg)
{
    gr_t g = gr_spawn(ret_arg_times_two, (void *)3);
    void *r;

    (void)arg;
    cr_assert_eq(gr_join(g, &r, -1), 0);
    assert_fails(gr_join(g, &r, -1), ESRCH);
    assert_fails(gr_kill(g), ESRCH);
    assert_fails(gr_detach(g), ESRCH);
    /* The slot is reused by the next spawn; the old handle stays stale. */
    gr_t g2 = gr_spawn(ret_arg_times_two, (void *)4);
    cr_assert_neq(g2, g);
    assert_fails(gr_join(g, &r, -1), ESRCH);
    cr_assert_eq(gr_join(g2, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 8);
    return NULL;
}

Test(green, double_join_and_stale_handles, .timeout = 10)
{
    run_main(double_join, NULL);
}

static void *bad_handles(void *arg)
{
    (void)arg;
    assert_fails(gr_join(0, NULL, -1), ESRCH);
    assert_fails(gr_join(-5, NULL, -1), ESRCH);
    assert_fails(gr_join((gr_t)1 << 40 | 12345, NULL, -1), ESRCH);
    assert_fails(gr_join(gr_self(), NULL, -1), EDEADLK);
    assert_fails(gr_spawn(NULL, NULL), EINVAL);
    assert_fails(gr_spawn_opts(ret_arg_times_two, NULL, &(gr_opts){.stack_size = 1000}), EINVAL);
    assert_fails(gr_spawn_opts(ret_arg_times_two, NULL, &(gr_opts){.flags = 0x80}), EINVAL);
    assert_fails(gr_spawn_at(-1, ret_arg_times_two, NULL, NULL), EINVAL);
    assert_fails(gr_on_exit(gr_self(), NULL, NULL), EINVAL);
    return NULL;
}

Test(green, misuse_fails_cleanly, .timeout = 10)
{
    run_main(bad_handles, NULL);
}

Test(green, root_handle_cannot_be_joined_killed_or_detached, .timeout = 10)
{
    gr_t root = gr_self();

    cr_assert_gt(root, 0);
    assert_fails(gr_join(root, NULL, -1), EDEADLK);
    assert_fails(gr_kill(root), EINVAL);
    assert_fails(gr_detach(root), EINVAL);
}

/* ------------------------------------------------------------------ kill */

static int cleaned_up;

static void *sleeps_forever(void *arg)
{
    int rc;

    (void)arg;
    rc = gr_sleep(-1);
    cr_assert_eq(rc, -1);
    cr_assert_eq(errno, ECANCELED);
    /* Every later blocking call fails too, so clean-up cannot hang. */
    assert_fails(gr_sleep(gr_now() + 100000), ECANCELED);
    assert_fails(gr_yield(), ECANCELED);
    assert_fails(gr_testcancel(), ECANCELED);
    cleaned_up = 1;
    return (void *)7;
}

static void *kill_sleeping(void *arg)
{
    gr_t g = gr_spawn(sleeps_forever, NULL);
    void *r;

    (void)arg;
    gr_yield(); /* let it block */
    cr_assert_eq(gr_kill(g), 0);
    cr_assert_eq(gr_kill(g), 0); /* twice: no-op */
    cr_assert_eq(gr_join(g, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 7);
    cr_assert(cleaned_up);
    assert_fails(gr_kill(g), ESRCH);
    return NULL;
}

Test(green, kill_while_sleeping, .timeout = 10)
{
    run_main(kill_sleeping, NULL);
}

static int pipefd[2];

static void *waits_on_pipe(void *arg)
{
    (void)arg;
    assert_fails(gr_wait_fd(pipefd[0], GR_READ, -1), ECANCELED);
    return (void *)1;
}

static void *kill_pipe_waiter(void *arg)
{
    gr_t g;
    gr_stats st;
    void *r;

    (void)arg;
    cr_assert_eq(pipe2(pipefd, O_NONBLOCK), 0);
    g = gr_spawn(waits_on_pipe, NULL);
    gr_yield();
    gr_stats_get(&st);
    cr_assert_eq(st.fd_waiters, 1);
    cr_assert_eq(gr_kill(g), 0);
    cr_assert_eq(gr_join(g, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 1);
    gr_stats_get(&st);
    cr_assert_eq(st.fd_waiters, 0);
    gr_close(pipefd[0]);
    gr_close(pipefd[1]);
    return NULL;
}

Test(green, kill_while_waiting_on_a_pipe, .timeout = 10)
{
    run_main(kill_pipe_waiter, NULL);
}

static int ran;

static void *must_not_run(void *arg)
{
    (void)arg;
    ran = 1;
    return NULL;
}

static int exit_cb_saw_canceled;

static void on_exit_record(gr_t g, void *result, void *arg)
{
    (void)g;
    (void)arg;
    exit_cb_saw_canceled = result == GR_CANCELED;
}

static void *kill_before_first_run(void *arg)
{
    gr_t a = gr_spawn(must_not_run, NULL);
    gr_t b = gr_spawn_at(gr_now() + 50, must_not_run, NULL, NULL);
    void *r;

    (void)arg;
    cr_assert_eq(gr_on_exit(a, on_exit_record, NULL), 0);
    cr_assert_eq(gr_kill(a), 0);
    cr_assert_eq(gr_kill(b), 0);
    cr_assert_eq(gr_join(a, &r, -1), 0);
    cr_assert_eq(r, GR_CANCELED);
    cr_assert_eq(gr_join(b, &r, -1), 0);
    cr_assert_eq(r, GR_CANCELED);
    cr_assert_not(ran);
    cr_assert(exit_cb_saw_canceled);
    return NULL;
}

Test(green, kill_before_first_run, .timeout = 10)
{
    run_main(kill_before_first_run, NULL);
}

static volatile long spins;

static void *computes_then_blocks(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        spins++;
    assert_fails(gr_sleep(gr_now() + 1000), ECANCELED);
    return NULL;
}

static void *self_killer(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_kill(gr_self()), 0);
    assert_fails(gr_testcancel(), ECANCELED);
    assert_fails(gr_sleep(gr_now() + 1000), ECANCELED);
    return NULL;
}

static void *kill_ready_and_self(void *arg)
{
    gr_t a = gr_spawn(computes_then_blocks, NULL);
    gr_t b = gr_spawn(self_killer, NULL);

    (void)arg;
    gr_yield(); /* a computes, then blocks; b kills itself */
    cr_assert_eq(gr_kill(a), 0);
    cr_assert_eq(gr_join(a, NULL, -1), 0);
    cr_assert_eq(gr_join(b, NULL, -1), 0);
    return NULL;
}

Test(green, kill_takes_effect_at_next_blocking_call, .timeout = 10)
{
    run_main(kill_ready_and_self, NULL);
}

/* ----------------------------------------------------------- spawn_at */

static void *stamp(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)gr_now_update();
}

static void *spawn_at_waits(void *arg)
{
    int64_t t0 = gr_now_update();
    gr_t g = gr_spawn_at(t0 + 30, stamp, NULL, NULL);
    void *r;

    (void)arg;
    cr_assert_eq(gr_join(g, &r, -1), 0);
    cr_assert_geq((intptr_t)r, t0 + 30);
    cr_assert_lt((intptr_t)r, t0 + 30 + 20);
    return NULL;
}

Test(green, spawn_at_starts_at_its_time, .timeout = 10)
{
    run_main(spawn_at_waits, NULL);
}

/* A time already reached is a plain spawn: ready at once, in spawn order. */
static void *spawn_at_past_is_ready_now(void *arg)
{
    gr_t g = gr_spawn_at(gr_now() - 1000, stamp, NULL, NULL);
    gr_t h = gr_spawn_at(0, stamp, NULL, NULL);
    int64_t t0 = gr_now_update();
    void *r;

    (void)arg;
    cr_assert_gt(g, 0);
    cr_assert_gt(h, 0);
    cr_assert_eq(gr_yield(), 0);
    cr_assert_eq(gr_join(g, &r, 0), 0, "ran in the first yield");
    cr_assert_lt((intptr_t)r, t0 + 5);
    cr_assert_eq(gr_join(h, NULL, 0), 0);
    return NULL;
}

Test(green, spawn_at_past_time_runs_at_once, .timeout = 10)
{
    run_main(spawn_at_past_is_ready_now, NULL);
}

/* ---------------------------------------------------- join deadlines */

static void *sleeps_100ms(void *arg)
{
    (void)arg;
    gr_sleep(gr_now() + 100);
    return (void *)5;
}

static void *join_timeout(void *arg)
{
    gr_t g = gr_spawn(sleeps_100ms, NULL);
    void *r;

    (void)arg;
    assert_fails(gr_join(g, &r, 0), ETIMEDOUT);
    assert_fails(gr_join(g, &r, gr_now() + 10), ETIMEDOUT);
    /* The failed joins left it joinable. */
    cr_assert_eq(gr_join(g, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 5);
    return NULL;
}

Test(green, join_with_deadline, .timeout = 10)
{
    run_main(join_timeout, NULL);
}

static gr_t shared_target;

static void *co_joiner(void *arg)
{
    void *r;

    (void)arg;
    cr_assert_eq(gr_join(shared_target, &r, -1), 0);
    return r;
}

static void *many_joiners(void *arg)
{
    gr_t j[5];
    void *r;

    (void)arg;
    shared_target = gr_spawn(sleeps_100ms, NULL);
    for (int i = 0; i < 5; i++)
        j[i] = gr_spawn(co_joiner, NULL);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(gr_join(j[i], &r, -1), 0);
        cr_assert_eq((intptr_t)r, 5);
    }
    assert_fails(gr_join(shared_target, &r, -1), ESRCH);
    return NULL;
}

Test(green, several_joiners_all_get_the_result, .timeout = 10)
{
    run_main(many_joiners, NULL);
}

static void *joiner_killed(void *arg)
{
    gr_t target = (gr_t)(intptr_t)arg;

    assert_fails(gr_join(target, NULL, -1), ECANCELED);
    return NULL;
}

static void *kill_a_joiner(void *arg)
{
    gr_t target = gr_spawn(sleeps_100ms, NULL);
    gr_t j = gr_spawn(joiner_killed, (void *)(intptr_t)target);
    void *r;

    (void)arg;
    gr_yield();
    cr_assert_eq(gr_kill(j), 0);
    cr_assert_eq(gr_join(j, NULL, -1), 0);
    cr_assert_eq(gr_join(target, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 5);
    return NULL;
}

Test(green, killed_joiner_leaves_target_joinable, .timeout = 10)
{
    run_main(kill_a_joiner, NULL);
}

/* ------------------------------------------------------------- detach */

static void *detach_cases(void *arg)
{
    gr_stats st;
    gr_t a = gr_spawn(ret_arg_times_two, NULL);
    gr_t b = gr_spawn_opts(ret_arg_times_two, NULL, &(gr_opts){.flags = GR_DETACHED});

    (void)arg;
    cr_assert_eq(gr_detach(a), 0);
    assert_fails(gr_detach(a), EINVAL);
    assert_fails(gr_join(a, NULL, -1), EINVAL);
    assert_fails(gr_join(b, NULL, -1), EINVAL);
    gr_yield();
    /* Both finished and went away by themselves. */
    assert_fails(gr_join(a, NULL, -1), ESRCH);
    assert_fails(gr_kill(b), ESRCH);
    gr_stats_get(&st);
    cr_assert_eq(st.threads, 1); /* this one */
    cr_assert_eq(st.finished, 0);

    /* Detaching a finished thread frees it at once. */
    gr_t c = gr_spawn(ret_arg_times_two, NULL);
    gr_yield();
    gr_stats_get(&st);
    cr_assert_eq(st.finished, 1);
    cr_assert_eq(gr_detach(c), 0);
    gr_stats_get(&st);
    cr_assert_eq(st.finished, 0);
    assert_fails(gr_join(c, NULL, -1), ESRCH);
    return NULL;
}

Test(green, detach, .timeout = 10)
{
    run_main(detach_cases, NULL);
}

/* ----------------------------------------------------- on-exit callbacks */

static char order[16];
static int norder;

static void append_char(gr_t g, void *result, void *arg)
{
    (void)g;
    cr_assert_eq((intptr_t)result, 6);
    order[norder++] = *(const char *)arg;
}

static void blocks_in_callback(gr_t g, void *result, void *arg)
{
    (void)g;
    (void)result;
    (void)arg;
    cr_assert_eq(gr_sleep(gr_now() + 1), 0);
    order[norder++] = 'z';
}

static void *on_exit_cases(void *arg)
{
    gr_t g = gr_spawn(ret_arg_times_two, (void *)3);

    (void)arg;
    cr_assert_eq(gr_on_exit(g, append_char, "a"), 0);
    cr_assert_eq(gr_on_exit(g, blocks_in_callback, NULL), 0);
    cr_assert_eq(gr_on_exit(g, append_char, "b"), 0);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    cr_assert_str_eq(order, "azb");

    /* Registered on a finished, unjoined thread: runs at once. */
    g = gr_spawn(ret_arg_times_two, (void *)3);
    gr_yield();
    cr_assert_eq(gr_on_exit(g, append_char, "c"), 0);
    cr_assert_str_eq(order, "azbc");
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    assert_fails(gr_on_exit(g, append_char, "d"), ESRCH);
    return NULL;
}

Test(green, on_exit_callbacks_run_in_order, .timeout = 10)
{
    run_main(on_exit_cases, NULL);
}

/* -------------------------------------------------------------- names */

static void *names(void *arg)
{
    char buf[64];
    gr_t g = gr_spawn_opts(ret_arg_times_two, NULL, &(gr_opts){.name = "worker-1"});
    gr_t h = gr_spawn(ret_arg_times_two, NULL);
    gr_t long_name =
        gr_spawn_opts(ret_arg_times_two, NULL,
                      &(gr_opts){.name = "a-name-much-longer-than-thirty-one-characters"});

    (void)arg;
    cr_assert_eq(gr_name(g, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "worker-1");
    cr_assert_eq(gr_name(h, buf, sizeof buf), 0);
    cr_assert_eq(buf[0], 'g');
    cr_assert_eq(gr_name(long_name, buf, sizeof buf), 0);
    cr_assert_eq(strlen(buf), GR_NAME_MAX);
    cr_assert_eq(gr_name(g, buf, 4), 0);
    cr_assert_str_eq(buf, "wor");
    assert_fails(gr_name(g, NULL, 4), EINVAL);
    gr_join(g, NULL, -1);
    gr_join(h, NULL, -1);
    gr_join(long_name, NULL, -1);
    assert_fails(gr_name(g, buf, sizeof buf), ESRCH);
    return NULL;
}

Test(green, names, .timeout = 10)
{
    run_main(names, NULL);
}

/* ------------------------------------------------------- local storage */

static int key_a, key_b;
static int destroyed;

static void destroy_int(void *p)
{
    destroyed += *(int *)p;
    free(p);
}

static void *uses_locals(void *arg)
{
    int *mine = malloc(sizeof *mine);

    *mine = (int)(intptr_t)arg;
    cr_assert_null(gr_local_get(key_a));
    cr_assert_eq(gr_local_set(key_a, mine), 0);
    cr_assert_eq(gr_local_set(key_b, (void *)(intptr_t)99), 0);
    gr_yield();
    cr_assert_eq(gr_local_get(key_a), mine, "another thread's value leaked in");
    cr_assert_eq(*(int *)gr_local_get(key_a), (int)(intptr_t)arg);
    return NULL;
}

static void *locals(void *arg)
{
    gr_t g[3];

    (void)arg;
    key_a = gr_local_key_create(destroy_int);
    key_b = gr_local_key_create(NULL);
    cr_assert_geq(key_a, 0);
    cr_assert_geq(key_b, 0);
    cr_assert_neq(key_a, key_b);
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(uses_locals, (void *)(intptr_t)(i + 1));
    for (int i = 0; i < 3; i++)
        gr_join(g[i], NULL, -1);
    cr_assert_eq(destroyed, 1 + 2 + 3);
    assert_fails(gr_local_set(GR_LOCAL_KEYS_MAX, NULL), EINVAL);
    assert_fails(gr_local_set(-1, NULL), EINVAL);
    cr_assert_eq(gr_local_key_delete(key_a), 0);
    assert_fails(gr_local_key_delete(key_a), EINVAL);
    assert_fails(gr_local_set(key_a, NULL), EINVAL);
    cr_assert_eq(gr_local_key_delete(key_b), 0);
    return NULL;
}

Test(green, local_storage_is_per_thread, .timeout = 10)
{
    run_main(locals, NULL);
}

/* ------------------------------------------------------- signal mask */

/* The signal mask is the OS thread's, shared by its green threads, with
 * either context switch (swapcontext would keep one per context). */
static int usr2_blocked(void)
{
    sigset_t m;

    pthread_sigmask(SIG_BLOCK, NULL, &m);
    return sigismember(&m, SIGUSR2);
}

static void *blocks_usr2_and_yields(void *arg)
{
    sigset_t s;

    (void)arg;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    gr_yield();
    /* The other thread unblocked it meanwhile. */
    return (void *)(intptr_t)usr2_blocked();
}

static void *shares_the_mask(void *arg)
{
    gr_t g = gr_spawn(blocks_usr2_and_yields, NULL);
    sigset_t s;
    void *r;

    (void)arg;
    cr_assert_eq(usr2_blocked(), 0);
    gr_yield(); /* g blocks SIGUSR2 and yields back */
    cr_assert_eq(usr2_blocked(), 1, "a mask set in one green thread is the thread's");
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    cr_assert_eq(gr_join(g, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 0, "the unblock made in another green thread was lost");
    cr_assert_eq(usr2_blocked(), 0);
    return NULL;
}

Test(green, the_signal_mask_is_the_os_threads, .timeout = 10)
{
    run_main(shares_the_mask, NULL);
}

static void *key_reuse(void *arg)
{
    int k1 = gr_local_key_create(NULL), k2;

    (void)arg;
    cr_assert_eq(gr_local_set(k1, (void *)1), 0);
    cr_assert_eq(gr_local_key_delete(k1), 0);
    cr_assert_null(gr_local_get(k1), "a deleted key has no value");
    /* The number comes back for a new key: it starts NULL everywhere. */
    k2 = gr_local_key_create(NULL);
    cr_assert_eq(k2, k1);
    cr_assert_null(gr_local_get(k2), "a new key must not see an old key's value");
    cr_assert_eq(gr_local_set(k2, (void *)2), 0);
    cr_assert_eq(gr_local_get(k2), (void *)2);
    cr_assert_eq(gr_local_key_delete(k2), 0);
    return NULL;
}

Test(green, reused_key_starts_null, .timeout = 10)
{
    run_main(key_reuse, NULL);
}

Test(green, keys_run_out_with_eagain, .timeout = 10)
{
    int keys[GR_LOCAL_KEYS_MAX];
    int n = 0;

    while (n < GR_LOCAL_KEYS_MAX && (keys[n] = gr_local_key_create(NULL)) >= 0)
        n++;
    cr_assert_eq(n, GR_LOCAL_KEYS_MAX);
    assert_fails(gr_local_key_create(NULL), EAGAIN);
    for (int i = 0; i < n; i++)
        cr_assert_eq(gr_local_key_delete(keys[i]), 0);
}

/* --------------------------------------------------- many, with no leak */

static void *nothing(void *arg)
{
    return arg;
}

static void *spawn_join_100k(void *arg)
{
    gr_stats st;

    (void)arg;
    for (int i = 0; i < 100000; i++) {
        void *r;
        gr_t g = gr_spawn(nothing, (void *)(intptr_t)i);

        cr_assert_gt(g, 0);
        cr_assert_eq(gr_join(g, &r, -1), 0);
        cr_assert_eq((intptr_t)r, i);
    }
    gr_stats_get(&st);
    cr_assert_eq(st.threads, 1);
    cr_assert_eq(st.finished, 0);
    /* Stacks are reused, not mapped anew: one for this thread, one for the
     * hub, one for the current worker, and the first slab's spares. */
    cr_assert_leq(st.stacks_mapped, 16);
    return NULL;
}

Test(green, spawn_and_join_100k_with_no_leak, .timeout = 60)
{
    run_main(spawn_join_100k, NULL);
}

static void *spawn_100k_then_join(void *arg)
{
    enum { N = 100000 };
    gr_t *g = malloc(N * sizeof *g);
    gr_stats st;

    (void)arg;
    for (int i = 0; i < N; i++)
        cr_assert_gt(g[i] = gr_spawn(nothing, (void *)(intptr_t)i), 0);
    gr_stats_get(&st);
    cr_assert_eq(st.threads, N + 1);
    for (int i = 0; i < N; i++) {
        void *r;

        cr_assert_eq(gr_join(g[i], &r, -1), 0);
        cr_assert_eq((intptr_t)r, i);
    }
    free(g);
    gr_stats_get(&st);
    cr_assert_eq(st.threads, 1);
    cr_assert_eq(st.stacks_free + 2, st.stacks_mapped);
    return NULL;
}

Test(green, spawn_100k_at_once, .timeout = 120)
{
    run_main(spawn_100k_then_join, NULL);
}
