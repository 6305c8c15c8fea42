/* Servers: stream and datagram, the pool limit, graceful stop, the EMFILE
 * back-off, and 1,000 clients through examples/echo-server. */
#include "common.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

/* Assert a creation failed: NULL with the given errno. */
#define assert_null_errno(call, err)                                                               \
    do {                                                                                           \
        errno = 0;                                                                                 \
        void *p_ = (call);                                                                         \
        int e_ = errno;                                                                            \
        cr_assert_null(p_, "%s did not fail", #call);                                              \
        cr_assert_eq(e_, (err), "%s: errno %d (%s), expected %d (%s)", #call, e_, strerror(e_),    \
                     (err), strerror(err));                                                        \
    } while (0)

/* fd is closed (and nothing has reused its number since). */
static void assert_closed(int fd)
{
    assert_fails(fcntl(fd, F_GETFD), EBADF);
}

static gr_server_stats stats(gr_server *s)
{
    gr_server_stats st;

    cr_assert_eq(gr_server_stats_get(s, &st), 0);
    return st;
}

/* -------------------------------------------------------------- basics */

static void reply_then_return(int fd, const gr_addr *peer, void *arg)
{
    char buf[64], name[64];
    ssize_t n;

    (void)arg;
    cr_assert_gt(gr_addr_format(peer, name, sizeof name), 0);
    cr_assert(strncmp(name, "127.0.0.1:", 10) == 0, "%s", name);
    n = gr_read(fd, buf, sizeof buf, gr_now() + 5000);
    cr_assert_gt(n, 0);
    cr_assert_eq(gr_write_all(fd, buf, (size_t)n, NULL, -1), 0);
    /* Returns without closing fd: the server does. */
}

static void *basics(void *arg)
{
    gr_server_opts o = {.name = "basic"};
    int l = loopback_listen(), port = gr_local_port(l), c[10];
    gr_server *s;

    (void)arg;
    s = gr_server_new(l, reply_then_return, NULL, &o);
    cr_assert_not_null(s);
    cr_assert_eq(gr_server_start(s), 0);
    assert_fails(gr_server_start(s), EINVAL);
    assert_fails(gr_server_serve(s), EINVAL);
    assert_fails(gr_server_free(s), EBUSY);
    for (int i = 0; i < 10; i++) {
        char buf[8];

        c[i] = loopback_connect(port);
        cr_assert_eq(gr_write(c[i], "ping", 4, -1), 4);
        cr_assert_eq(gr_read_exact(c[i], buf, 4, NULL, gr_now() + 5000), 0);
        cr_assert_eq(memcmp(buf, "ping", 4), 0);
        /* The handler returned and the server closed its end. */
        cr_assert_eq(gr_read(c[i], buf, sizeof buf, gr_now() + 5000), 0);
    }
    cr_assert_eq(stats(s).accepted, 10);
    cr_assert_eq(gr_server_stop(s, gr_now() + 1000), 0);
    cr_assert_eq(stats(s).active, 0);
    /* The listening socket is closed: nobody may connect any more. */
    assert_fails(gr_tcp_connect("127.0.0.1", port, gr_now() + 1000), ECONNREFUSED);
    cr_assert_eq(gr_server_stop(s, 0), 0); /* stopping again is harmless */
    assert_fails(gr_server_start(s), EINVAL);
    cr_assert_eq(gr_server_free(s), 0);
    for (int i = 0; i < 10; i++)
        gr_close(c[i]);
    return NULL;
}

Test(server, start_serve_stop_free, .timeout = 20)
{
    run_main(basics, NULL);
}

Test(server, bad_arguments)
{
    gr_server *s;

    assert_fails(gr_server_stats_get(NULL, NULL), EINVAL);
    /* Never started: free closes the socket it owns. */
    s = gr_server_new(dup(0), reply_then_return, NULL, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(gr_server_free(s), 0);
}

/* ----------------------------------------------------------- ownership */

static void ignore_dgram(int fd, const void *data, size_t len, const gr_addr *peer, void *arg)
{
    (void)fd, (void)data, (void)len, (void)peer, (void)arg;
}

/* The docs' own pattern reports a failed listen as the listen's error. */
Test(server, new_reports_a_failed_listen, .timeout = 10)
{
    int l = loopback_listen(), port = gr_local_port(l);
    int u = gr_udp_bind("127.0.0.1", 0), uport = gr_local_port(u);

    cr_assert_geq(u, 0);
    assert_null_errno(
        gr_server_new(gr_tcp_listen("127.0.0.1", port, 0), reply_then_return, NULL, NULL),
        EADDRINUSE);
    assert_null_errno(
        gr_datagram_server_new(gr_udp_bind("127.0.0.1", uport), ignore_dgram, NULL, 0, NULL),
        EADDRINUSE);
    /* Any negative fd: errno is left as it was, whatever it is. */
    errno = EMFILE;
    cr_assert_null(gr_server_new(-1, reply_then_return, NULL, NULL));
    cr_assert_eq(errno, EMFILE);
    errno = ENFILE;
    cr_assert_null(gr_datagram_server_new(-1, ignore_dgram, NULL, 0, NULL));
    cr_assert_eq(errno, ENFILE);
    gr_close(l);
    gr_close(u);
}

/* The server owns fd from the call on: a creation that fails closes it. */
Test(server, new_closes_fd_on_failure, .timeout = 10)
{
    gr_server_opts small = {.stack_size = GR_STACK_MIN - 1}, big = {.stack_size = GR_STACK_MAX + 1};
    int fd;

    fd = loopback_listen();
    assert_null_errno(gr_server_new(fd, NULL, NULL, NULL), EINVAL);
    assert_closed(fd);
    fd = loopback_listen();
    assert_null_errno(gr_server_new(fd, reply_then_return, NULL, &small), EINVAL);
    assert_closed(fd);
    fd = loopback_listen();
    assert_null_errno(gr_server_new(fd, reply_then_return, NULL, &big), EINVAL);
    assert_closed(fd);
    fd = gr_udp_bind("127.0.0.1", 0);
    assert_null_errno(gr_datagram_server_new(fd, NULL, NULL, 0, NULL), EINVAL);
    assert_closed(fd);
    fd = gr_udp_bind("127.0.0.1", 0);
    assert_null_errno(gr_datagram_server_new(fd, ignore_dgram, NULL, 0, &big), EINVAL);
    assert_closed(fd);
}

static gr_server *serve_me;

static void *serves(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)gr_server_serve(serve_me);
}

static void *serve_in_caller(void *arg)
{
    int l = loopback_listen(), c;
    char buf[4];
    void *r;
    gr_t g;

    (void)arg;
    serve_me = gr_server_new(l, reply_then_return, NULL, NULL);
    g = gr_spawn(serves, NULL);
    c = loopback_connect(gr_local_port(l));
    cr_assert_eq(gr_write(c, "abc", 3, -1), 3);
    cr_assert_eq(gr_read_exact(c, buf, 3, NULL, gr_now() + 5000), 0);
    cr_assert_eq(gr_server_stop(serve_me, gr_now() + 1000), 0);
    cr_assert_eq(gr_join(g, &r, gr_now() + 1000), 0);
    cr_assert_eq((intptr_t)r, 0, "serve returns 0 once stopped");
    cr_assert_eq(gr_server_free(serve_me), 0);
    gr_close(c);

    /* A killed serve returns ECANCELED; the server can still be stopped. */
    serve_me = gr_server_new(loopback_listen(), reply_then_return, NULL, NULL);
    g = gr_spawn(serves, NULL);
    gr_yield();
    gr_kill(g);
    cr_assert_eq(gr_join(g, &r, gr_now() + 1000), 0);
    cr_assert_eq((intptr_t)r, -1);
    cr_assert_eq(gr_server_stop(serve_me, gr_now() + 1000), 0);
    cr_assert_eq(gr_server_free(serve_me), 0);
    return NULL;
}

Test(server, serve_in_the_calling_thread, .timeout = 20)
{
    run_main(serve_in_caller, NULL);
}

/* ---------------------------------------------------------------- pool */

static int running, most;

static void counted(int fd, const gr_addr *peer, void *arg)
{
    (void)peer;
    (void)arg;
    running++;
    if (running > most)
        most = running;
    gr_sleep(gr_now() + 2); /* overlap with the others, if any may run */
    gr_write(fd, "x", 1, -1);
    running--;
}

static void *pool_limit(void *arg)
{
    gr_server_opts o = {.pool = 3, .stack_size = 32768};
    int l = loopback_listen(), c[20];
    gr_server *s = gr_server_new(l, counted, NULL, &o);

    (void)arg;
    /* Every connection is queued before the server starts: it could take
     * them all at once, but may run only 3 handlers. */
    for (int i = 0; i < 20; i++)
        c[i] = loopback_connect(gr_local_port(l));
    cr_assert_eq(gr_server_start(s), 0);
    for (int i = 0; i < 20; i++) {
        char x;

        cr_assert_eq(gr_read(c[i], &x, 1, gr_now() + 5000), 1);
        cr_assert_leq(stats(s).active, 3);
        gr_close(c[i]);
    }
    WAIT_FOR(stats(s).active == 0);
    cr_assert_eq(most, 3);
    cr_assert_eq(stats(s).accepted, 20);
    cr_assert_eq(gr_server_stop(s, gr_now() + 1000), 0);
    gr_server_free(s);
    return NULL;
}

Test(server, pool_limit_is_never_exceeded, .timeout = 20)
{
    run_main(pool_limit, NULL);
}

/* ---------------------------------------------------------------- stop */

static int quick_ended, stubborn_errno, handlers_ready;

static void quick_or_stubborn(int fd, const gr_addr *peer, void *arg)
{
    char kind, more;

    (void)peer;
    (void)arg;
    cr_assert_eq(gr_read(fd, &kind, 1, gr_now() + 5000), 1);
    handlers_ready++;
    if (kind == 'q') { /* finishes when its client sends one more byte */
        cr_assert_eq(gr_read(fd, &more, 1, gr_now() + 5000), 1);
        quick_ended = 1;
        return;
    }
    errno = 0;
    cr_assert_eq(gr_read(fd, &more, 1, -1), -1); /* never: it is killed */
    stubborn_errno = errno;
}

static void *send_late(void *arg)
{
    int fd = (int)(intptr_t)arg;

    gr_yield(); /* once the stop is under way */
    cr_assert_eq(gr_write(fd, "!", 1, -1), 1);
    return NULL;
}

static void *graceful_stop(void *arg)
{
    int l = loopback_listen(), q, st;
    gr_server *s = gr_server_new(l, quick_or_stubborn, NULL, NULL);
    int64_t t0;
    char c;
    gr_t late;

    (void)arg;
    gr_server_start(s);
    q = loopback_connect(gr_local_port(l));
    st = loopback_connect(gr_local_port(l));
    gr_write(q, "q", 1, -1);
    gr_write(st, "s", 1, -1);
    WAIT_FOR(handlers_ready == 2);
    late = gr_spawn(send_late, (void *)(intptr_t)q);
    t0 = gr_now_update();
    assert_fails(gr_server_stop(s, gr_now() + 200), ETIMEDOUT);
    cr_assert_geq(gr_now_update() - t0, 199);
    cr_assert_eq(quick_ended, 1);
    cr_assert_eq(stubborn_errno, ECANCELED);
    cr_assert_eq(stats(s).active, 0);
    cr_assert_eq(gr_read(q, &c, 1, gr_now() + 1000), 0);
    cr_assert_eq(gr_read(st, &c, 1, gr_now() + 1000), 0);
    cr_assert_eq(gr_server_free(s), 0);
    gr_join(late, NULL, -1);
    gr_close(q);
    gr_close(st);
    return NULL;
}

Test(server, graceful_stop_waits_then_kills, .timeout = 20)
{
    run_main(graceful_stop, NULL);
}

static gr_server *stopped_by_handler;

static void stops_its_server(int fd, const gr_addr *peer, void *arg)
{
    (void)fd;
    (void)peer;
    (void)arg;
    /* The handler itself is neither waited for nor killed. */
    cr_assert_eq(gr_server_stop(stopped_by_handler, gr_now() + 1000), 0);
    cr_assert_eq(gr_write(fd, "bye", 3, -1), 3);
}

static void *stop_from_handler(void *arg)
{
    int l = loopback_listen(), c;
    char buf[4];

    (void)arg;
    stopped_by_handler = gr_server_new(l, stops_its_server, NULL, NULL);
    gr_server_start(stopped_by_handler);
    c = loopback_connect(gr_local_port(l));
    cr_assert_eq(gr_read_exact(c, buf, 3, NULL, gr_now() + 5000), 0);
    cr_assert_eq(gr_read(c, buf, 1, gr_now() + 5000), 0);
    WAIT_FOR(gr_server_free(stopped_by_handler) == 0);
    gr_close(c);
    return NULL;
}

Test(server, a_handler_may_stop_its_server, .timeout = 20)
{
    run_main(stop_from_handler, NULL);
}

/* ------------------------------------------------------------ datagrams */

static int dg_running, dg_most, dg_next, dg_in_order = 1;

static void dgram_echo(int fd, const void *data, size_t len, const gr_addr *peer, void *arg)
{
    char copy[64];
    int seq;

    (void)arg;
    cr_assert_lt(len, sizeof copy);
    memcpy(copy, data, len);
    copy[len] = '\0';
    seq = atoi(copy);
    if (seq != dg_next++)
        dg_in_order = 0;
    dg_running++;
    if (dg_running > dg_most)
        dg_most = dg_running;
    gr_sleep(gr_now() + 1);
    /* The buffer is still this datagram's, whatever arrived since. */
    cr_assert_eq(memcmp(copy, data, len), 0);
    dg_running--;
    cr_assert_eq(gr_sendto(fd, data, len, 0, &peer->u.sa, peer->len, -1), (ssize_t)len);
}

static void dgram_round(size_t pool)
{
    int fd = gr_udp_bind("127.0.0.1", 0), c = gr_udp_bind("127.0.0.1", 0);
    gr_server_opts o = {.pool = pool};
    gr_server *s = gr_datagram_server_new(fd, dgram_echo, NULL, 64, &o);
    int seen[50] = {0};
    gr_addr to;

    cr_assert_not_null(s);
    dg_running = dg_most = dg_next = 0;
    dg_in_order = 1;
    gr_addr_ip(&to, "127.0.0.1", gr_local_port(fd));
    for (int i = 0; i < 50; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof msg, "%d", i);

        cr_assert_eq(gr_sendto(c, msg, (size_t)n, 0, &to.u.sa, to.len, -1), n);
    }
    cr_assert_eq(gr_server_start(s), 0);
    for (int i = 0; i < 50; i++) {
        char msg[16] = {0};

        cr_assert_gt(gr_recv(c, msg, sizeof msg - 1, 0, gr_now() + 5000), 0);
        seen[atoi(msg)]++;
    }
    for (int i = 0; i < 50; i++)
        cr_assert_eq(seen[i], 1, "datagram %d echoed %d times", i, seen[i]);
    cr_assert_eq(stats(s).accepted, 50);
    cr_assert_eq(gr_server_stop(s, gr_now() + 1000), 0);
    cr_assert_eq(gr_server_free(s), 0);
    gr_close(c);
}

