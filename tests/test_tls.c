/* TLS streams (src/net/tls*.c, <grove/tls.h>) over real loopback sockets:
 * grove against grove in TLS 1.2 and 1.3, against openssl s_client and
 * curl; SNI, ALPN, resumption with shared and rotated ticket keys; bad
 * certificates, wrong hosts, truncations; a dribbled ClientHello cut at
 * its deadline while others are served; 64 MB to a slow reader; many
 * handshakes without a leak. Certificates are made per test process
 * (tls_common.h). */
#include "tls_common.h"

#include "arch/fail.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

/* ============================================================= server */

enum { ECHO, LINE, HTTP };

typedef struct tsrv {
    gr_server *srv;
    gr_tls_ctx *ctx;
    int port;
    int mode;
    int64_t hs_ms; /* handshake deadline, from accept */
    int handshakes, hs_failures, hs_errno, resumed;
    char sni[64], alpn[32], version[16], err[256];
} tsrv;

static void record(tsrv *s, gr_tls *t)
{
    const char *v;

    s->handshakes++;
    s->resumed += gr_tls_resumed(t);
    snprintf(s->sni, sizeof s->sni, "%s", (v = gr_tls_server_name(t)) ? v : "");
    snprintf(s->alpn, sizeof s->alpn, "%s", (v = gr_tls_alpn(t)) ? v : "");
    snprintf(s->version, sizeof s->version, "%s", gr_tls_version(t));
}

/* Read until the buffer holds end (or the stream ends). */
static size_t read_until(gr_tls *t, char *buf, size_t cap, const char *end)
{
    size_t n = 0;

    buf[0] = '\0';
    while (n < cap - 1 && !strstr(buf, end)) {
        ssize_t r = gr_tls_read(t, buf + n, cap - 1 - n, gr_now() + WAIT_MS);

        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
    }
    return n;
}

