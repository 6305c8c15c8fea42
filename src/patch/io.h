/* The engine under every interposed read and write: one blocking call
 * emulated as attempts that never block the OS thread, with waits on the
 * hub in between. */
#ifndef GROVE_PATCH_IO_H
#define GROVE_PATCH_IO_H

#include "patch/patch.h"

#include <sys/syscall.h>

/* Before the originals are resolved (a call from an allocator's start-up,
 * before the constructor): make the system call itself. No dlsym here:
 * it may allocate, and the allocator may be the caller. */
#define ORIG_OR(name, syscall_expr)                                                                \
    do {                                                                                           \
        if (GR__P_UNLIKELY(!gr__orig.name))                                                        \
            return syscall_expr;                                                                   \
    } while (0)

/* For a call with no system call of its own (DNS, select...): resolve now,
 * or fail with fail_expr. */
#define ORIG_OR_RESOLVE(name, fail_expr)                                                           \
    do {                                                                                           \
        if (GR__P_UNLIKELY(!gr__orig.name) && (!gr__patch_resolve() || !gr__orig.name))            \
            return fail_expr;                                                                      \
    } while (0)

/* The call made as the program made it: no record says it could block. */
static inline int gr__fd_direct(unsigned st)
{
    return st == GR__FD_UNKNOWN || (st & GR__FD_NONBLOCK) || (st & GR__FD_KIND) == GR__FD_PASS;
}

enum {
    OP_READ,
    OP_READV,
    OP_RECVFROM,
    OP_RECVMSG,
    OP_WRITE,
    OP_WRITEV,
    OP_SENDTO,
    OP_SENDMSG,
};

/* One read or write call, as the program made it. */
typedef struct gr__op {
    int type, fd;
    void *buf; /* OP_READ, OP_RECVFROM, OP_WRITE, OP_SENDTO */
    size_t len;
    const struct iovec *iov; /* OP_READV, OP_WRITEV */
    int iovcnt;
    struct msghdr *msg;    /* OP_RECVMSG, OP_SENDMSG */
    int flags;             /* OP_RECV*, OP_SEND* */
    struct sockaddr *from; /* OP_RECVFROM */
    socklen_t *fromlen;
    const struct sockaddr *to; /* OP_SENDTO */
    socklen_t tolen;
} gr__op;

/* Run o in a green thread on a descriptor the program left blocking
 * (state st): try without blocking, wait on the hub while it would block,
 * until done. Reads return what the first successful attempt gave
 * (MSG_WAITALL: until it is all there); writes write everything. A wait
 * that ends early returns the count so far if there is one, else -1 with
 * EAGAIN (SO_RCVTIMEO/SO_SNDTIMEO, as socket(7)), ETIMEDOUT (a Timeout
 * region), ECANCELED (the green thread was killed) or EBADF (closed by
 * another green thread). errno is the caller's again on success. skip:
 * bytes of o already moved (the count returned leaves them out);
 * wait_first: an attempt just said EAGAIN, so wait before the next. */
ssize_t gr__op_run(gr__op *o, unsigned st, size_t skip, int wait_first) GR__P_HIDDEN;

/* The deadline of a wait on fd for its SO_RCVTIMEO (rcv) or SO_SNDTIMEO:
 * -1 when it has none. */
int64_t gr__timeo_deadline(int fd, unsigned st, int rcv) GR__P_HIDDEN;

/* Wait for events on fd until deadline after the call said EAGAIN.
 * Returns 0, or -1 with errno; a deadline of the descriptor's own (not a
 * Timeout region) that passes gives own_err (EAGAIN, or EINPROGRESS for
 * connect). */
int gr__wait_again(int fd, int events, int64_t deadline, int own_err) GR__P_HIDDEN;

/* Call fn(fd, arg) with O_NONBLOCK set on fd for that one system call and
 * then restored (for calls with no per-call flag: accept, connect,
 * sendfile, terminals...). If the program had made fd non-blocking, the
 * call is simply made. *was_nonblock tells which. Keeps fn's errno. */
long gr__nonblock_call(int fd, long (*fn)(int fd, void *arg), void *arg,
                       int *was_nonblock) GR__P_HIDDEN;

#endif
