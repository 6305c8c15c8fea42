/* Child processes (Go's os/exec, Python's subprocess, libuv's uv_spawn):
 * posix_spawn, whose glibc implementation is a vfork-style clone, so the
 * cost does not grow with the parent's memory (a fork of a 1 GiB parent
 * copies its page tables: ~25 ms here, against ~0.5 ms). glibc reports the
 * child's exec error (and a failed file action) as posix_spawn's result,
 * so a missing program is an error of the spawn call.
 *
 * The child gets exactly: its standard streams as asked, the descriptors
 * passed (fds[i] as 3 + i), nothing else (closefrom), an empty signal mask
 * and every disposition at its default. To place descriptors without ever
 * overwriting one still to be copied, each source is first copied above
 * every target (close-on-exec, so the copies die at the exec anyway). */
#define _GNU_SOURCE
#include "arch/fail.h"
#include "os/os.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define FDS_MAX 1024 /* descriptors passed beyond the standard three */

struct gr_proc {
    pid_t pid;
    int pidfd;  /* -1: polled */
    int fds[3]; /* the parent's pipe ends, or -1 */
    int status; /* once reaped */
    int reaped;
    int lost; /* reaped by someone else */
};

/* --------------------------------------------------------------- spawn */

typedef struct plan {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int base;   /* every descriptor the child gets is below it */
    int *temps; /* copies made for the call */
    size_t ntemps;
} plan;

static int check_opts(const char *const *argv, const gr_proc_opts *o)
{
    if (!argv || !argv[0] || (o->flags & ~(GR_PROC_SETSID | GR_PROC_SETPGID)) ||
        (o->flags & GR_PROC_SETSID && o->flags & GR_PROC_SETPGID) || o->pgid < 0 ||
        o->nfds > FDS_MAX || (o->nfds && !o->fds))
        return EINVAL;
    for (int n = 0; n < 3; n++) {
        int how = o->stdio[n].how;

        if (how < GR_STDIO_INHERIT || how > GR_STDIO_STDOUT || (how == GR_STDIO_STDOUT && n != 2))
            return EINVAL;
        if (how == GR_STDIO_FD && o->stdio[n].fd < 0)
            return EBADF;
    }
    for (size_t i = 0; i < o->nfds; i++)
        if (o->fds[i] < 0)
            return EBADF;
    return 0;
}

/* Copy fd above every target and have the child dup2 it to target.
 * Returns 0 or an error number. */
static int place(plan *pl, int fd, int target)
{
    int t = fcntl(fd, F_DUPFD_CLOEXEC, pl->base);

    if (t < 0)
        return errno;
    pl->temps[pl->ntemps++] = t;
    return posix_spawn_file_actions_adddup2(&pl->fa, t, target);
}

static int plan_pipe(plan *pl, gr_proc *p, int n)
{
    int pp[2], rc;

    if (pipe2(pp, O_CLOEXEC) != 0)
        return errno;
    /* stdin: the child reads pp[0]; stdout, stderr: the child writes pp[1]. */
    p->fds[n] = n == 0 ? pp[1] : pp[0];
    rc = fcntl(p->fds[n], F_SETFL, O_NONBLOCK) != 0 ? errno : place(pl, pp[n == 0 ? 0 : 1], n);
    close(pp[n == 0 ? 0 : 1]);
    return rc;
}

static int plan_stream(plan *pl, gr_proc *p, int n, const gr_stdio *s)
{
    switch (s->how) {
    case GR_STDIO_PIPE:
        return plan_pipe(pl, p, n);
    case GR_STDIO_NULL:
        return posix_spawn_file_actions_addopen(&pl->fa, n, "/dev/null",
                                                n == 0 ? O_RDONLY : O_WRONLY, 0);
    case GR_STDIO_FD:
        return place(pl, s->fd, n);
    case GR_STDIO_STDOUT:
        return posix_spawn_file_actions_adddup2(&pl->fa, 1, 2);
    default:
        return 0;
    }
}

static int plan_attr(plan *pl, const gr_proc_opts *o)
{
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    sigset_t none, all;

    sigemptyset(&none);
    /* Every bit: sigfillset leaves out glibc's internal signals (32, 33),
     * which glibc's posix_spawn then leaves ignored in the child. */
    memset(&all, 0xff, sizeof all);
    if (o->flags & GR_PROC_SETSID)
        flags |= POSIX_SPAWN_SETSID;
    if (o->flags & GR_PROC_SETPGID) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&pl->attr, o->pgid);
    }
    posix_spawnattr_setsigmask(&pl->attr, &none);
    posix_spawnattr_setsigdefault(&pl->attr, &all);
    return posix_spawnattr_setflags(&pl->attr, flags);
}

