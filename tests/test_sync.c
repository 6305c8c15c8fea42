/* Synchronisation: Event, AsyncResult, Semaphore, Lock/RLock, Condition,
 * Group/Pool (queues and channels are in test_queue.c). Orders are
 * asserted exactly; races are arranged deterministically (equal deadlines
 * fire in arming order in one pass). */
#include "sync_common.h"

#include <stdlib.h>

/* ================================================================ Event */

static gr_event ev;

static void *event_waiter(void *arg)
{
    cr_assert_eq(gr_event_wait(&ev, -1), 0);
    mark((char)(intptr_t)arg);
    return NULL;
}

static void *event_wakes_all(void *arg)
{
    gr_t g[5];
    int64_t t0;

    (void)arg;
    gr_event_init(&ev);
    cr_assert_not(gr_event_is_set(&ev));
    for (int i = 0; i < 5; i++)
        g[i] = gr_spawn(event_waiter, ARG('a' + i));
    gr_yield();
    mark('-');
    gr_event_set(&ev);
    cr_assert(gr_event_is_set(&ev));
    cr_assert_eq(gr_event_wait(&ev, 0), 0, "a set event is waited for at once");
    join_all(g, 5);
    assert_trail("-abcde");
    gr_event_clear(&ev);
    cr_assert_not(gr_event_is_set(&ev));
    assert_fails(gr_event_wait(&ev, 0), ETIMEDOUT);
    t0 = gr_now_update();
    assert_fails(gr_event_wait(&ev, t0 + 20), ETIMEDOUT);
    cr_assert_geq(gr_now_update(), t0 + 20);
    return NULL;
}

Test(event, set_wakes_every_waiter_in_order, .timeout = 10)
{
    run_main(event_wakes_all, NULL);
}

/* Woken waiters never read the event again: the setter may free it. */
static void *waits_on_event(void *arg)
{
    cr_assert_eq(gr_event_wait(arg, -1), 0);
    return NULL;
}

static void *event_freed_after_set(void *arg)
{
    gr_event *e = malloc(sizeof *e);
    gr_t g[3];

    (void)arg;
    gr_event_init(e);
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(waits_on_event, e);
    gr_yield();
    gr_event_set(e);
    gr_event_clear(e); /* cleared before they run: the set still counts */
    free(e);
    join_all(g, 3);
    return NULL;
}

Test(event, waiters_woken_do_not_touch_it_again, .timeout = 10)
{
    run_main(event_freed_after_set, NULL);
}

static void *killed_event_waiter(void *arg)
{
    (void)arg;
    assert_fails(gr_event_wait(&ev, -1), ECANCELED);
    /* Waiting for an outcome that is there is not a wait: it succeeds. */
    gr_event_set(&ev);
    cr_assert_eq(gr_event_wait(&ev, -1), 0);
    gr_event_clear(&ev);
    assert_fails(gr_event_wait(&ev, 0), ECANCELED);
    return NULL;
}

static void *event_cancel(void *arg)
{
    gr_t g = gr_spawn(killed_event_waiter, NULL);

    (void)arg;
    gr_event_init(&ev);
    gr_yield();
    cr_assert_eq(gr_kill(g), 0);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    return NULL;
}

Test(event, kill_interrupts_wait, .timeout = 10)
{
    run_main(event_cancel, NULL);
}

/* ========================================================== AsyncResult */

static gr_async ar;

static void *async_getter(void *arg)
{
    void *v = NULL;

    (void)arg;
    cr_assert_eq(gr_async_get(&ar, &v, -1), 0);
    return v;
}

static void *async_error_getter(void *arg)
{
    (void)arg;
    assert_fails(gr_async_get(&ar, NULL, -1), ECONNRESET);
    return NULL;
}

