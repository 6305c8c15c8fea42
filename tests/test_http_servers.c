/* What the two HTTP servers share besides the connection code: who owns
 * the listening socket (a failed listen's errno comes through, every
 * failure closes the fd), the deadlines of the handler calls (each fails
 * at the earlier of its deadline and the server's limit), and the threaded
 * server as an object: its basics, limits and stop, a stop before serve
 * or from a signal handler, and two of them in one process. */
#include "http_common.h"

#include <fcntl.h>
#include <signal.h>

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

/* ======================================================= fd ownership */

/* gr_http_server_new(gr_tcp_listen(...)) reports the listen's failure. */
Test(http_servers, failed_listen_errno_comes_through)
{
    int l = loopback_listen(), port = gr_local_port(l);

    errno = 0;
    cr_assert_null(gr_http_server_new(gr_tcp_listen("127.0.0.1", port, 0), h_echo, NULL, NULL));
    cr_assert_eq(errno, EADDRINUSE, "errno %d (%s)", errno, strerror(errno));
    errno = 0;
    cr_assert_null(
        gr_http_threaded_new(gr_tcp_listen("127.0.0.1", port, 0), h_echo, NULL, NULL, 2));
    cr_assert_eq(errno, EADDRINUSE, "errno %d (%s)", errno, strerror(errno));
    /* Any negative fd: errno untouched. */
    errno = EMFILE;
    cr_assert_null(gr_http_server_new(-1, h_echo, NULL, NULL));
    cr_assert_eq(errno, EMFILE);
    errno = EMFILE;
    cr_assert_null(gr_http_threaded_new(-1, h_echo, NULL, NULL, 1));
    cr_assert_eq(errno, EMFILE);
    gr_close(l);
}

/* Every other failure closes the fd the server was given. */
Test(http_servers, failure_closes_the_fd)
{
    gr_http_opts tiny = {.max_header_bytes = 10};
    gr_http_opts neg = {.idle_timeout_ms = -1};
    gr_http_opts stack = {.stack_size = 1};
    int fd;

    fd = loopback_listen();
    assert_fails(gr_http_server_new(fd, NULL, NULL, NULL) ? 0 : -1, EINVAL);
    cr_assert_not(fd_open(fd));
    fd = loopback_listen();
    assert_fails(gr_http_server_new(fd, h_echo, NULL, &tiny) ? 0 : -1, EINVAL);
    cr_assert_not(fd_open(fd));
    fd = loopback_listen();
    assert_fails(gr_http_server_new(fd, h_echo, NULL, &neg) ? 0 : -1, EINVAL);
    cr_assert_not(fd_open(fd));
    fd = loopback_listen();
    assert_fails(gr_http_server_new(fd, h_echo, NULL, &stack) ? 0 : -1, EINVAL);
    cr_assert_not(fd_open(fd));
    fd = loopback_listen();
    assert_fails(gr_http_threaded_new(fd, h_echo, NULL, NULL, 0) ? 0 : -1, EINVAL);
    cr_assert_not(fd_open(fd));
    fd = loopback_listen();
    assert_fails(gr_http_threaded_new(fd, NULL, NULL, NULL, 1) ? 0 : -1, EINVAL);
    cr_assert_not(fd_open(fd));
    fd = loopback_listen();
    assert_fails(gr_http_threaded_new(fd, h_echo, NULL, &neg, 1) ? 0 : -1, EINVAL);
    cr_assert_not(fd_open(fd));
}

