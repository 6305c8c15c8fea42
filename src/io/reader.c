/* A buffered reader over a stream fd. The buffer is the caller's: bytes
 * live in buf_[start_, end_); they are moved to the front only when the
 * free tail is too small for the next read. */
#define _GNU_SOURCE
#include "io/io.h"

#include <string.h>

#define MIN_CAP 64
#define DELIM_MAX 64

int gr_reader_init(gr_reader *r, int fd, void *buf, size_t cap)
{
    if (!r || !buf || cap < MIN_CAP) {
        errno = EINVAL;
        return -1;
    }
    *r = (gr_reader){.fd_ = fd, .buf_ = buf, .cap_ = cap};
    return 0;
}

size_t gr_reader_buffered(const gr_reader *r)
{
    return r->end_ - r->start_;
}

/* Read more into the buffer. Returns the count, 0 at end of stream (and
 * from then on), or -1. */
static ssize_t fill(gr_reader *r, int64_t deadline)
{
    ssize_t n;

    if (r->eof_)
        return 0;
    if (r->end_ == r->cap_ && r->start_ > 0) {
        memmove(r->buf_, r->buf_ + r->start_, r->end_ - r->start_);
        r->end_ -= r->start_;
        r->start_ = 0;
    }
    n = gr_read(r->fd_, r->buf_ + r->end_, r->cap_ - r->end_, deadline);
    if (n == 0)
        r->eof_ = 1;
    if (n > 0)
        r->end_ += (size_t)n;
    return n;
}

static size_t take(gr_reader *r, void *out, size_t n)
{
    memcpy(out, r->buf_ + r->start_, n);
    r->start_ += n;
    if (r->start_ == r->end_)
        r->start_ = r->end_ = 0;
    return n;
}

ssize_t gr_reader_read(gr_reader *r, void *buf, size_t len, int64_t deadline)
{
    size_t have = r->end_ - r->start_;
    ssize_t n;

    if (gr__enter() != 0)
        return -1;
    if (have)
        return (ssize_t)take(r, buf, have < len ? have : len);
    if (r->eof_ || len == 0)
        return 0;
    /* A large read gains nothing from a trip through the buffer. */
    if (len >= r->cap_) {
        n = gr_read(r->fd_, buf, len, deadline);
        if (n == 0)
            r->eof_ = 1;
        return n;
    }
    if ((n = fill(r, deadline)) <= 0)
        return n;
    return (ssize_t)take(r, buf, (size_t)n < len ? (size_t)n : len);
}

/* Where the record ends in the buffered bytes (delimiter included), or 0.
 * *from is where to resume searching next time: bytes searched once are
 * not searched again, except for a delimiter's possible start. */
static size_t find_delim(const gr_reader *r, const void *delim, size_t dlen, size_t *from)
{
    const char *base = r->buf_ + r->start_;
    size_t have = r->end_ - r->start_;
    const char *hit;

    if (have < dlen)
        return 0;
    hit = memmem(base + *from, have - *from, delim, dlen);
    if (hit)
        return (size_t)(hit - base) + dlen;
    *from = have - (dlen - 1);
    return 0;
}

ssize_t gr_reader_until(gr_reader *r, const void *delim, size_t dlen, void *out, size_t max,
                        int64_t deadline)
{
    size_t from = 0, end;
    ssize_t n;

    if (!r || !delim || !out || dlen < 1 || dlen > DELIM_MAX || max == 0) {
        errno = EINVAL;
        return -1;
    }
    if (gr__enter() != 0)
        return -1;
    for (;;) {
        size_t have = r->end_ - r->start_;

        if ((end = find_delim(r, delim, dlen, &from)) != 0) {
            if (end > max)
                break;
            return (ssize_t)take(r, out, end);
        }
        if (have >= max || (r->start_ == 0 && r->end_ == r->cap_))
            break; /* no delimiter within max, or none can fit the buffer */
        if ((n = fill(r, deadline)) < 0)
            return -1;
        if (n == 0) /* the stream ended: the rest is the last record */
            return (ssize_t)take(r, out, have);
    }
    errno = EMSGSIZE;
    return -1;
}

ssize_t gr_reader_line(gr_reader *r, char *out, size_t max, int64_t deadline)
{
    ssize_t n;

    if (!out || max < 2) {
        errno = EINVAL;
        return -1;
    }
    if ((n = gr_reader_until(r, "\n", 1, out, max - 1, deadline)) >= 0)
        out[n] = '\0';
    return n;
}