static void *async_many(void *arg)
{
    enum { N = 100 };
    gr_t g[N];
    void *v;

    (void)arg;
    gr_async_init(&ar);
    cr_assert_not(gr_async_ready(&ar));
    for (int i = 0; i < N; i++)
        g[i] = gr_spawn(async_getter, NULL);
    gr_yield();
    assert_fails(gr_async_get(&ar, &v, 0), ETIMEDOUT);
    assert_fails(gr_async_get(&ar, &v, gr_now_update() + 5), ETIMEDOUT);
    cr_assert_eq(gr_async_set(&ar, ARG(77)), 0);
    cr_assert(gr_async_ready(&ar));
    assert_fails(gr_async_set(&ar, ARG(78)), EALREADY);
    assert_fails(gr_async_set_error(&ar, EIO), EALREADY);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(gr_join(g[i], &v, -1), 0);
        cr_assert_eq((intptr_t)v, 77);
    }
    cr_assert_eq(gr_async_get(&ar, &v, 0), 0);
    cr_assert_eq((intptr_t)v, 77);

    gr_async_init(&ar);
    assert_fails(gr_async_set_error(&ar, 0), EINVAL);
    assert_fails(gr_async_set_error(&ar, -3), EINVAL);
    for (int i = 0; i < 10; i++)
        g[i] = gr_spawn(async_error_getter, NULL);
    gr_yield();
    cr_assert_eq(gr_async_set_error(&ar, ECONNRESET), 0);
    cr_assert(gr_async_ready(&ar));
    join_all(g, 10);
    assert_fails(gr_async_get(&ar, &v, -1), ECONNRESET);
    return NULL;
}

Test(async, many_waiters_get_the_value_or_the_error, .timeout = 10)
{
    run_main(async_many, NULL);
}

static void *killed_async_getter(void *arg)
{
    void *v;

    (void)arg;
    assert_fails(gr_async_get(&ar, &v, -1), ECANCELED);
    cr_assert_eq(gr_async_set(&ar, ARG(5)), 0);
    /* Collecting a delivered result is allowed in a killed thread. */
    cr_assert_eq(gr_async_get(&ar, &v, -1), 0);
    cr_assert_eq((intptr_t)v, 5);
    return NULL;
}

static void *async_cancel(void *arg)
{
    gr_t g = gr_spawn(killed_async_getter, NULL);

    (void)arg;
    gr_async_init(&ar);
    gr_yield();
    gr_kill(g);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    return NULL;
}

Test(async, kill_interrupts_get, .timeout = 10)
{
    run_main(async_cancel, NULL);
}

/* ============================================================ Semaphore */

static gr_sem sem;

static void *sem_taker(void *arg)
{
    cr_assert_eq(gr_sem_acquire(&sem, -1), 0);
    mark((char)(intptr_t)arg);
    return NULL;
}

static void *sem_fifo(void *arg)
{
    gr_t g[3];

    (void)arg;
    gr_sem_init(&sem, 2);
    cr_assert_eq(gr_sem_acquire(&sem, 0), 0);
    cr_assert_eq(gr_sem_acquire(&sem, -1), 0);
    cr_assert_eq(gr_sem_value(&sem), 0);
    assert_fails(gr_sem_acquire(&sem, 0), ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(sem_taker, ARG('A' + i));
    gr_yield();
    cr_assert_eq(gr_sem_release(&sem), 0);
    /* The unit went to A, parked first: a newcomer cannot barge in. */
    cr_assert_eq(gr_sem_value(&sem), 0);
    assert_fails(gr_sem_acquire(&sem, 0), ETIMEDOUT);
    cr_assert_eq(gr_sem_release(&sem), 0);
    cr_assert_eq(gr_sem_release(&sem), 0);
    cr_assert_eq(gr_sem_release(&sem), 0);
    join_all(g, 3);
    assert_trail("ABC");
    cr_assert_eq(gr_sem_value(&sem), 1);
    return NULL;
}

Test(sem, waiters_take_units_first_come_first_served, .timeout = 10)
{
    run_main(sem_fifo, NULL);
}

static void *sem_releaser_at_instant(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_sleep(instant), 0);
    cr_assert_eq(gr_sem_release(&sem), 0);
    mark('R');
    return NULL;
}

