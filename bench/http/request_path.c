/* grove-request-path: the CPU cost of the HTTP server's request path
 * without a socket: the connection state machine (src/http/conn.c) reads
 * requests from memory and writes its responses nowhere, through the same
 * gr__http_io table the servers use. What it measures is what parsing and
 * answering cost (head scan, llhttp, fields, the response head), apart from
 * the system calls that dominate a real server's time.
 *
 *   grove-request-path [--json] [--runs N]
 *
 * Two figures, ns per request, the median of N runs (default 5):
 *   keepalive_ns  100 pipelined requests per connection, as wrk sends them
 *                 ("GET /seed-page.html HTTP/1.1" and Host);
 *   close_ns      one request per connection, as ab sends it (HTTP/1.0,
 *                 Host, User-Agent, Accept), the connection's set-up and
 *                 tear-down included.
 * The handler answers the seed page's size (4568 bytes) with one
 * gr_http_respond, as seed-server's does. For a count independent of the
 * machine's load, run it under `valgrind --tool=callgrind` with --runs 1
 * (docs/bench-http.md). */
#include "../bench.h"
#include "http/http.h"

enum { PIPELINED = 100, ROUNDS = 20000 };

static const char *in;
static size_t in_len, in_pos, out_bytes;
static char page[4568];

static ssize_t mem_read(gr__http_conn *c, void *buf, size_t len, int64_t deadline)
{
    size_t n = in_len - in_pos < len ? in_len - in_pos : len;

    (void)c;
    (void)deadline;
    memcpy(buf, in + in_pos, n);
    in_pos += n;
    return (ssize_t)n;
}

static int mem_write(gr__http_conn *c, struct iovec *iov, int n, int flags, int64_t deadline)
{
    (void)c;
    (void)flags;
    (void)deadline;
    for (int i = 0; i < n; i++)
        out_bytes += iov[i].iov_len;
    return 0;
}

static int64_t mem_now(void)
{
    return 1000;
}

static const gr__http_io mem_io = {mem_read, mem_write, mem_now};

static int seed(gr_http_request *req, void *arg)
{
    static const gr_http_header h[] = {{"Content-Type", "text/html"}};

    (void)arg;
    return gr_http_respond(req, 200, h, 1, page, sizeof page, -1);
}

/* ns per request over rounds connections, each given bytes[0, len) with
 * per requests in it. */
static double run(gr__http_cfg *cfg, const char *bytes, size_t len, int per)
{
    gr__http_conn c;
    gr_addr peer;
    double t0;

    gr_addr_ip(&peer, "127.0.0.1", 1);
    t0 = bench_now_ns();
    for (int r = 0; r < ROUNDS; r++) {
        in = bytes;
        in_len = len;
        in_pos = 0;
        if (gr__http_conn_init(&c, -1, &peer, &mem_io, cfg) != 0)
            bench_die("gr__http_conn_init");
        gr__http_conn_run(&c, NULL);
        gr__http_conn_fini(&c);
    }
    return (bench_now_ns() - t0) / ROUNDS / per;
}

int main(int argc, char **argv)
{
    static const char wrk[] = "GET /seed-page.html HTTP/1.1\r\nHost: 127.0.0.1:18400\r\n\r\n";
    static const char ab[] = "GET /seed-page.html HTTP/1.0\r\nHost: 127.0.0.1:18400\r\n"
                             "User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n";
    double ka[BENCH_MAX_RUNS], cl[BENCH_MAX_RUNS];
    char *pipelined = malloc(PIPELINED * (sizeof wrk - 1));
    int json = 0, runs = 5;
    gr__http_cfg cfg;

    for (int i = 1; i < argc; i++) {
        if (!bench_option(argc, argv, &i, &json, &runs)) {
            fprintf(stderr, "usage: grove-request-path [--json] [--runs N]\n");
            return 2;
        }
    }
    if (bench_check_runs("grove-request-path", runs) != 0 || !pipelined)
        return 2;
    if (gr__http_cfg_init(&cfg, seed, NULL, NULL) != 0)
        bench_die("gr__http_cfg_init");
    for (int i = 0; i < PIPELINED; i++)
        memcpy(pipelined + i * (sizeof wrk - 1), wrk, sizeof wrk - 1);
    for (int r = 0; r < runs; r++) {
        ka[r] = run(&cfg, pipelined, PIPELINED * (sizeof wrk - 1), PIPELINED);
        cl[r] = run(&cfg, ab, sizeof ab - 1, 1);
    }
    if (!out_bytes)
        bench_die("no response");
    if (json) {
        bench_json_begin();
        bench_json("keepalive_ns", "%.1f", bench_median(ka, runs));
        bench_json("close_ns", "%.1f", bench_median(cl, runs));
        bench_json_end();
    } else {
        printf("keep-alive (100 pipelined):  %7.1f ns/request\n", bench_median(ka, runs));
        printf("one request per connection:  %7.1f ns/request\n", bench_median(cl, runs));
    }
    free(pipelined);
    return 0;
}