/* Everything the child is to get, as file actions. 0 or an error number. */
static int make_plan(plan *pl, gr_proc *p, const gr_proc_opts *o)
{
    int rc = 0;

    if (o->cwd)
        rc = posix_spawn_file_actions_addchdir_np(&pl->fa, o->cwd);
    for (int n = 0; n < 3 && !rc; n++)
        rc = plan_stream(pl, p, n, &o->stdio[n]);
    for (size_t i = 0; i < o->nfds && !rc; i++)
        rc = place(pl, o->fds[i], 3 + (int)i);
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&pl->fa, pl->base);
    return rc ? rc : plan_attr(pl, o);
}

static void close_pipes(gr_proc *p)
{
    for (int n = 0; n < 3; n++) {
        if (p->fds[n] >= 0)
            gr_close(p->fds[n]);
        p->fds[n] = -1;
    }
}

static int run_plan(plan *pl, gr_proc *p, const char *const *argv, const gr_proc_opts *o)
{
    const char *file = o->file ? o->file : argv[0];
    char *const *env = o->env ? (char *const *)o->env : environ;
    int rc;

    if ((rc = make_plan(pl, p, o)) != 0)
        return rc;
    if (strchr(file, '/'))
        return posix_spawn(&p->pid, file, &pl->fa, &pl->attr, (char *const *)argv, env);
    return posix_spawnp(&p->pid, file, &pl->fa, &pl->attr, (char *const *)argv, env);
}

gr_proc *gr_proc_spawn(const char *const *argv, const gr_proc_opts *opts)
{
    static const gr_proc_opts none;
    const gr_proc_opts *o = opts ? opts : &none;
    plan pl = {.base = 3 + (int)o->nfds};
    gr_proc *p;
    int rc;

    if ((rc = check_opts(argv, o)) != 0) {
        errno = rc;
        return NULL;
    }
    if (gr__check_cancel() != 0)
        return NULL;
    if (!(p = gr__calloc(1, sizeof *p)) || !(pl.temps = gr__malloc((o->nfds + 3) * sizeof(int)))) {
        free(p);
        errno = ENOMEM;
        return NULL;
    }
    *p = (gr_proc){.pidfd = -1, .fds = {-1, -1, -1}};
    posix_spawn_file_actions_init(&pl.fa);
    posix_spawnattr_init(&pl.attr);
    rc = run_plan(&pl, p, argv, o);
    for (size_t i = 0; i < pl.ntemps; i++)
        close(pl.temps[i]);
    free(pl.temps);
    posix_spawn_file_actions_destroy(&pl.fa);
    posix_spawnattr_destroy(&pl.attr);
    if (rc) {
        close_pipes(p);
        free(p);
        errno = rc;
        return NULL;
    }
    p->pidfd = gr__pidfd_open(p->pid); /* none (EMFILE...): polled */
    return p;
}

/* ------------------------------------------------------------ the child */

pid_t gr_proc_pid(const gr_proc *p)
{
    return p ? p->pid : -1;
}

int gr_proc_fd(const gr_proc *p, int n)
{
    return p && n >= 0 && n < 3 ? p->fds[n] : -1;
}

int gr_proc_close_fd(gr_proc *p, int n)
{
    if (!p || n < 0 || n > 2 || p->fds[n] < 0) {
        errno = EINVAL;
        return -1;
    }
    gr_close(p->fds[n]);
    p->fds[n] = -1;
    return 0;
}

static void reaped(gr_proc *p, int status)
{
    p->status = status;
    p->reaped = 1;
    if (p->pidfd >= 0)
        gr_close(p->pidfd);
    p->pidfd = -1;
}

/* Reap p if it has ended, by its pidfd (which names this very process,
 * whatever has happened to its pid) or by its pid. The system call
 * itself: libgrove-patch interposes waitid. */
static int reap(gr_proc *p, int options)
{
    siginfo_t si;

    si.si_pid = 0;
    if (syscall(SYS_waitid, p->pidfd >= 0 ? P_PIDFD : P_PID, p->pidfd >= 0 ? p->pidfd : p->pid, &si,
                WEXITED | options, NULL) < 0) {
        if (errno == EINTR)
            return 0;
        if (errno == ECHILD)
            p->lost = 1;
        return -1;
    }
    if (!si.si_pid)
        return 0;
    reaped(p, gr__status_of(&si));
    return 1;
}

static int reap_once(void *p)
{
    return reap(p, WNOHANG);
}

int gr_proc_wait(gr_proc *p, int *status, int64_t deadline)
{
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    if (!p->reaped) {
        if (p->lost) {
            errno = ECHILD;
            return -1;
        }
        if (gr__child_wait(p->pidfd, reap_once, p, deadline) < 0)
            return -1;
    }
    if (status)
        *status = p->status;
    return 0;
}

int gr_proc_kill(gr_proc *p, int signo)
{
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    if (p->reaped || p->lost) {
        errno = ESRCH;
        return -1;
    }
    if (p->pidfd >= 0)
        return pidfd_send_signal(p->pidfd, signo, NULL, 0);
    return kill(p->pid, signo);
}

