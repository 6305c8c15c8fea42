/* HTTPS: grove's HTTP server with a TLS context in its options, against
 * curl, a raw TLS client (two pipelined requests in one record) and
 * grove's own HTTP client over TLS; the client against a server it must
 * not trust. Certificates as in test_tls.c (tls_common.h). */
#include "http_common.h"
#include "tls_common.h"

static srv https_start(gr_http_handler h, gr_tls_ctx *ctx)
{
    gr_http_opts o = {.tls = ctx};
    srv s = srv_start(h, NULL, &o);

    gr_tls_ctx_free(ctx); /* the server holds its own reference */
    return s;
}

/* ================================================================ curl */

static void *t_curl(void *arg)
{
    static const char *alpn[] = {"http/1.1"};
    gr_tls_ctx *ctx = server_ctx("a.test");
    cmd *c = calloc(1, sizeof *c);
    const char *out;
    srv s;

    (void)arg;
    cr_assert_eq(gr_tls_ctx_set_alpn(ctx, alpn, 1), 0);
    s = https_start(h_echo, ctx);
    /* Two requests on one kept-alive connection, verified against the
     * certificate, ALPN http/1.1. */
    out = sh(c,
             "curl -sS -v --max-time 10 --cacert %s --resolve a.test:%d:127.0.0.1 "
             "https://a.test:%d/one https://a.test:%d/two",
             cpath("a.test.pem"), s.port, s.port, s.port);
    cr_assert_eq(c->status, 0, "curl: %s", out);
    cr_assert(strstr(out, "ALPN: server accepted http/1.1"), "%s", out);
    cr_assert(strstr(out, "SSL certificate verify ok"), "%s", out);
    cr_assert(strstr(out, "X-Path: /one"), "%s", out);
    cr_assert(strstr(out, "X-Path: /two"), "%s", out);
    cr_assert(strstr(out, "Re-using existing connection"), "%s", out);
    /* A body both ways. */
    out = sh(c,
             "curl -sS --max-time 10 --cacert %s --resolve a.test:%d:127.0.0.1 "
             "--data-binary hello-tls https://a.test:%d/post",
             cpath("a.test.pem"), s.port, s.port);
    cr_assert_eq(c->status, 0, "curl: %s", out);
    cr_assert_str_eq(out, "hello-tls");
    /* Plain HTTP to the HTTPS port: dropped, and the server goes on. */
    out = sh(c, "curl -sS --max-time 10 http://127.0.0.1:%d/", s.port);
    cr_assert_neq(c->status, 0, "%s", out);
    out = sh(c, "curl -sS --max-time 10 --cacert %s https://127.0.0.1:%d/ip", cpath("a.test.pem"),
             s.port);
    cr_assert_eq(c->status, 0, "curl: %s", out);
    srv_stop(&s);
    free(c);
    return NULL;
}

Test(https, curl, .init = certs_init, .fini = certs_fini, .timeout = 60)
{
    need_curl();
    run_main(t_curl, NULL);
}

/* ====================================================== pipelining */

/* Both requests in one TLS record: the server finds the second one among
 * the bytes OpenSSL decrypted with the first, and answers both. */
static void *t_pipelined(void *arg)
{
    static const char reqs[] = "GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\n"
                               "GET /2 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
    gr_tls_ctx *cl = client_ctx("a.test");
    srv s = https_start(h_echo, server_ctx("a.test"));
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    int fd = loopback_connect(s.port);
    gr_tls *t = gr_tls_new(cl, fd, "a.test");

    (void)arg;
    cr_assert_not_null(t);
    cr_assert_eq(gr_tls_handshake(t, gr_now() + WAIT_MS), 0, "%s", gr_tls_error(t));
    cr_assert_eq(gr_tls_write(t, reqs, sizeof reqs - 1, NULL, gr_now() + WAIT_MS), 0);
    /* Read to the end: the server closes after the second, with
     * close_notify (a clean 0, not ECONNRESET). */
    while ((r = gr_tls_read(t, buf + n, sizeof buf - 1 - n, gr_now() + WAIT_MS)) > 0)
        n += (size_t)r;
    cr_assert_eq(r, 0, "%s", gr_tls_error(t));
    buf[n] = '\0';
    cr_assert(strstr(buf, "X-Path: /1"), "%s", buf);
    cr_assert(strstr(buf, "X-Path: /2"), "%s", buf);
    cr_assert(strstr(buf, "X-Path: /1") < strstr(buf, "X-Path: /2"));
    gr_tls_free(t);
    gr_close(fd);
    gr_tls_ctx_free(cl);
    srv_stop(&s);
    return NULL;
}