static void serve_tls(int fd, const gr_addr *peer, void *arg)
{
    static const char resp[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
    tsrv *s = arg;
    gr_tls *t = gr_tls_new(s->ctx, fd, NULL);
    char buf[16384];
    ssize_t n;

    (void)peer;
    cr_assert_not_null(t);
    if (gr_tls_handshake(t, gr_now() + s->hs_ms) != 0) {
        s->hs_failures++;
        s->hs_errno = errno;
        snprintf(s->err, sizeof s->err, "%s", gr_tls_error(t));
        gr_tls_free(t);
        return;
    }
    record(s, t);
    switch (s->mode) {
    case ECHO:
        while ((n = gr_tls_read(t, buf, sizeof buf, gr_now() + WAIT_MS)) > 0)
            if (gr_tls_write(t, buf, (size_t)n, NULL, gr_now() + WAIT_MS) != 0)
                break;
        break;
    case LINE:
        n = (ssize_t)read_until(t, buf, sizeof buf, "\n");
        gr_tls_write(t, buf, (size_t)n, NULL, gr_now() + WAIT_MS);
        break;
    case HTTP:
        read_until(t, buf, sizeof buf, "\r\n\r\n");
        gr_tls_write(t, resp, sizeof resp - 1, NULL, gr_now() + WAIT_MS);
        break;
    }
    gr_tls_shutdown(t, gr_now() + WAIT_MS);
    gr_tls_free(t);
}

static void tsrv_start(tsrv *s, gr_tls_ctx *ctx, int mode)
{
    int l = loopback_listen();

    *s = (tsrv){.ctx = ctx, .mode = mode, .hs_ms = WAIT_MS};
    s->port = gr_local_port(l);
    cr_assert_not_null(s->srv = gr_server_new(l, serve_tls, s, NULL));
    cr_assert_eq(gr_server_start(s->srv), 0);
}

static void tsrv_stop(tsrv *s)
{
    gr_server_stop(s->srv, gr_now() + WAIT_MS);
    gr_server_free(s->srv);
    gr_tls_ctx_free(s->ctx);
}

/* ============================================================= client */

typedef struct conn {
    int fd;
    gr_tls *t;
} conn;

/* Connect and handshake: 0, or -1 with errno (the stream kept for its
 * error text). */
static int dial(conn *c, gr_tls_ctx *ctx, int port, const char *host)
{
    c->fd = loopback_connect(port);
    cr_assert_not_null(c->t = gr_tls_new(ctx, c->fd, host), "gr_tls_new: %s", strerror(errno));
    return gr_tls_handshake(c->t, gr_now() + WAIT_MS);
}

static void hangup(conn *c)
{
    gr_tls_shutdown(c->t, gr_now() + WAIT_MS);
    gr_tls_free(c->t);
    gr_close(c->fd);
}

static void echo_check(conn *c, const char *msg)
{
    char buf[256];
    size_t len = strlen(msg);

    cr_assert_eq(gr_tls_write(c->t, msg, len, NULL, gr_now() + WAIT_MS), 0, "write: %s",
                 gr_tls_error(c->t));
    cr_assert_eq(read_until(c->t, buf, sizeof buf, "\n"), len);
    cr_assert_str_eq(buf, msg);
}

/* ====================================================== grove to grove */

static void echo_version(int version, const char *name)
{
    tsrv s;
    conn c;
    gr_tls_ctx *cl = client_ctx("a.test");

    tsrv_start(&s, server_ctx("a.test"), ECHO);
    cr_assert_eq(gr_tls_ctx_set_versions(cl, version, version), 0);
    cr_assert_eq(dial(&c, cl, s.port, "a.test"), 0, "handshake: %s", gr_tls_error(c.t));
    cr_assert_str_eq(gr_tls_version(c.t), name);
    echo_check(&c, "hello\n");
    echo_check(&c, "again\n");
    hangup(&c);
    WAIT_FOR(s.handshakes == 1);
    cr_assert_str_eq(s.version, name);
    cr_assert_str_eq(s.sni, "a.test");
    gr_tls_ctx_free(cl);
    tsrv_stop(&s);
}

static void *t_echo(void *arg)
{
    (void)arg;
    echo_version(GR_TLS_1_3, "TLSv1.3");
    echo_version(GR_TLS_1_2, "TLSv1.2");
    return NULL;
}

Test(tls, echo_tls12_tls13, .init = certs_init, .fini = certs_fini, .timeout = 30)
{
    run_main(t_echo, NULL);
}

/* Bytes OpenSSL has decrypted are returned without waiting: two lines in
 * one record, read one byte at a time with deadline 0. */
static void *t_pending(void *arg)
{
    tsrv s;
    conn c;
    gr_tls_ctx *cl = client_ctx("a.test");
    char b;

    (void)arg;
    tsrv_start(&s, server_ctx("a.test"), ECHO);
    cr_assert_eq(dial(&c, cl, s.port, "a.test"), 0);
    cr_assert_eq(gr_tls_write(c.t, "ab\n", 3, NULL, gr_now() + WAIT_MS), 0);
    cr_assert_eq(gr_tls_read(c.t, &b, 1, gr_now() + WAIT_MS), 1);
    cr_assert_eq(b, 'a');
    cr_assert_eq(gr_tls_read(c.t, &b, 1, 0), 1, "buffered byte waited for: %s", strerror(errno));
    cr_assert_eq(b, 'b');
    cr_assert_eq(gr_tls_read(c.t, &b, 1, 0), 1);
    assert_fails(gr_tls_read(c.t, &b, 1, 0), ETIMEDOUT);
    hangup(&c);
    gr_tls_ctx_free(cl);
    tsrv_stop(&s);
    return NULL;
}

Test(tls, pending_bytes_without_waiting, .init = certs_init, .fini = certs_fini, .timeout = 30)
{
    run_main(t_pending, NULL);
}

/* ==================================================== openssl s_client */

static void *t_s_client(void *arg)
{
    tsrv s;
    cmd *c = calloc(1, sizeof *c);
    const char *out;
    static const char *alpn[] = {"http/1.1"};
    gr_tls_ctx *sctx = server_ctx("a.test");

    (void)arg;
    cr_assert_eq(gr_tls_ctx_set_alpn(sctx, alpn, 1), 0);
    tsrv_start(&s, sctx, LINE);
    for (int v = 0; v < 2; v++) {
        out = sh(c,
                 "printf 'ping-%d\\n' | timeout 10 openssl s_client -connect 127.0.0.1:%d "
                 "-servername a.test -CAfile %s -verify_return_error -verify_hostname a.test "
                 "-alpn http/1.1 -ign_eof %s",
                 v, s.port, cpath("a.test.pem"), v ? "-tls1_2" : "-tls1_3");
        cr_assert_eq(c->status, 0, "s_client failed: %s", out);
        cr_assert(strstr(out, "Verify return code: 0 (ok)"), "%s", out);
        cr_assert(strstr(out, "ALPN protocol: http/1.1"), "%s", out);
        cr_assert(strstr(out, v ? "Protocol  : TLSv1.2" : "New, TLSv1.3"), "%s", out);
        cr_assert(strstr(out, v ? "ping-1" : "ping-0"), "no echo: %s", out);
    }
    cr_assert_str_eq(s.alpn, "http/1.1");
    tsrv_stop(&s);
    free(c);
    return NULL;
}

Test(tls, s_client_tls12_tls13, .init = certs_init, .fini = certs_fini, .timeout = 60)
{
    run_main(t_s_client, NULL);
}

/* s_client saves the session and offers it again: "Reused". */
static void *t_s_client_reuse(void *arg)
{
    tsrv s;
    cmd *c = calloc(1, sizeof *c);
    const char *out;

    (void)arg;
    tsrv_start(&s, server_ctx("a.test"), LINE);
    for (int v = 0; v < 2; v++) {
        const char *ver = v ? "-tls1_2" : "-tls1_3";

        out = sh(c,
                 "printf 'x\\n' | timeout 10 openssl s_client -connect 127.0.0.1:%d "
                 "-servername a.test -CAfile %s -ign_eof %s -sess_out %s",
                 s.port, cpath("a.test.pem"), ver, cpath("sess"));
        cr_assert_eq(c->status, 0, "%s", out);
        cr_assert(strstr(out, "New, TLSv1."), "%s", out);
        out = sh(c,
                 "printf 'x\\n' | timeout 10 openssl s_client -connect 127.0.0.1:%d "
                 "-servername a.test -CAfile %s -ign_eof %s -sess_in %s",
                 s.port, cpath("a.test.pem"), ver, cpath("sess"));
        cr_assert_eq(c->status, 0, "%s", out);
        cr_assert(strstr(out, "Reused, TLSv1."), "not resumed (%s): %s", ver, out);
    }
    tsrv_stop(&s);
    free(c);
    return NULL;
}

Test(tls, s_client_resumes, .init = certs_init, .fini = certs_fini, .timeout = 60)
{
    run_main(t_s_client_reuse, NULL);
}

static void *t_curl(void *arg)
{
    tsrv s;
    cmd *c = calloc(1, sizeof *c);
    const char *out;

    (void)arg;
    tsrv_start(&s, server_ctx("a.test"), HTTP);
    for (int v = 0; v < 2; v++) {
        out = sh(c,
                 "curl -sS --max-time 10 --cacert %s --resolve a.test:%d:127.0.0.1 %s "
                 "https://a.test:%d/",
                 cpath("a.test.pem"), s.port, v ? "--tlsv1.2 --tls-max 1.2" : "--tlsv1.3", s.port);
        cr_assert_eq(c->status, 0, "curl failed: %s", out);
        cr_assert_str_eq(out, "ok\n");
        cr_assert_str_eq(s.version, v ? "TLSv1.2" : "TLSv1.3");
    }
    /* curl checks the name too. */
    out =
        sh(c, "curl -sS --max-time 10 --cacert %s --resolve b.test:%d:127.0.0.1 https://b.test:%d/",
           cpath("a.test.pem"), s.port, s.port);
    cr_assert_neq(c->status, 0, "%s", out);
    tsrv_stop(&s);
    free(c);
    return NULL;
}

Test(tls, curl_tls12_tls13, .init = certs_init, .fini = certs_fini, .timeout = 60)
{
    need_curl();
    run_main(t_curl, NULL);
}

/* ================================================================ SNI */

static void *t_sni(void *arg)
{
    tsrv s;
    conn c;
    gr_tls_ctx *sctx = server_ctx("a.test");
    gr_tls_ctx *ca = client_ctx("a.test"), *cb = client_ctx("b.test");
    cmd *sc = calloc(1, sizeof *sc);
    const char *out;

    (void)arg;
    cr_assert_eq(gr_tls_ctx_add_cert_file(sctx, cpath("b.test.pem"), cpath("b.test.key")), 0);
    tsrv_start(&s, sctx, ECHO);
    /* Each client trusts only its own name's certificate. */
    cr_assert_eq(dial(&c, cb, s.port, "b.test"), 0, "b.test: %s", gr_tls_error(c.t));
    echo_check(&c, "b\n");
    hangup(&c);
    WAIT_FOR(s.handshakes == 1);
    cr_assert_str_eq(s.sni, "b.test");
    cr_assert_eq(dial(&c, ca, s.port, "a.test"), 0, "a.test: %s", gr_tls_error(c.t));
    hangup(&c);
    /* An unknown name (and none at all) gets the first certificate. */
    cr_assert_eq(dial(&c, ca, s.port, "127.0.0.1"), 0, "no SNI: %s", gr_tls_error(c.t));
    hangup(&c);
    WAIT_FOR(s.handshakes == 3);
    cr_assert_str_eq(s.sni, "");
    out = sh(sc,
             "printf 'x\\n' | timeout 10 openssl s_client -connect 127.0.0.1:%d "
             "-servername b.test",
             s.port);
    cr_assert(strstr(out, "subject=CN = b.test"), "%s", out);
    out = sh(sc,
             "printf 'x\\n' | timeout 10 openssl s_client -connect 127.0.0.1:%d "
             "-servername other.test",
             s.port);
    cr_assert(strstr(out, "subject=CN = a.test"), "%s", out);
    gr_tls_ctx_free(ca);
    gr_tls_ctx_free(cb);
    tsrv_stop(&s);
    free(sc);
    return NULL;
}

Test(tls, sni_picks_certificate, .init = certs_init, .fini = certs_fini, .timeout = 60)
{
    run_main(t_sni, NULL);
}

/* =============================================================== ALPN */

static void *t_alpn(void *arg)
{
    tsrv s;
    conn c;
    static const char *srv_protos[] = {"h2", "http/1.1"};
    static const char *http11[] = {"http/1.1"}, *foo[] = {"foo"};
    gr_tls_ctx *sctx = server_ctx("a.test");
    gr_tls_ctx *cl = client_ctx("a.test"), *bad = client_ctx("a.test"),
               *none = client_ctx("a.test");

    (void)arg;
    cr_assert_eq(gr_tls_ctx_set_alpn(sctx, srv_protos, 2), 0);
    cr_assert_eq(gr_tls_ctx_set_alpn(cl, http11, 1), 0);
    cr_assert_eq(gr_tls_ctx_set_alpn(bad, foo, 1), 0);
    tsrv_start(&s, sctx, ECHO);
    cr_assert_eq(dial(&c, cl, s.port, "a.test"), 0);
    cr_assert_str_eq(gr_tls_alpn(c.t), "http/1.1");
    hangup(&c);
    WAIT_FOR(s.handshakes == 1);
    cr_assert_str_eq(s.alpn, "http/1.1");
    /* No protocol in common: the server refuses, as Go's does. */
    assert_fails(dial(&c, bad, s.port, "a.test"), EPROTO);
    cr_assert(strstr(gr_tls_error(c.t), "no application protocol"), "%s", gr_tls_error(c.t));
    hangup(&c);
    /* A client that offers none is served without. */
    cr_assert_eq(dial(&c, none, s.port, "a.test"), 0);
    cr_assert_null(gr_tls_alpn(c.t));
    hangup(&c);
    static const char *empty[] = {""};
    assert_fails(gr_tls_ctx_set_alpn(cl, empty, 1), EINVAL);
    gr_tls_ctx_free(cl);
    gr_tls_ctx_free(bad);
    gr_tls_ctx_free(none);
    tsrv_stop(&s);
    return NULL;
}

Test(tls, alpn, .init = certs_init, .fini = certs_fini, .timeout = 30)
{
    run_main(t_alpn, NULL);
}

/* ========================================================= resumption */

/* A full exchange, so a TLS 1.3 client has the server's ticket (it comes
 * after the handshake). Returns whether the session was resumed. */
static int exchange(gr_tls_ctx *cl, int port)
{
    conn c;
    int resumed;

    cr_assert_eq(dial(&c, cl, port, "a.test"), 0, "%s", gr_tls_error(c.t));
    echo_check(&c, "x\n");
    resumed = gr_tls_resumed(c.t);
    hangup(&c);
    return resumed;
}

static void *t_resume(void *arg)
{
    unsigned char keys[3 * GR_TLS_TICKET_KEY_SIZE];
    tsrv s1, s2, s3;

    (void)arg;
    for (size_t i = 0; i < sizeof keys; i++)
        keys[i] = (unsigned char)(i * 7 + 1);
    for (int v = 0; v < 2; v++) {
        int version = v ? GR_TLS_1_2 : GR_TLS_1_3;
        gr_tls_ctx *cl = client_ctx("a.test");
        gr_tls_ctx *k1 = server_ctx("a.test"), *k2 = server_ctx("a.test"),
                   *k3 = server_ctx("a.test");

        cr_assert_eq(gr_tls_ctx_set_versions(cl, version, version), 0);
        /* Two workers sharing key 0; a third rotated to key 1, key 2. */
        cr_assert_eq(gr_tls_ctx_set_ticket_keys(k1, keys, GR_TLS_TICKET_KEY_SIZE), 0);
        cr_assert_eq(gr_tls_ctx_set_ticket_keys(k2, keys, GR_TLS_TICKET_KEY_SIZE), 0);
        cr_assert_eq(gr_tls_ctx_set_ticket_keys(k3, keys + GR_TLS_TICKET_KEY_SIZE,
                                                GR_TLS_TICKET_KEY_SIZE * 2),
                     0);
        tsrv_start(&s1, k1, ECHO);
        tsrv_start(&s2, k2, ECHO);
        tsrv_start(&s3, k3, ECHO);
        cr_assert_eq(exchange(cl, s1.port), 0, "first handshake resumed");
        cr_assert_eq(exchange(cl, s1.port), 1, "not resumed on the same server");
        cr_assert_eq(exchange(cl, s2.port), 1, "not resumed on a worker with the same keys");
        cr_assert_eq(s1.resumed + s2.resumed, 2);
        /* Keys this server does not hold: a full handshake, then resumed. */
        cr_assert_eq(exchange(cl, s3.port), 0);
        cr_assert_eq(exchange(cl, s3.port), 1);
        /* Rotation: s3's sessions were sealed with key 1; s1 now seals
         * with key 2 and still opens key 1's tickets (renewing them). */
        cr_assert_eq(gr_tls_ctx_set_ticket_keys(k1, keys + GR_TLS_TICKET_KEY_SIZE * 2,
                                                GR_TLS_TICKET_KEY_SIZE),
                     0);
        cr_assert_eq(exchange(cl, s1.port), 0, "resumed with a dropped key");
        unsigned char rotated[2 * GR_TLS_TICKET_KEY_SIZE];
        memcpy(rotated, keys + 2 * GR_TLS_TICKET_KEY_SIZE, GR_TLS_TICKET_KEY_SIZE);
        memcpy(rotated + GR_TLS_TICKET_KEY_SIZE, keys + GR_TLS_TICKET_KEY_SIZE,
               GR_TLS_TICKET_KEY_SIZE);
        cr_assert_eq(exchange(cl, s3.port), 1);
        cr_assert_eq(gr_tls_ctx_set_ticket_keys(k3, rotated, sizeof rotated), 0);
        cr_assert_eq(exchange(cl, s3.port), 1, "an older key's ticket refused");
        cr_assert_eq(exchange(cl, s1.port), 1, "a renewed ticket refused");
        tsrv_stop(&s1);
        tsrv_stop(&s2);
        tsrv_stop(&s3);
        gr_tls_ctx_free(cl);
    }
    assert_fails(gr_tls_ctx_set_ticket_keys(NULL, keys, 80), EINVAL);
    return NULL;
}

Test(tls, resumption_shared_rotated_keys, .init = certs_init, .fini = certs_fini, .timeout = 60)
{
    run_main(t_resume, NULL);
}

/* ======================================================= bad peers */

static void *t_verify(void *arg)
{
    tsrv s;
    conn c;
    gr_tls_ctx *sys = gr_tls_ctx_new(GR_TLS_CLIENT), *ca = client_ctx("a.test");
    gr_tls_ctx *insecure = gr_tls_ctx_new(GR_TLS_CLIENT);

    (void)arg;
    tsrv_start(&s, server_ctx("a.test"), ECHO);
    /* The system's CAs do not know a self-signed certificate. */
    assert_fails(dial(&c, sys, s.port, "a.test"), EKEYREJECTED);
    cr_assert(strstr(gr_tls_error(c.t), "certificate verify failed: self-signed certificate"), "%s",
              gr_tls_error(c.t));
    hangup(&c);
    /* Trusted, but for another name. */
    assert_fails(dial(&c, ca, s.port, "wrong.test"), EKEYREJECTED);
    cr_assert(strstr(gr_tls_error(c.t), "hostname mismatch"), "%s", gr_tls_error(c.t));
    /* A failed stream stays failed. */
    assert_fails(gr_tls_write(c.t, "x", 1, NULL, gr_now() + WAIT_MS), EKEYREJECTED);
    hangup(&c);
    /* An IP address is checked against the IP SAN. */
    cr_assert_eq(dial(&c, ca, s.port, "127.0.0.1"), 0, "%s", gr_tls_error(c.t));
    hangup(&c);
    /* Verification off: anything goes (and no name is needed). */
    cr_assert_eq(gr_tls_ctx_set_verify(insecure, GR_TLS_VERIFY_NONE), 0);
    cr_assert_eq(dial(&c, insecure, s.port, NULL), 0, "%s", gr_tls_error(c.t));
    echo_check(&c, "insecure\n");
    hangup(&c);
    /* A verifying client must name the server. */
    int fd = loopback_connect(s.port);
    errno = 0;
    cr_assert_null(gr_tls_new(ca, fd, NULL));
    cr_assert_eq(errno, EINVAL);
    gr_close(fd);
    cr_assert_eq(s.hs_failures, 2, "server saw %d failures", s.hs_failures);
    gr_tls_ctx_free(sys);
    gr_tls_ctx_free(ca);
    gr_tls_ctx_free(insecure);
    tsrv_stop(&s);
    return NULL;
}

Test(tls, bad_certificate_wrong_host, .init = certs_init, .fini = certs_fini, .timeout = 30)
{
    run_main(t_verify, NULL);
}

Test(tls, context_errors_name_the_file, .init = certs_init, .fini = certs_fini, .timeout = 30)
{
    gr_tls_ctx *ctx = gr_tls_ctx_new(GR_TLS_SERVER);
    char missing[128];
    char *pem;
    FILE *f;
    long len;

    cr_assert_not_null(ctx);
    snprintf(missing, sizeof missing, "%s", cpath("missing.pem"));
    assert_fails(gr_tls_ctx_add_cert_file(ctx, missing, cpath("a.test.key")), EINVAL);
    cr_assert(strstr(gr_tls_ctx_error(ctx), "missing.pem: No such file"), "%s",
              gr_tls_ctx_error(ctx));
    assert_fails(gr_tls_ctx_add_cert_file(ctx, cpath("a.test.pem"), cpath("b.test.key")), EINVAL);
    cr_assert(strstr(gr_tls_ctx_error(ctx), "b.test.key does not match"), "%s",
              gr_tls_ctx_error(ctx));
    assert_fails(gr_tls_ctx_add_cert_file(ctx, cpath("a.test.key"), cpath("a.test.key")), EINVAL);
    cr_assert(strstr(gr_tls_ctx_error(ctx), "a.test.key: no certificate"), "%s",
              gr_tls_ctx_error(ctx));
    errno = 0; /* a server without a certificate */
    cr_assert_null(gr_tls_new(ctx, 0, NULL));
    cr_assert_eq(errno, EINVAL);
    assert_fails(gr_tls_ctx_load_ca(ctx, missing, NULL), EINVAL);
    cr_assert(strstr(gr_tls_ctx_error(ctx), "missing.pem"), "%s", gr_tls_ctx_error(ctx));
    errno = 0;
    cr_assert_null(gr_tls_ctx_new(3));
    cr_assert_eq(errno, EINVAL);
    assert_fails(gr_tls_ctx_set_versions(ctx, 0x0301, 0), EINVAL);
    /* From memory. */
    cr_assert_not_null(f = fopen(cpath("a.test.pem"), "r"));
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    cr_assert_not_null(pem = malloc((size_t)len));
    cr_assert_eq(fread(pem, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    assert_fails(gr_tls_ctx_add_cert_mem(ctx, pem, (size_t)len, pem, (size_t)len), EINVAL);
    cr_assert(strstr(gr_tls_ctx_error(ctx), "key: no private key"), "%s", gr_tls_ctx_error(ctx));
    free(pem);
    gr_tls_ctx_free(ctx);
}

/* A server that completes the handshake, then sends raw bytes (a cut
 * record, garbage) and closes without close_notify. */
typedef struct raw_srv {
    gr_tls_ctx *ctx;
    const char *tail;
    size_t tail_len;
} raw_srv;

static void serve_raw(int fd, const gr_addr *peer, void *arg)
{
    raw_srv *r = arg;
    gr_tls *t = gr_tls_new(r->ctx, fd, NULL);

    (void)peer;
    if (gr_tls_handshake(t, gr_now() + WAIT_MS) == 0) {
        gr_tls_write(t, "hi\n", 3, NULL, gr_now() + WAIT_MS);
        gr_write_all(fd, r->tail, r->tail_len, NULL, gr_now() + WAIT_MS);
    }
    gr_tls_free(t);
}

static void truncated_case(const char *tail, size_t len, int err)
{
    raw_srv r = {server_ctx("a.test"), tail, len};
    int l = loopback_listen();
    gr_server *srv = gr_server_new(dup(l), serve_raw, &r, NULL);
    gr_tls_ctx *cl = client_ctx("a.test");
    char buf[64];
    conn c;

    cr_assert_eq(gr_server_start(srv), 0);
    cr_assert_eq(dial(&c, cl, gr_local_port(l), "a.test"), 0, "%s", gr_tls_error(c.t));
    gr_close(l);
    cr_assert_eq(read_until(c.t, buf, sizeof buf, "\n"), 3);
    assert_fails(gr_tls_read(c.t, buf, sizeof buf, gr_now() + WAIT_MS), err);
    cr_assert_neq(gr_tls_error(c.t)[0], '\0');
    hangup(&c);
    gr_server_stop(srv, gr_now() + WAIT_MS);
    gr_server_free(srv);
    gr_tls_ctx_free(r.ctx);
    gr_tls_ctx_free(cl);
}

static void *t_truncated(void *arg)
{
    (void)arg;
    /* A record header promising 100 bytes, 10 of them, then the close. */
    truncated_case("\x17\x03\x03\x00\x64"
                   "0123456789",
                   15, ECONNRESET);
    /* The close alone, with no close_notify. */
    truncated_case("", 0, ECONNRESET);
    /* A record that does not authenticate. */
    truncated_case("\x17\x03\x03\x00\x20"
                   "0123456789abcdef0123456789abcdef",
                   37, EPROTO);
    /* A record type that does not exist. */
    truncated_case("\x42\x03\x03\x00\x01"
                   "x",
                   6, EPROTO);
    return NULL;
}

Test(tls, truncated_records_fail, .init = certs_init, .fini = certs_fini, .timeout = 30)
{
    run_main(t_truncated, NULL);
}

/* A hostile server written with OpenSSL directly (TLS 1.2, which has
 * renegotiation): after the handshake and a line it asks the client to
 * renegotiate (HelloRequest) and reads what comes back. grove's client
 * refuses (SSL_OP_NO_RENEGOTIATION): the exchange ends with an error in
 * words, promptly, and no second handshake ever happens. */
static int ssl_settle(SSL *ssl, int r, int64_t deadline)
{
    int e = SSL_get_error(ssl, r);

    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
        return -1;
    return gr_wait_fd(SSL_get_fd(ssl), e == SSL_ERROR_WANT_READ ? GR_READ : GR_WRITE, deadline) < 0
               ? -1
               : 0;
}

static int reneg_hellos; /* ClientHellos the hostile server got */

static int count_hello(SSL *ssl, int *al, void *arg)
{
    (void)ssl, (void)al, (void)arg;
    reneg_hellos++;
    return SSL_CLIENT_HELLO_SUCCESS;
}

static void serve_reneg(int fd, const gr_addr *peer, void *arg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL *ssl;
    int64_t deadline = gr_now() + WAIT_MS;
    char buf[64];
    int r;

    (void)peer, (void)arg;
    cr_assert_eq(SSL_CTX_use_certificate_chain_file(ctx, cpath("a.test.pem")), 1);
    cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, cpath("a.test.key"), SSL_FILETYPE_PEM), 1);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_client_hello_cb(ctx, count_hello, NULL);
    cr_assert_not_null(ssl = SSL_new(ctx));
    SSL_set_fd(ssl, fd);
    while ((r = SSL_accept(ssl)) != 1)
        cr_assert_eq(ssl_settle(ssl, r, deadline), 0, "accept");
    while ((r = SSL_write(ssl, "hi\n", 3)) <= 0)
        cr_assert_eq(ssl_settle(ssl, r, deadline), 0, "write");
    cr_assert_eq(SSL_renegotiate(ssl), 1);
    SSL_do_handshake(ssl); /* sends the HelloRequest */
    /* Whatever the client answers, until it closes or fails. */
    while ((r = SSL_read(ssl, buf, sizeof buf)) != 0) {
        if (r > 0)
            continue;
        if (ssl_settle(ssl, r, deadline) != 0)
            break;
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
}

static void *t_reneg(void *arg)
{
    int l = loopback_listen();
    gr_server *srv = gr_server_new(dup(l), serve_reneg, NULL, NULL);
    gr_tls_ctx *cl = client_ctx("a.test");
    char buf[64];
    int64_t t0;
    conn c;

    (void)arg;
    cr_assert_eq(gr_server_start(srv), 0);
    cr_assert_eq(dial(&c, cl, gr_local_port(l), "a.test"), 0, "%s", gr_tls_error(c.t));
    gr_close(l);
    cr_assert_str_eq(gr_tls_version(c.t), "TLSv1.2");
    cr_assert_eq(read_until(c.t, buf, sizeof buf, "\n"), 3);
    t0 = gr_now_update();
    errno = 0;
    cr_assert_lt(gr_tls_read(c.t, buf, sizeof buf, gr_now() + WAIT_MS), 1);
    cr_assert_eq(errno, EPROTO, "%s: %s", strerror(errno), gr_tls_error(c.t));
    cr_assert_lt(gr_now_update() - t0, 1000);
    cr_log_info("refused: %s", gr_tls_error(c.t));
    cr_assert(strstr(gr_tls_error(c.t), "handshake failure") ||
                  strstr(gr_tls_error(c.t), "renegotiation"),
              "%s", gr_tls_error(c.t));
    hangup(&c);
    gr_server_stop(srv, gr_now() + WAIT_MS);
    gr_server_free(srv);
    cr_assert_eq(reneg_hellos, 1, "the client answered the HelloRequest with a ClientHello");
    gr_tls_ctx_free(cl);
    return NULL;
}

Test(tls, renegotiation_refused, .init = certs_init, .fini = certs_fini, .timeout = 30)
{
    run_main(t_reneg, NULL);
}

/* ================================================ deadlines and load */

typedef struct dribble {
    int port;
    int64_t started;
    int64_t stopped; /* when the server cut it */
} dribble;

/* The first bytes of a ClientHello, one every 100 ms, until the server
 * closes. */
static void *dribbler(void *arg)
{
    dribble *d = arg;
    static const unsigned char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01,
                                          0x00, 0x01, 0xfc, 0x03, 0x03};
    int fd = loopback_connect(d->port);
    char b;

    d->started = gr_now_update();
    for (size_t i = 0;; i++) {
        unsigned char byte = i < sizeof hello ? hello[i] : (unsigned char)i;

        if (gr_write(fd, &byte, 1, gr_now() + WAIT_MS) != 1)
            break;
        if (gr_read(fd, &b, 1, gr_now() + 100) == 0 || errno != ETIMEDOUT)
            break;
        cr_assert_lt(i, 100, "never cut");
    }
    d->stopped = gr_now_update();
    gr_close(fd);
    return NULL;
}

static void *t_dribble(void *arg)
{
    tsrv s;
    dribble d;
    gr_t g;
    gr_tls_ctx *cl = client_ctx("a.test");

    (void)arg;
    tsrv_start(&s, server_ctx("a.test"), ECHO);
    s.hs_ms = 1000;
    d = (dribble){s.port, 0, 0};
    g = gr_spawn(dribbler, &d);
    /* Served meanwhile: five full connections while the dribbler drips. */
    gr_sleep(gr_now() + 150);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(exchange(cl, s.port), i > 0);
        cr_assert_eq(d.stopped, 0, "the others waited for the dribbler");
    }
    cr_assert_eq(gr_join(g, NULL, gr_now() + WAIT_MS), 0);
    cr_assert_eq(s.hs_failures, 1);
    cr_assert_eq(s.hs_errno, ETIMEDOUT, "%s", strerror(s.hs_errno));
    cr_assert_geq(d.stopped - d.started, 900, "cut after %lld ms",
                  (long long)(d.stopped - d.started));
    cr_assert_lt(d.stopped - d.started, 3000, "cut after %lld ms",
                 (long long)(d.stopped - d.started));
    gr_tls_ctx_free(cl);
    tsrv_stop(&s);
    return NULL;
}

