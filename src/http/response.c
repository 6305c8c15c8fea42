/* Reading one response, apart from any socket: the client (client.c) asks
 * where the next bytes go, reads them there, and hands them over; the
 * fuzzer (fuzz/http_response_fuzz.c) does the same from memory.
 *
 * The head is read into `in` and parsed in place by the shared head parser
 * in its lenient mode: its names and values are NUL-terminated where they
 * stand and the header array points at them. Body bytes then go straight
 * into `body`: each read lands at the end of the body so far and the
 * chunked decoder moves the payload down over the framing, so a large body
 * is read in large reads and never copied twice. Every buffer belongs to
 * the reader and only grows, so the steady state allocates nothing. */
#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Initial sizes; every buffer doubles as needed. */
#define IN_INITIAL 8192
#define BODY_INITIAL 4096
#define FIELDS_INITIAL 32
/* Room made before each read of a body of unknown length. */
#define READ_ROOM ((size_t)64 * 1024)

int gr__http_grow(char **buf, size_t *cap, size_t need, size_t max)
{
    size_t n = *cap ? *cap : 64;
    char *p;

    if (need <= *cap)
        return 0;
    while (n < need)
        n = n > max / 2 ? max : n * 2;
    if (!(p = gr__realloc(*buf, n))) {
        errno = ENOMEM;
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

int gr__http_reader_init(gr__http_reader *r)
{
    gr__http_span *spans = gr__malloc(FIELDS_INITIAL * sizeof *spans);
    gr_http_header *headers = gr__malloc(FIELDS_INITIAL * sizeof *headers);

    memset(r, 0, sizeof *r);
    /* The fields' arrays belong to the head parser from here on. */
    gr__http_head_init(&r->head, HTTP_RESPONSE, 1, spans, headers, FIELDS_INITIAL,
                       GR__HTTP_RESP_MAX_FIELDS);
    if (!spans || !headers ||
        gr__http_grow(&r->in, &r->in_cap, IN_INITIAL, GR__HTTP_RESP_MAX_HEAD) ||
        gr__http_grow(&r->body, &r->body_cap, BODY_INITIAL, GR__HTTP_RESP_MAX_BODY + 1)) {
        gr__http_reader_fini(r);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

void gr__http_reader_fini(gr__http_reader *r)
{
    free(r->in);
    free(r->head.spans);
    free(r->head.headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

void gr__http_reader_begin(gr__http_reader *r, int head_method)
{
    gr__http_head_begin(&r->head);
    r->in_end = r->body_len = 0;
    r->body_kind = GR__BODY_NONE;
    r->head_method = head_method;
    r->headers_done = r->message_done = r->keep_alive = 0;
    r->status = r->version = 0;
}

/* n body bytes at `at` (in the body buffer at its end, or anywhere when
 * the body has room for them): payload appended to the body. Bytes after
 * the end of the response mean a confused server: the response stands,
 * the connection does not. 0 or -1 with errno. */
static int body_bytes(gr__http_reader *r, const char *at, size_t n)
{
    size_t used = n, produced = n;

    if (r->body_kind == GR__BODY_CHUNKED) {
        ssize_t k = gr__http_chunked_decode(&r->chunked, at, n, r->body + r->body_len, &produced);

        if (k < 0) {
            errno = EPROTO;
            return -1;
        }
        used = (size_t)k;
        r->message_done = gr__http_chunked_done(&r->chunked);
        if (r->chunked.wire - (r->body_len + produced) > GR__HTTP_RESP_MAX_FRAMING) {
            errno = EMSGSIZE;
            return -1;
        }
    } else if (r->body_kind == GR__BODY_LENGTH) {
        used = produced = n < r->body_left ? n : (size_t)r->body_left;
        memmove(r->body + r->body_len, at, produced);
        r->message_done = (r->body_left -= produced) == 0;
    } else {
        memmove(r->body + r->body_len, at, produced); /* until the close */
    }
    r->body_len += produced;
    if (r->body_len > GR__HTTP_RESP_MAX_BODY) {
        errno = EMSGSIZE;
        return -1;
    }
    if (used < n)
        r->keep_alive = 0;
    return 0;
}

/* 1xx other than 101 are interim: the final response follows. */
static int interim(int status)
{
    return status >= 100 && status < 200 && status != 101;
}

/* The final response's head is parsed: how its body comes, and whether
 * the connection lives on after it. Bytes read past the head are its
 * body's (or stray). */
static int final_head(gr__http_reader *r, size_t end)
{
    llhttp_t *p = &r->head.parser;

    r->headers_done = 1;
    r->status = p->status_code;
    r->version = r->head.version;
    r->body_kind = r->head.body;
    r->body_left = r->head.length;
    /* HEAD, 1xx, 204 and 304 have no body whatever the head says. */
    if (r->head_method || r->status < 200 || r->status == 204 || r->status == 304) {
        r->body_kind = GR__BODY_NONE;
        p->flags |= F_SKIPBODY;
    }
    r->keep_alive = llhttp_should_keep_alive(p) && !r->head.must_close && r->status != 101;
    r->message_done = r->body_kind == GR__BODY_NONE;
    gr__http_chunked_init(&r->chunked);
    if (r->body_kind == GR__BODY_LENGTH && r->body_left > GR__HTTP_RESP_MAX_BODY) {
        errno = EMSGSIZE;
        return -1;
    }
    if (end == r->in_end)
        return 0;
    if (r->message_done) {
        r->keep_alive = 0; /* stray bytes */
        return 0;
    }
    if (gr__http_grow(&r->body, &r->body_cap, r->body_len + (r->in_end - end) + 1,
                      GR__HTTP_RESP_MAX_BODY + READ_ROOM + 1))
        return -1;
    return body_bytes(r, r->in + end, r->in_end - end);
}

/* Parse the head that ends at end in `in`. Returns 0 (an interim one is
 * dropped, and the scan starts over on what follows it), or -1 with
 * errno. */
static int parse_head(gr__http_reader *r, size_t end)
{
    int st;

    if (r->head.bare_lf) {
        size_t k = r->head.bare_lf;

        if (gr__http_grow(&r->in, &r->in_cap, r->in_end + k, GR__HTTP_RESP_MAX_HEAD + k) != 0)
            return -1;
        gr__http_head_add_cr(&r->head, r->in, end, r->in_end);
        end += k;
        r->in_end += k;
    }
    if ((st = gr__http_head_parse(&r->head, r->in, end)) != 0) {
        errno = st < 0 ? r->head.err : st == 431 ? EMSGSIZE : EPROTO;
        return -1;
    }
    if (!interim(r->head.parser.status_code))
        return final_head(r, end);
    r->in_end -= end;
    memmove(r->in, r->in + end, r->in_end);
    gr__http_head_begin(&r->head);
    return 0;
}

/* Look for the end of the head in what was read. 0 (parsed or not yet
 * complete) or -1 with errno. */
static int scan_head(gr__http_reader *r)
{
    while (!r->headers_done) {
        ssize_t end = gr__http_head_scan(&r->head, r->in, r->in_end);

        if (end < 0) {
            errno = EPROTO;
            return -1;
        }
        if (end == 0)
            return 0;
        if (parse_head(r, (size_t)end) != 0)
            return -1;
    }
    return 0;
}

int gr__http_reader_eof(gr__http_reader *r)
{
    if (r->headers_done && r->body_kind == GR__BODY_EOF) {
        r->message_done = 1;
        return 0;
    }
    errno = EPIPE;
    return -1;
}

/* Room in the head buffer, grown up to its limit. */
static char *head_room(gr__http_reader *r, size_t *room)
{
    if (r->in_end >= r->in_cap) {
        if (r->in_cap >= GR__HTTP_RESP_MAX_HEAD) {
            errno = EMSGSIZE;
            return NULL;
        }
        if (gr__http_grow(&r->in, &r->in_cap, r->in_cap + 1, GR__HTTP_RESP_MAX_HEAD) != 0)
            return NULL;
    }
    *room = r->in_cap - r->in_end;
    return r->in + r->in_end;
}

/* Room at the end of the body: exactly what an announced length still
 * owes (so such a body comes in as few reads as the kernel allows and
 * nothing past it is read), else at least READ_ROOM. The last byte stays
 * free for the terminating NUL. */
static char *body_room(gr__http_reader *r, size_t *room)
{
    int exact = r->body_kind == GR__BODY_LENGTH;
    size_t want = exact ? (size_t)r->body_left : READ_ROOM;

    if (r->body_cap - r->body_len < want + 1 &&
        gr__http_grow(&r->body, &r->body_cap, r->body_len + want + 1,
                      GR__HTTP_RESP_MAX_BODY + READ_ROOM + 1) != 0)
        return NULL;
    *room = exact ? want : r->body_cap - 1 - r->body_len;
    return r->body + r->body_len;
}

char *gr__http_reader_room(gr__http_reader *r, size_t *room)
{
    return r->headers_done ? body_room(r, room) : head_room(r, room);
}

int gr__http_reader_got(gr__http_reader *r, size_t n)
{
    if (r->headers_done)
        return body_bytes(r, r->body + r->body_len, n);
    r->in_end += n;
    return scan_head(r);
}

void gr__http_reader_result(gr__http_reader *r, gr_http_response *res)
{
    r->body[r->body_len] = '\0'; /* room kept by every read */
    res->status = r->status;
    res->version = r->version;
    res->headers = r->head.headers;
    res->nheaders = r->head.nspans;
    res->body = r->body;
    res->body_len = r->body_len;
}
