/* A deliberately simple reference parser of HTTP/1.1 request framing, for
 * the fuzzers' differential checks (fuzz/http_diff_fuzz.c and
 * fuzz/http_chunked_fuzz.c). It is written from RFC 9112's grammar alone
 * and shares no code with src/http: it reads a whole buffer at once, top
 * down, one grammar rule per function, and says where each message ends.
 * Every field line is checked against the grammar, but only the fields
 * that frame a message are read.
 *
 *   HTTP-message  = start-line CRLF *( field-line CRLF ) CRLF [ message-body ]
 *   request-line  = method SP request-target SP HTTP-version
 *   field-line    = field-name ":" OWS field-value OWS
 *   chunked-body  = *chunk last-chunk trailer-section CRLF
 *   chunk         = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext     = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *
 * Where RFC 9112 gives a recipient a choice, the reference takes the
 * strict one: CRLF only, no obs-fold, one Content-Length of digits,
 * chunked as the only transfer coding (and then no Content-Length), empty
 * lines before a request line skipped. A server may be stricter still
 * (Host, limits, methods it knows), never looser. Connection does not
 * matter here: a server may close where the reference reads on, but
 * whatever it reads must be framed the same; only an HTTP/1.0 request
 * with Transfer-Encoding ends the stream (RFC 9112 6.1: faulty framing,
 * nothing after it can be trusted). */
#ifndef GROVE_FUZZ_REF_HTTP_H
#define GROVE_FUZZ_REF_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* A rule's outcome: matched, or cannot match, or the input ended first. */
enum { REF_OK = 0, REF_INVALID = -1, REF_MORE = -2 };

typedef struct ref_in {
    const unsigned char *p;
    size_t n, i;
} ref_in;

static int ref_tchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c > 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int ref_hex(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* field-vchar, SP and HTAB: what a value, a quoted string or a
 * quoted-pair may hold. */
static int ref_text(int c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f && c <= 0xff);
}

/* The next byte, or -1 at the end of the input. */
static int ref_peek(const ref_in *in)
{
    return in->i < in->n ? in->p[in->i] : -1;
}

static int ref_byte(ref_in *in, int c)
{
    int b = ref_peek(in);

    if (b < 0)
        return REF_MORE;
    if (b != c)
        return REF_INVALID;
    in->i++;
    return REF_OK;
}

static int ref_crlf(ref_in *in)
{
    int r = ref_byte(in, '\r');

    return r != REF_OK ? r : ref_byte(in, '\n');
}

static void ref_blanks(ref_in *in)
{
    while (ref_peek(in) == ' ' || ref_peek(in) == '\t')
        in->i++;
}

/* 1*tchar, [*a, in->i) */
static int ref_token(ref_in *in, size_t *a)
{
    *a = in->i;
    while (ref_tchar(ref_peek(in)))
        in->i++;
    if (in->i == in->n)
        return REF_MORE;
    return in->i > *a ? REF_OK : REF_INVALID;
}

/* DQUOTE *( qdtext / quoted-pair ) DQUOTE */
static int ref_quoted_string(ref_in *in)
{
    int r = ref_byte(in, '"');

    while (r == REF_OK) {
        int c = ref_peek(in);

        if (c < 0)
            return REF_MORE;
        in->i++;
        if (c == '"')
            return REF_OK;
        if (c == '\\') {
            if ((c = ref_peek(in)) < 0)
                return REF_MORE;
            in->i++;
        }
        if (!ref_text(c))
            return REF_INVALID;
    }
    return r;
}

/* ---------------------------------------------------------- fields */

/* What a message's fields say about its framing. */
typedef struct ref_fields {
    int te;           /* Transfer-Encoding fields seen */
    int codings;      /* transfer codings listed, in all of them */
    int only_chunked; /* every coding listed is "chunked" */
    int cl;           /* Content-Length fields seen */
    int cl_bad;       /* one was not 1*DIGIT within 64 bits */
    uint64_t length;
} ref_fields;

