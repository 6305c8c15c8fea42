/* TLS streams: an SSL over a non-blocking grove socket. Every call runs
 * OpenSSL until it completes or asks for the socket (WANT_READ or
 * WANT_WRITE), and then parks the green thread on gr_wait_fd until the
 * socket is ready or the deadline passes, as gr_read does around read(2).
 *
 * Three rules OpenSSL sets for non-blocking use, and how they are kept:
 * - Bytes OpenSSL has already decrypted are never waited for: only
 *   SSL_read's own WANT_READ parks, and it says so only when nothing is
 *   buffered (SSL_pending is 0).
 * - A write retried after WANT_WRITE passes the same bytes: gr_tls_write
 *   retries with the same pointer and length (and the context sets
 *   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER for callers that copy).
 * - The error queue is per OS thread, shared by every green thread on it:
 *   it is cleared before each OpenSSL call and read (SSL_get_error, the
 *   reason) before the thread can park and another one run.
 *
 * The BIO is our own rather than OpenSSL's socket BIO only to send with
 * MSG_NOSIGNAL: a peer that closed gives EPIPE, never SIGPIPE. */
#define _GNU_SOURCE
#include "net/tls.h"
#include "core/core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* ------------------------------------------------------------------ BIO */

static ssize_t bio_fd(BIO *b)
{
    return ((gr_tls *)BIO_get_data(b))->fd;
}

static int bio_read(BIO *b, char *buf, int len)
{
    ssize_t n;

    BIO_clear_retry_flags(b);
    do
        n = recv((int)bio_fd(b), buf, (size_t)len, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0)
        BIO_set_flags(b, BIO_FLAGS_IN_EOF); /* tells OpenSSL a truncation from a close */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    return (int)n;
}

static int bio_write(BIO *b, const char *buf, int len)
{
    ssize_t n;

    BIO_clear_retry_flags(b);
    do
        n = send((int)bio_fd(b), buf, (size_t)len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    switch (cmd) {
    case BIO_C_GET_FD:
        if (ptr)
            *(int *)ptr = (int)bio_fd(b);
        return bio_fd(b);
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP:
        return 1;
    default:
        return 0;
    }
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "grove socket");

    if (m && BIO_meth_set_read(m, bio_read) == 1 && BIO_meth_set_write(m, bio_write) == 1 &&
        BIO_meth_set_ctrl(m, bio_ctrl) == 1)
        bio_method = m;
    else
        BIO_meth_free(m);
}

static BIO *bio_new(gr_tls *t)
{
    BIO *b;

    pthread_once(&bio_once, bio_method_init);
    if (!bio_method || !(b = BIO_new(bio_method)))
        return NULL;
    BIO_set_data(b, t);
    BIO_set_init(b, 1);
    return b;
}

/* --------------------------------------------------------------- errors */

/* A failure OpenSSL reported (SSL_get_error's e): errno and words. Every
 * one is fatal for the stream, since OpenSSL's state is then unusable. */
