/* grove-load (tools/grove-load): its histogram and response parser tested
 * directly, then the binary end to end on loopback, against seed-server
 * (exact counts, keep-alive or not, -w 1 against -w 4, --rate, -d) and
 * against a deliberately faulty server written here with grove (answers
 * 500, closes early, resets, stalls, chunks, interims, garbage, closes
 * kept connections, stops listening), plus bad arguments, an unreachable
 * target and the JSON report. */
#include "common.h"

#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hist.h"
#include "resp.h"

/* ============================================================ histogram */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* The percentile of a sorted list, as the histogram defines it: the value
 * at rank ceil(p% of n). */
static uint64_t sorted_percentile(const uint64_t *v, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n - 1e-9);

    return v[(rank < 1 ? 1 : rank) - 1];
}

static gl_hist *new_hist(void)
{
    gl_hist *h = calloc(1, sizeof *h);

    cr_assert_not_null(h);
    return h;
}

Test(hist, buckets_cover_every_value_within_a_128th)
{
    uint64_t prev = 0;

    for (uint64_t v = 0; v < GL_HIST_MAX_NS; v = v < 4096 ? v + 1 : v + v / 97) {
        unsigned i = gl_hist_index(v);

        cr_assert_lt(i, GL_HIST_BUCKETS);
        cr_assert_geq(i, prev, "index goes down at %llu", (unsigned long long)v);
        cr_assert(gl_hist_low(i) <= v && v < gl_hist_low(i) + gl_hist_width(i),
                  "%llu not in bucket %u", (unsigned long long)v, i);
        cr_assert_leq(gl_hist_width(i) * 128, gl_hist_low(i) < 256 ? 256 : gl_hist_low(i));
        prev = i;
    }
    cr_assert_lt(gl_hist_index(GL_HIST_MAX_NS), GL_HIST_BUCKETS);
    cr_assert_eq(gl_hist_index(UINT64_MAX), gl_hist_index(GL_HIST_MAX_NS)); /* clamped */
}

Test(hist, small_values_are_exact)
{
    gl_hist *h = new_hist();

    for (uint64_t v = 1; v <= 200; v++)
        gl_hist_record(h, v);
    cr_assert_eq(gl_hist_percentile(h, 50), 100);
    cr_assert_eq(gl_hist_percentile(h, 99), 198);
    cr_assert_eq(gl_hist_percentile(h, 100), 200);
    cr_assert_eq(h->min_ns, 1);
    cr_assert_float_eq(gl_hist_mean(h), 100.5, 1e-9);
    free(h);
}

/* Known values spread log-uniformly from 1 us to 10 s: every percentile
 * within 1% of the sorted list's (the design bound is 1/256). */
Test(hist, percentiles_match_a_sorted_list_within_1pct)
{
    enum { N = 200000 };
    static const double ps[] = {0.1, 1, 10, 25, 50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100};
    uint64_t *v = malloc(N * sizeof *v), sum = 0;
    gl_hist *h = new_hist();

    srand(42);
    for (size_t i = 0; i < N; i++) {
        double e = 3.0 + 7.0 * rand() / (double)RAND_MAX; /* 10^3 .. 10^10 ns */

        v[i] = (uint64_t)pow(10.0, e);
        gl_hist_record(h, v[i]);
        sum += v[i];
    }
    qsort(v, N, sizeof *v, cmp_u64);
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double want = (double)sorted_percentile(v, N, ps[i]);
        double got = (double)gl_hist_percentile(h, ps[i]);

        cr_assert_leq(fabs(got - want) / want, 0.01, "p%g: %.0f, sorted list says %.0f", ps[i], got,
                      want);
        cr_assert_leq(fabs(got - want) / want, 1.0 / 256 + 1e-9, "p%g beyond the design bound",
                      ps[i]);
    }
    cr_assert_eq(h->min_ns, v[0]);
    cr_assert_eq(h->max_ns, v[N - 1]);
    cr_assert_float_eq(gl_hist_mean(h), (double)sum / N, 1e-6);
    free(v);
    free(h);
}

Test(hist, merged_halves_equal_the_whole)
{
    gl_hist *a = new_hist(), *b = new_hist(), *all = new_hist(), *m = new_hist();

    for (uint64_t i = 1; i <= 10000; i++) {
        uint64_t x = i * i * 37 % 1000000007;

        gl_hist_record(i % 2 ? a : b, x);
        gl_hist_record(all, x);
    }
    gl_hist_merge(m, a);
    gl_hist_merge(m, b);
    cr_assert_eq(memcmp(m, all, sizeof *m), 0);
    free(a), free(b), free(all), free(m);
}

/* ============================================================ parser */

typedef struct resp_case {
    const char *wire;
    int head_only;
    int status;
    uint64_t body;
    int reusable;
    int needs_eof; /* the body ends when the server closes */
} resp_case;

