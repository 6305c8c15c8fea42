/* grove/tls.h: TLS streams for green threads, on OpenSSL (docs/tls.md).
 *
 * A context (gr_tls_ctx) holds what many connections share: certificates
 * and keys, the trusted CAs, verification, ALPN, session-ticket keys and
 * the client's session cache. A stream (gr_tls) runs TLS over one
 * connected grove socket; each of its calls takes an absolute deadline and
 * parks the green thread while OpenSSL waits for the socket, so thousands
 * of TLS connections share one OS thread.
 *
 *   gr_tls_ctx *ctx = gr_tls_ctx_new(GR_TLS_CLIENT);   // system CAs, verify on
 *   int fd = gr_tcp_connect("example.org", 443, deadline);
 *   gr_tls *t = gr_tls_new(ctx, fd, "example.org");    // SNI + host check
 *   gr_tls_write(t, req, len, NULL, deadline);         // handshakes first
 *   n = gr_tls_read(t, buf, sizeof buf, deadline);
 *   gr_tls_shutdown(t, deadline); gr_tls_free(t); gr_close(fd);
 *   gr_tls_ctx_free(ctx);
 *
 * Defaults, as Go's crypto/tls and nginx users expect: TLS 1.2 at least;
 * OpenSSL's cipher suites; a client verifies the server's chain against
 * the system CA bundle and checks the host name; a server asks no client
 * certificate; stateless session tickets (per-context random keys unless
 * set) and, on clients, a cache of one session per host name.
 *
 * This header includes <grove.h>, whose conventions hold: -1 (or NULL) and
 * errno; deadlines in ms on the gr_now() clock (-1: none, 0 or past: try
 * once). The errors particular to TLS:
 *   EPROTO       the peer broke the protocol, sent an alert, or the
 *                handshake failed (no shared version, cipher or ALPN...)
 *   EKEYREJECTED the peer's certificate failed verification (untrusted,
 *                expired, wrong host name)
 *   ECONNRESET   the peer closed the TCP connection without close_notify
 *                (a truncated stream), or reset it
 * gr_tls_error() and gr_tls_ctx_error() give OpenSSL's reason in words. */
#ifndef GROVE_TLS_H
#define GROVE_TLS_H

#include <grove.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_tls_ctx gr_tls_ctx;
typedef struct gr_tls gr_tls;

/* gr_tls_ctx_new's role. */
#define GR_TLS_CLIENT 1
#define GR_TLS_SERVER 2

/* gr_tls_ctx_set_verify's modes. */
#define GR_TLS_VERIFY_NONE 0 /* clients: accept any certificate (tests only) */
#define GR_TLS_VERIFY_PEER 1 /* clients: the default; servers: require a client certificate */

/* Protocol versions (gr_tls_ctx_set_versions), as on the wire. */
#define GR_TLS_1_2 0x0303
#define GR_TLS_1_3 0x0304

/* The size of one session-ticket key (gr_tls_ctx_set_ticket_keys): 16
 * bytes of name, 32 of HMAC-SHA256 secret, 32 of AES-256 key, as nginx's
 * ssl_session_ticket_key files (`openssl rand 80`). */
#define GR_TLS_TICKET_KEY_SIZE 80

/* ------------------------------------------------------------- context */

/* A context for clients (GR_TLS_CLIENT: the system CA bundle loaded,
 * verification and host-name checks on) or servers (GR_TLS_SERVER: add a
 * certificate before the first handshake). Minimum version TLS 1.2. The
 * caller owns the context and frees it with gr_tls_ctx_free; streams keep
 * it alive while they exist (it is reference-counted), so it may be freed
 * while they run. Configure it before sharing it; once configured it may
 * be used by any number of streams on any OS threads (ticket keys may be
 * replaced at any time). Returns NULL with EINVAL (role) or ENOMEM. */
GR_API gr_tls_ctx *gr_tls_ctx_new(int role);

