/* The HTTP/1.1 client: one kept-alive connection to one server, requests
 * one at a time, responses parsed by the server's own head parser
 * (head.c, in its lenient mode) and chunked decoder (chunked.c).
 *
 * Memory: every buffer belongs to the client and only grows, so requests
 * in the steady state allocate nothing. The request head is built in
 * `out` and leaves with the body in one writev. The response head is read
 * into `in` and parsed in place, as the server parses requests: its names
 * and values are NUL-terminated where they stand and the header array
 * points at them. Body bytes then go straight into `body`: each read lands
 * at the end of the body so far and the chunked decoder moves the payload
 * down over the framing, so a large body is read in large reads and never
 * copied twice.
 *
 * Connection reuse: a connection is kept after a response only if both
 * sides allow it (Connection, the version, a body not delimited by the
 * close, no "Connection: close" in the request, no stray bytes after the
 * response, no faulty framing). On any error the connection is closed,
 * since how much of the exchange went through is unknown. */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest response body accepted (grove/http.h promises 64 MiB). */
#define MAX_BODY ((size_t)64 << 20)
/* Largest response head: status line and headers, interim responses
 * included. Generous: real heads are a few hundred bytes. */
#define MAX_HEAD ((size_t)1 << 20)
/* Most fields in a head; and the most bytes of chunk framing, extensions
 * and trailers around a chunked body. */
#define MAX_FIELDS 10000
#define MAX_FRAMING MAX_HEAD
/* Initial sizes; every buffer doubles as needed. */
#define IN_INITIAL 8192
#define OUT_INITIAL 1024
#define BODY_INITIAL 4096
#define FIELDS_INITIAL 32
/* Room made before each read of a body of unknown length. */
#define READ_ROOM ((size_t)64 * 1024)

struct gr_http_client {
    char *host;       /* for gr_tcp_connect: brackets of an IPv6 literal removed */
    char *host_field; /* the Host header's value: host[:port], IPv6 in brackets */
    int port;
    int fd;   /* -1 when not connected */
    int busy; /* a request is in flight (from another green thread) */

    char *out; /* the request head */
    size_t out_cap;

    /* The response head: bytes [0, in_end) of in. */
    char *in;
    size_t in_cap, in_end;
    gr__http_head head;

    /* The body, de-chunked, NUL-terminated when complete. */
    char *body;
    size_t body_len, body_cap;
    int body_kind;      /* enum gr__http_body */
    uint64_t body_left; /* of a GR__BODY_LENGTH body */
    gr__http_chunked chunked;

    int head_method;  /* the request was HEAD: no body will follow */
    int close_asked;  /* the request said "Connection: close" */
    int headers_done; /* the final response's head is complete */
    int message_done; /* the final response is complete */
    int keep_alive;   /* the connection may serve another request */
    int got_bytes;    /* some byte of a response came on this attempt */
    int status, version;
};

/* ------------------------------------------------------------- buffers */

/* Grow *buf (capacity *cap) to hold at least need bytes, doubling, but
 * never past max (need <= max). 0 or -1/ENOMEM. */