static void *sem_acquirer_until_instant(void *arg)
{
    (void)arg;
    assert_fails(gr_sem_acquire(&sem, instant), ETIMEDOUT);
    mark('T');
    return NULL;
}

/* The releaser and the waiter's deadline fire in the same hub pass, the
 * releaser's timer first: it runs while the waiter, timed out but not yet
 * run, is still in the queue. The unit must go past it. */
static void *sem_race(void *arg)
{
    gr_t g[3];

    (void)arg;
    gr_sem_init(&sem, 0);
    instant = gr_now_update() + 20;
    g[0] = gr_spawn(sem_releaser_at_instant, NULL);
    g[1] = gr_spawn(sem_acquirer_until_instant, NULL);
    join_all(g, 2);
    assert_trail("RT");
    cr_assert_eq(gr_sem_value(&sem), 1, "the unit was lost");

    /* Same again, with a patient waiter behind: it gets the unit. */
    reset_trail();
    gr_sem_init(&sem, 0);
    instant = gr_now_update() + 20;
    g[0] = gr_spawn(sem_releaser_at_instant, NULL);
    g[1] = gr_spawn(sem_acquirer_until_instant, NULL);
    g[2] = gr_spawn(sem_taker, ARG('F'));
    join_all(g, 3);
    assert_trail("RTF");
    cr_assert_eq(gr_sem_value(&sem), 0);
    return NULL;
}

Test(sem, timed_out_waiter_does_not_lose_the_unit, .timeout = 10)
{
    run_main(sem_race, NULL);
}

static void *killed_sem_taker(void *arg)
{
    (void)arg;
    assert_fails(gr_sem_acquire(&sem, -1), ECANCELED);
    /* Taking is refused to a killed thread even when a unit is there. */
    cr_assert_eq(gr_sem_release(&sem), 0);
    assert_fails(gr_sem_acquire(&sem, -1), ECANCELED);
    cr_assert_eq(gr_sem_value(&sem), 1);
    return NULL;
}

static void *sem_cancel_and_bounds(void *arg)
{
    gr_t g = gr_spawn(killed_sem_taker, NULL);
    gr_sem b;

    (void)arg;
    gr_sem_init(&sem, 0);
    gr_yield();
    gr_kill(g);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    cr_assert_eq(gr_sem_value(&sem), 1);

    gr_sem_init_bounded(&b, 1);
    assert_fails(gr_sem_release(&b), EOVERFLOW);
    cr_assert_eq(gr_sem_acquire(&b, -1), 0);
    cr_assert_eq(gr_sem_release(&b), 0);
    assert_fails(gr_sem_release(&b), EOVERFLOW);
    cr_assert_eq(gr_sem_value(&b), 1);
    gr_sem_init_bounded(&b, 0);
    assert_fails(gr_sem_release(&b), EOVERFLOW);
    gr_sem_init(&b, SIZE_MAX);
    assert_fails(gr_sem_release(&b), EOVERFLOW);
    return NULL;
}

Test(sem, cancel_and_bounded_overflow, .timeout = 10)
{
    run_main(sem_cancel_and_bounds, NULL);
}

/* ================================================================= Lock */

static gr_lock lk;

static void *lock_taker(void *arg)
{
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    mark((char)(intptr_t)arg);
    cr_assert_eq(gr_lock_release(&lk), 0);
    return NULL;
}

static void *lock_fifo(void *arg)
{
    gr_t g[3];

    (void)arg;
    gr_lock_init(&lk);
    cr_assert_not(gr_lock_locked(&lk));
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    cr_assert(gr_lock_locked(&lk));
    assert_fails(gr_lock_acquire(&lk, -1), EDEADLK);
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(lock_taker, ARG('A' + i));
    gr_yield();
    mark('m');
    cr_assert_eq(gr_lock_release(&lk), 0);
    /* Handed to A: still locked, and not ours to take or release. */
    cr_assert(gr_lock_locked(&lk));
    assert_fails(gr_lock_acquire(&lk, 0), ETIMEDOUT);
    assert_fails(gr_lock_release(&lk), EPERM);
    join_all(g, 3);
    assert_trail("mABC");
    cr_assert_not(gr_lock_locked(&lk));
    assert_fails(gr_lock_release(&lk), EPERM);
    return NULL;
}