/* And a server closes its fd when freed, whether it served or not. */
Test(http_servers, free_closes_the_fd)
{
    int fd = loopback_listen();
    gr_http_threaded *t = gr_http_threaded_new(fd, h_echo, NULL, NULL, 1);
    gr_http_server *s;

    cr_assert_not_null(t);
    cr_assert_eq(gr_http_threaded_free(t), 0);
    cr_assert_not(fd_open(fd));
    fd = loopback_listen();
    s = gr_http_server_new(fd, h_echo, NULL, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(gr_http_server_free(s), 0);
    cr_assert_not(fd_open(fd));
    cr_assert_eq(gr_http_threaded_free(NULL), 0);
}

/* ===================================================== call deadlines */

/* What a deadline handler saw: its call's errno and how long it took. */
static atomic_int seen_errno;
static atomic_llong seen_ms;

static void seen(int64_t t0)
{
    atomic_store(&seen_errno, errno);
    atomic_store(&seen_ms, (long long)(gr_now_update() - t0));
}

/* Reads the body with a deadline 150 ms away (the server allows 30 s). */
static int h_read_deadline(gr_http_request *req, void *arg)
{
    char b[64];
    int64_t t0 = gr_now_update();
    ssize_t n;

    (void)arg;
    while ((n = gr_http_read_body(req, b, sizeof b, t0 + 150)) > 0) {
    }
    seen(t0);
    if (n == 0)
        return gr_http_respond(req, 200, NULL, 0, "whole", 5, -1);
    return gr_http_respond(req, 408, NULL, 0, "late", 4, -1);
}

/* Reads the body with no deadline of its own: the server's body time-out
 * bounds the whole body. */
static int h_read_forever(gr_http_request *req, void *arg)
{
    char b[64];
    int64_t t0 = gr_now_update();
    ssize_t n;

    (void)arg;
    while ((n = gr_http_read_body(req, b, sizeof b, -1)) > 0) {
    }
    seen(t0);
    return n == 0 ? gr_http_respond(req, 200, NULL, 0, "whole", 5, -1) : -1;
}

/* Sends up to 64 MiB to a client that reads nothing, each send with the
 * deadline arg says (the server's write time-out is 30 s). */
static int write_until(gr_http_request *req, int64_t after_ms)
{
    static char chunk[64 * 1024];
    int64_t t0 = gr_now_update();
    int rc = 0;

    if (gr_http_begin(req, 200, NULL, 0, (int64_t)64 << 20, -1) != 0)
        return -1;
    for (int i = 0; i < 1024 && rc == 0; i++)
        rc = gr_http_send(req, chunk, sizeof chunk, after_ms ? t0 + after_ms : 0);
    seen(t0);
    return rc;
}

/* 150 ms from the start. */
static int h_write_deadline(gr_http_request *req, void *arg)
{
    (void)arg;
    return write_until(req, 150);
}

/* Deadline 0: each send tries once. */
static int h_write_once(gr_http_request *req, void *arg)
{
    (void)arg;
    return write_until(req, 0);
}

/* A 300 ms body time-out. */
static const gr_http_opts body_300 = {.body_timeout_ms = 300};

static void check_elapsed(int err, long long lo, long long hi)
{
    long long ms = atomic_load(&seen_ms);

    cr_assert_eq(atomic_load(&seen_errno), err, "errno %d", atomic_load(&seen_errno));
    cr_assert(ms >= lo && ms < hi, "took %lld ms, want %lld..%lld", ms, lo, hi);
}

static void *t_deadlines(void *arg)
{
    int threaded = *(int *)arg;
    any_srv s;
    client *c;
    resp r;

    /* The handler's deadline comes first: ETIMEDOUT at 150 ms, and the
     * connection closes after its answer (the body is left unread). */
    any_start(&s, threaded, h_read_deadline, NULL, &body_300);
    c = cl_open(s.port);
    cl_send(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 408);
    check_elapsed(ETIMEDOUT, 140, 2000);
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    any_stop(&s);

    /* No deadline of the handler's: the body time-out bounds the whole
     * body, though a byte comes every 50 ms. */
    any_start(&s, threaded, h_read_forever, NULL, &body_300);
    c = cl_open(s.port);
    cl_send(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n");
    for (int i = 0; i < 100; i++) {
        if (gr_wait_fd(c->fd, GR_READ, gr_now_update() + 50) > 0)
            break;
        cl_send(c, "x");
    }
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 500);
    check_elapsed(ETIMEDOUT, 280, 2000);
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    any_stop(&s);

    /* Write deadlines: the client reads nothing. Sends fail at the
     * handler's deadline, or at once with deadline 0 when the socket is
     * full. */
    for (int once = 0; once < 2; once++) {
        any_start(&s, threaded, once ? h_write_once : h_write_deadline, NULL, &body_300);
        c = cl_open(s.port);
        atomic_store(&seen_ms, -1);
        cl_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        WAIT_FOR(atomic_load(&seen_ms) >= 0);
        check_elapsed(ETIMEDOUT, once ? 0 : 140, once ? 1000 : 2000);
        cl_close(c);
        any_stop(&s);
    }
    return NULL;
}

Test(http_servers, call_deadlines_green, .timeout = 30)
{
    int threaded = 0;

    run_main(t_deadlines, &threaded);
}

Test(http_servers, call_deadlines_threaded, .timeout = 30)
{
    int threaded = 1;

    run_main(t_deadlines, &threaded);
}

/* ================================================== the threaded server */

static void *t_threaded_basics(void *arg)
{
    tsrv t;
    client *c;
    resp r;

    (void)arg;
    tsrv_start(&t, h_echo, NULL, 4);
    c = cl_open(t.port);
    for (int i = 0; i < 3; i++) {
        cl_send(c, "POST /t HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
        read_response(c, &r, 0);
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(r.body, "abc");
        cr_assert_not_null(hdr(&r, "Date"));
        resp_free(&r);
    }
    cl_send(c, "HEAD /t HTTP/1.0\r\n\r\n");
    read_response(c, &r, 1);
    cr_assert_str_eq(hdr(&r, "Connection"), "close");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    check_pipelining(t.port);
    cr_assert_eq(status_then_close(t.port, "G@T / HTTP/1.1\r\n\r\n", 18), 400);
    tsrv_stop(&t);
    return NULL;
}

Test(http_threaded, get_keepalive_pipelining_400, .timeout = 20)
{
    run_main(t_threaded_basics, NULL);
}

static void *t_threaded_limits(void *arg)
{
    gr_http_opts o = small_limits;
    tsrv t;
    int64_t took;

    (void)arg;
    o.header_timeout_ms = 300;
    tsrv_start(&t, h_echo, &o, 2);
    check_limits(t.port);
    /* A head that trickles in is cut off near the header time-out, though
     * every read brings a byte. */
    took = check_slowloris(t.port);
    cr_assert(took >= 250 && took < 1500, "408 after %lld ms", (long long)took);
    tsrv_stop(&t);
    return NULL;
}

Test(http_threaded, limits_and_slow_head, .timeout = 30)
{
    run_main(t_threaded_limits, NULL);
}

static void *t_threaded_stop(void *arg)
{
    tsrv t;
    client *c[3];
    int64_t took;
    resp r;

    (void)arg;
    tsrv_start(&t, h_echo, NULL, 4);
    /* Three kept-alive connections, idle (60 s idle time-out). */
    for (int i = 0; i < 3; i++) {
        c[i] = cl_open(t.port);
        cl_send(c[i], "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        read_response(c[i], &r, 0);
        resp_free(&r);
    }
    took = tsrv_stop(&t);
    cr_assert_lt(took, 1000, "stop took %lld ms", (long long)took);
    for (int i = 0; i < 3; i++) {
        expect_closed(c[i]);
        cl_close(c[i]);
    }
    return NULL;
}

Test(http_threaded, stop_ends_idle_connections_promptly, .timeout = 20)
{
    run_main(t_threaded_stop, NULL);
}

/* A stop that comes before serve has started (a signal at start-up) is
 * not lost: serve returns at once, and stopping is final. */
Test(http_threaded, stop_before_serve, .timeout = 20)
{
    gr_http_threaded *s = gr_http_threaded_new(loopback_listen(), h_echo, NULL, NULL, 2);

    cr_assert_not_null(s);
    gr_http_threaded_stop(s);
    cr_assert_eq(gr_http_threaded_serve(s), 0);
    cr_assert_eq(gr_http_threaded_serve(s), 0);
    gr_http_threaded_stop(s); /* twice is harmless */
    cr_assert_eq(gr_http_threaded_free(s), 0);
}

/* serve and free while serving: EBUSY. */
static void *t_threaded_busy(void *arg)
{
    tsrv t;

    (void)arg;
    tsrv_start(&t, h_echo, NULL, 1);
    check_pipelining(t.port); /* serving by now */
    assert_fails(gr_http_threaded_serve(t.s), EBUSY);
    assert_fails(gr_http_threaded_free(t.s), EBUSY);
    tsrv_stop(&t);
    return NULL;
}

Test(http_threaded, serve_and_free_while_serving_fail_with_ebusy, .timeout = 20)
{
    run_main(t_threaded_busy, NULL);
}

/* Describe which server answered. */
static int h_name(gr_http_request *req, void *arg)
{
    const char *name = arg;

    (void)req;
    return gr_http_respond(req, 200, NULL, 0, name, strlen(name), -1);
}

static void expect_name(int port, const char *name)
{
    client *c = cl_open(port);
    resp r;

    cl_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, name);
    resp_free(&r);
    cl_close(c);
}

static void *serve_thread(void *arg)
{
    return (void *)(intptr_t)gr_http_threaded_serve(arg);
}

/* Two threaded servers in one process, each with its own handler argument
 * and its own stop. */
static void *t_two(void *arg)
{
    int fa = loopback_listen(), fb = loopback_listen();
    int pa = gr_local_port(fa), pb = gr_local_port(fb);
    gr_http_threaded *a = gr_http_threaded_new(fa, h_name, "a", NULL, 2);
    gr_http_threaded *b = gr_http_threaded_new(fb, h_name, "b", NULL, 3);
    pthread_t ta, tb;
    void *rc;

    (void)arg;
    cr_assert(a && b);
    cr_assert_eq(pthread_create(&ta, NULL, serve_thread, a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, serve_thread, b), 0);
    expect_name(pa, "a");
    expect_name(pb, "b");
    gr_http_threaded_stop(a);
    cr_assert_eq(pthread_join(ta, &rc), 0);
    cr_assert_eq((intptr_t)rc, 0);
    /* b is untouched by a's stop. */
    expect_name(pb, "b");
    expect_name(pb, "b");
    gr_http_threaded_stop(b);
    cr_assert_eq(pthread_join(tb, &rc), 0);
    cr_assert_eq((intptr_t)rc, 0);
    cr_assert_eq(gr_http_threaded_free(a), 0);
    cr_assert_eq(gr_http_threaded_free(b), 0);
    return NULL;
}

Test(http_threaded, two_servers_in_one_process, .timeout = 20)
{
    run_main(t_two, NULL);
}

/* The stop a signal handler makes. */
static gr_http_threaded *signalled;

static void on_usr1(int sig)
{
    (void)sig;
    gr_http_threaded_stop(signalled);
}

Test(http_threaded, stop_from_a_signal_handler, .timeout = 20)
{
    struct sigaction sa = {.sa_handler = on_usr1};
    pthread_t t;
    void *rc;

    signalled = gr_http_threaded_new(loopback_listen(), h_echo, NULL, NULL, 2);
    cr_assert_not_null(signalled);
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    cr_assert_eq(pthread_create(&t, NULL, serve_thread, signalled), 0);
    /* Delivered to the serving thread, blocked in pthread_join (or to the
     * workers' accept: any thread will do). */
    cr_assert_eq(pthread_kill(t, SIGUSR1), 0);
    cr_assert_eq(pthread_join(t, &rc), 0);
    cr_assert_eq((intptr_t)rc, 0);
    cr_assert_eq(gr_http_threaded_free(signalled), 0);
}
