/* The HTTP layer's internal contract: one head parser (head.c) and one
 * chunked decoder (chunked.c) for the server's requests and the client's
 * responses; one connection state machine (conn.c, with parse.c around
 * the request) shared by the green-thread server (server.c) and the
 * classic thread-pool server (threaded.c), which differ only in how bytes
 * move (gr__http_io) and in who runs the connection. */
#ifndef GROVE_HTTP_INTERNAL_H
#define GROVE_HTTP_INTERNAL_H

#include "arch/fail.h"
#include <grove/http.h>

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
/* The smallest connection stack an HTTPS server takes: OpenSSL's
 * handshake runs on it, and small writes are gathered there (8 KiB). */
#define GR__HTTP_TLS_STACK_MIN ((size_t)32 * 1024)
/* A kept-alive connection waits this long for its next request in its
 * green thread before it is parked (docs/http.md, "Idle connections"):
 * longer than the gap between requests of clients that send them back to
 * back, even 10,000 of them at once (a park and a new thread per request
 * cost more than the wait), and short against an idle connection's life. */
#define GR__HTTP_PARK_AFTER_MS 1000
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
    struct gr_tls_ctx *tls; /* HTTPS (the server holds a reference) */
    atomic_int stopping;    /* finish the request in hand, then close */
    /* While stopping: how long an idle connection (a new one too) may
     * still wait for one more request (answered with Connection: close);
     * 0 (the default): take only a request already there. */
    _Atomic int64_t idle_until;
} gr__http_cfg;

/* A header's place in the connection buffer while it is parsed. */
typedef struct gr__http_span {
    uint32_t name_off, name_len, value_off, value_len;
} gr__http_span;

/* ------------------------------------------------------------ head.c */

/* How a message's body is delimited (RFC 9112 6.3). */
enum gr__http_body { GR__BODY_NONE, GR__BODY_LENGTH, GR__BODY_CHUNKED, GR__BODY_EOF };

/* One message head (start line and fields), parsed in place. Strict for
 * requests; lenient, where RFC 9112 lets a recipient be, for responses
 * (see head.c). */
typedef struct gr__http_head {
    llhttp_t parser;
    int lenient;
    const char *base; /* the buffer while llhttp runs: spans are offsets */
    gr__http_span *spans;
    gr_http_header *headers; /* after a parse: the fields, NUL-terminated */
    size_t nspans, cap, max; /* cap < max: both arrays are malloc'd and grow */
    uint32_t url_off, url_len;
    uint32_t start;    /* the start line's first byte (empty lines before it skipped) */
    uint32_t scan;     /* the scan resumes here: the first incomplete line */
    uint32_t prev_eol; /* where the last complete line's break begins */
    size_t bare_lf;    /* lenient: line breaks without their CR */
    int seen_start, prev_bare_lf, in_field, headers_done;
    int status; /* why the head was refused: 400, 431, 501, 505 */
    int err;    /* or an errno (ENOMEM) */
    /* After a parse: */
    int version;     /* 10 or 11 */
    int body;        /* enum gr__http_body */
    uint64_t length; /* GR__BODY_LENGTH */
    int must_close;  /* the framing is faulty: no message may follow this one */
} gr__http_head;

/* type: HTTP_REQUEST or HTTP_RESPONSE. spans and headers have room for
 * cap fields; at most max are taken (then 431). */
void gr__http_head_init(gr__http_head *h, int type, int lenient, gr__http_span *spans,
                        gr_http_header *headers, size_t cap, size_t max);
/* Before each head. */
void gr__http_head_begin(gr__http_head *h);
/* Look for the end of the head in buf[0, len), checking each line break
 * (lenient: mending them in place, without changing lengths). Returns the
 * offset just past the empty line that ends it, 0 when more bytes are
 * needed, or -1 when it is malformed (h->status = 400). */
ssize_t gr__http_head_scan(gr__http_head *h, char *buf, size_t len);
/* Lenient only, when h->bare_lf: put a CR before each bare LF of the head
 * that ends at end, moving the bytes after it up to len; buf must have
 * room for h->bare_lf more. The head then ends h->bare_lf bytes later. */
void gr__http_head_add_cr(gr__http_head *h, char *buf, size_t end, size_t len);
/* Parse the head buf[h->start, end) the scan found: fields, version,
 * Host (requests), framing. Returns 0, the status of a refusal (400, 431,
 * 501, 505), or -1 with h->err (ENOMEM). */
