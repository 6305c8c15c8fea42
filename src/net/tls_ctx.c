/* TLS contexts: one SSL_CTX each, configured for grove's defaults (TLS 1.2
 * floor, verification on for clients, stateless tickets, no renegotiation)
 * plus what OpenSSL leaves to callbacks: the certificate chosen by SNI,
 * ALPN selection, ticket keys that can be shared and rotated, and the
 * client's session cache keyed by host name. */
#define _GNU_SOURCE
#include "net/tls.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

/* --------------------------------------------------------------- errors */

/* "a: b" into buf, cut to fit: the words are for people. */
static void join_text(char *buf, size_t len, const char *a, const char *b)
{
    size_t la = strnlen(a, len - 1), lb;

    memcpy(buf, a, la);
    buf[la] = '\0';
    if (la + 2 >= len)
        return;
    memcpy(buf + la, ": ", 2);
    lb = strnlen(b, len - la - 3);
    memcpy(buf + la + 2, b, lb);
    buf[la + 2 + lb] = '\0';
}

void gr__ssl_error_text(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : "unknown error";
    char code[128];

    if (!r) {
        ERR_error_string_n(e, code, sizeof code);
        r = code;
    }
    join_text(buf, len, what, r);
    ERR_clear_error();
}

/* Record why a call on ctx failed; -1 with errno err. */
static int ctx_fail(gr_tls_ctx *ctx, int err, const char *what)
{
    gr__ssl_error_text(ctx->err, sizeof ctx->err, what);
    errno = err;
    return -1;
}

const char *gr_tls_ctx_error(const gr_tls_ctx *ctx)
{
    return ctx ? ctx->err : "";
}

/* ------------------------------------------------------- certificates */

/* The certificate a server presents for the client's SNI name: the first
 * whose names match it, else the first added (already on the SSL_CTX). */
static int cert_cb(SSL *ssl, void *arg)
{
    gr_tls_ctx *ctx = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    if (!name || ctx->ncerts < 2)
        return 1;
    for (size_t i = 0; i < ctx->ncerts; i++) {
        gr__ssl_cert *c = &ctx->certs[i];

        if (X509_check_host(c->leaf, name, 0, 0, NULL) == 1)
            return i == 0 || SSL_use_cert_and_key(ssl, c->leaf, c->key, c->chain, 1) == 1;
    }
    return 1;
}

static void cert_free(gr__ssl_cert *c)
{
    X509_free(c->leaf);
    EVP_PKEY_free(c->key);
    sk_X509_pop_free(c->chain, X509_free);
}

/* Read a leaf and the chain after it from chain_bio, the key from key_bio.
 * The names say what failed in errors. */
static int cert_read(gr_tls_ctx *ctx, BIO *chain_bio, const char *chain_name, BIO *key_bio,
                     const char *key_name, gr__ssl_cert *c)
{
    X509 *x;
    char what[160];

    *c = (gr__ssl_cert){NULL, NULL, NULL};
    ERR_clear_error();
    if (!(c->leaf = PEM_read_bio_X509(chain_bio, NULL, NULL, NULL))) {
        snprintf(what, sizeof what, "%s: no certificate", chain_name);
        return ctx_fail(ctx, EINVAL, what);
    }
    if (!(c->chain = sk_X509_new_null()))
        return ctx_fail(ctx, ENOMEM, chain_name);
    while ((x = PEM_read_bio_X509(chain_bio, NULL, NULL, NULL)))
        if (!sk_X509_push(c->chain, x)) {
            X509_free(x);
            return ctx_fail(ctx, ENOMEM, chain_name);
        }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    if (!(c->key = PEM_read_bio_PrivateKey(key_bio, NULL, NULL, NULL))) {
        snprintf(what, sizeof what, "%s: no private key", key_name);
        return ctx_fail(ctx, EINVAL, what);
    }
    if (X509_check_private_key(c->leaf, c->key) != 1) {
        snprintf(what, sizeof what, "%s does not match %s", key_name, chain_name);
        return ctx_fail(ctx, EINVAL, what);
    }
    return 0;
}

/* Take c into ctx: the first becomes the SSL_CTX's own (the default). */
static int cert_add(gr_tls_ctx *ctx, gr__ssl_cert *c)
{
    gr__ssl_cert *grown = gr__realloc(ctx->certs, (ctx->ncerts + 1) * sizeof *grown);

    if (!grown) {
        errno = ENOMEM;
        return -1;
    }
    ctx->certs = grown;
    if (ctx->ncerts == 0 && SSL_CTX_use_cert_and_key(ctx->ssl, c->leaf, c->key, c->chain, 1) != 1)
        return ctx_fail(ctx, EINVAL, "certificate");
    ctx->certs[ctx->ncerts++] = *c;
    return 0;
}

