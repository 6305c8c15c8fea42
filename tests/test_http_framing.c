/* Request framing (docs/http.md, "What is rejected, and why"): every
 * malformed head, malformed body and smuggling vector is sent raw on a
 * fresh connection, followed by a pipelined request for /smuggled, to the
 * green-thread server and to the threaded one. A bad head gets one answer
 * (400, or the status its rule says) and a close; a bad chunked body may
 * follow an answer the handler already gave (the handler answers before
 * reading in one pass, after in the other); and whatever came, /smuggled
 * is never served as another request. Valid but unusual requests are
 * checked to pass, so that strictness has not gone too far. */
#include "http_common.h"

/* ============================================================ handlers */

/* How many requests for /smuggled reached a handler: must stay 0. */
static atomic_int smuggled;

/* arg NULL: read the whole body, then answer with it (a malformed body
 * makes the read fail, the handler return -1 and the server answer 400 or
 * 413). arg not NULL: answer first, then read (the server has answered
 * 200 when the body turns out malformed: it can only close). */
static int h_frame(gr_http_request *req, void *arg)
{
    char *body = NULL;
    ssize_t n = 0;
    int rc;

    if (!strcmp(req->path, "/smuggled"))
        atomic_fetch_add(&smuggled, 1);
    if (arg) {
        rc = gr_http_respond(req, 200, NULL, 0, "first", 5, -1);
        if ((n = read_all(req, &body)) >= 0)
            free(body);
        return rc;
    }
    if ((n = read_all(req, &body)) < 0)
        return -1;
    rc = gr_http_respond(req, 200, NULL, 0, body, (size_t)n, -1);
    free(body);
    return rc;
}

/* Small limits, so that floods of extensions and trailers reach them. */
static const gr_http_opts frame_opts = {.max_body = 4096};

/* ============================================================== vectors */

enum kind {
    HEAD,  /* refused before the handler runs: one answer of `status`, then close */
    BODY,  /* the handler runs; its read fails: `status` (reading first) or 200, then close */
    CLOSE, /* served (200), then the connection closes: nothing after it is served */
};

typedef struct vector {
    const char *what;
    const char *bytes;
    size_t len;
    int status;
    int kind;
} vector;

#define V(what, bytes, status, kind)                                                               \
    {                                                                                              \
        what, bytes, sizeof bytes - 1, status, kind                                                \
    }
#define CHUNKED "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

