/* Idle keep-alive connections of the green HTTP server (docs/http.md,
 * "Idle connections"): between requests a connection is parked, holding no
 * green thread, stack or buffer, and served again by a new thread when its
 * next bytes come. These check that it comes back (many of them), that
 * bytes arriving while it is parked are not lost, that the idle time-out,
 * a stop and a peer's close still end it, and that parked connections
 * count against max_connections. What one costs is measured by
 * bench/http/idle_mem.sh. */
#include "http_common.h"

#include <stdio.h>

static const char get_req[] = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";

static int h_ok(gr_http_request *req, void *arg)
{
    (void)arg;
    return gr_http_respond(req, 200, NULL, 0, req->path, strlen(req->path), -1);
}

/* One response off fd (small, with a Content-Length); returns its body
 * length and checks the status. Reads byte runs into a small buffer, so a
 * client costs little: thousands of them share the test's process with the
 * server. */
static size_t read_small_response(int fd, char *body, size_t max)
{
    char buf[1024];
    size_t used = 0, len;
    char *end, *cl;

    for (;;) {
        ssize_t n = gr_read(fd, buf + used, sizeof buf - 1 - used, gr_now() + WAIT_MS);

        cr_assert_gt(n, 0, "reading a response: %s", n ? strerror(errno) : "closed");
        used += (size_t)n;
        buf[used] = '\0';
        if (!(end = strstr(buf, "\r\n\r\n")))
            continue;
        cr_assert(!strncmp(buf, "HTTP/1.1 200 ", 13), "status line: %.40s", buf);
        cl = strcasestr(buf, "Content-Length: ");
        cr_assert_not_null(cl);
        len = strtoul(cl + 16, NULL, 10);
        if (used - (size_t)(end + 4 - buf) < len)
            continue;
        cr_assert_eq(used - (size_t)(end + 4 - buf), len, "more than one response");
        cr_assert_lt(len, max);
        memcpy(body, end + 4, len);
        body[len] = '\0';
        return len;
    }
}

static void get_once(int fd, const char *path)
{
    char req[256], body[256];

    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path);
    cr_assert_eq(gr_write_all(fd, req, strlen(req), NULL, gr_now() + WAIT_MS), 0);
    read_small_response(fd, body, sizeof body);
    cr_assert_str_eq(body, path);
}

/* Wait (bounded) until the server's counters say so: a handler parks its
 * connection just after the client has its response. */
