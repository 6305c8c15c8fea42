/* The socket calls that have no per-call "don't wait" flag (accept,
 * connect, sendfile: O_NONBLOCK is set for the one system call and
 * restored at once) and the batch calls (recvmmsg, sendmmsg). */
#include "patch/io.h"

/* ------------------------------------------------------------- accept */

typedef struct accept_args {
    struct sockaddr *addr;
    socklen_t *len;
    int flags;
} accept_args;

static long accept_thunk(int fd, void *arg)
{
    accept_args *a = arg;

    return gr__orig.accept4(fd, a->addr, a->len, a->flags);
}

/* A new connection's record: accepted sockets inherit the listener's
 * SO_RCVTIMEO and SO_SNDTIMEO in the kernel, and so here. */
static void record_accepted(int lfd, int c, int flags)
{
    gr__fd_set(c, GR__FD_SOCK | (flags & SOCK_NONBLOCK ? GR__FD_NONBLOCK : 0), gr__fd_timeo(lfd, 1),
               gr__fd_timeo(lfd, 0));
}

static int accept_coop(int fd, accept_args *a)
{
    unsigned st = gr__fd_state(fd);
    int64_t deadline = -2;
    int err0 = errno, c, was_nb = 0;

    if (gr__fd_direct(st) || (st & GR__FD_KIND) != GR__FD_SOCK)
        return gr__orig.accept4(fd, a->addr, a->len, a->flags);
    for (;;) {
        if (deadline == -2)
            deadline = gr__timeo_deadline(fd, st, 1);
        if (fd <= 2) {
            /* Never O_NONBLOCK on 0-2: wait, then accept (another
             * process sharing the socket may take the connection first,
             * and then this blocks). */
            if (gr__glue_wait_fd(fd, GR_READ, deadline, 0) < 0)
                return -1;
            c = gr__orig.accept4(fd, a->addr, a->len, a->flags);
        } else {
            c = (int)gr__nonblock_call(fd, accept_thunk, a, &was_nb);
        }
        if (c >= 0) {
            errno = err0;
            return c;
        }
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || was_nb)
            return -1;
        if (gr__wait_again(fd, GR_READ, deadline, EAGAIN) < 0)
            return -1;
    }
}

int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *restrict len, int flags)
{
    accept_args a = {addr.__sockaddr__, len, flags};
    int c;

    ORIG_OR(accept4, (int)syscall(SYS_accept4, fd, addr.__sockaddr__, len, flags));
    if (gr__patch_coop(GR_PATCH_SOCKET))
        c = accept_coop(fd, &a);
    else
        c = gr__orig.accept4(fd, a.addr, a.len, flags);
    if (c >= 0)
        record_accepted(fd, c, flags);
    return c;
}

int accept(int fd, __SOCKADDR_ARG addr, socklen_t *restrict len)
{
    ORIG_OR(accept, (int)syscall(SYS_accept, fd, addr.__sockaddr__, len));
    if (!gr__patch_coop(GR_PATCH_SOCKET)) {
        int c = gr__orig.accept(fd, addr, len);

        if (c >= 0)
            record_accepted(fd, c, 0);
        return c;
    }
    return accept4(fd, addr, len, 0);
}

/* ------------------------------------------------------------ connect */

typedef struct connect_args {
    const struct sockaddr *addr;
    socklen_t len;
} connect_args;

static long connect_thunk(int fd, void *arg)
{
    connect_args *a = arg;

    return gr__orig.connect(fd, a->addr, a->len);
}

/* A Unix socket whose listener's backlog is full: a blocking connect
 * waits for room, which poll does not signal. Retry, 1 ms doubling to
 * 64 ms, until SO_SNDTIMEO (then EAGAIN, as the kernel says). */
static int unix_retry(int fd, connect_args *a, int64_t deadline)
{
    int64_t delay = 1;
    int was_nb;

    for (;;) {
        int64_t until = gr__glue_now() + delay;

        if (deadline >= 0 && gr__glue_now() >= deadline) {
            errno = EAGAIN;
            return -1;
        }
        if (deadline >= 0 && until > deadline)
            until = deadline;
        if (gr__glue_sleep(until) < 0)
            return -1;
        if (gr__nonblock_call(fd, connect_thunk, a, &was_nb) == 0)
            return 0;
        if (errno != EAGAIN)
            return -1;
        if (delay < 64)
            delay *= 2;
    }
}

