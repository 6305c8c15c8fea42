/* Waiting for one child process without blocking the hub and without
 * reaping anybody else's: a pidfd (Linux 5.3) becomes readable when its
 * process ends; without one, the child is polled with WNOHANG on a timer
 * that backs off. No SIGCHLD handler is ever involved (docs/design.md,
 * "Subprocesses"). */
#define _GNU_SOURCE
#include "os/os.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>

#define POLL_FIRST_MS 1
#define POLL_MAX_MS 20

static atomic_int use_pidfd = 1;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
    const char *e = getenv("GROVE_PIDFD");

    if (e && !strcmp(e, "0"))
        atomic_store(&use_pidfd, 0);
}

int gr__pidfd_open(pid_t pid)
{
    int fd;

    pthread_once(&probe_once, probe);
    if (!atomic_load(&use_pidfd)) {
        errno = ENOSYS;
        return -1;
    }
    fd = pidfd_open(pid, 0);
    if (fd < 0 && errno == ENOSYS)
        atomic_store(&use_pidfd, 0); /* an old kernel: never again */
    return fd;
}

/* Sleep until the next poll, never past the deadline. */
static int poll_pause(int64_t *delay, int64_t deadline)
{
    int64_t now = gr_now_update(), until = now + *delay;

    if (deadline >= 0 && deadline <= now) {
        errno = ETIMEDOUT;
        return -1;
    }
    if (deadline >= 0 && until > deadline)
        until = deadline;
    if (*delay < POLL_MAX_MS)
        *delay *= 2;
    return gr_sleep(until);
}

int gr__child_wait(int pidfd, gr__reap_fn try_reap, void *ctx, int64_t deadline)
{
    int64_t delay = POLL_FIRST_MS;
    int r, err;

    for (;;) {
        if ((r = try_reap(ctx)) != 0)
            return r;
        if (pidfd >= 0 ? gr_wait_fd(pidfd, GR_READ, deadline) < 0
                       : poll_pause(&delay, deadline) != 0)
            break;
    }
    /* A child that ended just as the deadline came counts. */
    if ((err = errno) == ETIMEDOUT && (r = try_reap(ctx)) != 0)
        return r;
    errno = err;
    return -1;
}

int gr__status_of(const siginfo_t *si)
{
    switch (si->si_code) {
    case CLD_EXITED:
        return (si->si_status & 0xff) << 8;
    case CLD_KILLED:
        return si->si_status & 0x7f;
    case CLD_DUMPED:
        return (si->si_status & 0x7f) | 0x80;
    case CLD_STOPPED:
    case CLD_TRAPPED:
        return ((si->si_status & 0xff) << 8) | 0x7f;
    default: /* CLD_CONTINUED */
        return 0xffff;
    }
}
