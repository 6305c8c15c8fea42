/* Pools that hand results back: gr_group_map, gr_group_imap_unordered,
 * gr_group_apply_async, gr_group_free_count, gr_group_wait_available. */
#include "common.h"

#include <stdlib.h>

static int running, most_running;
static char started[64];
static size_t nstarted;

static void reset(void)
{
    running = most_running = 0;
    nstarted = 0;
    memset(started, 0, sizeof started);
}

/* Sleeps arg ms, returns arg * 2; records the order it started in. */
static void *work(void *arg)
{
    intptr_t ms = (intptr_t)arg;

    started[nstarted++] = (char)('a' + ms / 10);
    if (++running > most_running)
        most_running = running;
    gr_sleep(gr_now_update() + ms);
    running--;
    return (void *)(ms * 2);
}

#define MS(x) ((void *)(intptr_t)(x))

/* ================================================================= map */

static void *maps(void *arg)
{
    void *args[5] = {MS(40), MS(10), MS(30), MS(5), MS(20)}, *res[5];
    gr_group *pool = gr_group_new(2), *grp = gr_group_new(0);

    (void)arg;
    reset();
    cr_assert_eq(gr_group_map(pool, work, args, res, 5, gr_now_update() + 5000), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(res[i], (void *)((intptr_t)args[i] * 2), "result %d in input order", i);
    cr_assert_eq(most_running, 2, "at most the pool's limit at once");
    cr_assert_str_eq(started, "ebdac", "inputs start in order");
    cr_assert_eq(gr_group_size(pool), 0);
    /* A plain group runs them all at once. */
    reset();
    cr_assert_eq(gr_group_map(grp, work, args, res, 5, gr_now_update() + 5000), 0);
    cr_assert_eq(most_running, 5);
    /* Nothing to map; NULL args give every call NULL. */
    cr_assert_eq(gr_group_map(pool, work, args, NULL, 0, -1), 0);
    cr_assert_eq(gr_group_map(pool, work, NULL, res, 2, gr_now_update() + 5000), 0);
    cr_assert_null(res[0]);
    assert_fails(gr_group_map(pool, NULL, args, res, 1, -1), EINVAL);
    assert_fails(gr_group_map(pool, work, args, NULL, 1, -1), EINVAL);
    assert_fails(gr_group_map(NULL, work, args, res, 1, -1), EINVAL);
    gr_group_free(pool);
    gr_group_free(grp);
    return NULL;
}

Test(map, results_in_input_order_at_most_n_running, .timeout = 10)
{
    run_main(maps, NULL);
}

static void *map_deadline(void *arg)
{
    void *args[3] = {MS(10), MS(2000), MS(3000)}, *res[3] = {MS(1), MS(1), MS(1)};
    gr_group *pool = gr_group_new(2);
    int64_t t0 = gr_now_update();

    (void)arg;
    reset();
    assert_fails(gr_group_map(pool, work, args, res, 3, t0 + 50), ETIMEDOUT);
    cr_assert_lt(gr_now_update(), t0 + 1000, "the rest were killed, not waited for");
    cr_assert_eq(res[0], MS(20), "a finished result is written");
    cr_assert_eq(res[1], MS(1), "an unfinished one is not");
    cr_assert_eq(res[2], MS(1));
    cr_assert_eq(gr_group_size(pool), 0, "no member outlives the call");
    cr_assert_eq(running, 0);
    gr_group_free(pool);
    return NULL;
}

Test(map, a_deadline_kills_the_rest_and_waits_for_them, .timeout = 10)
{
    run_main(map_deadline, NULL);
}

static void *killed_mapper(void *arg)
{
    void *args[2] = {MS(5000), MS(5000)}, *res[2];
    gr_group *pool = arg;

    assert_fails(gr_group_map(pool, work, args, res, 2, -1), ECANCELED);
    return NULL;
}

static void *kill_mapper(void *arg)
{
    gr_group *pool = gr_group_new(1);
    gr_t g;

    (void)arg;
    reset();
    g = gr_spawn(killed_mapper, pool);
    gr_sleep(gr_now_update() + 10);
    gr_kill(g);
    cr_assert_eq(gr_join(g, NULL, gr_now_update() + 5000), 0);
    cr_assert_eq(gr_group_size(pool), 0);
    gr_group_free(pool);
    return NULL;
}

Test(map, a_killed_caller_kills_its_members, .timeout = 10)
{
    run_main(kill_mapper, NULL);
}

/* ======================================================= imap_unordered */

static void *imaps(void *arg)
{
    void *args[4] = {MS(30), MS(10), MS(50), MS(25)}, *r;
    gr_group *pool = gr_group_new(3);
    size_t order[4], i;
    gr_imap *m;

    (void)arg;
    reset();
    cr_assert_not_null(m = gr_group_imap_unordered(pool, work, args, 4));
    cr_assert_eq(nstarted, 0, "nothing starts before the first next");
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(gr_imap_next(m, &order[k], &r, gr_now_update() + 5000), 0);
        cr_assert_eq(r, (void *)((intptr_t)args[order[k]] * 2));
    }
    /* 30, 10, 50 start; 10 ends and 25 starts (ends at 35 or later); then
     * 30 (ends at 30), 25, 50. */
    cr_assert_eq(order[0], 1);
    cr_assert_eq(order[1], 0);
    cr_assert_eq(order[2], 3);
    cr_assert_eq(order[3], 2);
    assert_fails(gr_imap_next(m, &i, &r, -1), ENOENT);
    cr_assert_eq(gr_imap_free(m), 0);
    cr_assert_eq(gr_imap_free(NULL), 0);
    assert_fails(gr_imap_next(NULL, &i, &r, -1), EINVAL);
    errno = 0;
    cr_assert_null(gr_group_imap_unordered(pool, NULL, args, 1));
    cr_assert_eq(errno, EINVAL);
    gr_group_free(pool);
    return NULL;
}

