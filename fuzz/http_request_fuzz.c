/* libFuzzer target for the HTTP server's request path: the llhttp parser
 * around the connection buffer (src/http/parse.c) and the connection state
 * machine (src/http/conn.c), driven through an in-memory gr__http_io. The
 * input's first two bytes choose the server's limits, the handler's
 * behaviour and how reads are sliced; the rest is what the client sends.
 * Reads hand it over in slices (as TCP may), then end of stream or a
 * time-out; writes go to llhttp's response parser, which checks that the
 * server's answers are well-formed and framed right.
 *
 * Built and run by scripts/fuzz-http.sh. */
#include "http/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fuzz_in {
    const uint8_t *data;
    size_t len, pos;
    uint32_t rng;    /* slices read sizes */
    int end_timeout; /* the stream ends in a time-out, not a close */
    int64_t clock;
} fuzz_in;

static fuzz_in in;
static uint8_t mode; /* handler behaviour */

static uint32_t next_rand(void)
{
    in.rng = in.rng * 1103515245u + 12345u;
    return in.rng >> 16;
}

static ssize_t fuzz_read(gr__http_conn *c, void *buf, size_t len, int64_t deadline)
{
    size_t n;

    (void)c;
    (void)deadline;
    if (len == 0)
        abort(); /* the connection never asks for nothing */
    if (in.pos == in.len) {
        if (in.end_timeout) {
            errno = ETIMEDOUT;
            return -1;
        }
        return 0;
    }
    n = in.len - in.pos;
    /* Slices of 1 to 64 bytes, or everything, as the seed says. */
    if (in.rng && n > 1)
        n = 1 + next_rand() % (n < 64 ? n : 64);
    if (n > len)
        n = len;
    memcpy(buf, in.data + in.pos, n);
    in.pos += n;
    in.clock += 1;
    return (ssize_t)n;
}

/* The oracle: what the server writes must parse as a stream of HTTP/1.1
 * responses (llhttp in response mode), each framed right, however the
 * request and the handler behaved. Only the last response may be cut
 * short, as the server then closes the connection. */
static llhttp_t resp_parser;
static llhttp_settings_t resp_settings;
static int resp_to_head; /* the head being written answers a HEAD */

static int resp_headers_complete(llhttp_t *p)
{
    if (p->http_major != 1 || p->http_minor != 1)
        abort();
    return resp_to_head && p->status_code >= 200 ? 1 : 0; /* 1: no body follows */
}

static int fuzz_write(gr__http_conn *c, struct iovec *iov, int n, int flags, int64_t deadline)
{
    (void)flags;
    (void)deadline;
    if (n <= 0 || n > 3)
        abort();
    if (iov[0].iov_base == c->out)
        resp_to_head = c->head_method;
    for (int i = 0; i < n; i++) {
        llhttp_errno_t e = llhttp_execute(&resp_parser, iov[i].iov_base, iov[i].iov_len);

        if (e != HPE_OK) {
            fprintf(stderr, "malformed response: %s (%s)\n", llhttp_errno_name(e),
                    llhttp_get_error_reason(&resp_parser));
            abort();
        }
    }
    return 0;
}

static int64_t fuzz_now(void)
{
    return in.clock;
}

static const gr__http_io fuzz_io = {fuzz_read, fuzz_write, fuzz_now};

/* Use every string of the request, so ASan sees any that is not a valid,
 * NUL-terminated string inside the buffer. */
static size_t touch_request(gr_http_request *r)
{
    size_t n = strlen(r->method) + strlen(r->target) + strlen(r->path) + strlen(r->query);

    if (r->version != 10 && r->version != 11)
        abort();
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *v = r->headers[i].value;

        n += strlen(r->headers[i].name) + strlen(v);
        if (!r->headers[i].name[0] || strpbrk(r->headers[i].name, " :\r\n") || strpbrk(v, "\r\n"))
            abort(); /* the parser let a malformed field through */
        if (*v == ' ' || *v == '\t' ||
            (*v && (v[strlen(v) - 1] == ' ' || v[strlen(v) - 1] == '\t')))
            abort(); /* values come trimmed */
    }
    if (gr_http_header_get(r, "host"))
        n++;
    return n;
}

