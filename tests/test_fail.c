/* Failure paths, swept: each hooked allocation and system call that an
 * operation makes (src/arch/fail.h) is made to fail in turn, N = 1, 2, ...
 * until the operation completes without reaching N. Every failure must
 * come out as the API promises (-1 or NULL with the injected errno), or be
 * absorbed where the documentation says it is (the server's back-off, the
 * thread pool's retried post); it must leave no descriptor open and no
 * memory behind (checked after every step: LeakSanitizer in the ASan
 * build), and the process must go on serving: the same operation, tried
 * again, succeeds.
 *
 * Each step of a sweep runs in a fresh gr_main, so that every step makes
 * the same calls: pools grown by one step would spare the next one its
 * allocations. Clients that must not count run on OS threads of their own
 * with plain libc calls, or in another process. */
#include "common.h"

#include "arch/fail.h"

#include <grove/http.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* More hooked calls than any operation here makes: a sweep that gets
 * there has lost its end. */
#define SWEEP_MAX 300

typedef struct fault {
    unsigned site; /* the GR__FAIL_* site that was failed; 0: none */
    int err;       /* the error it was failed with */
} fault;

static void arm(long n)
{
    gr__fail_arm(GR__FAIL_ALL, n, 0);
}

/* The fault injected since arm(), if any; still armed. */
static fault fired(void)
{
    fault f;

    f.site = gr__fail_fired(&f.err);
    return f;
}

static fault disarm(void)
{
    gr__fail_disarm();
    return fired();
}

/* Assert that a call failed because of the injected fault. */
#define assert_injected(what, err)                                                                 \
    do {                                                                                           \
        fault f_ = fired();                                                                        \
        cr_assert_neq(f_.site, 0, "%s failed (%s) with no call failed", what, strerror(err));      \
        cr_assert_eq(err, f_.err, "%s: errno %d (%s), but site %#x was failed with %d (%s)", what, \
                     err, strerror(err), f_.site, f_.err, strerror(f_.err));                       \
    } while (0)

/* GROVE_FAIL_TRACE=1 in the environment prints each step: which call was
 * failed and how many hooked calls the step made. */
static void trace(long n)
{
    int err;
    unsigned site = gr__fail_fired(&err);

    if (!getenv("GROVE_FAIL_TRACE"))
        return;
    printf("step %ld: %ld hooked calls, site %#x failed with %s\n", n, gr__fail_count(), site,
           site ? strerror(err) : "-");
    fflush(stdout);
}

/* Steps in a row that must complete with no call failed for a sweep to
 * end. One is enough when every step makes the same calls; where timing
 * decides some (whether a peer's bytes are already there, so that a read
 * need not wait), a step may make fewer than the next. */
#define SWEEP_END 3

/* Run step(n) for n = 1, 2, ... until SWEEP_END steps in a row complete
 * with no call failed (step returns 0); each step must leave no
 * descriptor open and no memory leaked. Returns the last n failed: how
 * many hooked calls the sweep reached. */
static long sweep(int (*step)(long n))
{
    int fds = proc_self_count("fd");
    long last = 0;

    for (long n = 1; n <= last + SWEEP_END; n++) {
        cr_assert_lt(n, SWEEP_MAX, "the sweep did not end");
        if (step(n))
            last = n;
        trace(n);
        cr_assert_eq(proc_self_count("fd"), fds, "step %ld left %d descriptor(s) open", n,
                     proc_self_count("fd") - fds);
        cr_assert(!leaks_found(), "step %ld leaked memory (LeakSanitizer's report is on stderr)",
                  n);
    }
    return last;
}

/* A step run as a gr_main: n in, whether a call was failed out. */
typedef struct step_arg {
    long n;
    int failed;
} step_arg;

static int main_step(gr_fn fn, long n)
{
    step_arg a = {n, 0};

    run_main(fn, &a);
    cr_assert_eq(atomic_load(&gr__fail_sites), 0u, "still armed after the step");
    return a.failed;
}

/* Servers own their fd and close it when they fail to start; this makes
 * sure, keeping the failure's errno. */
static void close_if_open(int fd)
{
    int err = errno;

    if (fcntl(fd, F_GETFD) >= 0)
        close(fd);
    errno = err;
}

/* ------------------------------------------------------------- gr_main */

static void *answer(void *arg)
{
    (void)arg;
    return (void *)42;
}

