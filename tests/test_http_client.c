/* The HTTP client on loopback: against grove's own HTTP server (GET, POST,
 * HEAD, keep-alive, chunked and streamed bodies, 8 MiB bodies, an early 413,
 * closes and reconnects), and against raw servers scripted byte by byte (the
 * request as sent, HTTP/1.0 close-delimited bodies, interim responses, 1-byte
 * writes, stray bytes, malformed and truncated responses, the one resend,
 * silence, cancellation, size limits), plus refused connections and unknown
 * names. */
#include "common.h"

#include <grove/http.h>

#include <stdlib.h>
#include <strings.h>

#define BIG ((size_t)8 << 20)

/* A test: fn run under gr_main, within secs seconds. */
#define CLIENT_TEST(name, fn, secs)                                                                \
    static void *fn##_main(void *arg)                                                              \
    {                                                                                              \
        (void)arg;                                                                                 \
        fn();                                                                                      \
        return NULL;                                                                               \
    }                                                                                              \
    Test(http_client, name, .timeout = secs)                                                       \
    {                                                                                              \
        run_main(fn##_main, NULL);                                                                 \
    }

static int64_t soon(void)
{
    return gr_now() + 5000;
}

/* A byte pattern a body can be checked against. */
static char *pattern(size_t n)
{
    char *p = malloc(n);

    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    return p;
}

/* ------------------------------------------------- grove's HTTP server */

static char *big_body; /* BIG bytes of pattern, for /big */

/* The whole request body, in a malloc'd buffer (*len bytes). */
static char *read_all(gr_http_request *req, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    ssize_t r;

    cr_assert_not_null(b);
    while ((r = gr_http_read_body(req, b + n, cap - n, -1)) > 0) {
        n += (size_t)r;
        if (n == cap)
            cr_assert_not_null(b = realloc(b, cap *= 2));
    }
    cr_assert_eq(r, 0, "read_body: %s", strerror(errno));
    *len = n;
    return b;
}

static int stream(gr_http_request *req)
{
    static const char *parts[] = {"one,", "two,", "", "three"};

    if (gr_http_begin(req, 200, NULL, 0, -1, -1) != 0)
        return -1;
    for (size_t i = 0; i < 4; i++) {
        if (gr_http_send(req, parts[i], strlen(parts[i]), -1) != 0)
            return -1;
        gr_sleep(gr_now() + 2); /* separate chunks, separate segments */
    }
    return gr_http_end(req, -1);
}

/* The body back, streamed chunked in 64 KiB pieces. */
static int echo_chunked(gr_http_request *req)
{
    size_t n;
    char *b = read_all(req, &n);
    int rc = gr_http_begin(req, 200, NULL, 0, -1, -1);

    for (size_t off = 0; rc == 0 && off < n; off += 65536)
        rc = gr_http_send(req, b + off, n - off < 65536 ? n - off : 65536, -1);
    free(b);
    return rc == 0 ? gr_http_end(req, -1) : -1;
}

static int handler(gr_http_request *req, void *arg)
{
    const char *host = gr_http_header_get(req, "Host");
    gr_http_header h[] = {
        {"Content-Type", "text/plain"}, {"X-Host", host ? host : "-"}, {"X-Method", req->method}};

    (void)arg;
    if (!strcmp(req->path, "/stream"))
        return stream(req);
    if (!strcmp(req->path, "/echo-chunked"))
        return echo_chunked(req);
    if (!strcmp(req->path, "/big"))
        return gr_http_respond(req, 200, h, 3, big_body, BIG, -1);
    if (!strcmp(req->path, "/echo")) {
        size_t n;
        char *b = read_all(req, &n);
        int rc = gr_http_respond(req, 200, h, 3, b, n, -1);

        free(b);
        return rc;
    }
    if (!strcmp(req->path, "/empty"))
        return gr_http_respond(req, 204, NULL, 0, NULL, 0, -1);
    return gr_http_respond(req, 200, h, 3, "hello\n", 6, -1);
}

static gr_http_server *http_start(const gr_http_opts *o, int *port)
{
    int l = gr_tcp_listen("127.0.0.1", 0, 0);
    gr_http_server *s;

    cr_assert_geq(l, 0);
    *port = gr_local_port(l);
    s = gr_http_server_new(l, handler, NULL, o);
    cr_assert_not_null(s);
    cr_assert_eq(gr_http_server_start(s), 0);
    return s;
}

static void http_stop(gr_http_server *s)
{
    gr_http_server_stop(s, gr_now() + 1000);
    cr_assert_eq(gr_http_server_free(s), 0);
}

static uint64_t http_accepted(gr_http_server *s)
{
    gr_server_stats st;

    cr_assert_eq(gr_http_server_stats_get(s, &st), 0);
    return st.accepted;
}

static gr_http_client *client(int port)
{
    gr_http_client *c = gr_http_client_new("127.0.0.1", port);

    cr_assert_not_null(c, "client_new: %s", strerror(errno));
    return c;
}

/* A request that must succeed. */
static void request(gr_http_client *c, const char *method, const char *target, const void *body,
                    size_t len, gr_http_response *r)
{
    int rc = gr_http_client_request(c, method, target, NULL, 0, body, len, r, soon());

    cr_assert_eq(rc, 0, "%s %s: %s", method, target, strerror(errno));
}

static void get_post_head(void)
{
    int port;
    gr_http_server *s = http_start(NULL, &port);
    gr_http_client *c = client(port);
    gr_http_response r;
    char host[32];

    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    request(c, "GET", "/hello?x=1", NULL, 0, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.version, 11);
    cr_assert_eq(r.body_len, 6);
    cr_assert_str_eq(r.body, "hello\n");
    cr_assert_str_eq(gr_http_response_header(&r, "content-type"), "text/plain");
    cr_assert_str_eq(gr_http_response_header(&r, "CONTENT-LENGTH"), "6");
    cr_assert_str_eq(gr_http_response_header(&r, "x-host"), host);
    cr_assert_null(gr_http_response_header(&r, "X-Absent"));

    request(c, "POST", "/echo", "posted body", 11, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "posted body");
    cr_assert_str_eq(gr_http_response_header(&r, "X-Method"), "POST");
    /* POST without a body still says Content-Length: 0. */
    request(c, "POST", "/echo", NULL, 0, &r);
    cr_assert_eq(r.body_len, 0);
    cr_assert_str_eq(r.body, "");
    request(c, "PUT", "/echo", "x", 1, &r);
    cr_assert_str_eq(r.body, "x");

    /* HEAD: the length a GET would have had, and no body. */
    request(c, "HEAD", "/hello", NULL, 0, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.body_len, 0);
    cr_assert_str_eq(r.body, "");
    cr_assert_str_eq(gr_http_response_header(&r, "Content-Length"), "6");
    request(c, "GET", "/empty", NULL, 0, &r);
    cr_assert_eq(r.status, 204);
    cr_assert_eq(r.body_len, 0);
    /* After HEAD and 204 the connection is in step: one connection. */
    request(c, "GET", "/hello", NULL, 0, &r);
    cr_assert_str_eq(r.body, "hello\n");
    cr_assert_eq(http_accepted(s), 1);

    gr_http_client_free(c);
    http_stop(s);
}

CLIENT_TEST(get_post_head, get_post_head, 20)

static void keep_alive(void)
{
    int port;
    gr_http_server *s = http_start(NULL, &port);
    gr_http_client *c = client(port);
    gr_http_response r;
    const char *body = NULL;
    const gr_http_header *headers = NULL;

    for (int i = 0; i < 10; i++) {
        request(c, i % 2 ? "POST" : "GET", i % 2 ? "/echo" : "/hello", i % 2 ? "abcdef" : NULL,
                i % 2 ? 6 : 0, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.body_len, 6);
        /* Same-sized responses reuse the same buffers. */
        if (i >= 2) {
            cr_assert_eq(r.body, body);
            cr_assert_eq(r.headers, headers);
        }
        body = r.body;
        headers = r.headers;
    }
    cr_assert_eq(http_accepted(s), 1, "10 requests, 1 connection");
    gr_http_client_free(c);
    http_stop(s);
}

CLIENT_TEST(keep_alive_reuses_one_connection, keep_alive, 20)

static void chunked(void)
{
    int port;
    gr_http_server *s = http_start(NULL, &port);
    gr_http_client *c = client(port);
    gr_http_response r;

    request(c, "GET", "/stream", NULL, 0, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(gr_http_response_header(&r, "Transfer-Encoding"), "chunked");
    cr_assert_eq(r.body_len, 13);
    cr_assert_str_eq(r.body, "one,two,three");
    request(c, "POST", "/echo-chunked", "round trip", 10, &r);
    cr_assert_str_eq(r.body, "round trip");
    request(c, "GET", "/hello", NULL, 0, &r);
    cr_assert_str_eq(r.body, "hello\n");
    cr_assert_eq(http_accepted(s), 1);
    gr_http_client_free(c);
    http_stop(s);
}

CLIENT_TEST(chunked_and_streamed, chunked, 20)

static void large(void)
{
    int port;
    gr_http_server *s = http_start(NULL, &port);
    gr_http_client *c = client(port);
    gr_http_response r;

    big_body = pattern(BIG);
    /* 8 MiB down with a Content-Length. */
    request(c, "GET", "/big", NULL, 0, &r);
    cr_assert_eq(r.body_len, BIG);
    cr_assert(memcmp(r.body, big_body, BIG) == 0);
    cr_assert_eq(r.body[BIG], '\0');
    /* 8 MiB up, and back chunked. */
    request(c, "POST", "/echo-chunked", big_body, BIG, &r);
    cr_assert_eq(r.body_len, BIG);
    cr_assert(memcmp(r.body, big_body, BIG) == 0);
    /* And with a Content-Length. */
    request(c, "POST", "/echo", big_body, BIG, &r);
    cr_assert_eq(r.body_len, BIG);
    cr_assert(memcmp(r.body, big_body, BIG) == 0);
    request(c, "GET", "/hello", NULL, 0, &r);
    cr_assert_str_eq(r.body, "hello\n");
    cr_assert_eq(http_accepted(s), 1);
    gr_http_client_free(c);
    http_stop(s);
    free(big_body);
}

CLIENT_TEST(large_bodies, large, 30)

/* "Connection: close" asked by the caller: the server answers with it and
 * closes; the next request connects again. */
static void connection_close(void)
{
    static const gr_http_header close_h[] = {{"Connection", "close"}};
    int port;
    gr_http_server *s = http_start(NULL, &port);
    gr_http_client *c = client(port);
    gr_http_response r;

    request(c, "GET", "/hello", NULL, 0, &r);
    cr_assert_eq(gr_http_client_request(c, "GET", "/hello", close_h, 1, NULL, 0, &r, soon()), 0);
    cr_assert_str_eq(gr_http_response_header(&r, "Connection"), "close");
    cr_assert_str_eq(r.body, "hello\n");
    cr_assert_eq(http_accepted(s), 1);
    request(c, "GET", "/hello", NULL, 0, &r);
    cr_assert_str_eq(r.body, "hello\n");
    cr_assert_eq(http_accepted(s), 2);
    gr_http_client_free(c);
    http_stop(s);
}

CLIENT_TEST(connection_close_then_reconnect, connection_close, 20)

/* A body over the server's limit: it answers 413 without reading it and
 * closes, which cuts the client's send short; the answer still counts. */
static void early_answer(void)
{
    gr_http_opts o = {.max_body = 1024};
    int port;
    gr_http_server *s = http_start(&o, &port);
    gr_http_client *c = client(port);
    gr_http_response r;
    char *body = pattern(BIG);

    for (int i = 0; i < 3; i++) {
        request(c, "POST", "/echo", body, BIG, &r);
        cr_assert_eq(r.status, 413);
        request(c, "POST", "/echo", "small", 5, &r);
        cr_assert_str_eq(r.body, "small");
    }
    free(body);
    gr_http_client_free(c);
    http_stop(s);
}

CLIENT_TEST(early_answer_to_a_large_body, early_answer, 20)

/* The server drops the idle connection; the client notices only when it
 * uses it again, and sends the request once more on a new one. */
static void idle_close(void)
{
    gr_http_opts o = {.idle_timeout_ms = 50};
    int port;
    gr_http_server *s = http_start(&o, &port);
    gr_http_client *c = client(port);
    gr_http_response r;

    request(c, "GET", "/hello", NULL, 0, &r);
    gr_sleep(gr_now() + 200);
    request(c, "POST", "/echo", "again", 5, &r);
    cr_assert_str_eq(r.body, "again");
    cr_assert_eq(http_accepted(s), 2);
    gr_sleep(gr_now() + 200);
    request(c, "GET", "/hello", NULL, 0, &r);
    cr_assert_str_eq(r.body, "hello\n");
    cr_assert_eq(http_accepted(s), 3);
    gr_http_client_free(c);
    http_stop(s);
}

CLIENT_TEST(idle_timeout_then_reconnect, idle_close, 20)

/* ------------------------------------------------------- raw servers */

/* A server whose every byte is written by the test: script(fd, conn, req)
 * answers request req (0, 1, ...) of connection conn (0, 1, ...) and
 * returns 0 to keep the connection, -1 to close it. */
typedef int (*script_fn)(int fd, int conn, int req);

typedef struct raw {
    gr_server *srv;
    int port;
    script_fn script;
    int conns;
    char head[4096]; /* the last request's head, NUL-terminated */
} raw;

/* Read one request (head, and a body by Content-Length) into r->head.
 * Returns 0, or -1 at the end of the stream. */
static int read_request(gr_reader *rd, raw *r)
{
    size_t n = 0;
    long body = 0;
    char line[1024];
    ssize_t k;

    while ((k = gr_reader_line(rd, line, sizeof line, soon())) > 0) {
        cr_assert_lt(n + (size_t)k, sizeof r->head);
        memcpy(r->head + n, line, (size_t)k + 1);
        n += (size_t)k;
        if (!strncasecmp(line, "Content-Length:", 15))
            body = atol(line + 15);
        if (!strcmp(line, "\r\n"))
            break;
    }
    while (k > 0 && body > 0) {
        char b[4096];

        k = gr_reader_read(rd, b, sizeof b < (size_t)body ? sizeof b : (size_t)body, soon());
        body -= k;
    }
    return k > 0 ? 0 : -1;
}

static void raw_conn(int fd, const gr_addr *peer, void *arg)
{
    raw *r = arg;
    int conn = r->conns++;
    char buf[8192];
    gr_reader rd;

    (void)peer;
    gr_reader_init(&rd, fd, buf, sizeof buf);
    for (int req = 0; read_request(&rd, r) == 0; req++)
        if (r->script(fd, conn, req) != 0)
            return;
}

static void raw_start(raw *r, const char *host, script_fn script)
{
    int l = gr_tcp_listen(host, 0, 0);

    cr_assert_geq(l, 0, "listen %s: %s", host, strerror(errno));
    memset(r, 0, sizeof *r);
    r->script = script;
    r->port = gr_local_port(l);
    r->srv = gr_server_new(l, raw_conn, r, NULL);
    cr_assert_not_null(r->srv);
    cr_assert_eq(gr_server_start(r->srv), 0);
}

static void raw_stop(raw *r)
{
    gr_server_stop(r->srv, gr_now() + 100); /* scripts that wait forever are killed */
    cr_assert_eq(gr_server_free(r->srv), 0);
}

static uint64_t raw_accepted(raw *r)
{
    gr_server_stats st;

    cr_assert_eq(gr_server_stats_get(r->srv, &st), 0);
    return st.accepted;
}

/* Wait until every connection's script has returned. */
static void raw_idle(raw *r)
{
    gr_server_stats st;

    WAIT_FOR(gr_server_stats_get(r->srv, &st) == 0 && st.active == 0);
}

/* A raw server on 127.0.0.1 and a client for it. */
typedef struct fix {
    raw s;
    gr_http_client *c;
    gr_http_response r;
} fix;

static fix *fix_open(script_fn script)
{
    static fix f;

    raw_start(&f.s, "127.0.0.1", script);
    f.c = client(f.s.port);
    return &f;
}

static void fix_close(fix *f)
{
    gr_http_client_free(f->c);
    raw_stop(&f->s);
}

/* GET / within deadline: 0 or -1 with errno. */
static int get(fix *f, int64_t deadline)
{
    return gr_http_client_request(f->c, "GET", "/", NULL, 0, NULL, 0, &f->r, deadline);
}

static void say(int fd, const char *s)
{
    cr_assert_eq(gr_write_all(fd, s, strlen(s), NULL, soon()), 0);
}

/* Every byte in its own write, and (TCP_NODELAY) its own segment. */
static void dribble(int fd, const char *s)
{
    gr_tcp_nodelay(fd, 1);
    for (; *s; s++) {
        cr_assert_eq(gr_write(fd, s, 1, soon()), 1);
        gr_sleep(gr_now() + 1);
    }
}

/* Read until the client closes: its proof that it gave the connection up. */
static int wait_close(int fd)
{
    char b[256];

    while (gr_read(fd, b, sizeof b, -1) > 0) {
    }
    return -1;
}

/* -------------------------------------------------- the request as sent */

static int answer_ok(int fd, int conn, int req)
{
    (void)conn, (void)req;
    say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    return 0;
}

static void request_bytes(void)
{
    static const gr_http_header h[] = {{"X-One", "1"}, {"x-two", ""}};
    static const gr_http_header vhost[] = {{"host", "example.org"}};
    fix *f = fix_open(answer_ok);
    char want[256];
    int l6;

    cr_assert_eq(gr_http_client_request(f->c, "GET", "/a?b=c", h, 2, NULL, 0, &f->r, soon()), 0);
    snprintf(want, sizeof want,
             "GET /a?b=c HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-One: 1\r\nx-two: \r\n"
             "Connection: keep-alive\r\n\r\n",
             f->s.port);
    cr_assert_str_eq(f->s.head, want);
    cr_assert_eq(gr_http_client_request(f->c, "POST", "/p", NULL, 0, "data", 4, &f->r, soon()), 0);
    snprintf(want, sizeof want,
             "POST /p HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 4\r\n"
             "Connection: keep-alive\r\n\r\n",
             f->s.port);
    cr_assert_str_eq(f->s.head, want);
    /* The caller's Host wins; DELETE without a body has no length. */
    cr_assert_eq(gr_http_client_request(f->c, "DELETE", "/d", vhost, 1, NULL, 0, &f->r, soon()), 0);
    cr_assert_str_eq(f->s.head,
                     "DELETE /d HTTP/1.1\r\nhost: example.org\r\nConnection: keep-alive\r\n\r\n");
    cr_assert_eq(raw_accepted(&f->s), 1);
    fix_close(f);

    /* An IPv6 literal goes in brackets, given with or without them. */
    if ((l6 = gr_tcp_listen("::1", 0, 0)) >= 0) {
        const char *hosts[] = {"::1", "[::1]"};
        gr_http_response r;
        raw s;

        gr_close(l6);
        raw_start(&s, "::1", answer_ok);
        for (int i = 0; i < 2; i++) {
            gr_http_client *c = gr_http_client_new(hosts[i], s.port);

            cr_assert_not_null(c);
            cr_assert_eq(gr_http_client_request(c, "GET", "/", NULL, 0, NULL, 0, &r, soon()), 0,
                         "%s", strerror(errno));
            snprintf(want, sizeof want, "Host: [::1]:%d\r\n", s.port);
            cr_assert(strstr(s.head, want), "%s", s.head);
            gr_http_client_free(c);
        }
        raw_stop(&s);
    }
}

CLIENT_TEST(request_bytes, request_bytes, 20)

static void bad_arguments(void)
{
    static const gr_http_header cr[] = {{"X-A", "a\r\nX-Injected: 1"}};
    static const gr_http_header lf[] = {{"X-A\n", "a"}};
    static const gr_http_header colon[] = {{"X:A", "a"}};
    static const gr_http_header empty[] = {{"", "a"}};
    static const gr_http_header null_value[] = {{"X-A", NULL}};
    static const gr_http_header length[] = {{"content-length", "3"}};
    static const gr_http_header te[] = {{"Transfer-Encoding", "chunked"}};
    const gr_http_header *bad[] = {cr, lf, colon, empty, null_value, length, te};
    const char *bad_hosts[] = {NULL, "", "a b", "host\r\nX: 1", "a/b"};
    fix *f;

    gr_http_client_free(NULL);
#define BAD_NEW(host, port)                                                                        \
    do {                                                                                           \
        errno = 0;                                                                                 \
        cr_assert_null(gr_http_client_new(host, port));                                            \
        cr_assert_eq(errno, EINVAL);                                                               \
    } while (0)
    for (size_t i = 0; i < sizeof bad_hosts / sizeof *bad_hosts; i++)
        BAD_NEW(bad_hosts[i], 80);
    BAD_NEW("127.0.0.1", 0);
    BAD_NEW("127.0.0.1", 65536);
#undef BAD_NEW

    f = fix_open(answer_ok);
#define BAD(m, t, h, n, b, l, r)                                                                   \
    assert_fails(gr_http_client_request(f->c, m, t, h, n, b, l, r, soon()), EINVAL)
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        BAD("GET", "/", bad[i], 1, NULL, 0, &f->r);
    BAD("GET", "/", NULL, 1, NULL, 0, &f->r);
    BAD("GE T", "/", NULL, 0, NULL, 0, &f->r);
    BAD("", "/", NULL, 0, NULL, 0, &f->r);
    BAD(NULL, "/", NULL, 0, NULL, 0, &f->r);
    BAD("GET", "/a b", NULL, 0, NULL, 0, &f->r);
    BAD("GET", "/\r\n", NULL, 0, NULL, 0, &f->r);
    BAD("GET", NULL, NULL, 0, NULL, 0, &f->r);
    BAD("POST", "/", NULL, 0, NULL, 3, &f->r);
    BAD("GET", "/", NULL, 0, NULL, 0, NULL);
#undef BAD
    assert_fails(gr_http_client_request(NULL, "GET", "/", NULL, 0, NULL, 0, &f->r, soon()), EINVAL);
    cr_assert_null(gr_http_response_header(NULL, "x"));
    /* Nothing was sent: the server never saw a connection. */
    cr_assert_eq(raw_accepted(&f->s), 0);
    cr_assert_eq(get(f, soon()), 0);
    cr_assert_str_eq(f->r.body, "ok");
    fix_close(f);
}

CLIENT_TEST(bad_arguments, bad_arguments, 20)

/* ---------------------------------------------------- response shapes */

static int http10(int fd, int conn, int req)
{
    (void)conn, (void)req;
    say(fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nthe body ends ");
    gr_sleep(gr_now() + 5);
    say(fd, "when the connection does");
    return -1;
}

static void close_delimited(void)
{
    fix *f = fix_open(http10);

    for (int i = 0; i < 2; i++) {
        cr_assert_eq(get(f, soon()), 0, "%s", strerror(errno));
        cr_assert_eq(f->r.version, 10);
        cr_assert_str_eq(f->r.body, "the body ends when the connection does");
        cr_assert_eq(raw_accepted(&f->s), (uint64_t)i + 1, "no reuse of a closed connection");
    }
    fix_close(f);
}

CLIENT_TEST(http10_close_delimited_body, close_delimited, 20)

/* HTTP/1.0 with keep-alive: the connection stays. */
static int http10_keep(int fd, int conn, int req)
{
    (void)conn, (void)req;
    say(fd, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc");
    return 0;
}

/* HTTP/1.1 with Connection: close; the client must be the one to close. */
static int http11_close(int fd, int conn, int req)
{
    (void)conn, (void)req;
    say(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nxyz");
    return wait_close(fd);
}

static void keep_or_close(void)
{
    fix *f = fix_open(http10_keep);

    for (int i = 0; i < 3; i++) {
        cr_assert_eq(get(f, soon()), 0);
        cr_assert_str_eq(f->r.body, "abc");
    }
    cr_assert_eq(raw_accepted(&f->s), 1);
    fix_close(f);

    f = fix_open(http11_close);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(get(f, soon()), 0);
        cr_assert_str_eq(f->r.body, "xyz");
        cr_assert_eq(raw_accepted(&f->s), (uint64_t)i + 1);
    }
    fix_close(f);
}

CLIENT_TEST(server_decides_keep_alive_or_close, keep_or_close, 20)

/* Interim responses before the final one; the third request gets a 101,
 * after which the connection speaks another protocol. */
static int interim_first(int fd, int conn, int req)
{
    (void)conn;
    if (req == 2) {
        say(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n");
        return wait_close(fd);
    }
    say(fd, "HTTP/1.1 100 Continue\r\n\r\n");
    gr_sleep(gr_now() + 5);
    say(fd, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            "HTTP/1.1 201 Created\r\nX-Final: yes\r\nContent-Length: 4\r\n\r\ndone");
    return 0;
}

static void continue_100(void)
{
    static const gr_http_header expect[] = {{"Expect", "100-continue"}};
    fix *f = fix_open(interim_first);
    gr_http_response *r = &f->r;

    for (int i = 0; i < 2; i++) {
        cr_assert_eq(gr_http_client_request(f->c, "PUT", "/", expect, 1, "body", 4, r, soon()), 0);
        cr_assert_eq(r->status, 201);
        cr_assert_eq(r->nheaders, 2);
        cr_assert_str_eq(gr_http_response_header(r, "X-Final"), "yes");
        cr_assert_null(gr_http_response_header(r, "Link"));
        cr_assert_str_eq(r->body, "done");
    }
    cr_assert_eq(get(f, soon()), 0);
    cr_assert_eq(r->status, 101);
    cr_assert_str_eq(gr_http_response_header(r, "Upgrade"), "x");
    cr_assert_eq(r->body_len, 0);
    cr_assert_eq(raw_accepted(&f->s), 1);
    cr_assert_eq(get(f, soon()), 0); /* on a new connection */
    cr_assert_eq(r->status, 201);
    cr_assert_eq(raw_accepted(&f->s), 2);
    fix_close(f);
}

CLIENT_TEST(interim_responses_are_skipped, continue_100, 20)

/* Odd spacing, an empty value, a chunk extension and a trailer, one byte
 * per write. */
static int one_byte_writes(int fd, int conn, int req)
{
    (void)conn, (void)req;
    dribble(fd, "HTTP/1.1 200 Fine\r\n"
                "X-Spaces:   padded value  \t\r\n"
                "X-Empty:\r\n"
                "Transfer-Encoding: chunked\r\n"
                "\r\n"
                "5;ext=1\r\nhello\r\n"
                "1\r\n,\r\n"
                "6\r\n world\r\n"
                "0\r\nX-Trailer: t\r\n\r\n");
    return 0;
}

static void split(void)
{
    fix *f = fix_open(one_byte_writes);
    gr_http_response *r = &f->r;

    for (int i = 0; i < 2; i++) {
        cr_assert_eq(get(f, soon()), 0, "%s", strerror(errno));
        cr_assert_eq(r->status, 200);
        cr_assert_eq(r->nheaders, 3);
        cr_assert_str_eq(r->headers[0].name, "X-Spaces");
        cr_assert_str_eq(r->headers[0].value, "padded value");
        cr_assert_str_eq(gr_http_response_header(r, "x-empty"), "");
        cr_assert_null(gr_http_response_header(r, "X-Trailer"));
        cr_assert_eq(r->body_len, 12);
        cr_assert_str_eq(r->body, "hello, world");
    }
    cr_assert_eq(raw_accepted(&f->s), 1);
    fix_close(f);
}

CLIENT_TEST(response_in_one_byte_writes, split, 20)

/* ------------------------------------------------------------- errors */

static const char *const malformed[] = {
    "HTTP/1.1 abc OK\r\n\r\n",
    "garbage\r\n\r\n",
    "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
};

static int send_malformed(int fd, int conn, int req)
{
    (void)req;
    say(fd, malformed[conn % 5]);
    return wait_close(fd);
}

static void bad_responses(void)
{
    fix *f = fix_open(send_malformed);

    for (int i = 0; i < 5; i++) {
        assert_fails(get(f, soon()), EPROTO);
        cr_assert_eq(f->r.status, 0);
        /* The connection was closed: each attempt is a new one. */
        cr_assert_eq(raw_accepted(&f->s), (uint64_t)i + 1);
    }
    fix_close(f);
}

CLIENT_TEST(malformed_response_is_eproto, bad_responses, 20)

static int cut_short(int fd, int conn, int req)
{
    static const char *const cut[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
        "HTTP/1.1 200 OK\r\nContent-Le",
    };

    (void)req;
    say(fd, cut[conn % 3]);
    return -1;
}

static void truncated(void)
{
    fix *f = fix_open(cut_short);

    for (int i = 0; i < 3; i++)
        assert_fails(get(f, soon()), EPIPE);
    cr_assert_eq(raw_accepted(&f->s), 3, "a fresh connection is never retried");
    fix_close(f);
}

CLIENT_TEST(server_closes_mid_response, truncated, 20)

/* The first two connections answer their first request, keep the
 * connection, and close it unanswered at the second; later connections
 * are closed unanswered. */
static int then_vanish(int fd, int conn, int req)
{
    return req == 0 && conn < 2 ? answer_ok(fd, conn, req) : -1;
}

static void retried_once(void)
{
    fix *f = fix_open(then_vanish);

    cr_assert_eq(get(f, soon()), 0);
    /* The kept connection fails before any byte of a response: the POST
     * goes again on a new connection. */
    cr_assert_eq(gr_http_client_request(f->c, "POST", "/", NULL, 0, "x", 1, &f->r, soon()), 0);
    cr_assert_str_eq(f->r.body, "ok");
    cr_assert_eq(raw_accepted(&f->s), 2);
    /* And when the new connection fails too, the error stands: one
     * reconnection only. */
    assert_fails(get(f, soon()), EPIPE);
    cr_assert_eq(raw_accepted(&f->s), 3);
    fix_close(f);
}

CLIENT_TEST(stale_connection_is_retried_once, retried_once, 20)

/* Bytes after a response: arriving once the client has the response (to
 * be found before the next request), or in the same read as the response. */
static int with_junk(int fd, int conn, int req)
{
    (void)req;
    if (conn == 0) {
        say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        gr_sleep(gr_now() + 10);
        say(fd, "junk");
    } else if (conn == 1) {
        say(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\njunk");
    } else {
        return answer_ok(fd, conn, req);
    }
    return wait_close(fd);
}

static void stray_bytes(void)
{
    fix *f = fix_open(with_junk);

    for (int i = 0; i < 4; i++) {
        cr_assert_eq(get(f, soon()), 0, "%s", strerror(errno));
        cr_assert_str_eq(f->r.body, "ok");
        cr_assert_eq(raw_accepted(&f->s), (uint64_t)(i < 2 ? i + 1 : 3));
        gr_sleep(gr_now() + 50);
    }
    fix_close(f);
}

CLIENT_TEST(stray_bytes_drop_the_connection, stray_bytes, 20)

/* The first connection is never answered (read until the client hangs
 * up); later ones are. */
static int silent(int fd, int conn, int req)
{
    return conn == 0 ? wait_close(fd) : answer_ok(fd, conn, req);
}

static void never_answers(void)
{
    fix *f = fix_open(silent);
    int64_t t0 = gr_now_update();

    assert_fails(get(f, t0 + 200), ETIMEDOUT);
    cr_assert_geq(gr_now_update() - t0, 195);
    cr_assert_lt(gr_now_update() - t0, 1000);
    /* The client gave the connection up (the server saw it close), and
     * the next request gets a new one. */
    raw_idle(&f->s);
    cr_assert_eq(get(f, soon()), 0);
    cr_assert_str_eq(f->r.body, "ok");
    cr_assert_eq(raw_accepted(&f->s), 2);
    /* A deadline already past fails at once. */
    assert_fails(get(f, 0), ETIMEDOUT);
    fix_close(f);
}

CLIENT_TEST(deadline_is_etimedout, never_answers, 20)

static void *requester(void *arg)
{
    int rc = get(arg, -1);

    return (void *)(intptr_t)(rc == 0 ? 0 : errno);
}

static void killed(void)
{
    fix *f = fix_open(silent);
    gr_t g = gr_spawn(requester, f);
    void *res;

    gr_sleep(gr_now() + 50);
    /* One request at a time per client. */
    assert_fails(get(f, soon()), EBUSY);
    cr_assert_eq(gr_kill(g), 0);
    cr_assert_eq(gr_join(g, &res, soon()), 0);
    cr_assert_eq((intptr_t)res, ECANCELED);
    raw_idle(&f->s); /* the client closed the connection */
    cr_assert_eq(get(f, soon()), 0);
    cr_assert_str_eq(f->r.body, "ok");
    cr_assert_eq(raw_accepted(&f->s), 2);
    fix_close(f);
}

CLIENT_TEST(killed_request_is_ecanceled, killed, 20)

static int oversized(int fd, int conn, int req)
{
    (void)req;
    if (conn == 0)
        say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\nxxxx");
    else
        say(fd, "HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n");
    return wait_close(fd);
}

static void too_large(void)
{
    fix *f = fix_open(oversized);
    int64_t t0 = gr_now_update();

    /* 100 MiB announced: refused before a byte of it is read. */
    assert_fails(get(f, soon()), EMSGSIZE);
    cr_assert_lt(gr_now_update() - t0, 1000);
    /* 64 MiB exactly is allowed: the client waits for it (until the
     * deadline). */
    assert_fails(get(f, gr_now() + 100), ETIMEDOUT);
    cr_assert_eq(raw_accepted(&f->s), 2);
    fix_close(f);
}

CLIENT_TEST(response_over_64_mib_is_emsgsize, too_large, 20)

/* -------------------------------------------------- connection errors */

static void refused(void)
{
    int l = gr_tcp_listen("127.0.0.1", 0, 0), port = gr_local_port(l);
    gr_http_client *c;
    gr_http_response r;

    gr_close(l); /* nobody listens there any more */
    c = client(port);
    assert_fails(gr_http_client_request(c, "GET", "/", NULL, 0, NULL, 0, &r, soon()), ECONNREFUSED);
    gr_http_client_free(c);
}

CLIENT_TEST(connection_refused, refused, 20)

/* A name server on loopback that answers NXDOMAIN to everything: the
 * question echoed back, flagged as an answer with rcode 3. */
static void nxdomain(int fd, const void *data, size_t len, const gr_addr *peer, void *arg)
{
    unsigned char b[512];
    size_t i = 12;

    (void)arg;
    if (len < 12 || len > sizeof b)
        return;
    memcpy(b, data, len);
    while (i < len && b[i])
        i += b[i] + 1u;
    if (i + 5 > len)
        return;
    b[2] = (unsigned char)(0x80 | (b[2] & 0x01)); /* QR, RD as asked */
    b[3] = 0x83;                                  /* RA, NXDOMAIN */
    memset(b + 6, 0, 6);                          /* no answer, authority, additional */
    gr_sendto(fd, b, i + 5, 0, &peer->u.sa, peer->len, soon());
}

static void bad_host(void)
{
    int u = gr_udp_bind("127.0.0.1", 0);
    char servers[32];
    gr_server *dns;
    gr_http_client *c;
    gr_http_response r;

    cr_assert_geq(u, 0);
    snprintf(servers, sizeof servers, "127.0.0.1:%d", gr_local_port(u));
    dns = gr_datagram_server_new(u, nxdomain, NULL, 0, NULL);
    cr_assert_not_null(dns);
    cr_assert_eq(gr_server_start(dns), 0);
    cr_assert_eq(gr_resolver_set(GR_RESOLVER_ARES), 0);
    cr_assert_eq(gr_resolver_servers(servers), 0);

    c = gr_http_client_new("no-such-host.invalid", 8080);
    cr_assert_not_null(c);
    assert_fails(gr_http_client_request(c, "GET", "/", NULL, 0, NULL, 0, &r, soon()),
                 EADDRNOTAVAIL);
    gr_http_client_free(c);
    gr_server_stop(dns, gr_now() + 1000);
    gr_server_free(dns);
}

CLIENT_TEST(unknown_host_is_eaddrnotavail, bad_host, 20)