/* Calls fn on each non-empty element of the list v[0, n), trimmed. */
static void ref_list(const unsigned char *v, size_t n, ref_fields *f,
                     void (*fn)(ref_fields *, const unsigned char *, size_t))
{
    size_t i = 0;

    while (i < n) {
        size_t a, b;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        for (a = i; i < n && v[i] != ','; i++) {
        }
        for (b = i; b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'); b--) {
        }
        if (b > a)
            fn(f, v + a, b - a);
    }
}

static int ref_is(const unsigned char *s, size_t n, const char *word)
{
    return n == strlen(word) && !strncasecmp((const char *)s, word, n);
}

static void ref_coding(ref_fields *f, const unsigned char *s, size_t n)
{
    f->codings++;
    if (!ref_is(s, n, "chunked"))
        f->only_chunked = 0;
}

static void ref_field(ref_fields *f, const unsigned char *name, size_t nn, const unsigned char *v,
                      size_t vn)
{
    if (ref_is(name, nn, "transfer-encoding")) {
        f->te++;
        ref_list(v, vn, f, ref_coding);
    } else if (ref_is(name, nn, "content-length")) {
        f->cl++;
        f->cl_bad |= vn == 0;
        f->length = 0;
        for (size_t i = 0; i < vn; i++) {
            if (v[i] < '0' || v[i] > '9' || f->length > (UINT64_MAX - 9) / 10) {
                f->cl_bad = 1;
                break;
            }
            f->length = f->length * 10 + (uint64_t)(v[i] - '0');
        }
    }
}

/* field-line CRLF: name ":" OWS value OWS CRLF, the value of field-vchar,
 * SP and HTAB. */
static int ref_field_line(ref_in *in, ref_fields *f)
{
    size_t name, nend, a, b;
    int r = ref_token(in, &name);

    if (r != REF_OK)
        return r;
    nend = in->i;
    if ((r = ref_byte(in, ':')) != REF_OK)
        return r;
    ref_blanks(in);
    a = b = in->i;
    for (;;) {
        int c = ref_peek(in);

        if (c < 0)
            return REF_MORE;
        if (c == '\r')
            break;
        if (!ref_text(c))
            return REF_INVALID;
        in->i++;
        if (c != ' ' && c != '\t')
            b = in->i;
    }
    if ((r = ref_crlf(in)) != REF_OK)
        return r;
    if (f)
        ref_field(f, in->p + name, nend - name, in->p + a, b - a);
    return REF_OK;
}

/* *( field-line CRLF ) CRLF */
static int ref_field_section(ref_in *in, ref_fields *f)
{
    for (;;) {
        int r;

        if (ref_peek(in) == '\r')
            return ref_crlf(in);
        if (ref_peek(in) < 0)
            return REF_MORE;
        if ((r = ref_field_line(in, f)) != REF_OK)
            return r;
    }
}

/* ---------------------------------------------------------- chunked */

/* chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) */
static int ref_chunk_ext(ref_in *in)
{
    for (;;) {
        size_t at = in->i, name;
        int r;

        ref_blanks(in);
        if (ref_peek(in) < 0)
            return REF_MORE;
        if (ref_peek(in) != ';') {
            in->i = at; /* BWS belongs to the extension it precedes */
            return REF_OK;
        }
        in->i++;
        ref_blanks(in);
        if ((r = ref_token(in, &name)) != REF_OK)
            return r;
        at = in->i;
        ref_blanks(in);
        if (ref_peek(in) != '=') {
            in->i = at;
            continue;
        }
        in->i++;
        ref_blanks(in);
        if (ref_peek(in) == '"')
            r = ref_quoted_string(in);
        else
            r = ref_token(in, &name);
        if (r != REF_OK)
            return r;
    }
}

/* chunked-body: REF_OK with in->i just past it and *payload its data's
 * size; REF_INVALID; REF_MORE. */
