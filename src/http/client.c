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
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define OUT_INITIAL 1024

struct gr_http_client {
    char *host;       /* for gr_tcp_connect: brackets of an IPv6 literal removed */
    char *host_field; /* the Host header's value: host[:port], IPv6 in brackets */
    int port;
    int fd;              /* -1 when not connected */
    int busy;            /* a request is in flight (from another green thread) */
    int used;            /* it has connected once */
    gr_tls_ctx *tls_ctx; /* HTTPS */
    gr_tls *tls;         /* over fd, when connected with HTTPS */

    char *out; /* the request head */
    size_t out_cap;
    gr__http_reader rd; /* the response */

    int head_method; /* the request was HEAD: no body will follow */
    int close_asked; /* the request said "Connection: close" */
    int got_bytes;   /* some byte of a response came on this attempt */
};

/* ------------------------------------------------------------- reading */

/* Read and parse until the response is whole. 0 or -1 with errno. */
static int read_response(gr_http_client *c, gr_http_response *res, int64_t deadline)
{
    gr__http_reader *r = &c->rd;

    gr__http_reader_begin(r, c->head_method);
    while (!r->message_done) {
        size_t room;
        char *at = gr__http_reader_room(r, &room);
        ssize_t n;

        if (!at)
            return -1;
        n = c->tls ? gr__tls_read_framed(c->tls, at, room, deadline)
                   : gr_read(c->fd, at, room, deadline);
        if (n < 0)
            return -1;
        if (n == 0) {
            if (gr__http_reader_eof(r) != 0)
                return -1;
            break;
        }
        c->got_bytes = 1;
        if (gr__http_reader_got(r, (size_t)n) != 0)
            return -1;
    }
    gr__http_reader_result(r, res);
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
            size_t others;

            f->has_connection = 1;
            f->close |= gr__http_list_count(h[i].value, "close", &others) > 0;
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
    if (gr__http_grow(&c->out, &c->out_cap, need, SIZE_MAX) != 0)
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
static int send_all(gr_http_client *c, const struct iovec *req, int n, int64_t deadline)
{
    struct iovec iov[2] = {req[0], n > 1 ? req[1] : (struct iovec){NULL, 0}};
    struct iovec *v = iov;

    if (c->tls)
        return gr__tls_writev(c->tls, req, n, deadline);
    while (n > 0) {
        ssize_t w = gr_writev(c->fd, v, n, deadline);

        if (w < 0)
            return -1;
        gr__http_iov_consume(&v, &n, (size_t)w);
    }
    return 0;
}

/* ---------------------------------------------------------- exchanges */

static void disconnect(gr_http_client *c)
{
    if (c->tls) {
        gr_tls_shutdown(c->tls, 0); /* close_notify, if the socket takes it now */
        gr_tls_free(c->tls);
        c->tls = NULL;
    }
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
        c->rd.keep_alive = 0; /* the rest of the request would be read as the next one */
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
static int idle_usable(gr_http_client *c)
{
    char b;

    /* Over TLS, records the server sent after its response (TLS 1.3
     * session tickets) are no cause to drop it: only bytes of data or an
     * end are, so ask TLS, without waiting. */
    if (c->tls)
        return gr_tls_read(c->tls, &b, 1, 0) < 0 && errno == ETIMEDOUT;
    return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Connect, and over HTTPS shake hands. */
static int connect_server(gr_http_client *c, int64_t deadline)
{
    if ((c->fd = gr_tcp_connect(c->host, c->port, deadline)) < 0)
        return -1;
    c->used = 1;
    if (!c->tls_ctx)
        return 0;
    if (!(c->tls = gr_tls_new(c->tls_ctx, c->fd, c->host)))
        return -1;
    return gr_tls_handshake(c->tls, deadline);
}

/* One attempt: connect if needed, send, read. */
static int attempt(gr_http_client *c, const struct iovec *iov, int n, gr_http_response *res,
                   int64_t deadline)
{
    c->got_bytes = 0;
    if (c->fd < 0 && connect_server(c, deadline) != 0)
        return -1;
    if (send_all(c, iov, n, deadline) != 0)
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

    if (c->fd >= 0 && !idle_usable(c))
        disconnect(c);
    reused = c->fd >= 0;

    for (;;) {
        int err;

        if (attempt(c, iov, n, res, deadline) == 0) {
            if (!c->rd.keep_alive || c->close_asked)
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
static int set_host(gr_http_client *c, const char *host, int port, int default_port)
{
    size_t n = strlen(host);
    int bracketed = n > 2 && host[0] == '[' && host[n - 1] == ']';
    int v6 = bracketed || strchr(host, ':') != NULL;
    char portbuf[16] = "";

    if (bracketed) {
        host++;
        n -= 2;
    }
    if (!(c->host = gr__strndup(host, n)) ||
        !(c->host_field = gr__malloc(n + 3 + sizeof portbuf))) {
        errno = ENOMEM;
        return -1;
    }
    if (port != default_port)
        snprintf(portbuf, sizeof portbuf, ":%d", port);
    snprintf(c->host_field, n + 3 + sizeof portbuf, "%s%s%s%s", v6 ? "[" : "", c->host,
             v6 ? "]" : "", portbuf);
    return 0;
}

static int alloc_buffers(gr_http_client *c)
{
    if (gr__http_reader_init(&c->rd) != 0 ||
        gr__http_grow(&c->out, &c->out_cap, OUT_INITIAL, SIZE_MAX) != 0) {
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
    if (set_host(c, host, port, 80) != 0 || alloc_buffers(c) != 0) {
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
    gr_tls_ctx_free(c->tls_ctx);
    free(c->host);
    free(c->host_field);
    free(c->out);
    gr__http_reader_fini(&c->rd);
    free(c);
}

int gr_http_client_set_tls(gr_http_client *c, gr_tls_ctx *ctx)
{
    char *host, *field;

    if (!c || c->used || c->tls_ctx || (ctx && ctx->role != GR_TLS_CLIENT)) {
        errno = EINVAL;
        return -1;
    }
    if (ctx)
        gr__ssl_ctx_ref(ctx);
    else if (!(ctx = gr_tls_ctx_new(GR_TLS_CLIENT)))
        return -1;
    /* Host: host[:port], without the port when it is HTTPS's. */
    host = c->host;
    field = c->host_field;
    c->host = c->host_field = NULL;
    if (set_host(c, host, c->port, 443) != 0) {
        free(c->host);
        free(c->host_field);
        c->host = host;
        c->host_field = field;
        gr_tls_ctx_free(ctx);
        errno = ENOMEM;
        return -1;
    }
    free(host);
    free(field);
    c->tls_ctx = ctx;
    return 0;
}