int gr_proc_free(gr_proc *p)
{
    if (!p)
        return 0;
    close_pipes(p);
    if (!p->reaped && !p->lost) {
        gr_proc_kill(p, SIGKILL); /* ESRCH: it has ended already; reap it all the same */
        while (reap(p, 0) == 0) {
        }
    }
    if (p->pidfd >= 0)
        gr_close(p->pidfd);
    free(p);
    return 0;
}

/* --------------------------------------------------------- communicate */

#define CHUNK ((size_t)64 << 10)

typedef struct sink {
    char *buf;
    size_t len, cap;
    int keep; /* 0: discard */
} sink;

/* Room for a chunk more, plus the final NUL. */
static int sink_room(sink *k)
{
    char *b;
    size_t cap;

    if (k->cap - k->len > CHUNK)
        return 0;
    cap = k->cap ? k->cap * 2 : CHUNK * 2;
    if (!(b = gr__realloc(k->buf, cap))) {
        errno = ENOMEM;
        return -1;
    }
    k->buf = b;
    k->cap = cap;
    return 0;
}

/* Read stream n until it would block. Returns 0, or -1 with errno. */
static int drain(gr_proc *p, int n, sink *k)
{
    char scratch[16384];

    for (;;) {
        ssize_t r;

        if (k->keep && sink_room(k) != 0)
            return -1;
        r = k->keep ? gr_read(p->fds[n], k->buf + k->len, CHUNK, 0)
                    : gr_read(p->fds[n], scratch, sizeof scratch, 0);
        if (r > 0 && k->keep)
            k->len += (size_t)r;
        if (r > 0)
            continue;
        if (r == 0)
            return gr_proc_close_fd(p, n);
        return errno == ETIMEDOUT ? 0 : -1;
    }
}

/* Write stdin until it would block, closing it once all is written or the
 * child has closed its end. Returns 0, or -1 with errno. */
static int feed(gr_proc *p, const char *in, size_t inlen, size_t *off)
{
    while (*off < inlen) {
        size_t len = inlen - *off < CHUNK * 16 ? inlen - *off : CHUNK * 16;
        ssize_t w = gr_write(p->fds[0], in + *off, len, 0);

        if (w > 0) {
            *off += (size_t)w;
            continue;
        }
        if (errno == ETIMEDOUT)
            return 0;
        if (errno != EPIPE)
            return -1;
        break;
    }
    return gr_proc_close_fd(p, 0);
}

/* Wait for any of the pipes, then serve each that is ready. */
static int exchange(gr_proc *p, const char *in, size_t inlen, size_t *off, sink k[3],
                    int64_t deadline)
{
    struct pollfd pf[3];
    int who[3], m = 0, r;

    for (int n = 0; n < 3; n++) {
        if (p->fds[n] < 0)
            continue;
        pf[m] = (struct pollfd){p->fds[n], (short)(n == 0 ? POLLOUT : POLLIN), 0};
        who[m++] = n;
    }
    if ((r = gr_poll(pf, (nfds_t)m, deadline)) <= 0) {
        if (r == 0)
            errno = ETIMEDOUT;
        return -1;
    }
    for (int i = 0; i < m; i++) {
        if (!pf[i].revents)
            continue;
        r = who[i] == 0 ? feed(p, in, inlen, off) : drain(p, who[i], &k[who[i]]);
        if (r != 0)
            return -1;
    }
    return 0;
}

static void hand_out(sink *k, char **buf, size_t *len)
{
    if (k->keep && !k->buf)
        k->buf = gr__calloc(1, 1); /* a pipe that gave nothing: "" (NULL if no memory) */
    if (k->buf)
        k->buf[k->len] = '\0';
    if (buf)
        *buf = k->buf;
    else
        free(k->buf);
    if (len)
        *len = k->len;
}

int gr_proc_communicate(gr_proc *p, const void *in, size_t inlen, char **out, size_t *outlen,
                        char **err, size_t *errlen, int *status, int64_t deadline)
{
    sink k[3] = {
        {0}, {NULL, 0, 0, out && p && p->fds[1] >= 0}, {NULL, 0, 0, err && p && p->fds[2] >= 0}};
    size_t off = 0;
    int rc = 0, e;

    if (!p) {
        errno = EINVAL;
        return -1;
    }
    if (p->fds[0] >= 0 && (!in || !inlen))
        gr_proc_close_fd(p, 0);
    while (rc == 0 && (p->fds[0] >= 0 || p->fds[1] >= 0 || p->fds[2] >= 0))
        rc = exchange(p, in, inlen, &off, k, deadline);
    if (rc == 0)
        rc = gr_proc_wait(p, status, deadline);
    e = errno;
    if (rc != 0 && p->fds[0] >= 0)
        gr_proc_close_fd(p, 0);
    hand_out(&k[1], out, outlen);
    hand_out(&k[2], err, errlen);
    errno = e;
    return rc;
}
