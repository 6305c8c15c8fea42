/* grove/supervisor.h: a prefork supervisor (docs/supervisor.md).
 *
 * A master process keeps W worker processes running a function of the
 * program's, each inheriting the listening sockets the master holds: a
 * worker that dies is started again at once (with back-off when it keeps
 * dying at boot); SIGHUP starts a new generation and drains the old one
 * once the new accepts; SIGTERM (or SIGINT, SIGQUIT) drains every worker
 * and returns; SIGTTIN and SIGTTOU add and remove a worker; SIGUSR2 hands
 * the sockets to a new binary, which takes over once its workers accept
 * (gr_sup_inherited_fds). The master
 * sleeps in its hub between events (signals, pidfds, its workers'
 * messages): no polling.
 *
 *   static int work(gr_sup_worker *w, void *arg)
 *   {
 *       gr_http_server *s = gr_http_server_new(gr_sup_worker_fd(w, 0), app, NULL, NULL);
 *       int64_t end;
 *
 *       gr_http_server_start(s);
 *       gr_sup_worker_ready(w);                 // the master may now drain old ones
 *       gr_sup_worker_wait(w, &end, -1);        // until told to stop
 *       gr_http_server_drain(s, gr_now() + 1000, end);
 *       gr_http_server_free(s);
 *       return 0;
 *   }
 *   ...
 *   int fd = gr_tcp_listen("0.0.0.0", 8080, 0);
 *   gr_sup_opts o = {.workers = 4, .fds = &fd, .nfds = 1};
 *   gr_sup_run(work, NULL, &o);                 // in a green thread of the master
 *
 * Conventions as in <grove.h>: -1 and errno, deadlines in absolute ms on
 * the gr_now() clock. */
#ifndef GROVE_SUPERVISOR_H
#define GROVE_SUPERVISOR_H

#include <grove.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A worker's view of its supervisor: handed to the worker function, valid
 * in the worker process for its whole life. */
typedef struct gr_sup_worker gr_sup_worker;

/* The worker function: runs in the worker process, in a green thread of
 * its hub (it may run more hubs with gr_hubs_run). Its return value is the
 * worker's exit status. */
typedef int (*gr_sup_fn)(gr_sup_worker *w, void *arg);

/* Supervisor options; zero-initialise: 0 picks the default. */
typedef struct gr_sup_opts {
    size_t workers;         /* W at start: 1 */
    size_t max_workers;     /* SIGTTIN's limit: 1024 */
    const int *fds;         /* listening sockets (any fds) every worker inherits */
    size_t nfds;            /* at most 64 */
    int64_t boot_ms;        /* a worker that ends sooner after its start failed at boot: 1000 */
    int64_t backoff_ms;     /* first restart delay after a failure at boot: 100 */
    int64_t backoff_max_ms; /* the delay doubles up to this: 30000 */
    int64_t drain_ms;       /* a draining worker's time to finish, then SIGKILL: 10000 */
    size_t stack_size;      /* the worker function's green thread: 0, the default */
    FILE *log;              /* one line per event; NULL: stderr */
    /* Called in the master on SIGHUP before the new workers start (to
     * re-read configuration, say); -1 cancels that reload. NULL: none. */
    int (*on_reload)(void *arg);
    /* SIGUSR2 starts this program (argv[0] searched in PATH) as the new
     * master, handing it the listeners; NULL: this process's own command
     * line again (the binary at its path now: a new build). */
    const char *const *upgrade_argv;
} gr_sup_opts;

/* Be the master: start opts->workers workers running fn(w, arg) and keep
 * them running until SIGTERM, SIGINT or SIGQUIT, acting on SIGHUP,
 * SIGTTIN, SIGTTOU and SIGUSR2 (docs/supervisor.md), then drain every
 * worker and return 0 once all have ended (or once a SIGUSR2 upgrade's
 * new master has taken over). Call it from a green thread or a thread's
 * root context (a hub of its own for the master is best: gr_main). While
 * it runs it subscribes its hub to those seven signals. fds and the log
 * stay the caller's (the master never closes them); arg is shared by every worker (each has its
 * own copy of the master's memory at its start). In a worker, the call
 * never returns: the process exits with fn's result (after fflush(NULL),
 * with _exit: the master's atexit handlers are not the worker's). Errors
 * (nothing started): EINVAL (fn NULL, an fd not open, more than 64 fds,
 * negative times, workers over max_workers), EDEADLK (a hub callback),
 * ENOMEM, or the errors of gr_signal_open. A failed fork is
 * logged and retried with back-off, as a failure at boot. */
GR_API int gr_sup_run(gr_sup_fn fn, void *arg, const gr_sup_opts *opts);

/* In a program started by a master's SIGUSR2 upgrade: the listening
 * sockets it handed over, to pass to gr_sup_run as opts->fds instead of
 * opening new ones (the old master still holds the ports). Stores them in
 * fds (at most max) and returns how many: 0 when the program was not
 * started so (no GROVE_LISTEN_FDS in the environment). Each becomes
 * close-on-exec and the variable is removed, so call it once, early,
 * before other threads run. -1 with EINVAL: a malformed variable, a
 * descriptor not open, or more than max. */
GR_API int gr_sup_inherited_fds(int *fds, size_t max);

/* The worker's copy of the master's opts->fds[i], or -1 with EINVAL (i
 * out of range). The worker owns its copy: it may hand it to a server,
 * which closes it at its stop (the master's stays open, so the other
 * workers go on accepting from the same queue). Thread-safe. */
GR_API int gr_sup_worker_fd(const gr_sup_worker *w, size_t i);

/* The worker's slot: 0 to W-1 (a restarted worker takes its
 * predecessor's, and so does a reload's new worker). Thread-safe. */
GR_API int gr_sup_worker_id(const gr_sup_worker *w);

/* Tell the master that this worker accepts connections: on a reload, the
 * previous worker of this slot is drained only then (or once this one has
 * run boot_ms, if it never says). Call it once its servers have started;
 * later calls do nothing. Thread-safe, never blocks. Returns 0, or -1 with
 * EPIPE (the master is gone). */
GR_API int gr_sup_worker_ready(gr_sup_worker *w);

/* Wait until the master tells this worker to drain (a reload, SIGTTOU, a
 * stop, or the master's death): returns 0 and stores in *drain_deadline
 * (may be NULL) the gr_now() time by which it must have exited, at most
 * drain_ms ahead (1 s ahead when the master died); past it the master
 * sends SIGKILL (after the master's death, the worker exits by itself).
 * The worker should stop accepting, finish what is in flight and return
 * from its function. Thread-safe: any green thread of any of the worker's
 * hubs, or a plain thread (which blocks), may wait. Errors: ETIMEDOUT,
 * ECANCELED, EDEADLK (hub callback). */
GR_API int gr_sup_worker_wait(gr_sup_worker *w, int64_t *drain_deadline, int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif
