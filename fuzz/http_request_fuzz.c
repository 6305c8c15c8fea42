/* libFuzzer target for the HTTP server's request path: the head parser
 * (src/http/head.c, llhttp behind a line scan), the chunked decoder and
 * the request around the connection buffer (chunked.c, parse.c) and the
 * connection state machine (conn.c), driven through an in-memory
 * gr__http_io. The
 * input's first two bytes choose the server's limits, the handler's
 * behaviour and how reads are sliced; the rest is what the client sends.
 * Reads hand it over in slices (as TCP may), then end of stream or a
 * time-out; writes go to llhttp's response parser, which checks that the
 * server's answers are well-formed and framed right.
 *
 * The in-memory connection is fuzz/fuzz_conn.h. Built and run by
 * scripts/fuzz-http.sh. */
#include "fuzz_conn.h"

static uint8_t mode; /* handler behaviour */

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
    fuzz_serve(data + 2, size - 2, (uint32_t)(mode >> 3) * 2654435761u, mode & 0x80, handler, &o,
               (limits & 4) ? "::1" : "127.0.0.1");
    return 0;
}