Test(lock, handed_to_waiters_in_order, .timeout = 10)
{
    run_main(lock_fifo, NULL);
}

static void *lock_holder_at_instant(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    cr_assert_eq(gr_sleep(instant), 0);
    cr_assert_eq(gr_lock_release(&lk), 0);
    mark('R');
    return NULL;
}

static void *lock_waiter_until_instant(void *arg)
{
    (void)arg;
    assert_fails(gr_lock_acquire(&lk, instant), ETIMEDOUT);
    mark('T');
    return NULL;
}

static void *killed_lock_waiter(void *arg)
{
    (void)arg;
    assert_fails(gr_lock_acquire(&lk, -1), ECANCELED);
    mark('K');
    return NULL;
}

static void *lock_race_and_cancel(void *arg)
{
    gr_t g[4];

    (void)arg;
    gr_lock_init(&lk);
    instant = gr_now_update() + 20;
    g[0] = gr_spawn(lock_holder_at_instant, NULL);
    g[1] = gr_spawn(lock_waiter_until_instant, NULL);
    g[2] = gr_spawn(killed_lock_waiter, NULL);
    g[3] = gr_spawn(lock_taker, ARG('F'));
    gr_yield();
    gr_kill(g[2]);
    join_all(g, 4);
    /* The timed-out and the killed waiter were passed over. */
    assert_trail("KRTF");
    cr_assert_not(gr_lock_locked(&lk));
    return NULL;
}

Test(lock, timed_out_and_killed_waiters_are_passed_over, .timeout = 10)
{
    run_main(lock_race_and_cancel, NULL);
}

static void *rlock_other(void *arg)
{
    (void)arg;
    assert_fails(gr_lock_acquire(&lk, 0), ETIMEDOUT);
    assert_fails(gr_lock_release(&lk), EPERM);
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    mark('o');
    cr_assert_eq(gr_lock_release(&lk), 0);
    return NULL;
}

static void *rlock_recursion(void *arg)
{
    gr_t g;

    (void)arg;
    gr_rlock_init(&lk);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    g = gr_spawn(rlock_other, NULL);
    gr_yield();
    cr_assert_eq(gr_lock_release(&lk), 0);
    cr_assert_eq(gr_lock_release(&lk), 0);
    cr_assert(gr_lock_locked(&lk));
    gr_yield();
    mark('m');
    cr_assert_eq(gr_lock_release(&lk), 0);
    assert_fails(gr_lock_release(&lk), EPERM);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    assert_trail("mo");
    return NULL;
}

Test(lock, rlock_counts_acquisitions, .timeout = 10)
{
    run_main(rlock_recursion, NULL);
}

/* ============================================================ Condition */

static gr_cond cv;

static void *cond_waiter(void *arg)
{
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    cr_assert_eq(gr_cond_wait(&cv, &lk, -1), 0);
    mark((char)(intptr_t)arg);
    cr_assert_eq(gr_lock_release(&lk), 0, "cond_wait returned without the lock");
    return NULL;
}

static void *cond_signal_broadcast(void *arg)
{
    gr_t g[4];

    (void)arg;
    gr_lock_init(&lk);
    gr_cond_init(&cv);
    gr_cond_signal(&cv); /* nobody waits: lost, as it should be */
    for (int i = 0; i < 4; i++)
        g[i] = gr_spawn(cond_waiter, ARG('a' + i));
    gr_yield();
    cr_assert_not(gr_lock_locked(&lk), "waiting released the lock");
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    gr_cond_signal(&cv);
    gr_yield(); /* a wakes and queues for the lock we hold */
    mark('1');
    cr_assert_eq(gr_lock_release(&lk), 0);
    cr_assert_eq(gr_join(g[0], NULL, -1), 0);
    gr_cond_broadcast(&cv);
    mark('2');
    join_all(g + 1, 3);
    assert_trail("1a2bcd");
    assert_fails(gr_cond_wait(&cv, &lk, -1), EPERM);
    return NULL;
}

