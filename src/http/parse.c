/* Parsing requests with llhttp, in place. The whole head of a request stays
 * in the connection's buffer while its handler runs: llhttp's callbacks
 * only record where the URL and each header lie, and once the head is
 * complete the spans are NUL-terminated where they stand (over the ':',
 * CR or space that followed each), so the request needs no copy. Body
 * bytes are moved down over the chunk framing llhttp has already read
 * (de-chunking in place), never past bytes not yet parsed, so a pipelined
 * request that follows stays intact. */
#include "http.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static gr__http_conn *conn_of(llhttp_t *p)
{
    return p->data;
}

static uint32_t offset_in(gr__http_conn *c, const char *at)
{
    return (uint32_t)(at - c->buf);
}

static int on_message_begin(llhttp_t *p)
{
    gr__http_conn *c = conn_of(p);

    c->url_len = 0;
    c->nspans = 0;
    c->in_value = 0;
    c->headers_done = c->message_done = 0;
    c->body_total = 0;
    return 0;
}

/* llhttp calls the data callbacks again for each piece of a span that
 * arrived in several reads; the pieces are contiguous in our buffer. */
static int on_url(llhttp_t *p, const char *at, size_t len)
{
    gr__http_conn *c = conn_of(p);

    if (!c->url_len)
        c->url_off = offset_in(c, at);
    c->url_len += (uint32_t)len;
    return 0;
}

/* A limit or a rule broken in a callback: remember the status to answer
 * and stop the parser. */
static int refuse(gr__http_conn *c, int status)
{
    c->limit_error = status;
    return HPE_USER;
}

/* Trailer fields of a chunked body come through the header callbacks once
 * the head is done: they are read and dropped, and count as body bytes so
 * that max_body bounds them too. */
static int trailer_bytes(gr__http_conn *c, size_t len)
{
    c->body_total += len;
    return c->body_total > c->cfg->max_body ? refuse(c, 413) : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    gr__http_conn *c = conn_of(p);
    gr__http_span *sp;

    if (c->headers_done)
        return trailer_bytes(c, len);
    /* llhttp 8 lets a space through in a field name ("Transfer Encoding:"),
     * which RFC 9112 forbids and proxies may read differently. */
    if (memchr(at, ' ', len))
        return refuse(c, 400);
    if (c->in_value || !c->nspans) {
        if (c->nspans == c->cfg->max_headers)
            return refuse(c, 431);
        sp = &c->spans[c->nspans++];
        sp->name_off = offset_in(c, at);
        sp->name_len = 0;
        sp->value_off = 0; /* no value yet: offset 0 is the request line */
        sp->value_len = 0;
        c->in_value = 0;
    }
    c->spans[c->nspans - 1].name_len += (uint32_t)len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    gr__http_conn *c = conn_of(p);
    gr__http_span *sp;

    if (c->headers_done)
        return trailer_bytes(c, len);
    /* llhttp 8 takes an empty field name (": x"); RFC 9110 does not. */
    if (!c->nspans || !c->spans[c->nspans - 1].name_len)
        return refuse(c, 400);
    sp = &c->spans[c->nspans - 1];
    c->in_value = 1;
    /* An empty value comes as an empty piece, placed anywhere (even at
     * the start of the next line): it only marks the value as begun. */
    if (!len)
        return 0;
    /* llhttp 8 accepts obsolete line folding ("A: b\r\n  c", "A:\r\n c"),
     * which RFC 9112 says a server must reject or unfold: a value would
     * hold a CR LF, or a front end read it as empty. So a value must follow
     * its colon with nothing but blanks between, and its pieces (one per
     * read it spans) must follow each other. */
    if (!sp->value_len) {
        uint32_t off = offset_in(c, at);

        for (uint32_t i = sp->name_off + sp->name_len + 1; i < off; i++)
            if (c->buf[i] != ' ' && c->buf[i] != '\t')
                return refuse(c, 400);
        sp->value_off = off;
    } else if (offset_in(c, at) != sp->value_off + sp->value_len) {
        return refuse(c, 400);
    }
    if (memchr(at, '\n', len) || memchr(at, '\r', len))
        return refuse(c, 400);
    sp->value_len += (uint32_t)len;
    return 0;
}