static void *datagrams(void *arg)
{
    (void)arg;
    dgram_round(0); /* one at a time, in arrival order */
    cr_assert_eq(dg_most, 1);
    cr_assert(dg_in_order);
    dgram_round(4); /* up to 4 at once, each with its own copy */
    cr_assert_eq(dg_most, 4);
    return NULL;
}

Test(server, datagram_server_echoes, .timeout = 20)
{
    run_main(datagrams, NULL);
}

/* --------------------------------------------------------------- EMFILE */

typedef struct emfile_report {
    uint64_t accepted, fd_limit;
    int64_t cpu_ms;
} emfile_report;

static int ctl[2]; /* test process <-> server child */

static void echo_handler(int fd, const gr_addr *peer, void *arg)
{
    char buf[256];
    ssize_t n;

    (void)peer;
    (void)arg;
    while ((n = gr_read(fd, buf, sizeof buf, -1)) > 0)
        if (gr_write_all(fd, buf, (size_t)n, NULL, -1) != 0)
            break;
}

static int64_t cpu_ms(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static int open_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n = fd + 1;
    return n;
}

/* The child: a server with 10 descriptors to spare, answering the test's
 * requests on ctl: 'm' measures CPU time over 1 s and reports, 's' stops. */
static void *emfile_child(void *arg)
{
    int l = loopback_listen(), port = gr_local_port(l);
    gr_server *s = gr_server_new(l, echo_handler, NULL, NULL);
    struct rlimit rl;
    char cmd;

    (void)arg;
    gr_server_start(s);
    rl.rlim_cur = rl.rlim_max = (rlim_t)open_fds() + 10;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    gr_write_all(ctl[1], &port, sizeof port, NULL, -1);
    while (gr_read(ctl[1], &cmd, 1, -1) == 1 && cmd == 'm') {
        int64_t t0 = cpu_ms();
        emfile_report r;

        gr_sleep(gr_now() + 1000);
        r = (emfile_report){stats(s).accepted, stats(s).fd_limit, cpu_ms() - t0};
        gr_write_all(ctl[1], &r, sizeof r, NULL, -1);
    }
    gr_server_stop(s, gr_now() + 1000);
    gr_server_free(s);
    return NULL;
}

