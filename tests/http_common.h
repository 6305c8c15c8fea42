/* The HTTP tests' shared pieces: raw-socket clients written with grove's
 * own sockets and reader (a response is read and checked exactly as it
 * comes off the wire), the green-thread and threaded servers started on a
 * free loopback port, the handlers most tests use, and checks that run
 * against either server. */
#ifndef GROVE_TEST_HTTP_COMMON_H
#define GROVE_TEST_HTTP_COMMON_H

#include "common.h"

#include <grove/http.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

/* Every wait of a client is bounded by this much. */
#define WAIT_MS 5000

/* What a failed read was about, for tests that run many cases. */
static __attribute__((unused)) const char *cl_case = "";

/* ============================================================ clients */

typedef struct client {
    int fd;
    gr_reader r;
    char buf[1 << 16];
} client;

static inline client *cl_open(int port)
{
    client *c = calloc(1, sizeof *c);

    cr_assert_not_null(c);
    c->fd = loopback_connect(port);
    cr_assert_eq(gr_reader_init(&c->r, c->fd, c->buf, sizeof c->buf), 0);
    return c;
}

static inline void cl_close(client *c)
{
    gr_close(c->fd);
    free(c);
}

static inline void cl_sendn(client *c, const void *p, size_t n)
{
    cr_assert_eq(gr_write_all(c->fd, p, n, NULL, gr_now() + WAIT_MS), 0, "send: %s",
                 strerror(errno));
}

static inline void cl_send(client *c, const char *s)
{
    cl_sendn(c, s, strlen(s));
}

/* A response as read off the wire. */
typedef struct resp {
    int status;
    char head[8192]; /* status line and header lines, each ending in \r\n */
    char *body;      /* de-chunked, NUL-terminated; free with resp_free */
    size_t len;
    int chunked;
} resp;

static inline void resp_free(resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* The value of header name in r (case-insensitive), copied to a static
 * buffer, or NULL. */
static inline const char *hdr(const resp *r, const char *name)
{
    static char value[8192];
    size_t n = strlen(name);
    const char *line = strstr(r->head, "\r\n");

    while (line && line[2]) {
        line += 2;
        if (!strncasecmp(line, name, n) && line[n] == ':') {
            const char *v = line + n + 1, *end = strstr(v, "\r\n");

            while (*v == ' ')
                v++;
            snprintf(value, sizeof value, "%.*s", (int)(end - v), v);
            return value;
        }
        line = strstr(line, "\r\n");
    }
    return NULL;
}

static inline size_t line_in(client *c, char *out, size_t max)
{
    ssize_t n = gr_reader_line(&c->r, out, max, gr_now() + WAIT_MS);

    cr_assert_gt(n, 0, "%s: reading a line: %s", cl_case,
                 n < 0 ? strerror(errno) : "end of stream");
    cr_assert(n >= 2 && out[n - 2] == '\r' && out[n - 1] == '\n', "line without CRLF: [%s]", out);
    return (size_t)n;
}

static inline void bytes_in(client *c, char *out, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = gr_reader_read(&c->r, out + got, len - got, gr_now() + WAIT_MS);

        cr_assert_gt(n, 0, "body: %zu of %zu bytes, then %s", got, len,
                     n < 0 ? strerror(errno) : "end of stream");
        got += (size_t)n;
    }
}

