/* The prefork supervisor (src/os/supervisor.c, docs/supervisor.md), as a
 * program meets it: the test process forks a master running gr_sup_run on
 * a real listening socket; its workers serve HTTP with gr_http_server and
 * report what they do (start, ready, drain) as lines on a pipe the test
 * reads, stamped with the monotonic clock that every process shares. The
 * test is the workers' subreaper, so it sees them end even once their
 * master is gone. Signals are sent as an operator would: kill(2). */
#include "common.h"

#include <fcntl.h>
#include <grove/http.h>
#include <grove/supervisor.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef GROVE_TEST_SANITIZED
#include <sanitizer/lsan_interface.h>
#endif

#if !defined(GROVE_LOAD_BIN) || !defined(SEED_SERVER_BIN)
#error "GROVE_LOAD_BIN and SEED_SERVER_BIN are set by tests/CMakeLists.txt"
#endif

#ifdef GROVE_TEST_SANITIZED
#define SLOW 3 /* the sanitized build's processes start and serve slower */
#else
#define SLOW 1
#endif

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ workers */

enum { W_SERVE, W_EXIT_AT_BOOT, W_STUCK_IN_SLOT_1 };

/* What the workers do: set before the master is forked, so every process
 * has its copy. */
static struct {
    int mode;
    int events; /* the pipe's write end */
    int64_t ready_delay_ms;
} cfg;

static void report(gr_sup_worker *w, const char *what)
{
    char line[128];
    int n = snprintf(line, sizeof line, "%s %d %d %lld\n", what, gr_sup_worker_id(w), (int)getpid(),
                     (long long)mono_ms());

    /* One write under PIPE_BUF: lines of several workers never mix. (No
     * cr_assert here: this is a worker process, not the test's.) */
    if (write(cfg.events, line, (size_t)n) != n)
        abort();
}

/* "/slow" answers after 300 ms: a request in flight during a stop. */
static int handler(gr_http_request *req, void *arg)
{
    static const gr_http_header h[] = {{"Content-Type", "text/plain"}};

    (void)arg;
    if (!strcmp(req->path, "/slow"))
        gr_sleep(gr_now_update() + 300);
    return gr_http_respond(req, 200, h, 1, "hello\n", 6, -1);
}

static int worker(gr_sup_worker *w, void *arg)
{
    gr_http_server *s;
    int64_t end, now;

    (void)arg;
    report(w, "start");
    if (cfg.mode == W_EXIT_AT_BOOT)
        return 3;
    s = gr_http_server_new(gr_sup_worker_fd(w, 0), handler, NULL, NULL);
    if (!s || gr_http_server_start(s) != 0)
        return 4;
    if (cfg.ready_delay_ms)
        gr_sleep(gr_now_update() + cfg.ready_delay_ms);
    /* Reported first: the master hears of it only afterwards, so a drain
     * it orders in return is stamped later. */
    report(w, "ready");
    gr_sup_worker_ready(w);
    if (cfg.mode == W_STUCK_IN_SLOT_1 && gr_sup_worker_id(w) == 1)
        for (;;) /* deaf to the drain: only the orphan's own exit ends it */
            sleep(10);
    gr_sup_worker_wait(w, &end, -1);
    report(w, "drain");
    now = gr_now_update();
    gr_http_server_drain(s, now + 1000 < end ? now + 1000 : end, end);
    gr_http_server_free(s);
    return 0;
}

/* ------------------------------------------------------------- master */

typedef struct harness {
    pid_t master;
    int port;
    int events; /* the pipe's read end */
    char buf[8192];
    size_t len;
    char log[64]; /* the master's log */
} harness;

static gr_sup_opts sup_opts;

static void *master_main(void *arg)
{
    int *fd = arg;

    sup_opts.fds = fd;
    sup_opts.nfds = 1;
    return gr_sup_run(worker, NULL, &sup_opts) == 0 ? NULL : (void *)1;
}

/* Fork a master with W workers in the given mode; the options not set
 * here are sup_opts' as the test left them. */
