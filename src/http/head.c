/* The one parser of message heads, for the server's requests and the
 * client's responses, in place in the caller's buffer.
 *
 * A head is parsed in two steps. First its lines are found by a scan of our
 * own (gr__http_head_scan): line breaks are what request smuggling plays
 * on, and llhttp 8.1 is lenient about several of them whatever its flags
 * (a bare CR ending an empty value, "\r\n\r" plus any byte ending the
 * head), so no byte reaches llhttp before the scan has found the whole head
 * and checked every CR and LF in it. Then llhttp parses exactly that head,
 * and must end it exactly where the scan did; its callbacks only record
 * where the target and each field lie, and once the head is complete the
 * strings are NUL-terminated where they stand (over the ':', CR or blank
 * that followed each), so nothing is copied.
 *
 * Strict (the server): RFC 9112 as written. Every line ends in CR LF; a
 * bare CR or LF, obsolete line folding or a blank line start is refused,
 * and so are a request line with more than single spaces, a target byte
 * outside VCHAR, a field name that is not a token, an HTTP/1.1 request
 * without exactly one valid Host, and any transfer coding but chunked.
 * Lenient (the client), where RFC 9112 lets a recipient be: a bare LF ends
 * a line (section 2.2; a CR is put before it so llhttp sees CR LF), a bare
 * CR is read as a space (2.2), obs-fold is replaced by spaces (5.2), a
 * blank-led line after the status line is joined to it (2.2: consumed),
 * a Content-Length beside Transfer-Encoding gives way to it (6.3; the
 * connection is then not reused), and HTTP/1.x answers 1.1 for x > 1. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* value_off of a field whose value llhttp did not report. */
#define NO_VALUE UINT32_MAX

static gr__http_head *head_of(llhttp_t *p)
{
    return p->data;
}

/* A rule broken in a callback: remember the status and stop llhttp. */
static int refuse(gr__http_head *h, int status)
{
    h->status = status;
    return HPE_USER;
}

static uint32_t offset_in(const gr__http_head *h, const char *at)
{
    return (uint32_t)(at - h->base);
}

/* ---------------------------------------------------------- the scan */

static ssize_t malformed(gr__http_head *h)
{
    h->status = 400;
    return -1;
}

/* Lenient: a line that begins with a blank continues the one before it:
 * the line break between them becomes blanks. */
static void unfold(gr__http_head *h, char *buf, size_t line)
{
    if (h->prev_bare_lf)
        h->bare_lf--;
    memset(buf + h->prev_eol, ' ', line - h->prev_eol);
}

/* Strict: whether the first bytes of a request line that has not ended
 * yet can begin one (a method token, a space, then no control bytes): a
 * client speaking another protocol (TLS, say) gets its 400 at once rather
 * than when the header time-out ends the wait for a line end. */
static int request_line_prefix_ok(const char *p, size_t n)
{
    size_t i = 0;

    if (n && p[n - 1] == '\r') /* its LF may be on the way */
        n--;
    while (i < n && gr__http_tchar((unsigned char)p[i]))
        i++;
    if (i < n && p[i] != ' ')
        return 0;
    for (; i < n; i++)
        if (((unsigned char)p[i] < 0x20 && p[i] != '\r') || p[i] == 0x7f)
            return 0;
    return 1;
}

ssize_t gr__http_head_scan(gr__http_head *h, char *buf, size_t len)
{
    size_t pos = h->scan;

    for (;;) {
        char *lf = memchr(buf + pos, '\n', len - pos);
        size_t eol, next;
        char *cr;
        int bare;

        if (!lf) {
            /* No line end yet: a CR followed by anything is a bare one. */
            cr = memchr(buf + pos, '\r', len - pos);
            if (!h->lenient && ((cr && cr + 1 < buf + len) ||
                                (!h->seen_start && !request_line_prefix_ok(buf + pos, len - pos))))
                return malformed(h);
            h->scan = pos;
            return 0;
        }
        next = (size_t)(lf - buf) + 1;
        bare = lf == buf + pos || lf[-1] != '\r';
        eol = next - 1 - !bare; /* [pos, eol): the line without its break */
        if (bare) {
            if (!h->lenient)
                return malformed(h);
            h->bare_lf++;
        }
        while ((cr = memchr(buf + pos, '\r', eol - pos))) {
            if (!h->lenient)
                return malformed(h);
            *cr = ' ';
        }
        if (eol == pos) {         /* an empty line */
            if (!h->seen_start) { /* before the start line: ignored (RFC 9112 2.2) */
                if (bare)
                    h->bare_lf--; /* outside the head: never given to llhttp */
                h->start = (uint32_t)next;
                pos = next;
                continue;
            }
            h->scan = (uint32_t)next;
            return (ssize_t)next;
        }
        if (buf[pos] == ' ' || buf[pos] == '\t') {
            if (!h->lenient || !h->seen_start)
                return malformed(h);
            unfold(h, buf, pos);
        }
        h->seen_start = 1;
        h->prev_eol = (uint32_t)eol;
        h->prev_bare_lf = bare;
        pos = next;
    }
}

