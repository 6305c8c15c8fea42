/* What the interposers share: the originals, the family switches, the
 * per-descriptor records and the few facts they need from the core (the
 * last behind the functions of core_glue.c, the one file of src/patch that
 * sees the core's internals).
 *
 * Include this first: the interposers are compiled with libc's plain
 * declarations, never its fortified or 64-bit-offset redirections (which
 * would rename read or fcntl under us). */
#ifndef GROVE_PATCH_INTERNAL_H
#define GROVE_PATCH_INTERNAL_H

#undef _FORTIFY_SOURCE
#undef _FILE_OFFSET_BITS
#undef _TIME_BITS
#define _GNU_SOURCE
#define _LARGEFILE64_SOURCE 1

#include "grove.h"
#include "grove/patch.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <resolv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GR__P_LIKELY(x) __builtin_expect(!!(x), 1)
#define GR__P_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GR__P_HIDDEN __attribute__((visibility("hidden")))

/* The interposers' declarations, from the table: a prototype that differs
 * from glibc's is a compile error here, a definition that differs from it
 * one in the file that defines it. Exported (the version script decides
 * what leaves the .so). */
#define GR_PATCH(fam, how, ret, name, params, note)                                                \
    __attribute__((visibility("default"))) ret name params;
#include "patch/table.h"
#undef GR_PATCH

/* glibc's fortify entry points and its abort on overflow. */
extern void __chk_fail(void) __attribute__((noreturn));

/* -------------------------------------------------------------- originals
 * One typed pointer per table entry, resolved by a constructor before main
 * (and earlier on demand). NULL until then, or when this libc lacks the
 * function. */
typedef struct gr__patch_orig {
#define GR_PATCH(fam, how, ret, name, params, note) ret(*name) params;
#include "patch/table.h"
#undef GR_PATCH
} gr__patch_orig;

extern gr__patch_orig gr__orig GR__P_HIDDEN;

/* Resolve the originals now if that has not been done (for a call that
 * comes before the constructor, as an allocator's early open/read do).
 * Returns 1 when they are resolved, 0 while resolving on this thread
 * (dlsym may allocate, and the allocator may call us back): the caller
 * then makes the system call itself. Never allocates, never recurses. */
int gr__patch_resolve(void) GR__P_HIDDEN;

/* -1/ENOSYS: for a call whose original cannot be had. */
long gr__patch_enosys(void) GR__P_HIDDEN;

/* The original of name, resolving first if needed; NULL for none. */
#define GR__ORIG_READY(name) (GR__P_LIKELY(gr__orig.name != NULL) || gr__patch_resolve())

/* ----------------------------------------------------------- the core
 * core_glue.c: what the interposers need from the core, named for them. */

/* 1 if the caller runs in a green thread (not the root, not the hub). */
int gr__glue_in_green(void) GR__P_HIDDEN;
/* Wait until fd may be ready for events (GR_READ/GR_WRITE) or deadline.
 * after_eagain: the call just said EAGAIN, so no earlier edge counts.
 * Returns > 0, or -1 with ETIMEDOUT (deadline or Timeout region), ECANCELED,
 * EBADF (closed under us), ENOMEM. */
int gr__glue_wait_fd(int fd, int events, int64_t deadline, int after_eagain) GR__P_HIDDEN;
/* gr_poll. */
int gr__glue_poll(struct pollfd *fds, nfds_t nfds, int64_t deadline) GR__P_HIDDEN;
/* gr_sleep. */
int gr__glue_sleep(int64_t deadline) GR__P_HIDDEN;
/* -1/ECANCELED when the calling green thread has been killed, else 0. */
int gr__glue_testcancel(void) GR__P_HIDDEN;
/* The monotonic clock in ms, refreshing the hub's cached time. */
int64_t gr__glue_now(void) GR__P_HIDDEN;
/* Wake the waiters on fd (EBADF) and unregister it from this thread's hub. */
void gr__glue_forget(int fd) GR__P_HIDDEN;
/* Run fn(arg) on the thread pool, waiting cooperatively (gr_thread_run). */
int gr__glue_pool_run(void *(*fn)(void *), void *arg, void (*discard)(void *res, void *arg),
                      int64_t deadline) GR__P_HIDDEN;

/* ------------------------------------------------------------- families */
extern unsigned gr__patch_on GR__P_HIDDEN;
extern int gr__patch_used GR__P_HIDDEN;

/* Whether a call of family fam, made now, is to be made cooperative: the
 * family is on and the caller runs in a green thread. */
