/* Reads and writes. In a green thread, on a descriptor the program left
 * blocking, each attempt is made so that it cannot block the OS thread,
 * without touching the descriptor's mode where that can be helped:
 *
 *   socket        the call with MSG_DONTWAIT (read and write become
 *                 recvfrom and sendto, which is what they are on sockets)
 *   pipe, FIFO,   preadv2/pwritev2 with RWF_NOWAIT, where the kernel takes
 *   eventfd...    it for that kind of file
 *   the rest      (terminals...) O_NONBLOCK set for the one system call and
 *                 restored at once; on descriptors 0-2, which children
 *                 share, never: the green thread waits for readiness and
 *                 then makes the blocking call
 *
 * and the green thread waits on the hub while the attempt says EAGAIN. */
#include "patch/io.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- waiting */

int64_t gr__timeo_deadline(int fd, unsigned st, int rcv)
{
    int ms = (st & GR__FD_KIND) == GR__FD_SOCK ? gr__fd_timeo(fd, rcv) : 0;

    return ms > 0 ? gr__deadline_in_ms(ms) : -1;
}

int gr__wait_again(int fd, int events, int64_t deadline, int own_err)
{
    if (gr__glue_wait_fd(fd, events, deadline, 1) >= 0)
        return 0;
    if (errno == ETIMEDOUT && deadline >= 0 && gr__glue_now() >= deadline)
        errno = own_err;
    return -1;
}

