/* The contract between the hub and an I/O readiness backend.
 *
 * A backend reports edges: each file descriptor is registered once, for
 * both directions, and an event means "this fd may have become readable
 * and/or writable since the last report". The hub remembers edges per fd
 * and wakes the green threads waiting on them (src/core/fd.c). One file per
 * backend implements this header; epoll.c is the only one today. */
#ifndef GROVE_BACKEND_H
#define GROVE_BACKEND_H

#include <stdint.h>

typedef struct gr__backend {
    int fd;
    int has_pwait2; /* kernel takes nanosecond time-outs */
} gr__backend;

/* Called for each ready fd; ready is a mask of GR_READ and GR_WRITE
 * (errors and hang-ups set both). */
typedef void (*gr__backend_fn)(void *ctx, int fd, int ready);

int gr__backend_init(gr__backend *b);
void gr__backend_fini(gr__backend *b);

/* Register fd for edges in both directions. -1 with errno as epoll_ctl
 * (EPERM: fd cannot be waited on, e.g. a regular file). */
int gr__backend_add(gr__backend *b, int fd);

/* Forget fd (before it is closed). */
int gr__backend_del(gr__backend *b, int fd);

/* Wait up to timeout_ns (-1: forever, 0: just look) and report edges.
 * Returns the number of events, 0 on time-out or EINTR. */
int gr__backend_poll(gr__backend *b, int64_t timeout_ns, gr__backend_fn fn, void *ctx);

#endif
