/* The calls that make, copy, change and close descriptors. None of them
 * blocks; each is the real call plus the bookkeeping that keeps the
 * records (fdtab.c) and the hub true, done in every context and whatever
 * the families: a descriptor closed by a plain thread must not leave a
 * stale record for a green thread to trip on.
 *
 * Closing a descriptor a green thread waits on wakes that thread with
 * EBADF, and it is unregistered from the hub before the kernel forgets
 * the number (an epoll registration belongs to the open file description,
 * which may outlive the number), so a new descriptor given the same
 * number gets no stray wake-up. Only the calling OS thread's hub is told:
 * a descriptor shared between hubs is the program's to close with care. */
#include "patch/io.h"

#include <stdarg.h>

static void forget(int fd)
{
    GR__KEEP_ERRNO({
        gr__fd_clear(fd);
        gr__glue_forget(fd);
    });
}

/* ------------------------------------------------------------ creation */

int socket(int domain, int type, int protocol)
{
    int fd;

    ORIG_OR(socket, (int)syscall(SYS_socket, domain, type, protocol));
    if ((fd = gr__orig.socket(domain, type, protocol)) >= 0)
        gr__fd_set(fd, GR__FD_SOCK | (type & SOCK_NONBLOCK ? GR__FD_NONBLOCK : 0), 0, 0);
    return fd;
}

int socketpair(int domain, int type, int protocol, int fds[2])
{
    int rc;

    ORIG_OR(socketpair, (int)syscall(SYS_socketpair, domain, type, protocol, fds));
    if ((rc = gr__orig.socketpair(domain, type, protocol, fds)) == 0) {
        unsigned st = GR__FD_SOCK | (type & SOCK_NONBLOCK ? GR__FD_NONBLOCK : 0);

        gr__fd_set(fds[0], st, 0, 0);
        gr__fd_set(fds[1], st, 0, 0);
    }
    return rc;
}

int pipe2(int fds[2], int flags)
{
    int rc;

    ORIG_OR(pipe2, (int)syscall(SYS_pipe2, fds, flags));
    if ((rc = gr__orig.pipe2(fds, flags)) == 0) {
        unsigned st = GR__FD_PIPE | (flags & O_NONBLOCK ? GR__FD_NONBLOCK : 0);

        gr__fd_set(fds[0], st, 0, 0);
        gr__fd_set(fds[1], st, 0, 0);
    }
    return rc;
}

int pipe(int fds[2])
{
    ORIG_OR(pipe, (int)syscall(SYS_pipe2, fds, 0));
    return pipe2(fds, 0);
}

/* ------------------------------------------------------------- closing */

int close(int fd)
{
    ORIG_OR(close, (int)syscall(SYS_close, fd));
    forget(fd);
    return gr__orig.close(fd);
}

/* Forget [first, last], bounded by the highest descriptor ever recorded
 * or waited on (the caller may pass ~0U). */
static void forget_range(unsigned first, unsigned last)
{
    int high = gr__fd_high();

    if (high < 0 || first > (unsigned)high)
        return;
    if (last > (unsigned)high)
        last = (unsigned)high;
    for (unsigned fd = first; fd <= last; fd++)
        forget((int)fd);
}

int close_range(unsigned int first, unsigned int last, int flags)
{
    ORIG_OR(close_range, (int)syscall(SYS_close_range, first, last, flags));
    if (!(flags & CLOSE_RANGE_CLOEXEC) && first <= last)
        forget_range(first, last);
    return gr__orig.close_range(first, last, flags);
}

void closefrom(int lowfd)
{
    if (!gr__orig.closefrom) {
        syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0);
        return;
    }
    if (lowfd >= 0)
        forget_range((unsigned)lowfd, ~0U);
    gr__orig.closefrom(lowfd);
}

/* ------------------------------------------------------------- copies */

int dup(int fd)
{
    int n;

    ORIG_OR(dup, (int)syscall(SYS_dup, fd));
    if ((n = gr__orig.dup(fd)) >= 0)
        GR__KEEP_ERRNO(gr__fd_copy(fd, n));
    return n;
}

/* dup2 and dup3 close fd2 first if it is open: as close does, but only
 * if the call will go ahead (fd open), so a failed dup2 wakes nobody. */
static void before_dup2(int fd, int fd2)
{
    if (fd != fd2 && fd2 >= 0 && gr__orig.fcntl(fd, F_GETFD) >= 0)
        forget(fd2);
}

int dup2(int fd, int fd2)
{
    int n;

    ORIG_OR(dup2, (int)syscall(SYS_dup3, fd, fd2, 0));
    GR__KEEP_ERRNO(before_dup2(fd, fd2));
    if ((n = gr__orig.dup2(fd, fd2)) >= 0 && fd != fd2)
        GR__KEEP_ERRNO(gr__fd_copy(fd, n));
    return n;
}