Test(https, two_pipelined_requests_in_one_record, .init = certs_init, .fini = certs_fini,
     .timeout = 30)
{
    run_main(t_pipelined, NULL);
}

/* ========================================================== client */

static void *t_client(void *arg)
{
    srv s = https_start(h_echo, server_ctx("a.test"));
    gr_tls_ctx *ca = client_ctx("a.test");
    gr_http_client *c = gr_http_client_new("127.0.0.1", s.port);
    gr_http_response res;
    gr_server_stats st;

    (void)arg;
    cr_assert_eq(gr_http_client_set_tls(c, ca), 0);
    gr_tls_ctx_free(ca); /* the client holds its own reference */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(
            gr_http_client_request(c, "POST", "/p", NULL, 0, "abc", 3, &res, gr_now() + WAIT_MS), 0,
            "request %d: %s", i, strerror(errno));
        cr_assert_eq(res.status, 200);
        cr_assert_str_eq(res.body, "abc");
    }
    /* One connection for the three: the tickets TLS 1.3 servers send after
     * the handshake did not make the client think it closed. */
    cr_assert_eq(gr_http_server_stats_get(s.s, &st), 0);
    cr_assert_eq(st.accepted, 1);
    /* A new connection (the server closes), then another. */
    static const gr_http_header close_h[] = {{"Connection", "close"}};
    cr_assert_eq(
        gr_http_client_request(c, "GET", "/c", close_h, 1, NULL, 0, &res, gr_now() + WAIT_MS), 0);
    cr_assert_eq(gr_http_client_request(c, "GET", "/d", NULL, 0, NULL, 0, &res, gr_now() + WAIT_MS),
                 0, "%s", strerror(errno));
    cr_assert_str_eq(gr_http_response_header(&res, "X-Path"), "/d");
    cr_assert_eq(gr_http_server_stats_get(s.s, &st), 0);
    cr_assert_eq(st.accepted, 2);
    assert_fails(gr_http_client_set_tls(c, NULL), EINVAL); /* too late */
    gr_http_client_free(c);

    /* The defaults: the system's CAs do not know this certificate. */
    c = gr_http_client_new("127.0.0.1", s.port);
    cr_assert_eq(gr_http_client_set_tls(c, NULL), 0);
    assert_fails(gr_http_client_request(c, "GET", "/", NULL, 0, NULL, 0, &res, gr_now() + WAIT_MS),
                 EKEYREJECTED);
    gr_http_client_free(c);
    srv_stop(&s);
    return NULL;
}

Test(https, grove_client, .init = certs_init, .fini = certs_fini, .timeout = 30)
{
    run_main(t_client, NULL);
}

Test(https, options_refused, .init = certs_init, .fini = certs_fini, .timeout = 30)
{
    gr_tls_ctx *cl = gr_tls_ctx_new(GR_TLS_CLIENT), *bare = gr_tls_ctx_new(GR_TLS_SERVER);
    gr_tls_ctx *sv = server_ctx("a.test");
    gr_http_opts o = {.tls = cl};
    gr_http_client *c = gr_http_client_new("127.0.0.1", 443);

    /* A client context, or a server one without a certificate. */
    cr_assert_null(gr_http_server_new(loopback_listen(), h_echo, NULL, &o));
    cr_assert_eq(errno, EINVAL);
    o.tls = bare;
    cr_assert_null(gr_http_server_new(loopback_listen(), h_echo, NULL, &o));
    cr_assert_eq(errno, EINVAL);
    /* Too small a stack for OpenSSL. */
    o = (gr_http_opts){.tls = sv, .stack_size = 16 * 1024};
    cr_assert_null(gr_http_server_new(loopback_listen(), h_echo, NULL, &o));
    cr_assert_eq(errno, EINVAL);
    o.stack_size = 0;
    /* The threaded server has no hub to wait on. */
    o.tls = sv;
    cr_assert_null(gr_http_threaded_new(loopback_listen(), h_echo, NULL, &o, 1));
    cr_assert_eq(errno, EINVAL);
    assert_fails(gr_http_client_set_tls(c, sv), EINVAL);
    gr_http_client_free(c);
    gr_tls_ctx_free(cl);
    gr_tls_ctx_free(bare);
    gr_tls_ctx_free(sv);
}
