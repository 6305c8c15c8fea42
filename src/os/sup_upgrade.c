/* The supervisor's binary upgrade (docs/supervisor.md#upgrading-the-binary):
 * SIGUSR2 starts a new binary with the listening sockets inherited and
 * named in the environment; it says on a socket when its workers are ready,
 * and the old master then stops. */
#define _GNU_SOURCE
#include "os/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int gr_sup_inherited_fds(int *fds, size_t max)
{
    const char *e = getenv(ENV_LISTEN_FDS);
    size_t n = 0;

    if (!e)
        return 0;
    while (*e) {
        char *end;
        long v = strtol(e, &end, 10);

        if (end == e || v < 0 || v > INT32_MAX || (*end && *end != ',') || n >= max || !fds ||
            fcntl((int)v, F_SETFD, FD_CLOEXEC) != 0) {
            errno = EINVAL;
            return -1;
        }
        fds[n++] = (int)v;
        e = *end ? end + 1 : end;
    }
    unsetenv(ENV_LISTEN_FDS);
    return (int)n;
}

/* A new binary's master: the descriptor its predecessor waits on. */
int gr__sup_take_ready_fd(void)
{
    const char *e = getenv(ENV_READY_FD);
    char *end;
    long v;

    if (!e)
        return -1;
    v = strtol(e, &end, 10);
    unsetenv(ENV_READY_FD);
    if (end == e || *end || v < 0 || v > INT32_MAX || fcntl((int)v, F_SETFD, FD_CLOEXEC) != 0)
        return -1;
    return (int)v;
}

/* Once every slot has a ready worker, tell the previous master. */
void gr__sup_maybe_say_ready(sup *S, int64_t now)
{
    char r = MSG_READY;

    if (S->ready_fd < 0 || S->stopping)
        return;
    for (size_t i = 0; i < S->nslots; i++)
        if (!S->slots[i].cur || !gr__sup_is_ready(S, S->slots[i].cur, now))
            return;
    /* A socket, not a pipe: a predecessor gone by now must not make this
     * master die of SIGPIPE. */
    if (send(S->ready_fd, &r, 1, MSG_NOSIGNAL) != 1)
        gr__sup_say(S, "upgrade: cannot tell the previous master: %s", strerror(errno));
    else
        gr__sup_say(S, "upgrade: ready: the previous master may stop");
    close(S->ready_fd);
    S->ready_fd = -1;
}

/* The master's own command line, for a re-exec of the same path. */
static char **own_argv(void)
{
    size_t cap = 4096, len = 0, n = 0;
    char *buf = gr__malloc(cap), **argv;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t r;

    while (buf && fd >= 0 && (r = read(fd, buf + len, cap - len - 1)) > 0) {
        char *more;

        if ((len += (size_t)r) < cap - 1)
            continue;
        if (!(more = gr__realloc(buf, cap * 2)))
            break;
        buf = more;
        cap *= 2;
    }
    if (fd >= 0)
        close(fd);
    if (!buf || !len) {
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    for (size_t i = 0; i < len; i++)
        n += buf[i] == 0;
    if (!(argv = gr__calloc(n + 2, sizeof *argv))) {
        free(buf);
        return NULL;
    }
    /* argv[0] is the block: free(argv[0]) and free(argv) free it all. */
    for (size_t i = 0, k = 0; i < len && k <= n; i += strlen(buf + i) + 1)
        argv[k++] = buf + i;
    return argv;
}

/* The environment without our two variables, plus their new values. */
static char **upgrade_env(const char *fds_var, const char *ready_var)
{
    extern char **environ;
    size_t n = 0, k = 0;
    char **env;

    while (environ[n])
        n++;
    if (!(env = gr__calloc(n + 3, sizeof *env)))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], ENV_LISTEN_FDS "=", sizeof ENV_LISTEN_FDS) &&
            strncmp(environ[i], ENV_READY_FD "=", sizeof ENV_READY_FD))
            env[k++] = environ[i];
    env[k++] = (char *)fds_var;
    env[k] = (char *)ready_var;
    return env;
}

/* posix_spawn the new binary with the listeners as its fds 3.. and the
 * ready pipe after them. Returns its pid, or -1 with errno. */