static int gr_main_step(long n)
{
    void *r = NULL;
    int rc, err;
    fault f;

    arm(n);
    rc = gr_main(answer, NULL, &r);
    err = errno;
    f = disarm();
    if (!f.site) {
        cr_assert_eq(rc, 0, "gr_main: %s", strerror(err));
        cr_assert_eq((intptr_t)r, 42);
        return 0;
    }
    cr_assert_eq(rc, -1, "call %ld (site %#x) failed, yet gr_main returned %d", n, f.site, rc);
    cr_assert_eq(err, f.err, "gr_main: errno %s, site %#x failed with %s", strerror(err), f.site,
                 strerror(f.err));
    return 1;
}

static void *echo_once(void *arg)
{
    int *sv = arg;
    char b[4];

    cr_assert_eq(gr_read_exact(sv[1], b, 4, NULL, gr_now() + 5000), 0);
    cr_assert_eq(gr_write(sv[1], b, 4, gr_now() + 5000), 4);
    return NULL;
}

static void *sleeper(void *arg)
{
    cr_assert_eq(gr_sleep(gr_now() + 1), 0);
    return arg;
}

/* What "the process keeps working" means for a hub: threads, timers and
 * descriptors. */
static void *real_work(void *arg)
{
    gr_t t[100], e;
    int sv[2];
    char b[4];

    (void)arg;
    for (intptr_t i = 0; i < 100; i++)
        cr_assert_gt(t[i] = gr_spawn(sleeper, (void *)i), 0);
    for (intptr_t i = 0; i < 100; i++) {
        void *r;

        cr_assert_eq(gr_join(t[i], &r, -1), 0);
        cr_assert_eq((intptr_t)r, i);
    }
    tcp_pair(sv);
    cr_assert_gt(e = gr_spawn(echo_once, sv), 0);
    cr_assert_eq(gr_write(sv[0], "ping", 4, gr_now() + 5000), 4);
    cr_assert_eq(gr_read_exact(sv[0], b, 4, NULL, gr_now() + 5000), 0);
    cr_assert_eq(gr_join(e, NULL, -1), 0);
    close_pair(sv);
    return NULL;
}

Test(fail, gr_main, .timeout = 60)
{
    /* The hub alone: its record, the ready ring, the handle table, the
     * timer heap, epoll, the eventfd, a stack slab, the signal stack. */
    cr_assert_geq(sweep(gr_main_step), 12);
    run_main(real_work, NULL);
}

/* ------------------------------------------------------------ gr_spawn */

/* Enough spawns to grow every table a spawn uses at least once: the
 * handle table (256), the ready ring and the timer heap (64, 128...), and
 * stack slabs of 16, 32, 64, 128 stacks; the last spawn asks for another
 * stack size, a new class of stacks. */
#define SPAWNS 300

static void *child(void *arg)
{
    return arg;
}

static void *spawn_sweep_main(void *arg)
{
    step_arg *a = arg;
    gr_opts other = {.name = "other", .stack_size = 256 * 1024};
    static gr_t t[SPAWNS + 1];
    intptr_t k;
    int err = 0;
    fault f;

    arm(a->n);
    for (k = 0; k <= SPAWNS; k++) {
        t[k] = k < SPAWNS ? gr_spawn(child, (void *)k) : gr_spawn_opts(child, (void *)k, &other);
        if (t[k] < 0) {
            err = errno;
            assert_injected("gr_spawn", err);
            cr_assert_eq(err, ENOMEM);
            break;
        }
    }
    f = disarm();
    cr_assert(k <= SPAWNS || !f.site, "site %#x failed, yet every spawn succeeded", f.site);
    a->failed = f.site != 0;
    /* The threads made before the failure run and are joined as usual,
     * and the spawn that failed now succeeds. */
    for (intptr_t i = 0; i < k; i++) {
        void *r;

        cr_assert_eq(gr_join(t[i], &r, -1), 0);
        cr_assert_eq((intptr_t)r, i);
    }
    if (k <= SPAWNS) {
        void *r;

        cr_assert_gt(t[k] = gr_spawn_opts(child, (void *)k, &other), 0);
        cr_assert_eq(gr_join(t[k], &r, -1), 0);
        cr_assert_eq((intptr_t)r, k);
    }
    return NULL;
}