static inline void body_append(resp *r, size_t *cap, const char *p, size_t n)
{
    if (r->len + n + 1 > *cap) {
        *cap = (r->len + n + 1) * 2;
        r->body = realloc(r->body, *cap);
        cr_assert_not_null(r->body);
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    r->body[r->len] = '\0';
}

/* Read one response, or see the stream end (or be reset) before its first
 * byte when at_end_ok: then 0. head_only for the answer to a HEAD request.
 * The body is framed as the head says: Content-Length, chunked, or until
 * the end of the stream. Returns 1 with the response in *r. */
static inline int read_response_or_end(client *c, resp *r, int head_only, int at_end_ok)
{
    char line[8192], *tmp;
    size_t used = 0, cap = 1, last = 0;
    const char *cl, *te;

    memset(r, 0, sizeof *r);
    if (at_end_ok) {
        ssize_t n = gr_reader_line(&c->r, line, sizeof line, gr_now() + WAIT_MS);

        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 0;
        cr_assert_gt(n, 0, "%s: reading a line: %s", cl_case, strerror(errno));
        cr_assert(n >= 2 && line[n - 2] == '\r' && line[n - 1] == '\n', "line without CRLF: [%s]",
                  line);
        memcpy(r->head, line, (size_t)n + 1);
        used = last = (size_t)n;
    }
    r->body = calloc(1, 1);
    while (last != 2) { /* up to the empty line */
        size_t n = line_in(c, line, sizeof line);

        cr_assert_lt(used + n, sizeof r->head, "response head too long");
        memcpy(r->head + used, line, n + 1);
        used += n;
        last = n;
    }
    cr_assert(sscanf(r->head, "HTTP/1.1 %d ", &r->status) == 1, "status line: %s", r->head);
    if (head_only || r->status < 200 || r->status == 204 || r->status == 304)
        return 1;
    cl = hdr(r, "Content-Length");
    if (cl) {
        size_t len = strtoul(cl, NULL, 10);

        tmp = malloc(len + 1);
        bytes_in(c, tmp, len);
        body_append(r, &cap, tmp, len);
        free(tmp);
        return 1;
    }
    te = hdr(r, "Transfer-Encoding");
    if (te) {
        cr_assert_str_eq(te, "chunked");
        r->chunked = 1;
        for (;;) {
            size_t size;

            line_in(c, line, sizeof line);
            size = strtoul(line, NULL, 16);
            if (size == 0)
                break;
            tmp = malloc(size + 2);
            bytes_in(c, tmp, size + 2);
            cr_assert(tmp[size] == '\r' && tmp[size + 1] == '\n', "chunk not ended by CRLF");
            body_append(r, &cap, tmp, size);
            free(tmp);
        }
        line_in(c, line, sizeof line); /* no trailers from this server */
        cr_assert_str_eq(line, "\r\n");
        return 1;
    }
    /* Until the server closes. */
    for (;;) {
        ssize_t n = gr_reader_read(&c->r, line, sizeof line, gr_now() + WAIT_MS);

        cr_assert_geq(n, 0, "body until close: %s", strerror(errno));
        if (n == 0)
            break;
        body_append(r, &cap, line, (size_t)n);
    }
    return 1;
}

/* Read one response (see read_response_or_end). */
static inline void read_response(client *c, resp *r, int head_only)
{
    read_response_or_end(c, r, head_only, 0);
}

/* The server closed the connection: nothing more comes (an RST counts). */
static inline void expect_closed(client *c)
{
    char x;
    ssize_t n = gr_reader_read(&c->r, &x, 1, gr_now() + WAIT_MS);

    cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "connection still open: %zd (%s)", n,
              n < 0 ? strerror(errno) : "a byte came");
}

/* Send req on a new connection, read the response, and see the server
 * close the connection: the fate of a malformed request. */
static inline int status_then_close(int port, const void *req, size_t len)
{
    client *c = cl_open(port);
    resp r;
    int status;

    cl_sendn(c, req, len);
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "Connection") ? hdr(&r, "Connection") : "", "close",
                     "no Connection: close with %d for %.*s", r.status, (int)len,
                     (const char *)req);
    expect_closed(c);
    status = r.status;
    resp_free(&r);
    cl_close(c);
    return status;
}

/* ============================================================ servers */

typedef struct srv {
    gr_http_server *s;
    int port;
} srv;

static inline srv srv_start(gr_http_handler h, void *arg, const gr_http_opts *o)
{
    int l = loopback_listen();
    srv s = {gr_http_server_new(l, h, arg, o), gr_local_port(l)};

    cr_assert_not_null(s.s, "gr_http_server_new: %s", strerror(errno));
    cr_assert_eq(gr_http_server_start(s.s), 0);
    return s;
}

static inline void srv_stop(srv *s)
{
    cr_assert_eq(gr_http_server_stop(s->s, gr_now() + 2000), 0);
    cr_assert_eq(gr_http_server_free(s->s), 0);
}

/* What handlers saw, for the tests to check (handlers of the green server
 * run on the test's own OS thread; the threaded server's use atomics). */