static inline int gr__patch_coop(unsigned fam)
{
    int in;

    if (!(gr__patch_on & fam))
        return 0;
    in = gr__glue_in_green();
    if (in && GR__P_UNLIKELY(!gr__patch_used))
        __atomic_store_n(&gr__patch_used, 1, __ATOMIC_RELAXED);
    return in;
}

/* ------------------------------------------------------------- records
 * Per-descriptor facts, process-wide (descriptors are), kept by the
 * interposers that create and change descriptors and learned from the
 * kernel for any other ("adopted") on first use. grove never leaves a
 * descriptor in a mode the program did not choose, so the kernel's flags
 * stay the truth; a record only saves asking for them. */
enum {
    GR__FD_UNKNOWN = 0, /* no record: adopt on first use */
    GR__FD_SOCK = 1,    /* a socket: MSG_DONTWAIT per call */
    GR__FD_PIPE = 2,    /* a pipe or FIFO: RWF_NOWAIT per call, where the kernel has it */
    GR__FD_OTHER = 3,   /* pollable, no per-call flag (terminal, eventfd...) */
    GR__FD_PASS = 4,    /* regular file, directory, block device: never waits */
    GR__FD_KIND = 7,
    GR__FD_NONBLOCK = 8,   /* the program made it non-blocking: never wait for it */
    GR__FD_NO_NOWAIT = 16, /* RWF_NOWAIT refused: fall back as for OTHER */
};

/* The records' storage (fdtab.c): fixed chunks, never moved or freed. */
typedef struct gr__fdinfo {
    unsigned state; /* GR__FD_* bits; 0: no record */
    int rcv_ms, snd_ms;
    int pad;
} gr__fdinfo;

#define GR__FDS_CHUNK 4096
#define GR__FDS_CHUNKS 1024 /* 4M descriptors, as the core's table */
extern gr__fdinfo *gr__fds[GR__FDS_CHUNKS] GR__P_HIDDEN;

/* Learn fd from the kernel and record it (0 for an invalid fd: the real
 * call reports EBADF). Keeps errno. */
unsigned gr__fd_adopt(int fd) GR__P_HIDDEN;

/* The record of fd, adopting the descriptor if it has none. Two loads on
 * the hot path. Keeps errno. */
static inline unsigned gr__fd_state(int fd)
{
    gr__fdinfo *c;
    unsigned s;

    if (GR__P_LIKELY((unsigned)fd < GR__FDS_CHUNK * GR__FDS_CHUNKS) &&
        GR__P_LIKELY((c = __atomic_load_n(&gr__fds[fd / GR__FDS_CHUNK], __ATOMIC_ACQUIRE)) !=
                     NULL) &&
        GR__P_LIKELY((s = __atomic_load_n(&c[fd % GR__FDS_CHUNK].state, __ATOMIC_ACQUIRE)) != 0))
        return s;
    return gr__fd_adopt(fd);
}

/* Set a freshly made descriptor's record (time-outs in ms, 0 = none). */
void gr__fd_set(int fd, unsigned state, int rcv_ms, int snd_ms) GR__P_HIDDEN;
/* Forget fd's record (closed, or changed behind our back). */
void gr__fd_clear(int fd) GR__P_HIDDEN;
/* to is a new descriptor for from's open file description. */
void gr__fd_copy(int from, int to) GR__P_HIDDEN;
/* The program switched fd's non-blocking mode. */
void gr__fd_set_nonblock(int fd, int on) GR__P_HIDDEN;
/* The bits in flags (GR__FD_NO_NOWAIT) learned about fd. */
void gr__fd_add_flags(int fd, unsigned flags) GR__P_HIDDEN;
/* SO_RCVTIMEO (rcv 1) or SO_SNDTIMEO (rcv 0) in ms, 0 = none. */
int gr__fd_timeo(int fd, int rcv) GR__P_HIDDEN;
void gr__fd_set_timeo(int fd, int rcv, int ms) GR__P_HIDDEN;
/* The highest descriptor ever recorded, for range operations. */
int gr__fd_high(void) GR__P_HIDDEN;

/* --------------------------------------------------------- time helpers */

/* The absolute ms deadline ms_from_now from now (rounded up); -1 for a
 * negative delay (forever). */
int64_t gr__deadline_in_ms(int64_t ms_from_now) GR__P_HIDDEN;
/* The same from a relative timespec (rounded up to the next ms). */
int64_t gr__deadline_in_ts(const struct timespec *ts) GR__P_HIDDEN;

/* Keep errno across bookkeeping. */
#define GR__KEEP_ERRNO(stmt)                                                                       \
    do {                                                                                           \
        int e_ = errno;                                                                            \
        stmt;                                                                                      \
        errno = e_;                                                                                \
    } while (0)

#endif
