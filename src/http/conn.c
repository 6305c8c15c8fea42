/* One HTTP/1.1 connection: read a request's head, run the handler, make
 * sure a complete response went out, skip what is left of the body, and
 * go round again while the connection may be kept alive. The same code
 * serves green threads and OS threads; only gr__http_io differs. */
#include "http.h"

#include "core/core.h" /* gr__report */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Unread body worth reading and dropping to keep a connection alive;
 * beyond it, closing is cheaper. */
#define DRAIN_MAX (64 * 1024)

size_t gr__http_conn_block_size(const gr__http_cfg *cfg)
{
    return cfg->max_headers * (sizeof(gr__http_span) + sizeof(gr_http_header)) +
           GR__HTTP_OUT_BYTES + cfg->max_header_bytes + GR__HTTP_BODY_ROOM;
}

void gr__http_conn_init_in(gr__http_conn *c, int fd, const gr_addr *peer, const gr__http_io *io,
                           gr__http_cfg *cfg, void *block)
{
    size_t spans = cfg->max_headers * sizeof(gr__http_span);
    size_t headers = cfg->max_headers * sizeof(gr_http_header);
    char *b = block;

    memset(c, 0, sizeof *c);
    gr__http_head_init(&c->head, HTTP_REQUEST, 0, (gr__http_span *)(void *)b,
                       (gr_http_header *)(void *)(b + spans), cfg->max_headers, cfg->max_headers);
    c->out = b + spans + headers;
    c->buf = c->out + GR__HTTP_OUT_BYTES;
    c->cap = cfg->max_header_bytes + GR__HTTP_BODY_ROOM;
    c->fd = fd;
    c->peer = peer;
    c->io = io;
    c->cfg = cfg;
    c->req.conn_ = c;
    c->req.peer = peer;
    gr__http_head_begin(&c->head);
}

int gr__http_conn_init(gr__http_conn *c, int fd, const gr_addr *peer, const gr__http_io *io,
                       gr__http_cfg *cfg)
{
    /* One allocation, held while requests come: a busy kept-alive
     * connection allocates nothing more. */
    void *block = gr__malloc(gr__http_conn_block_size(cfg));

    if (!block) {
        errno = ENOMEM;
        return -1;
    }
    gr__http_conn_init_in(c, fd, peer, io, cfg, block);
    c->block_owned = 1;
    return 0;
}

void gr__http_conn_fini(gr__http_conn *c)
{
    if (c->block_owned)
        free(c->head.spans); /* the block */
    free(c->target_copy);
    c->head.spans = NULL;
    c->target_copy = NULL;
}

/* ----------------------------------------------------------- responses */

