/* gr_daemonize: daemon(3) with a report. The calling process waits on a
 * pipe until the grandchild (the daemon) says it is set up, so a failure
 * (setsid, chdir, /dev/null) comes back as -1 and errno in the caller, not
 * as a daemon that silently never ran. */
#define _GNU_SOURCE
#include "core/core.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* In a child: report err (0: set up) to the waiting caller. */
static void report(int fd, int err)
{
    while (write(fd, &err, sizeof err) < 0 && errno == EINTR) {
    }
}

static void fail_child(int fd)
{
    report(fd, errno);
    _exit(1);
}

static int std_to_null(void)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (null < 0)
        return -1;
    for (int fd = 0; fd <= 2; fd++)
        if (dup2(null, fd) < 0)
            return -1;
    if (null > 2)
        close(null);
    return 0;
}

/* Every fd above 2 but keep. */
static void close_others(int keep)
{
    if (keep > 3)
        close_range(3, (unsigned)keep - 1, 0);
    close_range((unsigned)keep + 1, ~0U, 0);
}

/* The daemon's side, in the grandchild. */
static void become_daemon(unsigned flags, int out)
{
    if (!(flags & GR_DAEMON_NOCHDIR) && chdir("/") != 0)
        fail_child(out);
    if (std_to_null() != 0)
        fail_child(out);
    if (!(flags & GR_DAEMON_NOCLOSE)) {
        close_others(out);
        gr__hub_fds_lost();
    }
    report(out, 0);
    close(out);
}

/* The caller's side: wait for the report, reap the middle child. */
static int await_daemon(pid_t middle, int in)
{
    int err = EIO; /* no report at all: the middle child died */
    ssize_t n;

    while ((n = read(in, &err, sizeof err)) < 0 && errno == EINTR) {
    }
    close(in);
    while (waitpid(middle, NULL, 0) < 0 && errno == EINTR) {
    }
    if (n == (ssize_t)sizeof err && err == 0)
        _exit(0);
    errno = err ? err : EIO;
    return -1;
}

int gr_daemonize(unsigned flags)
{
    int p[2];
    pid_t pid;

    if (flags & ~(GR_DAEMON_NOCHDIR | GR_DAEMON_NOCLOSE)) {
        errno = EINVAL;
        return -1;
    }
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    if ((pid = fork()) < 0) {
        int err = errno;

        close(p[0]);
        close(p[1]);
        errno = err;
        return -1;
    }
    if (pid > 0) {
        close(p[1]);
        return await_daemon(pid, p[0]);
    }
    close(p[0]);
    if (setsid() < 0)
        fail_child(p[1]);
    if ((pid = fork()) < 0)
        fail_child(p[1]);
    if (pid > 0)
        _exit(0);
    become_daemon(flags, p[1]);
    return 0;
}