Test(tls, dribbled_client_hello_cut_at_deadline, .init = certs_init, .fini = certs_fini,
     .timeout = 30)
{
    run_main(t_dribble, NULL);
}

#define BIG ((size_t)64 << 20)

static void *big_writer(void *arg)
{
    conn *c = arg;
    size_t chunk = 1 << 20, done = 0;
    unsigned char *buf = malloc(chunk);

    for (size_t off = 0; off < BIG; off += chunk) {
        for (size_t i = 0; i < chunk; i++)
            buf[i] = (unsigned char)((off + i) % 251);
        cr_assert_eq(gr_tls_write(c->t, buf, chunk, &done, gr_now() + 30000), 0, "at %zu: %s", off,
                     gr_tls_error(c->t));
        cr_assert_eq(done, chunk);
    }
    free(buf);
    return NULL;
}

static void *t_big(void *arg)
{
    int sv[2];
    conn srv, cli;
    gr_tls_ctx *sctx = server_ctx("a.test"), *cl = client_ctx("a.test");
    unsigned char buf[16384];
    size_t got = 0;
    int reads = 0;
    gr_t w;

    (void)arg;
    tcp_pair(sv);
    cli = (conn){sv[0], gr_tls_new(cl, sv[0], "a.test")};
    srv = (conn){sv[1], gr_tls_new(sctx, sv[1], NULL)};
    w = gr_spawn(big_writer, &srv);
    while (got < BIG) {
        ssize_t n = gr_tls_read(cli.t, buf, sizeof buf, gr_now() + 30000);

        cr_assert_gt(n, 0, "after %zu bytes: %s", got, gr_tls_error(cli.t));
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != (unsigned char)((got + (size_t)i) % 251))
                cr_assert_fail("byte %zu wrong", got + (size_t)i);
        got += (size_t)n;
        /* A slow reader: the writer meets a full socket again and again. */
        if (++reads % 256 == 0)
            gr_sleep(gr_now() + 2);
    }
    cr_assert_eq(gr_join(w, NULL, gr_now() + 30000), 0);
    gr_tls_shutdown(srv.t, gr_now() + WAIT_MS);
    cr_assert_eq(gr_tls_read(cli.t, buf, sizeof buf, gr_now() + WAIT_MS), 0, "no close_notify");
    gr_tls_free(cli.t);
    gr_tls_free(srv.t);
    close_pair(sv);
    gr_tls_ctx_free(sctx);
    gr_tls_ctx_free(cl);
    return NULL;
}

