/* The HTTP server (docs/http.md), in process: a server on green threads
 * against raw-socket clients (http_common.h) and against curl. Requests,
 * keep-alive, pipelining, chunked bodies both ways, 100-continue, HEAD,
 * every limit and time-out, malformed and smuggling requests, handler
 * failures, header injection, the Date header, the access log and
 * graceful stop.
 * The threaded server, fd ownership and the handler calls' deadlines are
 * in test_http_servers.c; the seed server and ab are driven by
 * tests/test_seed_server.sh, the parser by the fuzzer
 * (scripts/fuzz-http.sh). */
#include "http_common.h"
#include "shell_common.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <sys/stat.h>

/* ================================================== requests and answers */

static void *t_get(void *arg)
{
    srv s = srv_start(h_info, NULL, NULL);
    client *c = cl_open(s.port);
    struct tm tm = {0};
    const char *date;
    regex_t re;
    resp r;

    (void)arg;
    cl_send(c, "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example\r\nX-Trim:   v a l  \r\n"
               "X-Empty:\r\nx-lower: Mixed\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    cr_assert(!strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17));
    cr_assert_str_eq(hdr(&r, "Content-Type"), "text/plain");
    cr_assert_eq(strtoul(hdr(&r, "Content-Length"), NULL, 10), r.len);
    cr_assert_null(hdr(&r, "Connection"), "HTTP/1.1 keep-alive needs no Connection header");
    cr_assert_str_eq(r.body, "method=GET target=/a/b?x=1&y=%20 path=/a/b query=x=1&y=%20 "
                             "version=11 cl=-1 chunked=0 ka=1\n"
                             "[Host]=[example]\n[X-Trim]=[v a l]\n[X-Empty]=[]\n"
                             "[x-lower]=[Mixed]\n");
    /* Date: an IMF-fixdate, and now. */
    date = hdr(&r, "Date");
    cr_assert_not_null(date);
    cr_assert_eq(regcomp(&re,
                         "^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
                         "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
                         "[0-9]{2}:[0-9]{2}:[0-9]{2} GMT$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    cr_assert_eq(regexec(&re, date, 0, NULL, 0), 0, "Date: %s", date);
    regfree(&re);
    cr_assert_not_null(strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm));
    cr_assert_lt(labs((long)(timegm(&tm) - time(NULL))), 5, "Date: %s is not now", date);
    resp_free(&r);
    cl_close(c);
    srv_stop(&s);
    return NULL;
}

Test(http, get_request_fields_and_date, .timeout = 20)
{
    run_main(t_get, NULL);
}

static void *t_head(void *arg)
{
    srv s = srv_start(h_info, NULL, NULL);
    client *c = cl_open(s.port);
    resp get, head;

    (void)arg;
    cl_send(c, "GET /h HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &get, 0);
    /* The same resource by HEAD: the same length, no body; the request
     * after it on the same connection proves no body bytes were sent. */
    cl_send(c, "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /h HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &head, 1);
    cr_assert_eq(head.status, 200);
    cr_assert_str_eq(hdr(&head, "Content-Length"), hdr(&get, "Content-Length"));
    resp_free(&head);
    resp_free(&get);
    read_response(c, &get, 0);
    cr_assert_eq(get.status, 200);
    cr_assert(strstr(get.body, "method=GET"));
    resp_free(&get);
    cl_close(c);
    srv_stop(&s);
    return NULL;
}

Test(http, head_has_length_but_no_body, .timeout = 20)
{
    run_main(t_head, NULL);
}

static void *t_post(void *arg)
{
    srv s = srv_start(h_echo, NULL, NULL);
    client *c = cl_open(s.port);
    size_t len = 300000;
    char *body = malloc(len), head[128];
    resp r;

    (void)arg;
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + i % 26);
    snprintf(head, sizeof head, "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n", len);
    cl_send(c, head);
    /* In pieces: the handler reads as they come. */
    for (size_t off = 0; off < len; off += 70001)
        cl_sendn(c, body + off, len - off < 70001 ? len - off : 70001);
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(hdr(&r, "X-Method"), "POST");
    cr_assert_eq(r.len, len);
    cr_assert_eq(memcmp(r.body, body, len), 0);
    resp_free(&r);
    /* And an empty body, on the same connection. */
    cl_send(c, "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0);
    resp_free(&r);
    free(body);
    cl_close(c);
    srv_stop(&s);
    return NULL;
}

Test(http, post_body_echoed, .timeout = 20)
{
    run_main(t_post, NULL);
}

static void *t_keepalive(void *arg)
{
    srv s = srv_start(h_info, NULL, NULL);
    client *c = cl_open(s.port);
    gr_server_stats st;
    resp r;

    (void)arg;
    for (int i = 0; i < 5; i++) {
        cl_send(c, "GET /k HTTP/1.1\r\nHost: a\r\n\r\n");
        read_response(c, &r, 0);
        cr_assert_eq(r.status, 200);
        resp_free(&r);
    }
    /* HTTP/1.0 asking for keep-alive gets it, and says so. */
    cl_send(c, "GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "Connection"), "keep-alive");
    cr_assert(strstr(r.body, "version=10"));
    cr_assert(strstr(r.body, "ka=1"));
    resp_free(&r);
    /* Connection: close is honoured. */
    cl_send(c, "GET /k HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "Connection"), "close");
    cr_assert(strstr(r.body, "ka=0"));
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    cr_assert_eq(gr_http_server_stats_get(s.s, &st), 0);
    cr_assert_eq(st.accepted, 1, "one connection for all of them");
    /* HTTP/1.0 without keep-alive: closed after one response. */
    c = cl_open(s.port);
    cl_send(c, "GET /k HTTP/1.0\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "Connection"), "close");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    srv_stop(&s);
    return NULL;
}

Test(http, keep_alive_and_connection_close, .timeout = 20)
{
    run_main(t_keepalive, NULL);
}

static void *t_pipelining(void *arg)
{
    srv s = srv_start(h_echo, NULL, NULL);
    gr_server_stats st;

    (void)arg;
    check_pipelining(s.port);
    cr_assert_eq(gr_http_server_stats_get(s.s, &st), 0);
    cr_assert_eq(st.accepted, 1);
    srv_stop(&s);
    return NULL;
}

Test(http, pipelining_in_order_on_one_connection, .timeout = 20)
{
    run_main(t_pipelining, NULL);
}

/* A chunked upload: chunks of several sizes, extensions, trailers; sent in
 * one piece, then a byte at a time. */
static void *t_chunked_upload(void *arg)
{
    srv s = srv_start(h_echo, NULL, NULL);
    client *c = cl_open(s.port);
    size_t big = 70000, len = 0;
    char *req = malloc(big + 4096), *want = malloc(big + 64);
    resp r;

    (void)arg;
    len = (size_t)sprintf(req,
                          "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "1\r\na\r\n"
                          "f;ext\r\nbcdefghijklmnop\r\n"
                          "A;name=\"quoted; value\";other\r\n0123456789\r\n"
                          "%zx;n=v\r\n",
                          big);
    for (size_t i = 0; i < big; i++)
        req[len + i] = (char)('A' + i % 23);
    memcpy(want, "abcdefghijklmnop0123456789", 26);
    memcpy(want + 26, req + len, big);
    len += big;
    len += (size_t)sprintf(req + len, "\r\n0\r\nTrailer-One: 1\r\nTrailer-Two: two\r\n\r\n");
    cl_sendn(c, req, len);
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 26 + big);
    cr_assert_eq(memcmp(r.body, want, r.len), 0);
    resp_free(&r);

    /* A byte at a time, across every boundary of the framing. */
    {
        const char *slow = "POST /s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "3;x=\"y\"\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";

        for (const char *p = slow; *p; p++) {
            cl_sendn(c, p, 1);
            gr_sleep(gr_now_update() + 1); /* one segment each */
        }
        read_response(c, &r, 0);
        cr_assert_str_eq(r.body, "abcde");
        resp_free(&r);
    }
    free(req);
    free(want);
    cl_close(c);
    srv_stop(&s);
    return NULL;
}

Test(http, chunked_upload_echoed, .timeout = 20)
{
    run_main(t_chunked_upload, NULL);
}

/* ------------------------------------------------------ 100-continue */

static int h_reject(gr_http_request *req, void *arg)
{
    (void)arg;
    atomic_fetch_add(&calls, 1);
    return gr_http_respond(req, 401, NULL, 0, "no", 2, -1);
}

static void *t_continue(void *arg)
{
    srv s = srv_start(h_echo, NULL, NULL), s2;
    client *c = cl_open(s.port);
    char line[256];
    resp r;

    (void)arg;
    cl_send(c, "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\nExpect: 100-continue\r\n\r\n");
    /* Nothing but the 100 comes before the body is sent. */
    line_in(c, line, sizeof line);
    cr_assert_str_eq(line, "HTTP/1.1 100 Continue\r\n");
    line_in(c, line, sizeof line);
    cr_assert_str_eq(line, "\r\n");
    cl_send(c, "payload");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "payload");
    cr_assert_null(hdr(&r, "Connection"));
    resp_free(&r);
    /* Chunked, too. */
    cl_send(
        c,
        "PUT /y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-Continue\r\n\r\n");
    line_in(c, line, sizeof line);
    cr_assert_str_eq(line, "HTTP/1.1 100 Continue\r\n");
    line_in(c, line, sizeof line);
    cl_send(c, "2\r\nok\r\n0\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, "ok");
    resp_free(&r);
    cl_close(c);
    srv_stop(&s);

    /* A handler that answers without reading: no 100, the final answer,
     * and the connection closes (the client may or may not send the body
     * now, so it cannot be reused). */
    s2 = srv_start(h_reject, NULL, NULL);
    c = cl_open(s2.port);
    cl_send(c,
            "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 401);
    cr_assert_str_eq(hdr(&r, "Connection"), "close");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    srv_stop(&s2);
    return NULL;
}

Test(http, expect_100_continue, .timeout = 20)
{
    run_main(t_continue, NULL);
}

/* ------------------------------------------------------------ limits */

static void *t_limits(void *arg)
{
    srv s = srv_start(h_echo, NULL, &small_limits);

    (void)arg;
    check_limits(s.port);
    srv_stop(&s);
    return NULL;
}

Test(http, limits_431_413, .timeout = 20)
{
    run_main(t_limits, NULL);
}

static void *t_timeouts(void *arg)
{
    gr_http_opts o = {.header_timeout_ms = 300, .idle_timeout_ms = 300, .body_timeout_ms = 200};
    srv s = srv_start(h_echo, NULL, &o);
    client *c;
    int64_t t, took;
    resp r;
    char x;

    (void)arg;
    took = check_slowloris(s.port);
    cr_assert(took >= 250 && took < 2000, "408 after %lld ms", (long long)took);

    /* A kept-alive connection left idle is closed silently. */
    c = cl_open(s.port);
    cl_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &r, 0);
    resp_free(&r);
    t = gr_now_update();
    cr_assert_eq(gr_reader_read(&c->r, &x, 1, gr_now() + WAIT_MS), 0, "not closed silently");
    took = gr_now_update() - t;
    cr_assert(took >= 250 && took < 2000, "closed after %lld ms idle", (long long)took);
    cl_close(c);

    /* A connection that never sends anything: idle too. */
    c = cl_open(s.port);
    cr_assert_eq(gr_reader_read(&c->r, &x, 1, gr_now() + WAIT_MS), 0);
    cl_close(c);

    /* A body that stops coming: the handler's read fails with ETIMEDOUT;
     * it returns -1, so 500, and the connection closes. */
    c = cl_open(s.port);
    cl_send(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 500);
    cr_assert_eq(last_errno, ETIMEDOUT);
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    srv_stop(&s);
    return NULL;
}

Test(http, header_idle_and_body_timeouts, .timeout = 30)
{
    run_main(t_timeouts, NULL);
}

/* ------------------------------------------- malformed and smuggling */

/* Malformed and smuggling requests: tests/test_http_framing.c. */

/* A malformed request after good ones on a kept-alive connection is
 * answered too (and so is an error after a HEAD: with its body). */
static void *t_bad_after_good(void *arg)
{
    srv s = srv_start(h_echo, NULL, NULL);
    client *c = cl_open(s.port);
    resp r;

    (void)arg;
    cl_send(c,
            "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: a\r\n\r\nGARBAGE\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    read_response(c, &r, 1);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(r.body, "400 Bad Request\n");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    srv_stop(&s);
    return NULL;
}

Test(http, error_after_a_kept_alive_request, .timeout = 20)
{
    run_main(t_bad_after_good, NULL);
}

/* Upgrade and CONNECT are not supported: they are ordinary requests for
 * the handler, and what follows them is the next request. */
static void *t_upgrade(void *arg)
{
    srv s = srv_start(h_echo, NULL, NULL);
    client *c = cl_open(s.port);
    resp r;

    (void)arg;
    cl_send(c,
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            "CONNECT example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n"
            "POST /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "X-Path"), "/ws");
    resp_free(&r);
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "X-Method"), "CONNECT");
    resp_free(&r);
    read_response(c, &r, 0);
    cr_assert_str_eq(hdr(&r, "X-Path"), "/after");
    cr_assert_str_eq(r.body, "ok");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    srv_stop(&s);
    return NULL;
}

Test(http, upgrade_and_connect_are_ordinary_requests, .timeout = 20)
{
    run_main(t_upgrade, NULL);
}

/* ------------------------------------------------- handler failures */

static void *t_failures(void *arg)
{
    srv s = srv_start(h_fail, NULL, NULL), s2;
    client *c;
    resp r;

    (void)arg;
    /* -1 before answering: 500, and the server keeps serving. */
    for (int i = 0; i < 3; i++) {
        c = cl_open(s.port);
        cl_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        read_response(c, &r, 0);
        cr_assert_eq(r.status, 500);
        cr_assert_str_eq(r.body, "500 Internal Server Error\n");
        resp_free(&r);
        cl_close(c);
    }
    srv_stop(&s);
    /* 0 without answering: 500 as well; the connection stays usable. */
    s2 = srv_start(h_silent, NULL, NULL);
    c = cl_open(s2.port);
    cl_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    for (int i = 0; i < 2; i++) {
        read_response(c, &r, 0);
        cr_assert_eq(r.status, 500);
        resp_free(&r);
    }
    cl_close(c);
    srv_stop(&s2);
    return NULL;
}

Test(http, handler_failure_gives_500, .timeout = 20)
{
    run_main(t_failures, NULL);
}

/* ---------------------------------------------------------- streaming */

static int h_stream(gr_http_request *req, void *arg)
{
    static const gr_http_header h[] = {{"Content-Type", "text/plain"}};

    (void)arg;
    if (!strcmp(req->path, "/chunked")) {
        if (gr_http_begin(req, 200, h, 1, -1, -1) != 0)
            return -1;
        gr_http_send(req, "one ", 4, -1);
        gr_http_send(req, "", 0, -1); /* nothing: not the last chunk */
        gr_http_send(req, "two ", 4, -1);
        gr_http_send(req, "three", 5, -1);
        return gr_http_end(req, -1);
    }
    if (!strcmp(req->path, "/length")) {
        gr_http_begin(req, 201, h, 1, 11, -1);
        gr_http_send(req, "hello ", 6, -1);
        /* Over the announced length: refused, nothing sent. */
        inject_errs[0] = gr_http_send(req, "world!", 6, -1) == -1 ? errno : 0;
        gr_http_send(req, "world", 5, -1);
        return 0; /* the server ends it */
    }
    if (!strcmp(req->path, "/short")) {
        gr_http_begin(req, 200, NULL, 0, 10, -1);
        gr_http_send(req, "12345", 5, -1);
        inject_errs[1] = gr_http_end(req, -1) == -1 ? errno : 0;
        return 0;
    }
    if (!strcmp(req->path, "/abort")) {
        gr_http_begin(req, 200, NULL, 0, -1, -1);
        gr_http_send(req, "partial", 7, -1);
        return -1; /* half a response: the connection closes */
    }
    return gr_http_respond(req, 404, NULL, 0, NULL, 0, -1);
}

static void *t_streaming(void *arg)
{
    srv s = srv_start(h_stream, NULL, NULL);
    client *c = cl_open(s.port);
    char x;
    resp r;

    (void)arg;
    cl_send(c, "GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert(r.chunked);
    cr_assert_null(hdr(&r, "Content-Length"));
    cr_assert_str_eq(r.body, "one two three");
    resp_free(&r);
    cl_send(c, "GET /length HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 201);
    cr_assert_str_eq(hdr(&r, "Content-Length"), "11");
    cr_assert_str_eq(r.body, "hello world");
    cr_assert_eq(inject_errs[0], EINVAL);
    resp_free(&r);
    /* HEAD of a streamed response: the head alone. */
    cl_send(c, "HEAD /chunked HTTP/1.1\r\nHost: a\r\n\r\nGET /none HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &r, 1);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 404);
    cr_assert_str_eq(hdr(&r, "Content-Length"), "0");
    resp_free(&r);
    /* Fewer bytes than announced: gr_http_end fails, the connection
     * closes after what was sent. */
    cl_send(c, "GET /short HTTP/1.1\r\nHost: a\r\n\r\n");
    {
        char head[512];
        size_t used = 0, n;

        do {
            n = line_in(c, head + used, sizeof head - used);
            used += n;
        } while (n != 2);
        cr_assert(strstr(head, "Content-Length: 10\r\n"));
        bytes_in(c, head, 5);
        cr_assert_eq(memcmp(head, "12345", 5), 0);
    }
    expect_closed(c);
    cr_assert_eq(inject_errs[1], EINVAL);
    cl_close(c);

    /* HTTP/1.0: no chunked encoding; the body ends with the connection. */
    c = cl_open(s.port);
    cl_send(c, "GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert(!r.chunked);
    cr_assert_null(hdr(&r, "Content-Length"));
    cr_assert_str_eq(hdr(&r, "Connection"), "close");
    cr_assert_str_eq(r.body, "one two three");
    resp_free(&r);
    cl_close(c);

    /* A handler failing mid-stream: the client sees the connection end
     * before the last chunk. */
    c = cl_open(s.port);
    cl_send(c, "GET /abort HTTP/1.1\r\nHost: a\r\n\r\n");
    {
        char head[512];
        size_t used = 0, n;

        do {
            n = line_in(c, head + used, sizeof head - used);
            used += n;
        } while (n != 2);
        line_in(c, head, sizeof head);
        cr_assert_str_eq(head, "7\r\n");
        bytes_in(c, head, 9);
    }
    cr_assert_eq(gr_reader_read(&c->r, &x, 1, gr_now() + WAIT_MS), 0);
    cl_close(c);
    srv_stop(&s);
    return NULL;
}

Test(http, streaming_chunked_length_and_http10, .timeout = 20)
{
    run_main(t_streaming, NULL);
}

/* --------------------------------------------------- header injection */

static int h_inject(gr_http_request *req, void *arg)
{
    static const gr_http_header crlf[] = {{"X-A", "ok\r\nSet-Cookie: evil=1"}};
    static const gr_http_header lf[] = {{"X-A", "ok\nX-B: evil"}};
    static const gr_http_header cr[] = {{"X-A", "ok\rX-B: evil"}};
    static const gr_http_header name_colon[] = {{"X-A: b\r\nX-C", "v"}};
    static const gr_http_header name_space[] = {{"X A", "v"}};
    static const gr_http_header name_empty[] = {{"", "v"}};
    static const gr_http_header good[] = {{"X-Good", "a\tb \"quoted\" \xc3\xa9"}};
    const gr_http_header *bad[] = {crlf, lf, cr, name_colon, name_space, name_empty};

    (void)arg;
    for (int i = 0; i < 6; i++)
        inject_errs[i] = gr_http_respond(req, 200, bad[i], 1, "x", 1, -1) == -1 ? errno : 0;
    inject_errs[6] = gr_http_begin(req, 99, NULL, 0, -1, -1) == -1 ? errno : 0;
    inject_errs[7] = gr_http_respond(req, 1000, NULL, 0, NULL, 0, -1) == -1 ? errno : 0;
    /* Interim statuses are not responses. */
    inject_errs[8] = gr_http_respond(req, 100, NULL, 0, NULL, 0, -1) == -1 ? errno : 0;
    inject_errs[9] = gr_http_begin(req, 101, NULL, 0, 0, -1) == -1 ? errno : 0;
    if (gr_http_respond(req, 200, good, 1, "fine", 4, -1) != 0)
        return -1;
    /* Answered already. */
    return gr_http_respond(req, 200, NULL, 0, NULL, 0, -1) == -1 && errno == EINVAL ? 0 : -1;
}

/* Headers that fill the response head: they fit up to the limit and the
 * request's strings survive the head being built; past it, EMSGSIZE. */
static int h_big_head(gr_http_request *req, void *arg)
{
    static char value[4200];
    gr_http_header h[2] = {{"X-Fill", value}, {"X-Path", NULL}};
    size_t fill = (size_t)atoi(req->query);
    char path_before[64];

    (void)arg;
    snprintf(path_before, sizeof path_before, "%s", req->path);
    memset(value, 'v', fill);
    value[fill] = '\0';
    h[1].value = req->path;
    if (!strcmp(req->path, "/begin")) {
        /* The longest head the server writes itself: the longest reason,
         * a 19-digit length, and Connection: keep-alive for HTTP/1.0. */
        if (gr_http_begin(req, 431, h, 2, INT64_MAX, -1) != 0) {
            inject_errs[0] = errno;
            return gr_http_respond(req, 200, NULL, 0, "too big", 7, -1);
        }
        inject_errs[1] = strcmp(path_before, req->path) != 0;
        return -1; /* not sending all that: close */
    }
    if (gr_http_respond(req, 431, h, 2, "body", 4, -1) != 0) {
        inject_errs[0] = errno;
        return gr_http_respond(req, 200, NULL, 0, "too big", 7, -1);
    }
    /* The request is valid until the handler returns. */
    return strcmp(path_before, req->path) ? -1 : 0;
}

static void *t_inject(void *arg)
{
    srv s = srv_start(h_inject, NULL, NULL), s2;
    client *c = cl_open(s.port);
    char req[128];
    resp r;

    (void)arg;
    cl_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "fine");
    cr_assert_str_eq(hdr(&r, "X-Good"), "a\tb \"quoted\" \xc3\xa9");
    cr_assert_null(hdr(&r, "Set-Cookie"));
    cr_assert_null(hdr(&r, "X-B"));
    for (int i = 0; i < 10; i++)
        cr_assert_eq(inject_errs[i], EINVAL, "case %d: errno %d", i, inject_errs[i]);
    resp_free(&r);
    cl_close(c);
    srv_stop(&s);

    /* The longest head the server can build: every size of user header up
     * to just over it. The answer is a 431 with the path, or EMSGSIZE and
     * "too big", never a head written past its buffer. */
    s2 = srv_start(h_big_head, NULL, NULL);
    c = cl_open(s2.port);
    for (int fill = 3800; fill <= 4096; fill += 4) {
        inject_errs[0] = 0;
        snprintf(req, sizeof req, "GET /the/path?%d HTTP/1.1\r\nHost: a\r\n\r\n", fill);
        cl_send(c, req);
        read_response(c, &r, 0);
        if (r.status == 431) {
            cr_assert_str_eq(hdr(&r, "X-Path"), "/the/path");
            cr_assert_eq(strlen(hdr(&r, "X-Fill")), (size_t)fill);
            cr_assert_str_eq(r.body, "body");
        } else {
            cr_assert_eq(r.status, 200);
            cr_assert_eq(inject_errs[0], EMSGSIZE);
            cr_assert_gt(fill, 3700);
        }
        resp_free(&r);
    }
    cl_close(c);
    for (int fill = 3850; fill <= 4000; fill += 2) {
        inject_errs[0] = inject_errs[1] = 0;
        c = cl_open(s2.port);
        snprintf(req, sizeof req, "GET /begin?%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", fill);
        cl_send(c, req);
        read_response(c, &r, 1);
        if (r.status == 431) {
            cr_assert_str_eq(hdr(&r, "X-Path"), "/begin");
            cr_assert_str_eq(hdr(&r, "Content-Length"), "9223372036854775807");
            cr_assert_str_eq(hdr(&r, "Connection"), "keep-alive");
            cr_assert_eq(strlen(hdr(&r, "X-Fill")), (size_t)fill);
            cr_assert_eq(inject_errs[1], 0, "the request's path changed under the head");
        } else {
            cr_assert_eq(r.status, 200);
            cr_assert_eq(inject_errs[0], EMSGSIZE);
        }
        resp_free(&r);
        cl_close(c);
    }
    srv_stop(&s2);
    return NULL;
}

Test(http, header_injection_and_response_head_limit, .timeout = 20)
{
    run_main(t_inject, NULL);
}

/* --------------------------------------------------------- access log */

static void *t_access_log(void *arg)
{
    char *text = NULL;
    size_t size = 0;
    FILE *log = open_memstream(&text, &size);
    gr_http_opts o = {.access_log = log};
    srv s = srv_start(h_echo, NULL, &o);
    client *c = cl_open(s.port);
    const char *want[] = {
        "\"GET /log\\?x=1 HTTP/1\\.1\" 200 -$",
        "\"POST /p HTTP/1\\.1\" 200 5$",
        "\"HEAD /h HTTP/1\\.0\" 200 -$",
        "\"-\" 400 16$",
    };
    const char *prefix = "^127\\.0\\.0\\.1 - - \\[[0-3][0-9]/"
                         "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/[0-9]{4}:"
                         "[0-2][0-9]:[0-5][0-9]:[0-6][0-9] [+-][0-9]{4}\\] ";
    char *line, *save = NULL;
    int n = 0;
    resp r;

    (void)arg;
    cr_assert_not_null(log);
    cl_send(c, "GET /log?x=1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /p HTTP/1.1\r\nHost: "
               "a\r\nContent-Length: 5\r\n\r\nhello"
               "HEAD /h HTTP/1.0\r\nConnection: keep-alive\r\n\r\nBAD\r\n\r\n");
    for (int i = 0; i < 4; i++) {
        read_response(c, &r, i == 2);
        resp_free(&r);
    }
    expect_closed(c);
    cl_close(c);
    srv_stop(&s);
    fclose(log);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        char pattern[512];
        regex_t re;

        cr_assert_lt(n, 4, "extra log line: %s", line);
        snprintf(pattern, sizeof pattern, "%s%s", prefix, want[n]);
        cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
        cr_assert_eq(regexec(&re, line, 0, NULL, 0), 0, "log line %d: %s", n, line);
        regfree(&re);
    }
    cr_assert_eq(n, 4, "%d log lines", n);
    free(text);
    return NULL;
}

Test(http, access_log_in_common_log_format, .timeout = 20)
{
    run_main(t_access_log, NULL);
}

/* Any stream socket will do: a Unix one, whose unnamed peer the log shows
 * as "-". */
static void *t_unix(void *arg)
{
    char *text = NULL, path[64];
    size_t size = 0;
    FILE *log = open_memstream(&text, &size);
    gr_http_opts o = {.access_log = log};
    gr_http_server *s;
    client *c = calloc(1, sizeof *c);
    gr_addr a;
    resp r;

    (void)arg;
    snprintf(path, sizeof path, "@grove-test-http-%d", (int)getpid());
    cr_assert_eq(gr_addr_unix(&a, path), 0);
    s = gr_http_server_new(gr_listen(&a, 0, 0), h_echo, NULL, &o);
    cr_assert_not_null(s);
    cr_assert_eq(gr_http_server_start(s), 0);
    c->fd = gr_unix_connect(path, gr_now() + WAIT_MS);
    cr_assert_geq(c->fd, 0, "%s", strerror(errno));
    gr_reader_init(&c->r, c->fd, c->buf, sizeof c->buf);
    cl_send(c, "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi");
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, "hi");
    resp_free(&r);
    cl_close(c);
    cr_assert_eq(gr_http_server_stop(s, gr_now() + 2000), 0);
    cr_assert_eq(gr_http_server_free(s), 0);
    fclose(log);
    cr_assert(!strncmp(text, "- - - [", 7), "%s", text);
    cr_assert(strstr(text, "] \"POST /u HTTP/1.1\" 200 2\n"), "%s", text);
    free(text);
    return NULL;
}

Test(http, unix_socket, .timeout = 20)
{
    run_main(t_unix, NULL);
}

/* ------------------------------------------------- draining the body */

static int h_ignore_body(gr_http_request *req, void *arg)
{
    (void)arg;
    atomic_fetch_add(&calls, 1);
    return gr_http_respond(req, 200, NULL, 0, req->path, strlen(req->path), -1);
}

/* A body the handler did not read is read and dropped to keep the
 * connection, while it is small; a large one closes it. */
static void *t_unread_body(void *arg)
{
    srv s = srv_start(h_ignore_body, NULL, NULL);
    client *c = cl_open(s.port);
    size_t big = 200000;
    char *body = calloc(1, big), head[128];
    resp r;

    (void)arg;
    cl_send(c, "POST /small HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"
               "POST /chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
               "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
               "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, "/small");
    resp_free(&r);
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, "/chunks");
    resp_free(&r);
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, "/next");
    resp_free(&r);
    snprintf(head, sizeof head, "POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n\r\n",
             big);
    cl_send(c, head);
    cl_sendn(c, body, 1000);
    read_response(c, &r, 0);
    cr_assert_str_eq(r.body, "/big");
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    free(body);
    srv_stop(&s);
    return NULL;
}

Test(http, unread_body_drained_or_connection_closed, .timeout = 20)
{
    run_main(t_unread_body, NULL);
}

/* ------------------------------------------------------ graceful stop */

static int slow_running;

static int h_slow(gr_http_request *req, void *arg)
{
    (void)arg;
    if (!strcmp(req->path, "/slow")) {
        slow_running = 1;
        gr_sleep(gr_now() + 300);
    }
    return gr_http_respond(req, 200, NULL, 0, req->path, strlen(req->path), -1);
}

typedef struct stopper {
    srv *s;
    int rc;
    int64_t took;
} stopper;

static void *do_stop(void *arg)
{
    stopper *st = arg;
    int64_t t = gr_now_update();

    st->rc = gr_http_server_stop(st->s->s, gr_now() + 5000);
    st->took = gr_now_update() - t;
    return NULL;
}

static void *t_graceful(void *arg)
{
    srv s = srv_start(h_slow, NULL, NULL);
    client *idle = cl_open(s.port), *busy = cl_open(s.port), *fresh = cl_open(s.port);
    stopper st = {&s, -1, 0};
    int64_t t;
    gr_t g;
    resp r;

    (void)arg;
    /* One connection kept alive and idle, one with a slow request in
     * flight, one accepted that never sent anything. */
    cl_send(idle, "GET /quick HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(idle, &r, 0);
    resp_free(&r);
    cl_send(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
    while (!slow_running)
        gr_sleep(gr_now() + 1);
    t = gr_now_update();
    g = gr_spawn(do_stop, &st);
    /* Idle ones are closed at once, long before the slow request ends. */
    expect_closed(idle);
    expect_closed(fresh);
    cr_assert_lt(gr_now_update() - t, 200, "idle connections closed after %lld ms",
                 (long long)(gr_now_update() - t));
    /* New connections are refused. */
    assert_fails(gr_tcp_connect("127.0.0.1", s.port, gr_now() + 1000), ECONNREFUSED);
    /* The request in flight completes, told that the connection closes. */
    read_response(busy, &r, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "/slow");
    cr_assert_str_eq(hdr(&r, "Connection"), "close");
    resp_free(&r);
    expect_closed(busy);
    /* A client closes on the server's FIN; until it does, the server
     * lingers (it closed a connection the client asked to keep). */
    cl_close(busy);
    busy = NULL;
    cr_assert_eq(gr_join(g, NULL, gr_now() + WAIT_MS), 0);
    cr_assert_eq(st.rc, 0, "stop had to kill handlers");
    cr_assert(st.took >= 200 && st.took < 2000, "stop took %lld ms", (long long)st.took);
    cr_assert_eq(gr_http_server_free(s.s), 0);
    cl_close(idle);
    cl_close(fresh);
    return NULL;
}

Test(http, graceful_stop, .timeout = 20)
{
    run_main(t_graceful, NULL);
}

/* ================================================================ curl */

static void *t_curl(void *arg)
{
    srv s = srv_start(h_echo, NULL, NULL);
    char url[64], file[] = "/tmp/grove-http-curl-XXXXXX";
    size_t len = 2 << 20; /* large enough for curl to ask for 100-continue */
    int fd = mkstemp(file);
    char *data = malloc(len);
    cmd *c = calloc(1, sizeof *c);
    const char *out;

    (void)arg;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s.port);
    for (size_t i = 0; i < len; i++)
        data[i] = (char)(i * 31 % 251);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);

    /* GET */
    out = sh(c, "curl -sS -i --max-time 10 %s/hello", url);
    cr_assert(strstr(out, "HTTP/1.1 200 OK\r\n"), "%s", out);
    cr_assert(strstr(out, "X-Path: /hello\r\n"), "%s", out);
    cr_assert(strstr(out, "Content-Length: 0\r\n"), "%s", out);
    /* HEAD: headers, Content-Length, no body (curl would complain of
     * extra bytes on reuse), twice on one connection. */
    out = sh(c, "curl -sS -v -I --max-time 10 %s/h %s/h", url, url);
    cr_assert(strstr(out, "< HTTP/1.1 200 OK"), "%s", out);
    cr_assert(strstr(out, "< Content-Length: 0"), "%s", out);
    cr_assert(strstr(out, "Re-using existing connection"), "%s", out);
    /* POST: the body echoed, through 100-continue. */
    out = sh(c, "curl -sS -v --max-time 10 --data-binary @%s -o %s.out %s/post", file, file, url);
    cr_assert(strstr(out, "Expect: 100-continue"), "%s", out);
    cr_assert(strstr(out, "< HTTP/1.1 100 Continue"), "%s", out);
    cr_assert(strstr(out, "< HTTP/1.1 200 OK"), "%s", out);
    out = sh(c, "cmp %s %s.out && echo same", file, file);
    cr_assert(strstr(out, "same"), "%s", out);
    /* Chunked upload. */
    out = sh(c,
             "curl -sS --max-time 10 -H 'Transfer-Encoding: chunked' --data-binary @%s -o %s.out "
             "%s/post",
             file, file, url);
    out = sh(c, "cmp %s %s.out && echo same", file, file);
    cr_assert(strstr(out, "same"), "%s", out);
    /* Keep-alive: two URLs, one connection. */
    out = sh(c, "curl -sS -v --max-time 10 %s/1 %s/2", url, url);
    cr_assert(strstr(out, "Re-using existing connection"), "%s", out);
    /* HTTP/1.0: closed after each response unless keep-alive is asked. */
    out = sh(c, "curl -sS -v --http1.0 --max-time 10 %s/1 %s/2", url, url);
    cr_assert(strstr(out, "> GET /1 HTTP/1.0"), "%s", out);
    cr_assert(strstr(out, "< Connection: close"), "%s", out);
    cr_assert_null(strstr(out, "Re-using existing connection"), "%s", out);
    out = sh(c, "curl -sS -v --http1.0 -H 'Connection: keep-alive' --max-time 10 %s/1 %s/2", url,
             url);
    cr_assert(strstr(out, "< Connection: keep-alive"), "%s", out);
    cr_assert(strstr(out, "Re-using existing connection"), "%s", out);
    /* Over max_body: 413 before the body is sent. */
    srv_stop(&s);
    {
        gr_http_opts o = {.max_body = 1000};
        srv s2 = srv_start(h_echo, NULL, &o);

        snprintf(url, sizeof url, "http://127.0.0.1:%d", s2.port);
        out = sh(c, "curl -sS -v --max-time 10 --data-binary @%s %s/big", file, url);
        cr_assert(strstr(out, "< HTTP/1.1 413 Content Too Large"), "%s", out);
        cr_assert_null(strstr(out, "100 Continue"), "%s", out);
        srv_stop(&s2);
    }
    sh(c, "rm -f %s %s.out", file, file);
    free(data);
    free(c);
    return NULL;
}

Test(http, curl, .timeout = 60)
{
    need_curl();
    run_main(t_curl, NULL);
}