int gr__http_head_parse(gr__http_head *h, char *buf, size_t end);

/* --------------------------------------------------------- chunked.c */

typedef struct gr__http_chunked {
    uint8_t state;
    uint64_t size; /* the size being read, then the data left of the chunk */
    uint64_t wire; /* bytes of the body consumed, framing included */
} gr__http_chunked;

void gr__http_chunked_init(gr__http_chunked *d);
/* Decode in[0, n): the payload goes to out (out may be in, or below it),
 * *produced bytes of it. Returns the bytes consumed, fewer than n only
 * when the body ended, or -1 when it is malformed. */
ssize_t gr__http_chunked_decode(gr__http_chunked *d, const char *in, size_t n, char *out,
                                size_t *produced);
/* The whole body, trailers and final CR LF included, has been decoded. */
int gr__http_chunked_done(const gr__http_chunked *d);

/* -------------------------------------------------------- response.c */

/* The client's limits on a response (grove/http.h promises them). */
#define GR__HTTP_RESP_MAX_BODY ((size_t)64 << 20)
/* Status line and fields, interim responses included; real heads are a
 * few hundred bytes. */
#define GR__HTTP_RESP_MAX_HEAD ((size_t)1 << 20)
#define GR__HTTP_RESP_MAX_FIELDS 10000
/* Chunk framing, extensions and trailers around a chunked body. */
#define GR__HTTP_RESP_MAX_FRAMING GR__HTTP_RESP_MAX_HEAD

/* One response being read: the head into `in` (parsed in place), the body
 * de-chunked into `body`. */
typedef struct gr__http_reader {
    char *in;
    size_t in_cap, in_end;
    gr__http_head head;
    char *body;
    size_t body_len, body_cap;
    int body_kind;      /* enum gr__http_body */
    uint64_t body_left; /* of a GR__BODY_LENGTH body */
    gr__http_chunked chunked;
    int head_method;  /* the request was HEAD: no body follows */
    int headers_done; /* the final response's head is complete */
    int message_done; /* the final response is complete */
    int keep_alive;   /* the connection may serve another request */
    int status, version;
} gr__http_reader;

/* Grow *buf (capacity *cap) to at least need bytes, doubling, never past
 * max (need <= max). 0 or -1/ENOMEM. */
int gr__http_grow(char **buf, size_t *cap, size_t need, size_t max);
/* Buffers allocated here, freed by fini. 0 or -1/ENOMEM. */
int gr__http_reader_init(gr__http_reader *r);
void gr__http_reader_fini(gr__http_reader *r);
/* Before each response; head_method: it answers a HEAD. */
void gr__http_reader_begin(gr__http_reader *r, int head_method);
/* Where the next bytes go, and *room how many may: NULL with EMSGSIZE (a
 * head too large) or ENOMEM. */
char *gr__http_reader_room(gr__http_reader *r, size_t *room);
/* n bytes were put at the room: parse them. 0 or -1 with errno (EPROTO,
 * EMSGSIZE, ENOMEM). */
int gr__http_reader_got(gr__http_reader *r, size_t n);
/* The peer closed: 0 when that ends the response (a body delimited by the
 * close), else -1/EPIPE. */
int gr__http_reader_eof(gr__http_reader *r);
/* After message_done: the response, valid until the next begin. */
void gr__http_reader_result(gr__http_reader *r, gr_http_response *res);

enum gr__http_resp { RESP_NONE, RESP_LENGTH, RESP_CHUNKED, RESP_UNTIL_CLOSE, RESP_DONE };

struct gr__http_conn {
    int fd;
    struct gr_tls *tls; /* HTTPS: the stream over fd */
    const gr_addr *peer;
    const gr__http_io *io;
    gr__http_cfg *cfg;
    gr__http_head head;

    /* Input: [0, hdr_end) the request's head, [body_rd, body_wr) body bytes
     * parsed (de-chunked in place), [parsed, end) bytes not yet parsed. */
    char *buf;
    size_t cap, end, parsed, hdr_end, body_rd, body_wr;
    int64_t request_start; /* when its first byte arrived (ms) */
    int64_t body_deadline; /* the body must have come by then */

