/* The thread pool: results, concurrency while the hub keeps running,
 * bounds, a full queue, deadlines and cancellation with discard, calls
 * from the root context and from hub callbacks. */
#include "common.h"

#include "os/threadpool.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* Workers must not assert (Criterion aborts from the test's thread only):
 * they record what they see in atomics that the test checks. */

static void *twice(void *arg)
{
    return (void *)((intptr_t)arg * 2);
}

/* A gate jobs can block on until the test opens it. */
static atomic_int gate_open, jobs_started, discards;
static atomic_intptr_t discarded_result;
static pthread_t hub_thread;
static atomic_int discard_on_hub_thread;

static void *wait_gate(void *arg)
{
    atomic_fetch_add(&jobs_started, 1);
    while (!atomic_load(&gate_open))
        usleep(1000);
    return arg;
}

static void count_discard(void *result, void *arg)
{
    (void)arg;
    atomic_store(&discarded_result, (intptr_t)result);
    if (pthread_equal(pthread_self(), hub_thread))
        atomic_store(&discard_on_hub_thread, 1);
    atomic_fetch_add(&discards, 1);
}

/* Poll a counter from a green thread (the hub keeps running). */
static void wait_for(atomic_int *v, int want)
{
    int64_t until = gr_now() + 5000;

    while (atomic_load(v) < want && gr_now() < until)
        gr_sleep(gr_now() + 1);
    cr_assert_geq(atomic_load(v), want, "timed out waiting for a counter");
}

/* ------------------------------------------------------------ results */

static void *results(void *arg)
{
    void *r = NULL;

    (void)arg;
    cr_assert_eq(gr_threadpool_run(twice, (void *)21, &r, NULL, -1), 0);
    cr_assert_eq((intptr_t)r, 42);
    cr_assert_eq(gr_threadpool_run(twice, (void *)1, NULL, NULL, gr_now() + 5000), 0);
    assert_fails(gr_threadpool_run(NULL, NULL, NULL, NULL, -1), EINVAL);
    return NULL;
}

Test(threadpool, runs_jobs_and_returns_results, .timeout = 10)
{
    run_main(results, NULL);
}

/* ---------------------------------------- concurrency, hub keeps running */

enum { SLEEPERS = 8, SLEEP_MS = 100 };
static atomic_int ticks, sleepers_done;

static void *sleep_job(void *arg)
{
    usleep(SLEEP_MS * 1000);
    return arg;
}

static void *sleeper(void *arg)
{
    void *r;

    cr_assert_eq(gr_threadpool_run(sleep_job, arg, &r, NULL, gr_now() + 5000), 0);
    cr_assert_eq(r, arg);
    atomic_fetch_add(&sleepers_done, 1);
    return NULL;
}

static void *ticker(void *arg)
{
    (void)arg;
    while (atomic_load(&sleepers_done) < SLEEPERS) {
        gr_sleep(gr_now() + 5);
        atomic_fetch_add(&ticks, 1);
    }
    return NULL;
}

static void *concurrent(void *arg)
{
    gr_t t[SLEEPERS], tick;
    int64_t start = gr_now_update();

    (void)arg;
    tick = gr_spawn(ticker, NULL);
    for (intptr_t i = 0; i < SLEEPERS; i++)
        t[i] = gr_spawn(sleeper, (void *)(i + 1));
    for (int i = 0; i < SLEEPERS; i++)
        cr_assert_eq(gr_join(t[i], NULL, -1), 0);
    gr_join(tick, NULL, -1);
    /* In parallel on the pool: about one job's time, not eight. */
    cr_assert_lt(gr_now_update() - start, SLEEPERS * SLEEP_MS / 2 * TIME_SLACK);
    /* The hub ran the ticker all along: 100 ms at 5 ms a tick. */
    cr_assert_geq(atomic_load(&ticks), 8, "ticks: %d", atomic_load(&ticks));
    return NULL;
}

Test(threadpool, blocking_jobs_run_in_parallel_while_the_hub_runs, .timeout = 10)
{
    run_main(concurrent, NULL);
}

#ifdef GROVE_TEST_TSAN
static void *nothing(void *arg)
{
    return arg;
}
#endif

/* ThreadSanitizer starts a thread of its own with the first one of ours:
 * have it started before threads are counted. */
static void tsan_thread_started(void)
{
#ifdef GROVE_TEST_TSAN
    pthread_t t;

    cr_assert_eq(pthread_create(&t, NULL, nothing, NULL), 0);
    pthread_join(t, NULL);
#endif
}

