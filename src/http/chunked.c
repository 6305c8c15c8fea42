/* The chunked transfer coding (RFC 9112 7.1), decoded strictly and in a
 * stream: bytes come in pieces of any size, payload goes out in place.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *   ext-val      = token / quoted-string
 *   trailer-section = *( field-line CRLF )
 *
 * Every line ends in CR LF and every chunk's data in CR LF, checked (llhttp
 * 8.1 takes any two bytes after the data, and a bare LF after the last
 * chunk); extensions are parsed to the grammar and dropped; trailer fields
 * are checked (a token, a colon, a value of visible bytes and blanks) and
 * dropped. Nothing is buffered: framing bytes are read one at a time
 * through the state machine, data in bulk. The decoder stops at the end of
 * the body, so what follows it (a pipelined request) is left alone. */
#include "http.h"

enum {
    C_SIZE_FIRST, /* the first hex digit of a size */
    C_SIZE,       /* more digits, or what ends them */
    C_EXT_BWS,    /* blanks before a ';' */
    C_NAME_BWS,   /* blanks after a ';' */
    C_NAME,       /* an extension's name */
    C_NAME_END,   /* blanks after a name: '=', ';' or the line's end follows */
    C_VALUE_BWS,  /* blanks after '=' */
    C_TOKEN,      /* an unquoted value */
    C_QUOTED,     /* a quoted value */
    C_QUOTED_PAIR,
    C_VALUE_END, /* after a quoted value */
    C_LINE_LF,   /* the LF of a size line */
    C_DATA,
    C_DATA_CR,
    C_DATA_LF,
    C_TRAILER,    /* the start of a trailer line, or of the final CR LF */
    C_FIELD_NAME, /* a trailer field's name */
    C_FIELD_VALUE,
    C_FIELD_LF,
    C_END_LF, /* the LF that ends the body */
    C_DONE,
};

/* Sizes beyond this are refused: no body is that large, and 16 hex digits
 * would overflow. */
#define MAX_CHUNK ((uint64_t)1 << 60)

void gr__http_chunked_init(gr__http_chunked *d)
{
    *d = (gr__http_chunked){0};
}

int gr__http_chunked_done(const gr__http_chunked *d)
{
    return d->state == C_DONE;
}

static int hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static int blank(unsigned char ch)
{
    return ch == ' ' || ch == '\t';
}

/* qdtext and the second byte of a quoted-pair, and field-value bytes:
 * HTAB, SP, visible ASCII and obs-text. */
static int text(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* Where a byte of a size line or extension may lead. -1: malformed. */
static int size_line(gr__http_chunked *d, unsigned char ch)
{
    int x;

    switch (d->state) {
    case C_SIZE_FIRST:
    case C_SIZE:
        if ((x = hex_value(ch)) >= 0) {
            if (d->size >= MAX_CHUNK)
                return -1;
            d->size = d->size * 16 + (uint64_t)x;
            return C_SIZE;
        }
        if (d->state == C_SIZE_FIRST)
            return -1;
        return ch == ';' ? C_NAME_BWS : blank(ch) ? C_EXT_BWS : ch == '\r' ? C_LINE_LF : -1;
    case C_EXT_BWS:
        return blank(ch) ? C_EXT_BWS : ch == ';' ? C_NAME_BWS : -1;
    case C_NAME_BWS:
        return blank(ch) ? C_NAME_BWS : gr__http_tchar(ch) ? C_NAME : -1;
    case C_NAME:
        if (gr__http_tchar(ch) || ch == '\r')
            return ch == '\r' ? C_LINE_LF : C_NAME;
        return blank(ch) ? C_NAME_END : ch == '=' ? C_VALUE_BWS : ch == ';' ? C_NAME_BWS : -1;
    case C_NAME_END: /* blanks after a name lead to '=' or ';' */
        return blank(ch) ? C_NAME_END : ch == '=' ? C_VALUE_BWS : ch == ';' ? C_NAME_BWS : -1;
    case C_VALUE_BWS:
        return blank(ch) ? C_VALUE_BWS : ch == '"' ? C_QUOTED : gr__http_tchar(ch) ? C_TOKEN : -1;
    case C_TOKEN:
        if (gr__http_tchar(ch))
            return C_TOKEN;
        return blank(ch) ? C_EXT_BWS : ch == ';' ? C_NAME_BWS : ch == '\r' ? C_LINE_LF : -1;
    case C_VALUE_END:
        return blank(ch) ? C_EXT_BWS : ch == ';' ? C_NAME_BWS : ch == '\r' ? C_LINE_LF : -1;
    case C_QUOTED:
        return ch == '"' ? C_VALUE_END : ch == '\\' ? C_QUOTED_PAIR : text(ch) ? C_QUOTED : -1;
    case C_QUOTED_PAIR:
        return text(ch) ? C_QUOTED : -1;
    case C_LINE_LF:
        return ch != '\n' ? -1 : d->size ? C_DATA : C_TRAILER;
    }
    return -1;
}

/* Where a byte after the data, or of the trailer section, may lead. */
static int after_data(gr__http_chunked *d, unsigned char ch)
{
    switch (d->state) {
    case C_DATA_CR:
        return ch == '\r' ? C_DATA_LF : -1;
    case C_DATA_LF:
        return ch == '\n' ? C_SIZE_FIRST : -1;
    case C_TRAILER:
        return ch == '\r' ? C_END_LF : gr__http_tchar(ch) ? C_FIELD_NAME : -1;
    case C_FIELD_NAME:
        return gr__http_tchar(ch) ? C_FIELD_NAME : ch == ':' ? C_FIELD_VALUE : -1;
    case C_FIELD_VALUE:
        return ch == '\r' ? C_FIELD_LF : text(ch) ? C_FIELD_VALUE : -1;
    case C_FIELD_LF:
        return ch == '\n' ? C_TRAILER : -1;
    case C_END_LF:
        return ch == '\n' ? C_DONE : -1;
    }
    return -1;
}

ssize_t gr__http_chunked_decode(gr__http_chunked *d, const char *in, size_t n, char *out,
                                size_t *produced)
{
    size_t i = 0;

    *produced = 0;
    while (i < n && d->state != C_DONE) {
        int next;

        if (d->state == C_DATA) {
            size_t k = n - i < d->size ? n - i : (size_t)d->size;

            memmove(out + *produced, in + i, k);
            *produced += k;
            i += k;
            if (!(d->size -= k))
                d->state = C_DATA_CR;
            continue;
        }
        next = d->state >= C_DATA_CR ? after_data(d, (unsigned char)in[i])
                                     : size_line(d, (unsigned char)in[i]);
        if (next < 0)
            return -1;
        d->state = (uint8_t)next;
        i++;
    }
    d->wire += i;
    return (ssize_t)i;
}