static int handler(gr_http_request *r, void *arg)
{
    static const gr_http_header h[] = {{"Content-Type", "text/plain"}, {"X-A", "b"}};
    static const gr_http_header bad[] = {{"X-Bad", "a\r\nb"}};
    char body[1024];
    size_t got = 0;
    ssize_t k;

    (void)arg;
    touch_request(r);
    switch (mode % 8) {
    case 0: /* echo the body */
        while ((k = gr_http_read_body(r, body + got, sizeof body - got, -1)) > 0) {
            got += (size_t)k;
            if (got == sizeof body)
                got = 0;
        }
        if (k < 0)
            return -1;
        return gr_http_respond(r, 200, h, 2, body, got, -1);
    case 1: /* answer without reading */
        return gr_http_respond(r, 404, NULL, 0, "nope", 4, -1);
    case 2: /* stream chunked while reading */
        if (gr_http_begin(r, 200, h, 1, -1, -1) != 0)
            return -1;
        while ((k = gr_http_read_body(r, body, sizeof body, -1)) > 0)
            if (gr_http_send(r, body, (size_t)k, -1) != 0)
                return -1;
        return k < 0 ? -1 : gr_http_end(r, -1);
    case 3: /* a length, then fewer bytes */
        if (gr_http_begin(r, 200, NULL, 0, 10, -1) != 0)
            return -1;
        gr_http_send(r, "12345", 5, -1);
        gr_http_send(r, "1234567890", 10, -1); /* over: EINVAL */
        return 0;
    case 4: /* fail */
        gr_http_read_body(r, body, 1, -1);
        return -1;
    case 5: /* return without answering */
        return 0;
    case 6: /* refused headers, then a bodiless status */
        if (gr_http_respond(r, 200, bad, 1, "x", 1, -1) == 0)
            abort();
        if (gr_http_respond(r, 42, NULL, 0, NULL, 0, -1) == 0 ||
            gr_http_respond(r, 101, NULL, 0, NULL, 0, -1) == 0)
            abort();
        return gr_http_respond(r, 204, NULL, 0, "ignored", 7, -1);
    default: /* read a little, answer, read the rest */
        gr_http_read_body(r, body, 3, -1);
        if (gr_http_respond(r, 200, h, 1, "ok", 2, -1) != 0)
            return -1;
        while (gr_http_read_body(r, body, sizeof body, -1) > 0) {
        }
        return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *log;
    gr_http_opts o = {0};
    gr__http_cfg cfg;
    gr__http_conn c;
    gr_addr peer;
    uint8_t limits;

    if (size < 2)
        return 0;
    if (!log)
        log = fopen("/dev/null", "w");
    limits = data[0];
    mode = data[1];
    /* Small limits half the time, so that they are reached. */
    if (limits & 1) {
        o.max_header_bytes = 64 + (limits >> 1) * 4;
        o.max_headers = 1 + (limits >> 4);
        o.max_body = 1 + (limits >> 2) * 8;
    }
    o.access_log = (limits & 2) ? log : NULL;
    if (gr__http_cfg_init(&cfg, handler, NULL, &o) != 0)
        abort();
    gr_addr_ip(&peer, (limits & 4) ? "::1" : "127.0.0.1", 8080);
    in = (fuzz_in){data + 2, size - 2, 0, (uint32_t)(mode >> 3) * 2654435761u, mode & 0x80, 0};
    llhttp_settings_init(&resp_settings);
    resp_settings.on_headers_complete = resp_headers_complete;
    llhttp_init(&resp_parser, HTTP_RESPONSE, &resp_settings);
    if (gr__http_conn_init(&c, -1, &peer, &fuzz_io, &cfg) != 0)
        return 0;
    gr__http_conn_run(&c, NULL);
    gr__http_conn_fini(&c);
    return 0;
}
