/* wait, waitpid, wait3, wait4, waitid, system, popen and pclose for green
 * threads (contract in coop.h). Each wait tries the real system call with
 * WNOHANG, whose answer is the call's, and between tries waits on the
 * child's pidfd or on a backing-off timer (os/child.c). system and popen
 * are glibc 2.36's, step for step, with posix_spawn for the child and the
 * cooperative waitpid for the wait. */
#define _GNU_SOURCE
#include "arch/fail.h"
#include "os/coop.h"

#include "os/os.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

/* --------------------------------------------------------------- waits */

static pid_t raw_wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
    return (pid_t)syscall(SYS_wait4, pid, status, options, ru);
}

static int raw_waitid(idtype_t t, id_t id, siginfo_t *info, int options)
{
    return (int)syscall(SYS_waitid, t, id, info, options, NULL);
}

/* A pidfd for a wait on one child's end, or -1: then the wait polls. */
static int pidfd_for(idtype_t t, id_t id, int options)
{
    if (options & (WUNTRACED | WCONTINUED))
        return -1; /* a pidfd tells only of the end */
    if (t == P_PID)
        return gr__pidfd_open((pid_t)id);
    if (t == P_PIDFD)
        return fcntl((int)id, F_DUPFD_CLOEXEC, 0); /* ours to register and close */
    return -1;
}

/* Wait cooperatively with try_reap, then close the pidfd. */
static int child_wait(int pidfd, gr__reap_fn try_reap, void *ctx)
{
    int r = gr__child_wait(pidfd, try_reap, ctx, -1), err = errno;

    if (pidfd >= 0)
        gr_close(pidfd);
    errno = err;
    return r;
}

typedef struct w4 {
    pid_t pid;
    int *status;
    int options;
    struct rusage *ru;
    pid_t got;
} w4;

static int try_wait4(void *arg)
{
    w4 *w = arg;
    pid_t r = raw_wait4(w->pid, w->status, w->options | WNOHANG, w->ru);

    if (r > 0)
        w->got = r;
    return r > 0 ? 1 : r == 0 || errno == EINTR ? 0 : -1;
}

pid_t gr__wait4_coop(pid_t pid, int *status, int options, struct rusage *usage)
{
    w4 w = {pid, status, options, usage, 0};
    int err = errno;

    if (!gr__in_green_thread() || (options & WNOHANG))
        return raw_wait4(pid, status, options, usage);
    if (child_wait(pid > 0 ? pidfd_for(P_PID, (id_t)pid, options) : -1, try_wait4, &w) < 0)
        return -1;
    errno = err;
    return w.got;
}

pid_t gr__waitpid_coop(pid_t pid, int *status, int options)
{
    return gr__wait4_coop(pid, status, options, NULL);
}

pid_t gr__wait_coop(int *status)
{
    return gr__wait4_coop(-1, status, 0, NULL);
}

pid_t gr__wait3_coop(int *status, int options, struct rusage *usage)
{
    return gr__wait4_coop(-1, status, options, usage);
}

typedef struct wid {
    idtype_t t;
    id_t id;
    siginfo_t *info;
    int options;
} wid;

static int try_waitid(void *arg)
{
    wid *w = arg;

    w->info->si_pid = 0;
    if (raw_waitid(w->t, w->id, w->info, w->options | WNOHANG) < 0)
        return errno == EINTR ? 0 : -1;
    return w->info->si_pid != 0;
}

int gr__waitid_coop(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
    siginfo_t local;
    wid w = {idtype, id, info ? info : &local, options};
    int err = errno;

    if (!gr__in_green_thread() || (options & WNOHANG))
        return raw_waitid(idtype, id, info, options);
    if (child_wait(pidfd_for(idtype, id, options), try_waitid, &w) < 0)
        return -1;
    errno = err;
    return 0;
}

/* Wait for the child pid to end whatever happens (a kill included), as
 * glibc's pclose and system's clean-up do with cancellation disabled. */
static pid_t waitpid_shielded(pid_t pid, int *status)
{
    int shielded = gr__in_green_thread() && gr_shield_begin() == 0;
    pid_t r;

    while ((r = gr__waitpid_coop(pid, status, 0)) < 0 && errno == EINTR) {
    }
    if (shielded) {
        int err = errno;

        gr_shield_end();
        errno = err;
    }
    return r;
}