static int no_body_status(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* The server owns the framing (and a response carrying two would let a
 * client and a proxy read different bodies): a handler's Content-Length
 * or Transfer-Encoding is refused, and so is a Connection field other
 * than "close", which asks the server to close after the response. Returns
 * -1 to refuse h, 1 for "Connection: close" (written by the server), else
 * 0. */
static int framing_field(const gr_http_header *h, size_t name_len)
{
    size_t others;

    if ((name_len == 14 && !strcasecmp(h->name, "Content-Length")) ||
        (name_len == 17 && !strcasecmp(h->name, "Transfer-Encoding")))
        return -1;
    if (name_len != 10 || strcasecmp(h->name, "Connection"))
        return 0;
    return gr__http_list_count(h->value, "close", &others) && !others ? 1 : -1;
}

/* Build the response head in c->out. length: the body's size, or -1 for a
 * body of unknown length. Returns its size, or -1 with EINVAL/EMSGSIZE. */
static ssize_t build_head(gr__http_conn *c, int status, const gr_http_header *h, size_t n,
                          int64_t length)
{
    char *o = c->out, *end = c->out + GR__HTTP_OUT_BYTES;
    /* What the server writes itself, at most: status line with the
     * longest reason (46), Date (39), Content-Length with 20 digits (38) or
     * Transfer-Encoding (28), Connection (24) and the blank line (2): 149.
     * c->buf follows c->out: nothing may be written past end. */
    size_t need = 160;
    int close = 0, f;

    /* 1xx are interim answers, never the response: sent as one, the client
     * would take the next response for this request's. The server sends
     * the one it supports, 100 Continue, itself. */
    if (status < 200 || status > 999) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t name_len = strlen(h[i].name);

        if (!gr__http_header_ok(&h[i]) || (f = framing_field(&h[i], name_len)) < 0) {
            errno = EINVAL;
            return -1;
        }
        close |= f;
        need += name_len + strlen(h[i].value) + 4;
    }
    if (need > (size_t)(end - o)) {
        errno = EMSGSIZE;
        return -1;
    }
    /* Close after this response when the server is stopping, and when the
     * client was told to wait for 100 Continue that was not sent: it may
     * or may not send the body now, so the connection cannot be reused. */
    if (close || atomic_load(&c->cfg->stopping) ||
        (c->expect_continue && !c->continue_sent && !c->message_done))
        c->keep_alive = 0;
    o = gr__http_put(o, "HTTP/1.1 ", 9);
    o = gr__http_put_u64(o, (uint64_t)status);
    *o++ = ' ';
    o = gr__http_put_str(o, gr__http_reason(status));
    o = gr__http_put(o, "\r\nDate: ", 8);
    o = gr__http_put_str(o, gr__http_date());
    o = gr__http_put(o, "\r\n", 2);
    if (!close)
        o = gr__http_put_headers(o, h, n);
    else /* the server writes the one Connection field */
        for (size_t i = 0; i < n; i++)
            if (strcasecmp(h[i].name, "Connection"))
                o = gr__http_put_headers(o, &h[i], 1);
    if (!no_body_status(status)) {
        if (length >= 0) {
            o = gr__http_put(o, "Content-Length: ", 16);
            o = gr__http_put_u64(o, (uint64_t)length);
            o = gr__http_put(o, "\r\n", 2);
        } else if (c->req.version >= 11) {
            o = gr__http_put(o, "Transfer-Encoding: chunked\r\n", 28);
        } else {
            c->keep_alive = 0; /* the body ends when the connection does */
        }
    }
    if (!c->keep_alive)
        o = gr__http_put(o, "Connection: close\r\n", 19);
    else if (c->req.version < 11)
        o = gr__http_put(o, "Connection: keep-alive\r\n", 24);
    o = gr__http_put(o, "\r\n", 2);
    return o - c->out;
}

/* The earlier of a caller's deadline (-1: none) and a server limit. */
static int64_t earlier(int64_t deadline, int64_t limit)
{
    return deadline < 0 || deadline > limit ? limit : deadline;
}

static int64_t write_deadline(gr__http_conn *c, int64_t deadline)
{
    return earlier(deadline, c->io->now() + c->cfg->write_timeout);
}

/* Write a response's pieces; body counts the body bytes among them (for
 * the access log). done: the response is complete after these. When it
 * is also the connection's last, MSG_MORE holds the bytes back until the
 * close() that follows, so data and FIN leave in one segment: one wake-up
 * less for the client per connection without keep-alive. */
static int send_iov(gr__http_conn *c, struct iovec *iov, int n, size_t body, int done,
                    int64_t deadline)
{
    /* Only when the request was read whole: closing with unread input
     * resets the connection, and a reset discards data held back. */
    int flags = done && !c->keep_alive && c->message_done && c->parsed == c->end ? MSG_MORE : 0;

    if (c->io->write(c, iov, n, flags, write_deadline(c, deadline)) == 0) {
        c->resp_bytes += body;
        return 0;
    }
    c->keep_alive = 0;
    return -1;
}

static gr__http_conn *conn_of_req(gr_http_request *req)
{
    return req->conn_;
}

int gr_http_respond(gr_http_request *req, int status, const gr_http_header *headers,
                    size_t nheaders, const void *body, size_t len, int64_t deadline)
{
    gr__http_conn *c = conn_of_req(req);
    struct iovec iov[2];
    ssize_t n;

    if (c->resp != RESP_NONE) {
        errno = EINVAL;
        return -1;
    }
    if ((n = build_head(c, status, headers, nheaders, (int64_t)len)) < 0)
        return -1;
    c->resp = RESP_DONE;
    c->status = status;
    iov[0] = (struct iovec){c->out, (size_t)n};
    iov[1] = (struct iovec){(void *)body, len};
    /* HEAD and bodiless statuses: the head alone, with the length a GET
     * would have had. */
    if (c->head_method || no_body_status(status) || !len)
        return send_iov(c, iov, 1, 0, 1, deadline);
    return send_iov(c, iov, 2, len, 1, deadline);
}

