/* The fuzzers' in-memory connection: gr__http_io over a byte string that
 * a client sends in slices, with the server's writes checked by llhttp's
 * response parser. Shared by fuzz/http_request_fuzz.c and
 * fuzz/http_diff_fuzz.c. */
#ifndef GROVE_FUZZ_CONN_H
#define GROVE_FUZZ_CONN_H

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

/* Serve data[0, n) from the client at peer_ip on one in-memory connection
 * with handler h and options o; seed slices the reads (0: everything at
 * once); end_timeout: the stream ends in a time-out rather than a close. */
static void fuzz_serve(const uint8_t *data, size_t n, uint32_t seed, int end_timeout,
                       gr_http_handler h, const gr_http_opts *o, const char *peer_ip)
{
    gr__http_cfg cfg;
    gr__http_conn c;
    gr_addr peer;

    if (gr__http_cfg_init(&cfg, h, NULL, o) != 0)
        abort();
    gr_addr_ip(&peer, peer_ip, 8080);
    in = (fuzz_in){data, n, 0, seed, end_timeout, 0};
    llhttp_settings_init(&resp_settings);
    resp_settings.on_headers_complete = resp_headers_complete;
    llhttp_init(&resp_parser, HTTP_RESPONSE, &resp_settings);
    if (gr__http_conn_init(&c, -1, &peer, &fuzz_io, &cfg) != 0)
        return;
    gr__http_conn_run(&c, NULL);
    gr__http_conn_fini(&c);
}

#endif