Test(imap, results_as_they_finish, .timeout = 10)
{
    run_main(imaps, NULL);
}

static void *imap_stopped_early(void *arg)
{
    void *args[3] = {MS(10), MS(5000), MS(5000)}, *r;
    gr_group *pool = gr_group_new(0);
    size_t i;
    gr_imap *m;

    (void)arg;
    reset();
    m = gr_group_imap_unordered(pool, work, args, 3);
    cr_assert_eq(gr_imap_next(m, &i, &r, gr_now_update() + 5000), 0);
    cr_assert_eq(i, 0);
    assert_fails(gr_imap_next(m, &i, &r, gr_now_update() + 10), ETIMEDOUT);
    /* Freeing kills the two still running and waits for them. */
    cr_assert_eq(gr_imap_free(m), 0);
    cr_assert_eq(gr_group_size(pool), 0);
    cr_assert_eq(running, 0);
    gr_group_free(pool);
    return NULL;
}

Test(imap, freeing_early_kills_and_waits, .timeout = 10)
{
    run_main(imap_stopped_early, NULL);
}

/* A member killed before it ran still reports, with GR_CANCELED. */
static void *kills_group(void *arg)
{
    gr_group_kill(arg);
    return NULL;
}

static void *imap_member_killed(void *arg)
{
    void *args[2] = {MS(10), MS(10)}, *r;
    gr_group *pool = gr_group_new(0);
    int cancelled = 0;
    size_t i;
    gr_imap *m;

    (void)arg;
    reset();
    m = gr_group_imap_unordered(pool, work, args, 2);
    /* The first next starts both, then waits: kill them meanwhile. */
    gr_spawn(kills_group, pool);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(gr_imap_next(m, &i, &r, gr_now_update() + 5000), 0);
        cancelled += r == GR_CANCELED;
    }
    cr_assert_eq(cancelled, 2);
    gr_imap_free(m);
    gr_group_free(pool);
    return NULL;
}

Test(imap, members_killed_before_they_ran_report_gr_canceled, .timeout = 10)
{
    run_main(imap_member_killed, NULL);
}

/* ========================================================== apply_async */

static void *applies(void *arg)
{
    gr_group *pool = gr_group_new(1);
    gr_async a, b, c;
    gr_t g;
    void *r;

    (void)arg;
    reset();
    gr_async_init(&a);
    gr_async_init(&b);
    gr_async_init(&c);
    cr_assert_gt(g = gr_group_apply_async(pool, work, MS(20), &a, NULL, -1), 0);
    cr_assert_eq(gr_group_free_count(pool), 0);
    /* No room until the first finishes. */
    assert_fails(gr_group_apply_async(pool, work, MS(10), &b, NULL, 0), ETIMEDOUT);
    cr_assert_not(gr_async_ready(&b), "untouched on failure");
    cr_assert_gt(gr_group_apply_async(pool, work, MS(10), &b, NULL, gr_now_update() + 5000), 0);
    cr_assert_eq(gr_async_get(&a, &r, 0), 0, "the first finished to make room");
    cr_assert_eq(r, MS(40));
    cr_assert_eq(gr_async_get(&b, &r, gr_now_update() + 5000), 0);
    cr_assert_eq(r, MS(20));
    /* Killed before it ran: ECANCELED. */
    cr_assert_gt(g = gr_group_apply_async(pool, work, MS(10), &c, NULL, -1), 0);
    gr_kill(g);
    assert_fails(gr_async_get(&c, &r, gr_now_update() + 5000), ECANCELED);
    assert_fails(gr_group_apply_async(pool, NULL, NULL, &c, NULL, -1), EINVAL);
    assert_fails(gr_group_apply_async(pool, work, NULL, NULL, NULL, -1), EINVAL);
    gr_group_join(pool, -1);
    gr_group_free(pool);
    return NULL;
}

Test(apply_async, delivers_results_and_cancellation, .timeout = 10)
{
    run_main(applies, NULL);
}

/* ========================================== free_count, wait_available */

static void *spawns_into(void *arg)
{
    cr_assert_gt(gr_group_spawn(arg, work, MS(10), NULL, gr_now_update() + 5000), 0);
    return NULL;
}