int gr_http_begin(gr_http_request *req, int status, const gr_http_header *headers, size_t nheaders,
                  int64_t length, int64_t deadline)
{
    gr__http_conn *c = conn_of_req(req);
    struct iovec iov;
    ssize_t n;

    if (c->resp != RESP_NONE || length < -1) {
        errno = EINVAL;
        return -1;
    }
    if ((n = build_head(c, status, headers, nheaders, length)) < 0)
        return -1;
    c->status = status;
    if (c->head_method || no_body_status(status)) {
        c->resp = RESP_DONE;
    } else if (length >= 0) {
        c->resp = RESP_LENGTH;
        c->resp_left = length;
    } else {
        c->resp = req->version >= 11 ? RESP_CHUNKED : RESP_UNTIL_CLOSE;
    }
    iov = (struct iovec){c->out, (size_t)n};
    return send_iov(c, &iov, 1, 0, c->resp == RESP_DONE, deadline);
}

int gr_http_send(gr_http_request *req, const void *data, size_t len, int64_t deadline)
{
    gr__http_conn *c = conn_of_req(req);
    struct iovec iov[3];
    char size[24];
    int n = 0;

    if (c->resp == RESP_DONE && (c->head_method || no_body_status(c->status)))
        return 0; /* a body that is not sent, as HEAD asks */
    if (c->resp == RESP_NONE || c->resp == RESP_DONE ||
        (c->resp == RESP_LENGTH && (int64_t)len > c->resp_left)) {
        errno = EINVAL;
        return -1;
    }
    if (!len)
        return 0;
    if (c->resp == RESP_CHUNKED) {
        int k = snprintf(size, sizeof size, "%zx\r\n", len);

        iov[n++] = (struct iovec){size, (size_t)k};
    }
    iov[n++] = (struct iovec){(void *)data, len};
    if (c->resp == RESP_CHUNKED)
        iov[n++] = (struct iovec){"\r\n", 2};
    if (c->resp == RESP_LENGTH)
        c->resp_left -= (int64_t)len;
    return send_iov(c, iov, n, len, c->resp == RESP_LENGTH && c->resp_left == 0, deadline);
}