static emfile_report measure(void)
{
    emfile_report r;

    cr_assert_eq(gr_write(ctl[0], "m", 1, -1), 1);
    cr_assert_eq(gr_read_exact(ctl[0], &r, sizeof r, NULL, gr_now() + 5000), 0);
    return r;
}

static void ping(int fd, int64_t deadline)
{
    char buf[4];

    cr_assert_eq(gr_write_all(fd, "ping", 4, NULL, -1), 0);
    cr_assert_eq(gr_read_exact(fd, buf, 4, NULL, deadline), 0, "no echo: %s", strerror(errno));
}

static void *emfile_parent(void *arg)
{
    int port, c[30];
    emfile_report r;
    uint64_t k;

    (void)arg;
    cr_assert_eq(gr_read_exact(ctl[0], &port, sizeof port, NULL, gr_now() + 5000), 0);
    for (int i = 0; i < 30; i++)
        c[i] = loopback_connect(port); /* completes in the kernel's accept queue */
    r = measure();
    k = r.accepted;
    cr_assert(k > 0 && k < 30, "accepted %lu", (unsigned long)k);
    cr_assert_geq(r.fd_limit, 1);
    cr_assert_lt(r.cpu_ms, 200, "the server spun: %ld ms of CPU in 1 s", (long)r.cpu_ms);
    for (uint64_t i = 0; i < k; i++) /* still served */
        ping(c[i], gr_now() + 5000);
    for (uint64_t i = 0; i < 3; i++) /* freeing 3 descriptors... */
        gr_close(c[i]);
    for (uint64_t i = k; i < k + 3; i++) /* ...lets 3 more in */
        ping(c[i], gr_now() + 5000);
    cr_assert_eq(measure().accepted, k + 3);
    cr_assert_eq(gr_write(ctl[0], "s", 1, -1), 1);
    for (int i = 3; i < 30; i++)
        gr_close(c[i]);
    return NULL;
}

