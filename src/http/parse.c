/* A request in its connection's buffer. The head is parsed in place by the
 * shared head parser (head.c, strict) and stays in the buffer while its
 * handler runs: the request's strings point into it. Body bytes are moved
 * down over the framing already read (de-chunked in place by chunked.c),
 * never past bytes not yet parsed, so a pipelined request that follows
 * stays intact. */
#include "http.h"

#include <stdlib.h>
#include <string.h>

/* Turn a parsed head into the request's strings. Returns 0, or -1/ENOMEM
 * (a query string's copy of the target). */
static int build_request(gr__http_conn *c)
{
    gr__http_head *h = &c->head;
    gr_http_request *r = &c->req;
    char *url = c->buf + h->url_off, *q;

    r->method = llhttp_method_name((llhttp_method_t)h->parser.method);
    r->version = h->version;
    r->headers = h->headers;
    r->nheaders = h->nspans;
    r->target = url;
    r->path = url;
    r->query = "";
    if ((q = memchr(url, '?', h->url_len))) {
        /* path and target cannot both end in place: the target gets a copy. */
        size_t n = h->url_len + 1;

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
    r->chunked = h->body == GR__BODY_CHUNKED;
    r->content_length =
        !r->chunked && (h->parser.flags & F_CONTENT_LENGTH) ? (int64_t)h->length : -1;
    return 0;
}

int gr__http_request_head(gr__http_conn *c)
{
    ssize_t end = gr__http_head_scan(&c->head, c->buf, c->end);
    int status;

    if (end <= 0)
        return end < 0 ? c->head.status : 0;
    if ((size_t)end > c->cfg->max_header_bytes)
        return 431;
    if ((status = gr__http_head_parse(&c->head, c->buf, (size_t)end)) != 0)
        return status < 0 ? 500 : status;
    c->headers_done = 1;
    c->hdr_end = c->parsed = c->body_rd = c->body_wr = (size_t)end;
    c->body_kind = c->head.body;
    c->body_left = c->head.length;
    c->body_total = 0;
    c->message_done = c->body_kind == GR__BODY_NONE;
    gr__http_chunked_init(&c->chunked);
    return build_request(c) == 0 ? 1 : 500;
}

int gr__http_request_body(gr__http_conn *c)
{
    size_t avail = c->end - c->parsed, produced;

    if (c->body_kind == GR__BODY_LENGTH) {
        produced = avail < c->body_left ? avail : (size_t)c->body_left;
        memmove(c->buf + c->body_wr, c->buf + c->parsed, produced);
        c->parsed += produced;
        c->body_left -= produced;
        c->body_total += produced;
        c->message_done = c->body_left == 0;
    } else {
        ssize_t used = gr__http_chunked_decode(&c->chunked, c->buf + c->parsed, avail,
                                               c->buf + c->body_wr, &produced);

        if (used < 0)
            return 400;
        c->parsed += (size_t)used;
        /* Extensions and trailers count: they cost as much to read. */
        c->body_total = c->chunked.wire;
        if (c->body_total > c->cfg->max_body)
            return 413;
        c->message_done = gr__http_chunked_done(&c->chunked);
    }
    c->body_wr += produced;
    return 0;
}