void gr__http_head_add_cr(gr__http_head *h, char *buf, size_t end, size_t len)
{
    size_t k = h->bare_lf;

    memmove(buf + end + k, buf + end, len - end);
    for (size_t i = end; k && i-- > h->start;) {
        buf[i + k] = buf[i];
        if (buf[i] == '\n' && (i == h->start || buf[i - 1] != '\r'))
            buf[i + --k] = '\r';
    }
    h->bare_lf = 0;
}

/* ----------------------------------------------------- llhttp callbacks */

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    gr__http_head *h = head_of(p);

    if (!h->url_len)
        h->url_off = offset_in(h, at);
    h->url_len = offset_in(h, at + len) - h->url_off;
    return 0;
}

/* RFC 9112 3: method SP request-target SP HTTP-version, single spaces
 * (llhttp 8 takes "GET  /"); a target of visible ASCII only (3.2 and RFC
 * 3986: no TAB, FF, NUL or byte over 0x7e; others must come
 * percent-encoded). */
static int on_url_complete(llhttp_t *p)
{
    gr__http_head *h = head_of(p);
    const unsigned char *u = (const unsigned char *)h->base + h->url_off;

    if (h->url_off < h->start + 2 || u[-1] != ' ' || u[-2] == ' ' ||
        (u[h->url_len] != '\r' && (u[h->url_len] != ' ' || u[h->url_len + 1] != 'H')))
        return refuse(h, 400); /* ("GET /" CR LF is HTTP/0.9: 505 follows) */
    for (uint32_t i = 0; i < h->url_len; i++)
        if (u[i] <= 0x20 || u[i] >= 0x7f)
            return refuse(h, 400);
    return 0;
}

static int grow_fields(gr__http_head *h)
{
    size_t n = h->cap * 2 < h->max ? h->cap * 2 : h->max;
    gr__http_span *s = gr__realloc(h->spans, n * sizeof *s);
    gr_http_header *f;

    if (s)
        h->spans = s;
    if (!s || !(f = gr__realloc(h->headers, n * sizeof *f))) {
        h->err = ENOMEM;
        return HPE_USER;
    }
    h->headers = f;
    h->cap = n;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    gr__http_head *h = head_of(p);

    if (!h->in_field) {
        if (h->nspans == h->max)
            return refuse(h, 431);
        if (h->nspans == h->cap && grow_fields(h) != 0)
            return HPE_USER;
        h->spans[h->nspans++] = (gr__http_span){offset_in(h, at), 0, NO_VALUE, 0};
        h->in_field = 1;
    }
    h->spans[h->nspans - 1].name_len = offset_in(h, at + len) - h->spans[h->nspans - 1].name_off;
    return 0;
}

/* A field name is a token (RFC 9110 5.1): llhttp 8 lets a space through
 * ("Transfer Encoding:", "Host :"), and an empty name. */
static int on_header_field_complete(llhttp_t *p)
{
    gr__http_head *h = head_of(p);
    gr__http_span *sp = &h->spans[h->nspans - 1];

    h->in_field = 0;
    if (!sp->name_len)
        return refuse(h, 400);
    for (uint32_t i = 0; i < sp->name_len; i++)
        if (!gr__http_tchar((unsigned char)h->base[sp->name_off + i]))
            return refuse(h, 400);
    return 0;
}