int gr_http_end(gr_http_request *req, int64_t deadline)
{
    gr__http_conn *c = conn_of_req(req);
    struct iovec iov = {"0\r\n\r\n", 5};
    int was = c->resp;

    if (was == RESP_NONE) {
        errno = EINVAL;
        return -1;
    }
    c->resp = RESP_DONE;
    if (was == RESP_CHUNKED)
        return send_iov(c, &iov, 1, 0, 1, deadline);
    if (was == RESP_LENGTH && c->resp_left > 0) {
        c->keep_alive = 0; /* the client waits for bytes that will not come */
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* A short plain-text answer from the server itself (errors, 100). */
static void send_status(gr__http_conn *c, int status)
{
    char body[64];
    static const gr_http_header h[] = {{"Content-Type", "text/plain"}};
    int n = snprintf(body, sizeof body, "%d %s\n", status, gr__http_reason(status));

    gr_http_respond(&c->req, status, h, 1, body, (size_t)n, -1);
}

/* -------------------------------------------------------------- bodies */

static ssize_t read_more(gr__http_conn *c, int64_t deadline)
{
    ssize_t n;

    if (c->end == c->cap) { /* everything parsed: start the body room over */
        c->body_rd = c->body_wr = c->parsed = c->end = c->hdr_end;
    }
    n = c->io->read(c, c->buf + c->end, c->cap - c->end, deadline);
    if (n > 0)
        c->end += (size_t)n;
    return n;
}

static void send_continue(gr__http_conn *c, int64_t deadline)
{
    struct iovec iov = {"HTTP/1.1 100 Continue\r\n\r\n", 25};

    c->continue_sent = 1;
    if (c->io->write(c, &iov, 1, 0, write_deadline(c, deadline)) != 0)
        c->keep_alive = 0;
}

/* Make body bytes available, reading and parsing more until deadline.
 * Returns 1 when some are, 0 at the end of the body, -1 with errno. */
static int body_fill(gr__http_conn *c, int64_t deadline)
{
    while (c->body_rd == c->body_wr && !c->message_done) {
        int status;

        c->body_rd = c->body_wr = c->hdr_end; /* all handed out: reuse */
        if (c->parsed == c->end) {
            ssize_t n;

            c->parsed = c->end = c->hdr_end;
            n = read_more(c, deadline);
            if (n <= 0) {
                c->keep_alive = 0;
                if (n == 0)
                    errno = EPIPE;
                return -1;
            }
        }
        if ((status = gr__http_request_body(c)) != 0) {
            c->keep_alive = 0;
            c->limit_error = status;
            errno = status == 413 ? EMSGSIZE : EPROTO;
            return -1;
        }
    }
    return c->body_rd < c->body_wr;
}

ssize_t gr_http_read_body(gr_http_request *req, void *buf, size_t len, int64_t deadline)
{
    gr__http_conn *c = conn_of_req(req);
    size_t n;
    int r;

    if (c->limit_error) {
        errno = c->limit_error == 413 ? EMSGSIZE : EPROTO;
        return -1;
    }
    deadline = earlier(deadline, c->body_deadline);
    if (c->expect_continue && !c->continue_sent && c->resp == RESP_NONE)
        send_continue(c, deadline);
    if ((r = body_fill(c, deadline)) <= 0)
        return r;
    n = c->body_wr - c->body_rd < len ? c->body_wr - c->body_rd : len;
    memcpy(buf, c->buf + c->body_rd, n);
    c->body_rd += n;
    return (ssize_t)n;
}

/* After the handler: read and drop what it left of the body, if that keeps
 * the connection usable at a reasonable cost. */
static void skip_body(gr__http_conn *c)
{
    uint64_t dropped = 0;

    if (c->message_done || !c->keep_alive)
        return;
    /* A client waiting for 100 Continue that never came may not send the
     * body at all; and a large body is cheaper to cut off. */
    if ((c->expect_continue && !c->continue_sent) ||
        (c->req.content_length > DRAIN_MAX && (uint64_t)c->req.content_length > c->body_total)) {
        c->keep_alive = 0;
        return;
    }
    while (dropped < DRAIN_MAX && body_fill(c, c->body_deadline) > 0) {
        dropped += c->body_wr - c->body_rd;
        c->body_rd = c->body_wr;
    }
    if (!c->message_done)
        c->keep_alive = 0;
}

const char *gr_http_header_get(const gr_http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (!strcasecmp(req->headers[i].name, name))
            return req->headers[i].value;
    return NULL;
}

/* ---------------------------------------------------------- access log */

/* One line in the common log format:
 *   host - - [10/Oct/2000:13:55:36 +0200] "GET /a HTTP/1.1" 200 2326
 * host without its port (and an IPv6 one without brackets), the local
 * time, the request line ("-" for a request that could not be parsed),
 * the status, and the body bytes sent ("-" for none). */
static void log_access(gr__http_conn *c)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char addr[128] = "-", when[96], bytes[24] = "-";
    const char *host = addr;
    struct timespec ts;
    struct tm tm;
    long off;

    if (!c->cfg->access_log)
        return;
    if (c->peer && gr_addr_format(c->peer, addr, sizeof addr) < 0)
        strcpy(addr, "-");
    if (c->peer && c->peer->u.sa.sa_family != AF_UNIX) {
        char *colon = strrchr(addr, ':');

        if (colon)
            *colon = '\0';
        if (addr[0] == '[') {
            char *close = strchr(addr, ']');

            host = addr + 1;
            if (close)
                *close = '\0';
        }
    }
    if (!host[0]) /* an unnamed Unix socket */
        host = "-";
    /* The month by its English name whatever the locale, as CLF wants. */
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    off = tm.tm_gmtoff / 60;
    snprintf(when, sizeof when, "%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld", tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
             off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
    if (c->resp_bytes)
        snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)c->resp_bytes);
    if (c->req.method)
        fprintf(c->cfg->access_log, "%s - - [%s] \"%s %s HTTP/%d.%d\" %d %s\n", host, when,
                c->req.method, c->req.target, c->req.version / 10, c->req.version % 10, c->status,
                bytes);
    else /* a request that could not be parsed */
        fprintf(c->cfg->access_log, "%s - - [%s] \"-\" %d %s\n", host, when, c->status, bytes);
    fflush(c->cfg->access_log);
}

/* -------------------------------------------------------- the request */

/* How long to wait for the next request. A stopping server still takes
 * one that comes before its idle_until: closing a connection the client
 * may be sending on right now (a new one, or a kept one) would reset its
 * request, where one more response with Connection: close ends it
 * cleanly. */
static int64_t idle_deadline(const gr__http_conn *c)
{
    int64_t deadline = c->io->now() + c->cfg->idle_timeout, until;

    if (atomic_load(&c->cfg->stopping) && (until = atomic_load(&c->cfg->idle_until)) < deadline)
        deadline = until;
    return deadline;
}

/* Wait for and parse the next request's head. Returns 0 with the head
 * complete, 1 when the connection is done (closed, idle too long,
 * stopping), 2 when nothing came by park_at (-1: never park; 0: try once),
 * or the status of an error to answer before closing. */
static int read_head(gr__http_conn *c, int64_t park_at)
{
    for (;;) {
        int64_t deadline;
        int parking;
        ssize_t n;
        int status = gr__http_request_head(c);

        if (status == 1)
            return 0;
        if (status != 0)
            return status;
        if (c->end >= c->cfg->max_header_bytes)
            return 431;
        /* Nothing of a next request yet, on a connection that may be
         * parked: wait until park_at at most, then give the thread and the
         * buffers up (the server watches the fd meanwhile). A stopping
         * server parks nothing: it waits until idle_deadline. */
        parking = c->end == 0 && park_at >= 0 && !atomic_load(&c->cfg->stopping);
        if (c->end > 0)
            deadline = c->request_start + c->cfg->header_timeout;
        else
            deadline = parking ? park_at : idle_deadline(c);
        n = c->io->read(c, c->buf + c->end, c->cap - c->end, deadline);
        if (n < 0 && errno == ETIMEDOUT && parking) {
            if (!atomic_load(&c->cfg->stopping))
                return 2;
            continue; /* a stop came meanwhile: wait as it says */
        }
        if (n <= 0) /* closed, reset, idle, or a head that came too slowly */
            return n < 0 && errno == ETIMEDOUT && c->end > 0 ? 408 : 1;
        if (c->end == 0)
            c->request_start = c->io->now();
        c->end += (size_t)n;
    }
}

static int wants_continue(const gr_http_request *r)
{
    const char *e = gr_http_header_get(r, "Expect");

    return e && !strcasecmp(e, "100-continue");
}

static void start_request(gr__http_conn *c)
{
    gr_http_request *r = &c->req;

    c->hdr_end = c->body_rd = c->body_wr = c->parsed;
    c->resp = RESP_NONE;
    c->status = 0;
    c->resp_bytes = 0;
    c->continue_sent = 0;
    c->limit_error = 0;
    /* The whole body, and the drain after the handler, within one time-out:
     * a byte every few seconds must not hold the connection for ever. */
    c->body_deadline = c->io->now() + c->cfg->body_timeout;
    c->head_method = c->head.parser.method == HTTP_HEAD;
    /* Faulty framing (HTTP/1.0 with Transfer-Encoding) ends the
     * connection: what follows cannot be trusted to be a request. */
    c->peer_keep_alive = llhttp_should_keep_alive(&c->head.parser);
    c->keep_alive = c->peer_keep_alive && !c->head.must_close && !atomic_load(&c->cfg->stopping);
    r->keep_alive = c->keep_alive;
    c->expect_continue = r->version >= 11 && wants_continue(r);
}

/* A handler that failed is the program's to hear about (gevent prints
 * the traceback of a failed handler). */
static void report_failure(gr__http_conn *c, int rc, const char *outcome)
{
    int err = errno;

    if (rc != 0)
        gr__report(GR_REPORT_HANDLER, err, "http: the handler for %s %.200s failed (%s); %s",
                   c->req.method, c->req.target, strerror(err), outcome);
    else
        gr__report(GR_REPORT_HANDLER, 0,
                   "http: the handler for %s %.200s returned without answering; %s", c->req.method,
                   c->req.target, outcome);
    errno = err;
}

