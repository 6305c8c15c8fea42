/* libgrove-patch: poll, ppoll, select, pselect, epoll_wait and the sleeps
 * in green threads: the answers are the real calls' (revents, POLLNVAL,
 * updated time-outs), the waits park only their green thread, kills end
 * them with ECANCELED. */
#include "patch_common.h"

#include <sys/epoll.h>
#include <sys/select.h>

static volatile int ticks, ticking;

static void *ticker(void *arg)
{
    (void)arg;
    ticking = 1;
    while (ticking) {
        ticks++;
        if (gr_sleep(gr_now_update() + 1) != 0)
            break;
    }
    return NULL;
}

typedef struct later {
    int fd;
    int64_t ms;
} later;

static void *poke(void *arg)
{
    later *l = arg;

    gr_sleep(gr_now_update() + l->ms);
    cr_assert_eq(gr_write(l->fd, "!", 1, -1), 1);
    return NULL;
}

static void *with_hb(void *arg)
{
    gr_fn fn = (gr_fn)(uintptr_t)arg;
    heartbeat hb;
    gr_t t;

    hb_start(&hb);
    ticks = 0;
    t = gr_spawn(ticker, NULL);
    fn(NULL);
    ticking = 0;
    gr_join(t, NULL, -1);
    hb_check(&hb);
    return NULL;
}

static void run_hb(gr_fn fn)
{
    require_patch();
    run_main(with_hb, (void *)(uintptr_t)fn);
}

static void pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* ---------------------------------------------------------------- poll */

static void *polls(void *arg)
{
    int a[2], b[2];
    struct pollfd p[3];
    later l;
    gr_t w;
    int64_t t0;
    int before;

    (void)arg;
    pair(a);
    pair(b);
    p[0] = (struct pollfd){.fd = a[0], .events = POLLIN};
    p[1] = (struct pollfd){.fd = b[0], .events = POLLIN};
    p[2] = (struct pollfd){.fd = -1, .events = POLLIN, .revents = 77};
    /* Nothing comes: 0 at the time-out, which is waited cooperatively. */
    before = ticks;
    t0 = now_ms();
    cr_assert_eq(poll(p, 3, 60), 0);
    cr_assert_geq(now_ms() - t0, 60);
    cr_assert_gt(ticks - before, 0, "the wait blocked the hub");
    cr_assert_eq(p[2].revents, 0, "an ignored entry keeps revents 0, as poll does");
    /* Data on the second: exactly it is reported. */
    l = (later){b[1], 30};
    w = gr_spawn(poke, &l);
    cr_assert_eq(poll(p, 3, -1), 1);
    cr_assert_eq(p[0].revents, 0);
    cr_assert_eq(p[1].revents, POLLIN);
    gr_join(w, NULL, -1);
    /* A closed descriptor: POLLNVAL at once, as poll says. */
    close(a[1]);
    p[0].fd = 1000;
    cr_assert_eq(poll(p, 2, -1), 2);
    cr_assert_eq(p[0].revents, POLLNVAL);
    close(a[0]);
    close(b[0]);
    close(b[1]);
    return NULL;
}

Test(patch_wait, poll_answers_as_poll_and_waits_cooperatively, .timeout = 10)
{
    run_hb(polls);
}

static void *closer(void *arg)
{
    int *fd = arg;

    gr_sleep(gr_now_update() + 30);
    close(*fd);
    return NULL;
}

static void *poll_closed_under(void *arg)
{
    int a[2];
    struct pollfd p;
    gr_t c;

    (void)arg;
    pair(a);
    p = (struct pollfd){.fd = a[0], .events = POLLIN};
    c = gr_spawn(closer, &a[0]);
    cr_assert_eq(poll(&p, 1, 2000), 1);
    cr_assert_eq(p.revents, POLLNVAL);
    gr_join(c, NULL, -1);
    close(a[1]);
    return NULL;
}

Test(patch_wait, a_descriptor_closed_during_poll_shows_pollnval, .timeout = 10)
{
    run_hb(poll_closed_under);
}