/* An empty value may come as an empty piece anywhere (even at the start
 * of the next line): only a piece with bytes places the value. */
static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    gr__http_head *h = head_of(p);
    gr__http_span *sp = &h->spans[h->nspans - 1];

    if (!len)
        return 0;
    if (sp->value_off == NO_VALUE)
        sp->value_off = offset_in(h, at);
    sp->value_len = offset_in(h, at + len) - sp->value_off;
    return 0;
}

/* The head is done: stop before any body, which is not llhttp's to read. */
static int on_headers_complete(llhttp_t *p)
{
    head_of(p)->headers_done = 1;
    return HPE_PAUSED;
}

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void init_settings(void)
{
    llhttp_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_url_complete = on_url_complete;
    settings.on_header_field = on_header_field;
    settings.on_header_field_complete = on_header_field_complete;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
}

/* ---------------------------------------------------------- the fields */

/* The value without its trailing blanks, NUL-terminated over the byte
 * after it (a blank or the CR). */
static const char *terminate_value(char *buf, gr__http_span *sp)
{
    char *v = buf + sp->value_off;

    if (sp->value_off == NO_VALUE)
        return "";
    while (sp->value_len && (v[sp->value_len - 1] == ' ' || v[sp->value_len - 1] == '\t'))
        sp->value_len--;
    if (!sp->value_len)
        return "";
    v[sp->value_len] = '\0';
    return v;
}

static void terminate_fields(gr__http_head *h, char *buf)
{
    for (size_t i = 0; i < h->nspans; i++) {
        gr__http_span *sp = &h->spans[i];

        buf[sp->name_off + sp->name_len] = '\0'; /* over the ':' */
        h->headers[i].name = buf + sp->name_off;
        h->headers[i].value = terminate_value(buf, sp);
    }
}

/* uri-host [ ":" port ] (RFC 9110 7.2; RFC 3986 3.2.2), or empty: a
 * reg-name or IPv4 address, or an IP literal in brackets. */
static int host_ok(const unsigned char *v)
{
    if (*v == '[') {
        while (*++v && (isxdigit(*v) || *v == ':' || *v == '.' || *v == 'v' || *v == 'V')) {
        }
        if (*v++ != ']')
            return 0;
    } else {
        while (gr__http_chars[*v] & GR__HTTP_HOSTCHAR)
            v++;
    }
    if (*v == ':')
        while (isdigit(*++v)) {
        }
    return *v == '\0';
}

/* Whether field i is named name, of n bytes (lower case). */
static int named(const gr__http_head *h, size_t i, const char *name, size_t n)
{
    return h->spans[i].name_len == n && !strcasecmp(h->headers[i].name, name);
}

/* RFC 9112 3.2: exactly one Host in an HTTP/1.1 request, at most one in
 * an HTTP/1.0 one, with a valid value. */
static int check_host(gr__http_head *h)
{
    int n = 0;

    for (size_t i = 0; i < h->nspans; i++) {
        if (!named(h, i, "host", 4))
            continue;
        if (++n > 1 || !host_ok((const unsigned char *)h->headers[i].value))
            return 400;
    }
    return n == 0 && h->version >= 11 ? 400 : 0;
}

/* The transfer codings of every Transfer-Encoding field, in order: -1
 * without such a field; 1 when they are exactly "chunked", 2 when chunked
 * is the last of several, 0 when it is not the last (or there is no
 * coding at all: llhttp does not count an empty field as one). */
static int codings(const gr__http_head *h)
{
    int count = 0, last_chunked = 0, fields = 0;

    for (size_t i = 0; i < h->nspans; i++) {
        const char *v = h->headers[i].value;

        if (!named(h, i, "transfer-encoding", 17))
            continue;
        fields++;
        while (*v) {
            size_t n;

            v += strspn(v, " \t,");
            if (!*v)
                break;
            n = strcspn(v, ",");
            while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            count++;
            last_chunked = n == 7 && !strncasecmp(v, "chunked", 7);
            v += n;
        }
    }
    return !fields ? -1 : !last_chunked ? 0 : count == 1 ? 1 : 2;
}

/* How the body is framed (RFC 9112 6): a request takes chunked as its only
 * coding (another coding before it: 501, as 6.1 says for codings not
 * understood; chunked not last: 400); a response's codings other than a
 * final chunked are kept to the close. */
