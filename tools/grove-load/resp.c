/* The response parser (resp.h): a line at a time through the head,
 * chunk-size lines and trailers (memchr finds each end of line), and body
 * bytes skipped by count. A line cut by the end of a read is copied into
 * the carry buffer and completed from the next read; only such a line is
 * ever copied. */
#include "resp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    S_STATUS,     /* the status line */
    S_HEADER,     /* header lines, up to the empty one */
    S_BODY_LEN,   /* Content-Length bytes */
    S_BODY_EOF,   /* until the server closes */
    S_CHUNK_SIZE, /* a chunk-size line */
    S_CHUNK_DATA, /* the chunk's bytes */
    S_CHUNK_END,  /* the CRLF after them */
    S_TRAILER,    /* trailer lines, up to the empty one */
    S_DONE,
};

void gl_resp_begin(gl_resp *r, int head_only)
{
    r->state = S_STATUS;
    r->head_only = (uint8_t) !!head_only;
    r->chunked = r->has_len = r->conn_close = r->conn_keepalive = r->seen_status = 0;
    r->status = r->version = 0;
    r->len = r->remaining = r->body = 0;
    r->head_bytes = r->carry_len = 0;
}

void gl_resp_free(gl_resp *r)
{
    free(r->carry);
    r->carry = NULL;
    r->carry_cap = r->carry_len = 0;
}

int gl_resp_empty(const gl_resp *r)
{
    return r->state == S_STATUS && r->head_bytes == 0;
}

int gl_resp_reusable(const gl_resp *r)
{
    return r->state == S_DONE && !r->conn_close && (r->version >= 11 || r->conn_keepalive);
}

int gl_resp_eof(gl_resp *r)
{
    if (r->state != S_BODY_EOF)
        return GL_RESP_MORE;
    r->state = S_DONE;
    return GL_RESP_DONE;
}

/* ------------------------------------------------------------- lines */

/* Keep n more bytes of a line cut by the end of a read. */
static int stash(gl_resp *r, const char *s, size_t n)
{
    size_t need = (size_t)r->carry_len + n;

    if (need > GL_RESP_MAX_LINE)
        return -1;
    if (need > r->carry_cap) {
        size_t cap = r->carry_cap ? r->carry_cap : 256;
        char *p;

        while (cap < need)
            cap *= 2;
        if (!(p = realloc(r->carry, cap)))
            return -1;
        r->carry = p;
        r->carry_cap = (uint32_t)cap;
    }
    memcpy(r->carry + r->carry_len, s, n);
    r->carry_len = (uint32_t)need;
    return 0;
}

static int in_head(const gl_resp *r)
{
    return r->state == S_STATUS || r->state == S_HEADER || r->state == S_TRAILER;
}

/* The next whole line at p + *off, without its CR LF (a bare LF is taken
 * too). 1: *line and *len set (valid until the next call); 0: the bytes left
 * were kept for later; -1: too long. */
static int take_line(gl_resp *r, const char *p, size_t n, size_t *off, const char **line,
                     size_t *len)
{
    const char *s = p + *off;
    const char *nl = memchr(s, '\n', n - *off);
    size_t l = nl ? (size_t)(nl - s) : n - *off;

    if (in_head(r)) {
        r->head_bytes += (uint32_t)(l + (nl != NULL));
        if (r->head_bytes > GL_RESP_MAX_HEAD)
            return -1;
    }
    if (!nl) {
        *off = n;
        return stash(r, s, l) == 0 ? 0 : -1;
    }
    *off += l + 1;
    if (r->carry_len) {
        if (stash(r, s, l) != 0)
            return -1;
        s = r->carry;
        l = r->carry_len;
        r->carry_len = 0; /* the bytes stay valid until the next stash */
    } else if (l > GL_RESP_MAX_LINE) {
        return -1;
    }
    if (l && s[l - 1] == '\r')
        l--;
    *line = s;
    *len = l;
    return 1;
}

/* ------------------------------------------------------------- head */

/* "HTTP/1.x NNN[ reason]" */
static int status_line(gl_resp *r, const char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (s[i] < '0' || s[i] > '9')
            return -1;
    if (n > 12 && s[12] != ' ')
        return -1;
    r->version = s[7] == '0' ? 10 : 11;
    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (r->status < 100)
        return -1;
    /* An interim response's headers say nothing about the final one. */
    r->chunked = r->has_len = r->conn_close = r->conn_keepalive = 0;
    r->seen_status = 1;
    r->state = S_HEADER;
    return 0;
}

/* Calls fn on each comma-separated token of v (blanks trimmed). */
static void tokens(const char *v, size_t n, void (*fn)(gl_resp *, const char *, size_t), gl_resp *r)
{
    size_t i = 0;

    while (i < n) {
        size_t start, end;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        start = i;
        while (i < n && v[i] != ',')
            i++;
        end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start)
            fn(r, v + start, end - start);
    }
}

static void connection_token(gl_resp *r, const char *t, size_t n)
{
    if (n == 5 && !strncasecmp(t, "close", 5))
        r->conn_close = 1;
    else if (n == 10 && !strncasecmp(t, "keep-alive", 10))
        r->conn_keepalive = 1;
}

/* Transfer-Encoding: chunked only when it is the last coding; any other
 * last coding means the body runs to the close (RFC 9112, 6.3). Marks
 * that the header was seen with has_len = 2, which overrides a length. */
static void te_token(gl_resp *r, const char *t, size_t n)
{
    r->chunked = n == 7 && !strncasecmp(t, "chunked", 7);
    r->has_len = 2;
}