static int cert_add_bios(gr_tls_ctx *ctx, BIO *chain, const char *chain_name, BIO *key,
                         const char *key_name)
{
    gr__ssl_cert c;

    if (cert_read(ctx, chain, chain_name, key, key_name, &c) != 0 || cert_add(ctx, &c) != 0) {
        int err = errno;

        cert_free(&c);
        errno = err;
        return -1;
    }
    return 0;
}

/* A file's BIO, or NULL with the reason recorded (the file and errno's
 * words: OpenSSL's own "system library" says less). */
static BIO *open_file(gr_tls_ctx *ctx, const char *path)
{
    BIO *b = BIO_new_file(path, "r");

    if (!b) {
        int err = errno;

        ERR_clear_error();
        join_text(ctx->err, sizeof ctx->err, path, strerror(err ? err : EINVAL));
        errno = err == ENOMEM ? ENOMEM : EINVAL;
    }
    return b;
}

int gr_tls_ctx_add_cert_file(gr_tls_ctx *ctx, const char *chain_file, const char *key_file)
{
    BIO *chain = NULL, *key = NULL;
    int rc = -1;

    if (!ctx || !chain_file || !key_file) {
        errno = EINVAL;
        return -1;
    }
    if ((chain = open_file(ctx, chain_file)) && (key = open_file(ctx, key_file)))
        rc = cert_add_bios(ctx, chain, chain_file, key, key_file);
    BIO_free(chain);
    BIO_free(key);
    return rc;
}

int gr_tls_ctx_add_cert_mem(gr_tls_ctx *ctx, const char *chain_pem, size_t chain_len,
                            const char *key_pem, size_t key_len)
{
    BIO *chain, *key;
    int rc = -1;

    if (!ctx || !chain_pem || !key_pem || chain_len > INT_MAX || key_len > INT_MAX) {
        errno = EINVAL;
        return -1;
    }
    chain = BIO_new_mem_buf(chain_pem, (int)chain_len);
    key = BIO_new_mem_buf(key_pem, (int)key_len);
    if (chain && key)
        rc = cert_add_bios(ctx, chain, "certificate", key, "key");
    else
        errno = ENOMEM;
    BIO_free(chain);
    BIO_free(key);
    return rc;
}

/* ------------------------------------------------------- verification */

int gr_tls_ctx_load_ca(gr_tls_ctx *ctx, const char *file, const char *dir)
{
    X509_STORE *store;
    char what[300];

    if (!ctx || (!file && !dir)) {
        errno = EINVAL;
        return -1;
    }
    /* In place of the system bundle: a fresh store. */
    if (!(store = X509_STORE_new())) {
        errno = ENOMEM;
        return -1;
    }
    SSL_CTX_set_cert_store(ctx->ssl, store);
    ERR_clear_error();
    if (SSL_CTX_load_verify_locations(ctx->ssl, file, dir) != 1) {
        snprintf(what, sizeof what, "%s%s%s", file ? file : "", file && dir ? ", " : "",
                 dir ? dir : "");
        return ctx_fail(ctx, EINVAL, what);
    }
    return 0;
}

int gr_tls_ctx_set_verify(gr_tls_ctx *ctx, int mode)
{
    int flags;

    if (!ctx || (mode != GR_TLS_VERIFY_NONE && mode != GR_TLS_VERIFY_PEER)) {
        errno = EINVAL;
        return -1;
    }
    flags = mode == GR_TLS_VERIFY_NONE ? SSL_VERIFY_NONE : SSL_VERIFY_PEER;
    if (ctx->role == GR_TLS_SERVER && mode == GR_TLS_VERIFY_PEER)
        flags |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx->ssl, flags, NULL);
    return 0;
}

static int version_ok(int v)
{
    return v == 0 || v == GR_TLS_1_2 || v == GR_TLS_1_3;
}

