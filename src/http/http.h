/* The HTTP layer's internal contract: one connection state machine
 * (conn.c) shared by the green-thread server (server.c) and the classic
 * thread-pool server (threaded.c), which differ only in how bytes move
 * (gr__http_io) and in who runs the connection. */
#ifndef GROVE_HTTP_H
#define GROVE_HTTP_H

#include "arch/fail.h"
#include "grove.h"

#include <llhttp.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/uio.h>

/* Defaults of gr_http_opts (0 picks these). */
#define GR__HTTP_MAX_HEADER_BYTES 8192
#define GR__HTTP_MAX_HEADERS 100
#define GR__HTTP_MAX_BODY ((uint64_t)16 << 20)
#define GR__HTTP_HEADER_TIMEOUT 10000
#define GR__HTTP_IDLE_TIMEOUT 60000
#define GR__HTTP_BODY_TIMEOUT 30000
#define GR__HTTP_WRITE_TIMEOUT 30000
/* Room after the header section for body bytes and pipelined requests. */
#define GR__HTTP_BODY_ROOM 8192
/* A connection closed with unread input reads and drops this much, for at
 * most this long, before closing (see gr__http_conn_linger). */
#define GR__HTTP_LINGER_MS 2000
#define GR__HTTP_LINGER_BYTES (256 * 1024)
/* The response head is built here: status line and headers. */
#define GR__HTTP_OUT_BYTES 4096

typedef struct gr__http_conn gr__http_conn;

/* How a connection moves bytes: green-thread I/O with deadlines, or
 * blocking system calls in an OS thread. */
typedef struct gr__http_io {
    /* > 0 bytes, 0 at end of stream, -1 with errno (ETIMEDOUT at deadline) */
    ssize_t (*read)(gr__http_conn *c, void *buf, size_t len, int64_t deadline);
    /* everything, or -1 with errno; flags are send(2) flags (MSG_MORE) */
    int (*write)(gr__http_conn *c, struct iovec *iov, int n, int flags, int64_t deadline);
    /* milliseconds, the clock deadlines are measured on */
    int64_t (*now)(void);
} gr__http_io;

/* What a server hands each of its connections: resolved options. */
typedef struct gr__http_cfg {
    gr_http_handler handler;
    void *arg;
    size_t max_header_bytes, max_headers;
    uint64_t max_body;
    int64_t header_timeout, idle_timeout, body_timeout, write_timeout;
    FILE *access_log;
    atomic_int stopping; /* finish the request in hand, then close */
} gr__http_cfg;

/* A header's place in the connection buffer while it is parsed. */
typedef struct gr__http_span {
    uint32_t name_off, name_len, value_off, value_len;
} gr__http_span;

enum gr__http_resp { RESP_NONE, RESP_LENGTH, RESP_CHUNKED, RESP_UNTIL_CLOSE, RESP_DONE };

struct gr__http_conn {
    int fd;
    const gr_addr *peer;
    const gr__http_io *io;
    gr__http_cfg *cfg;
    llhttp_t parser;

    /* Input: [0, hdr_end) the request's head, [body_rd, body_wr) body bytes
     * parsed (de-chunked in place), [parsed, end) bytes not yet parsed. */
    char *buf;
    size_t cap, end, parsed, hdr_end, body_rd, body_wr;
    int64_t request_start; /* when its first byte arrived (ms) */

    /* The head being parsed. */
    uint32_t url_off, url_len;
    gr__http_span *spans;
    gr_http_header *headers;
    size_t nspans;
    int in_value;    /* the last callback was a header value */
    int limit_error; /* a limit was hit in a callback: the status to send */
    int headers_done, message_done;
    uint64_t body_total;

    /* The request and its answer. */
    gr_http_request req;
    int keep_alive, head_method, expect_continue, continue_sent;
    int resp, status;
    int64_t resp_left; /* bytes still owed for RESP_LENGTH */
    uint64_t resp_bytes;
    char *out;
    char *target_copy; /* the target of a request with a query string */
    size_t target_cap;
    void *owner;       /* the server's, for its idle hook */
    void *hook_node;
};

/* Set c up around an accepted connection; buffers are allocated here, once
 * per connection. Returns 0 or -1/ENOMEM. */
int gr__http_conn_init(gr__http_conn *c, int fd, const gr_addr *peer, const gr__http_io *io,
                       gr__http_cfg *cfg);
void gr__http_conn_fini(gr__http_conn *c);

/* Serve requests on c until the connection is done. idle_hook, when not
 * NULL, is called with 1 before waiting for a next request and with 0 when
 * one starts (the green-thread server uses it to close idle connections at
 * shutdown). */
void gr__http_conn_run(gr__http_conn *c, void (*idle_hook)(gr__http_conn *c, int idle));

/* After gr__http_conn_run: shut down writing and drop what the client still
 * sends, briefly, when it left input unread, so the close does not reset
 * the connection under the last response. */
void gr__http_conn_linger(gr__http_conn *c);

/* parse.c: the parser around a connection's buffer. */
void gr__http_parser_init(gr__http_conn *c);
/* Parse [parsed, end). Returns 0 (all parsed, or stopped at the end of a
 * head with a body, or of a message), or the status to answer: 400, 413,
 * 431. */
int gr__http_feed(gr__http_conn *c);
/* Fill c->req from a complete head. 0 or -1/ENOMEM. */
int gr__http_build_request(gr__http_conn *c);

/* Resolve options into a configuration. Returns 0 or -1/EINVAL. */
int gr__http_cfg_init(gr__http_cfg *cfg, gr_http_handler handler, void *arg,
                      const gr_http_opts *opts);

/* ------------------------------------------- shared by server and client */

/* Header names are tokens and values free of line breaks and controls
 * (tab aside), so no header can smuggle another line into a message. */
int gr__http_header_ok(const gr_http_header *h);

/* Appending to a message being built; the caller has checked the room. */
static inline char *gr__http_put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

static inline char *gr__http_put_str(char *o, const char *s)
{
    return gr__http_put(o, s, strlen(s));
}

char *gr__http_put_u64(char *o, uint64_t v);

/* "Name: value\r\n" for each of the n headers. */
static inline char *gr__http_put_headers(char *o, const gr_http_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        o = gr__http_put_str(o, h[i].name);
        o = gr__http_put(o, ": ", 2);
        o = gr__http_put_str(o, h[i].value);
        o = gr__http_put(o, "\r\n", 2);
    }
    return o;
}

/* Drop the first w bytes written from *iov (*n entries), for a write
 * that went only part of the way. */
static inline void gr__http_iov_consume(struct iovec **iov, int *n, size_t w)
{
    while (*n > 0 && w >= (*iov)->iov_len) {
        w -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + w;
        (*iov)->iov_len -= w;
    }
}

/* The reason phrase of a status ("OK"), "" for unknown codes. */
const char *gr__http_reason(int status);

/* The current Date header value, cached per OS thread and second. */
const char *gr__http_date(void);

#endif