static void start(harness *h, size_t workers, int mode)
{
    int p[2], fd;

    memset(h, 0, sizeof *h);
    snprintf(h->log, sizeof h->log, "/tmp/grove-sup-log-%d", (int)getpid());
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    cr_assert_eq(pipe(p), 0);
    cfg.mode = mode;
    cfg.events = p[1];
    sup_opts.workers = workers;
    fd = gr_tcp_listen("127.0.0.1", 0, 0);
    cr_assert_geq(fd, 0, "listen: %s", strerror(errno));
    h->port = gr_local_port(fd);
    h->master = fork();
    cr_assert_geq(h->master, 0);
    if (h->master == 0) {
        void *res = NULL;

        /* A test that fails leaves no master behind (its workers follow
         * it within a second). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(1);
        close(p[0]);
        if (!(sup_opts.log = fopen(h->log, "w")))
            _exit(1);
        /* What a new binary of an upgrade prints goes there too. */
        fflush(stdout);
        dup2(fileno(sup_opts.log), 1);
        int ok = gr_main(master_main, &fd, &res) == 0 && !res;

#ifdef GROVE_TEST_SANITIZED
        /* _exit skips LeakSanitizer's own check: the master's memory is
         * checked here (a report fails the test, see CMakeLists.txt). */
        fclose(sup_opts.log);
        __lsan_do_leak_check();
#endif
        _exit(ok ? 0 : 1);
    }
    /* Only the master holds the socket: a connection after its end is
     * refused, not queued. */
    close(fd);
    close(p[1]);
    h->events = p[0];
}

typedef struct event {
    char what[16];
    int id;
    pid_t pid;
    int64_t at;
} event;

/* The next event line, waiting until deadline (mono_ms): 0, or -1 at the
 * deadline or the end of the pipe. */
static int next_event(harness *h, event *e, int64_t deadline)
{
    for (;;) {
        char *nl = memchr(h->buf, '\n', h->len);
        struct pollfd pfd = {h->events, POLLIN, 0};
        int64_t left = deadline - mono_ms();
        ssize_t n;

        if (nl) {
            long long at;
            int pid;

            *nl = 0;
            cr_assert_eq(sscanf(h->buf, "%15s %d %d %lld", e->what, &e->id, &pid, &at), 4);
            e->pid = pid;
            e->at = at;
            h->len -= (size_t)(nl + 1 - h->buf);
            memmove(h->buf, nl + 1, h->len);
            return 0;
        }
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        n = read(h->events, h->buf + h->len, sizeof h->buf - h->len);
        if (n <= 0)
            return -1;
        h->len += (size_t)n;
    }
}

/* Wait for an event named what (others are skipped) within ms. */
static event expect(harness *h, const char *what, int64_t ms)
{
    int64_t deadline = mono_ms() + ms * SLOW;
    event e;

    do
        cr_assert_eq(next_event(h, &e, deadline), 0, "no '%s' event within %lld ms", what,
                     (long long)ms * SLOW);
    while (strcmp(e.what, what));
    return e;
}

/* Wait until the master's log has a line with text, within ms. */
static void expect_log(harness *h, const char *text, int64_t ms)
{
    int64_t deadline = mono_ms() + ms * SLOW;
    char all[65536];

    for (;;) {
        int fd = open(h->log, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, all, sizeof all - 1) : -1;

        if (fd >= 0)
            close(fd);
        all[n > 0 ? n : 0] = 0;
        if (strstr(all, text))
            return;
        cr_assert_lt(mono_ms(), deadline, "the master never said '%s':\n%s", text, all);
        usleep(5000);
    }
}

/* SIGTERM the master; it must exit 0 within ms. */
static void stop(harness *h, int64_t ms)
{
    int64_t t0 = mono_ms();
    int status;

    cr_assert_eq(kill(h->master, SIGTERM), 0);
    for (;;) {
        pid_t r = waitpid(h->master, &status, WNOHANG);

        cr_assert_geq(r, 0);
        if (r == h->master)
            break;
        cr_assert_lt(mono_ms() - t0, ms * SLOW, "the master still runs after SIGTERM");
        usleep(2000);
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "master status %#x", status);
    /* Reap orphans, if any (there should be none). */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    close(h->events);
    unlink(h->log);
}

/* ---------------------------------------------------------- an HTTP GET */