#define GR_TEST_SHARED __attribute__((unused))
static GR_TEST_SHARED atomic_int calls;
static GR_TEST_SHARED int last_errno, inject_errs[10];

/* ----------------------------------------------------------- handlers */

/* Read the whole body into a malloc'd buffer. Returns its size, or -1
 * with errno (the buffer is freed). */
static inline ssize_t read_all(gr_http_request *req, char **out)
{
    size_t len = 0, cap = 4096;
    char *b = malloc(cap);
    ssize_t n;

    while (b && (n = gr_http_read_body(req, b + len, cap - len, -1)) > 0) {
        len += (size_t)n;
        if (len == cap)
            b = realloc(b, cap *= 2);
    }
    if (!b || n < 0) {
        int e = b ? errno : ENOMEM;

        free(b);
        errno = e;
        return -1;
    }
    *out = b;
    return (ssize_t)len;
}

/* Echo the body, with the path and method in headers. */
static inline int h_echo(gr_http_request *req, void *arg)
{
    gr_http_header h[] = {{"Content-Type", "application/octet-stream"},
                          {"X-Path", req->path},
                          {"X-Method", req->method}};
    char *body;
    ssize_t n;
    int rc;

    (void)arg;
    atomic_fetch_add(&calls, 1);
    if ((n = read_all(req, &body)) < 0) {
        last_errno = errno;
        return -1;
    }
    rc = gr_http_respond(req, 200, h, 3, body, (size_t)n, -1);
    free(body);
    return rc;
}

/* Describe the request as text. */
static inline int h_info(gr_http_request *req, void *arg)
{
    static const gr_http_header h[] = {{"Content-Type", "text/plain"}};
    char out[4096];
    int n;

    (void)arg;
    atomic_fetch_add(&calls, 1);
    n = snprintf(out, sizeof out,
                 "method=%s target=%s path=%s query=%s version=%d cl=%lld chunked=%d ka=%d\n",
                 req->method, req->target, req->path, req->query, req->version,
                 (long long)req->content_length, req->chunked, req->keep_alive);
    for (size_t i = 0; i < req->nheaders; i++)
        n += snprintf(out + n, sizeof out - (size_t)n, "[%s]=[%s]\n", req->headers[i].name,
                      req->headers[i].value);
    return gr_http_respond(req, 200, h, 1, out, (size_t)n, -1);
}

static inline int h_fail(gr_http_request *req, void *arg)
{
    (void)req;
    (void)arg;
    atomic_fetch_add(&calls, 1);
    return -1;
}

static inline int h_silent(gr_http_request *req, void *arg)
{
    (void)req;
    (void)arg;
    atomic_fetch_add(&calls, 1);
    return 0;
}

/* Three requests in one write: three responses, in order, on one
 * connection. */
static inline void check_pipelining(int port)
{
    client *c = cl_open(port);
    resp r;

    cl_send(c, "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
               "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
               "POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
               "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "X-Path"), "/one");
    cr_assert_eq(r.len, 0);
    resp_free(&r);
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "X-Path"), "/two");
    cr_assert_str_eq(r.body, "hello");
    resp_free(&r);
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "X-Path"), "/three");
    cr_assert_str_eq(r.body, "abc");
    resp_free(&r);
    /* Still open for more. */
    cl_send(c, "GET /four HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "X-Path"), "/four");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
}

static inline void check_limits(int port)
{
    char req[20000];
    int n;
    client *c;
    resp r;

    /* Request line and headers over max_header_bytes (1024 here). */
    n = sprintf(req, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %01100d\r\n\r\n", 0);
    cr_assert_eq(status_then_close(port, req, (size_t)n), 431);
    /* Just under it passes. */
    n = sprintf(req, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %0900d\r\nConnection: close\r\n\r\n", 0);
    c = cl_open(port);
    cl_sendn(c, req, (size_t)n);
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    cl_close(c);
    /* A very long request line, sent without its end. */
    memset(req, 'a', 2000);
    memcpy(req, "GET /", 5);
    cr_assert_eq(status_then_close(port, req, 2000), 431);
    /* More than max_headers (10 here). */
    n = sprintf(req, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 11; i++)
        n += sprintf(req + n, "H%d: v\r\n", i);
    n += sprintf(req + n, "\r\n");
    cr_assert_eq(status_then_close(port, req, (size_t)n), 431);
    /* A Content-Length over max_body (1000 here) is refused at once: the
     * body is never sent. */
    c = cl_open(port);
    cl_send(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 413);
    cr_assert_str_eq(hdr(&r, "Connection"), "close");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    /* A chunked body that grows over it: 413 when the handler reads it. */
    c = cl_open(port);
    cl_send(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n = sprintf(req, "190\r\n%0400d\r\n", 0);
        cl_sendn(c, req, (size_t)n);
    }
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 413);
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    /* Exactly max_body is fine. */
    c = cl_open(port);
    n = sprintf(
        req,
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n%01000d",
        0);
    cl_sendn(c, req, (size_t)n);
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 1000);
    resp_free(&r);
    cl_close(c);
}