static void await_stats(gr_http_server *s, size_t active, size_t parked)
{
    int64_t until = gr_now_update() + WAIT_MS;
    gr_server_stats st;

    for (;;) {
        cr_assert_eq(gr_http_server_stats_get(s, &st), 0);
        if (st.active == active && st.parked == parked)
            return;
        cr_assert_lt(gr_now_update(), until, "active %zu parked %zu, not %zu %zu", st.active,
                     st.parked, active, parked);
        gr_sleep(gr_now() + 1);
    }
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    cr_assert_not_null(f);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* ========================================================= many of them */

#define MANY 2000

static void *t_many(void *arg)
{
    srv s = srv_start(h_ok, NULL, NULL);
    int *fds = calloc(MANY, sizeof *fds);
    long before;
    gr_stats hs;

    (void)arg;
    cr_assert_not_null(fds);
    /* Warm up: the first connection's allocations are not the idle cost. */
    fds[0] = loopback_connect(s.port);
    get_once(fds[0], "/warm");
    before = rss_kib();
    for (int i = 1; i < MANY; i++) {
        fds[i] = loopback_connect(s.port);
        get_once(fds[i], "/first");
    }
    await_stats(s.s, MANY, MANY);
    /* No green thread per idle connection: the accept loop, the reaper and
     * this test's own are what is left. */
    cr_assert_eq(gr_stats_get(&hs), 0);
    cr_assert_lt(hs.threads, 8, "%zu green threads for %d idle connections", hs.threads, MANY);
#if !defined(__SANITIZE_ADDRESS__)
    /* Generous (the bench measures it: a few hundred bytes each), but far
     * below a parked thread's stack page and buffer each; client sockets
     * and their buffers are in this process too. The threads that waited
     * for a next request leave their stacks pooled, and the hub gives
     * their memory back within a second or two. */
    for (int64_t until = gr_now_update() + WAIT_MS; rss_kib() - before >= MANY * 8L;) {
        cr_assert_lt(gr_now_update(), until, "%ld KiB for %d idle connections", rss_kib() - before,
                     MANY);
        gr_sleep(gr_now() + 20);
    }
#else
    (void)before;
#endif
    /* Every one is served again, in an order unlike the one they parked in. */
    for (int i = MANY - 1; i >= 0; i -= 2)
        get_once(fds[i], "/again");
    for (int i = MANY - 2; i >= 0; i -= 2)
        get_once(fds[i], "/again");
    await_stats(s.s, MANY, MANY);
#if !defined(__SANITIZE_ADDRESS__)
    {
        gr_server_stats st;

        /* The sampled depth of a request's stack: some pages, not all. */
        cr_assert_eq(gr_http_server_stats_get(s.s, &st), 0);
        cr_assert(st.stack_hwm > 1024 && st.stack_hwm < GR_STACK_DEFAULT, "stack_hwm %zu",
                  st.stack_hwm);
    }
#endif
    for (int i = 0; i < MANY; i++)
        gr_close(fds[i]);
    /* A peer's close wakes its parked connection, which ends. */
    await_stats(s.s, 0, 0);
    free(fds);
    srv_stop(&s);
    return NULL;
}

Test(http_idle, thousands_parked_then_served_again, .timeout = 60)
{
    run_main(t_many, NULL);
}

/* ============================================== bytes while it is parked */

static void *t_bytes(void *arg)
{
    srv s = srv_start(h_echo, NULL, NULL);
    client *c = cl_open(s.port);
    resp r;

    (void)arg;
    cl_send(c, get_req);
    read_response(c, &r, 0);
    resp_free(&r);
    await_stats(s.s, 1, 1);

    /* Two pipelined requests land on the parked connection at once: both
     * answered, in order. */
    cl_send(c, "POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\none"
               "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\ntwo");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "one");
    resp_free(&r);
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, "two");
    resp_free(&r);
    await_stats(s.s, 1, 1);

    /* Half a head: the connection is not idle any more, so it waits in a
     * thread, with its bytes, for the rest. */
    cl_send(c, "POST /3 HTTP/1.1\r\nHo");
    await_stats(s.s, 1, 0);
    cl_send(c, "st: a\r\nContent-Length: 5\r\n\r\nth");
    cl_send(c, "ree");
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, "three");
    resp_free(&r);
    await_stats(s.s, 1, 1);

    /* A request and the peer's close together: answered, then closed. */
    cl_send(c, "POST /4 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nfour");
    cr_assert_eq(shutdown(c->fd, SHUT_WR), 0);
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, "four");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    await_stats(s.s, 0, 0);
    srv_stop(&s);
    return NULL;
}

Test(http_idle, bytes_arriving_while_parked_are_served, .timeout = 30)
{
    run_main(t_bytes, NULL);
}

/* ============================================ what still ends a parked one */

static void *t_timeout(void *arg)
{
    gr_http_opts o = {.idle_timeout_ms = 200};
    srv s = srv_start(h_ok, NULL, &o);
    client *a = cl_open(s.port), *b;
    int64_t t;
    resp r;

    (void)arg;
    cl_send(a, get_req);
    read_response(a, &r, 0);
    resp_free(&r);
    t = gr_now_update();
    await_stats(s.s, 1, 1);
    expect_closed(a);
    cr_assert(gr_now_update() - t >= 150, "closed after %lld ms", (long long)(gr_now_update() - t));
    await_stats(s.s, 0, 0);
    cl_close(a);

    /* Once none is left the reaper may end; a connection parked later is
     * still closed on time, and one that keeps talking is not. */
    b = cl_open(s.port);
    a = cl_open(s.port);
    for (int i = 0; i < 4; i++) {
        cl_send(a, get_req);
        read_response(a, &r, 0);
        resp_free(&r);
        gr_sleep(gr_now_update() + 100);
    }
    expect_closed(b);
    cl_send(a, get_req);
    read_response(a, &r, 0);
    resp_free(&r);
    expect_closed(a);
    cl_close(a);
    cl_close(b);
    await_stats(s.s, 0, 0);
    srv_stop(&s);
    return NULL;
}

Test(http_idle, idle_timeout_closes_parked_connections, .timeout = 30)
{
    run_main(t_timeout, NULL);
}