Test(cond, signal_and_broadcast_in_order, .timeout = 10)
{
    run_main(cond_signal_broadcast, NULL);
}

static void *cond_timed_waiter(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    assert_fails(gr_cond_wait(&cv, &lk, 0), ETIMEDOUT);
    assert_fails(gr_cond_wait(&cv, &lk, gr_now_update() + 20), ETIMEDOUT);
    mark('w');
    cr_assert_eq(gr_lock_release(&lk), 0);
    return NULL;
}

static void *cond_timeout_reacquires(void *arg)
{
    gr_t g = gr_spawn(cond_timed_waiter, NULL);

    (void)arg;
    gr_lock_init(&lk);
    gr_cond_init(&cv);
    gr_yield();
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    gr_sleep(gr_now_update() + 50); /* its time-out passes while we hold the lock */
    assert_blocked(g);
    mark('m');
    cr_assert_eq(gr_lock_release(&lk), 0);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    assert_trail("mw");
    return NULL;
}

Test(cond, timeout_returns_with_the_lock_held, .timeout = 10)
{
    run_main(cond_timeout_reacquires, NULL);
}

static void *cond_killed_waiter(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    assert_fails(gr_cond_wait(&cv, &lk, -1), ECANCELED);
    mark('w');
    cr_assert_eq(gr_lock_release(&lk), 0, "killed, but must hold the lock again");
    /* A killed thread's later waits fail at once, still holding l. */
    cr_assert_eq(gr_lock_acquire(&lk, 0), -1);
    return NULL;
}

static void *cond_killed_during_reacquire(void *arg)
{
    gr_timeout t;

    (void)arg;
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    /* A timeout region that ends while re-acquiring must not cut it. */
    gr_timeout_begin(&t, gr_now_update() + 30);
    assert_fails(gr_cond_wait(&cv, &lk, gr_now() + 10), ETIMEDOUT);
    cr_assert_eq(gr_timeout_end(&t), 1);
    mark('v');
    assert_fails(gr_testcancel(), ECANCELED);
    cr_assert_eq(gr_lock_release(&lk), 0);
    return NULL;
}

static void *cond_cancel(void *arg)
{
    gr_t g;

    (void)arg;
    gr_lock_init(&lk);
    gr_cond_init(&cv);
    g = gr_spawn(cond_killed_waiter, NULL);
    gr_yield();
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    gr_kill(g);
    gr_yield(); /* it wakes, and waits for the lock regardless */
    gr_kill(g);
    gr_yield();
    assert_blocked(g);
    mark('m');
    cr_assert_eq(gr_lock_release(&lk), 0);
    cr_assert_eq(gr_join(g, NULL, -1), 0);

    g = gr_spawn(cond_killed_during_reacquire, NULL);
    gr_yield();
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    gr_sleep(gr_now_update() + 40); /* its wait and its region end */
    gr_kill(g);                     /* while it re-acquires */
    gr_yield();
    assert_blocked(g);
    mark('n');
    cr_assert_eq(gr_lock_release(&lk), 0);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    assert_trail("mwnv");
    cr_assert_not(gr_lock_locked(&lk));
    return NULL;
}

Test(cond, cancelled_waiter_reacquires_the_lock, .timeout = 10)
{
    run_main(cond_cancel, NULL);
}

static void *rlock_cond_waiter(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    cr_assert_eq(gr_lock_acquire(&lk, -1), 0);
    cr_assert_eq(gr_cond_wait(&cv, &lk, -1), 0);
    cr_assert_eq(gr_lock_release(&lk), 0);
    cr_assert(gr_lock_locked(&lk), "the depth of 2 was restored");
    cr_assert_eq(gr_lock_release(&lk), 0);
    cr_assert_not(gr_lock_locked(&lk));
    mark('w');
    return NULL;
}