/* Drop the caller's reference; the context goes when its last stream
 * does. NULL is accepted. */
GR_API void gr_tls_ctx_free(gr_tls_ctx *ctx);

/* Why the context's last failed call failed, in words ("cert.pem: no such
 * file", "key.pem: key values mismatch"): OpenSSL's reason with the file
 * it concerns. "" when none has failed. Valid until the next call on ctx. */
GR_API const char *gr_tls_ctx_error(const gr_tls_ctx *ctx);

/* Add a certificate chain (PEM: the leaf first, then intermediates) and
 * its private key (PEM), from files. A server presents the first
 * certificate added unless the client's SNI name matches another (its
 * subjectAltName DNS names, wildcards included, or else its CN), in the
 * order added: several certificates make name-based virtual hosts. A
 * client presents the first when the server asks for one. Returns 0, or -1
 * with EINVAL (the file cannot be read or parsed, or the key does not
 * match the certificate: gr_tls_ctx_error names the file and why) or
 * ENOMEM. The files are read during the call. */
GR_API int gr_tls_ctx_add_cert_file(gr_tls_ctx *ctx, const char *chain_file, const char *key_file);

/* The same from PEM text in memory (len bytes each; the text is copied).
 * Errors name "certificate" and "key" instead of files. */
GR_API int gr_tls_ctx_add_cert_mem(gr_tls_ctx *ctx, const char *chain_pem, size_t chain_len,
                                   const char *key_pem, size_t key_len);

/* Trust the CAs of file (PEM, one or more certificates) and/or of the
 * hashed directory dir (either may be NULL), in place of the system bundle
 * a client context starts with. For clients: the server's roots; for a
 * server that verifies its clients: their roots. Returns 0, or -1 with
 * EINVAL (unreadable: gr_tls_ctx_error says which and why) or ENOMEM. */
GR_API int gr_tls_ctx_load_ca(gr_tls_ctx *ctx, const char *file, const char *dir);

/* GR_TLS_VERIFY_NONE or GR_TLS_VERIFY_PEER (see above). Returns 0 or
 * -1/EINVAL. */
GR_API int gr_tls_ctx_set_verify(gr_tls_ctx *ctx, int mode);

/* The lowest and highest protocol versions (GR_TLS_1_2, GR_TLS_1_3; 0:
 * the default, TLS 1.2 and the highest OpenSSL knows). Versions below 1.2
 * are refused. Returns 0 or -1/EINVAL. */
GR_API int gr_tls_ctx_set_versions(gr_tls_ctx *ctx, int min, int max);

/* The application protocols (ALPN, "h2", "http/1.1"), n of them, most
 * preferred first; each 1 to 255 bytes. A client offers them; a server
 * picks the first of its own that the client offers, and fails the
 * handshake (EPROTO, alert no_application_protocol) when the client
 * offers protocols but none of these; a client that offers none is
 * served. The strings are copied. Returns 0, or -1 with EINVAL or ENOMEM. */
GR_API int gr_tls_ctx_set_alpn(gr_tls_ctx *ctx, const char *const *protos, size_t n);

/* Servers: the session-ticket keys, n keys of GR_TLS_TICKET_KEY_SIZE bytes
 * in keys (len = n * 80). The first key seals new tickets; every key opens
 * them, and a ticket opened with another than the first is renewed. To
 * rotate, call again with the new key first and the previous ones after
 * it; every process given the same keys (the workers of a supervisor, a
 * reloaded server) resumes the others' sessions. Without a call, tickets
 * use random keys of this context, valid for its lifetime. Thread-safe
 * against running handshakes. The bytes are copied (and wiped when
 * replaced). Returns 0, or -1 with EINVAL (len 0 or not a multiple of 80,
 * or a client context) or ENOMEM. */
GR_API int gr_tls_ctx_set_ticket_keys(gr_tls_ctx *ctx, const void *keys, size_t len);