static int grow(char **buf, size_t *cap, size_t need, size_t max)
{
    size_t n = *cap ? *cap : 64;
    char *p;

    if (need <= *cap)
        return 0;
    while (n < need)
        n = n > max / 2 ? max : n * 2;
    if (!(p = realloc(*buf, n))) {
        errno = ENOMEM;
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

/* ------------------------------------------------------------- reading */

static void begin_response(gr_http_client *c)
{
    gr__http_head_begin(&c->head);
    c->in_end = c->body_len = 0;
    c->body_kind = GR__BODY_NONE;
    c->headers_done = c->message_done = 0;
    c->keep_alive = c->got_bytes = 0;
    c->status = c->version = 0;
}

/* Bytes after the final response mean a confused server: the response
 * stands, the connection does not. */
static void stray_bytes(gr_http_client *c)
{
    c->keep_alive = 0;
}

/* n body bytes at `at` (in the body buffer at its end, or anywhere when
 * the body has room for them): payload appended to the body. 0 or -1 with
 * errno. */
static int body_bytes(gr_http_client *c, const char *at, size_t n)
{
    size_t used = n, produced = n;

    if (c->body_kind == GR__BODY_CHUNKED) {
        ssize_t k = gr__http_chunked_decode(&c->chunked, at, n, c->body + c->body_len, &produced);

        if (k < 0) {
            errno = EPROTO;
            return -1;
        }
        used = (size_t)k;
        c->message_done = gr__http_chunked_done(&c->chunked);
        if (c->chunked.wire - (c->body_len + produced) > MAX_FRAMING) {
            errno = EMSGSIZE;
            return -1;
        }
    } else if (c->body_kind == GR__BODY_LENGTH) {
        used = produced = n < c->body_left ? n : (size_t)c->body_left;
        memmove(c->body + c->body_len, at, produced);
        c->message_done = (c->body_left -= produced) == 0;
    } else {
        memmove(c->body + c->body_len, at, produced); /* until the close */
    }
    c->body_len += produced;
    if (c->body_len > MAX_BODY) {
        errno = EMSGSIZE;
        return -1;
    }
    if (used < n)
        stray_bytes(c);
    return 0;
}

/* 1xx other than 101 are interim: the final response follows. */
static int interim(int status)
{
    return status >= 100 && status < 200 && status != 101;
}

/* The final response's head is parsed: how its body comes, and whether
 * the connection lives on after it. Bytes read past the head are its
 * body's (or stray). */
static int final_head(gr_http_client *c, size_t end)
{
    llhttp_t *p = &c->head.parser;

    c->headers_done = 1;
    c->status = p->status_code;
    c->version = c->head.version;
    c->body_kind = c->head.body;
    c->body_left = c->head.length;
    /* HEAD, 1xx, 204 and 304 have no body whatever the head says. */
    if (c->head_method || c->status < 200 || c->status == 204 || c->status == 304) {
        c->body_kind = GR__BODY_NONE;
        p->flags |= F_SKIPBODY;
    }
    c->keep_alive = llhttp_should_keep_alive(p) && !c->head.must_close && c->status != 101;
    c->message_done = c->body_kind == GR__BODY_NONE;
    gr__http_chunked_init(&c->chunked);
    if (c->body_kind == GR__BODY_LENGTH && c->body_left > MAX_BODY) {
        errno = EMSGSIZE;
        return -1;
    }
    if (end == c->in_end)
        return 0;
    if (c->message_done) {
        stray_bytes(c);
        return 0;
    }
    if (grow(&c->body, &c->body_cap, c->body_len + (c->in_end - end) + 1, MAX_BODY + READ_ROOM + 1))
        return -1;
    return body_bytes(c, c->in + end, c->in_end - end);
}

/* Parse the head that ends at end in `in`. Returns 0 (an interim one is
 * dropped, and the scan starts over on what follows it), or -1 with
 * errno. */
static int parse_head(gr_http_client *c, size_t end)
{
    int st;

    if (c->head.bare_lf) {
        size_t k = c->head.bare_lf;

        if (grow(&c->in, &c->in_cap, c->in_end + k, MAX_HEAD + k) != 0)
            return -1;
        gr__http_head_add_cr(&c->head, c->in, end, c->in_end);
        end += k;
        c->in_end += k;
    }
    if ((st = gr__http_head_parse(&c->head, c->in, end)) != 0) {
        errno = st < 0 ? c->head.err : st == 431 ? EMSGSIZE : EPROTO;
        return -1;
    }
    if (!interim(c->head.parser.status_code))
        return final_head(c, end);
    c->in_end -= end;
    memmove(c->in, c->in + end, c->in_end);
    gr__http_head_begin(&c->head);
    return 0;
}

/* Look for the end of the head in what was read. 0 (parsed or not yet
 * complete) or -1 with errno. */
static int scan_head(gr_http_client *c)
{
    while (!c->headers_done) {
        ssize_t end = gr__http_head_scan(&c->head, c->in, c->in_end);

        if (end < 0) {
            errno = EPROTO;
            return -1;
        }
        if (end == 0)
            return 0;
        if (parse_head(c, (size_t)end) != 0)
            return -1;
    }
    return 0;
}

/* The server closed its side. That ends a body delimited by the close;
 * anywhere else the response is cut short (EPIPE, as gr_read_exact). */
static int at_eof(gr_http_client *c)
{
    if (c->headers_done && c->body_kind == GR__BODY_EOF) {
        c->message_done = 1;
        return 0;
    }
    errno = EPIPE;
    return -1;
}

/* Room in the head buffer, grown up to MAX_HEAD. */
static char *head_room(gr_http_client *c, size_t *room)
{
    if (c->in_end >= c->in_cap) {
        if (c->in_cap >= MAX_HEAD) {
            errno = EMSGSIZE;
            return NULL;
        }
        if (grow(&c->in, &c->in_cap, c->in_cap + 1, MAX_HEAD) != 0)
            return NULL;
    }
    *room = c->in_cap - c->in_end;
    return c->in + c->in_end;
}

/* Room at the end of the body: exactly what an announced length still
 * owes (so such a body comes in as few reads as the kernel allows and
 * nothing past it is read), else at least READ_ROOM. The last byte stays
 * free for the terminating NUL. */
static char *body_room(gr_http_client *c, size_t *room)
{
    int exact = c->body_kind == GR__BODY_LENGTH;
    size_t want = exact ? (size_t)c->body_left : READ_ROOM;

    if (c->body_cap - c->body_len < want + 1 &&
        grow(&c->body, &c->body_cap, c->body_len + want + 1, MAX_BODY + READ_ROOM + 1) != 0)
        return NULL;
    *room = exact ? want : c->body_cap - 1 - c->body_len;
    return c->body + c->body_len;
}

/* Read once and parse what came. 0 or -1 with errno. */
static int read_more(gr_http_client *c, int64_t deadline)
{
    size_t room;
    char *at = c->headers_done ? body_room(c, &room) : head_room(c, &room);
    ssize_t n;

    if (!at)
        return -1;
    if ((n = gr_read(c->fd, at, room, deadline)) < 0)
        return -1;
    if (n == 0)
        return at_eof(c);
    c->got_bytes = 1;
    if (c->headers_done)
        return body_bytes(c, at, (size_t)n);
    c->in_end += (size_t)n;
    return scan_head(c);
}

static int read_response(gr_http_client *c, gr_http_response *res, int64_t deadline)
{
    begin_response(c);
    while (!c->message_done)
        if (read_more(c, deadline) != 0)
            return -1;
    c->body[c->body_len] = '\0'; /* room kept by every read (the buffer exists from new) */
    res->status = c->status;
    res->version = c->version;
    res->headers = c->head.headers;
    res->nheaders = c->head.nspans;
    res->body = c->body;
    res->body_len = c->body_len;
    return 0;
}

/* ------------------------------------------------------------- writing */

/* Tokens and targets: visible ASCII, nothing that could end a line or a
 * field early. */
static int visible(const char *s, const char *also_refused)
{
    if (!s || !*s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f || (also_refused && strchr(also_refused, *p)))
            return 0;
    return 1;
}

/* "close" among the comma-separated tokens of a Connection header. */
static int says_close(const char *v)
{
    while (*v) {
        size_t n;

        v += strspn(v, " \t,");
        n = strcspn(v, " \t,");
        if (n == 5 && !strncasecmp(v, "close", 5))
            return 1;
        v += n;
    }
    return 0;
}

typedef struct head_flags {
    int has_host, has_connection, close;
} head_flags;

/* Check the caller's headers and what they decide. The client frames the
 * body itself, so a Content-Length or Transfer-Encoding of the caller's
 * could only contradict it: refused. */
static int check_headers(const gr_http_header *h, size_t n, head_flags *f, size_t *bytes)
{
    *f = (head_flags){0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        if (!gr__http_header_ok(&h[i]) || !strcasecmp(h[i].name, "Content-Length") ||
            !strcasecmp(h[i].name, "Transfer-Encoding"))
            return -1;
        f->has_host |= !strcasecmp(h[i].name, "Host");
        if (!strcasecmp(h[i].name, "Connection")) {
            f->has_connection = 1;
            f->close |= says_close(h[i].value);
        }
        *bytes += strlen(h[i].name) + strlen(h[i].value) + 4;
    }
    return 0;
}

static int wants_length(const char *method, const void *body)
{
    return body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
}

/* Build the request head in c->out. Returns its length, or -1 with
 * EINVAL (a bad method, target or header) or ENOMEM. */
static ssize_t build_head(gr_http_client *c, const char *method, const char *target,
                          const gr_http_header *h, size_t n, const void *body, size_t len)
{
    size_t need = 96; /* request line and added headers, besides the strings */
    head_flags f;
    char *o;

    if (!visible(method, "()<>@,;:\\\"/[]?={}") || !visible(target, NULL) || (n && !h) ||
        (!body && len) || check_headers(h, n, &f, &need) != 0) {
        errno = EINVAL;
        return -1;
    }
    need += strlen(method) + strlen(target) + strlen(c->host_field);
    if (grow(&c->out, &c->out_cap, need, SIZE_MAX) != 0)
        return -1;
    o = gr__http_put_str(c->out, method);
    *o++ = ' ';
    o = gr__http_put_str(o, target);
    o = gr__http_put(o, " HTTP/1.1\r\n", 11);
    if (!f.has_host) {
        o = gr__http_put(o, "Host: ", 6);
        o = gr__http_put_str(o, c->host_field);
        o = gr__http_put(o, "\r\n", 2);
    }
    o = gr__http_put_headers(o, h, n);
    if (wants_length(method, body)) {
        o = gr__http_put(o, "Content-Length: ", 16);
        o = gr__http_put_u64(o, len);
        o = gr__http_put(o, "\r\n", 2);
    }
    if (!f.has_connection)
        o = gr__http_put(o, "Connection: keep-alive\r\n", 24);
    o = gr__http_put(o, "\r\n", 2);
    c->head_method = !strcmp(method, "HEAD");
    c->close_asked = f.close;
    return o - c->out;
}

/* Write every byte of iov (a copy: partial writes advance it). */
static int send_all(int fd, const struct iovec *req, int n, int64_t deadline)
{
    struct iovec iov[2] = {req[0], n > 1 ? req[1] : (struct iovec){NULL, 0}};
    struct iovec *v = iov;

    while (n > 0) {
        ssize_t w = gr_writev(fd, v, n, deadline);

        if (w < 0)
            return -1;
        gr__http_iov_consume(&v, &n, (size_t)w);
    }
    return 0;
}

/* ---------------------------------------------------------- exchanges */

static void disconnect(gr_http_client *c)
{
    if (c->fd >= 0)
        gr_close(c->fd);
    c->fd = -1;
}

/* A kept-alive connection the server has closed while it was idle fails
 * this way before any byte of a response: the request was not handled
 * (or, if it was, nothing says so), and sending it again on a fresh
 * connection is the one way on. */
static int stale_connection(const gr_http_client *c, int err)
{
    return !c->got_bytes && (err == EPIPE || err == ECONNRESET);
}

/* The send failed because the server closed. It may have answered first
 * without reading the whole request (a 413 for a body over its limit):
 * that answer is the outcome. Otherwise the send's error stands. */
static int early_response(gr_http_client *c, gr_http_response *res, int64_t deadline)
{
    int err = errno;

    if (err != EPIPE && err != ECONNRESET)
        return -1;
    if (read_response(c, res, deadline) == 0) {
        c->keep_alive = 0; /* the rest of the request would be read as the next one */
        return 0;
    }
    if (!c->got_bytes)
        errno = err;
    return -1;
}

/* Whether an idle kept-alive connection can carry a request: nothing may
 * be readable on it. End of stream (the server closed it, usually long
 * before we come back) or bytes nobody asked for mean it cannot. Checking
 * costs one system call and spares most requests a send into a closed
 * connection, and the resend that follows. */
static int idle_usable(int fd)
{
    char b;

    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* One attempt: connect if needed, send, read. */
static int attempt(gr_http_client *c, const struct iovec *iov, int n, gr_http_response *res,
                   int64_t deadline)
{
    c->got_bytes = 0;
    if (c->fd < 0 && (c->fd = gr_tcp_connect(c->host, c->port, deadline)) < 0)
        return -1;
    if (send_all(c->fd, iov, n, deadline) != 0)
        return early_response(c, res, deadline);
    return read_response(c, res, deadline);
}

/* Send the request and read its response, reconnecting once when a reused
 * connection turns out to be stale. The connection survives only a
 * complete exchange both sides want to keep. */
static int exchange(gr_http_client *c, const struct iovec *iov, int n, gr_http_response *res,
                    int64_t deadline)
{
    int reused;

    if (c->fd >= 0 && !idle_usable(c->fd))
        disconnect(c);
    reused = c->fd >= 0;

    for (;;) {
        int err;

        if (attempt(c, iov, n, res, deadline) == 0) {
            if (!c->keep_alive || c->close_asked)
                disconnect(c);
            return 0;
        }
        err = errno;
        disconnect(c);
        if (!reused || !stale_connection(c, err)) {
            errno = err;
            return -1;
        }
        reused = 0;
    }
}

int gr_http_client_request(gr_http_client *c, const char *method, const char *target,
                           const gr_http_header *headers, size_t nheaders, const void *body,
                           size_t len, gr_http_response *res, int64_t deadline)
{
    struct iovec iov[2];
    ssize_t head;
    int rc;

    if (!c || !res) {
        errno = EINVAL;
        return -1;
    }
    if (c->busy) { /* the buffers hold another green thread's exchange */
        errno = EBUSY;
        return -1;
    }
    *res = (gr_http_response){0, 0, NULL, 0, "", 0};
    if ((head = build_head(c, method, target, headers, nheaders, body, len)) < 0)
        return -1;
    iov[0] = (struct iovec){c->out, (size_t)head};
    iov[1] = (struct iovec){(void *)body, len};
    c->busy = 1;
    rc = exchange(c, iov, len ? 2 : 1, res, deadline);
    c->busy = 0;
    if (rc != 0)
        *res = (gr_http_response){0, 0, NULL, 0, "", 0};
    return rc;
}

const char *gr_http_response_header(const gr_http_response *res, const char *name)
{
    if (!res || !name)
        return NULL;
    for (size_t i = 0; i < res->nheaders; i++)
        if (!strcasecmp(res->headers[i].name, name))
            return res->headers[i].value;
    return NULL;
}

/* ------------------------------------------------------- construction */

/* host as gr_tcp_connect takes it ("[::1]" loses its brackets) and as the
 * Host header carries it (an IPv6 literal in brackets, the port unless it
 * is 80). */
static int set_host(gr_http_client *c, const char *host, int port)
{
    size_t n = strlen(host);
    int bracketed = n > 2 && host[0] == '[' && host[n - 1] == ']';
    int v6 = bracketed || strchr(host, ':') != NULL;
    char portbuf[16] = "";

    if (bracketed) {
        host++;
        n -= 2;
    }
    if (!(c->host = strndup(host, n)) || !(c->host_field = malloc(n + 3 + sizeof portbuf))) {
        errno = ENOMEM;
        return -1;
    }
    if (port != 80)
        snprintf(portbuf, sizeof portbuf, ":%d", port);
    snprintf(c->host_field, n + 3 + sizeof portbuf, "%s%s%s%s", v6 ? "[" : "", c->host,
             v6 ? "]" : "", portbuf);
    return 0;
}

static int alloc_buffers(gr_http_client *c)
{
    gr__http_span *spans = malloc(FIELDS_INITIAL * sizeof *spans);
    gr_http_header *headers = malloc(FIELDS_INITIAL * sizeof *headers);

    /* The fields' arrays belong to the head parser from here on. */
    gr__http_head_init(&c->head, HTTP_RESPONSE, 1, spans, headers, FIELDS_INITIAL, MAX_FIELDS);
    if (!spans || !headers || grow(&c->in, &c->in_cap, IN_INITIAL, MAX_HEAD) != 0 ||
        grow(&c->out, &c->out_cap, OUT_INITIAL, SIZE_MAX) != 0 ||
        grow(&c->body, &c->body_cap, BODY_INITIAL, MAX_BODY + 1) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

gr_http_client *gr_http_client_new(const char *host, int port)
{
    gr_http_client *c;

    /* host goes into every request's head: nothing there may break it. */
    if (!visible(host, "/?#@") || port <= 0 || port > 65535) {
        errno = EINVAL;
        return NULL;
    }
    if (!(c = calloc(1, sizeof *c))) {
        errno = ENOMEM;
        return NULL;
    }
    c->fd = -1;
    c->port = port;
    if (set_host(c, host, port) != 0 || alloc_buffers(c) != 0) {
        gr_http_client_free(c);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

void gr_http_client_free(gr_http_client *c)
{
    if (!c)
        return;
    disconnect(c);
    free(c->host);
    free(c->host_field);
    free(c->out);
    free(c->in);
    free(c->head.spans);
    free(c->head.headers);
    free(c->body);
    free(c);
}