static void *rlock_cond(void *arg)
{
    gr_t g;

    (void)arg;
    gr_rlock_init(&lk);
    gr_cond_init(&cv);
    g = gr_spawn(rlock_cond_waiter, NULL);
    gr_yield();
    cr_assert_eq(gr_lock_acquire(&lk, 0), 0, "fully released while waiting");
    gr_cond_signal(&cv);
    mark('m');
    cr_assert_eq(gr_lock_release(&lk), 0);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    assert_trail("mw");
    return NULL;
}

Test(cond, rlock_depth_is_saved_and_restored, .timeout = 10)
{
    run_main(rlock_cond, NULL);
}

/* ======================================================== Group and Pool */

static int running, most_running;

static void *pool_worker(void *arg)
{
    running++;
    if (running > most_running)
        most_running = running;
    gr_sleep(gr_now() + 1 + (intptr_t)arg % 3);
    running--;
    return NULL;
}

static void *pool_limit(void *arg)
{
    gr_group *p = gr_group_new(3);

    (void)arg;
    cr_assert_not_null(p);
    for (intptr_t i = 0; i < 20; i++) {
        cr_assert_gt(gr_group_spawn(p, pool_worker, ARG(i), NULL, -1), 0);
        cr_assert_leq(gr_group_size(p), 3);
    }
    cr_assert_eq(gr_group_join(p, -1), 0);
    cr_assert_eq(gr_group_size(p), 0);
    cr_assert_eq(most_running, 3);
    cr_assert_eq(gr_group_free(p), 0);
    return NULL;
}

Test(group, pool_never_runs_more_than_its_limit, .timeout = 10)
{
    run_main(pool_limit, NULL);
}

static void *sleeps_forever(void *arg)
{
    assert_fails(gr_sleep(-1), ECANCELED);
    mark((char)(intptr_t)arg);
    return NULL;
}

static void *member_joins_own_group(void *arg)
{
    assert_fails(gr_group_join(arg, -1), EDEADLK);
    return NULL;
}

static void *killed_group_joiner(void *arg)
{
    assert_fails(gr_group_join(arg, -1), ECANCELED);
    return NULL;
}

static void *group_join_kill(void *arg)
{
    gr_group *grp = gr_group_new(0);
    char name[32];
    gr_t g;

    (void)arg;
    for (int i = 0; i < 4; i++)
        cr_assert_gt(gr_group_spawn(grp, sleeps_forever, ARG('1' + i), NULL, -1), 0);
    g = gr_group_spawn(grp, member_joins_own_group, grp,
                       &(gr_opts){.name = "member", .stack_size = 64 * 1024}, -1);
    cr_assert_gt(g, 0);
    /* The caller's options are kept, and the member is detached. */
    cr_assert_eq(gr_name(g, name, sizeof name), 0);
    cr_assert_str_eq(name, "member");
    assert_fails(gr_join(g, NULL, -1), EINVAL);
    cr_assert_eq(gr_group_size(grp), 5);
    gr_yield();
    cr_assert_eq(gr_group_size(grp), 4);
    assert_fails(gr_group_join(grp, 0), ETIMEDOUT);
    assert_fails(gr_group_join(grp, gr_now_update() + 10), ETIMEDOUT);
    assert_fails(gr_group_free(grp), EBUSY);
    g = gr_spawn(killed_group_joiner, grp);
    gr_yield();
    gr_kill(g);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    gr_group_kill(grp);
    cr_assert_eq(gr_group_join(grp, -1), 0);
    assert_trail("1234"); /* killed, and so unwound, in spawn order */
    cr_assert_eq(gr_group_size(grp), 0);
    cr_assert_eq(gr_group_join(grp, 0), 0);
    cr_assert_eq(gr_group_free(grp), 0);
    return NULL;
}

Test(group, join_and_kill, .timeout = 10)
{
    run_main(group_join_kill, NULL);
}

static gr_event gate;

static void *waits_for_gate(void *arg)
{
    (void)arg;
    gr_event_wait(&gate, -1);
    return NULL;
}

static void *records_start(void *arg)
{
    mark((char)(intptr_t)arg);
    return NULL;
}