/* -------------------------------------------------------------- system */

static pthread_mutex_t sys_lock = PTHREAD_MUTEX_INITIALIZER;
static int sys_refs;
static struct sigaction sys_intr, sys_quit; /* as they were before the first call */
/* Calls in progress on this OS thread, and whether the first found
 * SIGCHLD unblocked (then the last unblocks it). */
static __thread int chld_depth, chld_ours;

/* SIGINT and SIGQUIT ignored while any system() runs; reset: those that
 * were not ignored before, for the child to take back. */
static void ignore_int_quit(sigset_t *reset)
{
    struct sigaction ign;

    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    pthread_mutex_lock(&sys_lock);
    if (sys_refs++ == 0) {
        sigaction(SIGINT, &ign, &sys_intr);
        sigaction(SIGQUIT, &ign, &sys_quit);
    }
    sigemptyset(reset);
    if (sys_intr.sa_handler != SIG_IGN)
        sigaddset(reset, SIGINT);
    if (sys_quit.sa_handler != SIG_IGN)
        sigaddset(reset, SIGQUIT);
    pthread_mutex_unlock(&sys_lock);
}

static void restore_int_quit(void)
{
    pthread_mutex_lock(&sys_lock);
    if (--sys_refs == 0) {
        sigaction(SIGINT, &sys_intr, NULL);
        sigaction(SIGQUIT, &sys_quit, NULL);
    }
    pthread_mutex_unlock(&sys_lock);
}

/* Block SIGCHLD; *omask: the mask as the program had it. */
static void block_chld(sigset_t *omask)
{
    sigset_t chld;

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, omask);
    if (chld_depth++ == 0)
        chld_ours = sigismember(omask, SIGCHLD) != 1;
    else if (chld_ours)
        sigdelset(omask, SIGCHLD);
}

static void unblock_chld(void)
{
    sigset_t chld;

    if (--chld_depth || !chld_ours)
        return;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_UNBLOCK, &chld, NULL);
}

static int do_system(const char *line)
{
    char *argv[] = {"sh", "-c", (char *)line, NULL};
    posix_spawnattr_t attr;
    sigset_t omask, reset;
    int status = -1, ret;
    pid_t pid;

    ignore_int_quit(&reset);
    block_chld(&omask);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &omask);
    posix_spawnattr_setsigdefault(&attr, &reset);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    ret = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (ret == 0) {
        pid_t r;

        while ((r = gr__waitpid_coop(pid, &status, 0)) < 0 && errno == EINTR) {
        }
        if (r != pid) {
            /* Killed (ECANCELED): the shell goes too, as glibc's
             * cancellation handler makes it. */
            int err = errno;

            kill(pid, SIGKILL);
            waitpid_shielded(pid, NULL);
            errno = err;
            status = -1;
        }
    } else if (ret == EAGAIN || ret == ENOMEM) {
        status = -1; /* no child could be made */
    } else {
        status = 127 << 8; /* no shell: as if it had exited with 127 */
    }
    restore_int_quit();
    unblock_chld();
    if (ret != 0)
        errno = ret;
    return status;
}

int gr__system_coop(const char *line)
{
    if (!line)
        return do_system("exit 0") == 0; /* is there a shell? */
    return do_system(line);
}

/* --------------------------------------------------------------- popen */

typedef struct pstream {
    struct pstream *next;
    int fd;    /* the parent's end of the pipe */
    pid_t pid; /* 0 until spawned */
} pstream;

/* Streams open, whose descriptors every later child must not inherit. */
static pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;
static pstream *chain;

