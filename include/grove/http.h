/* grove/http.h: grove's HTTP/1.1 server and client (docs/http.md,
 * docs/http-client.md).
 *
 * An HTTP/1.1 server in the spirit of gevent's WSGI server, on llhttp:
 * keep-alive, pipelining (responses in order), chunked bodies both ways,
 * Expect: 100-continue, HEAD, limits and time-outs. A handler gets the
 * parsed request and answers with one call for a whole response, or
 * streams one:
 *
 *   static int hello(gr_http_request *req, void *arg)
 *   {
 *       static const gr_http_header h[] = {{"Content-Type", "text/plain"}};
 *       return gr_http_respond(req, 200, h, 1, "hello\n", 6, -1);
 *   }
 *
 * This header includes <grove.h>, whose conventions hold here too: -1 (or
 * NULL) and errno; every blocking call takes an absolute deadline in ms on
 * the gr_now() clock (-1: none, 0 or past: try once). A handler's calls
 * also obey the server's own time-outs: each fails with ETIMEDOUT at the
 * earlier of its deadline and the server's limit, so -1 leaves only the
 * server's limits. */
#ifndef GROVE_HTTP_H
#define GROVE_HTTP_H

#include <grove.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gr_http_header {
    const char *name;
    const char *value;
} gr_http_header;

/* A request, valid until the handler returns (strings point into the
 * connection's buffer; copy what must outlive the handler). */
typedef struct gr_http_request {
    const char *method;            /* "GET", "POST", ... */
    const char *target;            /* the request-target, as sent */
    const char *path;              /* target up to '?', not percent-decoded */
    const char *query;             /* after '?'; "" if none */
    int version;                   /* 10 or 11 (others are refused with 505) */
    const gr_http_header *headers; /* as received, values trimmed */
    size_t nheaders;
    int64_t content_length; /* -1 when none was sent (or chunked) */
    int chunked;            /* the body comes chunked */
    int keep_alive;         /* the connection stays open afterwards */
    const gr_addr *peer;
    void *conn_; /* private */
} gr_http_request;

/* A handler: 0 when it has answered, -1 on failure: then the server
 * answers 500 if no response was begun, or else closes the connection. A
 * handler that returns 0 without answering gets a 500 too. */
typedef int (*gr_http_handler)(gr_http_request *req, void *arg);

/* The value of the first header named name (case-insensitive), or NULL. */
GR_API const char *gr_http_header_get(const gr_http_request *req, const char *name);

/* Read up to len bytes of the request body (de-chunked). Returns the count,
 * 0 at its end, or -1 with errno: EMSGSIZE when the body as sent (chunk
 * framing, extensions and trailers included) exceeds the server's max_body
 * (the server then answers 413 and closes), ETIMEDOUT (deadline, or the
 * server's body_timeout_ms, which bounds the whole body), ECONNRESET or
 * EPIPE (the client went away), EPROTO (malformed chunking), ECANCELED.
 * After an error the connection is closed once the handler returns; after
 * EMSGSIZE or EPROTO every later call fails the same way. The first call
 * answers "Expect: 100-continue" with 100 Continue. */
GR_API ssize_t gr_http_read_body(gr_http_request *req, void *buf, size_t len, int64_t deadline);

/* Answer with a whole response: status, headers (NULL/0 for none) and
 * body. The server owns the framing: it adds Date, Content-Length or
 * Transfer-Encoding, and Connection; a handler's Content-Length,
 * Transfer-Encoding or Connection is refused, except "Connection: close",
 * which makes the server close after this response (and say so once). It
 * sends no body for HEAD, and writes everything in one system call where
 * it fits. headers and body stay the caller's. Returns 0, or -1 with
 * errno: EINVAL (status outside 200-999: interim 1xx answers are the
 * server's; a header name that is not a token or a value with a control
 * character other than tab; a refused framing field; a response already
 * begun), EMSGSIZE (headers
 * over the server's 4 KiB response head), ETIMEDOUT (deadline or
 * write_timeout_ms: the connection is then closed), EPIPE/ECONNRESET,
 * ECANCELED. */
GR_API int gr_http_respond(gr_http_request *req, int status, const gr_http_header *headers,
                           size_t nheaders, const void *body, size_t len, int64_t deadline);

/* Begin a streamed response: length >= 0 announces a Content-Length
 * (exactly that many bytes must follow); -1 streams with chunked encoding
 * (HTTP/1.1) or until the connection closes (HTTP/1.0). Errors as
 * gr_http_respond. */