typedef struct spawn_req {
    gr_group *pool;
    char tag;
} spawn_req;

static void *pool_spawner(void *arg)
{
    spawn_req *r = arg;

    cr_assert_gt(gr_group_spawn(r->pool, records_start, ARG(r->tag), NULL, -1), 0);
    return NULL;
}

static void *killed_pool_spawner(void *arg)
{
    spawn_req *r = arg;

    assert_fails(gr_group_spawn(r->pool, records_start, ARG('!'), NULL, -1), ECANCELED);
    return NULL;
}

static void *pool_fifo_and_timeout(void *arg)
{
    gr_group *pool = gr_group_new(1);
    spawn_req req[4] = {{pool, 'A'}, {pool, 'B'}, {pool, 'C'}, {pool, 0}};
    gr_t g[4];

    (void)arg;
    gr_event_init(&gate);
    cr_assert_gt(gr_group_spawn(pool, waits_for_gate, NULL, NULL, -1), 0);
    assert_fails(gr_group_spawn(pool, records_start, ARG('x'), NULL, 0), ETIMEDOUT);
    assert_fails(gr_group_spawn(pool, records_start, ARG('x'), NULL, gr_now_update() + 10),
                 ETIMEDOUT);
    g[0] = gr_spawn(killed_pool_spawner, &req[3]);
    for (int i = 1; i < 4; i++)
        g[i] = gr_spawn(pool_spawner, &req[i - 1]);
    gr_yield();
    gr_kill(g[0]);
    gr_event_set(&gate);
    gr_yield(); /* the gate-keeper finishes: its slot goes to A */
    assert_fails(gr_group_spawn(pool, records_start, ARG('x'), NULL, 0), ETIMEDOUT);
    join_all(g, 4);
    cr_assert_eq(gr_group_join(pool, -1), 0);
    assert_trail("ABC");
    assert_fails(gr_group_spawn(pool, NULL, NULL, NULL, -1), EINVAL);
    assert_fails(gr_group_spawn(pool, records_start, NULL, &(gr_opts){.flags = 0x40}, -1), EINVAL);
    cr_assert_eq(gr_group_size(pool), 0, "a failed spawn leaves no member");
    cr_assert_eq(gr_group_free(pool), 0);
    cr_assert_eq(gr_group_free(NULL), 0);
    return NULL;
}

Test(group, pool_spawners_wait_in_order_and_time_out, .timeout = 10)
{
    run_main(pool_fifo_and_timeout, NULL);
}

static gr_group *race_pool;

static void *member_until_instant(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_sleep(instant), 0);
    mark('R');
    return NULL;
}

static void *spawner_until_instant(void *arg)
{
    (void)arg;
    assert_fails(gr_group_spawn(race_pool, records_start, ARG('x'), NULL, instant), ETIMEDOUT);
    mark('T');
    return NULL;
}

/* The member finishing and the spawner's deadline fall in one pass: the
 * freed slot goes past the timed-out spawner to the next. */
static void *pool_race(void *arg)
{
    spawn_req patient;
    gr_t g[2];

    (void)arg;
    race_pool = gr_group_new(1);
    patient = (spawn_req){race_pool, 'F'};
    instant = gr_now_update() + 20;
    cr_assert_gt(gr_group_spawn(race_pool, member_until_instant, NULL, NULL, -1), 0);
    g[0] = gr_spawn(spawner_until_instant, NULL);
    g[1] = gr_spawn(pool_spawner, &patient);
    join_all(g, 2);
    cr_assert_eq(gr_group_join(race_pool, -1), 0);
    assert_trail("RTF");
    cr_assert_eq(gr_group_free(race_pool), 0);
    return NULL;
}

Test(group, timed_out_spawner_does_not_lose_the_slot, .timeout = 10)
{
    run_main(pool_race, NULL);
}

/* ==================================================== from hub callbacks */

static int callback_ran;
static gr_group *cb_group;
static gr_chan cb_chan;

