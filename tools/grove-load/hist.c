/* The latency histogram's read side: merging and percentiles (hist.h). */
#include "hist.h"

#include <math.h>

uint64_t gl_hist_low(unsigned i)
{
    unsigned e;

    if (i < 2 * GL_HIST_SUB)
        return i;
    e = i / GL_HIST_SUB - 1; /* i = e * 128 + m, m in [128, 256) */
    return (uint64_t)(i - e * GL_HIST_SUB) << e;
}

uint64_t gl_hist_width(unsigned i)
{
    return i < 2 * GL_HIST_SUB ? 1 : (uint64_t)1 << (i / GL_HIST_SUB - 1);
}

void gl_hist_merge(gl_hist *dst, const gl_hist *src)
{
    if (!src->n)
        return;
    for (unsigned i = 0; i < GL_HIST_BUCKETS; i++)
        dst->count[i] += src->count[i];
    if (dst->n == 0 || src->min_ns < dst->min_ns)
        dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
    dst->n += src->n;
    dst->sum_ns += src->sum_ns;
}

/* The middle of bucket i, kept within what was recorded. */
static uint64_t representative(const gl_hist *h, unsigned i)
{
    uint64_t v = gl_hist_low(i) + (gl_hist_width(i) - 1) / 2;

    if (v < h->min_ns)
        v = h->min_ns;
    if (v > h->max_ns)
        v = h->max_ns;
    return v;
}

uint64_t gl_hist_percentile(const gl_hist *h, double p)
{
    uint64_t rank, seen = 0;

    if (!h->n)
        return 0;
    if (p >= 100.0)
        return h->max_ns;
    /* The rank of the value: ceil(p% of n), at least the first. The
     * small allowance keeps 99.9% of 1000 at 999, not 1000, despite the
     * binary fractions. */
    rank = (uint64_t)ceil(p / 100.0 * (double)h->n - 1e-9);
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < GL_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank)
            return representative(h, i);
    }
    return h->max_ns;
}

double gl_hist_mean(const gl_hist *h)
{
    return h->n ? (double)h->sum_ns / (double)h->n : 0.0;
}

double gl_hist_stddev(const gl_hist *h)
{
    double mean = gl_hist_mean(h), sq = 0;

    if (h->n < 2)
        return 0.0;
    for (unsigned i = 0; i < GL_HIST_BUCKETS; i++) {
        if (h->count[i]) {
            double d = (double)representative(h, i) - mean;

            sq += d * d * (double)h->count[i];
        }
    }
    return sqrt(sq / (double)h->n);
}
