/* The prefork supervisor (docs/supervisor.md): a master that keeps W
 * forked workers running, reloads them without dropping a connection, and
 * stops them gracefully.
 *
 * The master owns the listening sockets and never closes them while it
 * runs: every worker inherits the same sockets, so a worker that stops
 * accepting (drained, or dead) leaves the connections queued there to the
 * others; nothing is lost, where a SO_REUSEPORT socket closed with a queue
 * resets it.
 *
 * The master is one green thread running a reconcile loop over its state
 * (slots, workers, requests from signals), woken by an event that helper
 * threads set: one waiting for signals, and per worker a reader of its
 * control socket (it says "ready") and a reaper waiting on its pidfd.
 * Between events the master's hub sleeps in epoll_wait: no polling.
 *
 * A worker is told to drain by a message on its control socket, a
 * SOCK_SEQPACKET socketpair; the end of that socket (EOF) tells it that
 * the master has died, whatever killed it. A plain thread in the worker
 * watches it, so neither message depends on the worker's hubs. */
#define _GNU_SOURCE
#include "os/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void gr__sup_say(sup *S, const char *fmt, ...)
{
    struct timespec ts;
    struct tm tm;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(S->log, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ grove-sup[%d]: ", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            (int)getpid());
    va_start(ap, fmt);
    vfprintf(S->log, fmt, ap);
    va_end(ap);
    fputc('\n', S->log);
    fflush(S->log);
}

static void describe(char *buf, size_t len, int status)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

/* ===================================================== a worker's life */

typedef struct fork_args {
    sup *S;
    size_t slot;
    int sv[2];
} fork_args;

/* fork() from a green thread of its own, whose stack the worker function
 * gets: in the child this thread goes on alone (docs/process.md). */
static void *fork_main(void *arg)
{
    fork_args *fa = arg;
    pid_t pid;

    fflush(NULL); /* nothing buffered written twice */
    if ((pid = fork()) == 0) {
        close(fa->sv[0]);
        gr__sup_become_worker(fa->S, fa->slot, fa->sv[1]);
    }
    return (void *)(intptr_t)(pid < 0 ? -errno : pid);
}

static void *read_ctl(void *arg)
{
    proc *p = arg;
    ctl_msg m;
    ssize_t n;

    while ((n = gr_read(p->ctl, &m, sizeof m, -1)) > 0) {
        if (n == sizeof m && m.type == MSG_READY && !p->ready) {
            p->ready = 1;
            gr__sup_say(p->S, "worker %zu (pid %d) ready after %lld ms", p->slot, (int)p->pid,
                        (long long)(gr_now_update() - p->started));
            gr_event_set(&p->S->change);
        }
    }
    return NULL;
}

static int try_reap(void *ctx)
{
    proc *p = ctx;
    siginfo_t si;

    si.si_pid = 0;
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG) != 0)
        return -1;
    if (si.si_pid == 0)
        return 0;
    p->status = gr__status_of(&si);
    return 1;
}

static void *reap(void *arg)
{
    proc *p = arg;

    if (gr__child_wait(p->pidfd, try_reap, p, -1) < 0 && errno == ECANCELED)
        return NULL;
    gr_kill(p->reader);
    gr_join(p->reader, NULL, -1);
    p->reader = 0;
    p->exited = 1;
    p->ended = gr_now_update();
    gr_event_set(&p->S->change);
    return NULL;
}

static int64_t backoff(const sup *S, unsigned failures)
{
    int64_t d = S->o.backoff_ms;

    for (unsigned i = 1; i < failures && d < S->o.backoff_max_ms; i++)
        d *= 2;
    return d < S->o.backoff_max_ms ? d : S->o.backoff_max_ms;
}

/* A slot's worker could not start, or ended: start the next one at once,
 * or after a back-off when this one failed at boot. */
static void schedule(sup *S, slot *s, int at_boot, int64_t now)
{
    s->failures = at_boot ? s->failures + 1 : 0;
    s->next_start = now + (at_boot ? backoff(S, s->failures) : 0);
}

static void start_failed(sup *S, size_t i, proc *p, int err, const char *what)
{
    slot *s = &S->slots[i];
    int64_t now = gr_now_update();

    if (p) {
        if (p->ctl >= 0)
            gr_close(p->ctl);
        free(p);
    }
    schedule(S, s, 1, now);
    gr__sup_say(S, "worker %zu: %s: %s; retrying in %lld ms", i, what, strerror(err),
                (long long)(s->next_start - now));
}