static void *t_stop(void *arg)
{
    srv s = srv_start(h_ok, NULL, NULL);
    int fds[50];
    int64_t t;
    char x;

    (void)arg;
    for (int i = 0; i < 50; i++) {
        fds[i] = loopback_connect(s.port);
        get_once(fds[i], "/p");
    }
    await_stats(s.s, 50, 50);
    t = gr_now_update();
    cr_assert_eq(gr_http_server_stop(s.s, gr_now() + 5000), 0);
    cr_assert_lt(gr_now_update() - t, 1000, "stop took %lld ms", (long long)(gr_now_update() - t));
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(gr_read(fds[i], &x, 1, gr_now() + WAIT_MS), 0, "still open after stop");
        gr_close(fds[i]);
    }
    cr_assert_eq(gr_http_server_free(s.s), 0);
    return NULL;
}

Test(http_idle, stop_closes_parked_connections_at_once, .timeout = 30)
{
    run_main(t_stop, NULL);
}

/* A drain (a reload's stop) lets parked connections send one more request
 * until its idle deadline: answered with Connection: close, where a FIN
 * could have crossed it; the ones that send nothing are closed then. */
static void *drainer(void *arg)
{
    int64_t now = gr_now_update();

    return (void *)(intptr_t)gr_http_server_drain(arg, now + 1500, now + 10000);
}

/* The drain has begun once the listener is gone. */
static int refuses_connections(int port)
{
    int fd = gr_tcp_connect("127.0.0.1", port, gr_now() + WAIT_MS);

    if (fd < 0)
        return 1;
    gr_close(fd);
    return 0;
}

static void *t_drain(void *arg)
{
    srv s = srv_start(h_ok, NULL, NULL);
    int quiet = loopback_connect(s.port), late = loopback_connect(s.port);
    char buf[1024], x;
    size_t used = 0;
    ssize_t n;
    void *rc;
    gr_t d;

    (void)arg;
    get_once(quiet, "/q");
    get_once(late, "/l");
    await_stats(s.s, 2, 2);
    cr_assert_gt(d = gr_spawn(drainer, s.s), 0);
    WAIT_FOR(refuses_connections(s.port));
    cr_assert_eq(gr_write_all(late, get_req, sizeof get_req - 1, NULL, gr_now() + WAIT_MS), 0);
    while ((n = gr_read(late, buf + used, sizeof buf - 1 - used, gr_now() + WAIT_MS)) > 0)
        used += (size_t)n;
    cr_assert_eq(n, 0, "the answer ends with a close: %s", strerror(errno));
    buf[used] = '\0';
    cr_assert(!strncmp(buf, "HTTP/1.1 200 ", 13), "%.40s", buf);
    cr_assert_not_null(strcasestr(buf, "Connection: close"), "%s", buf);
    cr_assert_eq(gr_read(quiet, &x, 1, gr_now() + WAIT_MS), 0, "closed at the deadline");
    cr_assert_eq(gr_join(d, &rc, gr_now() + WAIT_MS), 0);
    cr_assert_eq((intptr_t)rc, 0, "drain: %s", strerror(errno));
    gr_close(late);
    gr_close(quiet);
    cr_assert_eq(gr_http_server_free(s.s), 0);
    return NULL;
}

Test(http_idle, a_drain_serves_one_more_request_on_parked_connections, .timeout = 30)
{
    run_main(t_drain, NULL);
}

/* Parked connections are connections: max_connections counts them, so a
 * third waits until one of two idle ones goes. */
static void *t_pool(void *arg)
{
    gr_http_opts o = {.max_connections = 2};
    srv s = srv_start(h_ok, NULL, &o);
    int a = loopback_connect(s.port), b = loopback_connect(s.port), c;
    char x;

    (void)arg;
    get_once(a, "/a");
    get_once(b, "/b");
    await_stats(s.s, 2, 2);
    c = loopback_connect(s.port); /* the kernel's backlog takes it */
    cr_assert_eq(gr_write_all(c, get_req, strlen(get_req), NULL, gr_now() + WAIT_MS), 0);
    assert_fails(gr_read(c, &x, 1, gr_now() + 200), ETIMEDOUT);
    gr_close(a);
    {
        char body[64];

        read_small_response(c, body, sizeof body);
        cr_assert_str_eq(body, "/x");
    }
    gr_close(b);
    gr_close(c);
    await_stats(s.s, 0, 0);
    srv_stop(&s);
    return NULL;
}

Test(http_idle, max_connections_counts_parked_ones, .timeout = 30)
{
    run_main(t_pool, NULL);
}