/* Threads are started for the jobs no idle or starting thread will take:
 * one job, one thread (it used to start max_threads for the first job,
 * since a thread still starting was not counted). */
static void *one_job_at_a_time(void *arg)
{
    int before;

    (void)arg;
    tsan_thread_started();
    before = proc_self_count("task");
    for (int i = 0; i < 5; i++)
        cr_assert_eq(gr_threadpool_run(twice, (void *)1, NULL, NULL, gr_now() + 5000), 0);
    cr_assert_eq(proc_self_count("task"), before + 1);
    return NULL;
}

Test(threadpool, one_job_at_a_time_needs_one_thread, .timeout = 10)
{
    run_main(one_job_at_a_time, NULL);
}

/* ----------------------------------------------------------- bounded */

enum { BOUND = 3, MANY = 12 };
static atomic_int running, most_running;

static void *counted_job(void *arg)
{
    int now = atomic_fetch_add(&running, 1) + 1;
    int seen = atomic_load(&most_running);

    while (now > seen && !atomic_compare_exchange_weak(&most_running, &seen, now))
        ;
    usleep(20000);
    atomic_fetch_sub(&running, 1);
    return arg;
}

static void *counted(void *arg)
{
    cr_assert_eq(gr_threadpool_run(counted_job, arg, NULL, NULL, -1), 0);
    return NULL;
}

static void *bounded(void *arg)
{
    gr_t t[MANY];

    (void)arg;
    cr_assert_eq(gr_threadpool_size(BOUND, 0), 0);
    for (int i = 0; i < MANY; i++)
        t[i] = gr_spawn(counted, NULL);
    for (int i = 0; i < MANY; i++)
        gr_join(t[i], NULL, -1);
    cr_assert_eq(atomic_load(&most_running), BOUND, "at most %d at once, saw %d", BOUND,
                 atomic_load(&most_running));
    return NULL;
}

Test(threadpool, never_more_than_max_threads_at_once, .timeout = 10)
{
    run_main(bounded, NULL);
}

Test(threadpool, pool_size_rejects_bad_values, .timeout = 10)
{
    assert_fails(gr_threadpool_size(0, 10), EINVAL);
    assert_fails(gr_threadpool_size(100000, 10), EINVAL);
    cr_assert_eq(gr_threadpool_size(4, 0), 0);
}

/* -------------------------------------------------------- full queue */

static void *gated(void *arg)
{
    cr_assert_eq(gr_threadpool_run(wait_gate, arg, NULL, NULL, -1), 0);
    return NULL;
}

static void *full_queue(void *arg)
{
    gr_t t[3];

    (void)arg;
    cr_assert_eq(gr_threadpool_size(1, 2), 0);
    t[0] = gr_spawn(gated, NULL);
    wait_for(&jobs_started, 1); /* the one thread is busy */
    t[1] = gr_spawn(gated, NULL);
    t[2] = gr_spawn(gated, NULL);
    gr_sleep(gr_now() + 10); /* both queued behind it */
    assert_fails(gr_threadpool_run(twice, NULL, NULL, NULL, -1), EAGAIN);
    atomic_store(&gate_open, 1);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gr_join(t[i], NULL, -1), 0);
    /* Room again. */
    cr_assert_eq(gr_threadpool_run(twice, NULL, NULL, NULL, -1), 0);
    return NULL;
}

Test(threadpool, a_full_queue_fails_with_eagain, .timeout = 10)
{
    run_main(full_queue, NULL);
}

/* ------------------------------------------------ deadline and cancel */

static void *times_out(void *arg)
{
    int64_t start = gr_now_update();

    (void)arg;
    hub_thread = pthread_self();
    assert_fails(gr_threadpool_run(wait_gate, (void *)7, NULL, count_discard, gr_now() + 30),
                 ETIMEDOUT);
    cr_assert_lt(gr_now_update() - start, 200 * TIME_SLACK);
    cr_assert_eq(atomic_load(&discards), 0, "the job is still running");
    atomic_store(&gate_open, 1);
    wait_for(&discards, 1);
    cr_assert_eq(atomic_load(&discarded_result), 7, "discard gets fn's result");
    cr_assert_eq(atomic_load(&discard_on_hub_thread), 0, "discard runs on the worker");
    return NULL;
}

Test(threadpool, deadline_returns_etimedout_and_discard_runs_later, .timeout = 10)
{
    run_main(times_out, NULL);
}

static void *killed_while_waiting(void *arg)
{
    (void)arg;
    assert_fails(gr_threadpool_run(wait_gate, (void *)9, NULL, count_discard, -1), ECANCELED);
    return NULL;
}