static pid_t spawn_new_master(sup *S, char *const *argv, int ready_w)
{
    size_t n = S->o.nfds;
    int hi[MAX_FDS + 1], rc;
    char fds_var[sizeof ENV_LISTEN_FDS + MAX_FDS * 4], ready_var[sizeof ENV_READY_FD + 12];
    char **env = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    pid_t pid = -1;
    size_t o = snprintf(fds_var, sizeof fds_var, "%s=", ENV_LISTEN_FDS);

    /* Copies above the targets first: a listener may sit on a target. */
    for (size_t i = 0; i <= n; i++)
        hi[i] = fcntl(i < n ? S->fds[i] : ready_w, F_DUPFD_CLOEXEC, (int)(3 + n + 1));
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    rc = 0;
    for (size_t i = 0; i <= n && !rc; i++) {
        rc = hi[i] < 0 ? errno : posix_spawn_file_actions_adddup2(&fa, hi[i], (int)(3 + i));
        if (i < n)
            o += snprintf(fds_var + o, sizeof fds_var - o, "%s%zu", i ? "," : "", 3 + i);
    }
    snprintf(ready_var, sizeof ready_var, "%s=%zu", ENV_READY_FD, 3 + n);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!rc && !(env = upgrade_env(fds_var, ready_var)))
        rc = ENOMEM;
    if (!rc)
        rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv, env);
    free(env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (size_t i = 0; i <= n; i++)
        if (hi[i] >= 0)
            close(hi[i]);
    errno = rc;
    return rc ? -1 : pid;
}

static void *await_upgrade(void *arg)
{
    sup *S = arg;
    char r;
    ssize_t n = gr_read(S->upgrade_rd, &r, 1, gr_now_update() + UPGRADE_TIMEOUT_MS);
    int err = errno, status;

    if (n == 1) {
        gr__sup_say(S, "upgrade: the new master (pid %d) is ready: stopping this one",
                    (int)S->upgrade_pid);
        S->stopping = 1;
    } else {
        gr__sup_say(S, "upgrade failed: the new master (pid %d) %s; this one goes on",
                    (int)S->upgrade_pid,
                    n == 0 ? "ended before its workers were ready" : strerror(err));
        if (n < 0)
            kill(S->upgrade_pid, SIGTERM);
        /* It ends soon (or has): reap it if it has, else init will. */
        for (int i = 0; i < 20 && waitpid(S->upgrade_pid, &status, WNOHANG) == 0; i++)
            gr_sleep(gr_now_update() + 50);
    }
    gr_close(S->upgrade_rd);
    S->upgrade_rd = -1;
    S->upgrade_done = 1;
    gr_event_set(&S->change);
    return NULL;
}

/* SIGUSR2: start the new binary, which takes over once its workers are
 * ready; this master then drains its own and returns. */
void gr__sup_upgrade(sup *S)
{
    char **argv = NULL;
    const char *const *given = S->o.upgrade_argv;
    int p[2] = {-1, -1};

    S->upgrades = 0;
    if (S->upgrade > 0) {
        gr__sup_say(S, "SIGUSR2: an upgrade is already under way");
        return;
    }
    if (!given && !(argv = own_argv())) {
        gr__sup_say(S, "SIGUSR2: upgrade failed: cannot read this process's command line");
        return;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) != 0 ||
        (S->upgrade_pid = spawn_new_master(S, given ? (char *const *)given : argv, p[1])) < 0) {
        gr__sup_say(S, "SIGUSR2: upgrade failed: cannot start %s: %s", given ? given[0] : argv[0],
                    strerror(errno));
        if (p[0] >= 0)
            close(p[0]);
    } else {
        gr__sup_say(S, "SIGUSR2: upgrade: started %s (pid %d); waiting for its workers",
                    given ? given[0] : argv[0], (int)S->upgrade_pid);
        S->upgrade_rd = p[0];
        S->upgrade_done = 0;
        gr_fd_nonblock(p[0]);
        if ((S->upgrade = gr_spawn(await_upgrade, S)) < 0) {
            S->upgrade = 0;
            kill(S->upgrade_pid, SIGTERM);
            gr_close(p[0]);
            S->upgrade_rd = -1;
        }
    }
    if (p[1] >= 0)
        close(p[1]);
    if (argv) {
        free(argv[0]);
        free(argv);
    }
}

void gr__sup_upgrade_finished(sup *S)
{
    if (S->upgrade > 0 && S->upgrade_done) {
        gr_join(S->upgrade, NULL, -1);
        S->upgrade = 0;
    }
}