/* Run the handler and see that a whole response went out. */
static void dispatch(gr__http_conn *c)
{
    int rc;

    if (c->req.content_length > 0 && (uint64_t)c->req.content_length > c->cfg->max_body) {
        c->keep_alive = 0;
        send_status(c, 413);
        return;
    }
    rc = c->cfg->handler(&c->req, c->cfg->arg);
    if (c->resp == RESP_NONE) {
        /* A body over the limit is the client's fault, anything else ours. */
        if (!c->limit_error)
            report_failure(c, rc, "answered 500");
        send_status(c, c->limit_error ? c->limit_error : 500);
    } else if (rc != 0) {
        report_failure(c, rc, "the response was cut short");
        c->keep_alive = 0; /* half a response: only closing ends it */
    } else if (c->resp != RESP_DONE) {
        if (gr_http_end(&c->req, -1) != 0)
            c->keep_alive = 0;
    }
    if (c->resp == RESP_UNTIL_CLOSE)
        c->keep_alive = 0;
}

/* Move a pipelined request's bytes to the front for the next round. */
static void next_request(gr__http_conn *c)
{
    size_t left = c->end - c->parsed;

    memmove(c->buf, c->buf + c->parsed, left);
    c->end = left;
    c->parsed = c->hdr_end = c->body_rd = c->body_wr = 0;
    c->headers_done = c->message_done = 0;
    c->limit_error = 0; /* the parser reports the next request's own */
    gr__http_head_begin(&c->head);
    c->request_start = left ? c->io->now() : 0;
}

static void answer_error(gr__http_conn *c, int status)
{
    /* Nothing of the previous request on this connection may carry over:
     * its answer (a finished response would refuse this one), HEAD, 100. */
    c->resp = RESP_NONE;
    c->status = 0;
    c->resp_bytes = 0;
    c->head_method = 0;
    c->expect_continue = c->continue_sent = 0;
    c->keep_alive = 0;
    c->req.version = 11;
    c->req.method = NULL;
    c->req.target = NULL;
    send_status(c, status);
    log_access(c);
}

/* When a connection that may be parked gives its thread up: at once when
 * the thread was started for it (a new connection, or bytes came), and
 * after a wait for the next request once it has answered one, so that a
 * client sending requests back to back keeps its thread. */
static int64_t park_at(gr__http_conn *c, int answered)
{
    int64_t wait = GR__HTTP_PARK_AFTER_MS;

    if (!c->may_park)
        return -1;
    if (!answered)
        return 0;
    return c->io->now() + (wait < c->cfg->idle_timeout ? wait : c->cfg->idle_timeout);
}

int gr__http_conn_run(gr__http_conn *c, void (*idle_hook)(gr__http_conn *c, int idle))
{
    for (int answered = 0;; answered = 1) {
        int status;

        if (idle_hook && c->end == 0)
            idle_hook(c, 1);
        status = read_head(c, park_at(c, answered));
        if (idle_hook)
            idle_hook(c, 0);
        if (status == 1)
            return 0;
        if (status == 2)
            return 1;
        if (status != 0) {
            answer_error(c, status);
            return 0;
        }
        start_request(c);
        dispatch(c);
        skip_body(c);
        log_access(c);
        if (!c->keep_alive)
            return 0;
        next_request(c);
    }
}

/* Close politely: a connection closed with unread input is reset by the
 * kernel, and the reset can overtake the response we just sent (a 413 to a
 * client still sending its body, a 408 to a slow one). So stop writing,
 * then read and drop what the client still sends, for a while. */
void gr__http_conn_linger(gr__http_conn *c)
{
    int64_t deadline = c->io->now() + GR__HTTP_LINGER_MS;
    size_t dropped = 0;
    /* A plain close is clean when nothing is unread and the client is not
     * about to send more: it asked to close, or the connection was idle.
     * One that expected to keep the connection (an error, faulty framing,
     * a stopping server closed it) may have a pipelined request in flight. */
    int client_done = c->message_done ? !c->peer_keep_alive : !c->headers_done;

    if (c->parsed == c->end && client_done && !c->limit_error && c->status < 400)
        return;
    shutdown(c->fd, SHUT_WR);
    while (dropped < GR__HTTP_LINGER_BYTES) {
        ssize_t n = c->io->read(c, c->buf, c->cap, deadline);

        if (n <= 0)
            break;
        dropped += (size_t)n;
    }
}
