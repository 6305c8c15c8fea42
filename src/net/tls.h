/* The TLS layer's internal contract: the context (tls_ctx.c: certificates,
 * verification, ALPN, ticket keys, the client session cache) and the
 * streams over it (tls.c). OpenSSL's SSL_CTX holds a pointer back to the
 * gr_tls_ctx (its app data) for the callbacks; an SSL to its gr_tls. */
#ifndef GROVE_NET_TLS_H
#define GROVE_NET_TLS_H

#include "arch/fail.h"
#include <grove/tls.h>

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/uio.h>

/* One certificate a context presents: the leaf, its key, the chain
 * after it. */
typedef struct gr__ssl_cert {
    X509 *leaf;
    EVP_PKEY *key;
    STACK_OF(X509) * chain;
} gr__ssl_cert;

typedef struct gr__ssl_ticket_key {
    unsigned char name[16], hmac[32], aes[32];
} gr__ssl_ticket_key;

/* A client's cached session for one host name. */
typedef struct gr__ssl_cached {
    char *host;
    SSL_SESSION *sess;
} gr__ssl_cached;

/* Client sessions kept per context: one per host name, the oldest
 * replaced beyond this. */
#define GR__SSL_SESSION_CACHE 64

struct gr_tls_ctx {
    SSL_CTX *ssl;
    int role;
    atomic_int refs;
    gr__ssl_cert *certs;
    size_t ncerts;
    /* Shared with handshakes on other OS threads: ticket keys and the
     * session cache. */
    pthread_mutex_t lock;
    gr__ssl_ticket_key *keys;
    size_t nkeys;
    int no_cache; /* clients: sessions are not kept */
    gr__ssl_cached cache[GR__SSL_SESSION_CACHE];
    size_t cache_next;
    unsigned char *alpn; /* wire format: length-prefixed names */
    size_t alpn_len;
    char err[256];
};

struct gr_tls {
    SSL *ssl;
    gr_tls_ctx *ctx;
    int fd;
    int failed;  /* errno of a fatal failure: every later call repeats it */
    int done;    /* the handshake is complete */
    int unclean; /* the failure was an end of stream without close_notify */
    char *host;  /* a client's host name (the session cache's key) */
    char *alpn;  /* after the handshake */
    char err[256];
};

/* Take a reference on ctx / drop one (the last frees it). */
void gr__ssl_ctx_ref(gr_tls_ctx *ctx);

/* Store a client session for host in ctx's cache / offer the cached one
 * to ssl. */
void gr__ssl_cache_put(gr_tls_ctx *ctx, const char *host, SSL_SESSION *sess);
void gr__ssl_cache_offer(gr_tls_ctx *ctx, const char *host, SSL *ssl);

/* OpenSSL's error queue, last error first, as words into buf (what) and
 * cleared. */
void gr__ssl_error_text(char *buf, size_t len, const char *what);

/* For protocols that frame their own messages (HTTP): gr_tls_read, but an
 * end of stream without close_notify reads as an end of stream (0), as
 * it would over TCP; the framing tells a cut message. */
ssize_t gr__tls_read_framed(gr_tls *t, void *buf, size_t len, int64_t deadline);

/* Write every byte of iov[0, n): small ones gathered into one record (a
 * response head and its body leave together), large ones record by
 * record. 0 or -1 with errno, as gr_tls_write. */
int gr__tls_writev(gr_tls *t, const struct iovec *iov, int n, int64_t deadline);

#endif