static void start_worker(sup *S, size_t i)
{
    gr_opts o = {.name = "sup-fork", .stack_size = S->o.stack_size};
    fork_args fa = {S, i, {-1, -1}};
    void *res;
    proc *p;
    gr_t t;

    if (!(p = gr__calloc(1, sizeof *p)))
        return start_failed(S, i, NULL, ENOMEM, "no memory");
    p->S = S;
    p->slot = i;
    p->ctl = p->pidfd = -1;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fa.sv) != 0)
        return start_failed(S, i, p, errno, "socketpair");
    p->ctl = fa.sv[0];
    if ((t = gr_spawn_opts(fork_main, &fa, &o)) < 0 || gr_join(t, &res, -1) != 0) {
        close(fa.sv[1]);
        return start_failed(S, i, p, errno, "cannot fork");
    }
    close(fa.sv[1]);
    if ((intptr_t)res < 0)
        return start_failed(S, i, p, (int)-(intptr_t)res, "fork");
    p->pid = (pid_t)(intptr_t)res;
    p->started = gr_now_update();
    p->pidfd = gr__pidfd_open(p->pid); /* -1: the reaper polls instead */
    gr_fd_nonblock(p->ctl);
    p->next = S->procs;
    S->procs = p;
    S->slots[i].cur = p;
    if ((p->reader = gr_spawn(read_ctl, p)) < 0 || (p->reaper = gr_spawn(reap, p)) < 0) {
        /* Cannot watch it: end it; the reaper (if any) or the loop reaps. */
        gr__sup_say(S, "worker %zu (pid %d): cannot watch it: %s; killing it", i, (int)p->pid,
                    strerror(errno));
        kill(p->pid, SIGKILL);
        if (p->reaper <= 0) {
            waitpid(p->pid, &p->status, 0);
            p->exited = 1;
            p->ended = gr_now_update();
        }
        return;
    }
    gr__sup_say(S, "worker %zu started: pid %d (generation %u)", i, (int)p->pid, S->generation);
}

/* ========================================================== the master */

static int is_current(const sup *S, const proc *p)
{
    return p->slot < S->nslots && S->slots[p->slot].cur == p;
}

int gr__sup_is_ready(const sup *S, const proc *p, int64_t now)
{
    return p->ready || now - p->started >= S->o.boot_ms;
}

static void send_drain(sup *S, proc *p, int64_t now, const char *why)
{
    ctl_msg m = {MSG_DRAIN, 0, S->o.drain_ms};

    p->draining = 1;
    p->kill_at = now + S->o.drain_ms;
    /* A worker that has just died cannot read it: its reaper will tell. */
    (void)gr_send(p->ctl, &m, sizeof m, MSG_NOSIGNAL, 0);
    gr__sup_say(S, "worker %zu (pid %d): draining (%s), %lld ms to finish", p->slot, (int)p->pid,
                why, (long long)S->o.drain_ms);
}

