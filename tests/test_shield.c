/* Shielded regions: clean-up that blocks after a kill, bounded by its
 * deadlines and Timeout regions, never by the kill. */
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

static void *returns_seven_later(void *arg)
{
    (void)arg;
    gr_sleep(gr_now() + 30);
    return (void *)7;
}

static gr_t child;

/* A parent that is killed while it waits, then joins its child in a
 * shielded region, as a gevent user's `finally: child.join()`. */
static void *parent(void *arg)
{
    void *r = NULL;

    (void)arg;
    child = gr_spawn(returns_seven_later, NULL);
    assert_fails(gr_sleep(-1), ECANCELED);
    assert_fails(gr_join(child, NULL, gr_now() + 1000), ECANCELED);
    cr_assert_eq(gr_shield_begin(), 0);
    cr_assert_eq(gr_testcancel(), 0, "a shielded thread is not cancelled");
    cr_assert_eq(gr_yield(), 0);
    cr_assert_eq(gr_join(child, &r, gr_now() + 1000), 0, "%s", strerror(errno));
    cr_assert_eq((intptr_t)r, 7);
    cr_assert_eq(gr_shield_end(), 1, "the kill is kept");
    assert_fails(gr_sleep(gr_now() + 10), ECANCELED);
    assert_fails(gr_testcancel(), ECANCELED);
    return NULL;
}

static void *kill_parent(void *arg)
{
    gr_t p = gr_spawn(parent, NULL);

    (void)arg;
    cr_assert_eq(gr_yield(), 0);
    cr_assert_eq(gr_kill(p), 0);
    cr_assert_eq(gr_join(p, NULL, gr_now() + 2000), 0);
    return NULL;
}

Test(shield, killed_cleanup_joins_its_child, .timeout = 10)
{
    run_main(kill_parent, NULL);
}

/* A kill that lands during a shielded wait neither wakes nor fails it. */
static int pfd[2];

static void *shielded_reader(void *arg)
{
    int64_t t0 = gr_now_update();
    char c = 0;

    (void)arg;
    cr_assert_eq(gr_shield_begin(), 0);
    cr_assert_eq(gr_sleep(t0 + 40), 0);
    cr_assert_geq(gr_now_update(), t0 + 40, "the kill did not cut the sleep short");
    cr_assert_eq(gr_read(pfd[0], &c, 1, gr_now() + 2000), 1, "%s", strerror(errno));
    cr_assert_eq(c, 'x');
    cr_assert_eq(gr_shield_end(), 1);
    assert_fails(gr_read(pfd[0], &c, 1, gr_now() + 2000), ECANCELED);
    return (void *)1;
}

static void *kill_shielded(void *arg)
{
    gr_t r;
    void *res = NULL;

    (void)arg;
    cr_assert_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
    r = gr_spawn(shielded_reader, NULL);
    cr_assert_eq(gr_sleep(gr_now_update() + 10), 0);
    cr_assert_eq(gr_kill(r), 0);
    cr_assert_eq(gr_sleep(gr_now_update() + 60), 0); /* it now waits on the pipe */
    cr_assert_eq(write(pfd[1], "x", 1), 1);
    cr_assert_eq(gr_join(r, &res, gr_now() + 2000), 0);
    cr_assert_eq((intptr_t)res, 1);
    gr_close(pfd[0]);
    gr_close(pfd[1]);
    return NULL;
}

Test(shield, kill_does_not_wake_a_shielded_wait, .timeout = 10)
{
    run_main(kill_shielded, NULL);
}

/* Deadlines and Timeout regions still end shielded waits, with ETIMEDOUT;
 * calls that hand something over work in a killed, shielded thread. */
static void *bounded(void *arg)
{
    gr_event never;
    gr_timeout t;
    gr_sem s;

    (void)arg;
    gr_event_init(&never);
    gr_sem_init(&s, 1);
    cr_assert_eq(gr_kill(gr_self()), 0);
    assert_fails(gr_sem_acquire(&s, -1), ECANCELED);
    cr_assert_eq(gr_shield_begin(), 0);
    cr_assert_eq(gr_sem_acquire(&s, -1), 0);
    assert_fails(gr_event_wait(&never, gr_now_update() + 20), ETIMEDOUT);
    cr_assert_eq(gr_timeout_begin(&t, gr_now_update() + 20), 0);
    assert_fails(gr_event_wait(&never, -1), ETIMEDOUT);
    cr_assert_eq(gr_timeout_end(&t), 1);
    cr_assert_eq(gr_shield_end(), 1);
    assert_fails(gr_event_wait(&never, gr_now_update() + 20), ECANCELED);
    return NULL;
}

static void *run_bounded(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_join(gr_spawn(bounded, NULL), NULL, gr_now() + 2000), 0);
    return NULL;
}

Test(shield, deadlines_and_timeout_regions_still_apply, .timeout = 10)
{
    run_main(run_bounded, NULL);
}

/* Regions nest; only the outermost end lets the kill through. */
static int cb_errno;

static void in_callback(void *arg)
{
    (void)arg;
    errno = 0;
    if (gr_shield_begin() == -1)
        cb_errno = errno;
}

static void *nesting(void *arg)
{
    (void)arg;
    assert_fails(gr_shield_end(), EINVAL);
    cr_assert_eq(gr_shield_begin(), 0);
    cr_assert_eq(gr_shield_begin(), 0);
    cr_assert_eq(gr_kill(gr_self()), 0);
    cr_assert_eq(gr_shield_end(), 1);
    cr_assert_eq(gr_sleep(gr_now_update() + 1), 0, "still shielded by the outer region");
    cr_assert_eq(gr_shield_end(), 1);
    assert_fails(gr_sleep(gr_now_update() + 1), ECANCELED);
    assert_fails(gr_shield_end(), EINVAL);
    return NULL;
}

static void *run_nesting(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_join(gr_spawn(nesting, NULL), NULL, gr_now() + 2000), 0);
    cr_assert_eq(gr_hub_post(gr_hub_current(), in_callback, NULL), 0);
    cr_assert_eq(gr_sleep(gr_now_update() + 5), 0);
    cr_assert_eq(cb_errno, EPERM, "no region in a hub callback");
    return NULL;
}

Test(shield, regions_nest_and_misuse_fails, .timeout = 10)
{
    run_main(run_nesting, NULL);
}