    /* The request being read. */
    int limit_error; /* the body broke a rule or a limit: the status to send */
    int headers_done, message_done;
    int body_kind;       /* enum gr__http_body */
    uint64_t body_left;  /* of a GR__BODY_LENGTH body */
    uint64_t body_total; /* body bytes as sent, framing included */
    gr__http_chunked chunked;

    /* The request and its answer. */
    gr_http_request req;
    int keep_alive, peer_keep_alive, head_method, expect_continue, continue_sent;
    int resp, status;
    int64_t resp_left; /* bytes still owed for RESP_LENGTH */
    uint64_t resp_bytes;
    char *out;
    char *target_copy; /* the target of a request with a query string */
    size_t target_cap;
    void *owner; /* the server's, for its idle hook */
    void *hook_node;
    /* Between requests, with no byte of the next one come (at once in a
     * new turn, within GR__HTTP_PARK_AFTER_MS after an answer), give the
     * connection up (gr__http_conn_run returns 1) rather than wait. */
    int may_park;
    int block_owned; /* fini frees the buffers' block */
};

/* Set c up around an accepted connection; its buffers are allocated here
 * (one block, freed by fini). Returns 0 or -1/ENOMEM. */
int gr__http_conn_init(gr__http_conn *c, int fd, const gr_addr *peer, const gr__http_io *io,
                       gr__http_cfg *cfg);
/* The size of that block for cfg (23 KiB with the defaults). */
size_t gr__http_conn_block_size(const gr__http_cfg *cfg);
/* gr__http_conn_init with the caller's block (8-byte aligned, of
 * gr__http_conn_block_size bytes, valid until fini, which leaves it): the
 * green server puts it on the connection thread's stack. */
void gr__http_conn_init_in(gr__http_conn *c, int fd, const gr_addr *peer, const gr__http_io *io,
                           gr__http_cfg *cfg, void *block);
void gr__http_conn_fini(gr__http_conn *c);

/* Serve requests on c until the connection is done (returns 0: linger,
 * fini and close), or, with c->may_park, until no byte of a next request
 * has come (returns 1: nothing is left unread; fini, and watch the fd to
 * serve it again with a new c). idle_hook, when not NULL, is called with 1
 * before waiting for a next request and with 0 when one starts (both
 * servers use it to close idle connections at shutdown). */
int gr__http_conn_run(gr__http_conn *c, void (*idle_hook)(gr__http_conn *c, int idle));

/* After gr__http_conn_run: shut down writing and drop what the client still
 * sends, briefly, when it left input unread, so the close does not reset
 * the connection under the last response. */
void gr__http_conn_linger(gr__http_conn *c);

/* parse.c: the request around a connection's buffer. */
/* Look for the request's head in [0, end): 1 when it is complete and
 * c->req is filled in, 0 when more bytes are needed, or the status to
 * answer (400, 431, 500, 501, 505). */
int gr__http_request_head(gr__http_conn *c);
/* Parse body bytes [parsed, end), the payload going to body_wr. Returns 0
 * or the status to answer: 400 (malformed chunking), 413 (over
 * max_body). */
int gr__http_request_body(gr__http_conn *c);

/* Resolve options into a configuration. Returns 0 or -1/EINVAL. */
int gr__http_cfg_init(gr__http_cfg *cfg, gr_http_handler handler, void *arg,
                      const gr_http_opts *opts);

/* ------------------------------------------- shared by server and client */

/* Header names are tokens and values free of line breaks and controls
 * (tab aside), so no header can smuggle another line into a message. */
int gr__http_header_ok(const gr_http_header *h);

/* Token characters (RFC 9110 5.6.2: visible ASCII but delimiters), and
 * the characters of a Host's name (RFC 3986 reg-name or IPv4): bits of
 * one table, since every field name of every request is checked. */
enum { GR__HTTP_TCHAR = 1, GR__HTTP_HOSTCHAR = 2 };
extern const unsigned char gr__http_chars[256];

static inline int gr__http_tchar(unsigned char ch)
{
    return gr__http_chars[ch] & GR__HTTP_TCHAR;
}

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

/* How many elements of the comma-separated list equal token
 * (case-insensitively, blanks around them ignored); *others counts the
 * other non-empty ones. */
size_t gr__http_list_count(const char *list, const char *token, size_t *others);

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