static int spawn_step(long n)
{
    return main_step(spawn_sweep_main, n);
}

Test(fail, gr_spawn, .timeout = 60)
{
    cr_assert_geq(sweep(spawn_step), 15);
    run_main(real_work, NULL);
}

/* ------------------------------------------------ waiting on descriptors
 * gr_poll on more descriptors than it keeps waiters for on its stack, the
 * one that becomes ready last, and gr_wait_fd: a descriptor that could not
 * be registered would never wake the caller, so the call must fail. */

#define POLL_FDS 10

static void *write_one(void *arg)
{
    cr_assert_eq(gr_write(*(int *)arg, "x", 1, gr_now() + 5000), 1);
    return NULL;
}

static void *fd_wait_sweep_main(void *arg)
{
    step_arg *a = arg;
    struct pollfd pf[POLL_FDS];
    int p[POLL_FDS + 1][2], n, err; /* the last one for gr_wait_fd */
    gr_t w[2] = {0, 0};
    fault f;

    for (int i = 0; i <= POLL_FDS; i++)
        cr_assert_eq(pipe2(p[i], O_NONBLOCK | O_CLOEXEC), 0);
    for (int i = 0; i < POLL_FDS; i++)
        pf[i] = (struct pollfd){.fd = p[i][0], .events = POLLIN};
    /* Each writes once the waiter below has parked. */
    cr_assert_gt(w[0] = gr_spawn(write_one, &p[POLL_FDS - 1][1]), 0);
    arm(a->n);
    n = gr_poll(pf, POLL_FDS, gr_now() + 5000);
    err = errno;
    if (n >= 0) {
        cr_assert_eq(fired().site, 0u, "site %#x failed, yet gr_poll returned %d", fired().site, n);
        cr_assert_eq(n, 1);
        cr_assert(pf[POLL_FDS - 1].revents & POLLIN);
        cr_assert_gt(w[1] = gr_spawn(write_one, &p[POLL_FDS][1]), 0);
        n = gr_wait_fd(p[POLL_FDS][0], GR_READ, gr_now() + 5000);
        err = errno;
    }
    f = disarm();
    if (n < 0)
        assert_injected("gr_poll or gr_wait_fd", err);
    else
        cr_assert_eq(f.site, 0u, "site %#x failed, yet gr_wait_fd returned %d", f.site, n);
    a->failed = f.site != 0;
    for (int i = 0; i < 2; i++)
        cr_assert(!w[i] || gr_join(w[i], NULL, -1) == 0);
    for (int i = 0; i <= POLL_FDS; i++) {
        gr_close(p[i][0]);
        gr_close(p[i][1]);
    }
    return NULL;
}

static int fd_wait_step(long n)
{
    return main_step(fd_wait_sweep_main, n);
}

Test(fail, fd_waits, .timeout = 60)
{
    cr_assert_geq(sweep(fd_wait_step), 12);
}

/* ---------------------------------------------- clients on OS threads
 * A client that makes no hooked call: plain blocking libc on an OS thread
 * of its own. It connects and sends when told, so that every step of a
 * sweep sees the server make the same calls in the same order. */

typedef struct client {
    int port;
    const char *request;
    atomic_int connect_go, send_go, done;
    char reply[4096];
    size_t len;
    int err; /* of connect or recv; 0 when the server closed */
    pthread_t thread;
} client;

static void wait_flag(atomic_int *flag)
{
    for (int i = 0; i < 10000 && !atomic_load(flag); i++)
        usleep(1000);
}

static void *client_main(void *arg)
{
    client *c = arg;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ssize_t n = 0;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    wait_flag(&c->connect_go);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        c->err = errno;
    } else {
        wait_flag(&c->send_go);
        if (send(fd, c->request, strlen(c->request), MSG_NOSIGNAL) < 0)
            c->err = errno;
        while (!c->err && c->len < sizeof c->reply - 1 &&
               (n = recv(fd, c->reply + c->len, sizeof c->reply - 1 - c->len, 0)) > 0)
            c->len += (size_t)n;
        if (n < 0)
            c->err = errno;
    }
    close(fd);
    atomic_store(&c->done, 1);
    return NULL;
}

static void client_start(client *c, int port, const char *request)
{
    memset(c, 0, sizeof *c);
    c->port = port;
    c->request = request;
    cr_assert_eq(pthread_create(&c->thread, NULL, client_main, c), 0);
}

