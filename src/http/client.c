/* The HTTP/1.1 client: one kept-alive connection to one server, requests
 * one at a time, responses parsed by llhttp (the server's parser, run as
 * HTTP_RESPONSE).
 *
 * Memory: every buffer belongs to the client and only grows, so requests
 * in the steady state allocate nothing. The request head is built in
 * `out` and leaves with the body in one writev. The response head is read
 * into `in` and parsed in place, as parse.c does for requests: callbacks
 * record offsets (`in` may still grow while the head is incomplete), and
 * once the head is complete its names and values are NUL-terminated where
 * they stand and the header array points at them. Body bytes then go
 * straight into `body`: each read lands at the end of the body so far and
 * llhttp's on_body moves the payload down over the chunk framing, so a
 * large body is read in large reads and never copied twice.
 *
 * Connection reuse: a connection is kept after a response only if both
 * sides allow it (llhttp_should_keep_alive, no "Connection: close" in the
 * request, no stray bytes after the response). On any error the connection
 * is closed, since how much of the exchange went through is unknown. */
#include "http.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Largest response body accepted (grove.h promises 64 MiB). */
#define MAX_BODY ((size_t)64 << 20)
/* Largest response head: status line and headers, interim responses
 * included. Generous: real heads are a few hundred bytes. */