static int stream_fail(gr_tls *t, int e, int sys_errno)
{
    unsigned long last = ERR_peek_last_error();
    int err = EPROTO;

    if (e == SSL_ERROR_SYSCALL && !last) {
        err = sys_errno ? sys_errno : ECONNRESET;
        t->unclean = !sys_errno;
        snprintf(t->err, sizeof t->err, "%s",
                 sys_errno ? strerror(err) : "connection closed without close_notify");
    } else if (e == SSL_ERROR_ZERO_RETURN) {
        err = EPIPE;
        snprintf(t->err, sizeof t->err, "the peer ended the stream (close_notify)");
    } else if (ERR_GET_LIB(last) == ERR_LIB_SSL &&
               ERR_GET_REASON(last) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        err = EKEYREJECTED;
        snprintf(t->err, sizeof t->err, "certificate verify failed: %s",
                 X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
    } else {
        if (ERR_GET_LIB(last) == ERR_LIB_SSL &&
            ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            err = ECONNRESET;
            t->unclean = 1;
        } else if (ERR_GET_REASON(last) == ERR_R_MALLOC_FAILURE)
            err = ENOMEM;
        gr__ssl_error_text(t->err, sizeof t->err, "TLS");
    }
    ERR_clear_error();
    t->failed = err;
    errno = err;
    return -1;
}

/* After an OpenSSL call returned ret (<= 0): wait for what it wants and
 * return 0 to call it again, or -1 with errno. */
static int settle(gr_tls *t, int ret, int64_t deadline)
{
    int sys_errno = errno;
    int e = SSL_get_error(t->ssl, ret);
    int events;

    if (e == SSL_ERROR_WANT_READ)
        events = GR_READ;
    else if (e == SSL_ERROR_WANT_WRITE)
        events = GR_WRITE;
    else
        return stream_fail(t, e, sys_errno);
    ERR_clear_error();
    /* Our BIO has just seen EAGAIN: wait for the next edge. */
    if (gr_wait_fd(t->fd, events | GR_EDGE, deadline) < 0) {
        snprintf(t->err, sizeof t->err, "%s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Precondition of every stream call. */
static int enter(gr_tls *t)
{
    if (!t) {
        errno = EINVAL;
        return -1;
    }
    if (t->failed) {
        errno = t->failed;
        return -1;
    }
    t->err[0] = '\0';
    return gr__enter();
}

const char *gr_tls_error(const gr_tls *t)
{
    return t ? t->err : "";
}

/* --------------------------------------------------------------- calls */

/* The handshake is done: keep what it chose. */
static void handshake_done(gr_tls *t)
{
    const unsigned char *p;
    unsigned len;

    if (t->done)
        return;
    t->done = 1;
    /* A TLS 1.2 resumption whose ticket the server renewed: OpenSSL has
     * retired the old session but calls no new-session callback after a
     * resumption, so the renewed one is cached here. */
    if (t->host && !t->ctx->no_cache && SSL_session_reused(t->ssl) &&
        SSL_version(t->ssl) < TLS1_3_VERSION) {
        SSL_SESSION *sess = SSL_get1_session(t->ssl);

        if (sess && SSL_SESSION_is_resumable(sess))
            gr__ssl_cache_put(t->ctx, t->host, sess);
        else
            SSL_SESSION_free(sess);
    }
    SSL_get0_alpn_selected(t->ssl, &p, &len);
    if (len && (t->alpn = gr__malloc(len + 1))) {
        memcpy(t->alpn, p, len);
        t->alpn[len] = '\0';
    }
}

int gr_tls_handshake(gr_tls *t, int64_t deadline)
{
    int r;

    if (enter(t) != 0)
        return -1;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        if ((r = SSL_do_handshake(t->ssl)) == 1)
            break;
        if (settle(t, r, deadline) != 0)
            return -1;
    }
    handshake_done(t);
    return 0;
}

ssize_t gr_tls_read(gr_tls *t, void *buf, size_t len, int64_t deadline)
{
    size_t n;
    int r;

    if (enter(t) != 0)
        return -1;
    if (len == 0)
        return 0;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        if ((r = SSL_read_ex(t->ssl, buf, len, &n)) == 1) {
            handshake_done(t);
            return (ssize_t)n;
        }
        if (SSL_get_error(t->ssl, r) == SSL_ERROR_ZERO_RETURN) {
            ERR_clear_error();
            return 0;
        }
        if (settle(t, r, deadline) != 0)
            return -1;
    }
}

int gr_tls_write(gr_tls *t, const void *buf, size_t len, size_t *done, int64_t deadline)
{
    const char *p = buf;
    size_t off = 0;
    int rc = enter(t);

    while (rc == 0 && off < len) {
        size_t n;
        int r;

        ERR_clear_error();
        errno = 0;
        /* After WANT_WRITE the same p + off and len - off come back. */
        if ((r = SSL_write_ex(t->ssl, p + off, len - off, &n)) == 1)
            off += n;
        else
            rc = settle(t, r, deadline);
    }
    if (rc == 0 && off)
        handshake_done(t);
    if (done)
        *done = off;
    return rc;
}

ssize_t gr__tls_read_framed(gr_tls *t, void *buf, size_t len, int64_t deadline)
{
    ssize_t n = gr_tls_read(t, buf, len, deadline);

    return n < 0 && t->unclean ? 0 : n;
}

/* Below this, a gather costs less than a record of its own (29 bytes of
 * framing and tag, an AEAD call, often a packet). */
#define GATHER_BYTES 8192

int gr__tls_writev(gr_tls *t, const struct iovec *iov, int n, int64_t deadline)
{
    char gather[GATHER_BYTES];
    size_t total = 0;

    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (n > 1 && total <= sizeof gather) {
        char *o = gather;

        for (int i = 0; i < n; i++) {
            memcpy(o, iov[i].iov_base, iov[i].iov_len);
            o += iov[i].iov_len;
        }
        return gr_tls_write(t, gather, total, NULL, deadline);
    }
    for (int i = 0; i < n; i++)
        if (gr_tls_write(t, iov[i].iov_base, iov[i].iov_len, NULL, deadline) != 0)
            return -1;
    return 0;
}

int gr_tls_shutdown(gr_tls *t, int64_t deadline)
{
    int r;

    if (enter(t) != 0)
        return -1;
    if (!SSL_is_init_finished(t->ssl) || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return 0;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        /* 0: our close_notify is out; the peer's is not awaited. */
        if ((r = SSL_shutdown(t->ssl)) >= 0)
            return 0;
        if (settle(t, r, deadline) != 0)
            return -1;
    }
}

/* ------------------------------------------------------------- streams */

static int is_ip(const char *host)
{
    unsigned char a[16];

    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

/* A client's name: SNI for names, and the identity the certificate must
 * carry when it is verified. Returns 0 or the errno. */
static int client_setup(gr_tls *t, const char *host)
{
    int verify = SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER;

    if (!host)
        return verify ? EINVAL : 0;
    if (!*host || strlen(host) > 253)
        return EINVAL;
    if (!(t->host = gr__strdup(host)))
        return ENOMEM;
    if (is_ip(host)) {
        if (verify && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) != 1)
            return EINVAL;
    } else {
        if (SSL_set_tlsext_host_name(t->ssl, host) != 1)
            return EINVAL;
        if (verify && SSL_set1_host(t->ssl, host) != 1)
            return EINVAL;
    }
    gr__ssl_cache_offer(t->ctx, host, t->ssl);
    return 0;
}

/* One fcntl for the socket grove made (already non-blocking). */
static int nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    return fl & O_NONBLOCK ? 0 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

gr_tls *gr_tls_new(gr_tls_ctx *ctx, int fd, const char *host)
{
    gr_tls *t;
    BIO *b;

    if (!ctx || fd < 0 || (ctx->role == GR_TLS_SERVER && ctx->ncerts == 0)) {
        errno = EINVAL;
        return NULL;
    }
    if (!(t = gr__calloc(1, sizeof *t))) {
        errno = ENOMEM;
        return NULL;
    }
    t->fd = fd;
    t->ctx = ctx;
    gr__ssl_ctx_ref(ctx);
    if (!(t->ssl = SSL_new(ctx->ssl)) || !(b = bio_new(t))) {
        gr_tls_free(t);
        ERR_clear_error();
        errno = ENOMEM;
        return NULL;
    }
    SSL_set_bio(t->ssl, b, b);
    SSL_set_app_data(t->ssl, t);
    if (ctx->role == GR_TLS_SERVER) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        int err = client_setup(t, host);

        if (err) {
            gr_tls_free(t);
            ERR_clear_error();
            errno = err;
            return NULL;
        }
    }
    if (nonblock(fd) != 0) {
        gr_tls_free(t);
        errno = EINVAL;
        return NULL;
    }
    /* A handshake is several flights and the data after it another write:
     * Nagle would hold each behind the ACK of the one before (a delayed
     * ACK, 40 ms, per connection). OpenSSL already writes whole flights. */
    gr_tcp_nodelay(fd, 1);
    return t;
}

void gr_tls_free(gr_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    gr_tls_ctx_free(t->ctx);
    free(t->host);
    free(t->alpn);
    free(t);
}

const char *gr_tls_alpn(const gr_tls *t)
{
    return t ? t->alpn : NULL;
}

const char *gr_tls_version(const gr_tls *t)
{
    return t ? SSL_get_version(t->ssl) : NULL;
}

const char *gr_tls_server_name(const gr_tls *t)
{
    return t ? SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}

int gr_tls_resumed(const gr_tls *t)
{
    return t && SSL_session_reused(t->ssl);
}