Test(server, emfile_backs_off_logs_once_and_recovers, .timeout = 30)
{
    int err[2], status, logs = 0;
    char text[4096], *p = text;
    ssize_t n, len = 0;
    pid_t pid;

    unix_pair(ctl);
    cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
    if ((pid = fork()) == 0) {
        dup2(err[1], 2);
        close(ctl[0]);
        gr_main(emfile_child, NULL, NULL);
        _exit(0);
    }
    close(err[1]);
    close(ctl[1]);
    run_main(emfile_parent, NULL);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %x", status);
    while ((n = read(err[0], text + len, sizeof text - 1 - (size_t)len)) > 0)
        len += n;
    text[len] = '\0';
    while ((p = strstr(p, "server: accept"))) {
        logs++;
        p++;
    }
    cr_assert_eq(logs, 1, "stderr of the server:\n%s", text);
}

/* ------------------------------------------- 1,000 clients x 1 MiB echo */

#define CLIENTS 1000
#define PER_CLIENT (1024 * 1024)
#define CHUNK 32768

static int echo_port, clients_ok;

typedef struct stream {
    uint64_t state, sum;
} stream;

static void stream_init(stream *s, int id)
{
    s->state = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
    s->sum = 14695981039346656037ull;
}

/* The random bytes a client sends, regenerated to check what comes back. */
static void stream_next(stream *s, unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0) {
            s->state ^= s->state << 13;
            s->state ^= s->state >> 7;
            s->state ^= s->state << 17;
        }
        p[i] = (unsigned char)(s->state >> (8 * (i % 8)));
    }
}

