/* Cooperative I/O: the POSIX calls, tried first and waited for only when
 * they would block. Each call checks cancellation before its system call,
 * so a killed thread fails with ECANCELED even when data is ready.
 *
 * SIGPIPE: sends to sockets carry MSG_NOSIGNAL. write(2), writev(2) and
 * sendfile(2) have no such flag: gr_write and gr_writev go through
 * send/sendmsg and fall back to write/writev only for non-sockets (pipes,
 * ttys), and those and sendfile run with SIGPIPE blocked for the call, the
 * signal they raised being taken back before it is unblocked. */
#define _GNU_SOURCE
#include "io/io.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

/* The loop every call shares: try, on EAGAIN wait for events, try again. */
#define IO_LOOP(fd, events, deadline, call)                                                        \
    do {                                                                                           \
        ssize_t n_;                                                                                \
        if (gr__enter() != 0)                                                                      \
            return -1;                                                                             \
        while ((n_ = (call)) < 0)                                                                  \
            if (!gr__io_again((fd), (events), (deadline)))                                         \
                return -1;                                                                         \
        return n_;                                                                                 \
    } while (0)

int gr_fd_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    int fdfl;

    if (fl < 0 || (fdfl = fcntl(fd, F_GETFD)) < 0)
        return -1;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    if (!(fdfl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ SIGPIPE */

typedef struct sigpipe_guard {
    sigset_t old;
    int was_pending; /* a SIGPIPE of someone else's: leave it pending */
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g)
{
    sigset_t pipe, pending;

    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
}

/* Take back the SIGPIPE our call raised (it is thread-directed, so it is
 * pending on this thread), then restore the mask. Keeps errno. */
static void sigpipe_unblock(sigpipe_guard *g, ssize_t n)
{
    int err = errno;

    if (n < 0 && err == EPIPE && !g->was_pending) {
        sigset_t pipe;
        struct timespec zero = {0, 0};

        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = err;
}

static ssize_t write_once(int fd, const void *buf, size_t len)
{
    sigpipe_guard g;
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

    if (n >= 0 || errno != ENOTSOCK)
        return n;
    sigpipe_block(&g);
    n = write(fd, buf, len);
    sigpipe_unblock(&g, n);
    return n;
}

static ssize_t writev_once(int fd, const struct iovec *iov, int iovcnt)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    sigpipe_guard g;
    ssize_t n;

    if (iovcnt < 0) {
        errno = EINVAL;
        return -1;
    }
    if ((n = sendmsg(fd, &m, MSG_NOSIGNAL)) >= 0 || errno != ENOTSOCK)
        return n;
    sigpipe_block(&g);
    n = writev(fd, iov, iovcnt);
    sigpipe_unblock(&g, n);
    return n;
}

static ssize_t sendfile_once(int out_fd, int in_fd, off_t *offset, size_t count)
{
    sigpipe_guard g;
    ssize_t n;

    sigpipe_block(&g);
    n = sendfile(out_fd, in_fd, offset, count);
    sigpipe_unblock(&g, n);
    return n;
}

/* ------------------------------------------------------------- calls */

ssize_t gr_read(int fd, void *buf, size_t len, int64_t deadline)
{
    IO_LOOP(fd, GR_READ, deadline, read(fd, buf, len));
}

ssize_t gr_write(int fd, const void *buf, size_t len, int64_t deadline)
{
    IO_LOOP(fd, GR_WRITE, deadline, write_once(fd, buf, len));
}

ssize_t gr_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    IO_LOOP(fd, GR_READ, deadline, readv(fd, iov, iovcnt));
}

ssize_t gr_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline)
{
    IO_LOOP(fd, GR_WRITE, deadline, writev_once(fd, iov, iovcnt));
}

ssize_t gr_recv(int fd, void *buf, size_t len, int flags, int64_t deadline)
{
    IO_LOOP(fd, GR_READ, deadline, recv(fd, buf, len, flags));
}

ssize_t gr_send(int fd, const void *buf, size_t len, int flags, int64_t deadline)
{
    IO_LOOP(fd, GR_WRITE, deadline, send(fd, buf, len, flags | MSG_NOSIGNAL));
}

ssize_t gr_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                    socklen_t *addrlen, int64_t deadline)
{
    IO_LOOP(fd, GR_READ, deadline, recvfrom(fd, buf, len, flags, addr, addrlen));
}

ssize_t gr_sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr,
                  socklen_t addrlen, int64_t deadline)
{
    IO_LOOP(fd, GR_WRITE, deadline, sendto(fd, buf, len, flags | MSG_NOSIGNAL, addr, addrlen));
}

/* Descriptors received with SCM_RIGHTS are made close-on-exec, as every
 * descriptor grove creates is. */
ssize_t gr_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline)
{
    IO_LOOP(fd, GR_READ, deadline, recvmsg(fd, msg, flags | MSG_CMSG_CLOEXEC));
}

ssize_t gr_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline)
{
    IO_LOOP(fd, GR_WRITE, deadline, sendmsg(fd, msg, flags | MSG_NOSIGNAL));
}

ssize_t gr_sendfile(int out_fd, int in_fd, off_t *offset, size_t count, int64_t deadline)
{
    IO_LOOP(out_fd, GR_WRITE, deadline, sendfile_once(out_fd, in_fd, offset, count));
}

/* ------------------------------------------------------ whole buffers */

int gr_write_all(int fd, const void *buf, size_t len, size_t *done, int64_t deadline)
{
    const char *p = buf;
    size_t off = 0;
    int rc = gr__enter();

    while (rc == 0 && off < len) {
        ssize_t n = gr_write(fd, p + off, len - off, deadline);

        if (n < 0)
            rc = -1;
        else
            off += (size_t)n;
    }
    if (done)
        *done = off;
    return rc;
}

int gr_read_exact(int fd, void *buf, size_t len, size_t *done, int64_t deadline)
{
    char *p = buf;
    size_t off = 0;
    int rc = gr__enter();

    while (rc == 0 && off < len) {
        ssize_t n = gr_read(fd, p + off, len - off, deadline);

        if (n < 0) {
            rc = -1;
        } else if (n == 0) {
            errno = EPIPE; /* the stream ended first */
            rc = -1;
        } else {
            off += (size_t)n;
        }
    }
    if (done)
        *done = off;
    return rc;
}
