/* libFuzzer target, differential: the server and a deliberately simple
 * reference parser (fuzz/ref_http.h, written from RFC 9112's grammar
 * alone) read the same bytes, and must agree on where each message ends,
 * or the server must refuse the message. This is request smuggling's own
 * test: a front end built like the reference and grove must never see
 * different requests in one stream.
 *
 * The server runs whole (head parser, chunked decoder, connection state
 * machine) on the in-memory connection of fuzz/fuzz_conn.h, with default
 * limits and a handler that reads each body to its end and notes where in
 * the stream the message ended. The reference lists the message ends of
 * the same stream. Every message the server served must be the reference's
 * message of the same rank, ending at the same byte; the server may serve
 * fewer (it is stricter: Host, methods, limits, closing), never others.
 *
 * The input's first two bytes choose how reads are sliced and how the
 * stream ends, as in http_request_fuzz.c (so the two share a corpus); the
 * rest is what the client sends. Built and run by scripts/fuzz-http.sh. */
#include "fuzz_conn.h"
#include "ref_http.h"

#define MAX_MSGS 64

static size_t served[MAX_MSGS], nserved;

/* Read the body to its end; the message then ends where parsing stopped,
 * which in the client's stream is what was delivered less what is left. */
static int handler(gr_http_request *r, void *arg)
{
    gr__http_conn *c = r->conn_;
    char body[4096];
    ssize_t k;

    (void)arg;
    while ((k = gr_http_read_body(r, body, sizeof body, -1)) > 0) {
    }
    if (k < 0)
        return -1; /* malformed or cut short: not served */
    if (nserved < MAX_MSGS)
        served[nserved++] = in.pos - (c->end - c->parsed);
    return gr_http_respond(r, 200, NULL, 0, "ok", 2, -1);
}

static void show(const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "%s (%zu bytes): ", what, n);
    for (size_t i = 0; i < n && i < 400; i++)
        fprintf(stderr, p[i] >= 0x20 && p[i] < 0x7f ? "%c" : "\\x%02x", p[i]);
    fprintf(stderr, "\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const gr_http_opts o = {.max_header_bytes = 1 << 16, .max_headers = 1000};
    size_t ref[MAX_MSGS], nref;

    if (size < 2)
        return 0;
    nserved = 0;
    fuzz_serve(data + 2, size - 2, (uint32_t)(data[1] >> 3) * 2654435761u, data[1] & 0x80, handler,
               &o, "127.0.0.1");
    nref = ref_requests(data + 2, size - 2, ref, MAX_MSGS);
    for (size_t i = 0; i < nserved; i++) {
        if (i < nref && served[i] == ref[i])
            continue;
        show("stream", data + 2, size - 2);
        if (i < nref)
            fprintf(stderr, "message %zu: the server ends it at %zu, the reference at %zu\n", i,
                    served[i], ref[i]);
        else
            fprintf(stderr, "message %zu (ending at %zu): served, but the reference rejects it\n",
                    i, served[i]);
        abort();
    }
    return 0;
}
