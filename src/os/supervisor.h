/* The supervisor's parts (docs/supervisor.md): the master
 * (supervisor.c), the worker's side (sup_worker.c) and the binary upgrade
 * (sup_upgrade.c) share these. */
#ifndef GROVE_OS_SUPERVISOR_H
#define GROVE_OS_SUPERVISOR_H

#include "os/os.h"

#include <grove/supervisor.h>

#include <stdatomic.h>
#include <stdio.h>
#include <sys/types.h>

#define DEF_MAX_WORKERS 1024
#define MAX_FDS 64
#define DEF_BOOT_MS 1000
#define DEF_BACKOFF_MS 100
#define DEF_BACKOFF_MAX_MS 30000
#define DEF_DRAIN_MS 10000
/* A worker whose master has died drains for this long, and exits by
 * itself at the second limit whatever its state. */
#define ORPHAN_DRAIN_MS 600
#define ORPHAN_EXIT_MS 800

#define STOP_SIGS (GR_SIG(SIGTERM) | GR_SIG(SIGINT) | GR_SIG(SIGQUIT))
#define MASTER_SIGS                                                                                \
    (STOP_SIGS | GR_SIG(SIGHUP) | GR_SIG(SIGTTIN) | GR_SIG(SIGTTOU) | GR_SIG(SIGUSR2))
/* How a new binary's master finds what its predecessor passed it. */
#define ENV_LISTEN_FDS "GROVE_LISTEN_FDS"
#define ENV_READY_FD "GROVE_SUP_READY_FD"
/* A new binary that has not said it is ready by then is given up on. */
#define UPGRADE_TIMEOUT_MS 60000

/* A message on a control socket, one datagram. */
enum { MSG_READY = 'R', MSG_DRAIN = 'D' };
typedef struct ctl_msg {
    int32_t type;
    int32_t pad;
    int64_t ms; /* MSG_DRAIN: time left to finish */
} ctl_msg;

/* --------------------------------------------------------------- state */

typedef struct sup sup;

/* A worker process as the master sees it. */
typedef struct proc {
    struct proc *next;
    sup *S;
    pid_t pid;
    int ctl, pidfd;
    size_t slot;
    int64_t started, ended, kill_at;
    uint8_t ready, draining, killed, exited;
    int status;
    gr_t reader, reaper;
} proc;

/* A place for one worker: W slots, each with its current worker (booting
 * or serving) or none (waiting to start one, after a back-off). */
typedef struct slot {
    proc *cur;
    unsigned failures; /* failures at boot in a row */
    int64_t next_start;
} slot;

struct sup {
    gr_sup_fn fn;
    void *arg;
    gr_sup_opts o;
    int fds[MAX_FDS];
    FILE *log;
    slot *slots;
    size_t nslots;
    proc *procs;
    gr_event change;
    gr_signals *sigs;
    gr_t sig_thread;
    unsigned reloads, ttin, ttou, generation, upgrades;
    uint8_t stopping, fast, stop_logged;
    int ready_fd;      /* a new binary's master: where to say it is ready, or -1 */
    gr_t upgrade;      /* the wait for a new binary's master, or 0 */
    pid_t upgrade_pid; /* that master */
    int upgrade_rd;    /* where it says it is ready, or -1 */
    uint8_t upgrade_done;
};

/* The worker's side. */
struct gr_sup_worker {
    int id;
    int ctl;
    const int *fds;
    size_t nfds;
    gr_event drain;
    _Atomic int64_t deadline; /* -1 until told to drain */
    atomic_int ready_sent;
};

/* A line on the master's log, stamped with the wall-clock time. */
void gr__sup_say(sup *S, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Accepting, for a reload's purposes: it said so, or has lived boot_ms. */
int gr__sup_is_ready(const sup *S, const proc *p, int64_t now);

/* sup_worker.c: in the forked child, drop what is the master's and run
 * the worker function; never returns. */
void gr__sup_become_worker(sup *S, size_t id, int ctl) __attribute__((noreturn));

/* sup_upgrade.c: SIGUSR2's new binary. */
int gr__sup_take_ready_fd(void);
void gr__sup_maybe_say_ready(sup *S, int64_t now);
void gr__sup_upgrade(sup *S);
void gr__sup_upgrade_finished(sup *S);

#endif