/* Wait until fd is ready: parked in a green thread, else blocked. */
static int wait_ready(int fd, int events)
{
    struct pollfd p = {fd, (short)(events == GR_READ ? POLLIN : POLLOUT), 0};

    if (gr__in_green_thread())
        return gr_wait_fd(fd, events, -1) < 0 ? -1 : 0;
    while (syscall(SYS_ppoll, &p, 1, NULL, NULL, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

static ssize_t ps_read(void *cookie, char *buf, size_t len)
{
    pstream *s = cookie;

    for (;;) {
        ssize_t n = syscall(SYS_read, s->fd, buf, len);

        if (n >= 0)
            return n;
        if (errno != EINTR && (errno != EAGAIN || wait_ready(s->fd, GR_READ) != 0))
            return -1;
    }
}

/* All of it, as a write to a blocking pipe does (SIGPIPE included). */
static ssize_t ps_write(void *cookie, const char *buf, size_t len)
{
    pstream *s = cookie;
    size_t done = 0;

    while (done < len) {
        ssize_t n = syscall(SYS_write, s->fd, buf + done, len - done);

        if (n >= 0)
            done += (size_t)n;
        else if (errno != EINTR && (errno != EAGAIN || wait_ready(s->fd, GR_WRITE) != 0))
            return done ? (ssize_t)done : -1;
    }
    return (ssize_t)done;
}

static void unchain(pstream *s)
{
    pthread_mutex_lock(&chain_lock);
    for (pstream **p = &chain; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&chain_lock);
}

/* fclose's work on our stream, and so pclose's (glibc's pclose is
 * fclose): the status of the child, or -1. */
static int ps_close(void *cookie)
{
    pstream *s = cookie;
    int status = 0;
    pid_t pid = s->pid;

    unchain(s);
    gr_close(s->fd);
    free(s);
    if (pid && waitpid_shielded(pid, &status) < 0)
        return -1;
    return status;
}

static int parse_mode(const char *mode, int *reading, int *cloexec)
{
    int r = 0, w = 0;

    *cloexec = 0;
    for (; *mode; mode++) {
        if (*mode == 'r')
            r = 1;
        else if (*mode == 'w')
            w = 1;
        else if (*mode == 'e')
            *cloexec = 1;
        else
            return -1;
    }
    *reading = r;
    return r == w ? -1 : 0;
}

/* The shell, with the pipe's child end as its stdin or stdout and no other
 * stream's descriptor. Returns 0 or an error number. */
static int spawn_popen(pstream *s, const char *command, int child_end, int target)
{
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    posix_spawn_file_actions_t fa;
    int rc;

    posix_spawn_file_actions_init(&fa);
    rc = posix_spawn_file_actions_adddup2(&fa, child_end, target);
    pthread_mutex_lock(&chain_lock);
    for (pstream *p = chain; p && !rc; p = p->next)
        if (p->fd != target)
            rc = posix_spawn_file_actions_addclose(&fa, p->fd);
    if (!rc)
        rc = posix_spawn(&s->pid, "/bin/sh", &fa, NULL, argv, environ);
    if (!rc) {
        s->next = chain;
        chain = s;
    }
    pthread_mutex_unlock(&chain_lock);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

FILE *gr__popen_coop(const char *command, const char *mode)
{
    cookie_io_functions_t io = {ps_read, ps_write, NULL, ps_close};
    int reading, cloexec, pp[2], child, rc;
    pstream *s = NULL;
    FILE *f;

    if (parse_mode(mode, &reading, &cloexec) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (pipe2(pp, O_CLOEXEC) != 0)
        return NULL;
    child = pp[reading ? 1 : 0];
    if (child == (reading ? 1 : 0)) {
        /* Already where it goes (that fd was closed): move it, so the
         * child's dup2 is a real one and clears close-on-exec. */
        int moved = fcntl(child, F_DUPFD_CLOEXEC, 3);

        close(child);
        child = pp[reading ? 1 : 0] = moved;
    }
    if (child < 0) {
        rc = errno;
        goto fail;
    }
    if (!(s = gr__calloc(1, sizeof *s)) || !(f = fopencookie(s, reading ? "r" : "w", io))) {
        free(s);
        rc = ENOMEM;
        goto fail;
    }
    s->fd = pp[reading ? 0 : 1];
    fcntl(s->fd, F_SETFL, O_NONBLOCK);
    if ((rc = spawn_popen(s, command, child, reading ? 1 : 0)) != 0) {
        s->fd = -1;
        fclose(f); /* pid 0: nothing to wait for */
        goto fail;
    }
    close(child);
    /* Only now: the child must not hold its own pipe's other end. */
    if (!cloexec)
        fcntl(s->fd, F_SETFD, 0);
    return f;
fail:
    if (pp[0] >= 0)
        close(pp[0]);
    if (pp[1] >= 0)
        close(pp[1]);
    errno = rc;
    return NULL;
}

int gr__pclose_coop(FILE *stream)
{
    return fclose(stream);
}