static void forget(sup *S, proc *p)
{
    for (proc **pp = &S->procs; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    if (p->reaper > 0)
        gr_join(p->reaper, NULL, -1);
    if (p->reader > 0) {
        gr_kill(p->reader);
        gr_join(p->reader, NULL, -1);
    }
    gr_close(p->ctl);
    if (p->pidfd >= 0)
        gr_close(p->pidfd);
    free(p);
}

static void on_exit_of(sup *S, proc *p, int64_t now)
{
    int64_t lived = p->ended - p->started;
    char how[96];

    describe(how, sizeof how, p->status);
    if (is_current(S, p)) {
        slot *s = &S->slots[p->slot];
        int at_boot = lived < S->o.boot_ms;

        s->cur = NULL;
        if (S->stopping) {
            gr__sup_say(S, "worker %zu (pid %d) %s after %lld ms", p->slot, (int)p->pid, how,
                        (long long)lived);
        } else {
            schedule(S, s, at_boot, now);
            gr__sup_say(S, "worker %zu (pid %d) %s after %lld ms%s; restarting %s%lld ms", p->slot,
                        (int)p->pid, how, (long long)lived, at_boot ? " (at boot)" : "",
                        at_boot ? "in " : "after ", (long long)(s->next_start - now));
        }
    } else {
        gr__sup_say(S, "worker %zu (pid %d) %s after %lld ms (%s)", p->slot, (int)p->pid, how,
                    (long long)lived, p->draining ? "drained" : "replaced");
    }
    forget(S, p);
}

static void resize(sup *S, int64_t now)
{
    for (; S->ttin; S->ttin--) {
        if (S->nslots >= S->o.max_workers) {
            gr__sup_say(S, "SIGTTIN: already %zu workers, the maximum", S->nslots);
            continue;
        }
        S->slots[S->nslots] = (slot){NULL, 0, now};
        S->nslots++;
        gr__sup_say(S, "SIGTTIN: %zu workers", S->nslots);
    }
    for (; S->ttou; S->ttou--) {
        if (S->nslots <= 1) {
            gr__sup_say(S, "SIGTTOU: already 1 worker, the minimum");
            continue;
        }
        /* Its worker, no longer current, is drained below. */
        S->slots[--S->nslots].cur = NULL;
        gr__sup_say(S, "SIGTTOU: %zu workers", S->nslots);
    }
}

static void reload(sup *S, int64_t now)
{
    S->reloads = 0;
    if (S->o.on_reload && S->o.on_reload(S->arg) != 0) {
        gr__sup_say(S, "SIGHUP: the reload hook failed: reload cancelled");
        return;
    }
    S->generation++;
    gr__sup_say(S, "SIGHUP: reload: starting generation %u", S->generation);
    /* The old workers serve on until their slot's new one is ready. */
    for (size_t i = 0; i < S->nslots; i++)
        S->slots[i] = (slot){NULL, 0, now};
}

/* One pass over the state; returns when it next needs a look (-1: only
 * an event). */
static int64_t step(sup *S)
{
    int64_t now = gr_now_update(), next = -1;

#define WAKE_AT(t) (next = next < 0 || (t) < next ? (t) : next)
    for (proc *p = S->procs, *n; p; p = n) {
        n = p->next;
        if (p->exited)
            on_exit_of(S, p, now);
    }
    if (S->stopping && !S->stop_logged) {
        S->stop_logged = 1;
        gr__sup_say(S, "stopping: draining %s", S->procs ? "every worker" : "nothing");
    }
    gr__sup_upgrade_finished(S);
    if (!S->stopping) {
        resize(S, now);
        if (S->reloads)
            reload(S, now);
        if (S->upgrades)
            gr__sup_upgrade(S);
        for (size_t i = 0; i < S->nslots; i++) {
            slot *s = &S->slots[i];

            if (s->cur)
                continue;
            if (now >= s->next_start)
                start_worker(S, i);
            if (!s->cur)
                WAKE_AT(s->next_start);
        }
        now = gr_now_update();
    }
    for (proc *p = S->procs; p; p = p->next) {
        if (p->exited)
            continue;
        if (!p->draining && (S->stopping || !is_current(S, p))) {
            const slot *s = p->slot < S->nslots ? &S->slots[p->slot] : NULL;

            if (S->stopping)
                send_drain(S, p, now, "stop");
            else if (!s)
                send_drain(S, p, now, "SIGTTOU");
            else if (s->cur && gr__sup_is_ready(S, s->cur, now))
                send_drain(S, p, now, "replaced");
            else if (s->cur)
                WAKE_AT(s->cur->started + S->o.boot_ms);
        }
        if (p->draining && !p->killed && (S->fast || now >= p->kill_at)) {
            gr__sup_say(S, "worker %zu (pid %d): %s: SIGKILL", p->slot, (int)p->pid,
                        S->fast ? "fast stop" : "not done by the drain deadline");
            kill(p->pid, SIGKILL); /* not reaped yet: the pid is still its */
            p->killed = 1;
        }
        if (p->draining && !p->killed)
            WAKE_AT(p->kill_at);
    }
    gr__sup_maybe_say_ready(S, now);
    for (size_t i = 0; S->ready_fd >= 0 && i < S->nslots; i++)
        if (S->slots[i].cur && !gr__sup_is_ready(S, S->slots[i].cur, now))
            WAKE_AT(S->slots[i].cur->started + S->o.boot_ms);
#undef WAKE_AT
    return next;
}

static void *watch_signals(void *arg)
{
    sup *S = arg;
    int sig;

    while ((sig = gr_signal_next(S->sigs, NULL, -1)) > 0) {
        if (GR_SIG(sig) & STOP_SIGS) {
            if (S->stopping)
                S->fast = 1;
            S->stopping = 1;
        } else if (sig == SIGHUP) {
            S->reloads++;
        } else if (sig == SIGTTIN) {
            S->ttin++;
        } else if (sig == SIGTTOU) {
            S->ttou++;
        } else if (sig == SIGUSR2) {
            S->upgrades++;
        }
        gr_event_set(&S->change);
    }
    return NULL;
}

/* The master was killed: take every worker down with it, now (shielded:
 * the helpers are waited for, and every wait here is short). */
static void abandon(sup *S)
{
    gr_shield_begin();
    for (proc *p = S->procs; p; p = p->next) {
        if (p->reaper > 0)
            gr_kill(p->reaper);
        if (!p->exited)
            kill(p->pid, SIGKILL);
    }
    while (S->procs) {
        proc *p = S->procs;

        if (!p->exited)
            waitpid(p->pid, &p->status, 0); /* SIGKILLed: a moment */
        forget(S, p);
    }
    gr_shield_end();
}

static int resolve(sup *S, const gr_sup_opts *opts)
{
    gr_sup_opts *o = &S->o;

    *o = opts ? *opts : (gr_sup_opts){0};
    o->workers = o->workers ? o->workers : 1;
    o->max_workers = o->max_workers ? o->max_workers : DEF_MAX_WORKERS;
    o->boot_ms = o->boot_ms ? o->boot_ms : DEF_BOOT_MS;
    o->backoff_ms = o->backoff_ms ? o->backoff_ms : DEF_BACKOFF_MS;
    o->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : DEF_BACKOFF_MAX_MS;
    o->drain_ms = o->drain_ms ? o->drain_ms : DEF_DRAIN_MS;
    if (o->workers > o->max_workers || o->nfds > MAX_FDS || (o->nfds && !o->fds) ||
        o->boot_ms < 0 || o->backoff_ms < 0 || o->backoff_max_ms < o->backoff_ms ||
        o->drain_ms < 0 ||
        (o->stack_size && (o->stack_size < GR_STACK_MIN || o->stack_size > GR_STACK_MAX)))
        return -1;
    for (size_t i = 0; i < o->nfds; i++)
        if (o->fds[i] < 0 || fcntl(o->fds[i], F_GETFD) < 0)
            return -1;
        else
            S->fds[i] = o->fds[i];
    S->log = o->log ? o->log : stderr;
    return 0;
}

static int run(sup *S)
{
    int rc = 0;

    S->nslots = S->o.workers;
    for (size_t i = 0; i < S->nslots; i++)
        S->slots[i].next_start = gr_now_update();
    gr__sup_say(S, "master: %zu workers, %zu listeners", S->nslots, S->o.nfds);
    for (;;) {
        int64_t next;

        gr_event_clear(&S->change);
        next = step(S);
        if (S->stopping && !S->procs)
            break;
        if (gr_event_wait(&S->change, next) != 0 && errno != ETIMEDOUT) {
            rc = -1;
            break;
        }
    }
    if (rc == 0)
        gr__sup_say(S, "master: stopped");
    return rc;
}

int gr_sup_run(gr_sup_fn fn, void *arg, const gr_sup_opts *opts)
{
    sup *S;
    int rc, err;

    if (gr__self(EDEADLK) < 0)
        return -1;
    if (!fn) {
        errno = EINVAL;
        return -1;
    }
    if (!(S = gr__calloc(1, sizeof *S)))
        return -1;
    S->fn = fn;
    S->arg = arg;
    if (resolve(S, opts) != 0) {
        free(S);
        errno = EINVAL;
        return -1;
    }
    gr_event_init(&S->change);
    S->upgrade_rd = -1;
    S->ready_fd = gr__sup_take_ready_fd();
    if (!(S->slots = gr__calloc(S->o.max_workers, sizeof *S->slots)) ||
        !(S->sigs = gr_signal_open(MASTER_SIGS)) ||
        (S->sig_thread = gr_spawn(watch_signals, S)) < 0) {
        err = errno;
        gr_signal_close(S->sigs);
        if (S->ready_fd >= 0)
            close(S->ready_fd);
        free(S->slots);
        free(S);
        errno = err;
        return -1;
    }
    rc = run(S);
    err = errno;
    /* Shielded: a killed master still waits for its helpers before it
     * frees what they use. */
    gr_shield_begin();
    if (rc != 0)
        abandon(S);
    gr_kill(S->sig_thread);
    gr_join(S->sig_thread, NULL, -1);
    if (S->upgrade > 0) {
        gr_kill(S->upgrade);
        gr_join(S->upgrade, NULL, -1);
    }
    if (S->ready_fd >= 0)
        close(S->ready_fd);
    gr_signal_close(S->sigs);
    gr_shield_end();
    free(S->slots);
    free(S);
    errno = err;
    return rc;
}