static int ref_chunked_body(ref_in *in, uint64_t *payload)
{
    *payload = 0;
    for (;;) {
        uint64_t size = 0;
        size_t digits = 0;
        int r, x;

        while ((x = ref_hex(ref_peek(in))) >= 0) {
            if (size > (UINT64_MAX >> 4))
                return REF_INVALID; /* does not fit 64 bits */
            size = size * 16 + (uint64_t)x;
            digits++;
            in->i++;
        }
        if (ref_peek(in) < 0)
            return REF_MORE;
        if (!digits)
            return REF_INVALID;
        if ((r = ref_chunk_ext(in)) != REF_OK || (r = ref_crlf(in)) != REF_OK)
            return r;
        if (size == 0)
            return ref_field_section(in, NULL); /* trailers, then the final CRLF */
        if (in->n - in->i < size)
            return REF_MORE;
        in->i += size;
        *payload += size;
        if ((r = ref_crlf(in)) != REF_OK)
            return r;
    }
}

/* ---------------------------------------------------------- requests */

/* method SP request-target SP HTTP-version CRLF; *minor the version's. */
static int ref_request_line(ref_in *in, int *minor)
{
    static const char v[] = "HTTP/1.";
    size_t tok;
    int r;

    if ((r = ref_token(in, &tok)) != REF_OK || (r = ref_byte(in, ' ')) != REF_OK)
        return r;
    /* request-target: visible ASCII only, at least one byte */
    tok = in->i;
    while (ref_peek(in) > 0x20 && ref_peek(in) < 0x7f)
        in->i++;
    if (in->i == in->n)
        return REF_MORE;
    if (in->i == tok)
        return REF_INVALID;
    if ((r = ref_byte(in, ' ')) != REF_OK)
        return r;
    for (const char *c = v; *c; c++)
        if ((r = ref_byte(in, *c)) != REF_OK)
            return r;
    if (ref_peek(in) < 0)
        return REF_MORE;
    if (ref_peek(in) != '0' && ref_peek(in) != '1')
        return REF_INVALID;
    *minor = ref_peek(in) - '0';
    in->i++;
    return ref_crlf(in);
}

/* One request from in->i: REF_OK with in->i at its end and *last set when
 * nothing after it may be read as a request. */
static int ref_request(ref_in *in, int *last)
{
    ref_fields f = {0};
    uint64_t payload;
    int minor = 0, r;

    f.only_chunked = 1;
    /* Empty lines before a request line are ignored (RFC 9112 2.2). */
    while (in->n - in->i >= 2 && in->p[in->i] == '\r' && in->p[in->i + 1] == '\n')
        in->i += 2;
    if ((r = ref_request_line(in, &minor)) != REF_OK || (r = ref_field_section(in, &f)) != REF_OK)
        return r;
    if (f.te) {
        /* 6.1: chunked, once and last; with Content-Length, invalid; in
         * HTTP/1.0, faulty framing: the connection ends with it. */
        if (f.codings != 1 || !f.only_chunked || f.cl)
            return REF_INVALID;
        if (minor == 0)
            *last = 1;
        return ref_chunked_body(in, &payload);
    }
    if (f.cl) {
        if (f.cl > 1 || f.cl_bad)
            return REF_INVALID;
        if (in->n - in->i < f.length)
            return REF_MORE;
        in->i += f.length;
    }
    return REF_OK;
}

/* Where each request of the stream p[0, n) ends: up to max offsets into
 * ends[]. Returns how many requests were whole and valid, in order, up to
 * the first that is not (or whose framing ends the stream). */
static size_t ref_requests(const unsigned char *p, size_t n, size_t *ends, size_t max)
{
    ref_in in = {p, n, 0};
    size_t count = 0;

    while (count < max && in.i < n) {
        int last = 0;

        if (ref_request(&in, &last) != REF_OK)
            break;
        ends[count++] = in.i;
        if (last)
            break;
    }
    return count;
}

#endif