static const resp_case good[] = {
    {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello", 0, 200, 5, 1, 0},
    {"HTTP/1.1 404 Not Found\r\ncontent-length:0\r\n\r\n", 0, 404, 0, 1, 0},
    {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi", 0, 200, 2, 0, 0},
    {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", 0, 200, 2, 0, 0},
    {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi", 0, 200, 2, 1, 0},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n",
     0, 200, 31, 1, 0},
    {"HTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked\nContent-Length: 99\n\n3\nabc\n0\n\n", 0,
     200, 3, 1, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 10, 10\r\n\r\n0123456789", 0, 200, 10, 1, 0},
    {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n"
     "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nabc",
     0, 201, 3, 1, 0},
    {"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 0, 204, 0, 1, 0},
    {"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 304, 0, 1, 0},
    {"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 1, 200, 0, 1, 0},
    {"HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n", 0, 101, 0, 0, 0},
    {"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 1\r\n\r\nz", 0, 200, 1, 1, 0},
    {"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the end", 0, 200, 13, 0, 1},
    {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw bytes", 0, 200, 9, 0, 1},
};

/* Feed wire in pieces of `step` bytes (0: all at once). */
static void feed_case(const resp_case *c, size_t step)
{
    gl_resp r = {0};
    char server[16] = "";
    size_t len = strlen(c->wire), off = 0, used = 0;
    int rc = GL_RESP_MORE;

    r.server = server;
    r.server_cap = sizeof server;
    gl_resp_begin(&r, c->head_only);
    cr_assert(gl_resp_empty(&r));
    while (off < len && rc == GL_RESP_MORE) {
        size_t n = step && step < len - off ? step : len - off;

        rc = gl_resp_feed(&r, c->wire + off, n, &used);
        cr_assert_neq(rc, GL_RESP_BAD, "case %.30s step %zu: bad at %zu", c->wire, step, off);
        off += used;
    }
    if (c->needs_eof) {
        cr_assert_eq(rc, GL_RESP_MORE);
        rc = gl_resp_eof(&r);
    }
    cr_assert_eq(rc, GL_RESP_DONE, "case %.30s step %zu: not done", c->wire, step);
    cr_assert_eq(off, len, "case %.30s step %zu: ended at %zu of %zu", c->wire, step, off, len);
    cr_assert_eq(r.status, c->status);
    cr_assert_eq(r.body, c->body, "case %.30s step %zu: body %llu", c->wire, step,
                 (unsigned long long)r.body);
    cr_assert_eq(gl_resp_reusable(&r), c->reusable, "case %.30s", c->wire);
    gl_resp_free(&r);
}

Test(resp, frames_responses_cut_anywhere)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        for (size_t step = 0; step <= strlen(good[i].wire); step++)
            feed_case(&good[i], step);
}

Test(resp, keeps_the_server_header_and_stops_at_the_end)
{
    static const char two[] = "HTTP/1.1 200 OK\r\nServer: grove/0.1\r\nContent-Length: 1\r\n\r\n"
                              "xHTTP/1.1 200 OK\r\n";
    gl_resp r = {0};
    char server[8];
    size_t used;

    r.server = server;
    r.server_cap = sizeof server; /* truncated to fit */
    gl_resp_begin(&r, 0);
    cr_assert_eq(gl_resp_feed(&r, two, sizeof two - 1, &used), GL_RESP_DONE);
    cr_assert_eq(used, strlen(two) - strlen("HTTP/1.1 200 OK\r\n"));
    cr_assert_str_eq(server, "grove/0");
    gl_resp_free(&r);
}

Test(resp, refuses_what_is_not_http)
{
    static const char *const bad[] = {
        "garbage\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gl_resp r = {0};
        size_t used;

        gl_resp_begin(&r, 0);
        cr_assert_eq(gl_resp_feed(&r, bad[i], strlen(bad[i]), &used), GL_RESP_BAD, "accepted %s",
                     bad[i]);
        gl_resp_free(&r);
    }
}

Test(resp, bounds_the_head)
{
    size_t n = GL_RESP_MAX_HEAD + 1024, used;
    char *big = malloc(n + 64);
    gl_resp r = {0};
    int rc = GL_RESP_MORE;

    strcpy(big, "HTTP/1.1 200 OK\r\n");
    for (size_t i = strlen(big); i < n; i += 64)
        memcpy(big + i, "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 64);
    gl_resp_begin(&r, 0);
    for (size_t off = 0; off < n && rc == GL_RESP_MORE; off += 1000)
        rc = gl_resp_feed(&r, big + off, n - off < 1000 ? n - off : 1000, &used);
    cr_assert_eq(rc, GL_RESP_BAD);
    gl_resp_free(&r);
    free(big);
}

/* ============================================================ processes */

#ifndef GROVE_LOAD_BIN
#error "GROVE_LOAD_BIN is set by tests/CMakeLists.txt"
#endif

typedef struct result {
    int status; /* exit status, or 128 + signal */
    char *out;  /* stdout */
    char *err;  /* stderr */
} result;

static char *slurp(int fd)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    ssize_t r;

    lseek(fd, 0, SEEK_SET);
    while ((r = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)r;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    close(fd);
    return buf;
}

static int temp_fd(void)
{
    char path[] = "/tmp/test-grove-load.XXXXXX";
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    unlink(path);
    return fd;
}

/* Run grove-load with the NULL-terminated arguments; its output is
 * returned whole. */
static result run_load(const char *const *args)
{
    const char *argv[64] = {GROVE_LOAD_BIN};
    int out = temp_fd(), err = temp_fd(), st;
    size_t n = 1;
    pid_t pid;
    result r;

    for (; *args; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    cr_assert_geq(pid = fork(), 0);
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

static void free_result(result *r)
{
    free(r->out);
    free(r->err);
}

/* A number from the JSON report: "key" or "outer.key". */
static double jnum(const char *json, const char *path)
{
    char key[64];
    const char *p = json, *dot = strchr(path, '.');

    if (dot) {
        snprintf(key, sizeof key, "\"%.*s\":", (int)(dot - path), path);
        cr_assert_not_null(p = strstr(p, key), "no %s in %s", key, json);
        path = dot + 1;
    }
    snprintf(key, sizeof key, "\"%s\": ", path);
    cr_assert_not_null(p = strstr(p, key), "no %s in %s", path, json);
    return strtod(p + strlen(key), NULL);
}

/* Run with --json -q and require exit 0 and a report python can read. */
static result run_json(const char *const *args)
{
    const char *a[64] = {"--json", "-q"};
    size_t n = 2;
    result r;

    for (; *args; args++)
        a[n++] = *args;
    a[n] = NULL;
    r = run_load(a);
    cr_assert_eq(r.status, 0, "grove-load exited %d:\n%s", r.status, r.err);
    return r;
}

/* ------------------------------------------------------------ seed-server */

static pid_t server_pid;

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
}

/* Start seed-server with W workers (HTTPS with cert and key when not
 * NULL); returns its port. */
static int start_seed_tls(int workers, const char *cert, const char *key)
{
    int fds[2], port = 0;
    char w[8], line[256];
    FILE *f;

    snprintf(w, sizeof w, "%d", workers);
    cr_assert_eq(pipe(fds), 0);
    cr_assert_geq(server_pid = fork(), 0);
    if (server_pid == 0) {
        dup2(fds[1], 1);
        if (cert)
            execl(SEED_SERVER_BIN, "seed-server", "--mode", "grove", "--concurrency", "5000",
                  "--port", "0", "--workers", w, "--tls-cert", cert, "--tls-key", key,
                  (char *)NULL);
        else
            execl(SEED_SERVER_BIN, "seed-server", "--mode", "grove", "--concurrency", "5000",
                  "--port", "0", "--workers", w, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    cr_assert_not_null(fgets(line, sizeof line, f), "seed-server said nothing");
    cr_assert_not_null(strstr(line, "listening on 127.0.0.1:"), "%s", line);
    port = atoi(strstr(line, "127.0.0.1:") + 10);
    fclose(f);
    return port;
}

static int start_seed(int workers)
{
    return start_seed_tls(workers, NULL, NULL);
}

static char *url(int port, const char *path)
{
    static char buf[8][128];
    static int next;
    char *u = buf[next++ % 8];

    snprintf(u, 128, "http://127.0.0.1:%d%s", port, path);
    return u;
}

Test(seed, keep_alive_counts_are_exact, .timeout = 120, .fini = stop_server)
{
    int port = start_seed(1);
    result r = run_json((const char *[]){"-k", "-n", "10000", "-c", "50", url(port, "/"), NULL});

    cr_assert_eq(jnum(r.out, "completed"), 10000, "%s", r.out);
    cr_assert_eq(jnum(r.out, "requests"), 10000);
    cr_assert_eq(jnum(r.out, "failed.total"), 0, "%s", r.out);
    cr_assert_eq(jnum(r.out, "document_length"), 4568);
    cr_assert_eq(jnum(r.out, "body_bytes"), 4568.0 * 10000);
    cr_assert_eq(jnum(r.out, "connections_opened"), 50);
    cr_assert_gt(jnum(r.out, "latency_ms.p50"), 0);
    free_result(&r);
}

Test(seed, new_connection_per_request_without_k, .timeout = 120, .fini = stop_server)
{
    int port = start_seed(1);
    result r = run_json((const char *[]){"-n", "3000", "-c", "20", url(port, "/"), NULL});

    cr_assert_eq(jnum(r.out, "completed"), 3000, "%s", r.out);
    cr_assert_eq(jnum(r.out, "failed.total"), 0, "%s", r.out);
    cr_assert_eq(jnum(r.out, "connections_opened"), 3000);
    cr_assert_eq(jnum(r.out, "connect_ms.count"), 3000);
    free_result(&r);
}

/* The same totals whatever the number of worker processes. */
Test(seed, one_or_four_workers_same_totals, .timeout = 180, .fini = stop_server)
{
    int port = start_seed(2);

    for (int ka = 0; ka < 2; ka++) {
        for (int w = 1; w <= 4; w += 3) {
            char ws[4];
            result r;

            snprintf(ws, sizeof ws, "%d", w);
            r = run_json((const char *[]){ka ? "-k" : "-r", "-w", ws, "-n", "4000", "-c", "40",
                                          url(port, "/"), NULL});
            cr_assert_eq(jnum(r.out, "workers"), w);
            cr_assert_eq(jnum(r.out, "completed"), 4000, "-w %d: %s", w, r.out);
            cr_assert_eq(jnum(r.out, "requests"), 4000, "-w %d: %s", w, r.out);
            cr_assert_eq(jnum(r.out, "failed.total"), 0, "-w %d: %s", w, r.out);
            cr_assert_eq(jnum(r.out, "latency_ms.count"), 4000);
            free_result(&r);
        }
    }
}

Test(seed, duration_rate_and_status_lines, .timeout = 60, .fini = stop_server)
{
    int port = start_seed(1);
    result r = run_load((const char *[]){"--json", "--progress", "-k", "-d", "2.5", "-c", "4",
                                         "--rate", "200", url(port, "/"), NULL});
    double done = jnum(r.out, "completed"), d = jnum(r.out, "duration_s");
    int lines = 0;

    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(d >= 2.45 && d < 3.0, "duration %g", d);
    cr_assert(done >= 450 && done <= 510, "--rate 200 for 2.5 s made %g requests", done);
    for (const char *p = r.err; (p = strstr(p, "req/s")); p++)
        lines++;
    cr_assert_geq(lines, 2, "status lines on stderr:\n%s", r.err);
    cr_assert_eq(jnum(r.out, "rate"), 200);
    free_result(&r);
}

Test(seed, json_parses, .timeout = 60, .fini = stop_server)
{
    int port = start_seed(1);
    result r = run_json((const char *[]){"-n", "100", "-c", "5", url(port, "/"), NULL});
    FILE *py;

    if (system("python3 -c 'import json' 2>/dev/null") != 0)
        cr_skip_test("no python3");
    py = popen("python3 -c 'import json,sys; json.load(sys.stdin)'", "w");
    fputs(r.out, py);
    cr_assert_eq(pclose(py), 0, "python3 cannot read:\n%s", r.out);
    free_result(&r);
}

Test(seed, text_report_like_ab, .timeout = 60, .fini = stop_server)
{
    int port = start_seed(1);
    result r = run_load((const char *[]){"-q", "-n", "200", "-c", "10", url(port, "/x"), NULL});

    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_not_null(strstr(r.out, "Document Path:          /x\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "Document Length:        4568 bytes\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "Complete requests:      200\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "Failed requests:        0\n"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "Requests per second:"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "Connection Times (ms)"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "(longest request)"), "%s", r.out);
    cr_assert_eq(r.err[0], '\0', "-q: %s", r.err);
    free_result(&r);
}

/* ------------------------------------------------------------ faulty server */

/* Each path misbehaves its own way:
 *   /ok        200, 5 bytes, kept alive as the request allows
 *   /500       500 Internal Server Error
 *   /close     closes without answering
 *   /half      a head promising 100 bytes, 10 of them, then closes
 *   /reset     resets the connection (SO_LINGER 0) instead of answering
 *   /stall     answers after 10 s
 *   /chunked   a chunked body (3 + 5 + 7 bytes) in separate writes, trailers
 *   /eof       HTTP/1.0 body delimited by the close
 *   /slow      the response one byte per write
 *   /interim   100 Continue, then 200
 *   /junk      not HTTP
 *   /three     answers 3 requests per connection, then closes it unannounced
 *   /sink      resets without reading the (large) request body
 * and start_faulty_limit(N) stops listening after N connections (later
 * connects are refused). */
typedef struct faulty {
    gr_server *srv;
    int conns;
    int limit; /* stop listening after this many connections; 0 never */
} faulty;

static faulty the_faulty;

static void say(int fd, const char *s)
{
    gr_write_all(fd, s, strlen(s), NULL, gr_now() + 5000);
}

static void reset(int fd)
{
    struct linger l = {1, 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

static void *stop_listening(void *arg)
{
    gr_server_stop(arg, gr_now() + 60000);
    return NULL;
}

/* Answer one request for path; 1 to keep the connection, 0 to close it. */
static int misbehave(int fd, const char *path, int keep, int served)
{
    const char *ok = keep ? "HTTP/1.1 200 OK\r\nServer: faulty\r\nContent-Length: 5\r\n\r\nhello"
                          : "HTTP/1.1 200 OK\r\nServer: faulty\r\nConnection: close\r\n"
                            "Content-Length: 5\r\n\r\nhello";

    if (!strcmp(path, "/500")) {
        say(fd, keep ? "HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\noops"
                     : "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 4\r\n\r\noops");
    } else if (!strcmp(path, "/close")) {
        return 0;
    } else if (!strcmp(path, "/half")) {
        say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
        return 0;
    } else if (!strcmp(path, "/reset") || !strcmp(path, "/sink")) {
        reset(fd);
        return 0;
    } else if (!strcmp(path, "/stall")) {
        gr_sleep(gr_now() + 10000);
        return 0;
    } else if (!strcmp(path, "/chunked")) {
        say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
        gr_sleep(gr_now() + 2);
        say(fd, "5\r\nabcde\r");
        gr_sleep(gr_now() + 2);
        say(fd, "\n7;x=y\r\nabcdefg\r\n0\r\nX-Trailer: 1\r\n\r\n");
    } else if (!strcmp(path, "/eof")) {
        say(fd, "HTTP/1.0 200 OK\r\n\r\nuntil the close");
        return 0;
    } else if (!strcmp(path, "/slow")) {
        for (const char *p = ok; *p; p++)
            gr_write_all(fd, p, 1, NULL, gr_now() + 5000);
    } else if (!strcmp(path, "/interim")) {
        say(fd, "HTTP/1.1 100 Continue\r\n\r\n");
        say(fd, ok);
    } else if (!strcmp(path, "/junk")) {
        say(fd, "SSH-2.0-OpenSSH\r\n\r\n");
        return 0;
    } else {
        say(fd, ok);
        if (!strcmp(path, "/three") && served == 3)
            return 0;
    }
    return keep;
}

/* The request's Content-Length, 0 if none. */
static size_t request_length(const char *head)
{
    const char *p = strcasestr(head, "\r\nContent-Length:");

    return p ? strtoul(p + 17, NULL, 10) : 0;
}

/* Read a request head into buf (the bytes after it stay there: *have). */
static ssize_t read_head(int fd, char *buf, size_t cap, size_t *have)
{
    char *end;

    while (!(end = memmem(buf, *have, "\r\n\r\n", 4))) {
        ssize_t n;

        if (*have == cap - 1 ||
            (n = gr_read(fd, buf + *have, cap - 1 - *have, gr_now() + 10000)) <= 0)
            return -1;
        *have += (size_t)n;
    }
    buf[*have] = '\0';
    return end + 4 - buf;
}

/* Skip the request body (len bytes, some perhaps already in buf). */
static int skip_body(int fd, char *buf, size_t cap, size_t *have, size_t head, size_t len)
{
    size_t in = *have - head < len ? *have - head : len;

    len -= in;
    memmove(buf, buf + head + in, *have - head - in);
    *have -= head + in;
    while (len) {
        ssize_t n = gr_read(fd, buf, len < cap ? len : cap, gr_now() + 10000);

        if (n <= 0)
            return -1;
        len -= (size_t)n;
    }
    return 0;
}

static void faulty_conn(int fd, const gr_addr *peer, void *arg)
{
    static char buf[65536]; /* one request at a time: green threads */
    char path[64];
    size_t have = 0;
    ssize_t head;
    int served = 0;

    (void)peer;
    (void)arg;
    if (++the_faulty.conns == the_faulty.limit)
        gr_detach(gr_spawn(stop_listening, the_faulty.srv));
    while ((head = read_head(fd, buf, sizeof buf, &have)) > 0) {
        int v11 = strstr(buf, " HTTP/1.1\r\n") != NULL;
        int keep = (v11 && !strcasestr(buf, "\r\nConnection: close")) ||
                   strcasestr(buf, "\r\nConnection: keep-alive");
        char *sp = strchr(buf, ' ');

        snprintf(path, sizeof path, "%.*s", sp ? (int)strcspn(sp + 1, " ") : 0, sp ? sp + 1 : "");
        if (!strcmp(path, "/sink")) {
            misbehave(fd, path, 0, served);
            return;
        }
        if (skip_body(fd, buf, sizeof buf, &have, (size_t)head, request_length(buf)) != 0)
            return;
        if (!misbehave(fd, path, keep, ++served))
            return;
    }
}

static void *faulty_main(void *arg)
{
    the_faulty.srv = gr_server_new(*(int *)arg, faulty_conn, NULL, NULL);
    gr_server_serve(the_faulty.srv);
    return NULL;
}

/* The faulty server in a child process; returns its port. */
static int start_faulty_limit(int limit)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 512), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    cr_assert_geq(server_pid = fork(), 0);
    if (server_pid == 0) {
        the_faulty.limit = limit;
        gr_main(faulty_main, &fd, NULL);
        _exit(0);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int start_faulty(void)
{
    return start_faulty_limit(0);
}

/* Run with -r --json against the faulty server's path. */
static result faulty_run(int port, const char *path, const char *const *extra)
{
    const char *a[32] = {"-r"};
    size_t n = 1;

    for (; extra && *extra; extra++)
        a[n++] = *extra;
    a[n++] = url(port, path);
    a[n] = NULL;
    return run_json(a);
}

#define FAIL_EQ(r, kind, want) cr_assert_eq(jnum((r).out, "failed." kind), want, "%s", (r).out)

Test(faulty, non_2xx_is_complete_and_counted, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty();
    result r = faulty_run(port, "/500", (const char *[]){"-k", "-n", "200", "-c", "4", NULL});

    cr_assert_eq(jnum(r.out, "completed"), 200, "%s", r.out);
    FAIL_EQ(r, "non_2xx", 200);
    FAIL_EQ(r, "total", 200);
    FAIL_EQ(r, "read", 0);
    cr_assert_eq(jnum(r.out, "status.5xx"), 200);
    /* Kept alive through the 500s: no reconnects. All 4 connections are
     * usually opened, but a connection whose connect is slow may find the
     * other three have taken every request. */
    cr_assert_eq(jnum(r.out, "reconnects"), 0, "%s", r.out);
    cr_assert(jnum(r.out, "connections_opened") >= 1 && jnum(r.out, "connections_opened") <= 4,
              "%s", r.out);
    cr_assert_eq(jnum(r.out, "connections_opened") + jnum(r.out, "keep_alive_requests"), 200, "%s",
                 r.out);
    free_result(&r);
}

Test(faulty, closed_early, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty();

    for (int ka = 0; ka < 2; ka++) {
        result r = faulty_run(port, "/close", (const char *[]){ka ? "-k" : "-q", "-n", "50", NULL});
        result h = faulty_run(port, "/half", (const char *[]){ka ? "-k" : "-q", "-n", "50", NULL});

        cr_assert_eq(jnum(r.out, "completed"), 0, "%s", r.out);
        FAIL_EQ(r, "closed_early", 50);
        FAIL_EQ(r, "total", 50);
        FAIL_EQ(h, "closed_early", 50);
        cr_assert_eq(jnum(h.out, "completed"), 0);
        free_result(&r);
        free_result(&h);
    }
}

Test(faulty, reset_is_a_read_failure, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty();

    for (int ka = 0; ka < 2; ka++) {
        result r = faulty_run(port, "/reset",
                              (const char *[]){ka ? "-k" : "-q", "-n", "50", "-c", "5", NULL});

        FAIL_EQ(r, "read", 50);
        FAIL_EQ(r, "total", 50);
        cr_assert_eq(jnum(r.out, "completed"), 0);
        free_result(&r);
    }
}

Test(faulty, reset_while_sending_is_a_write_failure, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty(), fd;
    char path[] = "/tmp/test-grove-load-body.XXXXXX";
    char *big = calloc(1, 32 << 20);
    result r;

    cr_assert_geq(fd = mkstemp(path), 0);
    cr_assert_eq(write(fd, big, 32 << 20), 32 << 20);
    close(fd);
    r = faulty_run(port, "/sink", (const char *[]){"-p", path, "-n", "3", NULL});
    unlink(path);
    FAIL_EQ(r, "write", 3);
    FAIL_EQ(r, "total", 3);
    free_result(&r);
    free(big);
}

Test(faulty, stall_past_s_is_a_timeout, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty();
    result r =
        faulty_run(port, "/stall", (const char *[]){"-s", "0.3", "-n", "8", "-c", "4", NULL});

    FAIL_EQ(r, "timeout", 8);
    FAIL_EQ(r, "total", 8);
    cr_assert_lt(jnum(r.out, "duration_s"), 2.0, "%s", r.out);
    free_result(&r);
}

Test(faulty, framings_parse, .timeout = 60, .fini = stop_server)
{
    static const struct {
        const char *path;
        double body;
    } cases[] = {{"/chunked", 15}, {"/eof", 15}, {"/slow", 5}, {"/interim", 5}, {"/ok", 5}};
    int port = start_faulty();

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int ka = 0; ka < 2; ka++) {
            result r = faulty_run(port, cases[i].path,
                                  (const char *[]){ka ? "-k" : "-q", "-n", "40", "-c", "4", NULL});

            cr_assert_eq(jnum(r.out, "completed"), 40, "%s: %s", cases[i].path, r.out);
            FAIL_EQ(r, "total", 0);
            cr_assert_eq(jnum(r.out, "body_bytes"), 40 * cases[i].body, "%s", cases[i].path);
            free_result(&r);
        }
    }
}

Test(faulty, head_requests_have_no_body, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty();
    result r = faulty_run(port, "/ok", (const char *[]){"-i", "-k", "-n", "30", NULL});

    cr_assert_eq(jnum(r.out, "completed"), 30, "%s", r.out);
    cr_assert_eq(jnum(r.out, "body_bytes"), 0);
    cr_assert_not_null(strstr(r.out, "\"method\": \"HEAD\""));
    free_result(&r);
}

Test(faulty, garbage_is_a_protocol_failure, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty();
    result r = faulty_run(port, "/junk", (const char *[]){"-n", "20", NULL});

    FAIL_EQ(r, "protocol", 20);
    FAIL_EQ(r, "total", 20);
    free_result(&r);
}

/* Kept connections the server closes between requests are reopened and
 * the request sent again: not a failure. */
Test(faulty, closed_kept_connections_are_reopened, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty();
    result r = faulty_run(port, "/three", (const char *[]){"-k", "-n", "300", "-c", "3", NULL});

    cr_assert_eq(jnum(r.out, "completed"), 300, "%s", r.out);
    FAIL_EQ(r, "total", 0);
    cr_assert_gt(jnum(r.out, "reconnects"), 0);
    /* 3 requests per connection: 100 of them, a few more where a
     * connection's share is not a multiple of 3. */
    cr_assert(jnum(r.out, "connections_opened") >= 100 && jnum(r.out, "connections_opened") <= 103,
              "%s", r.out);
    free_result(&r);
}

Test(faulty, refused_connects_are_connect_failures, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty_limit(20);
    result r = faulty_run(port, "/limit", (const char *[]){"-n", "100", NULL});
    double done = jnum(r.out, "completed"), conn = jnum(r.out, "failed.connect");

    cr_assert_eq(done + conn + jnum(r.out, "failed.read") + jnum(r.out, "failed.closed_early"), 100,
                 "%s", r.out);
    cr_assert_geq(conn, 70, "%s", r.out);
    cr_assert_geq(done, 15, "%s", r.out);
    free_result(&r);
}

Test(faulty, without_r_the_first_socket_error_stops, .timeout = 60, .fini = stop_server)
{
    int port = start_faulty();
    result r = run_load(
        (const char *[]){"-q", "--json", "-n", "1000", "-c", "2", url(port, "/reset"), NULL});

    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert_not_null(strstr(r.err, "-r"), "%s", r.err);
    cr_assert_lt(jnum(r.out, "failed.read"), 10, "%s", r.out);
    cr_assert_not_null(strstr(r.out, "\"aborted\": {\"kind\": \"read\""), "%s", r.out);
    free_result(&r);
}

/* ---------------------------------------------------------------- https */

static char tls_dir[] = "/tmp/test-grove-load-tls.XXXXXX";

static void tls_fini(void)
{
    char cmd[128];

    stop_server();
    snprintf(cmd, sizeof cmd, "rm -rf %s", tls_dir);
    cr_assert_eq(system(cmd), 0);
}

/* https URLs: a full handshake per connection by default (--tls-resume
 * resumes), keep-alive, and a certificate nobody vouches for refused
 * without --insecure. */
Test(seed, https, .timeout = 120, .fini = tls_fini)
{
    char cmd[1024], cert[96], key[96], u[64];
    int port;
    result r;

    if (access("/usr/bin/openssl", X_OK) != 0)
        cr_skip_test("openssl is not installed (scripts/deps.sh test installs it)");
    cr_assert_not_null(mkdtemp(tls_dir));
    snprintf(cert, sizeof cert, "%s/cert.pem", tls_dir);
    snprintf(key, sizeof key, "%s/key.pem", tls_dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-keyout %s -out %s -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 "
             ">/dev/null 2>&1",
             key, cert);
    cr_assert_eq(system(cmd), 0);
    port = start_seed_tls(1, cert, key);
    snprintf(u, sizeof u, "https://127.0.0.1:%d/", port);
    r = run_json((const char *[]){"--insecure", "-n", "300", "-c", "10", u, NULL});
    cr_assert_eq(jnum(r.out, "completed"), 300, "%s", r.out);
    cr_assert_eq(jnum(r.out, "failed.total"), 0, "%s", r.out);
    cr_assert_eq(jnum(r.out, "connections_opened"), 300);
    cr_assert_eq(jnum(r.out, "document_length"), 4568);
    free_result(&r);
    r = run_json((const char *[]){"--insecure", "--tls-resume", "-n", "300", "-c", "10", u, NULL});
    cr_assert_eq(jnum(r.out, "completed"), 300, "%s", r.out);
    cr_assert_eq(jnum(r.out, "failed.total"), 0, "%s", r.out);
    free_result(&r);
    r = run_json((const char *[]){"--insecure", "-k", "-n", "3000", "-c", "10", u, NULL});
    cr_assert_eq(jnum(r.out, "completed"), 3000, "%s", r.out);
    cr_assert_eq(jnum(r.out, "failed.total"), 0, "%s", r.out);
    cr_assert_eq(jnum(r.out, "connections_opened"), 10);
    free_result(&r);
    r = run_load((const char *[]){"-q", "-n", "5", u, NULL});
    cr_assert_neq(r.status, 0, "a self-signed certificate was trusted: %s", r.out);
    cr_assert_not_null(strstr(r.err, "Key was rejected"), "%s", r.err);
    free_result(&r);
}

/* ------------------------------------------------------------ arguments */

static void refused(const char *const *args, const char *says)
{
    result r = run_load(args);

    cr_assert_neq(r.status, 0, "accepted %s %s", args[0], args[1] ? args[1] : "");
    cr_assert_eq(strncmp(r.err, "grove-load: ", 12), 0, "stderr: %s", r.err);
    cr_assert_not_null(strcasestr(r.err, says), "'%s' not in: %s", says, r.err);
    cr_assert_eq(r.out[0], '\0', "stdout: %s", r.out);
    free_result(&r);
}

Test(args, bad_arguments_are_refused_clearly, .timeout = 60)
{
    refused((const char *[]){NULL}, "no URL");
    refused((const char *[]){"ftp://127.0.0.1/", NULL}, "http://");
    refused((const char *[]){"127.0.0.1:80/", NULL}, "http://");
    refused((const char *[]){"http://:80/", NULL}, "no host");
    refused((const char *[]){"http://127.0.0.1:99999/", NULL}, "port");
    refused((const char *[]){"http://u:p@127.0.0.1/", NULL}, "password");
    refused((const char *[]){"-c", "0", "http://127.0.0.1/", NULL}, "-c");
    refused((const char *[]){"-n", "abc", "http://127.0.0.1/", NULL}, "-n");
    refused((const char *[]){"-n", "5", "-c", "10", "http://127.0.0.1/", NULL}, "-c 10");
    refused((const char *[]){"-w", "0", "http://127.0.0.1/", NULL}, "-w");
    refused((const char *[]){"--rate", "-1", "http://127.0.0.1/", NULL}, "--rate");
    refused((const char *[]){"-d", "soon", "http://127.0.0.1/", NULL}, "-d");
    refused((const char *[]){"-d", "2", "-n", "5", "http://127.0.0.1/", NULL}, "-d");
    refused((const char *[]){"-H", "NoColon", "http://127.0.0.1/", NULL}, "-H");
    refused((const char *[]){"-H", "Content-Length: 5", "http://127.0.0.1/", NULL}, "frames");
    refused((const char *[]){"-b", "bogus", "http://127.0.0.1/", NULL}, "-b");
    refused((const char *[]){"-b", "127.0.0.9-127.0.0.1", "http://127.0.0.1/", NULL}, "range");
    refused((const char *[]){"--close", "maybe", "http://127.0.0.1/", NULL}, "--close");
    refused((const char *[]){"--bogus", "http://127.0.0.1/", NULL}, "unknown option");
    refused((const char *[]){"-n", NULL}, "wants a value");
    refused((const char *[]){"-i", "-p", "/etc/hostname", "http://127.0.0.1/", NULL}, "HEAD");
    refused((const char *[]){"-p", "/nonexistent/body", "http://127.0.0.1/", NULL}, "cannot read");
    refused((const char *[]){"http://127.0.0.1/a", "http://127.0.0.1/b", NULL}, "one URL");
    refused((const char *[]){"http://no-such-host.invalid/", NULL}, "resolve");
}

Test(args, limits_are_named, .timeout = 60)
{
    /* 50,000 connections cannot fit one process (20,000 descriptors here)
     * nor the ports of one source address. */
    refused(
        (const char *[]){"-k", "-w", "1", "-c", "50000", "-d", "1", "http://127.0.0.1:1/", NULL},
        "RLIMIT_NOFILE");
    refused(
        (const char *[]){"-k", "-w", "4", "-c", "50000", "-d", "1", "http://127.0.0.1:1/", NULL},
        "-b 127.0.0.1-127.0.0.");
}

Test(args, unreachable_target, .timeout = 60)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    char u[64];

    /* A port that was free a moment ago, with nobody listening. */
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    snprintf(u, sizeof u, "http://127.0.0.1:%d/", ntohs(a.sin_port));
    refused((const char *[]){"-n", "10", u, NULL}, "Connection refused");
}

Test(args, help_version_doctor, .timeout = 60)
{
    result h = run_load((const char *[]){"--help", NULL});
    result v = run_load((const char *[]){"-V", NULL});
    result d = run_load((const char *[]){"--doctor", NULL});

    cr_assert_eq(h.status, 0);
    cr_assert_not_null(strstr(h.out, "Usage: grove-load"));
    cr_assert_eq(v.status, 0);
    cr_assert_not_null(strstr(v.out, "grove-load"));
    cr_assert_eq(d.status, 0);
    cr_assert_not_null(strstr(d.out, "net.ipv4.ip_local_port_range"), "%s", d.out);
    cr_assert_not_null(strstr(d.out, "RLIMIT_NOFILE"), "%s", d.out);
    cr_assert_not_null(strstr(d.out, "vm.max_map_count"), "%s", d.out);
    free_result(&h);
    free_result(&v);
    free_result(&d);
}