static void in_callback(void *arg)
{
    (void)arg;
    /* Nothing may block here, but whatever need not wait works, and
     * trying once is a time-out, not a misuse. */
    gr_event_init(&ev);
    assert_fails(gr_event_wait(&ev, 0), ETIMEDOUT);
    assert_fails(gr_event_wait(&ev, -1), EDEADLK);
    gr_event_set(&ev);
    cr_assert_eq(gr_event_wait(&ev, -1), 0);
    gr_sem_init(&sem, 1);
    cr_assert_eq(gr_sem_acquire(&sem, -1), 0);
    assert_fails(gr_sem_acquire(&sem, 0), ETIMEDOUT);
    cr_assert_eq(gr_sem_release(&sem), 0);
    gr_lock_init(&lk);
    assert_fails(gr_lock_acquire(&lk, -1), EDEADLK);
    assert_fails(gr_lock_release(&lk), EPERM);
    gr_cond_init(&cv);
    assert_fails(gr_cond_wait(&cv, &lk, -1), EPERM);
    gr_chan_init(&cb_chan);
    assert_fails(gr_chan_send(&cb_chan, NULL, 0), ETIMEDOUT);
    assert_fails(gr_chan_recv(&cb_chan, NULL, -1), EDEADLK);
    cr_assert_gt(gr_group_spawn(cb_group, records_start, ARG('g'), NULL, -1), 0);
    callback_ran = 1;
}

static void *hub_callback(void *arg)
{
    (void)arg;
    cb_group = gr_group_new(0);
    cr_assert_eq(gr_hub_post(gr_hub_current(), in_callback, NULL), 0);
    gr_sleep(gr_now() + 1);
    cr_assert(callback_ran);
    cr_assert_eq(gr_group_join(cb_group, -1), 0);
    assert_trail("g");
    cr_assert_eq(gr_group_free(cb_group), 0);
    return NULL;
}

Test(misuse, hub_callbacks_may_use_what_need_not_wait, .timeout = 10)
{
    cr_redirect_stderr(); /* the EDEADLK warning */
    run_main(hub_callback, NULL);
}

/* The root context waits like any green thread, and is told when nothing
 * could ever wake it: a hub-local object's wait. (A wait on a thread-safe
 * object, such as an Event, is never called a deadlock: another OS thread
 * may end it.) */
Test(misuse, root_waiting_forever_gets_edeadlk, .timeout = 10)
{
    gr_event e;
    gr_sem s;

    cr_redirect_stderr();
    gr_event_init(&e);
    assert_fails(gr_event_wait(&e, gr_now_update() + 5), ETIMEDOUT);
    gr_sem_init(&s, 0);
    assert_fails(gr_sem_acquire(&s, -1), EDEADLK);
    assert_fails(gr_sem_acquire(&s, gr_now_update() + 5), ETIMEDOUT);
}

static gr_event zero_event;
static gr_sem zero_sem;
static gr_lock zero_lock;
static gr_chan zero_chan;
static gr_async zero_async;

static void *uses_zero_filled(void *arg)
{
    (void)arg;
    cr_assert_not(gr_event_is_set(&zero_event));
    assert_fails(gr_event_wait(&zero_event, 0), ETIMEDOUT);
    cr_assert_eq(gr_sem_value(&zero_sem), 0);
    cr_assert_eq(gr_sem_release(&zero_sem), 0); /* unbounded */
    cr_assert_eq(gr_sem_acquire(&zero_sem, 0), 0);
    cr_assert_eq(gr_lock_acquire(&zero_lock, 0), 0);
    assert_fails(gr_lock_acquire(&zero_lock, 0), EDEADLK); /* not recursive */
    cr_assert_eq(gr_lock_release(&zero_lock), 0);
    assert_fails(gr_chan_recv(&zero_chan, NULL, 0), ETIMEDOUT); /* open */
    cr_assert_not(gr_async_ready(&zero_async));
    return NULL;
}

Test(misuse, zero_filled_objects_are_initialised, .timeout = 10)
{
    run_main(uses_zero_filled, NULL);
}