#define MAX_HEAD ((size_t)1 << 20)
/* Initial sizes; every buffer doubles as needed. */
#define IN_INITIAL 8192
#define OUT_INITIAL 1024
#define BODY_INITIAL 4096
#define SPANS_INITIAL 32
/* Room made before each read of a body of unknown length. */
#define READ_ROOM ((size_t)64 * 1024)
/* A span's value_off before its value arrives. */
#define NO_VALUE UINT32_MAX

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
    gr__http_span *spans;
    gr_http_header *headers;
    size_t nspans, spans_cap, headers_cap;

    /* The body, de-chunked, NUL-terminated when complete. */
    char *body;
    size_t body_len, body_cap;

    llhttp_t parser;
    int head_method;  /* the request was HEAD: no body will follow */
    int close_asked;  /* the request said "Connection: close" */
    int in_value;     /* the last header callback was a value */
    int headers_done; /* the final response's head is complete */
    int message_done; /* the final response is complete */
    int parsing_body; /* llhttp is parsing bytes read into body */
    int keep_alive;   /* the connection may serve another request */
    int got_bytes;    /* some byte of a response came on this attempt */
    int err;          /* errno to report when a callback failed */
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
    if (!(p = gr__realloc(*buf, n))) {
        errno = ENOMEM;
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

static int grow_spans(gr_http_client *c)
{
    size_t n = c->spans_cap * 2;
    gr__http_span *s;

    if (!(s = gr__realloc(c->spans, n * sizeof *s))) {
        errno = ENOMEM;
        return -1;
    }
    c->spans = s;
    c->spans_cap = n;
    return 0;
}

static int grow_headers(gr_http_client *c, size_t need)
{
    gr_http_header *h;

    if (need <= c->headers_cap)
        return 0;
    if (!(h = gr__realloc(c->headers, need * sizeof *h))) {
        errno = ENOMEM;
        return -1;
    }
    c->headers = h;
    c->headers_cap = need;
    return 0;
}

/* ------------------------------------------------------ llhttp callbacks */

static gr_http_client *client_of(llhttp_t *p)
{
    return p->data;
}

/* A callback's failure: remember why, stop the parser. */
static int fail_cb(gr_http_client *c, int err)
{
    c->err = err;
    return HPE_USER;
}

/* 1xx other than 101 are interim: the final response follows. */
static int interim(int status)
{
    return status >= 100 && status < 200 && status != 101;
}

static int on_message_begin(llhttp_t *p)
{
    gr_http_client *c = client_of(p);

    c->nspans = 0;
    c->in_value = 0;
    return 0;
}

/* Header callbacks come in pieces, contiguous in `in`. After the head they
 * are trailers of a chunked body: dropped (and their bytes are not in
 * `in`). */
static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    gr_http_client *c = client_of(p);
    gr__http_span *sp;

    if (c->headers_done)
        return 0;
    if (c->in_value || !c->nspans) {
        if (c->nspans == c->spans_cap && grow_spans(c) != 0)
            return fail_cb(c, ENOMEM);
        sp = &c->spans[c->nspans++];
        *sp = (gr__http_span){(uint32_t)(at - c->in), 0, NO_VALUE, 0};
        c->in_value = 0;
    }
    c->spans[c->nspans - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    gr_http_client *c = client_of(p);
    gr__http_span *sp;

    if (c->headers_done)
        return 0;
    sp = &c->spans[c->nspans - 1];
    if (!c->in_value) {
        sp->value_off = (uint32_t)(at - c->in);
        sp->value_len = 0;
        c->in_value = 1;
    }
    sp->value_len += (uint32_t)len;
    return 0;
}

/* NUL-terminate the head's strings in place and point the header array at
 * them. `in` no longer moves: body bytes go elsewhere from now on. */
static int finish_head(gr_http_client *c)
{
    if (grow_headers(c, c->nspans) != 0)
        return -1;
    for (size_t i = 0; i < c->nspans; i++) {
        gr__http_span *sp = &c->spans[i];
        char *v;

        if (sp->value_off == NO_VALUE) { /* "Name:" with an empty value */
            sp->value_off = sp->name_off + sp->name_len;
            sp->value_len = 0;
        }
        v = c->in + sp->value_off;
        while (sp->value_len && (v[sp->value_len - 1] == ' ' || v[sp->value_len - 1] == '\t'))
            sp->value_len--;
        c->in[sp->name_off + sp->name_len] = '\0'; /* over the ':' */
        v[sp->value_len] = '\0';                   /* over CR or blanks */
        c->headers[i].name = c->in + sp->name_off;
        c->headers[i].value = v;
    }
    return 0;
}

/* Reserve room for a body whose length is announced, so it is read in as
 * few reads as the kernel allows. */
static int announced_length(gr_http_client *c, const llhttp_t *p)
{
    if (!(p->flags & F_CONTENT_LENGTH) || (p->flags & F_CHUNKED))
        return 0;
    if (p->content_length > MAX_BODY)
        return fail_cb(c, EMSGSIZE);
    if (grow(&c->body, &c->body_cap, p->content_length + 1, MAX_BODY + 1) != 0)
        return fail_cb(c, ENOMEM);
    return 0;
}

/* Returning 1 tells llhttp the message has no body whatever its headers
 * say: HEAD, 1xx, 204, 304. Interim responses are parsed and forgotten. */
static int on_headers_complete(llhttp_t *p)
{
    gr_http_client *c = client_of(p);
    int status = p->status_code;

    if (interim(status))
        return 1;
    if (finish_head(c) != 0)
        return fail_cb(c, ENOMEM);
    c->headers_done = 1;
    c->status = status;
    c->version = p->http_major * 10 + p->http_minor;
    if (c->head_method || status < 200 || status == 204 || status == 304)
        return 1;
    return announced_length(c, p);
}

/* While parsing `in`, payload is appended to the body; while parsing bytes
 * read into the body itself, it moves down over the framing (never up: the
 * payload so far is never longer than the bytes parsed). */
static int on_body(llhttp_t *p, const char *at, size_t len)
{
    gr_http_client *c = client_of(p);

    if (len > MAX_BODY - c->body_len)
        return fail_cb(c, EMSGSIZE);
    if (c->parsing_body) {
        memmove(c->body + c->body_len, at, len);
    } else {
        if (grow(&c->body, &c->body_cap, c->body_len + len + 1, MAX_BODY + 1) != 0)
            return fail_cb(c, ENOMEM);
        memcpy(c->body + c->body_len, at, len);
    }
    c->body_len += len;
    return 0;
}

/* Pause at the end of the final response: what follows it, if anything,
 * was never asked for. The flags llhttp clears after this callback still
 * tell whether the server keeps the connection. */
static int on_message_complete(llhttp_t *p)
{
    gr_http_client *c = client_of(p);

    if (interim(p->status_code))
        return 0;
    c->message_done = 1;
    c->keep_alive = llhttp_should_keep_alive(p) && p->status_code != 101;
    return HPE_PAUSED;
}

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void init_settings(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
}

/* ------------------------------------------------------------- reading */

static void begin_response(gr_http_client *c)
{
    pthread_once(&settings_once, init_settings);
    llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
    c->parser.data = c;
    c->in_end = c->nspans = c->body_len = 0;
    c->in_value = c->headers_done = c->message_done = c->parsing_body = 0;
    c->keep_alive = c->got_bytes = c->err = 0;
    c->status = c->version = 0;
}

/* Feed n bytes at `at` to llhttp. Bytes after the final response mean a
 * confused server: the response stands, the connection does not. */
static int parse(gr_http_client *c, const char *at, size_t n)
{
    llhttp_errno_t e = llhttp_execute(&c->parser, at, n);

    if (e == HPE_OK)
        return 0;
    if (e == HPE_PAUSED && c->message_done) {
        if (llhttp_get_error_pos(&c->parser) != at + n)
            c->keep_alive = 0;
        return 0;
    }
    if (e == HPE_PAUSED_UPGRADE && c->message_done) /* 101: another protocol follows */
        return 0;
    errno = c->err ? c->err : EPROTO;
    return -1;
}

/* The server closed its side. That ends a body delimited by the close;
 * anywhere else the response is cut short (EPIPE, as gr_read_exact). */
static int at_eof(gr_http_client *c)
{
    if (c->headers_done && llhttp_message_needs_eof(&c->parser)) {
        llhttp_errno_t e = llhttp_finish(&c->parser);

        if (c->message_done && (e == HPE_OK || e == HPE_PAUSED))
            return 0;
        if (c->err) {
            errno = c->err;
            return -1;
        }
    }
    errno = EPIPE;
    return -1;
}

/* Room in the head buffer, grown up to MAX_HEAD. */
static char *head_room(gr_http_client *c, size_t *room)
{
    if (c->in_end == c->in_cap) {
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
 * owes (reserved when the head came, so such a body comes in as few reads
 * as the kernel allows and nothing past it is read), else at least
 * READ_ROOM. The last byte stays free for the terminating NUL. */
static char *body_room(gr_http_client *c, size_t *room)
{
    const llhttp_t *p = &c->parser;
    int exact = (p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED);
    size_t want = exact ? (size_t)p->content_length : READ_ROOM;

    if (c->body_cap - c->body_len < want + 1 &&
        grow(&c->body, &c->body_cap, c->body_len + want + 1, MAX_BODY + READ_ROOM + 1) != 0)
        return NULL;
    *room = exact ? want : c->body_cap - 1 - c->body_len;
    return c->body + c->body_len;
}

/* Where the next read goes: the head buffer until the final head is
 * complete, then the end of the body. */
static char *read_room(gr_http_client *c, size_t *room)
{
    return c->headers_done ? body_room(c, room) : head_room(c, room);
}

/* Read once and parse what came. 0 or -1 with errno. */
static int read_more(gr_http_client *c, int64_t deadline)
{
    size_t room;
    char *at = read_room(c, &room);
    ssize_t n;

    if (!at)
        return -1;
    if ((n = gr_read(c->fd, at, room, deadline)) < 0)
        return -1;
    if (n == 0)
        return at_eof(c);
    c->got_bytes = 1;
    c->parsing_body = c->headers_done;
    if (!c->headers_done)
        c->in_end += (size_t)n;
    return parse(c, at, (size_t)n);
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
    res->headers = c->headers;
    res->nheaders = c->nspans;
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
    if (!(c->host = gr__strndup(host, n)) || !(c->host_field = gr__malloc(n + 3 + sizeof portbuf))) {
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
    c->spans_cap = SPANS_INITIAL;
    c->spans = gr__malloc(SPANS_INITIAL * sizeof *c->spans);
    if (!c->spans || grow(&c->in, &c->in_cap, IN_INITIAL, MAX_HEAD) != 0 ||
        grow(&c->out, &c->out_cap, OUT_INITIAL, SIZE_MAX) != 0 ||
        grow(&c->body, &c->body_cap, BODY_INITIAL, MAX_BODY + 1) != 0 ||
        grow_headers(c, SPANS_INITIAL) != 0) {
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
    if (!(c = gr__calloc(1, sizeof *c))) {
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
    free(c->spans);
    free(c->headers);
    free(c->body);
    free(c);
}