static void checksum(stream *s, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s->sum = (s->sum ^ p[i]) * 1099511628211ull;
}

typedef struct echo_client {
    int fd, id;
    uint64_t sent_sum;
} echo_client;

static void *client_writer(void *arg)
{
    echo_client *ec = arg;
    unsigned char buf[CHUNK];
    stream s;

    stream_init(&s, ec->id);
    for (size_t off = 0; off < PER_CLIENT; off += CHUNK) {
        stream_next(&s, buf, CHUNK);
        checksum(&s, buf, CHUNK);
        cr_assert_eq(gr_write_all(ec->fd, buf, CHUNK, NULL, gr_now() + 60000), 0, "client %d: %s",
                     ec->id, strerror(errno));
    }
    ec->sent_sum = s.sum;
    shutdown(ec->fd, SHUT_WR);
    return NULL;
}

static void *echo_client_main(void *arg)
{
    echo_client ec = {.id = (int)(intptr_t)arg};
    unsigned char got[CHUNK], want[CHUNK];
    size_t total = 0, have = 0;
    stream expect, sum;
    ssize_t n;
    gr_t w;

    ec.fd = loopback_connect(echo_port);
    stream_init(&expect, ec.id);
    stream_init(&sum, ec.id);
    w = gr_spawn(client_writer, &ec);
    while ((n = gr_read(ec.fd, got + have, CHUNK - have, gr_now() + 60000)) > 0) {
        have += (size_t)n;
        if (have < CHUNK)
            continue;
        stream_next(&expect, want, CHUNK);
        cr_assert_eq(memcmp(got, want, CHUNK), 0, "client %d: bytes differ", ec.id);
        checksum(&sum, got, CHUNK);
        total += have;
        have = 0;
    }
    cr_assert_eq(n, 0, "client %d: %s", ec.id, strerror(errno));
    cr_assert_eq(gr_join(w, NULL, -1), 0);
    cr_assert_eq(total + have, PER_CLIENT);
    cr_assert_eq(sum.sum, ec.sent_sum, "client %d: checksum", ec.id);
    gr_close(ec.fd);
    clients_ok++;
    return NULL;
}