static void *cancel(void *arg)
{
    gr_t g;
    int64_t killed_at;

    (void)arg;
    g = gr_spawn(killed_while_waiting, NULL);
    wait_for(&jobs_started, 1);
    killed_at = gr_now_update();
    cr_assert_eq(gr_kill(g), 0);
    cr_assert_eq(gr_join(g, NULL, gr_now() + 1000), 0);
    cr_assert_lt(gr_now_update() - killed_at, 50, "the killed caller returns at once");
    atomic_store(&gate_open, 1);
    wait_for(&discards, 1);
    cr_assert_eq(atomic_load(&discarded_result), 9);
    return NULL;
}

Test(threadpool, kill_returns_ecanceled_at_once_and_discard_runs_later, .timeout = 10)
{
    run_main(cancel, NULL);
}

/* An abandoned job holds no reference: gr_main returns while it runs. */
static void *abandons(void *arg)
{
    (void)arg;
    assert_fails(gr_threadpool_run(wait_gate, NULL, NULL, count_discard, gr_now() + 10), ETIMEDOUT);
    return NULL;
}

Test(threadpool, gr_main_does_not_wait_for_abandoned_jobs, .timeout = 10)
{
    cr_assert_lt(run_main_ms(abandons, NULL), 500 * TIME_SLACK);
    cr_assert_eq(atomic_load(&discards), 0);
    atomic_store(&gate_open, 1);
    while (atomic_load(&discards) == 0)
        usleep(1000);
}

/* A killed caller still queues the job and gives it up at once: ECANCELED
 * and ETIMEDOUT always mean fn runs and discard follows. */
static void *already_killed(void *arg)
{
    (void)arg;
    gr_kill(gr_self());
    assert_fails(gr_threadpool_run(wait_gate, (void *)5, NULL, count_discard, -1), ECANCELED);
    atomic_store(&gate_open, 1);
    return NULL;
}

Test(threadpool, a_killed_caller_gets_ecanceled_and_discard_still_runs, .timeout = 10)
{
    run_main(already_killed, NULL);
    while (atomic_load(&discards) == 0)
        usleep(1000);
    cr_assert_eq(atomic_load(&discarded_result), 5);
}

/* ------------------------------------------------ root and hub context */

Test(threadpool, works_from_the_root_context, .timeout = 10)
{
    void *r = NULL;

    cr_assert_eq(gr_threadpool_run(twice, (void *)5, &r, NULL, -1), 0);
    cr_assert_eq((intptr_t)r, 10);
    assert_fails(gr_threadpool_run(wait_gate, (void *)3, NULL, count_discard, gr_now() + 20),
                 ETIMEDOUT);
    atomic_store(&gate_open, 1);
    while (atomic_load(&discards) == 0)
        usleep(1000);
    cr_assert_eq(atomic_load(&discarded_result), 3);
}

static atomic_int callback_errno;

static void run_in_callback(void *arg)
{
    (void)arg;
    errno = 0;
    if (gr_threadpool_run(twice, NULL, NULL, NULL, -1) == -1)
        atomic_store(&callback_errno, errno);
}

static void *from_callback(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_hub_post(gr_hub_current(), run_in_callback, NULL), 0);
    gr_sleep(gr_now() + 5);
    cr_assert_eq(atomic_load(&callback_errno), EDEADLK);
    return NULL;
}

Test(threadpool, a_hub_callback_gets_edeadlk, .timeout = 10)
{
    cr_redirect_stderr(); /* the misuse warning */
    run_main(from_callback, NULL);
}

/* --------------------------------------------------------- idle exit */

/* The idle time-out is 10 s; the test sets a shorter one. */
#define IDLE_TEST_MS 200

Test(threadpool, idle_threads_leave_after_the_idle_time_out, .timeout = 30)
{
    int before;
    int64_t start, left;

    tsan_thread_started();
    before = proc_self_count("task");
    start = gr_now_update();
    gr__threadpool_set_idle_ms(IDLE_TEST_MS);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gr_threadpool_run(sleep_job, NULL, NULL, NULL, -1), 0);
    cr_assert_gt(proc_self_count("task"), before);
    while (proc_self_count("task") > before && gr_now_update() < start + 5000)
        usleep(5000);
    left = gr_now_update() - start;
    cr_assert_eq(proc_self_count("task"), before, "the idle workers did not leave");
    /* Every worker was started after start, and waited idle that long. */
    cr_assert_geq(left, IDLE_TEST_MS, "the workers left after %" PRId64 " ms", left);
}