static int has_body(const llhttp_t *p)
{
    return (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
}

/* Stop here when a body follows, so the handler can read it at its pace;
 * without one, run on to the end of the message, which stops there. */
static int on_headers_complete(llhttp_t *p)
{
    gr__http_conn *c = conn_of(p);

    c->headers_done = 1;
    if (c->nspans && !c->spans[c->nspans - 1].name_len)
        return refuse(c, 400);
    /* HTTP/1.0 and 1.1 only: llhttp also takes "GET /" (0.9) and 2.0. */
    if (p->http_major != 1 || p->http_minor > 1)
        return refuse(c, 505);
    /* No protocol switches here (Upgrade, CONNECT): the request is an
     * ordinary one for its handler, and the bytes after it the next
     * request, not another protocol (llhttp would stop at them). */
    p->upgrade = 0;
    return has_body(p) ? HPE_PAUSED : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    gr__http_conn *c = conn_of(p);

    c->body_total += len;
    if (c->body_total > c->cfg->max_body)
        return refuse(c, 413);
    memmove(c->buf + c->body_wr, at, len);
    c->body_wr += len;
    return 0;
}

/* Stop before a pipelined request: it waits until this one is answered. */
static int on_message_complete(llhttp_t *p)
{
    conn_of(p)->message_done = 1;
    return HPE_PAUSED;
}

static llhttp_settings_t settings;
static pthread_once_t settings_once = PTHREAD_ONCE_INIT;

static void init_settings(void)
{
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
}

void gr__http_parser_init(gr__http_conn *c)
{
    pthread_once(&settings_once, init_settings);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
}

int gr__http_feed(gr__http_conn *c)
{
    llhttp_errno_t e;

    if (c->parsed == c->end && c->message_done)
        return 0;
    e = llhttp_execute(&c->parser, c->buf + c->parsed, c->end - c->parsed);
    if (e == HPE_OK) {
        c->parsed = c->end;
        return 0;
    }
    if (e == HPE_PAUSED) {
        c->parsed = (size_t)(llhttp_get_error_pos(&c->parser) - c->buf);
        llhttp_resume(&c->parser);
        return 0;
    }
    /* A callback's refusal (llhttp reports one from on_headers_complete
     * as HPE_CB_HEADERS_COMPLETE), or malformed input. */
    return c->limit_error ? c->limit_error : 400;
}

/* The value without its trailing blanks, NUL-terminated over the byte
 * after it (a blank or the CR). An empty value is "": llhttp may place an
 * empty span anywhere, even at the start of the next line, where a NUL
 * would cut the next field's name. */
static const char *terminate_value(gr__http_conn *c, gr__http_span *sp)
{
    char *v = c->buf + sp->value_off;

    while (sp->value_len && (v[sp->value_len - 1] == ' ' || v[sp->value_len - 1] == '\t'))
        sp->value_len--;
    if (!sp->value_len)
        return "";
    v[sp->value_len] = '\0';
    return v;
}

/* Turn the spans of a complete head into the request's strings. Returns 0,
 * or -1/ENOMEM (a query string's copy of the target). */
int gr__http_build_request(gr__http_conn *c)
{
    gr_http_request *r = &c->req;
    char *url = c->buf + c->url_off, *q;

    for (size_t i = 0; i < c->nspans; i++) {
        gr__http_span *sp = &c->spans[i];

        /* A header without a value: llhttp gave no value callback. */
        if (sp->value_off == 0)
            sp->value_len = 0;
        /* Over the ':' that ends every name. */
        c->buf[sp->name_off + sp->name_len] = '\0';
        c->headers[i].name = c->buf + sp->name_off;
        c->headers[i].value = terminate_value(c, sp);
    }
    url[c->url_len] = '\0';
    r->method = llhttp_method_name((llhttp_method_t)c->parser.method);
    r->version = c->parser.http_major * 10 + c->parser.http_minor;
    r->headers = c->headers;
    r->nheaders = c->nspans;
    r->target = url;
    r->path = url;
    r->query = "";
    if ((q = memchr(url, '?', c->url_len))) {
        /* path and target cannot both end in place: the target gets a copy. */
        size_t n = c->url_len + 1;

        if (n > c->target_cap) {
            char *t = gr__realloc(c->target_copy, n);

            if (!t)
                return -1;
            c->target_copy = t;
            c->target_cap = n;
        }
        memcpy(c->target_copy, url, n);
        r->target = c->target_copy;
        *q = '\0';
        r->query = q + 1;
    }
    r->chunked = (c->parser.flags & F_CHUNKED) != 0;
    r->content_length =
        !r->chunked && (c->parser.flags & F_CONTENT_LENGTH) ? (int64_t)c->parser.content_length : -1;
    return 0;
}