GR_API int gr_http_begin(gr_http_request *req, int status, const gr_http_header *headers,
                         size_t nheaders, int64_t length, int64_t deadline);
/* Send part of the body of a begun response (len 0 does nothing). Errors:
 * EINVAL (not begun, or more than the announced length), ETIMEDOUT,
 * EPIPE, ECONNRESET, ECANCELED. */
GR_API int gr_http_send(gr_http_request *req, const void *data, size_t len, int64_t deadline);
/* Finish a begun response. EINVAL if fewer bytes than announced were
 * sent (the connection is then closed); the errors of a send. */
GR_API int gr_http_end(gr_http_request *req, int64_t deadline);

/* Server limits and time-outs; zero-initialise: 0 picks the default. */
typedef struct gr_http_opts {
    size_t max_connections;    /* handled at once (gevent's spawn=N); default unbounded */
    size_t max_header_bytes;   /* request line + headers; 8192; over: 431 */
    size_t max_headers;        /* 100; over: 431 */
    uint64_t max_body;         /* 16 MiB, as sent (chunk framing included); over: 413 */
    int64_t header_timeout_ms; /* from a request's first byte to its last header: 10 s; then 408 */
    int64_t
        idle_timeout_ms; /* wait for a request (a new connection's first too): 60 s; then close */
    int64_t body_timeout_ms;  /* from the end of the head to the end of the body: 30 s */
    int64_t write_timeout_ms; /* each response call's writes: 30 s */
    FILE *access_log;         /* common log format; NULL: off (the default) */
    size_t stack_size;        /* of connection threads; 0: the default */
    /* HTTPS: a server context of <grove/tls.h> (GR_TLS_SERVER, with a
     * certificate); the server holds a reference until it is freed. The
     * handshake must end within header_timeout_ms. NULL: plain HTTP. The
     * green-thread server only (the threaded one refuses it: EINVAL); a
     * stack_size under 32 KiB is refused with it (EINVAL). */
    struct gr_tls_ctx *tls;
} gr_http_opts;

typedef struct gr_http_server gr_http_server;

/* An HTTP server on the listening socket fd. handler runs in one green
 * thread per connection. The server owns fd from the call on: it closes
 * it on failure too. A negative fd (a failed gr_tcp_listen, say) fails
 * with NULL and leaves errno as that failure set it (EADDRINUSE...).
 * Returns NULL with EINVAL or ENOMEM. */
GR_API gr_http_server *gr_http_server_new(int fd, gr_http_handler handler, void *arg,
                                          const gr_http_opts *opts);
/* As gr_server_start, gr_server_serve, gr_server_stop (in-flight requests
 * finish until deadline; idle keep-alive connections are closed at once,
 * unless a request is already arriving on one),
 * gr_server_stats_get and gr_server_free. */
GR_API int gr_http_server_start(gr_http_server *s);
GR_API int gr_http_server_serve(gr_http_server *s);
GR_API int gr_http_server_stop(gr_http_server *s, int64_t deadline);
/* Graceful stop for a reload or a supervisor's drain (docs/supervisor.md):
 * stop accepting (the listening socket is closed: the process's copy, so
 * another process sharing it goes on accepting), and end every connection
 * after the request in hand, with Connection: close on its response. An
 * idle keep-alive connection, and a new one that has sent nothing yet,
 * may still send one request until idle_deadline (answered, with close);
 * it is closed then, unless a request is arriving. A FIN on an idle
 * connection can cross a request the client is sending, which then
 * fails; one more response with Connection: close cannot. Requests in
 * flight run until deadline, then are killed as gr_http_server_stop
 * does, which is gr_http_server_drain(s, 0, deadline). Returns as
 * gr_http_server_stop (EINVAL for s NULL, EDEADLK outside a green
 * thread). */
GR_API int gr_http_server_drain(gr_http_server *s, int64_t idle_deadline, int64_t deadline);
GR_API int gr_http_server_stats_get(const gr_http_server *s, gr_server_stats *st);
GR_API int gr_http_server_free(gr_http_server *s);

typedef struct gr_http_threaded gr_http_threaded;

/* The same server with the same handlers, parser and limits, run the
 * classic way: nthreads OS threads, each accepting a connection on fd and
 * serving it with blocking I/O until it closes (the counterpart of Paste's
 * threaded server, the baseline grove is measured against). Owns fd as
 * gr_http_server_new does (closed on failure and by free; a negative fd
 * fails leaving errno), and puts it in blocking mode. No hub is used:
 * handlers must not call grove's blocking functions other than gr_http_*.
 * Several may run in one process. Returns NULL with EINVAL or ENOMEM. */