int gr_tls_ctx_set_versions(gr_tls_ctx *ctx, int min, int max)
{
    if (!ctx || !version_ok(min) || !version_ok(max) || (min && max && min > max)) {
        errno = EINVAL;
        return -1;
    }
    if (SSL_CTX_set_min_proto_version(ctx->ssl, min ? min : TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx->ssl, max) != 1) {
        ERR_clear_error();
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- ALPN */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    gr_tls_ctx *ctx = arg;
    unsigned char *chosen;

    (void)ssl;
    if (SSL_select_next_proto(&chosen, outlen, ctx->alpn, (unsigned)ctx->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* as Go: no_application_protocol */
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

int gr_tls_ctx_set_alpn(gr_tls_ctx *ctx, const char *const *protos, size_t n)
{
    size_t len = 0;
    unsigned char *wire, *o;

    if (!ctx || !protos || n == 0) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t l = protos[i] ? strlen(protos[i]) : 0;

        if (l == 0 || l > 255) {
            errno = EINVAL;
            return -1;
        }
        len += 1 + l;
    }
    if (len > 65535 || !(wire = gr__malloc(len))) {
        errno = len > 65535 ? EINVAL : ENOMEM;
        return -1;
    }
    o = wire;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(protos[i]);

        *o++ = (unsigned char)l;
        memcpy(o, protos[i], l);
        o += l;
    }
    if (ctx->role == GR_TLS_CLIENT && SSL_CTX_set_alpn_protos(ctx->ssl, wire, (unsigned)len) != 0) {
        free(wire);
        errno = ENOMEM;
        return -1;
    }
    free(ctx->alpn);
    ctx->alpn = wire;
    ctx->alpn_len = len;
    if (ctx->role == GR_TLS_SERVER)
        SSL_CTX_set_alpn_select_cb(ctx->ssl, alpn_select, ctx);
    return 0;
}

/* ------------------------------------------------------- ticket keys */

/* Key the ticket's cipher (AES-256-CBC) and MAC (HMAC-SHA256). */
static int ticket_init(const gr__ssl_ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                       EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof k->hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };

    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    if (enc)
        return EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1 ? 0 : -1;
    return EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1 ? 0 : -1;
}

/* OpenSSL's ticket callback: 1 sealed, 2 opened and to be renewed, 0 not
 * ours (full handshake), -1 failure. Every resumption renews: OpenSSL's
 * clients use a TLS 1.3 ticket once, so a server that renewed only
 * tickets of older keys (OpenSSL's own default) would make every other
 * handshake a full one. Go's servers renew too. */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    gr_tls_ctx *ctx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    gr__ssl_ticket_key k;
    int found = -1;

    pthread_mutex_lock(&ctx->lock);
    if (enc && ctx->nkeys > 0) {
        found = 0;
    } else {
        for (size_t i = 0; i < ctx->nkeys && found < 0; i++)
            if (!memcmp(ctx->keys[i].name, name, 16))
                found = (int)i;
    }
    if (found >= 0)
        k = ctx->keys[found];
    pthread_mutex_unlock(&ctx->lock);

    if (found < 0)
        return enc ? -1 : 0;
    if (enc) {
        memcpy(name, k.name, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            found = -2;
    }
    if (found >= -1 && ticket_init(&k, iv, cctx, hctx, enc) != 0)
        found = -2;
    OPENSSL_cleanse(&k, sizeof k);
    if (found == -2)
        return -1;
    return enc ? 1 : 2;
}

int gr_tls_ctx_set_ticket_keys(gr_tls_ctx *ctx, const void *keys, size_t len)
{
    size_t n = len / GR_TLS_TICKET_KEY_SIZE;
    gr__ssl_ticket_key *fresh, *old;
    size_t nold;
    const unsigned char *p = keys;

    if (!ctx || !keys || n == 0 || len % GR_TLS_TICKET_KEY_SIZE || ctx->role != GR_TLS_SERVER) {
        errno = EINVAL;
        return -1;
    }
    if (!(fresh = gr__calloc(n, sizeof *fresh))) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < n; i++, p += GR_TLS_TICKET_KEY_SIZE) {
        memcpy(fresh[i].name, p, 16);
        memcpy(fresh[i].hmac, p + 16, 32);
        memcpy(fresh[i].aes, p + 48, 32);
    }
    pthread_mutex_lock(&ctx->lock);
    old = ctx->keys;
    nold = ctx->nkeys;
    ctx->keys = fresh;
    ctx->nkeys = n;
    pthread_mutex_unlock(&ctx->lock);
    if (old)
        OPENSSL_cleanse(old, nold * sizeof *old);
    free(old);
    return 0;
}

/* ------------------------------------------------ client session cache */

void gr__ssl_cache_put(gr_tls_ctx *ctx, const char *host, SSL_SESSION *sess)
{
    gr__ssl_cached *slot = NULL;
    SSL_SESSION *old;

    pthread_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < GR__SSL_SESSION_CACHE && !slot; i++)
        if (ctx->cache[i].host && !strcmp(ctx->cache[i].host, host))
            slot = &ctx->cache[i];
    if (!slot) {
        slot = &ctx->cache[ctx->cache_next];
        ctx->cache_next = (ctx->cache_next + 1) % GR__SSL_SESSION_CACHE;
        free(slot->host);
        if (!(slot->host = gr__strdup(host))) {
            SSL_SESSION_free(slot->sess);
            slot->sess = NULL;
            SSL_SESSION_free(sess);
            pthread_mutex_unlock(&ctx->lock);
            return;
        }
    }
    old = slot->sess;
    slot->sess = sess;
    pthread_mutex_unlock(&ctx->lock);
    SSL_SESSION_free(old);
}