static void *many_clients(void *arg)
{
    gr_t g[CLIENTS];

    (void)arg;
    for (int i = 0; i < CLIENTS; i++)
        g[i] = gr_spawn(echo_client_main, (void *)(intptr_t)i);
    for (int i = 0; i < CLIENTS; i++)
        gr_join(g[i], NULL, -1);
    cr_assert_eq(clients_ok, CLIENTS);
    return NULL;
}

/* Start build/bin/echo-server (beside this test) on a free port. *out is
 * its standard output, to keep open while it runs. */
static pid_t start_echo_server(int *port, FILE **out_f)
{
    char self[PATH_MAX], path[PATH_MAX + 16], line[256];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    int out[2];
    FILE *f;
    pid_t pid;

    cr_assert_gt(n, 0);
    self[n] = '\0';
    snprintf(path, sizeof path, "%s/echo-server", dirname(self));
    cr_assert_eq(access(path, X_OK), 0, "%s is not built", path);
    cr_assert_eq(pipe(out), 0);
    if ((pid = fork()) == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(path, path, "--port", "0", "--host", "127.0.0.1", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    f = fdopen(out[0], "r");
    cr_assert_not_null(fgets(line, sizeof line, f), "echo-server printed nothing");
    cr_assert_eq(sscanf(line, "listening on 127.0.0.1:%d", port), 1, "%s", line);
    *out_f = f;
    return pid;
}

Test(server, thousand_clients_echo_a_mib_each_through_echo_server, .timeout = 120)
{
    int status;
    FILE *out;
    pid_t pid = start_echo_server(&echo_port, &out);

    run_main(many_clients, NULL);
    kill(pid, SIGTERM);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    fclose(out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "echo-server status %x", status);
}