/* The outcome of a connection in progress, once the socket is writable:
 * 0 connected, -1 with its error, or 1 not yet (a wake-up for nothing). */
static int connect_outcome(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -1;
    if (err) {
        errno = err;
        return -1;
    }
    return getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 ? 0 : 1;
}

static int connect_coop(int fd, connect_args *a)
{
    unsigned st = gr__fd_state(fd);
    int err0 = errno, was_nb, rc;
    int64_t deadline;

    /* 0-2 are never switched to O_NONBLOCK: their connect blocks. */
    if (gr__fd_direct(st) || (st & GR__FD_KIND) != GR__FD_SOCK || fd <= 2)
        return gr__orig.connect(fd, a->addr, a->len);
    if (gr__nonblock_call(fd, connect_thunk, a, &was_nb) == 0) {
        errno = err0;
        return 0;
    }
    if (was_nb)
        return -1;
    deadline = gr__timeo_deadline(fd, st, 0);
    if (errno == EAGAIN && a->addr && a->addr->sa_family == AF_UNIX)
        rc = unix_retry(fd, a, deadline);
    else if (errno != EINPROGRESS)
        return -1;
    else
        do {
            /* SO_SNDTIMEO passing leaves the connection going on and
             * says EINPROGRESS, as socket(7) has it. */
            if (gr__wait_again(fd, GR_WRITE, deadline, EINPROGRESS) < 0)
                return -1;
        } while ((rc = connect_outcome(fd)) == 1);
    if (rc == 0)
        errno = err0;
    return rc;
}

int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    connect_args a = {addr.__sockaddr__, len};

    ORIG_OR(connect, (int)syscall(SYS_connect, fd, addr.__sockaddr__, len));
    if (!gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.connect(fd, addr, len);
    return connect_coop(fd, &a);
}

/* ----------------------------------------------------------- sendfile */

typedef struct sendfile_args {
    int in_fd;
    off_t *offset;
    size_t count;
} sendfile_args;

static long sendfile_thunk(int fd, void *arg)
{
    sendfile_args *a = arg;

    return gr__orig.sendfile(fd, a->in_fd, a->offset, a->count);
}

/* A blocking sendfile to a socket or pipe moves all count bytes (or up
 * to the end of in_fd). */
