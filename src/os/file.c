/* Regular files through the thread pool: epoll cannot wait on them, so the
 * system call runs on a pool thread. The data goes through a buffer owned
 * by the operation record, which the pool's discard callback frees when
 * the caller gave up: a caller that times out or is killed returns at once,
 * and its own buffer is never touched afterwards. */
#define _GNU_SOURCE
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The largest transfer per call: the bounce buffer is allocated whole, so
 * a huge len would cost as much memory. Larger calls transfer this much
 * and return the short count, as read(2) and write(2) may. */
#define FILE_CHUNK ((size_t)16 << 20)

enum { OP_OPEN, OP_READ, OP_WRITE };

typedef struct fop {
    int op;
    int fd, flags;
    mode_t mode;
    off_t offset;
    size_t len;
    char *path;
    void *buf;
    ssize_t ret;
    int err;
} fop;

static ssize_t do_op(fop *o)
{
    switch (o->op) {
    case OP_OPEN:
        return open(o->path, o->flags | O_CLOEXEC, o->mode);
    case OP_READ:
        return o->offset >= 0 ? pread(o->fd, o->buf, o->len, o->offset)
                              : read(o->fd, o->buf, o->len);
    default:
        return o->offset >= 0 ? pwrite(o->fd, o->buf, o->len, o->offset)
                              : write(o->fd, o->buf, o->len);
    }
}

/* On a pool thread. */
static void *run_op(void *arg)
{
    fop *o = arg;

    do
        o->ret = do_op(o);
    while (o->ret < 0 && errno == EINTR);
    o->err = o->ret < 0 ? errno : 0;
    return o;
}

static void free_op(fop *o)
{
    free(o->path);
    free(o->buf);
    free(o);
}

/* On a pool thread, after the caller gave up: nobody will see the result,
 * so an opened descriptor must not leak. */
static void discard_op(void *result, void *arg)
{
    fop *o = arg;

    (void)result;
    if (o->op == OP_OPEN && o->ret >= 0)
        close((int)o->ret);
    free_op(o);
}

/* Nothing is queued for a caller already killed or out of time: the
 * operation would only have side effects nobody waits for. */
static int may_start(int64_t deadline)
{
    return gr__enter() == 0 ? gr__check_wait(deadline) : -1;
}

/* Run o on the pool; copy what was read to out. o is freed either way. */
static ssize_t submit(fop *o, void *out, int64_t deadline)
{
    ssize_t ret;
    int err;

    if (gr_threadpool_run(run_op, o, NULL, discard_op, deadline) != 0) {
        err = errno;
        if (err != ETIMEDOUT && err != ECANCELED) /* never queued: still ours */
            free_op(o);
        errno = err;
        return -1;
    }
    ret = o->ret;
    err = o->err;
    if (ret > 0 && out)
        memcpy(out, o->buf, (size_t)ret);
    free_op(o);
    if (ret < 0)
        errno = err;
    return ret;
}

static fop *new_op(int op, int fd, size_t len, off_t offset)
{
    fop *o = gr__calloc(1, sizeof *o);

    if (!o || (op != OP_OPEN && !(o->buf = gr__malloc(len ? len : 1)))) {
        free(o);
        errno = ENOMEM;
        return NULL;
    }
    o->op = op;
    o->fd = fd;
    o->len = len;
    o->offset = offset;
    return o;
}

int gr_file_open(const char *path, int flags, mode_t mode, int64_t deadline)
{
    fop *o;

    if (!path) {
        errno = EFAULT;
        return -1;
    }
    if (may_start(deadline) != 0 || !(o = new_op(OP_OPEN, -1, 0, -1)))
        return -1;
    o->flags = flags;
    o->mode = mode;
    if (!(o->path = gr__strdup(path))) {
        free_op(o);
        errno = ENOMEM;
        return -1;
    }
    return (int)submit(o, NULL, deadline);
}

/* A read or a write of up to FILE_CHUNK bytes (o->len), or NULL. */
static fop *new_transfer(int op, int fd, const void *buf, size_t len, off_t offset,
                         int64_t deadline)
{
    if (!buf && len) {
        errno = EFAULT;
        return NULL;
    }
    if (may_start(deadline) != 0)
        return NULL;
    return new_op(op, fd, len > FILE_CHUNK ? FILE_CHUNK : len, offset);
}

ssize_t gr_file_read(int fd, void *buf, size_t len, off_t offset, int64_t deadline)
{
    fop *o = new_transfer(OP_READ, fd, buf, len, offset, deadline);

    return o ? submit(o, buf, deadline) : -1;
}

ssize_t gr_file_write(int fd, const void *buf, size_t len, off_t offset, int64_t deadline)
{
    fop *o = new_transfer(OP_WRITE, fd, buf, len, offset, deadline);

    if (!o)
        return -1;
    if (o->len)
        memcpy(o->buf, buf, o->len);
    return submit(o, NULL, deadline);
}