static const vector vectors[] = {
    /* ---- the vectors, as reproduced */
    V("1: empty value ended by a bare CR",
      "POST / HTTP/1.1\r\nHost: a\r\nX: \rxTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n",
      400, HEAD),
    V("2: head ended by CR LF CR X", "GET / HTTP/1.1\r\nHost: a\r\n\r\rX", 400, HEAD),
    V("2: head ended by CR LF CR X, then a body",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\rXA", 400, HEAD),
    V("2: trailers ended by CR X", CHUNKED "1\r\nA\r\n0\r\n\rX", 400, BODY),
    V("3: data followed by XX", CHUNKED "3\r\nabcXX0\r\n\r\n", 400, BODY),
    V("3: data followed by a bare LF", CHUNKED "3\r\nabc\n0\r\n\r\n", 400, BODY),
    V("3: trailers ended by a bare LF", CHUNKED "3\r\nabc\r\n0\r\n\n", 400, BODY),
    V("6: HTTP/1.0 with Transfer-Encoding",
      "POST / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      200, CLOSE),
    V("9: HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400, HEAD),
    V("9: two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, HEAD),
    V("9: two Hosts in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400, HEAD),
    V("9: TAB in the target", "GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("9: FF in the target", "GET /a\fb HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("9: byte 0x80 in the target", "GET /a\x80z HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("9: byte 0xff in the target", "GET /a\xffz HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("9: DEL in the target", "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),

    /* ---- before issue 12: malformed and smuggling requests */
    V("bad method", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("unknown method", "FROB / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("lower-case method", "get / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("bad version", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400, HEAD),
    V("version 1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 400, HEAD),
    V("no version", "GET / FTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("missing CRLF in request line", "GET / HTTP/1.1 X\r\nHost: a\r\n\r\n", 400, HEAD),
    V("space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("NUL in target", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("NUL in header name", "GET / HTTP/1.1\r\nHost: a\r\nA\0B: c\r\n\r\n", 400, HEAD),
    V("NUL in header value", "GET / HTTP/1.1\r\nHost: a\r\nA: b\0c\r\n\r\n", 400, HEAD),
    V("control in header value",
      "GET / HTTP/1.1\r\nHost: a\r\nA: b\x01"
      "c\r\n\r\n",
      400, HEAD),
    V("space in header name", "GET / HTTP/1.1\r\nHost: a\r\nA B: c\r\n\r\n", 400, HEAD),
    V("space before colon", "GET / HTTP/1.1\r\nHost : c\r\n\r\n", 400, HEAD),
    V("empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: c\r\n\r\n", 400, HEAD),
    V("header without colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400, HEAD),
    V("obsolete line folding", "GET / HTTP/1.1\r\nHost: a\r\nA: b\r\n  c\r\n\r\n", 400, HEAD),
    V("leading whitespace line", "GET / HTTP/1.1\r\nHost: a\r\n X: y\r\n\r\n", 400, HEAD),
    V("bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, HEAD),
    V("bare LF header", "GET / HTTP/1.1\r\nHost: a\n\r\n", 400, HEAD),
    V("bare LF end of head", "GET / HTTP/1.1\r\nHost: a\r\n\n", 400, HEAD),
    V("bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n", 400, HEAD),
    V("bare CR", "GET / HTTP/1.1\rHost: a\r\n\r\n", 400, HEAD),
    V("HTTP/0.9", "GET /\r\n\r\n", 505, HEAD),
    V("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, HEAD),
    V("binary", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, HEAD),
    V("Content-Length and Transfer-Encoding",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n",
      400, HEAD),
    V("Transfer-Encoding and Content-Length",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: "
      "5\r\n\r\n0\r\n\r\n",
      400, HEAD),
    V("two different Content-Lengths",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400,
      HEAD),
    V("two equal Content-Lengths",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400,
      HEAD),
    V("Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400,
      HEAD),
    V("signed Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400,
      HEAD),
    V("negative Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400,
      HEAD),
    V("hex Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", 400,
      HEAD),
    V("huge Content-Length",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400, HEAD),
    V("chunked, identity",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, "
      "identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      400, HEAD),
    V("identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\nhello", 400,
      HEAD),
    V("xchunked",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      400, HEAD),
    V("chunked-x",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      400, HEAD),
    V("Transfer-Encoding with space before colon",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      400, HEAD),
    V("Transfer-Encoding folded onto a line",
      "POST / HTTP/1.1\r\nHost: a\r\n Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      400, HEAD),
    V("Transfer-Encoding value folded",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      400, HEAD),
    V("Transfer-Encoding with a space in the name",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      400, HEAD),
    V("two Transfer-Encodings, chunked not last",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
      "identity\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      400, HEAD),
    V("bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n\r\n",
      400, BODY),
    V("chunk size with space",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
      400, BODY),
    V("chunk longer than its size",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n",
      400, BODY),
    V("chunk with bare LF",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", 400, BODY),
    V("chunk size overflow",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 400,
      BODY),

    /* ---- bare CR, everywhere */
    V("bare CR after the method", "GET\r/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("bare CR in the target", "GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("bare CR in a name", "GET / HTTP/1.1\r\nHo\rst: a\r\n\r\n", 400, HEAD),
    V("bare CR before a value", "GET / HTTP/1.1\r\nHost:\ra\r\n\r\n", 400, HEAD),
    V("bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, HEAD),
    V("CR CR LF ending a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\r\n\r\n", 400, HEAD),
    V("bare CR as an empty value", "GET / HTTP/1.1\r\nHost: a\r\nX:\rY: b\r\n\r\n", 400, HEAD),
    V("bare CR in the blank line", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 400, HEAD),
    V("bare CR before the request line", "\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),

    /* ---- bare LF, everywhere */
    V("bare LF ending a field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, HEAD),
    V("bare LF in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n", 400, HEAD),
    V("bare LF before the request line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("LF CR for CR LF", "GET / HTTP/1.1\n\rHost: a\n\r\n\r", 400, HEAD),

    /* ---- lines, request line, fields */
    V("obs-fold with a tab", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", 400, HEAD),
    V("obs-fold of an empty value", "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n c\r\n\r\n", 400, HEAD),
    V("two spaces before the target", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("two spaces before the version", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("a space after the version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, HEAD),
    V("a tab for a space", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, HEAD),
    V("HTTP/1.9 (llhttp does not parse it)", "GET / HTTP/1.9\r\nHost: a\r\n\r\n", 400, HEAD),
    V("a tab in a name", "GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n", 400, HEAD),
    V("a quote in a name", "GET / HTTP/1.1\r\nHost: a\r\nX\"y: b\r\n\r\n", 400, HEAD),
    V("a NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400, HEAD),
    V("a DEL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", 400, HEAD),
    V("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, HEAD),
    V("Host with user info", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400, HEAD),
    V("Host with a path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, HEAD),
    V("Host with a bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", 400, HEAD),
    V("Host with an open bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, HEAD),

    /* ---- framing headers */
    V("chunked twice",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
      "0\r\n\r\n",
      400, HEAD),
    V("chunked in two fields",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
      "\r\n0\r\n\r\n",
      400, HEAD),
    V("gzip, chunked: not implemented",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, HEAD),
    V("chunked with a parameter",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n", 400, HEAD),
    V("empty Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", 400,
      HEAD),

    /* ---- chunk sizes */
    V("empty chunk size", CHUNKED "\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("negative chunk size", CHUNKED "-1\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("0x chunk size", CHUNKED "0x3\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("signed chunk size", CHUNKED "+3\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("blank before a chunk size", CHUNKED " 3\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("bare CR after a chunk size", CHUNKED "3\rabc\r\n0\r\n\r\n", 400, BODY),
    V("CR then not LF after data", CHUNKED "3\r\nabc\rX0\r\n\r\n", 400, BODY),
    V("bare LF after the last chunk", CHUNKED "3\r\nabc\r\n0\n\r\n", 400, BODY),

    /* ---- chunk extensions */
    V("extension without a name", CHUNKED "3;\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("extension value without a name", CHUNKED "3;=x\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("extension with an empty value", CHUNKED "3;a=\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("extension with a space inside", CHUNKED "3;a b\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("extension value with a space inside", CHUNKED "3;a=b c\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("unterminated quoted extension", CHUNKED "3;a=\"x\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("bytes after a quoted extension", CHUNKED "3;a=\"x\"y\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("control byte in an extension", CHUNKED "3;a\x01\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("bare LF ending an extension", CHUNKED "3;a\nabc\r\n0\r\n\r\n", 400, BODY),
    V("bare CR in a quoted extension", CHUNKED "3;a=\"x\ry\"\r\nabc\r\n0\r\n\r\n", 400, BODY),
    V("blank ending an extension line", CHUNKED "3;a \r\nabc\r\n0\r\n\r\n", 400, BODY),

    /* ---- trailers */
    V("bare LF ending a trailer", CHUNKED "0\r\nX: y\n\r\n", 400, BODY),
    V("space in a trailer name", CHUNKED "0\r\nX y: z\r\n\r\n", 400, BODY),
    V("empty trailer name", CHUNKED "0\r\n: z\r\n\r\n", 400, BODY),
    V("trailer without a colon", CHUNKED "0\r\nX\r\n\r\n", 400, BODY),
    V("bare CR in a trailer", CHUNKED "0\r\nX: a\rb\r\n\r\n", 400, BODY),
    V("obs-fold in a trailer", CHUNKED "0\r\nX: a\r\n b\r\n\r\n", 400, BODY),
    V("control byte in a trailer", CHUNKED "0\r\nX: \x01\r\n\r\n", 400, BODY),
    V("trailers ended by LF CR", CHUNKED "0\r\nX: a\r\n\n\r", 400, BODY),
};

/* before + count copies of unit + after, malloc'd: floods of extensions
 * and trailers. */
static char *repeat(const char *before, const char *unit, size_t count, const char *after,
                    size_t *len)
{
    size_t a = strlen(before), u = strlen(unit), b = strlen(after);
    char *p = malloc(a + u * count + b);

    cr_assert_not_null(p);
    memcpy(p, before, a);
    for (size_t i = 0; i < count; i++)
        memcpy(p + a + i * u, unit, u);
    memcpy(p + a + u * count, after, b);
    *len = a + u * count + b;
    return p;
}

/* Valid, if unusual: each gets 200 and its body, and the connection lives
 * on (the pipelined /smuggled here is a request like any). */
typedef struct good {
    const char *what, *bytes, *body;
} good;

static const good goods[] = {
    {"empty lines before the request line", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", ""},
    {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", ""},
    {"an empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", ""},
    {"Host with a port", "GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n", ""},
    {"Host as an IPv6 literal", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", ""},
    {"an absolute-form target", "GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n", ""},
    {"a tab and obs-text in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\xe9\r\n\r\n", ""},
    {"an empty value, then a field", "GET / HTTP/1.1\r\nX:\r\nHost: a\r\n\r\n", ""},
    {"Chunked, capitalised",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
     "3\r\nabc\r\n0\r\n\r\n",
     "abc"},
    {"leading zeros and upper-case hex", CHUNKED "0000A\r\n0123456789\r\n00\r\n\r\n", "0123456789"},
    {"extensions to the grammar",
     CHUNKED "3;a=1;b=2\r\nabc\r\n2 ; c = \"x\\\"y\" ; d\r\nde\r\n0;e\r\n\r\n", "abcde"},
    {"trailers", CHUNKED "1\r\nz\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\n", "z"},
    {"Content-Length: 0", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", ""},
};

/* ============================================================= checks */

/* Every response on the connection until it closes; their statuses and
 * how many. */
static int responses(client *c, int *status, int max, const char *last_body)
{
    int n = 0;
    resp r;

    while (read_response_or_end(c, &r, 0, 1)) {
        cr_assert_lt(n, max, "more responses than requests served");
        status[n++] = r.status;
        if (last_body)
            cr_assert_str_eq(r.body, last_body);
        resp_free(&r);
    }
    return n;
}

static void check_vector(int port, const vector *v, int answer_first)
{
    static const char next[] = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    client *c = cl_open(port);
    int status[4], n;
    int want = v->kind == BODY && answer_first ? 200 : v->status;

    cl_case = v->what;
    cl_sendn(c, v->bytes, v->len);
    cl_sendn(c, next, sizeof next - 1);
    n = responses(c, status, 4, NULL);
    cr_assert_eq(n, 1, "%s: %d responses", v->what, n);
    cr_assert_eq(status[0], want, "%s: %d, want %d", v->what, status[0], want);
    cl_close(c);
}

/* 8: extensions and trailers count against max_body (4096 here): 413. */
static void check_floods(int port, int answer_first)
{
    static const struct {
        const char *what, *before, *unit, *after;
        size_t count;
    } floods[] = {
        {"8: a long extension value", CHUNKED "1;x=", "a", "\r\nA\r\n0\r\n\r\n", 8192},
        {"8: many extensions", CHUNKED "1", ";a=b", "\r\nA\r\n0\r\n\r\n", 2048},
        {"8: extensions on many empty chunks", CHUNKED, "1;ext=1234567890\r\nA\r\n", "0\r\n\r\n",
         512},
        {"a long trailer", CHUNKED "0\r\nX: ", "a", "\r\n\r\n", 8192},
        {"many trailers", CHUNKED "0\r\n", "X: y\r\n", "\r\n", 2048},
    };

    for (size_t i = 0; i < sizeof floods / sizeof *floods; i++) {
        vector v = {floods[i].what, NULL, 0, 413, BODY};
        char *bytes =
            repeat(floods[i].before, floods[i].unit, floods[i].count, floods[i].after, &v.len);

        v.bytes = bytes;
        check_vector(port, &v, answer_first);
        free(bytes);
    }
}

static void check_good(int port, const good *g)
{
    static const char next[] = "GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    client *c = cl_open(port);
    int status[4], n;
    resp r;

    cl_case = g->what;
    cl_sendn(c, g->bytes, strlen(g->bytes));
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200, "%s: %d", g->what, r.status);
    cr_assert_str_eq(r.body, g->body, "%s", g->what);
    resp_free(&r);
    cl_sendn(c, next, sizeof next - 1);
    n = responses(c, status, 4, "");
    cr_assert(n == 1 && status[0] == 200, "%s: the connection did not live on", g->what);
    cl_close(c);
}

/* Every vector against the server on port, with handlers that read first
 * (answer_first 0) or answer first. */
static void check_all(int port, int answer_first)
{
    atomic_store(&smuggled, 0);
    for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++)
        if (!answer_first || vectors[i].kind == BODY)
            check_vector(port, &vectors[i], answer_first);
    check_floods(port, answer_first);
    if (!answer_first)
        for (size_t i = 0; i < sizeof goods / sizeof *goods; i++)
            check_good(port, &goods[i]);
    cr_assert_eq(atomic_load(&smuggled), 0, "/smuggled was served");
}

typedef struct run {
    int threaded, answer_first;
} run;

static void *t_vectors(void *arg)
{
    const run *r = arg;
    any_srv s;

    any_start(&s, r->threaded, h_frame, r->answer_first ? "first" : NULL, &frame_opts);
    check_all(s.port, r->answer_first);
    any_stop(&s);
    return NULL;
}

Test(http_framing, green_server_reading_first, .timeout = 60)
{
    run r = {0, 0};

    run_main(t_vectors, &r);
}

Test(http_framing, green_server_answering_first, .timeout = 60)
{
    run r = {0, 1};

    run_main(t_vectors, &r);
}

Test(http_framing, threaded_server_reading_first, .timeout = 60)
{
    run r = {1, 0};

    run_main(t_vectors, &r);
}

Test(http_framing, threaded_server_answering_first, .timeout = 60)
{
    run r = {1, 1};

    run_main(t_vectors, &r);
}

/* ================================================ 4: a body that trickles */

/* Answers at once and leaves the body to the server's drain. */
static int h_ignore(gr_http_request *req, void *arg)
{
    (void)arg;
    return gr_http_respond(req, 200, NULL, 0, "ok", 2, -1);
}

/* The drain of an unread body is bounded by the body time-out as a whole
 * (300 ms here), though a byte comes every 50 ms: the connection closes
 * within it instead of lasting as long as the client trickles. */
static void *t_trickle(void *arg)
{
    static const gr_http_opts o = {.body_timeout_ms = 300};
    int64_t t0, took;
    any_srv s;
    client *c;
    resp r;

    any_start(&s, *(int *)arg, h_ignore, NULL, &o);
    c = cl_open(s.port);
    t0 = gr_now_update();
    cl_send(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nx");
    read_response(c, &r, 0);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    for (;;) {
        char x;
        ssize_t n;

        if (gr_wait_fd(c->fd, GR_READ, gr_now_update() + 50) > 0) {
            n = gr_reader_read(&c->r, &x, 1, gr_now() + WAIT_MS);
            cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "a byte after the response");
            break;
        }
        cr_assert_lt(gr_now_update() - t0, 5000, "the drain outlasted the body time-out");
        cl_send(c, "x");
    }
    took = gr_now_update() - t0;
    cr_assert(took >= 250 && took < 2500, "closed after %lld ms", (long long)took);
    cl_close(c);
    any_stop(&s);
    return NULL;
}

Test(http_framing, drain_bounded_by_the_body_timeout_green, .timeout = 20)
{
    int threaded = 0;

    run_main(t_trickle, &threaded);
}

Test(http_framing, drain_bounded_by_the_body_timeout_threaded, .timeout = 20)
{
    int threaded = 1;

    run_main(t_trickle, &threaded);
}

/* ===================================== 5: framing fields from a handler */

static atomic_int framing_errs[4];

/* Tries the framing fields a handler must not send, then answers with
 * "Connection: close", which asks the server to close after it. */
static int h_framing_fields(gr_http_request *req, void *arg)
{
    static const gr_http_header bad[4][1] = {{{"Content-Length", "0"}},
                                             {{"transfer-encoding", "chunked"}},
                                             {{"Connection", "keep-alive"}},
                                             {{"Connection", "close, upgrade"}}};
    static const gr_http_header h[] = {{"Content-Type", "text/plain"}, {"Connection", "close"}};

    (void)arg;
    for (int i = 0; i < 4; i++)
        atomic_store(&framing_errs[i],
                     gr_http_respond(req, 200, bad[i], 1, "x", 1, -1) == -1 ? errno : 0);
    if (gr_http_begin(req, 200, bad[1], 1, 5, -1) == 0)
        return -1;
    return gr_http_respond(req, 200, h, 2, "hello", 5, -1);
}

static void *t_framing_fields(void *arg)
{
    any_srv s;
    client *c;
    resp r;

    any_start(&s, *(int *)arg, h_framing_fields, NULL, NULL);
    c = cl_open(s.port);
    cl_send(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n");
    read_response(c, &r, 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(atomic_load(&framing_errs[i]), EINVAL, "framing field %d accepted", i);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "hello");
    cr_assert_str_eq(hdr(&r, "Content-Length"), "5");
    /* One Connection field, the server's. */
    cr_assert_str_eq(hdr(&r, "Connection"), "close");
    cr_assert_null(strstr(strstr(r.head, "Connection") + 1, "Connection"));
    cr_assert_null(hdr(&r, "Transfer-Encoding"));
    resp_free(&r);
    expect_closed(c);
    cl_close(c);
    any_stop(&s);
    return NULL;
}

Test(http_framing, handler_framing_fields_refused_green, .timeout = 20)
{
    int threaded = 0;

    run_main(t_framing_fields, &threaded);
}

Test(http_framing, handler_framing_fields_refused_threaded, .timeout = 20)
{
    int threaded = 1;

    run_main(t_framing_fields, &threaded);
}

/* ================================== the client's side: response framing */

/* A server that answers every request on a connection with the same
 * canned bytes, and counts its connections. */
typedef struct canned {
    const char *bytes;
    int conns;
    gr_server *srv;
    int port;
} canned;

static void canned_conn(int fd, const gr_addr *peer, void *arg)
{
    canned *k = arg;
    char buf[4096], line[1024];
    gr_reader rd;
    ssize_t n;

    (void)peer;
    k->conns++;
    gr_reader_init(&rd, fd, buf, sizeof buf);
    for (;;) { /* the client sends GETs: a head, no body */
        while ((n = gr_reader_line(&rd, line, sizeof line, gr_now() + WAIT_MS)) > 2) {
        }
        if (n <= 0 || gr_write_all(fd, k->bytes, strlen(k->bytes), NULL, gr_now() + WAIT_MS))
            return;
    }
}

/* A client of a canned server. */
typedef struct fetched {
    canned k;
    gr_http_client *c;
    gr_http_response res;
} fetched;

/* GET / from a server that says bytes: 0, or the errno of the failure;
 * the response in f->res, valid until the next request. */
static int fetch(fetched *f, const char *bytes)
{
    int l = loopback_listen();

    f->k = (canned){bytes, 0, NULL, gr_local_port(l)};
    f->k.srv = gr_server_new(l, canned_conn, &f->k, NULL);
    cr_assert_not_null(f->k.srv);
    cr_assert_eq(gr_server_start(f->k.srv), 0);
    f->c = gr_http_client_new("127.0.0.1", f->k.port);
    cr_assert_not_null(f->c);
    return gr_http_client_request(f->c, "GET", "/", NULL, 0, NULL, 0, &f->res,
                                  gr_now() + WAIT_MS) == 0
               ? 0
               : errno;
}

/* The same again on the same client: the connections used by the two. */
static int fetch_again(fetched *f)
{
    cr_assert_eq(
        gr_http_client_request(f->c, "GET", "/", NULL, 0, NULL, 0, &f->res, gr_now() + WAIT_MS), 0,
        "%s", strerror(errno));
    return f->k.conns;
}

static void fetched_free(fetched *f)
{
    gr_http_client_free(f->c);
    gr_server_stop(f->k.srv, gr_now() + 100);
    gr_server_free(f->k.srv);
}

static const char *field(const fetched *f, const char *name)
{
    return gr_http_response_header(&f->res, name);
}

/* 7 and RFC 9112's leniencies for a client: each response is read, and
 * whether the connection is reused says whether its framing was trusted. */
static void *t_client_lenient(void *arg)
{
    fetched f;

    (void)arg;
    /* 7: an empty value leaves the next field's name alone. */
    cr_assert_eq(fetch(&f, "HTTP/1.1 200 OK\r\nX-Empty:\r\nContent-Type: text/plain\r\n"
                           "Content-Length: 2\r\n\r\nok"),
                 0);
    cr_assert_str_eq(field(&f, "X-Empty"), "");
    cr_assert_str_eq(field(&f, "Content-Type"), "text/plain");
    cr_assert_str_eq(f.res.body, "ok");
    cr_assert_eq(fetch_again(&f), 1);
    fetched_free(&f);
    /* 7: obs-fold comes back as spaces, never CR LF (RFC 9112 5.2). */
    cr_assert_eq(fetch(&f, "HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\n\tc\r\nX-Next: n\r\n"
                           "Content-Length: 2\r\n\r\nok"),
                 0);
    cr_assert_str_eq(field(&f, "X-Fold"), "a    b  \tc");
    cr_assert_str_eq(field(&f, "X-Next"), "n");
    cr_assert_eq(f.res.nheaders, 3);
    fetched_free(&f);
    /* Lines ended by LF alone, and a bare CR read as a space (2.2). */
    cr_assert_eq(fetch(&f, "HTTP/1.1 201 Created\nX: a\rb\nContent-Length: 2\n\nok"), 0);
    cr_assert_eq(f.res.status, 201);
    cr_assert_str_eq(field(&f, "X"), "a b");
    cr_assert_str_eq(f.res.body, "ok");
    cr_assert_eq(fetch_again(&f), 1);
    fetched_free(&f);
    /* A blank-led line after the status line is consumed (2.2). */
    cr_assert_eq(fetch(&f, "HTTP/1.1 200 OK\r\n Junk: x\r\nContent-Length: 2\r\n\r\nok"), 0);
    cr_assert_null(field(&f, "Junk"));
    cr_assert_eq(f.res.nheaders, 1);
    fetched_free(&f);
    /* Content-Length beside Transfer-Encoding: chunked wins, and the
     * connection is not trusted again (6.3). */
    cr_assert_eq(fetch(&f, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
                 0);
    cr_assert_str_eq(f.res.body, "ok");
    cr_assert_eq(fetch_again(&f), 2);
    fetched_free(&f);
    /* A later HTTP/1.x is read as 1.1 (RFC 9110 2.5). */
    cr_assert_eq(fetch(&f, "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok"), 0);
    cr_assert_eq(f.res.version, 11);
    fetched_free(&f);
    /* Extensions and trailers to the grammar; then the connection is
     * reused. */
    cr_assert_eq(fetch(&f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2;a=1;b=\"x\"\r\nok\r\n0\r\nX-T: 1\r\n\r\n"),
                 0);
    cr_assert_str_eq(f.res.body, "ok");
    cr_assert_eq(fetch_again(&f), 1);
    fetched_free(&f);
    /* Stray bytes after a chunked body: the response stands, the
     * connection does not. */
    cr_assert_eq(fetch(&f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"),
                 0);
    cr_assert_str_eq(f.res.body, "ok");
    fetched_free(&f);
    return NULL;
}

Test(http_framing, client_lenient_where_the_rfc_allows, .timeout = 20)
{
    run_main(t_client_lenient, NULL);
}

/* Strict everywhere else: EPROTO, the connection closed. */
static void *t_client_strict(void *arg)
{
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a b\r\nabc\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX y: z\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\x01\r\nContent-Length: 0\r\n\r\n",
        "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    };
    fetched f;

    (void)arg;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int err = fetch(&f, bad[i]);

        cr_assert_eq(err, EPROTO, "response %zu: %s", i, strerror(err));
        fetched_free(&f);
    }
    return NULL;
}

Test(http_framing, client_strict_elsewhere, .timeout = 20)
{
    run_main(t_client_strict, NULL);
}
