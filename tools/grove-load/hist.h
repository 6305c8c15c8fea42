/* A log-linear latency histogram (HdrHistogram's layout), in nanoseconds.
 *
 * Values below 256 ns have a bucket each. Above, every power of two
 * [2^k, 2^(k+1)) is cut into 128 equal buckets, so a bucket is at most
 * 1/128 of its lowest value wide; reporting its middle is off by at most
 * 1/256 (0.4%) of the true value. Values up to 100 s fit in 3,968
 * buckets (31 KiB of counts); larger ones are counted in the last bucket
 * and still reach max_ns exactly.
 *
 * Recording is a few instructions and touches one count: the histogram
 * lives in shared memory, written by one worker, read by the parent after
 * the worker is done (the status line reads only the counters). */
#ifndef GROVE_LOAD_HIST_H
#define GROVE_LOAD_HIST_H

#include <stdint.h>

#define GL_HIST_SUB_BITS 7
#define GL_HIST_SUB (1u << GL_HIST_SUB_BITS)
#define GL_HIST_MAX_NS ((uint64_t)100 * 1000 * 1000 * 1000)
/* Room for exponents up to 29 (100e9 < 2^37): 100 s itself is bucket
 * 3,898. */
#define GL_HIST_BUCKETS (29 * GL_HIST_SUB + 2 * GL_HIST_SUB)

typedef struct gl_hist {
    uint64_t n;      /* values recorded */
    uint64_t sum_ns; /* their sum, for an exact mean */
    uint64_t min_ns, max_ns;
    uint64_t count[GL_HIST_BUCKETS];
} gl_hist;

/* The bucket of v: v itself below 256, else (exponent, top 8 bits). */
static inline unsigned gl_hist_index(uint64_t v)
{
    unsigned e;

    if (v < 2 * GL_HIST_SUB)
        return (unsigned)v;
    if (v > GL_HIST_MAX_NS)
        v = GL_HIST_MAX_NS;
    e = 63u - (unsigned)__builtin_clzll(v) - GL_HIST_SUB_BITS; /* v >> e in [128, 256) */
    return e * GL_HIST_SUB + (unsigned)(v >> e);
}

static inline void gl_hist_record(gl_hist *h, uint64_t v)
{
    h->count[gl_hist_index(v)]++;
    if (h->n == 0 || v < h->min_ns)
        h->min_ns = v;
    if (v > h->max_ns)
        h->max_ns = v;
    h->n++;
    h->sum_ns += v;
}

/* Lowest value and width of bucket i. */
uint64_t gl_hist_low(unsigned i);
uint64_t gl_hist_width(unsigned i);

/* Add src into dst. */
void gl_hist_merge(gl_hist *dst, const gl_hist *src);

/* The value at percentile p (0 < p <= 100): the smallest recorded value
 * v such that at least p% of the values are <= v, as the middle of its
 * bucket, kept within [min, max]; p = 100 gives max exactly. 0 when
 * empty. */
uint64_t gl_hist_percentile(const gl_hist *h, double p);

/* Mean (exact) and standard deviation (from the buckets), in ns. */
double gl_hist_mean(const gl_hist *h);
double gl_hist_stddev(const gl_hist *h);

#endif