static ssize_t sendfile_coop(int out_fd, sendfile_args *a)
{
    unsigned st = gr__fd_state(out_fd);
    int64_t deadline = -2;
    int err0 = errno, was_nb = 0;
    size_t done = 0;
    ssize_t n = 0;

    if (gr__fd_direct(st))
        return gr__orig.sendfile(out_fd, a->in_fd, a->offset, a->count);
    for (;;) {
        if (deadline == -2)
            deadline = gr__timeo_deadline(out_fd, st, 0);
        if (out_fd <= 2) {
            if (gr__glue_wait_fd(out_fd, GR_WRITE, deadline, 0) < 0)
                break;
            n = gr__orig.sendfile(out_fd, a->in_fd, a->offset, a->count);
        } else {
            n = gr__nonblock_call(out_fd, sendfile_thunk, a, &was_nb);
        }
        if (n > 0) {
            done += (size_t)n;
            a->count -= (size_t)n;
            if (a->count == 0 || was_nb)
                break;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || was_nb)
            break;
        if (gr__wait_again(out_fd, GR_WRITE, deadline, EAGAIN) < 0)
            break;
    }
    if (done == 0 && n < 0)
        return -1;
    errno = err0;
    return (ssize_t)done;
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
    sendfile_args a = {in_fd, offset, count};

    ORIG_OR(sendfile, syscall(SYS_sendfile, out_fd, in_fd, offset, count));
    if (!gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.sendfile(out_fd, in_fd, offset, count);
    return sendfile_coop(out_fd, &a);
}

/* off_t is 64 bits wide on every ABI this builds for (LP64). */
_Static_assert(sizeof(off_t) == sizeof(__off64_t), "sendfile64 needs a 64-bit off_t");

ssize_t sendfile64(int out_fd, int in_fd, __off64_t *offset, size_t count)
{
    return sendfile(out_fd, in_fd, (off_t *)offset, count);
}

/* ----------------------------------------------------------- batches */

static int64_t ts_deadline(const struct timespec *tmo)
{
    return tmo ? gr__deadline_in_ts(tmo) : -1;
}

/* recvmmsg as the kernel runs it: the first message waited for; then
 * more until vlen, unless MSG_WAITFORONE; the time-out looked at only
 * after a message arrives (recvmmsg(2), BUGS), and written back. */
static int recvmmsg_coop(int fd, struct mmsghdr *v, unsigned vlen, int flags, struct timespec *tmo)
{
    unsigned st = gr__fd_state(fd);
    int64_t end = ts_deadline(tmo), deadline = -2;
    int err0 = errno, n;
    unsigned got = 0;

    if (gr__fd_direct(st) || (st & GR__FD_KIND) != GR__FD_SOCK)
        return gr__orig.recvmmsg(fd, v, vlen, flags, tmo);
    while (got < vlen) {
        n = gr__orig.recvmmsg(fd, v + got, vlen - got, (flags & ~MSG_WAITFORONE) | MSG_DONTWAIT,
                              NULL);
        if (n > 0) {
            got += (unsigned)n;
            if ((flags & MSG_WAITFORONE) || (end >= 0 && gr__glue_now() >= end))
                break;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            break;
        if (deadline == -2)
            deadline = gr__timeo_deadline(fd, st, 1);
        if (gr__wait_again(fd, GR_READ, deadline, EAGAIN) < 0)
            break;
    }
    if (tmo && end >= 0) {
        int64_t left = end - gr__glue_now();

        if (left < 0)
            left = 0;
        tmo->tv_sec = (time_t)(left / 1000);
        tmo->tv_nsec = (long)(left % 1000) * 1000000;
    }
    if (!got)
        return -1;
    errno = err0;
    return (int)got;
}

int recvmmsg(int fd, struct mmsghdr *vmessages, unsigned int vlen, int flags, struct timespec *tmo)
{
    int n;

    ORIG_OR(recvmmsg, (int)syscall(SYS_recvmmsg, fd, vmessages, vlen, flags, tmo));
    if ((flags & MSG_DONTWAIT) || !gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.recvmmsg(fd, vmessages, vlen, flags, tmo);
    n = recvmmsg_coop(fd, vmessages, vlen, flags, tmo);
    return n;
}

/* The bytes message m carries. */
static size_t msg_bytes(const struct msghdr *m)
{
    size_t t = 0;

    for (size_t i = 0; i < m->msg_iovlen; i++)
        t += m->msg_iov[i].iov_len;
    return t;
}

/* sendmmsg as a blocking one: every message sent; one a stream socket
 * took in part is finished as a blocking sendmsg would. */
static int sendmmsg_coop(int fd, struct mmsghdr *v, unsigned vlen, int flags)
{
    unsigned st = gr__fd_state(fd);
    int64_t deadline = -2;
    int err0 = errno, n = 0;
    unsigned sent = 0;

    if (gr__fd_direct(st) || (st & GR__FD_KIND) != GR__FD_SOCK)
        return gr__orig.sendmmsg(fd, v, vlen, flags);
    while (sent < vlen) {
        n = gr__orig.sendmmsg(fd, v + sent, vlen - sent, flags | MSG_DONTWAIT);
        if (n > 0) {
            struct mmsghdr *last = &v[sent + (unsigned)n - 1];
            size_t want = msg_bytes(&last->msg_hdr);

            sent += (unsigned)n;
            if (last->msg_len < want) {
                gr__op o = {.type = OP_SENDMSG, .fd = fd, .msg = &last->msg_hdr, .flags = flags};
                ssize_t more = gr__op_run(&o, st, last->msg_len, 0);

                if (more > 0)
                    last->msg_len += (unsigned)more;
                break;
            }
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            break;
        if (deadline == -2)
            deadline = gr__timeo_deadline(fd, st, 0);
        if (gr__wait_again(fd, GR_WRITE, deadline, EAGAIN) < 0)
            break;
    }
    if (!sent)
        return -1;
    errno = err0;
    return (int)sent;
}

int sendmmsg(int fd, struct mmsghdr *vmessages, unsigned int vlen, int flags)
{
    ORIG_OR(sendmmsg, (int)syscall(SYS_sendmmsg, fd, vmessages, vlen, flags));
    if ((flags & MSG_DONTWAIT) || !gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.sendmmsg(fd, vmessages, vlen, flags);
    return sendmmsg_coop(fd, vmessages, vlen, flags);
}