static int connect_to(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {5 * SLOW, 0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_geq(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_get(int fd, const char *path)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);

    cr_assert_eq(write(fd, req, (size_t)n), n);
}

/* Read one response (its body is "hello\n"); returns its head. */
static void read_response(int fd, char *out, size_t cap)
{
    size_t len = 0;

    for (;;) {
        ssize_t n = read(fd, out + len, cap - 1 - len);

        cr_assert_gt(n, 0, "the response was cut short: %s", n < 0 ? strerror(errno) : "EOF");
        len += (size_t)n;
        out[len] = 0;
        if (strstr(out, "\r\n\r\nhello\n"))
            break;
    }
    cr_assert(!strncmp(out, "HTTP/1.1 200 ", 13), "%s", out);
}

/* One GET on a new connection, answered with 200 "hello". */
static void get_ok(int port)
{
    char head[1024];
    int fd = connect_to(port);

    cr_assert_geq(fd, 0, "connect: %s", strerror(errno));
    send_get(fd, "/");
    read_response(fd, head, sizeof head);
    close(fd);
}

/* ---------------------------------------------------------------- tests */

TestSuite(supervisor, .timeout = 60);

Test(supervisor, bad_arguments)
{
    cr_assert_eq(gr_sup_worker_fd(NULL, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(gr_sup_worker_ready(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(gr_sup_worker_id(NULL), -1);
    cr_assert_eq(gr_sup_worker_wait(NULL, NULL, 0), -1);
    cr_assert_eq(errno, EINVAL);
}

static void *bad_args_main(void *arg)
{
    int fd = 1000;
    gr_sup_opts closed = {.fds = &fd, .nfds = 1};
    gr_sup_opts many = {.workers = 5, .max_workers = 4};
    gr_sup_opts neg = {.drain_ms = -1};

    (void)arg;
    cr_assert_eq(gr_sup_run(NULL, NULL, NULL), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(gr_sup_run(worker, NULL, &closed), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(gr_sup_run(worker, NULL, &many), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(gr_sup_run(worker, NULL, &neg), -1);
    cr_assert_eq(errno, EINVAL);
    return NULL;
}

Test(supervisor, bad_options)
{
    run_main(bad_args_main, NULL);
}

/* A worker killed with SIGKILL is started again at once. */
Test(supervisor, respawn_after_sigkill)
{
    harness h;
    event a, b, e;
    int64_t t0;

    sup_opts = (gr_sup_opts){.boot_ms = 50};
    start(&h, 2, W_SERVE);
    a = expect(&h, "ready", 5000);
    b = expect(&h, "ready", 5000);
    cr_assert_neq(a.id, b.id);
    /* Past boot_ms: a death now is not a failure at boot. */
    usleep(60 * 1000);
    t0 = mono_ms();
    cr_assert_eq(kill(a.pid, SIGKILL), 0);
    e = expect(&h, "start", 2000);
    cr_assert_eq(e.id, a.id, "the new worker takes the dead one's slot");
    cr_assert_neq(e.pid, a.pid);
    e = expect(&h, "ready", 2000);
    fprintf(stderr, "respawn_after_sigkill: the new worker accepted %lld ms after the kill\n",
            (long long)(e.at - t0));
    cr_assert_lt(e.at - t0, 1000 * SLOW);
    get_ok(h.port); /* and the service answers */
    stop(&h, 5000);
}

/* A worker that exits at boot is started again after 50, 100, 200, 400,
 * 400 ms (back-off 50 ms doubling, capped at 400). */
Test(supervisor, backoff_at_boot)
{
    static const int64_t want[] = {50, 100, 200, 400, 400};
    harness h;
    event prev, e;

    sup_opts = (gr_sup_opts){.backoff_ms = 50, .backoff_max_ms = 400};
    start(&h, 1, W_EXIT_AT_BOOT);
    prev = expect(&h, "start", 5000);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        int64_t gap;

        e = expect(&h, "start", 2000);
        gap = e.at - prev.at;
        fprintf(stderr, "backoff_at_boot: restart %zu after %lld ms (back-off %lld ms)\n", i + 1,
                (long long)gap, (long long)want[i]);
        cr_assert_geq(gap, want[i], "restart %zu after %lld ms, before its back-off", i + 1,
                      (long long)gap);
        cr_assert_lt(gap, want[i] + 250 * SLOW, "restart %zu after %lld ms", i + 1, (long long)gap);
        prev = e;
    }
    stop(&h, 5000);
}

/* SIGTERM: a request in flight finishes; an idle keep-alive connection
 * gets one more answer, with Connection: close; the master exits 0, its
 * workers before it, and the port then refuses. */
Test(supervisor, sigterm_drains_and_exits_0)
{
    harness h;
    char head[1024];
    int busy, kept, fd;

    sup_opts = (gr_sup_opts){.drain_ms = 3000};
    start(&h, 1, W_SERVE);
    expect(&h, "ready", 5000);
    cr_assert_geq(kept = connect_to(h.port), 0);
    send_get(kept, "/");
    read_response(kept, head, sizeof head);
    cr_assert_null(strcasestr(head, "Connection: close"));
    cr_assert_geq(busy = connect_to(h.port), 0);
    send_get(busy, "/slow");
    usleep(50 * 1000); /* let the worker read it: it is in flight */
    cr_assert_eq(kill(h.master, SIGTERM), 0);
    expect(&h, "drain", 2000);
    /* The idle connection's next request, after the drain began. */
    send_get(kept, "/");
    read_response(kept, head, sizeof head);
    cr_assert_not_null(strcasestr(head, "Connection: close"), "%s", head);
    read_response(busy, head, sizeof head);
    close(busy);
    close(kept);
    stop(&h, 5000);
    fd = connect_to(h.port);
    cr_assert_lt(fd, 0, "the port still accepts after the master's end");
}

/* The master killed with SIGKILL: its workers are gone within 1 s, even
 * one deaf to the drain (slot 1 never waits for it). */
Test(supervisor, master_killed_workers_exit)
{
    harness h;
    event a, b;
    int pfd[2];
    int64_t t0;

    sup_opts = (gr_sup_opts){0};
    start(&h, 2, W_STUCK_IN_SLOT_1);
    a = expect(&h, "ready", 5000);
    b = expect(&h, "ready", 5000);
    cr_assert_geq(pfd[0] = pidfd_open(a.pid, 0), 0);
    cr_assert_geq(pfd[1] = pidfd_open(b.pid, 0), 0);
    t0 = mono_ms();
    cr_assert_eq(kill(h.master, SIGKILL), 0);
    cr_assert_eq(waitpid(h.master, NULL, 0), h.master);
    for (int i = 0; i < 2; i++) {
        struct pollfd p = {pfd[i], POLLIN, 0};
        int64_t took;

        cr_assert_eq(poll(&p, 1, 3000), 1, "a worker outlived its master by 3 s");
        took = mono_ms() - t0;
        fprintf(stderr, "master_killed_workers_exit: worker %d gone %lld ms after the master\n", i,
                (long long)took);
        cr_assert_lt(took, 1000 + 100 * (SLOW - 1), "worker %d took %lld ms", i, (long long)took);
        close(pfd[i]);
    }
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    close(h.events);
    unlink(h.log);
}

/* SIGTTIN adds a worker, SIGTTOU drains one. */
Test(supervisor, ttin_ttou_change_the_count)
{
    harness h;
    event e;

    sup_opts = (gr_sup_opts){0};
    start(&h, 1, W_SERVE);
    expect(&h, "ready", 5000);
    cr_assert_eq(kill(h.master, SIGTTIN), 0);
    e = expect(&h, "ready", 5000);
    cr_assert_eq(e.id, 1);
    cr_assert_eq(kill(h.master, SIGTTIN), 0);
    e = expect(&h, "ready", 5000);
    cr_assert_eq(e.id, 2);
    cr_assert_eq(kill(h.master, SIGTTOU), 0);
    e = expect(&h, "drain", 5000);
    cr_assert_eq(e.id, 2, "the last slot goes");
    cr_assert_eq(kill(h.master, SIGTTOU), 0);
    e = expect(&h, "drain", 5000);
    cr_assert_eq(e.id, 1);
    /* Never below one. */
    cr_assert_eq(kill(h.master, SIGTTOU), 0);
    expect_log(&h, "SIGTTOU: already 1 worker, the minimum", 5000);
    cr_assert_eq(kill(h.master, SIGTTIN), 0);
    e = expect(&h, "ready", 5000);
    cr_assert_eq(e.id, 1, "SIGTTOU at one worker removed it");
    stop(&h, 5000);
}

/* -------------------------------------------------- reload under load */

/* grove-load for secs seconds at rate requests/s, its JSON report in
 * out; returns its pid. */
static pid_t load(int port, int keepalive, int rate, int secs, const char *out)
{
    char url[64], r[16], d[16];
    pid_t pid;

    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(r, sizeof r, "%d", rate);
    snprintf(d, sizeof d, "%d", secs);
    if ((pid = fork()) == 0) {
        const char *argv[] = {GROVE_LOAD_BIN,
                              "-c",
                              "20",
                              "-w",
                              "1",
                              "--rate",
                              r,
                              "-d",
                              d,
                              "--json",
                              "--no-progress",
                              keepalive ? "-k" : url,
                              keepalive ? url : NULL,
                              NULL};
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        dup2(fd, 1);
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    cr_assert_gt(pid, 0);
    return pid;
}

static long long json_number(const char *json, const char *key)
{
    const char *p = strstr(json, key);

    cr_assert_not_null(p, "no %s in %s", key, json);
    return strtoll(p + strlen(key), NULL, 10);
}

static void check_load(pid_t pid, const char *out, const char *what)
{
    char json[8192];
    int status, fd;
    ssize_t n;

    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "grove-load (%s): status %#x", what,
              status);
    cr_assert_geq(fd = open(out, O_RDONLY), 0);
    n = read(fd, json, sizeof json - 1);
    close(fd);
    unlink(out);
    cr_assert_gt(n, 0);
    json[n] = 0;
    fprintf(stderr, "%s: %lld requests, %lld failed\n", what, json_number(json, "\"completed\": "),
            json_number(json, "\"failed\": {\"total\": "));
    cr_assert_eq(json_number(json, "\"failed\": {\"total\": "), 0, "%s: %s", what, json);
    cr_assert_gt(json_number(json, "\"completed\": "), 100, "%s: %s", what, json);
}

/* Three SIGHUPs under a steady load, with keep-alive and without: no
 * request fails, and an old worker is drained only once its slot's new
 * worker accepts. */
Test(supervisor, reload_under_load, .timeout = 120)
{
    harness h;
    pid_t ka, nka;
    char out_ka[64], out_nka[64];
    int64_t ready_at[2] = {0, 0};
    pid_t cur[2] = {0, 0};
    int drains = 0;
    event e;

    sup_opts = (gr_sup_opts){.drain_ms = 5000};
    cfg.ready_delay_ms = 100; /* a new worker is slow to say it accepts */
    start(&h, 2, W_SERVE);
    for (int i = 0; i < 2; i++) {
        e = expect(&h, "ready", 5000);
        cur[e.id] = e.pid;
    }
    snprintf(out_ka, sizeof out_ka, "/tmp/grove-sup-ka-%d.json", (int)getpid());
    snprintf(out_nka, sizeof out_nka, "/tmp/grove-sup-nka-%d.json", (int)getpid());
    ka = load(h.port, 1, 200, 5, out_ka);
    nka = load(h.port, 0, 100, 5, out_nka);
    for (int round = 0; round < 3; round++) {
        usleep(1000 * 1000);
        cr_assert_eq(kill(h.master, SIGHUP), 0);
        /* Two new workers ready, two old ones drained, in some order. */
        for (int ready = 0, drained = 0; ready < 2 || drained < 2;) {
            cr_assert_eq(next_event(&h, &e, mono_ms() + 5000 * SLOW), 0, "reload %d stalled",
                         round);
            if (!strcmp(e.what, "ready")) {
                ready_at[e.id] = e.at;
                cur[e.id] = e.pid;
                ready++;
            } else if (!strcmp(e.what, "drain")) {
                cr_assert_neq(e.pid, cur[e.id], "the new worker of slot %d was drained", e.id);
                cr_assert(ready_at[e.id] && ready_at[e.id] <= e.at,
                          "slot %d's old worker drained before its new one accepted", e.id);
                ready_at[e.id] = 0;
                drained++;
                drains++;
            }
        }
    }
    check_load(ka, out_ka, "reload_under_load: keep-alive");
    check_load(nka, out_nka, "reload_under_load: no keep-alive");
    cr_assert_eq(drains, 6);
    stop(&h, 10000);
}

/* ------------------------------------------------------ binary upgrade */

/* The pid in the new master's "seed-server: ready: ... pid N" line. */
static pid_t new_master_pid(harness *h)
{
    char all[65536], *line;
    int fd = open(h->log, O_RDONLY);
    ssize_t n = read(fd, all, sizeof all - 1);

    close(fd);
    all[n > 0 ? n : 0] = 0;
    line = strstr(all, "seed-server: ready:");
    cr_assert_not_null(line, "the new binary never said it was ready:\n%s", all);
    line = strstr(line, ", pid ");
    cr_assert_not_null(line);
    return (pid_t)atoi(line + 6);
}

/* SIGUSR2 under a steady load, keep-alive and not: a new binary (here
 * seed-server, a different program serving the same port) takes the
 * listening socket over, the old master drains its workers and exits 0,
 * and no request fails. */
Test(supervisor, upgrade_to_a_new_binary, .timeout = 120)
{
    static const char *const argv[] = {
        SEED_SERVER_BIN, "--mode", "grove", "--concurrency", "100", "--port", "0",
        "--workers",     "2",      NULL};
    harness h;
    pid_t ka, nka, old, nu;
    char out_ka[64], out_nka[64], head[8192];
    int status, fd;
    int64_t t0;

    sup_opts = (gr_sup_opts){.drain_ms = 5000, .upgrade_argv = argv};
    cfg.ready_delay_ms = 0;
    start(&h, 2, W_SERVE);
    expect(&h, "ready", 5000);
    expect(&h, "ready", 5000);
    snprintf(out_ka, sizeof out_ka, "/tmp/grove-sup-uka-%d.json", (int)getpid());
    snprintf(out_nka, sizeof out_nka, "/tmp/grove-sup-unka-%d.json", (int)getpid());
    ka = load(h.port, 1, 200, 4, out_ka);
    nka = load(h.port, 0, 100, 4, out_nka);
    usleep(1000 * 1000);
    old = h.master;
    t0 = mono_ms();
    cr_assert_eq(kill(old, SIGUSR2), 0);
    /* The old master goes once the new one's workers are ready. */
    cr_assert_eq(waitpid(old, &status, 0), old);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "old master: %#x", status);
    fprintf(stderr, "upgrade_to_a_new_binary: the old master handed over in %lld ms\n",
            (long long)(mono_ms() - t0));
    nu = new_master_pid(&h);
    cr_assert_neq(nu, old);
    cr_assert_eq(kill(nu, 0), 0, "the new master is not running");
    /* The same port, now served by seed-server's page. */
    cr_assert_geq(fd = connect_to(h.port), 0);
    send_get(fd, "/");
    cr_assert_gt(read(fd, head, sizeof head - 1), 12);
    cr_assert(!strncmp(head, "HTTP/1.1 200 ", 13));
    close(fd);
    check_load(ka, out_ka, "upgrade_to_a_new_binary: keep-alive");
    check_load(nka, out_nka, "upgrade_to_a_new_binary: no keep-alive");
    /* The new master is the test's now (its subreaper). */
    h.master = nu;
    stop(&h, 10000);
}

/* SIGUSR2 to a master whose upgrade goes to argv: the failure is logged
 * (log_says), and the master goes on serving. */
static void failed_upgrade(const char *const *argv, const char *log_says)
{
    harness h;

    sup_opts = (gr_sup_opts){.upgrade_argv = argv};
    start(&h, 1, W_SERVE);
    expect(&h, "ready", 5000);
    cr_assert_eq(kill(h.master, SIGUSR2), 0);
    expect_log(&h, log_says, 5000);
    get_ok(h.port);
    stop(&h, 5000);
}

/* An upgrade that cannot start, or whose binary dies before its workers
 * are ready, leaves the old master serving. */
Test(supervisor, failed_upgrades_keep_the_master)
{
    static const char *const missing[] = {"/nonexistent/grove-sup-new", NULL};
    static const char *const dies[] = {"/bin/false", NULL};

    failed_upgrade(missing, "upgrade failed: cannot start /nonexistent/grove-sup-new");
    failed_upgrade(dies, "ended before its workers were ready; this one goes on");
}