/* Clients: keep and offer sessions for resumption (on, the default), or
 * not (off: every handshake is a full one, as ab and Go's default client
 * do). Returns 0, or -1/EINVAL for a server context. */
GR_API int gr_tls_ctx_set_session_cache(gr_tls_ctx *ctx, int on);

/* ------------------------------------------------------------- streams */

/* A TLS stream over the connected socket fd (non-blocking, as grove's
 * sockets are; it is made so, and TCP_NODELAY is set on it: Nagle would
 * hold the handshake's flights and the first data behind delayed ACKs). host: for a client, the
 * server's name, sent as SNI (unless it is an IP address) and checked against the certificate (a
 * name or an IP literal); NULL only when verification is off. Servers pass NULL. A client context's
 * cached session for host is offered, for resumption. fd stays the caller's: close it after
 * gr_tls_free. The stream holds a reference on ctx. Nothing is sent yet:
 * the handshake happens on gr_tls_handshake or the first read or write.
 * Returns NULL with EINVAL (fd < 0, host missing or invalid for a
 * verifying client, a server context without a certificate) or ENOMEM. */
GR_API gr_tls *gr_tls_new(gr_tls_ctx *ctx, int fd, const char *host);

/* Free the stream (without a close_notify: see gr_tls_shutdown). Does not
 * close fd. NULL is accepted. */
GR_API void gr_tls_free(gr_tls *t);

/* Complete the handshake (at once if it is done). Returns 0, or -1 with
 * errno: ETIMEDOUT, ECANCELED, EPROTO, EKEYREJECTED, ECONNRESET, EPIPE,
 * ENOMEM; gr_tls_error says why in words. After a failure the stream can
 * only be freed. */
GR_API int gr_tls_handshake(gr_tls *t, int64_t deadline);

/* Read up to len decrypted bytes (handshaking first if needed): > 0, 0
 * when the peer ended the stream with close_notify, or -1 with errno as
 * gr_tls_handshake (ECONNRESET: the TCP stream ended without
 * close_notify: what came before it may be truncated). Bytes OpenSSL has
 * already decrypted are returned without waiting. */
GR_API ssize_t gr_tls_read(gr_tls *t, void *buf, size_t len, int64_t deadline);

/* Write all len bytes (handshaking first if needed). Returns 0, or -1
 * with errno as gr_tls_handshake (and EPIPE). If done is not NULL it
 * receives how many bytes were sent, on success or failure. buf stays
 * the caller's. A write that failed with ETIMEDOUT or ECANCELED may be
 * retried with the rest of the bytes; after other errors the stream can
 * only be freed. */
GR_API int gr_tls_write(gr_tls *t, const void *buf, size_t len, size_t *done, int64_t deadline);

/* Send close_notify, telling the peer the stream ends here (without it a
 * careful peer sees a truncation), and return without waiting for the
 * peer's own. Returns 0, or -1 with errno (ETIMEDOUT, ECANCELED, EPIPE,
 * ECONNRESET...). A stream whose handshake never completed returns 0 and
 * sends nothing. */
GR_API int gr_tls_shutdown(gr_tls *t, int64_t deadline);

/* Why the stream's last call failed, in words (OpenSSL's reason, or the
 * verification failure: "certificate verify failed: hostname mismatch").
 * "" if none failed. Valid until the next call on t. */
GR_API const char *gr_tls_error(const gr_tls *t);

/* After the handshake: the protocol ALPN chose (NULL: none), the version
 * ("TLSv1.3"), the SNI name a client sent (servers; NULL: none), and
 * whether the session was resumed (1) rather than fully negotiated (0).
 * Strings live as long as the stream. */
GR_API const char *gr_tls_alpn(const gr_tls *t);
GR_API const char *gr_tls_version(const gr_tls *t);
GR_API const char *gr_tls_server_name(const gr_tls *t);
GR_API int gr_tls_resumed(const gr_tls *t);

#ifdef __cplusplus
}
#endif

#endif