static void client_finish(client *c)
{
    WAIT_FOR(atomic_load(&c->done));
    pthread_join(c->thread, NULL);
}

/* A whole exchange, with no ordering to control. */
static void client_run(client *c, int port, const char *request)
{
    client_start(c, port, request);
    atomic_store(&c->connect_go, 1);
    atomic_store(&c->send_go, 1);
    client_finish(c);
}

static size_t fd_waiters(void)
{
    gr_stats st;

    cr_assert_eq(gr_stats_get(&st), 0);
    return st.fd_waiters;
}

/* One connection, in order: the server's loop waits for it, accepts it,
 * its handler waits for the request (or has already given up, or the
 * connection is parked without a thread until bytes come), the request
 * comes, the handler finishes. stats reads the server's counters. */
static void one_connection(client *c, void *srv, gr_server_stats (*stats)(void *srv))
{
    WAIT_FOR(fd_waiters() >= 1);
    atomic_store(&c->connect_go, 1);
    WAIT_FOR(stats(srv).accepted == 1 &&
             (stats(srv).active == 0 || fd_waiters() >= 2 || stats(srv).parked == 1));
    atomic_store(&c->send_go, 1);
    client_finish(c);
    WAIT_FOR(stats(srv).active == 0);
}

/* ----------------------------------------- servers: stream and HTTP */

static atomic_int handler_err; /* errno of the handler's failed call */

static void echo(int fd, const gr_addr *peer, void *arg)
{
    char b[16];
    ssize_t n;

    (void)peer;
    (void)arg;
    if ((n = gr_read(fd, b, sizeof b, gr_now() + 5000)) <= 0) {
        atomic_store(&handler_err, n < 0 ? errno : EPIPE);
        return;
    }
    if (gr_write(fd, b, (size_t)n, gr_now() + 5000) != n)
        atomic_store(&handler_err, errno);
}

/* Setting up failed: the injected error, nothing else. */
static void *setup_failed(step_arg *a, const char *what)
{
    int err = errno;

    assert_injected(what, err);
    disarm();
    a->failed = 1;
    return NULL;
}

/* The stream server and the HTTP server are swept alike: one of them is
 * under test, the calls below pick it. */
static int http; /* 1: the HTTP server */

/* Handlers on stacks of a size of their own: the first handler's spawn
 * then maps a slab, and can fail. */
#define HANDLER_STACK (64 * 1024)

static int hello(gr_http_request *req, void *arg)
{
    (void)arg;
    if (gr_http_respond(req, 200, NULL, 0, "hello", 5, -1) != 0)
        atomic_store(&handler_err, errno);
    return 0;
}

static void *server_new(int fd)
{
    gr_server_opts so = {.stack_size = HANDLER_STACK};
    gr_http_opts ho = {.stack_size = HANDLER_STACK};

    return http ? (void *)gr_http_server_new(fd, hello, NULL, &ho)
                : (void *)gr_server_new(fd, echo, NULL, &so);
}

/* The reply is the whole answer. */
static int answered(const client *c)
{
    if (!http)
        return c->len == 4 && !memcmp(c->reply, "ping", 4);
    return c->len > 17 && !memcmp(c->reply, "HTTP/1.1 200 OK\r\n", 17) &&
           !memcmp(c->reply + c->len - 9, "\r\n\r\nhello", 9);
}

static const char *request(void)
{
    return http ? "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" : "ping";
}

static int server_start(void *s)
{
    return http ? gr_http_server_start(s) : gr_server_start(s);
}

static gr_server_stats server_stats(void *s)
{
    gr_server_stats st;

    cr_assert_eq(http ? gr_http_server_stats_get(s, &st) : gr_server_stats_get(s, &st), 0);
    return st;
}

static int server_stop(void *s, int64_t deadline)
{
    return http ? gr_http_server_stop(s, deadline) : gr_server_stop(s, deadline);
}

static int server_free(void *s)
{
    return http ? gr_http_server_free(s) : gr_server_free(s);
}