Test(tls, sixty_four_mb_to_slow_reader, .init = certs_init, .fini = certs_fini, .timeout = 120)
{
    run_main(t_big, NULL);
}

#ifdef GROVE_TEST_SANITIZED
#define HANDSHAKES 500
#else
#define HANDSHAKES 10000
#endif

static void *hs_server(void *arg)
{
    conn *c = arg;

    cr_assert_eq(gr_tls_handshake(c->t, gr_now() + WAIT_MS), 0, "%s", gr_tls_error(c->t));
    return NULL;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;

    cr_assert_eq(fscanf(f, "%ld %ld", &size, &rss), 2);
    fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Full handshakes over socket pairs (no ports used up), each stream freed:
 * nothing grows. */
static void *t_many(void *arg)
{
    gr_tls_ctx *sctx = server_ctx("a.test"), *cl = client_ctx("a.test");
    long rss_warm = 0;
    int fds = proc_self_count("fd");

    (void)arg;
    for (int i = 0; i < HANDSHAKES; i++) {
        int sv[2];
        conn s, c;
        gr_t g;

        unix_pair(sv);
        c = (conn){sv[0], gr_tls_new(cl, sv[0], "a.test")};
        s = (conn){sv[1], gr_tls_new(sctx, sv[1], NULL)};
        g = gr_spawn(hs_server, &s);
        cr_assert_eq(gr_tls_handshake(c.t, gr_now() + WAIT_MS), 0, "%d: %s", i, gr_tls_error(c.t));
        cr_assert_eq(gr_join(g, NULL, gr_now() + WAIT_MS), 0);
        /* TLS 1.3's ticket comes after the handshake, never read here:
         * every handshake is a full one. */
        cr_assert_eq(gr_tls_resumed(c.t), 0);
        gr_tls_free(c.t);
        gr_tls_free(s.t);
        close_pair(sv);
        if (i == HANDSHAKES / 10)
            rss_warm = rss_kb();
    }
    cr_assert_eq(proc_self_count("fd"), fds);
#ifndef GROVE_TEST_SANITIZED /* ASan's quarantine holds freed memory: LeakSanitizer judges */
    cr_assert_lt(rss_kb() - rss_warm, 4096, "RSS grew from %ld to %ld KiB", rss_warm, rss_kb());
#else
    (void)rss_warm;
#endif
    gr_tls_ctx_free(sctx);
    gr_tls_ctx_free(cl);
    cr_assert(!leaks_found());
    return NULL;
}

Test(tls, many_handshakes_no_leak, .init = certs_init, .fini = certs_fini, .timeout = 120)
{
    run_main(t_many, NULL);
}

/* ==================================================== failed allocations */

/* Every allocation of grove's own on the way to a pair of streams fails
 * in turn (OpenSSL's own are OpenSSL's): each failure comes out as
 * ENOMEM, and nothing leaks or stays open. */
static int alloc_step(long n)
{
    static const char *alpn[] = {"http/1.1"};
    unsigned char keys[GR_TLS_TICKET_KEY_SIZE] = {1};
    gr_tls_ctx *s = NULL, *c = NULL;
    gr_tls *ts = NULL, *tc = NULL;
    int sv[2], ok, err = 0;

    unix_pair(sv);
    gr__fail_arm(GR__FAIL_ALLOC, n, 0);
    ok = (s = gr_tls_ctx_new(GR_TLS_SERVER)) &&
         gr_tls_ctx_add_cert_file(s, cpath("a.test.pem"), cpath("a.test.key")) == 0 &&
         gr_tls_ctx_set_alpn(s, alpn, 1) == 0 &&
         gr_tls_ctx_set_ticket_keys(s, keys, sizeof keys) == 0 &&
         (c = gr_tls_ctx_new(GR_TLS_CLIENT)) && (tc = gr_tls_new(c, sv[0], "a.test")) &&
         (ts = gr_tls_new(s, sv[1], NULL));
    if (!ok)
        err = errno;
    gr__fail_disarm();
    cr_assert(ok || err == ENOMEM, "step %ld failed with %s", n, strerror(err));
    cr_assert(ok == !gr__fail_fired(NULL), "step %ld: %s", n,
              ok ? "a failure was hidden" : "failed unasked");
    gr_tls_free(ts);
    gr_tls_free(tc);
    gr_tls_ctx_free(s);
    gr_tls_ctx_free(c);
    close_pair(sv);
    return !ok;
}

static void *t_alloc(void *arg)
{
    int fds = proc_self_count("fd");
    long n = 1;

    (void)arg;
    while (alloc_step(n))
        n++;
    cr_assert_gt(n, 5, "only %ld allocations hooked", n - 1);
    cr_assert_eq(proc_self_count("fd"), fds);
    cr_assert(!leaks_found());
    return NULL;
}

Test(tls, failed_allocations_are_enomem, .init = certs_init, .fini = certs_fini, .timeout = 60)
{
    run_main(t_alloc, NULL);
}