long gr__nonblock_call(int fd, long (*fn)(int fd, void *arg), void *arg, int *was_nonblock)
{
    int fl = gr__orig.fcntl(fd, F_GETFL);
    long n;
    int err;

    *was_nonblock = fl >= 0 && (fl & O_NONBLOCK);
    if (fl < 0 || *was_nonblock)
        return fn(fd, arg);
    if (gr__orig.fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return fn(fd, arg); /* cannot: the plain call (it may block) */
    n = fn(fd, arg);
    err = errno;
    gr__orig.fcntl(fd, F_SETFL, fl);
    errno = err;
    return n;
}

/* ----------------------------------------------------------- attempts */

static int is_write(const gr__op *o)
{
    return o->type >= OP_WRITE;
}

/* The call exactly as the program made it (it may block). */
static ssize_t call_plain(const gr__op *o)
{
    switch (o->type) {
    case OP_READ:
        return gr__orig.read(o->fd, o->buf, o->len);
    case OP_READV:
        return gr__orig.readv(o->fd, o->iov, o->iovcnt);
    case OP_RECVFROM:
        return gr__orig.recvfrom(o->fd, o->buf, o->len, o->flags, o->from, o->fromlen);
    case OP_RECVMSG:
        return gr__orig.recvmsg(o->fd, o->msg, o->flags);
    case OP_WRITE:
        return gr__orig.write(o->fd, o->buf, o->len);
    case OP_WRITEV:
        return gr__orig.writev(o->fd, o->iov, o->iovcnt);
    case OP_SENDTO:
        return gr__orig.sendto(o->fd, o->buf, o->len, o->flags, o->to, o->tolen);
    default:
        return gr__orig.sendmsg(o->fd, o->msg, o->flags);
    }
}

/* A socket: the same call with MSG_DONTWAIT. */
static ssize_t call_dontwait(const gr__op *o)
{
    struct msghdr m = {0};
    int f = o->flags | MSG_DONTWAIT;

    switch (o->type) {
    case OP_READ:
        return gr__orig.recvfrom(o->fd, o->buf, o->len, MSG_DONTWAIT, NULL, NULL);
    case OP_RECVFROM:
        return gr__orig.recvfrom(o->fd, o->buf, o->len, f, o->from, o->fromlen);
    case OP_RECVMSG:
        return gr__orig.recvmsg(o->fd, o->msg, f);
    case OP_WRITE:
        return gr__orig.sendto(o->fd, o->buf, o->len, MSG_DONTWAIT, NULL, 0);
    case OP_SENDTO:
        return gr__orig.sendto(o->fd, o->buf, o->len, f, o->to, o->tolen);
    case OP_SENDMSG:
        return gr__orig.sendmsg(o->fd, o->msg, f);
    default: /* readv, writev */
        if (o->iovcnt < 0 || o->iovcnt > IOV_MAX)
            return call_plain(o); /* EINVAL at once, as the program's call */
        m.msg_iov = (struct iovec *)o->iov;
        m.msg_iovlen = (size_t)o->iovcnt;
        return o->type == OP_READV ? gr__orig.recvmsg(o->fd, &m, MSG_DONTWAIT)
                                   : gr__orig.sendmsg(o->fd, &m, MSG_DONTWAIT);
    }
}

/* A file with RWF_NOWAIT: read, readv, write, writev only (the others are
 * socket calls, which fail on a file as they would anyway). */
static ssize_t call_nowait(const gr__op *o)
{
    struct iovec one = {o->buf, o->len};

    switch (o->type) {
    case OP_READ:
        return preadv2(o->fd, &one, 1, -1, RWF_NOWAIT);
    case OP_READV:
        return preadv2(o->fd, o->iov, o->iovcnt, -1, RWF_NOWAIT);
    case OP_WRITE:
        return pwritev2(o->fd, &one, 1, -1, RWF_NOWAIT);
    case OP_WRITEV:
        return pwritev2(o->fd, o->iov, o->iovcnt, -1, RWF_NOWAIT);
    default:
        return call_plain(o);
    }
}

static long plain_thunk(int fd, void *arg)
{
    (void)fd;
    return call_plain(arg);
}

enum { TRY_DONE, TRY_BLOCKING };

/* One attempt that cannot block. TRY_BLOCKING: this descriptor has no
 * such attempt (0-2 without RWF_NOWAIT): wait first, then call plainly.
 * *st is updated when the record turns out wrong. */
static int try_once(gr__op *o, unsigned *st, ssize_t *n)
{
    int was_nb;

    for (;;) {
        unsigned kind = *st & GR__FD_KIND;

        if (kind == GR__FD_SOCK) {
            *n = call_dontwait(o);
            if (*n >= 0 || errno != ENOTSOCK || o->type == OP_RECVFROM || o->type == OP_RECVMSG ||
                o->type == OP_SENDTO || o->type == OP_SENDMSG)
                return TRY_DONE;
            /* A stale record (the fd was closed out of our sight and its
             * number reused): learn the new one. */
            gr__fd_clear(o->fd);
            *st = gr__fd_state(o->fd);
            if (gr__fd_direct(*st)) {
                *n = call_plain(o);
                return TRY_DONE;
            }
            continue;
        }
        if (!(*st & GR__FD_NO_NOWAIT)) {
            *n = call_nowait(o);
            if (*n >= 0 || (errno != EOPNOTSUPP && errno != EINVAL))
                return TRY_DONE;
            if (o->type != OP_READ && o->type != OP_READV && o->type != OP_WRITE &&
                o->type != OP_WRITEV)
                return TRY_DONE;
            *st |= GR__FD_NO_NOWAIT;
            gr__fd_add_flags(o->fd, GR__FD_NO_NOWAIT);
        }
        if (o->fd <= 2)
            return TRY_BLOCKING;
        *n = gr__nonblock_call(o->fd, plain_thunk, o, &was_nb);
        if (was_nb)
            *st |= GR__FD_NONBLOCK;
        return TRY_DONE;
    }
}

/* ------------------------------------------------------------- the loop */

/* Bytes an op moves in all. */
static size_t op_total(const gr__op *o)
{
    const struct iovec *iov = o->iov;
    int cnt = o->iovcnt;
    size_t t = 0;

    if (o->type == OP_RECVMSG || o->type == OP_SENDMSG) {
        iov = o->msg->msg_iov;
        cnt = (int)o->msg->msg_iovlen;
    } else if (o->type != OP_READV && o->type != OP_WRITEV) {
        return o->len;
    }
    for (int i = 0; i < cnt; i++)
        t += iov[i].iov_len;
    return t;
}

/* Whether a successful transfer of n bytes is short of what the program's
 * blocking call would have waited for: a blocking write writes it all; a
 * read stops at the first data, unless MSG_WAITALL on a stream socket. */
static int wants_more(const gr__op *o, unsigned st, size_t done, size_t total)
{
    int type = SOCK_STREAM;
    socklen_t len = sizeof type;

    if (done >= total)
        return 0;
    if (is_write(o))
        return 1;
    if (!(o->flags & MSG_WAITALL) || (o->type != OP_RECVFROM && o->type != OP_RECVMSG) ||
        (st & GR__FD_KIND) != GR__FD_SOCK)
        return 0;
    return getsockopt(o->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/* Move o past n bytes. iovs: room for a copy of an iovec array that is
 * advanced (the program's is never written). Returns 0 or -1/ENOMEM. */
typedef struct iovcopy {
    struct iovec local[16];
    struct iovec *v;
    struct msghdr m;
} iovcopy;

static int advance(gr__op *o, size_t n, iovcopy *c)
{
    struct iovec *v;
    size_t cnt;

    if (o->type == OP_READ || o->type == OP_WRITE || o->type == OP_RECVFROM ||
        o->type == OP_SENDTO) {
        o->buf = (char *)o->buf + n;
        o->len -= n;
        return 0;
    }
    if (o->type == OP_RECVMSG || o->type == OP_SENDMSG) {
        v = o->msg->msg_iov;
        cnt = o->msg->msg_iovlen;
    } else {
        v = (struct iovec *)o->iov;
        cnt = (size_t)o->iovcnt;
    }
    if (!c->v) { /* first advance: copy the program's array */
        c->v = cnt <= 16 ? c->local : malloc(cnt * sizeof *v);
        if (!c->v) {
            errno = ENOMEM;
            return -1;
        }
        memcpy(c->v, v, cnt * sizeof *v);
        v = c->v;
    }
    while (cnt && n >= v->iov_len) {
        n -= v->iov_len;
        v++, cnt--;
    }
    if (cnt) {
        v->iov_base = (char *)v->iov_base + n;
        v->iov_len -= n;
    }
    if (o->type == OP_RECVMSG || o->type == OP_SENDMSG) {
        c->m = *o->msg;
        c->m.msg_iov = v;
        c->m.msg_iovlen = cnt;
        /* Ancillary data went with the first bytes. */
        c->m.msg_control = NULL;
        c->m.msg_controllen = 0;
        o->msg = &c->m;
    } else {
        o->iov = v;
        o->iovcnt = (int)cnt;
    }
    return 0;
}

ssize_t gr__op_run(gr__op *o, unsigned st, size_t skip, int wait_first)
{
    int err0 = errno;
    int events = is_write(o) ? GR_WRITE : GR_READ;
    int64_t deadline = -2; /* computed at the first wait */
    size_t total = op_total(o), done = 0;
    iovcopy c = {.v = NULL};
    ssize_t n = 0, rc;

    if (skip && advance(o, skip, &c) < 0)
        return -1;
    total -= skip < total ? skip : total;
    if (wait_first) {
        deadline = gr__timeo_deadline(o->fd, st, !is_write(o));
        if (gr__wait_again(o->fd, events, deadline, EAGAIN) < 0) {
            if (c.v && c.v != c.local)
                free(c.v);
            return -1;
        }
    }
    for (;;) {
        if (try_once(o, &st, &n) == TRY_BLOCKING) {
            if (deadline == -2)
                deadline = -1; /* not a socket: no SO_*TIMEO */
            if (gr__glue_wait_fd(o->fd, events, deadline, 0) < 0) {
                n = -1;
                break;
            }
            n = call_plain(o);
        }
        if (n < 0) {
            if ((errno != EAGAIN && errno != EWOULDBLOCK) || (st & GR__FD_NONBLOCK))
                break;
            if (deadline == -2)
                deadline = gr__timeo_deadline(o->fd, st, !is_write(o));
            if (gr__wait_again(o->fd, events, deadline, EAGAIN) < 0)
                break;
            continue;
        }
        done += (size_t)n;
        if (n == 0 || !wants_more(o, st, done, total))
            break;
        if (advance(o, (size_t)n, &c) < 0)
            break;
    }
    if (c.v && c.v != c.local)
        free(c.v);
    if (done > 0 || n >= 0) {
        errno = err0;
        rc = (ssize_t)done;
    } else {
        rc = -1;
    }
    return rc;
}

/* -------------------------------------------------------------- hooks */

/* Descriptors received with SCM_RIGHTS are new to us whatever their
 * numbers were before. */
static void adopt_received(const struct msghdr *msg)
{
    struct cmsghdr *c;

    if (!msg->msg_control || !msg->msg_controllen)
        return;
    for (c = CMSG_FIRSTHDR((struct msghdr *)msg); c; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int *fds = (int *)CMSG_DATA(c);
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

            for (size_t i = 0; i < n; i++)
                gr__fd_clear(fds[i]);
        }
    }
}

/* The hot path of a socket left blocking: one attempt with MSG_DONTWAIT;
 * only when it would block (or MSG_WAITALL wants more) does the general
 * loop take over. */
static inline int sock_blocking(unsigned st)
{
    return (st & (GR__FD_KIND | GR__FD_NONBLOCK)) == GR__FD_SOCK;
}

static ssize_t run(gr__op o)
{
    unsigned st = gr__fd_state(o.fd);

    if (gr__fd_direct(st))
        return call_plain(&o);
    return gr__op_run(&o, st, 0, 0);
}

/* read on a socket left blocking: one MSG_DONTWAIT attempt first. */
static ssize_t read_coop(int fd, void *buf, size_t nbytes)
{
    gr__op o = {.type = OP_READ, .fd = fd, .buf = buf, .len = nbytes};
    unsigned st = gr__fd_state(fd);

    if (GR__P_LIKELY(sock_blocking(st))) {
        int *errp = &errno, err0 = *errp, again;
        ssize_t r = gr__orig.recvfrom(fd, buf, nbytes, MSG_DONTWAIT, NULL, NULL);

        if (r >= 0 || (*errp != EAGAIN && *errp != ENOTSOCK))
            return r;
        again = *errp == EAGAIN; /* ENOTSOCK: a stale record, which the loop mends */
        *errp = err0;
        return gr__op_run(&o, st, 0, again);
    }
    if (gr__fd_direct(st))
        return gr__orig.read(fd, buf, nbytes);
    return gr__op_run(&o, st, 0, 0);
}

/* send and write on a socket left blocking: the first attempt often sends
 * it all. */
static ssize_t send_coop(gr__op *o)
{
    unsigned st = gr__fd_state(o->fd);

    if (GR__P_LIKELY(sock_blocking(st))) {
        int *errp = &errno, err0 = *errp;
        ssize_t r =
            gr__orig.sendto(o->fd, o->buf, o->len, o->flags | MSG_DONTWAIT, o->to, o->tolen);

        int full;

        if (r == (ssize_t)o->len || (r < 0 && *errp != EAGAIN && *errp != ENOTSOCK))
            return r;
        full = r > 0 || *errp == EAGAIN; /* the socket's buffer is full: wait first */
        *errp = err0;
        if (r > 0) { /* the rest, as a blocking write would */
            ssize_t more = gr__op_run(o, st, (size_t)r, full);

            if (more < 0)
                *errp = err0; /* its error comes with the next call */
            return more < 0 ? r : r + more;
        }
        return gr__op_run(o, st, 0, full);
    } else if (gr__fd_direct(st)) {
        return call_plain(o);
    }
    return gr__op_run(o, st, 0, 0);
}

ssize_t read(int fd, void *buf, size_t nbytes)
{
    ORIG_OR(read, syscall(SYS_read, fd, buf, nbytes));
    if (!gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.read(fd, buf, nbytes);
    return read_coop(fd, buf, nbytes);
}

ssize_t __read_chk(int fd, void *buf, size_t nbytes, size_t buflen)
{
    if (nbytes > buflen)
        __chk_fail();
    return read(fd, buf, nbytes);
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
    ORIG_OR(readv, syscall(SYS_readv, fd, iov, iovcnt));
    if (!gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.readv(fd, iov, iovcnt);
    return run((gr__op){.type = OP_READV, .fd = fd, .iov = iov, .iovcnt = iovcnt});
}

static ssize_t recv_coop(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                         socklen_t *addr_len)
{
    gr__op o = {.type = OP_RECVFROM,
                .fd = fd,
                .buf = buf,
                .len = n,
                .flags = flags,
                .from = addr,
                .fromlen = addr_len};
    unsigned st = gr__fd_state(fd);
    int *errp, err0;
    ssize_t r;

    if (GR__P_LIKELY(sock_blocking(st) && !(flags & MSG_WAITALL))) {
        errp = &errno;
        err0 = *errp;
        r = gr__orig.recvfrom(fd, buf, n, flags | MSG_DONTWAIT, addr, addr_len);
        if (r >= 0 || *errp != EAGAIN)
            return r;
        *errp = err0;
    } else if (gr__fd_direct(st)) {
        return gr__orig.recvfrom(fd, buf, n, flags, addr, addr_len);
    }
    return gr__op_run(&o, st, 0, 0);
}

static inline ssize_t recv_any(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                               socklen_t *addr_len)
{
    ORIG_OR(recvfrom, syscall(SYS_recvfrom, fd, buf, n, flags, addr, addr_len));
    if ((flags & MSG_DONTWAIT) || !gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.recvfrom(fd, buf, n, flags, addr, addr_len);
    return recv_coop(fd, buf, n, flags, addr, addr_len);
}

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    return recv_any(fd, buf, n, flags, NULL, NULL);
}

ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
    if (n > buflen)
        __chk_fail();
    return recv_any(fd, buf, n, flags, NULL, NULL);
}

ssize_t recvfrom(int fd, void *restrict buf, size_t n, int flags, __SOCKADDR_ARG addr,
                 socklen_t *restrict addr_len)
{
    return recv_any(fd, buf, n, flags, addr.__sockaddr__, addr_len);
}

ssize_t __recvfrom_chk(int fd, void *restrict buf, size_t n, size_t buflen, int flags,
                       __SOCKADDR_ARG addr, socklen_t *restrict addr_len)
{
    if (n > buflen)
        __chk_fail();
    return recv_any(fd, buf, n, flags, addr.__sockaddr__, addr_len);
}

ssize_t recvmsg(int fd, struct msghdr *message, int flags)
{
    ssize_t n;

    ORIG_OR(recvmsg, syscall(SYS_recvmsg, fd, message, flags));
    if ((flags & MSG_DONTWAIT) || !gr__patch_coop(GR_PATCH_SOCKET))
        n = gr__orig.recvmsg(fd, message, flags);
    else
        n = run((gr__op){.type = OP_RECVMSG, .fd = fd, .msg = message, .flags = flags});
    if (n >= 0 && message)
        GR__KEEP_ERRNO(adopt_received(message));
    return n;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    ORIG_OR(write, syscall(SYS_write, fd, buf, n));
    if (!gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.write(fd, buf, n);
    return send_coop(&(gr__op){.type = OP_WRITE, .fd = fd, .buf = (void *)buf, .len = n});
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    ORIG_OR(writev, syscall(SYS_writev, fd, iov, iovcnt));
    if (!gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.writev(fd, iov, iovcnt);
    return run((gr__op){.type = OP_WRITEV, .fd = fd, .iov = iov, .iovcnt = iovcnt});
}

static inline ssize_t send_any(int fd, const void *buf, size_t n, int flags,
                               const struct sockaddr *to, socklen_t tolen)
{
    ORIG_OR(sendto, syscall(SYS_sendto, fd, buf, n, flags, to, tolen));
    if ((flags & MSG_DONTWAIT) || !gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.sendto(fd, buf, n, flags, to, tolen);
    return send_coop(&(gr__op){.type = OP_SENDTO,
                               .fd = fd,
                               .buf = (void *)buf,
                               .len = n,
                               .flags = flags,
                               .to = to,
                               .tolen = tolen});
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
    return send_any(fd, buf, n, flags, NULL, 0);
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, __CONST_SOCKADDR_ARG addr,
               socklen_t addr_len)
{
    return send_any(fd, buf, n, flags, addr.__sockaddr__, addr_len);
}

ssize_t sendmsg(int fd, const struct msghdr *message, int flags)
{
    ORIG_OR(sendmsg, syscall(SYS_sendmsg, fd, message, flags));
    if ((flags & MSG_DONTWAIT) || !gr__patch_coop(GR_PATCH_SOCKET))
        return gr__orig.sendmsg(fd, message, flags);
    return run(
        (gr__op){.type = OP_SENDMSG, .fd = fd, .msg = (struct msghdr *)message, .flags = flags});
}
