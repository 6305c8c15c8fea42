/* Waiting on file descriptors: readiness, deadlines, close under a waiter,
 * fd reuse, bad descriptors. */
#include "common.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int p[2];

static void make_pipe(void)
{
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void *write_later(void *arg)
{
    (void)arg;
    gr_sleep(gr_now() + 10);
    cr_assert_eq(write(p[1], "hi", 2), 2);
    return NULL;
}

static void *wait_readable(void *arg)
{
    char buf[8];
    gr_t w;

    (void)arg;
    make_pipe();
    w = gr_spawn(write_later, NULL);
    /* Not ready yet: the deadline fires first. */
    assert_fails(gr_wait_fd(p[0], GR_READ, 0), ETIMEDOUT);
    assert_fails(gr_wait_fd(p[0], GR_READ, gr_now() + 2), ETIMEDOUT);
    cr_assert_eq(gr_wait_fd(p[0], GR_READ, gr_now() + 5000), GR_READ);
    cr_assert_eq(read(p[0], buf, sizeof buf), 2);
    /* Drained: waiting again blocks until the deadline. */
    assert_fails(gr_wait_fd(p[0], GR_READ, gr_now() + 5), ETIMEDOUT);
    /* A pipe's write end is writable at once. */
    cr_assert_eq(gr_wait_fd(p[1], GR_WRITE, 0), GR_WRITE);
    cr_assert_eq(gr_wait_fd(p[1], GR_READ | GR_WRITE, gr_now() + 1000) & GR_WRITE, GR_WRITE);
    gr_join(w, NULL, -1);
    gr_close(p[0]);
    gr_close(p[1]);
    return NULL;
}

Test(fd, wait_for_readable_and_writable, .timeout = 10)
{
    run_main(wait_readable, NULL);
}

/* An edge that arrives while nobody waits is remembered. */
static void *edge_not_lost(void *arg)
{
    char c;

    (void)arg;
    make_pipe();
    assert_fails(gr_wait_fd(p[0], GR_READ, 0), ETIMEDOUT); /* registers */
    cr_assert_eq(write(p[1], "x", 1), 1);
    gr_sleep(gr_now() + 5); /* the hub sees the edge; nobody waits */
    cr_assert_eq(gr_wait_fd(p[0], GR_READ, gr_now() + 1000), GR_READ);
    /* Data read by someone else in between: no false readiness. */
    cr_assert_eq(read(p[0], &c, 1), 1);
    assert_fails(gr_wait_fd(p[0], GR_READ, gr_now() + 5), ETIMEDOUT);
    gr_close(p[0]);
    gr_close(p[1]);
    return NULL;
}

Test(fd, edge_seen_while_nobody_waits_is_not_lost, .timeout = 10)
{
    run_main(edge_not_lost, NULL);
}

/* The edges the hub saw, taken by a reader that skips the read that would
 * only say EAGAIN; GR_EDGE then waits for the next edge without asking
 * the kernel about the readiness it remembers. */
static void *edges_taken(void *arg)
{
    char c;

    (void)arg;
    make_pipe();
    cr_assert_eq(gr_fd_take_edges(p[0], GR_READ), GR_READ, "never waited on: maybe ready");
    assert_fails(gr_wait_fd(p[0], GR_READ, 0), ETIMEDOUT); /* registers */
    cr_assert_eq(gr_fd_take_edges(p[0], GR_READ), 0);
    cr_assert_eq(write(p[1], "xy", 2), 2);
    cr_assert_eq(gr_wait_fd(p[0], GR_READ, gr_now() + 1000), GR_READ);
    cr_assert_eq(gr_fd_take_edges(p[0], GR_READ | GR_EDGE), GR_READ);
    cr_assert_eq(gr_fd_take_edges(p[0], GR_READ), 0, "taken once");
    cr_assert_eq(read(p[0], &c, 1), 1);
    /* One byte is left, but GR_EDGE trusts the caller: no new edge. */
    assert_fails(gr_wait_fd(p[0], GR_READ | GR_EDGE, gr_now_update() + 5), ETIMEDOUT);
    cr_assert_eq(read(p[0], &c, 1), 1);
    cr_assert_eq(write(p[1], "z", 1), 1);
    cr_assert_eq(gr_wait_fd(p[0], GR_READ | GR_EDGE, gr_now() + 1000), GR_READ);
    assert_fails(gr_wait_fd(p[0], GR_EDGE, 0), EINVAL);
    gr_close(p[0]);
    gr_close(p[1]);
    return NULL;
}

Test(fd, edges_taken_and_waited_for, .timeout = 10)
{
    run_main(edges_taken, NULL);
}

static void *waits_forever_on_read_end(void *arg)
{
    (void)arg;
    assert_fails(gr_wait_fd(p[0], GR_READ, -1), EBADF);
    return (void *)1;
}

static void *close_under_waiter(void *arg)
{
    gr_t a, b;
    void *r;
    int fd;

    (void)arg;
    make_pipe();
    a = gr_spawn(waits_forever_on_read_end, NULL);
    b = gr_spawn(waits_forever_on_read_end, NULL);
    gr_yield();
    fd = p[0];
    cr_assert_eq(gr_close(fd), 0);
    cr_assert_eq(gr_join(a, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 1);
    cr_assert_eq(gr_join(b, &r, -1), 0);

    /* The fd number is reused by a new pipe at once: waiting on it works. */
    int q[2];
    cr_assert_eq(pipe2(q, O_NONBLOCK), 0);
    cr_assert_eq(q[0], fd, "expected the lowest free fd to be reused");
    assert_fails(gr_wait_fd(q[0], GR_READ, gr_now() + 5), ETIMEDOUT);
    cr_assert_eq(write(q[1], "y", 1), 1);
    cr_assert_eq(gr_wait_fd(q[0], GR_READ, gr_now() + 1000), GR_READ);
    gr_close(q[0]);
    gr_close(q[1]);
    gr_close(p[1]);
    return NULL;
}

Test(fd, close_wakes_waiters_and_fd_is_reusable, .timeout = 10)
{
    run_main(close_under_waiter, NULL);
}

static void *reader_of_socket(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;

    cr_assert_eq(gr_wait_fd(fd, GR_READ, gr_now() + 5000), GR_READ);
    return (void *)(intptr_t)read(fd, &c, 1);
}

static void *many_waiters_one_fd(void *arg)
{
    int sv[2];
    gr_t g[3];

    (void)arg;
    unix_pair(sv);
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(reader_of_socket, (void *)(intptr_t)sv[0]);
    gr_yield();
    cr_assert_eq(write(sv[1], "abc", 3), 3);
    for (int i = 0; i < 3; i++) {
        void *r;

        cr_assert_eq(gr_join(g[i], &r, -1), 0);
        cr_assert_eq((intptr_t)r, 1);
    }
    gr_close(sv[0]);
    gr_close(sv[1]);
    return NULL;
}

Test(fd, several_waiters_on_one_fd, .timeout = 10)
{
    run_main(many_waiters_one_fd, NULL);
}

static void *hangup_wakes(void *arg)
{
    int sv[2];

    (void)arg;
    unix_pair(sv);
    close(sv[1]);
    cr_assert_eq(gr_wait_fd(sv[0], GR_READ, gr_now() + 1000), GR_READ);
    gr_close(sv[0]);
    return NULL;
}

Test(fd, peer_hangup_counts_as_ready, .timeout = 10)
{
    run_main(hangup_wakes, NULL);
}

static void *bad_fds(void *arg)
{
    char path[] = "/tmp/grove-test-XXXXXX";
    int f;

    (void)arg;
    assert_fails(gr_wait_fd(-1, GR_READ, 0), EBADF);
    assert_fails(gr_wait_fd(987654, GR_READ, 0), EBADF);
    make_pipe();
    assert_fails(gr_wait_fd(p[0], 0, 0), EINVAL);
    assert_fails(gr_wait_fd(p[0], 4, 0), EINVAL);
    /* A regular file cannot be polled: it is always ready, like poll(). */
    f = mkstemp(path);
    cr_assert_geq(f, 0);
    unlink(path);
    cr_assert_eq(gr_wait_fd(f, GR_READ | GR_WRITE, -1), GR_READ | GR_WRITE);
    close(f);
    gr_close(p[0]);
    gr_close(p[1]);
    return NULL;
}

Test(fd, bad_descriptors_and_events, .timeout = 10)
{
    run_main(bad_fds, NULL);
}

static void *cancelled_before_wait(void *arg)
{
    (void)arg;
    make_pipe();
    cr_assert_eq(write(p[1], "z", 1), 1);
    gr_kill(gr_self());
    /* Even a ready fd: a killed thread's blocking calls fail. */
    assert_fails(gr_wait_fd(p[0], GR_READ, -1), ECANCELED);
    gr_close(p[0]);
    gr_close(p[1]);
    return NULL;
}

Test(fd, killed_thread_cannot_wait, .timeout = 10)
{
    run_main(cancelled_before_wait, NULL);
}

/* ----------------------------------------------------------- gr_poll */

static int q[2];

static void *write_to_q_later(void *arg)
{
    (void)arg;
    gr_sleep(gr_now() + 10);
    cr_assert_eq(write(q[1], "!", 1), 1);
    return NULL;
}

static void *poll_many(void *arg)
{
    struct pollfd fds[3];
    gr_t w;
    int n;

    (void)arg;
    make_pipe();
    cr_assert_eq(pipe2(q, O_NONBLOCK), 0);
    fds[0] = (struct pollfd){.fd = p[0], .events = POLLIN};
    fds[1] = (struct pollfd){.fd = -1, .events = POLLIN}; /* ignored */
    fds[2] = (struct pollfd){.fd = q[0], .events = POLLIN};
    /* Nothing ready: deadline 0 polls once, a deadline times out with 0. */
    cr_assert_eq(gr_poll(fds, 3, 0), 0);
    cr_assert_eq(gr_poll(fds, 3, gr_now() + 5), 0);
    w = gr_spawn(write_to_q_later, NULL);
    n = gr_poll(fds, 3, gr_now() + 5000);
    cr_assert_eq(n, 1);
    cr_assert_eq(fds[0].revents, 0);
    cr_assert_eq(fds[1].revents, 0);
    cr_assert_eq(fds[2].revents, POLLIN);
    gr_join(w, NULL, -1);
    /* A write end is ready at once; a closed peer reports POLLHUP. */
    fds[0] = (struct pollfd){.fd = p[1], .events = POLLOUT};
    cr_assert_eq(gr_poll(fds, 1, -1), 1);
    cr_assert_eq(fds[0].revents, POLLOUT);
    close(q[1]);
    fds[0] = (struct pollfd){.fd = q[0], .events = POLLIN};
    cr_assert_eq(gr_poll(fds, 1, -1), 1);
    cr_assert(fds[0].revents & (POLLIN | POLLHUP));
    assert_fails(gr_poll(NULL, 1, 0), EINVAL);
    gr_close(q[0]);
    gr_close(p[0]);
    gr_close(p[1]);
    return NULL;
}

Test(fd, poll_waits_on_many_descriptors, .timeout = 10)
{
    run_main(poll_many, NULL);
}

static void *poll_big(void *arg)
{
    enum { N = 100 };
    struct pollfd fds[N];
    int pipes[N][2];
    gr_t w;

    (void)arg;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(pipe2(pipes[i], O_NONBLOCK), 0);
        fds[i] = (struct pollfd){.fd = pipes[i][0], .events = POLLIN};
    }
    q[1] = pipes[77][1];
    w = gr_spawn(write_to_q_later, NULL);
    cr_assert_eq(gr_poll(fds, N, gr_now() + 5000), 1);
    cr_assert_eq(fds[77].revents, POLLIN);
    gr_join(w, NULL, -1);
    for (int i = 0; i < N; i++) {
        gr_close(pipes[i][0]);
        gr_close(pipes[i][1]);
    }
    return NULL;
}

Test(fd, poll_more_descriptors_than_fit_on_the_stack, .timeout = 10)
{
    run_main(poll_big, NULL);
}

static void *poll_killed(void *arg)
{
    struct pollfd fd = {.fd = p[0], .events = POLLIN};

    (void)arg;
    assert_fails(gr_poll(&fd, 1, -1), ECANCELED);
    return NULL;
}

static void *kill_poller(void *arg)
{
    gr_t g;
    gr_timeout t;
    struct pollfd fd;

    (void)arg;
    make_pipe();
    g = gr_spawn(poll_killed, NULL);
    gr_yield();
    gr_kill(g);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    /* A Timeout region ending first is an error, unlike poll's own time-out. */
    fd = (struct pollfd){.fd = p[0], .events = POLLIN};
    gr_timeout_begin(&t, gr_now_update() + 5);
    assert_fails(gr_poll(&fd, 1, -1), ETIMEDOUT);
    gr_timeout_end(&t);
    gr_close(p[0]);
    gr_close(p[1]);
    return NULL;
}

Test(fd, poll_cancel_and_timeout_region, .timeout = 10)
{
    run_main(kill_poller, NULL);
}
