/* grove-head-parse: what parsing a response costs, grove's head parser
 * (src/http/head.c: the line scan, llhttp, the fields NUL-terminated in
 * place, then the chunked decoder) against grove-load's streaming parser
 * (tools/grove-load/resp.c), on the same bytes, in the same run.
 *
 *   grove-head-parse [--json] [--runs N]
 *
 * Three responses: the seed page as seed-server sends it (a small head and
 * a 5 KB body with Content-Length), an nginx-like head of nine fields, and
 * a chunked body of eight 512-byte chunks. Both parsers get each response
 * whole, as one read would bring it; grove's needs its bytes in a buffer
 * it may write to, so each round copies the response there first, and
 * grove-load's gets the same copy for fairness. The figure is ns per
 * response, the median of N runs (default 5), and the ratio.
 *
 * This answers why grove-load keeps its own parser (see resp.h). */
#include "../bench.h"
#include "http/http.h"
#include "resp.h"

enum { ROUNDS = 200000 };

typedef struct sample {
    const char *name;
    char *bytes;
    size_t len;
} sample;

static char work[64 * 1024];

static double time_grove(const sample *s)
{
    gr__http_span spans[32];
    gr_http_header headers[32];
    gr__http_head h;
    gr__http_chunked d;
    double t0;
    size_t sink = 0;

    gr__http_head_init(&h, HTTP_RESPONSE, 1, spans, headers, 32, 32);
    t0 = bench_now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        ssize_t end;
        size_t produced;

        memcpy(work, s->bytes, s->len);
        gr__http_head_begin(&h);
        if ((end = gr__http_head_scan(&h, work, s->len)) <= 0 ||
            gr__http_head_parse(&h, work, (size_t)end) != 0)
            bench_die("grove's head parser refused the sample");
        if (h.body == GR__BODY_CHUNKED) {
            gr__http_chunked_init(&d);
            if (gr__http_chunked_decode(&d, work + end, s->len - (size_t)end, work + end,
                                        &produced) < 0)
                bench_die("chunked");
            sink += produced;
        }
        sink += h.nspans;
    }
    if (!sink)
        bench_die("nothing parsed");
    return (bench_now_ns() - t0) / ROUNDS;
}

static double time_grove_load(const sample *s)
{
    gl_resp r = {0};
    double t0 = bench_now_ns();
    size_t sink = 0;

    for (int i = 0; i < ROUNDS; i++) {
        size_t used;

        memcpy(work, s->bytes, s->len);
        gl_resp_begin(&r, 0);
        if (gl_resp_feed(&r, work, s->len, &used) != GL_RESP_DONE)
            bench_die("grove-load's parser refused the sample");
        sink += r.body;
    }
    gl_resp_free(&r);
    if (!sink)
        bench_die("nothing parsed");
    return (bench_now_ns() - t0) / ROUNDS;
}

static sample make(const char *name, const char *head, size_t body, int chunked)
{
    sample s = {name, malloc(64 * 1024), 0};
    size_t n = strlen(head);

    memcpy(s.bytes, head, n);
    if (chunked) {
        for (int i = 0; i < 8; i++) {
            n += (size_t)sprintf(s.bytes + n, "200\r\n");
            memset(s.bytes + n, 'x', 512);
            n += 512;
            n += (size_t)sprintf(s.bytes + n, "\r\n");
        }
        n += (size_t)sprintf(s.bytes + n, "0\r\n\r\n");
    } else {
        memset(s.bytes + n, 'x', body);
        n += body;
    }
    s.len = n;
    return s;
}

int main(int argc, char **argv)
{
    int json = 0, runs = 5;
    sample samples[3];

    for (int i = 1; i < argc; i++) {
        if (!bench_option(argc, argv, &i, &json, &runs)) {
            fprintf(stderr, "usage: grove-head-parse [--json] [--runs N]\n");
            return 2;
        }
    }
    if (bench_check_runs("grove-head-parse", runs) != 0)
        return 2;
    samples[0] = make("seed",
                      "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Content-Type: text/html\r\nContent-Length: 5120\r\n\r\n",
                      5120, 0);
    samples[1] = make("nginx",
                      "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
                      "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Content-Type: text/html\r\nContent-Length: 5120\r\n"
                      "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Connection: keep-alive\r\nETag: \"6380f2a1-1400\"\r\n"
                      "Accept-Ranges: bytes\r\nX-Frame-Options: DENY\r\n\r\n",
                      5120, 0);
    samples[2] = make("chunked",
                      "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                      "Content-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n",
                      0, 1);
    if (json)
        bench_json_begin();
    for (int k = 0; k < 3; k++) {
        double g[BENCH_MAX_RUNS], l[BENCH_MAX_RUNS], gm, lm;
        char key[64];

        for (int r = 0; r < runs; r++) { /* interleaved: both see the same machine */
            g[r] = time_grove(&samples[k]);
            l[r] = time_grove_load(&samples[k]);
        }
        gm = bench_median(g, runs);
        lm = bench_median(l, runs);
        if (json) {
            snprintf(key, sizeof key, "%s_grove_ns", samples[k].name);
            bench_json(key, "%.1f", gm);
            snprintf(key, sizeof key, "%s_grove_load_ns", samples[k].name);
            bench_json(key, "%.1f", lm);
        } else {
            printf("%-8s grove head parser %7.1f ns   grove-load parser %7.1f ns   ratio %.2fx\n",
                   samples[k].name, gm, lm, gm / lm);
        }
        free(samples[k].bytes);
    }
    if (json)
        bench_json_end();
    return 0;
}
