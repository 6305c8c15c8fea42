/* The response parser of grove-load: streaming and minimal, but strict
 * about framing.
 *
 * It reads what decides where a response ends and whether the connection
 * can be reused (status line, Content-Length, Transfer-Encoding,
 * Connection) and the Server header when asked, and skips the rest: bodies
 * are counted, never copied. Bytes are fed as they come, in pieces of any
 * size, so a worker can read every connection into one shared buffer: the
 * only state kept between reads is this struct, plus a copy of a line
 * split across two reads (rare: allocated on demand, and reused).
 *
 * Framing follows RFC 9112: no body for HEAD, 1xx, 204 and 304; interim
 * 1xx responses (not 101) are skipped; chunked when it is the last
 * transfer coding (it then overrides Content-Length); otherwise
 * Content-Length; otherwise the body ends when the server closes.
 *
 * Why not grove's own head parser (src/http/head.c, which the HTTP server
 * and client share)? Three reasons. Speed: grove-load must parse faster
 * than the servers it loads can answer, and grove's parser, built for
 * fields a handler reads (every field located, checked and NUL-terminated
 * in place by llhttp), costs 2.5 to 2.8 times as much per response as this
 * one, which looks at four fields and skips the rest: 351 ns against 140
 * for seed-server's response, 749 against 268 for an nginx-like head of
 * nine fields, 544 against 351 for a chunked body of eight chunks
 * (build/bin/grove-head-parse --runs 5, medians, one core of the shared
 * 2-core machine, 2026-12; each figure includes copying the response into
 * a writable buffer, as grove's parser needs). Reading: grove's parser
 * needs a head whole in one buffer per connection, where grove-load reads
 * every connection of a worker into one shared buffer and keeps only this
 * struct between reads. Layers: a tool uses the public API only, and the
 * head parser is internal. */
#ifndef GROVE_LOAD_RESP_H
#define GROVE_LOAD_RESP_H

#include <stddef.h>
#include <stdint.h>

/* Limits: a longer head, chunk-size line or trailer section is refused. */
#define GL_RESP_MAX_HEAD (64 * 1024)
#define GL_RESP_MAX_LINE (16 * 1024)

enum { GL_RESP_MORE, GL_RESP_DONE, GL_RESP_BAD };

typedef struct gl_resp {
    uint8_t state;
    uint8_t head_only; /* the request was HEAD */
    uint8_t chunked;   /* the last transfer coding is chunked */
    uint8_t has_len;   /* 1: Content-Length; 2: Transfer-Encoding (wins) */
    uint8_t conn_close, conn_keepalive, seen_status;
    int status;          /* of the final response */
    int version;         /* 10 or 11 */
    uint64_t len;        /* Content-Length */
    uint64_t remaining;  /* body (or chunk) bytes still to skip */
    uint64_t body;       /* payload bytes seen */
    uint32_t head_bytes; /* head (and trailer) bytes so far, against the limit */
    uint32_t carry_len, carry_cap;
    char *carry;  /* a line split across reads */
    char *server; /* if not NULL: receives the Server header */
    size_t server_cap;
} gl_resp;

/* Get ready for the next response (keeps the carry buffer). */
void gl_resp_begin(gl_resp *r, int head_only);

/* Feed n bytes. GL_RESP_MORE: all were consumed and more are needed;
 * GL_RESP_DONE: the response ended after *used bytes (the rest, if any,
 * came unasked for); GL_RESP_BAD: not a valid response. */
int gl_resp_feed(gl_resp *r, const char *p, size_t n, size_t *used);

/* The server closed: GL_RESP_DONE if that ends the body (no length given),
 * else GL_RESP_MORE (the response was cut short). */
int gl_resp_eof(gl_resp *r);

/* After GL_RESP_DONE: may the connection carry another request? */
int gl_resp_reusable(const gl_resp *r);

/* Nothing of a response has been fed yet. */
int gl_resp_empty(const gl_resp *r);

void gl_resp_free(gl_resp *r);

#endif
