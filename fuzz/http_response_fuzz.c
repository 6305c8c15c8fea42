/* libFuzzer target for the HTTP client's response parser: the reader of
 * src/http/response.c (the shared head parser in its lenient mode, the
 * chunked decoder), fed from memory as the client feeds it from a socket.
 * Oracles:
 * - what it hands back is well-formed whatever came: field names are
 *   tokens, values have no CR, LF or blank at either end, the body is
 *   NUL-terminated, the status is 100 to 999;
 * - streaming: the response read in the largest pieces the reader takes
 *   and in random small slices gives the same outcome, field for field
 *   and byte for byte (or the same error).
 *
 * The input's first byte: bit 0 the request was HEAD, the rest seeds the
 * slicing; then the bytes the server sends, then the end of the stream.
 * Built and run by scripts/fuzz-http.sh. */
#include "http/http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct outcome {
    int err; /* 0 or the errno */
    gr_http_response res;
} outcome;

/* Read one response from p[0, n), in slices the seed gives (0: as large as
 * the reader takes), then the end of the stream. */
static outcome read_one(gr__http_reader *r, const uint8_t *p, size_t n, int head, uint32_t seed)
{
    outcome o = {0, {0, 0, NULL, 0, NULL, 0}};
    size_t pos = 0;

    gr__http_reader_begin(r, head);
    while (!r->message_done) {
        size_t room, k;
        char *at = gr__http_reader_room(r, &room);

        if (!at) {
            o.err = errno;
            return o;
        }
        if (pos == n) {
            if (gr__http_reader_eof(r) != 0)
                o.err = errno;
            break;
        }
        k = n - pos < room ? n - pos : room;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % (k < 32 ? k : 32);
        }
        memcpy(at, p + pos, k);
        pos += k;
        if (gr__http_reader_got(r, k) != 0) {
            o.err = errno;
            return o;
        }
    }
    if (!o.err)
        gr__http_reader_result(r, &o.res);
    return o;
}

static void check_well_formed(const gr_http_response *res)
{
    if (res->status < 100 || res->status > 999 || (res->version != 10 && res->version != 11) ||
        res->body[res->body_len] != '\0')
        abort();
    for (size_t i = 0; i < res->nheaders; i++) {
        const char *name = res->headers[i].name, *v = res->headers[i].value;
        size_t vn = strlen(v);

        if (!*name)
            abort();
        for (const char *c = name; *c; c++)
            if (!gr__http_tchar((unsigned char)*c))
                abort();
        if (strpbrk(v, "\r\n") ||
            (vn && (v[0] == ' ' || v[0] == '\t' || v[vn - 1] == ' ' || v[vn - 1] == '\t')))
            abort();
    }
}

static int same(const outcome *a, const outcome *b)
{
    if (a->err != b->err)
        return 0;
    if (a->err)
        return 1;
    if (a->res.status != b->res.status || a->res.version != b->res.version ||
        a->res.nheaders != b->res.nheaders || a->res.body_len != b->res.body_len ||
        memcmp(a->res.body, b->res.body, a->res.body_len))
        return 0;
    for (size_t i = 0; i < a->res.nheaders; i++)
        if (strcmp(a->res.headers[i].name, b->res.headers[i].name) ||
            strcmp(a->res.headers[i].value, b->res.headers[i].value))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gr__http_reader ra, rb;
    static int ready;
    outcome a, b;

    if (size < 1)
        return 0;
    if (!ready) {
        if (gr__http_reader_init(&ra) != 0 || gr__http_reader_init(&rb) != 0)
            abort();
        ready = 1;
    }
    a = read_one(&ra, data + 1, size - 1, data[0] & 1, 0);
    b = read_one(&rb, data + 1, size - 1, data[0] & 1, (data[0] >> 1) | 1u);
    if (!a.err)
        check_well_formed(&a.res);
    if (!same(&a, &b)) {
        fprintf(stderr,
                "in one piece: errno %d, status %d, %zu fields, body %zu; "
                "in slices: errno %d, status %d, %zu fields, body %zu\n",
                a.err, a.res.status, a.res.nheaders, a.res.body_len, b.err, b.res.status,
                b.res.nheaders, b.res.body_len);
        abort();
    }
    return 0;
}
