/* The worker's side of the supervisor (docs/supervisor.md): what a forked
 * worker drops of its master's, the thread that watches the master, and
 * the gr_sup_worker_* calls. */
#define _GNU_SOURCE
#include "os/supervisor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The earliest deadline wins: an orphan's is never later than its drain. */
static void begin_drain(gr_sup_worker *w, int64_t deadline)
{
    int64_t cur = atomic_load(&w->deadline);

    while ((cur < 0 || deadline < cur) &&
           !atomic_compare_exchange_weak(&w->deadline, &cur, deadline)) {
    }
    gr_event_set(&w->drain);
}

static void *watch_master(void *arg)
{
    gr_sup_worker *w = arg;
    struct timespec end;
    ctl_msg m;

    for (;;) {
        ssize_t n = recv(w->ctl, &m, sizeof m, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the master is gone */
        if (n == sizeof m && m.type == MSG_DRAIN)
            begin_drain(w, gr_now() + (m.ms > 0 ? m.ms : 0));
    }
    begin_drain(w, gr_now() + ORPHAN_DRAIN_MS);
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ORPHAN_EXIT_MS / 1000;
    end.tv_nsec += (long)(ORPHAN_EXIT_MS % 1000) * 1000000;
    if (end.tv_nsec >= 1000000000) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR) {
    }
    fflush(NULL);
    _exit(1);
}

void gr__sup_become_worker(sup *S, size_t id, int ctl)
{
    static const int ignored[] = {SIGHUP, SIGINT, SIGQUIT, SIGTTIN, SIGTTOU};
    gr_sup_worker *w;
    pthread_attr_t a;
    pthread_t t;
    int status;

    /* The master's subscription, and its ends of every control socket and
     * pidfd: a worker holding another's master end would keep that one
     * from seeing the master die. */
    gr_signal_close(S->sigs);
    for (proc *p = S->procs; p; p = p->next) {
        gr_close(p->ctl);
        if (p->pidfd >= 0)
            gr_close(p->pidfd);
    }
    if (S->ready_fd >= 0)
        close(S->ready_fd);
    if (S->upgrade_rd >= 0)
        gr_close(S->upgrade_rd);
    /* The master acts on these; a terminal's ^C reaches the whole process
     * group, and the master then drains the workers itself. */
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
        signal(ignored[i], SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    if (!(w = gr__calloc(1, sizeof *w))) {
        fprintf(stderr, "grove-sup worker: out of memory\n");
        _exit(1);
    }
    w->id = (int)id;
    w->ctl = ctl;
    w->fds = S->fds;
    w->nfds = S->o.nfds;
    gr_event_init(&w->drain);
    atomic_init(&w->deadline, -1);
    atomic_init(&w->ready_sent, 0);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 64 * 1024);
    errno = gr__pthread_create(&t, &a, watch_master, w);
    pthread_attr_destroy(&a);
    if (errno) {
        fprintf(stderr, "grove-sup worker: cannot watch the master: %s\n", strerror(errno));
        _exit(1);
    }
    status = S->fn(w, S->arg);
    fflush(NULL);
    _exit(status & 0xff);
}

int gr_sup_worker_fd(const gr_sup_worker *w, size_t i)
{
    if (!w || i >= w->nfds) {
        errno = EINVAL;
        return -1;
    }
    return w->fds[i];
}

int gr_sup_worker_id(const gr_sup_worker *w)
{
    if (!w) {
        errno = EINVAL;
        return -1;
    }
    return w->id;
}

int gr_sup_worker_ready(gr_sup_worker *w)
{
    ctl_msg m = {MSG_READY, 0, 0};

    if (!w) {
        errno = EINVAL;
        return -1;
    }
    if (atomic_exchange(&w->ready_sent, 1))
        return 0;
    while (send(w->ctl, &m, sizeof m, MSG_NOSIGNAL) < 0)
        if (errno != EINTR)
            return -1;
    return 0;
}

int gr_sup_worker_wait(gr_sup_worker *w, int64_t *drain_deadline, int64_t deadline)
{
    if (!w) {
        errno = EINVAL;
        return -1;
    }
    if (gr_event_wait(&w->drain, deadline) != 0)
        return -1;
    if (drain_deadline)
        *drain_deadline = atomic_load(&w->deadline);
    return 0;
}
