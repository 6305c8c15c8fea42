/* libgrove-patch with OpenSSL's socket BIOs, as Debian ships it, in
 * s_client style blocking code: fifty green threads each connect,
 * SSL_connect, write and read against a TLS server that answers after
 * 1 s, about 1 s in all. The server (a child process) is blocking-style
 * OpenSSL code too, one green thread per connection, under the patch. */
#include "patch_common.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* A self-signed certificate for "localhost", made here. */
static EVP_PKEY *key;
static X509 *cert;

static void make_cert(void)
{
    X509_NAME *name;

    key = EVP_EC_gen("P-256");
    cr_assert_not_null(key);
    cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    cr_assert_gt(X509_sign(cert, key, EVP_sha256()), 0);
}

/* ---------------------------------------------------------- the server */

static SSL_CTX *server_ctx;
static int listener;

static void *serve_one(void *arg)
{
    int fd = (int)(intptr_t)arg;
    SSL *s = SSL_new(server_ctx);
    char buf[64];

    SSL_set_fd(s, fd);
    if (SSL_accept(s) == 1 && SSL_read(s, buf, sizeof buf) > 0) {
        sleep(1); /* patched: only this green thread waits */
        SSL_write(s, "world", 5);
        SSL_shutdown(s);
    }
    SSL_free(s);
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(listener, NULL, NULL);

        if (c < 0)
            _exit(4);
        gr_detach(gr_spawn(serve_one, (void *)(intptr_t)c));
    }
    return NULL;
}

static void server_child(void *arg)
{
    (void)arg;
    server_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(server_ctx, cert);
    SSL_CTX_use_PrivateKey(server_ctx, key);
    gr_main(accept_loop, NULL, NULL);
}

/* ---------------------------------------------------------- the clients */

static int port;
static SSL_CTX *client_ctx;

typedef struct talk {
    int ok;
    char err[128];
} talk;

static void *one_client(void *arg)
{
    talk *t = arg;
    int fd = posix_connect(port);
    SSL *s = SSL_new(client_ctx);
    char buf[16] = "";
    int n;

    SSL_set_fd(s, fd); /* a socket BIO over the blocking socket */
    SSL_set_tlsext_host_name(s, "localhost");
    if (SSL_connect(s) != 1) {
        snprintf(t->err, sizeof t->err, "SSL_connect: %s", ERR_error_string(ERR_get_error(), NULL));
    } else if (SSL_write(s, "hello", 5) != 5) {
        snprintf(t->err, sizeof t->err, "SSL_write failed");
    } else if ((n = SSL_read(s, buf, sizeof buf - 1)) != 5) {
        snprintf(t->err, sizeof t->err, "SSL_read gave %d", n);
    } else {
        t->ok = !memcmp(buf, "world", 5);
    }
    SSL_free(s);
    close(fd);
    return NULL;
}

#define NCLIENT 50

static void *fifty(void *arg)
{
    static talk t[NCLIENT];
    gr_t g[NCLIENT];
    heartbeat hb;
    int64_t t0 = now_ms(), took;

    (void)arg;
    hb_start(&hb);
    for (int i = 0; i < NCLIENT; i++)
        g[i] = gr_spawn(one_client, &t[i]);
    for (int i = 0; i < NCLIENT; i++) {
        gr_join(g[i], NULL, -1);
        cr_assert(t[i].ok, "client %d: %s", i, t[i].err);
    }
    took = now_ms() - t0;
    hb_check(&hb);
    cr_assert_geq(took, 1000);
    cr_assert_lt(took, TIME_TARGET(1600), "50 TLS exchanges answered after 1 s took %lld ms",
                 (long long)took);
    return NULL;
}

Test(patch_ssl, fifty_tls_clients_over_socket_bios_at_once, .timeout = 30)
{
    pid_t pid;

    require_patch();
    make_cert();
    listener = posix_listen(&port);
    pid = fork_child(server_child, NULL);
    close(listener);
    client_ctx = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), cert);
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
    run_main(fifty, NULL);
    kill_child(pid);
    SSL_CTX_free(client_ctx);
}