static void *ppolls(void *arg)
{
    int a[2];
    struct pollfd p;
    struct timespec ts = {0, 50 * 1000000};
    sigset_t mask;
    later l;
    gr_t w;
    int64_t t0 = now_ms();

    (void)arg;
    pair(a);
    p = (struct pollfd){.fd = a[0], .events = POLLIN};
    sigemptyset(&mask);
    cr_assert_eq(ppoll(&p, 1, &ts, &mask), 0);
    cr_assert_geq(now_ms() - t0, 50);
    l = (later){a[1], 20};
    w = gr_spawn(poke, &l);
    cr_assert_eq(ppoll(&p, 1, NULL, &mask), 1);
    gr_join(w, NULL, -1);
    close(a[0]);
    close(a[1]);
    return NULL;
}

Test(patch_wait, ppoll_with_a_mask, .timeout = 10)
{
    run_hb(ppolls);
}

/* -------------------------------------------------------------- select */

static void *selects(void *arg)
{
    int a[2], b[2], n;
    fd_set r, w;
    struct timeval tv = {0, 80000};
    later l;
    gr_t g;

    (void)arg;
    pair(a);
    pair(b);
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(a[0], &r);
    FD_SET(b[0], &r);
    l = (later){b[1], 30};
    g = gr_spawn(poke, &l);
    n = select((a[0] > b[0] ? a[0] : b[0]) + 1, &r, NULL, NULL, &tv);
    cr_assert_eq(n, 1);
    cr_assert(!FD_ISSET(a[0], &r));
    cr_assert(FD_ISSET(b[0], &r));
    /* Linux writes the time left back. */
    cr_assert_lt(tv.tv_usec, 80000);
    cr_assert_gt(tv.tv_usec, 0);
    gr_join(g, NULL, -1);
    /* Writable at once. */
    FD_ZERO(&w);
    FD_SET(a[0], &w);
    cr_assert_eq(select(a[0] + 1, NULL, &w, NULL, NULL), 1);
    /* Nothing: 0 at the time-out, the sets cleared. */
    FD_ZERO(&r);
    FD_SET(a[0], &r);
    tv = (struct timeval){0, 40000};
    cr_assert_eq(select(a[0] + 1, &r, NULL, NULL, &tv), 0);
    cr_assert(!FD_ISSET(a[0], &r));
    cr_assert_eq(tv.tv_sec, 0);
    cr_assert_eq(tv.tv_usec, 0);
    /* A closed descriptor: EBADF, as select says. */
    int closed = dup(a[0]);
    close(closed);
    FD_ZERO(&r);
    FD_SET(closed, &r);
    assert_fails(select(closed + 1, &r, NULL, NULL, NULL), EBADF);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    return NULL;
}

Test(patch_wait, select_answers_as_select, .timeout = 10)
{
    run_hb(selects);
}

static void *select_sleeps(void *arg)
{
    struct timeval tv = {0, 50000};
    struct timespec ts = {0, 30 * 1000000};
    int before = ticks;
    int64_t t0 = now_ms();

    (void)arg;
    cr_assert_eq(select(0, NULL, NULL, NULL, &tv), 0);
    cr_assert_geq(now_ms() - t0, 50);
    cr_assert_gt(ticks - before, 0, "the wait blocked the hub");
    t0 = now_ms();
    cr_assert_eq(pselect(0, NULL, NULL, NULL, &ts, NULL), 0);
    cr_assert_geq(now_ms() - t0, 30);
    return NULL;
}

Test(patch_wait, select_without_descriptors_is_a_cooperative_sleep, .timeout = 10)
{
    run_hb(select_sleeps);
}

/* --------------------------------------------------------------- epoll */

static void *epolls(void *arg)
{
    int a[2], ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN}, out[4];
    struct timespec ts = {0, 40 * 1000000};
    later l;
    gr_t g;
    int64_t t0;

    (void)arg;
    pair(a);
    ev.data.u64 = 4242;
    cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev), 0);
    t0 = now_ms();
    cr_assert_eq(epoll_wait(ep, out, 4, 40), 0);
    cr_assert_geq(now_ms() - t0, 40);
    t0 = now_ms();
    cr_assert_eq(epoll_pwait2(ep, out, 4, &ts, NULL), 0);
    cr_assert_geq(now_ms() - t0, 40);
    l = (later){a[1], 30};
    g = gr_spawn(poke, &l);
    cr_assert_eq(epoll_wait(ep, out, 4, -1), 1);
    cr_assert_eq(out[0].data.u64, 4242);
    cr_assert(out[0].events & EPOLLIN);
    gr_join(g, NULL, -1);
    cr_assert_eq(epoll_pwait(ep, out, 4, -1, NULL), 1, "still readable: level-triggered");
    close(ep);
    close(a[0]);
    close(a[1]);
    return NULL;
}