void gr__ssl_cache_offer(gr_tls_ctx *ctx, const char *host, SSL *ssl)
{
    if (ctx->no_cache)
        return;
    pthread_mutex_lock(&ctx->lock);
    for (size_t i = 0; i < GR__SSL_SESSION_CACHE; i++)
        if (ctx->cache[i].host && ctx->cache[i].sess && !strcmp(ctx->cache[i].host, host)) {
            SSL_set_session(ssl, ctx->cache[i].sess);
            break;
        }
    pthread_mutex_unlock(&ctx->lock);
}

int gr_tls_ctx_set_session_cache(gr_tls_ctx *ctx, int on)
{
    if (!ctx || ctx->role != GR_TLS_CLIENT) {
        errno = EINVAL;
        return -1;
    }
    ctx->no_cache = !on;
    return 0;
}

/* OpenSSL hands each new client session here (TLS 1.3: after the
 * handshake, with the server's tickets). Returns 1: the reference is
 * kept. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    gr_tls *t = SSL_get_app_data(ssl);

    if (!t || !t->host || t->ctx->no_cache || !SSL_SESSION_is_resumable(sess))
        return 0;
    gr__ssl_cache_put(t->ctx, t->host, sess);
    return 1;
}

/* ------------------------------------------------------------ context */

/* Until the caller sets keys: one of this context's own. */
static int random_ticket_key(gr_tls_ctx *ctx)
{
    unsigned char k[GR_TLS_TICKET_KEY_SIZE];
    int rc = -1;

    if (RAND_bytes(k, sizeof k) == 1)
        rc = gr_tls_ctx_set_ticket_keys(ctx, k, sizeof k);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

static int configure(gr_tls_ctx *ctx)
{
    SSL_CTX *s = ctx->ssl;

    SSL_CTX_set_app_data(s, ctx);
    if (SSL_CTX_set_min_proto_version(s, TLS1_2_VERSION) != 1)
        return -1;
    /* Renegotiation only ever served attacks on TLS 1.2; a hostile peer
     * asking for it gets an alert. */
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Partial writes: gr_tls_write counts every record sent. Moving buffer:
     * a write retried after WANT_WRITE may come from another address (the
     * HTTP layer's gathered buffers). Release buffers: an idle connection
     * holds no 34 KiB of record buffers. */
    SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    /* Read what the socket has, not a record header then its body: a third
     * of the recv calls of a handshake (nginx does the same). Bytes read
     * ahead are what SSL_has_pending reports; gr_tls_read never waits
     * before asking SSL_read, so it never misses them. */
    SSL_CTX_set_read_ahead(s, 1);
    if (ctx->role == GR_TLS_CLIENT) {
        SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_set_default_verify_paths(s) != 1)
            return -1;
        SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(s, new_session_cb);
    } else {
        /* Stateless: tickets carry the sessions, so a server keeps no
         * cache to grow and every worker given the same keys resumes. */
        SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(s, 1);
        SSL_CTX_set_session_id_context(s, (const unsigned char *)"grove", 5);
        SSL_CTX_set_cert_cb(s, cert_cb, ctx);
        if (random_ticket_key(ctx) != 0)
            return -1;
        SSL_CTX_set_tlsext_ticket_key_evp_cb(s, ticket_cb);
    }
    return 0;
}

gr_tls_ctx *gr_tls_ctx_new(int role)
{
    gr_tls_ctx *ctx;

    if (role != GR_TLS_CLIENT && role != GR_TLS_SERVER) {
        errno = EINVAL;
        return NULL;
    }
    if (!(ctx = gr__calloc(1, sizeof *ctx))) {
        errno = ENOMEM;
        return NULL;
    }
    ctx->role = role;
    atomic_init(&ctx->refs, 1);
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->ssl = SSL_CTX_new(role == GR_TLS_CLIENT ? TLS_client_method() : TLS_server_method());
    if (!ctx->ssl || configure(ctx) != 0) {
        ERR_clear_error();
        gr_tls_ctx_free(ctx);
        errno = ENOMEM;
        return NULL;
    }
    return ctx;
}

void gr__ssl_ctx_ref(gr_tls_ctx *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
}

void gr_tls_ctx_free(gr_tls_ctx *ctx)
{
    if (!ctx || atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(ctx->ssl);
    for (size_t i = 0; i < ctx->ncerts; i++)
        cert_free(&ctx->certs[i]);
    free(ctx->certs);
    for (size_t i = 0; i < GR__SSL_SESSION_CACHE; i++) {
        free(ctx->cache[i].host);
        SSL_SESSION_free(ctx->cache[i].sess);
    }
    if (ctx->keys)
        OPENSSL_cleanse(ctx->keys, ctx->nkeys * sizeof *ctx->keys);
    free(ctx->keys);
    free(ctx->alpn);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}