static void *waits_for_room(void *arg)
{
    return (void *)(intptr_t)gr_group_wait_available(arg, gr_now_update() + 5000);
}

static void *room(void *arg)
{
    gr_group *pool = gr_group_new(2), *grp = gr_group_new(0);
    gr_t spawner, waiter;
    void *r;

    (void)arg;
    reset();
    cr_assert_eq(gr_group_free_count(grp), SIZE_MAX);
    cr_assert_eq(gr_group_wait_available(grp, 0), 0);
    cr_assert_eq(gr_group_free_count(pool), 2);
    gr_group_spawn(pool, work, MS(30), NULL, -1);
    cr_assert_eq(gr_group_free_count(pool), 1);
    gr_group_spawn(pool, work, MS(60), NULL, -1);
    cr_assert_eq(gr_group_free_count(pool), 0);
    assert_fails(gr_group_wait_available(pool, gr_now_update() + 10), ETIMEDOUT);
    /* A spawner parked first gets the slot the 30 ms member frees; the
     * waiter takes none, and sees room when the 60 ms one ends. */
    spawner = gr_spawn(spawns_into, pool);
    waiter = gr_spawn(waits_for_room, pool);
    gr_yield();
    assert_fails(gr_group_free(pool), EBUSY);
    cr_assert_eq(gr_join(waiter, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 0);
    cr_assert_geq(gr_group_free_count(pool), 1);
    cr_assert_eq(gr_join(spawner, NULL, -1), 0);
    cr_assert_eq(gr_group_join(pool, gr_now_update() + 5000), 0);
    cr_assert_eq(gr_group_free(pool), 0);
    gr_group_free(grp);
    return NULL;
}

Test(pool, free_count_and_wait_available, .timeout = 10)
{
    run_main(room, NULL);
}

static void *killed_waiter(void *arg)
{
    gr_group *pool = gr_group_new(1);

    (void)arg;
    reset();
    gr_group_spawn(pool, work, MS(50), NULL, -1);
    gr_kill(gr_self());
    assert_fails(gr_group_wait_available(pool, -1), ECANCELED);
    gr_shield_begin();
    gr_group_join(pool, gr_now_update() + 5000);
    gr_shield_end();
    gr_group_free(pool);
    return NULL;
}

Test(pool, wait_available_is_a_cancellation_point, .timeout = 10)
{
    void *r;

    cr_assert_eq(gr_main(killed_waiter, NULL, &r), 0);
}

/* ------------------------------------------------------- hub callbacks */

static gr_imap *left_over; /* made in a callback, freed by a thread */

static void in_callback(void *arg)
{
    gr_group *pool = arg;
    void *args[1] = {MS(5)}, *res[1];
    gr_async a;
    size_t i;
    void *r;
    gr_imap *m;

    gr_async_init(&a);
    assert_fails(gr_group_map(pool, work, args, res, 1, -1), EDEADLK);
    cr_assert_eq(gr_group_size(pool), 0, "nothing was started");
    /* The iterator starts members without waiting; waiting fails. */
    cr_assert_not_null(m = gr_group_imap_unordered(pool, work, args, 1));
    assert_fails(gr_imap_next(m, &i, &r, -1), EDEADLK);
    cr_assert_eq(gr_group_size(pool), 1);
    assert_fails(gr_imap_free(m), EDEADLK);
    left_over = m;
    assert_fails(gr_group_wait_available(pool, -1), EDEADLK);
    assert_fails(gr_group_apply_async(pool, work, MS(1), &a, NULL, -1), EDEADLK);
}

static void *callbacks(void *arg)
{
    gr_group *pool = gr_group_new(1);

    (void)arg;
    reset();
    gr_hub_post(gr_hub_current(), in_callback, pool);
    gr_sleep(gr_now_update() + 50);
    cr_assert_eq(gr_imap_free(left_over), 0);
    cr_assert_eq(gr_group_size(pool), 0);
    gr_group_free(pool);
    return NULL;
}

Test(pool, hub_callbacks_cannot_wait, .timeout = 10)
{
    cr_redirect_stderr(); /* the EDEADLK misuse reports */
    run_main(callbacks, NULL);
}

static void *killed_applier(void *arg)
{
    gr_group *pool = gr_group_new(1);
    gr_async a, b;

    (void)arg;
    reset();
    gr_async_init(&a);
    gr_async_init(&b);
    gr_group_apply_async(pool, work, MS(30), &a, NULL, -1);
    gr_kill(gr_self());
    assert_fails(gr_group_apply_async(pool, work, MS(1), &b, NULL, -1), ECANCELED);
    cr_assert_not(gr_async_ready(&b));
    gr_shield_begin();
    cr_assert_eq(gr_async_get(&a, NULL, gr_now_update() + 5000), 0);
    gr_group_join(pool, gr_now_update() + 5000);
    gr_shield_end();
    gr_group_free(pool);
    return NULL;
}

Test(apply_async, a_killed_caller_waiting_for_room, .timeout = 10)
{
    void *r;

    cr_assert_eq(gr_main(killed_applier, NULL, &r), 0);
}