static int framing(gr__http_head *h)
{
    const llhttp_t *p = &h->parser;
    int request = p->type == HTTP_REQUEST, c = codings(h);

    h->body = GR__BODY_NONE;
    if (c >= 0) {
        if (c == 1) {
            h->body = GR__BODY_CHUNKED;
        } else if (request) {
            return c == 2 ? 501 : 400;
        } else if (c == 2) {
            return 400; /* a coding this client cannot undo */
        } else {
            h->body = GR__BODY_EOF;
        }
        /* RFC 9112 6.1: HTTP/1.0 with Transfer-Encoding is faulty framing;
         * 6.3: a Content-Length beside it (lenient only) is an attack or
         * a broken sender. Either way the connection ends with it. */
        if (h->version < 11 || (p->flags & F_CONTENT_LENGTH))
            h->must_close = 1;
    } else if (p->flags & F_CONTENT_LENGTH) {
        h->body = p->content_length ? GR__BODY_LENGTH : GR__BODY_NONE;
        h->length = p->content_length;
    } else if (!request) {
        h->body = GR__BODY_EOF;
    }
    return 0;
}

/* The version (and a response's status code: exactly three digits, 100
 * to 999, where llhttp 8.1 takes "HTTP/1.1 1 OK"). */
static int check_version(gr__http_head *h, const char *buf)
{
    const llhttp_t *p = &h->parser;
    const char *l = buf + h->start; /* "HTTP/1.1 200 ..." */

    if (p->type == HTTP_RESPONSE &&
        (p->status_code < 100 || l[8] != ' ' || (l[12] != ' ' && l[12] != '\r')))
        return 400;
    if (p->http_major != 1)
        return 505;
    if (p->type == HTTP_REQUEST && p->http_minor > 1)
        return 505; /* llhttp takes "GET / HTTP/1.9" */
    h->version = p->http_minor ? 11 : 10;
    return 0;
}

/* ------------------------------------------------------------ the API */

void gr__http_head_init(gr__http_head *h, int type, int lenient, gr__http_span *spans,
                        gr_http_header *headers, size_t cap, size_t max)
{
    pthread_once(&settings_once, init_settings);
    memset(h, 0, sizeof *h);
    llhttp_init(&h->parser, (llhttp_type_t)type, &settings);
    /* 6.3: a response may carry both framings; Transfer-Encoding wins.
     * RFC 9110 2.5: HTTP/1.x for x > 1 reads as 1.1 (check_version). */
    if (lenient) {
        llhttp_set_lenient_chunked_length(&h->parser, 1);
        h->parser.lenient_flags |= LENIENT_VERSION;
    }
    h->parser.data = h;
    h->lenient = lenient;
    h->spans = spans;
    h->headers = headers;
    h->cap = cap;
    h->max = max;
}

void gr__http_head_begin(gr__http_head *h)
{
    llhttp_reset(&h->parser);
    h->nspans = 0;
    h->url_off = h->url_len = 0;
    h->start = h->scan = h->prev_eol = 0;
    h->bare_lf = 0;
    h->seen_start = h->prev_bare_lf = h->in_field = h->headers_done = 0;
    h->status = h->err = 0;
    h->body = GR__BODY_NONE;
    h->length = 0;
    h->version = 0;
    h->must_close = 0;
}

int gr__http_head_parse(gr__http_head *h, char *buf, size_t end)
{
    llhttp_errno_t e;
    int status;

    h->base = buf;
    e = llhttp_execute(&h->parser, buf + h->start, end - h->start);
    if (h->err)
        return -1;
    if (h->status)
        return h->status;
    /* llhttp must end the head exactly where the scan did. */
    if (e != HPE_PAUSED || !h->headers_done || llhttp_get_error_pos(&h->parser) != buf + end)
        return 400;
    if ((status = check_version(h, buf)) != 0)
        return status;
    terminate_fields(h, buf);
    if (h->parser.type == HTTP_REQUEST) {
        buf[h->url_off + h->url_len] = '\0'; /* over the space before the version */
        if ((status = check_host(h)) != 0)
            return status;
    }
    return framing(h);
}
