/* libFuzzer target for the chunked decoder (src/http/chunked.c), which the
 * server and the client share. Two oracles:
 * - streaming: the bytes decoded in one piece and in random slices (in
 *   place, the payload moving down over the framing as the server does it)
 *   must give the same outcome: bytes consumed, payload, done or error;
 * - differential: the reference parser of fuzz/ref_http.h, written from
 *   RFC 9112's grammar alone, must agree: a body it finds valid ends at
 *   the same byte with as much payload, one it finds invalid is refused,
 *   and one it finds incomplete is consumed whole without an error.
 *
 * The input's first byte seeds the slicing; the rest is the body.
 * Built and run by scripts/fuzz-http.sh. */
#include "http/http.h"
#include "ref_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct outcome {
    int error, done;
    size_t consumed, produced;
} outcome;

/* Decode buf[0, n) in place, in slices of sizes the seed gives (0: all at
 * once), as a connection would: each slice is appended to what is not yet
 * consumed. */
static outcome decode(char *buf, size_t n, uint32_t seed)
{
    gr__http_chunked d;
    outcome o = {0, 0, 0, 0};
    size_t avail = 0;

    gr__http_chunked_init(&d);
    while (!o.error && !o.done && o.consumed < n) {
        size_t produced, slice = n - o.consumed - avail;
        ssize_t used;

        if (seed) {
            seed = seed * 1103515245u + 12345u;
            if (slice > 1)
                slice = 1 + (seed >> 16) % (slice < 16 ? slice : 16);
        }
        avail += slice;
        used = gr__http_chunked_decode(&d, buf + o.consumed, avail, buf + o.produced, &produced);
        if (used < 0) {
            o.error = 1;
            break;
        }
        o.consumed += (size_t)used;
        o.produced += produced;
        avail -= (size_t)used;
        o.done = gr__http_chunked_done(&d);
        if (avail && !o.done)
            abort(); /* a slice must be taken whole unless the body ended */
    }
    if (d.wire != o.consumed && !o.error)
        abort();
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a[1 << 16], b[1 << 16];
    outcome whole, sliced;
    ref_in in;
    uint64_t payload;
    int r;

    if (size < 1 || size - 1 > sizeof a)
        return 0;
    memcpy(a, data + 1, size - 1);
    memcpy(b, data + 1, size - 1);
    whole = decode(a, size - 1, 0);
    sliced = decode(b, size - 1, data[0] | 1u);
    if (whole.error != sliced.error || whole.done != sliced.done ||
        (!whole.error && (whole.consumed != sliced.consumed || whole.produced != sliced.produced ||
                          memcmp(a, b, whole.produced)))) {
        fprintf(stderr,
                "whole: error %d done %d consumed %zu produced %zu; sliced: %d %d %zu %zu\n",
                whole.error, whole.done, whole.consumed, whole.produced, sliced.error, sliced.done,
                sliced.consumed, sliced.produced);
        abort();
    }
    in = (ref_in){data + 1, size - 1, 0};
    r = ref_chunked_body(&in, &payload);
    if ((r == REF_OK && (!whole.done || whole.consumed != in.i || whole.produced != payload)) ||
        (r == REF_INVALID && !whole.error) || (r == REF_MORE && (whole.error || whole.done))) {
        fprintf(stderr,
                "decoder: error %d done %d consumed %zu produced %zu; reference: %d at %zu\n",
                whole.error, whole.done, whole.consumed, whole.produced, r, in.i);
        abort();
    }
    return 0;
}
