/* Internal helpers shared by the io and net layers. */
#ifndef GROVE_IO_H
#define GROVE_IO_H

#include "core/core.h"

/* After a system call failed: 1 to try it again (EINTR, or EAGAIN and the
 * fd became ready), 0 to give up with errno set. The wait drops the stale
 * edge without asking the kernel again: the call just said EAGAIN. */
static inline int gr__io_again(int fd, int events, int64_t deadline)
{
    if (errno == EINTR)
        return 1;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        return 0;
    return gr_wait_fd(fd, events | GR_EDGE, deadline) >= 0;
}

#endif