static void *server_sweep_main(void *arg)
{
    step_arg *a = arg;
    client c;
    fault f;
    int l, port;
    void *s;

    atomic_store(&handler_err, 0);
    arm(a->n);
    if ((l = gr_tcp_listen("127.0.0.1", 0, 0)) < 0)
        return setup_failed(a, "gr_tcp_listen");
    port = gr_local_port(l);
    if (!(s = server_new(l))) {
        close_if_open(l);
        return setup_failed(a, "creating the server");
    }
    if (server_start(s) != 0) {
        cr_assert_eq(server_free(s), 0);
        return setup_failed(a, "starting the server");
    }
    client_start(&c, port, request());
    one_connection(&c, s, server_stats);
    f = disarm();
    a->failed = f.site != 0;
    /* EMFILE from accept: the loop backs off, the connection waits in the
     * backlog, and the loop takes it when it tries again. */
    if (f.site == GR__FAIL_ACCEPT)
        cr_assert(server_stats(s).fd_limit == 1 && answered(&c));
    /* Otherwise the connection was served, or closed unanswered (its
     * handler could not start, or its call failed with the injected
     * error): never a partial answer. */
    cr_assert_eq(c.err, 0, "client: %s", strerror(c.err));
    cr_assert(c.len == 0 || answered(&c), "reply: %.*s", (int)c.len, c.reply);
    cr_assert(f.site || c.len, "not served, and no call failed");
    if (atomic_load(&handler_err))
        cr_assert_eq(atomic_load(&handler_err), f.err, "handler: %s, injected: %s",
                     strerror(atomic_load(&handler_err)), strerror(f.err));
    /* Still serving. */
    client_run(&c, port, request());
    cr_assert(answered(&c), "after the failure: %.*s (%s)", (int)c.len, c.reply, strerror(c.err));
    cr_assert_eq(server_stop(s, gr_now() + 5000), 0);
    cr_assert_eq(server_free(s), 0);
    return NULL;
}

static int server_step(long n)
{
    return main_step(server_sweep_main, n);
}

Test(fail, server_accept_loop, .timeout = 60)
{
    cr_redirect_stderr(); /* the server's back-off notices */
    cr_assert_geq(sweep(server_step), 10);
}

Test(fail, http_server, .timeout = 60)
{
    cr_redirect_stderr();
    http = 1;
    cr_assert_geq(sweep(server_step), 12);
}

/* --------------------------------------------------------- HTTP client
 * The server runs in a child process, where nothing is armed. */

#define BIG 10000 /* a body larger than the client's first buffer */

static int small_or_big(gr_http_request *req, void *arg)
{
    static char big[BIG];

    (void)arg;
    if (!strcmp(req->target, "/big")) {
        memset(big, 'b', sizeof big);
        return gr_http_respond(req, 200, NULL, 0, big, sizeof big, -1);
    }
    return gr_http_respond(req, 200, NULL, 0, "small", 5, -1);
}

typedef struct child_srv {
    int ctl;    /* closed by the parent: stop */
    int report; /* the port goes there */
} child_srv;

static void *child_server_main(void *arg)
{
    child_srv *cs = arg;
    int l = gr_tcp_listen("127.0.0.1", 0, 0), port = gr_local_port(l);
    gr_http_server *s = gr_http_server_new(l, small_or_big, NULL, NULL);
    char b;

    if (!s || gr_http_server_start(s) != 0 || write(cs->report, &port, sizeof port) < 0)
        _exit(1);
    while (gr_read(cs->ctl, &b, 1, -1) > 0) {
    }
    gr_http_server_stop(s, gr_now() + 1000);
    gr_http_server_free(s);
    return NULL;
}

static pid_t server_process(int *port, int *ctl)
{
    int c[2], r[2];
    pid_t pid;

    cr_assert_eq(pipe2(c, O_CLOEXEC | O_NONBLOCK), 0); /* the child reads it with gr_read */
    cr_assert_eq(pipe2(r, O_CLOEXEC), 0);
    cr_assert_geq(pid = fork(), 0);
    if (pid == 0) {
        child_srv cs = {c[0], r[1]};

        close(c[1]);
        close(r[0]);
        gr_main(child_server_main, &cs, NULL);
        _exit(0);
    }
    close(c[0]);
    close(r[1]);
    cr_assert_eq(read(r[0], port, sizeof *port), (ssize_t)sizeof *port);
    close(r[0]);
    *ctl = c[1];
    return pid;
}

static int server_port;

