/* Hubs on several OS threads: gr_hubs_run, gr_spawn_on, and the
 * thread-safe Event and AsyncResult between green threads of different
 * hubs and plain OS threads. */
#include "common.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* ------------------------------------------------------- gr_hubs_run */

static void *hub_id(void *arg)
{
    gr_sleep(gr_now_update() + 5);
    return (void *)((intptr_t)arg * 10);
}

Test(xthread, hubs_run_runs_each_on_its_hub, .timeout = 10)
{
    void *args[4] = {(void *)1, (void *)2, (void *)3, (void *)4}, *res[4];

    cr_assert_eq(gr_hubs_run(4, hub_id, args, res), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq((intptr_t)res[i], (i + 1) * 10);
    assert_fails(gr_hubs_run(0, hub_id, NULL, NULL), EINVAL);
    assert_fails(gr_hubs_run(1, NULL, NULL, NULL), EINVAL);
}

/* ---------------------------------- plain thread <-> green thread */

static gr_event ev;
static gr_async res;

static void *plain_waits_event(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)gr_event_wait(&ev, gr_now_update() + 5000);
}

static void *plain_sets_async(void *arg)
{
    (void)arg;
    usleep(10000);
    gr_async_set(&res, (void *)42);
    return NULL;
}

static void *green_side(void *arg)
{
    pthread_t t1, t2;
    void *r;

    (void)arg;
    gr_event_init(&ev);
    gr_async_init(&res);
    cr_assert_eq(pthread_create(&t1, NULL, plain_waits_event, NULL), 0);
    cr_assert_eq(pthread_create(&t2, NULL, plain_sets_async, NULL), 0);
    /* The green thread waits for the plain thread's value... */
    cr_assert_eq(gr_async_get(&res, &r, gr_now_update() + 5000), 0);
    cr_assert_eq((intptr_t)r, 42);
    /* ...and wakes a plain thread blocked on an event. */
    gr_sleep(gr_now_update() + 10);
    gr_event_set(&ev);
    pthread_join(t1, &r);
    cr_assert_eq((intptr_t)r, 0);
    pthread_join(t2, NULL);
    return NULL;
}

Test(xthread, plain_threads_and_green_threads_share_events, .timeout = 10)
{
    run_main(green_side, NULL);
}

/* --------------------------------------------- two hubs, gr_spawn_on */

static gr_hub *hub_b;
static gr_event b_ready, b_stop;

static void *square(void *arg)
{
    gr_sleep(gr_now_update() + 2);
    return (void *)((intptr_t)arg * (intptr_t)arg);
}

static void *hub_b_main(void *arg)
{
    (void)arg;
    hub_b = gr_hub_current();
    gr_event_set(&b_ready);
    /* Waiting on an event another hub will set is not a deadlock. */
    cr_assert_eq(gr_event_wait(&b_stop, -1), 0);
    return NULL;
}

static void *hub_a_main(void *arg)
{
    gr_async done[100];
    void *r;

    (void)arg;
    cr_assert_eq(gr_event_wait(&b_ready, gr_now_update() + 5000), 0);
    for (intptr_t i = 0; i < 100; i++) {
        gr_async_init(&done[i]);
        cr_assert_eq(gr_spawn_on(hub_b, square, (void *)i, NULL, &done[i]), 0);
    }
    for (intptr_t i = 0; i < 100; i++) {
        /* A bound against a hang, not a speed: TSan on a loaded machine
         * once took over 5 s here. */
        cr_assert_eq(gr_async_get(&done[i], &r, gr_now_update() + 30000), 0, "result %ld: %s",
                     (long)i, strerror(errno));
        cr_assert_eq((intptr_t)r, i * i);
    }
    gr_event_set(&b_stop);
    return NULL;
}

static void *which_hub(void *arg)
{
    return (intptr_t)arg ? hub_a_main(NULL) : hub_b_main(NULL);
}

Test(xthread, spawn_on_another_hub_and_join_its_result, .timeout = 60)
{
    void *args[2] = {(void *)0, (void *)1};

    gr_event_init(&b_ready);
    gr_event_init(&b_stop);
    cr_assert_eq(gr_hubs_run(2, which_hub, args, NULL), 0);
    assert_fails(gr_spawn_on(NULL, square, NULL, NULL, &res), EINVAL);
}

/* ------------------------- time-outs, kills, and races with the setter */

static void *waits_killed(void *arg)
{
    (void)arg;
    assert_fails(gr_event_wait(&ev, -1), ECANCELED);
    return NULL;
}

