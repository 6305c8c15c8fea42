/* Internal helpers shared by the io and net layers. */
#ifndef GROVE_IO_H
#define GROVE_IO_H

#include "core/core.h"

/* Precondition of every I/O call: 0, or -1 with ENOMEM (no hub), EDEADLK
 * (hub callback) or ECANCELED (the caller was killed), checked before the
 * system call so a killed thread fails even when the call could proceed. */
static inline int gr__io_enter(void)
{
    gr_hub *h = gr__hub();

    return h ? gr__may_block(h) : -1;
}

/* After a system call failed: 1 to try it again (EINTR, or EAGAIN and the
 * fd became ready), 0 to give up with errno set. The wait drops the stale
 * edge without asking the kernel again: the call just said EAGAIN. */
static inline int gr__io_again(int fd, int events, int64_t deadline)
{
    if (errno == EINTR)
        return 1;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return 0;
    return gr__wait_fd(fd, events, deadline, 1) >= 0;
}

#endif