static void get(gr_http_client *c, const char *target, size_t body_len)
{
    gr_http_response res;
    int rc = gr_http_client_request(c, "GET", target, NULL, 0, NULL, 0, &res, gr_now() + 5000);

    if (rc != 0) {
        int err = errno;

        assert_injected("gr_http_client_request", err);
        cr_assert_eq(res.status, 0);
        /* The client recovers: the same request succeeds now. */
        rc = gr_http_client_request(c, "GET", target, NULL, 0, NULL, 0, &res, gr_now() + 5000);
        cr_assert_eq(rc, 0, "%s after a failure: %s", target, strerror(errno));
    }
    cr_assert_eq(res.status, 200);
    cr_assert_eq(res.body_len, body_len);
}

static void *client_sweep_main(void *arg)
{
    step_arg *a = arg;
    gr_http_client *c;

    arm(a->n);
    if (!(c = gr_http_client_new("127.0.0.1", server_port))) {
        int err = errno;

        assert_injected("gr_http_client_new", err);
        cr_assert_not_null(c = gr_http_client_new("127.0.0.1", server_port));
    }
    get(c, "/small", 5);
    get(c, "/big", BIG); /* on the kept-alive connection, or a new one */
    get(c, "/small", 5);
    gr_http_client_free(c);
    a->failed = disarm().site != 0;
    return NULL;
}

static int client_step(long n)
{
    return main_step(client_sweep_main, n);
}

Test(fail, http_client_request, .timeout = 60)
{
    int ctl, status;
    pid_t pid = server_process(&server_port, &ctl);

    cr_assert_geq(sweep(client_step), 12);
    close(ctl);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the server process failed");
}

/* --------------------------------------------------------- thread pool */

static atomic_int gate, held_started;

/* 7 is held until the gate opens; the others get one added. */
static void *job(void *arg)
{
    if ((intptr_t)arg != 7)
        return (void *)((intptr_t)arg + 1);
    atomic_store(&held_started, 1);
    wait_flag(&gate);
    return arg;
}

static void *run_job(void *arg)
{
    void *r = NULL;

    cr_assert_eq(gr_threadpool_run(job, arg, &r, NULL, gr_now() + 5000), 0, "job %ld: %s",
                 (long)(intptr_t)arg, strerror(errno));
    return r;
}

static void *pool_main(void *arg)
{
    void *r = NULL;
    gr_t t[2];

    (void)arg;
    /* No worker could be started, and there is none: EAGAIN, as
     * documented. */
    gr__fail_arm(GR__FAIL_THREAD, 1, 0);
    assert_fails(gr_threadpool_run(job, (void *)1, &r, NULL, gr_now() + 5000), EAGAIN);
    cr_assert_eq(disarm().site, (unsigned)GR__FAIL_THREAD);
    /* A worker is busy and a second one cannot start: the job waits for
     * the first, which takes it when it is done. */
    cr_assert_gt(t[0] = gr_spawn(run_job, (void *)7), 0);
    WAIT_FOR(atomic_load(&held_started));
    gr__fail_arm(GR__FAIL_THREAD, 1, 0);
    cr_assert_gt(t[1] = gr_spawn(run_job, (void *)1), 0);
    WAIT_FOR(fired().site == GR__FAIL_THREAD); /* queued behind the held job */
    disarm();
    atomic_store(&gate, 1);
    cr_assert_eq(gr_join(t[0], &r, -1), 0);
    cr_assert_eq((intptr_t)r, 7);
    cr_assert_eq(gr_join(t[1], &r, -1), 0);
    cr_assert_eq((intptr_t)r, 2);
    /* The job's record cannot be allocated: ENOMEM. The worker cannot
     * post the result back: it tries again until it can, and the job is
     * delivered. */
    for (long n = 1;; n++) {
        fault f;
        int rc;

        cr_assert_lt(n, 10);
        gr__fail_arm(GR__FAIL_ALLOC, n, 0);
        rc = gr_threadpool_run(job, (void *)41, &r, NULL, gr_now() + 5000);
        f = disarm();
        if (rc != 0) {
            cr_assert_eq(errno, ENOMEM);
            cr_assert_eq(f.site, (unsigned)GR__FAIL_ALLOC);
            continue;
        }
        cr_assert_eq((intptr_t)r, 42);
        if (!f.site)
            break;
    }
    return NULL;
}

Test(fail, threadpool, .timeout = 30)
{
    run_main(pool_main, NULL);
    cr_assert(!leaks_found());
}