int dup3(int fd, int fd2, int flags)
{
    int n;

    ORIG_OR(dup3, (int)syscall(SYS_dup3, fd, fd2, flags));
    GR__KEEP_ERRNO(before_dup2(fd, fd2));
    if ((n = gr__orig.dup3(fd, fd2, flags)) >= 0)
        GR__KEEP_ERRNO(gr__fd_copy(fd, n));
    return n;
}

/* ------------------------------------------------------------- modes */

/* What a successful fcntl(fd, cmd, arg) returning rc changed. */
static void after_fcntl(int fd, int cmd, void *arg, int rc)
{
    switch (cmd) {
    case F_SETFL:
        gr__fd_set_nonblock(fd, ((int)(intptr_t)arg & O_NONBLOCK) != 0);
        break;
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
        gr__fd_copy(fd, rc);
        break;
    default:
        break;
    }
}

/* fcntl's third argument, whatever its type: glibc reads it as a pointer
 * too, and the kernel takes an unsigned long. */
#define FCNTL_ARG(cmd, arg)                                                                        \
    do {                                                                                           \
        va_list ap_;                                                                               \
        va_start(ap_, cmd);                                                                        \
        arg = va_arg(ap_, void *);                                                                 \
        va_end(ap_);                                                                               \
    } while (0)

int fcntl(int fd, int cmd, ...)
{
    void *arg;
    int rc;

    FCNTL_ARG(cmd, arg);
    ORIG_OR(fcntl, (int)syscall(SYS_fcntl, fd, cmd, arg));
    if ((rc = gr__orig.fcntl(fd, cmd, arg)) >= 0)
        GR__KEEP_ERRNO(after_fcntl(fd, cmd, arg, rc));
    return rc;
}

int fcntl64(int fd, int cmd, ...)
{
    void *arg;
    int rc;

    FCNTL_ARG(cmd, arg);
    ORIG_OR(fcntl64, (int)syscall(SYS_fcntl, fd, cmd, arg));
    if ((rc = gr__orig.fcntl64(fd, cmd, arg)) >= 0)
        GR__KEEP_ERRNO(after_fcntl(fd, cmd, arg, rc));
    return rc;
}

int ioctl(int fd, unsigned long int request, ...)
{
    va_list ap;
    void *arg;
    int rc;

    va_start(ap, request);
    arg = va_arg(ap, void *);
    va_end(ap);
    ORIG_OR(ioctl, (int)syscall(SYS_ioctl, fd, request, arg));
    if ((rc = gr__orig.ioctl(fd, request, arg)) >= 0 && request == FIONBIO && arg)
        GR__KEEP_ERRNO(gr__fd_set_nonblock(fd, *(int *)arg != 0));
    return rc;
}

/* SO_RCVTIMEO and SO_SNDTIMEO, old and new (64-bit time) spellings. */
#ifndef SO_RCVTIMEO_OLD
#define SO_RCVTIMEO_OLD 20
#define SO_SNDTIMEO_OLD 21
#endif
#ifndef SO_RCVTIMEO_NEW
#define SO_RCVTIMEO_NEW 66
#define SO_SNDTIMEO_NEW 67
#endif

/* A time-out option's value in ms, rounded up; 0 none. */
static int timeo_ms(const void *val, socklen_t len)
{
    int64_t sec, usec, ms;

    if (len >= (socklen_t)(2 * sizeof(int64_t))) {
        sec = ((const int64_t *)val)[0];
        usec = ((const int64_t *)val)[1];
    } else if (len >= (socklen_t)sizeof(struct timeval)) {
        sec = ((const struct timeval *)val)->tv_sec;
        usec = ((const struct timeval *)val)->tv_usec;
    } else {
        return -1;
    }
    if (sec < 0)
        return 0;
    ms = sec > INT32_MAX / 1000 ? INT32_MAX : sec * 1000 + (usec + 999) / 1000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen)
{
    int rc, ms;

    ORIG_OR(setsockopt, (int)syscall(SYS_setsockopt, fd, level, optname, optval, optlen));
    rc = gr__orig.setsockopt(fd, level, optname, optval, optlen);
    if (rc == 0 && level == SOL_SOCKET && optval &&
        (optname == SO_RCVTIMEO_OLD || optname == SO_RCVTIMEO_NEW || optname == SO_SNDTIMEO_OLD ||
         optname == SO_SNDTIMEO_NEW) &&
        (ms = timeo_ms(optval, optlen)) >= 0)
        gr__fd_set_timeo(fd, optname == SO_RCVTIMEO_OLD || optname == SO_RCVTIMEO_NEW, ms);
    return rc;
}