Test(patch_wait, a_librarys_own_epoll_loop_runs_in_a_green_thread, .timeout = 10)
{
    run_hb(epolls);
}

/* --------------------------------------------------------------- sleeps */

static void *sleeps(void *arg)
{
    struct timespec ts = {0, 30 * 1000000}, rem = {9, 9}, abs;
    int before = ticks;
    int64_t t0 = now_ms();

    (void)arg;
    errno = 31;
    cr_assert_eq(usleep(30000), 0);
    cr_assert_geq(now_ms() - t0, 30);
    cr_assert_eq(nanosleep(&ts, &rem), 0);
    cr_assert_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 30 * 1000000;
    if (abs.tv_nsec >= 1000000000)
        abs.tv_sec++, abs.tv_nsec -= 1000000000;
    cr_assert_eq(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL), 0);
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 30 * 1000000;
    if (abs.tv_nsec >= 1000000000)
        abs.tv_sec++, abs.tv_nsec -= 1000000000;
    cr_assert_eq(clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &abs, NULL), 0);
    cr_assert_geq(now_ms() - t0, 150);
    cr_assert_gt(ticks - before, 0, "the sleeps blocked the hub");
    cr_assert_eq(errno, 31);
    /* Bad arguments: the real calls' errors. */
    ts.tv_nsec = 2000000000;
    assert_fails(nanosleep(&ts, NULL), EINVAL);
    cr_assert_eq(clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), EINVAL);
    return NULL;
}

Test(patch_wait, the_sleeps_sleep_cooperatively, .timeout = 10)
{
    run_hb(sleeps);
}

typedef struct sleeper {
    int which;
    long rc;
    int err;
    struct timespec rem;
} sleeper;

static void *sleep_victim(void *arg)
{
    sleeper *s = arg;
    struct timespec ts = {5, 0};

    errno = 0;
    switch (s->which) {
    case 0:
        s->rc = sleep(5);
        break;
    case 1:
        s->rc = usleep(5000000);
        break;
    case 2:
        s->rc = nanosleep(&ts, &s->rem);
        break;
    default:
        s->rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &s->rem);
        break;
    }
    s->err = errno;
    return NULL;
}

static void *killed_sleeps(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++) {
        sleeper s = {i, 0, 0, {0, 0}};
        gr_t g = gr_spawn(sleep_victim, &s);
        int64_t t0 = now_ms();

        gr_sleep(gr_now_update() + 20);
        gr_kill(g);
        gr_join(g, NULL, -1);
        cr_assert_lt(now_ms() - t0, 2000, "sleep %d went on after the kill", i);
        if (i == 0) {
            cr_assert_eq(s.rc, 5, "sleep returns the seconds left");
            cr_assert_eq(s.err, ECANCELED);
        } else if (i == 3) {
            cr_assert_eq(s.rc, ECANCELED, "clock_nanosleep returns its error");
            cr_assert_geq(s.rem.tv_sec, 4);
        } else {
            cr_assert_eq(s.rc, -1);
            cr_assert_eq(s.err, ECANCELED, "not EINTR, which loops retry");
            if (i == 2)
                cr_assert_geq(s.rem.tv_sec, 4);
        }
    }
    return NULL;
}

Test(patch_wait, a_killed_sleeper_wakes_with_ecanceled, .timeout = 10)
{
    run_hb(killed_sleeps);
}

static void *poll_killed_victim(void *arg)
{
    int *rc = arg;
    struct pollfd p = {.fd = rc[1], .events = POLLIN};

    errno = 0;
    rc[0] = poll(&p, 1, -1);
    rc[2] = errno;
    return NULL;
}

static void *killed_poll(void *arg)
{
    int a[2], rc[3];
    gr_t g;

    (void)arg;
    pair(a);
    rc[1] = a[0];
    g = gr_spawn(poll_killed_victim, rc);
    gr_sleep(gr_now_update() + 20);
    gr_kill(g);
    gr_join(g, NULL, -1);
    cr_assert_eq(rc[0], -1);
    cr_assert_eq(rc[2], ECANCELED);
    close(a[0]);
    close(a[1]);
    return NULL;
}

Test(patch_wait, a_killed_poll_fails_with_ecanceled, .timeout = 10)
{
    run_hb(killed_poll);
}