/* Content-Length: digits, or a list of equal values ("10, 10"). */
static int content_length(gl_resp *r, const char *v, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint64_t x = 0;
        size_t d = 0;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        for (; i < n && v[i] >= '0' && v[i] <= '9'; i++, d++) {
            if (x > (UINT64_MAX >> 4))
                return -1;
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (!d || (i < n && v[i] != ','))
            return -1;
        if (r->has_len == 1 && r->len != x)
            return -1;
        if (r->has_len != 2) { /* Transfer-Encoding, if seen, wins */
            r->has_len = 1;
            r->len = x;
        }
    }
    return 0;
}

static void copy_server(gl_resp *r, const char *v, size_t n)
{
    if (n >= r->server_cap)
        n = r->server_cap - 1;
    memcpy(r->server, v, n);
    r->server[n] = '\0';
}

static int header_line(gl_resp *r, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    const char *v;
    size_t name, vn;

    if (s[0] == ' ' || s[0] == '\t') /* obsolete line folding: ignored */
        return 0;
    if (!colon || colon == s)
        return -1;
    name = (size_t)(colon - s);
    if (memchr(s, ' ', name) || memchr(s, '\t', name))
        return -1;
    v = colon + 1;
    vn = n - name - 1;
    while (vn && (*v == ' ' || *v == '\t'))
        v++, vn--;
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
    switch (name) {
    case 6:
        if (r->server && r->server_cap && !strncasecmp(s, "server", 6))
            copy_server(r, v, vn);
        break;
    case 10:
        if (!strncasecmp(s, "connection", 10))
            tokens(v, vn, connection_token, r);
        break;
    case 14:
        if (!strncasecmp(s, "content-length", 14) && content_length(r, v, vn) != 0)
            return -1;
        break;
    case 17:
        if (!strncasecmp(s, "transfer-encoding", 17)) {
            if (r->has_len == 1)
                r->has_len = 0; /* the length no longer counts */
            tokens(v, vn, te_token, r);
        }
        break;
    }
    return 0;
}

/* The empty line: where does the body end? */
static void end_of_head(gl_resp *r)
{
    int st = r->status;

    if (st < 200 && st != 101) { /* interim: the final response follows */
        r->state = S_STATUS;
        r->seen_status = 1;
        return;
    }
    if (st == 101)
        r->conn_close = 1; /* another protocol follows: never reused */
    if (r->head_only || st == 101 || st == 204 || st == 304) {
        r->state = S_DONE;
    } else if (r->has_len == 2 && r->chunked) {
        r->state = S_CHUNK_SIZE;
    } else if (r->has_len == 1) {
        r->remaining = r->len;
        r->state = r->len ? S_BODY_LEN : S_DONE;
    } else {
        r->conn_close = 1;
        r->state = S_BODY_EOF;
    }
}

/* ------------------------------------------------------------- chunks */

/* "1a2b[;ext]" */
static int chunk_size(gl_resp *r, const char *s, size_t n)
{
    uint64_t x = 0;
    size_t i = 0;

    for (; i < n; i++) {
        int d;

        if (s[i] >= '0' && s[i] <= '9')
            d = s[i] - '0';
        else if ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')
            d = (s[i] | 0x20) - 'a' + 10;
        else
            break;
        if (x >> 59)
            return -1;
        x = x * 16 + (uint64_t)d;
    }
    if (i == 0)
        return -1;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < n && s[i] != ';')
        return -1;
    if (x == 0) {
        r->state = S_TRAILER;
        r->head_bytes = 0; /* the trailer section has its own limit */
    } else {
        r->remaining = x;
        r->state = S_CHUNK_DATA;
    }
    return 0;
}

static int on_line(gl_resp *r, const char *s, size_t n)
{
    switch (r->state) {
    case S_STATUS:
        return status_line(r, s, n);
    case S_HEADER:
        if (n == 0) {
            end_of_head(r);
            return 0;
        }
        return header_line(r, s, n);
    case S_CHUNK_SIZE:
        return chunk_size(r, s, n);
    case S_CHUNK_END:
        if (n != 0)
            return -1;
        r->state = S_CHUNK_SIZE;
        return 0;
    case S_TRAILER:
        if (n == 0)
            r->state = S_DONE;
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------- feed */

/* Skip body bytes: the rest of a Content-Length body or of a chunk. */
static size_t skip(gl_resp *r, size_t avail)
{
    size_t take = r->remaining < avail ? (size_t)r->remaining : avail;

    r->remaining -= take;
    r->body += take;
    if (!r->remaining)
        r->state = r->state == S_BODY_LEN ? S_DONE : S_CHUNK_END;
    return take;
}

int gl_resp_feed(gl_resp *r, const char *p, size_t n, size_t *used)
{
    size_t off = 0;

    while (r->state != S_DONE && off < n) {
        const char *line;
        size_t len;
        int t;

        switch (r->state) {
        case S_BODY_LEN:
        case S_CHUNK_DATA:
            off += skip(r, n - off);
            break;
        case S_BODY_EOF:
            r->body += n - off;
            off = n;
            break;
        default:
            if ((t = take_line(r, p, n, &off, &line, &len)) < 0)
                return GL_RESP_BAD;
            if (t > 0 && on_line(r, line, len) != 0)
                return GL_RESP_BAD;
        }
    }
    *used = off;
    return r->state == S_DONE ? GL_RESP_DONE : GL_RESP_MORE;
}