static GR_TEST_SHARED const gr_http_opts small_limits = {
    .max_header_bytes = 1024, .max_headers = 10, .max_body = 1000};

/* A client that sends its head a byte at a time, slower than the header
 * time-out allows: 408, then the connection closes. Returns how long it
 * took. */
static inline int64_t check_slowloris(int port)
{
    const char *head =
        "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    client *c = cl_open(port);
    int64_t t0 = gr_now_update();
    resp r;

    for (const char *p = head;; p++) {
        cr_assert(*p, "the server waited for the whole slow head");
        /* Once the server has answered, a send may fail: read then. */
        if (gr_write_all(c->fd, p, 1, NULL, gr_now() + WAIT_MS) != 0)
            break;
        if (gr_wait_fd(c->fd, GR_READ, gr_now_update() + 50) > 0)
            break;
    }
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 408);
    cr_assert_str_eq(hdr(&r, "Connection"), "close");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    return gr_now_update() - t0;
}

/* ==================================================== threaded servers */

/* A threaded server serving on an OS thread of its own. */
typedef struct tsrv {
    gr_http_threaded *s;
    pthread_t t;
    int port, rc;
} tsrv;

static inline void *tsrv_main(void *arg)
{
    tsrv *t = arg;

    t->rc = gr_http_threaded_serve(t->s);
    return NULL;
}

static inline void tsrv_start_arg(tsrv *t, gr_http_handler h, void *arg, const gr_http_opts *o,
                                  size_t n)
{
    int fd = loopback_listen();

    t->port = gr_local_port(fd);
    t->s = gr_http_threaded_new(fd, h, arg, o, n);
    cr_assert_not_null(t->s, "gr_http_threaded_new: %s", strerror(errno));
    t->rc = -2;
    cr_assert_eq(pthread_create(&t->t, NULL, tsrv_main, t), 0);
}

static inline void tsrv_start(tsrv *t, gr_http_handler h, const gr_http_opts *o, size_t n)
{
    tsrv_start_arg(t, h, NULL, o, n);
}

/* Stop and wait for it (blocking this OS thread: the server's threads do
 * not need its hub), then free it. Returns how long the join took. */
static inline int64_t tsrv_stop(tsrv *t)
{
    int64_t t0 = gr_now_update();

    gr_http_threaded_stop(t->s);
    cr_assert_eq(pthread_join(t->t, NULL), 0);
    cr_assert_eq(t->rc, 0, "gr_http_threaded_serve: %d", t->rc);
    cr_assert_eq(gr_http_threaded_free(t->s), 0);
    return gr_now_update() - t0;
}

/* ====================================================== either server */

typedef struct any_srv {
    srv g;
    tsrv t;
    int threaded, port;
} any_srv;

/* Start the green-thread server, or the threaded one (4 threads), with
 * handler h, arg and options o. In place: a threaded server's thread keeps
 * a pointer to s->t. */
static inline void any_start(any_srv *s, int threaded, gr_http_handler h, void *arg,
                             const gr_http_opts *o)
{
    s->threaded = threaded;
    if (threaded) {
        tsrv_start_arg(&s->t, h, arg, o, 4);
        s->port = s->t.port;
    } else {
        s->g = srv_start(h, arg, o);
        s->port = s->g.port;
    }
}

static inline void any_stop(any_srv *s)
{
    if (s->threaded)
        tsrv_stop(&s->t);
    else
        srv_stop(&s->g);
}

#endif