GR_API gr_http_threaded *gr_http_threaded_new(int fd, gr_http_handler handler, void *arg,
                                              const gr_http_opts *opts, size_t nthreads);
/* Serve on the calling OS thread until gr_http_threaded_stop, then wait
 * for requests in flight and return 0 (at once after a stop: stopping is
 * final). -1 with EBUSY (already serving) or the error of pthread_create
 * (the threads started are stopped first). */
GR_API int gr_http_threaded_serve(gr_http_threaded *s);
/* Make serve return: shuts the listening socket down and ends idle
 * connections; in-flight requests are finished first. Async-signal-safe
 * and callable from any thread, before, during or after serve. */
GR_API void gr_http_threaded_stop(gr_http_threaded *s);
/* Close fd and free s: EBUSY while serve runs. NULL is accepted. */
GR_API int gr_http_threaded_free(gr_http_threaded *s);

/* ------------------------------------------------------------ client */

/* A response read by the client: valid until the next request on the same
 * client (or gr_http_client_free). */
typedef struct gr_http_response {
    int status;
    int version; /* 10 or 11 */
    const gr_http_header *headers;
    size_t nheaders;
    const char *body; /* de-chunked, NUL-terminated for convenience */
    size_t body_len;
} gr_http_response;

typedef struct gr_http_client gr_http_client;

/* A client for one server, host:port (host a name or a numeric address).
 * It connects on the first request and keeps the connection alive across
 * requests while the server allows; it reconnects when the server has
 * closed an idle connection. One request at a time per client. Returns
 * NULL with ENOMEM, or EINVAL (host NULL, empty, or with a space, control
 * character, '/', '?', '#' or '@'; port outside 1..65535). */
GR_API gr_http_client *gr_http_client_new(const char *host, int port);
GR_API void gr_http_client_free(gr_http_client *c);

/* HTTPS: speak TLS to the server, with ctx (a GR_TLS_CLIENT context of
 * <grove/tls.h>; the client holds a reference until it is freed), or,
 * when ctx is NULL, with a context of the client's own with the defaults:
 * the system CAs, the host name checked. The host of gr_http_client_new
 * is the name sent (SNI) and checked; Host omits port 443. Sessions are
 * resumed across reconnections (the context caches them). Call it before
 * the first request. TLS failures come out of gr_http_client_request as
 * in <grove/tls.h>: EKEYREJECTED (verification), EPROTO, ECONNRESET.
 * Returns 0, or -1 with EINVAL (a server context, or the client has
 * connected already) or ENOMEM. */
GR_API int gr_http_client_set_tls(gr_http_client *c, struct gr_tls_ctx *ctx);

/* Send a request (method, target such as "/path?q", optional headers and
 * body) and read the whole response into *res. Host (the caller's
 * replaces it), Content-Length (for a body, or POST/PUT/PATCH) and
 * Connection: keep-alive (unless the caller passes Connection) are added;
 * a caller's Content-Length or Transfer-Encoding is refused. If a reused
 * connection turns out closed before any byte of the response, the client
 * reconnects and resends once, whatever the method (no byte of a response
 * came, so the server did not act on it). Returns 0, or -1 with errno: the
 * connection's (ECONNREFUSED, ECONNRESET, ...), EADDRNOTAVAIL/EAGAIN (name
 * lookup), ETIMEDOUT, ECANCELED, EINVAL (CR/LF in a method, target or
 * header; a refused header), EBUSY (another green thread's request is in
 * flight), EPIPE (response cut short), EPROTO (a malformed response;
 * the client is lenient only where RFC 9112 lets a recipient be: bare LF,
 * obs-fold, see docs/http-client.md), EMSGSIZE (a head over 1 MiB or
 * 10,000 fields, a body over 64 MiB), ENOMEM. On failure
 * *res is zeroed (body ""). The response stays valid until the next
 * request on the client, successful or not. */
GR_API int gr_http_client_request(gr_http_client *c, const char *method, const char *target,
                                  const gr_http_header *headers, size_t nheaders, const void *body,
                                  size_t len, gr_http_response *res, int64_t deadline);
/* The value of the first response header named name (case-insensitive). */
GR_API const char *gr_http_response_header(const gr_http_response *res, const char *name);

#ifdef __cplusplus
}
#endif

#endif