static void *timeouts_and_kills(void *arg)
{
    gr_t t;

    (void)arg;
    gr_event_init(&ev);
    assert_fails(gr_event_wait(&ev, gr_now_update() + 5), ETIMEDOUT);
    assert_fails(gr_event_wait(&ev, 0), ETIMEDOUT);
    t = gr_spawn(waits_killed, NULL);
    gr_yield();
    cr_assert_eq(gr_kill(t), 0);
    cr_assert_eq(gr_join(t, NULL, gr_now() + 1000), 0);
    return NULL;
}

Test(xthread, timeouts_and_kills, .timeout = 10)
{
    run_main(timeouts_and_kills, NULL);
    gr_event_init(&ev);
    /* A plain thread's wait times out too. */
    assert_fails(gr_event_wait(&ev, gr_now_update() + 5), ETIMEDOUT);
}

/* A setter racing waiters that are about to time out: every wait ends,
 * with success exactly when the set came before the waiter gave up. */
#define RACES 2000

static atomic_int round_no, ok, timed_out;
static gr_async race[RACES];

static void *racing_setter(void *arg)
{
    (void)arg;
    for (int i = 0; i < RACES; i++) {
        while (atomic_load(&round_no) < i)
            sched_yield();
        if (i % 3)
            gr_async_set(&race[i], (void *)(intptr_t)(i + 1));
    }
    return NULL;
}

static void *racing_waiter(void *arg)
{
    pthread_t t;
    void *r;

    (void)arg;
    for (int i = 0; i < RACES; i++)
        gr_async_init(&race[i]);
    cr_assert_eq(pthread_create(&t, NULL, racing_setter, NULL), 0);
    for (int i = 0; i < RACES; i++) {
        atomic_store(&round_no, i);
        if (gr_async_get(&race[i], &r, gr_now_update() + 1) == 0) {
            cr_assert_eq((intptr_t)r, i + 1);
            atomic_fetch_add(&ok, 1);
        } else {
            cr_assert_eq(errno, ETIMEDOUT);
            atomic_fetch_add(&timed_out, 1);
        }
    }
    pthread_join(t, NULL);
    /* Every value set is there afterwards, whoever won the race. */
    for (int i = 0; i < RACES; i++)
        cr_assert_eq(gr_async_ready(&race[i]), i % 3 != 0);
    cr_assert_eq(ok + timed_out, RACES);
    return NULL;
}

Test(xthread, a_setter_racing_a_timing_out_waiter, .timeout = 30)
{
    run_main(racing_waiter, NULL);
}

/* Whoever sees the outcome may free the object at once, while the setter
 * on another thread is still returning from its call: the setter must be
 * done with it by then (ASan and TSan catch a late touch). */
#ifdef GROVE_TEST_TSAN
#define FREES 3000
#else
#define FREES 20000
#endif

static gr_async *volatile to_set;
static gr_event *volatile ev_to_set;
static atomic_int handed;

static void *setter_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < FREES; i++) {
        while (atomic_load(&handed) != 2 * i + 1)
            sched_yield();
        if (i % 2)
            gr_async_set(to_set, (void *)(intptr_t)i);
        else
            gr_event_set(ev_to_set);
    }
    return NULL;
}

static void *frees_what_it_saw(void *arg)
{
    pthread_t t;
    void *r;

    (void)arg;
    cr_assert_eq(pthread_create(&t, NULL, setter_thread, NULL), 0);
    for (int i = 0; i < FREES; i++) {
        gr_async *a = malloc(sizeof *a);
        gr_event *e = malloc(sizeof *e);

        gr_async_init(a);
        gr_event_init(e);
        to_set = a;
        ev_to_set = e;
        atomic_store(&handed, 2 * i + 1);
        /* Half wait (woken by the set), half poll (see it unlocked). */
        if (i % 2) {
            if (i % 4 == 1)
                cr_assert_eq(gr_async_get(a, &r, gr_now_update() + 5000), 0);
            else
                while (!gr_async_ready(a))
                    gr_yield();
        } else if (i % 4 == 0) {
            cr_assert_eq(gr_event_wait(e, gr_now_update() + 5000), 0);
        } else {
            while (!gr_event_is_set(e))
                gr_yield();
        }
        free(a);
        free(e);
        atomic_store(&handed, 2 * i + 2);
    }
    pthread_join(t, NULL);
    return NULL;
}

Test(xthread, who_sees_the_outcome_may_free_it_at_once, .timeout = 60)
{
    run_main(frees_what_it_saw, NULL);
}
