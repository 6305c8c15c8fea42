/* grove-load: definitions shared by its files (see docs/grove-load.md).
 *
 * Processes: the parent parses the command line, checks limits and the
 * target, maps the shared region, forks the workers, prints the status
 * line and the report. Each worker runs one hub with one green thread per
 * connection (worker.c) and records into its own slot of the region. */
#ifndef GROVE_LOAD_H
#define GROVE_LOAD_H

#include <grove.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hist.h"

#define GL_VERSION "0.1.0"
#define GL_MAX_WORKERS 256
#define GL_MAX_SOURCES 1024
/* Descriptors a worker needs besides one per connection: stdio, epoll,
 * the hub's eventfd, the pacer's timerfd, and some room. */
#define GL_FD_RESERVE 32
/* How long a worker's hub polls before it sleeps (gr_config.idle_spin_us).
 * A sleep and a wake-up cost the client some microseconds of CPU; spinning
 * longer than that would cost more CPU per request than it saves. */
#ifndef GL_SPIN_US
#define GL_SPIN_US 3
#endif

/* ------------------------------------------------------------- failures */

/* How a request can fail. A request ends either completed (a whole
 * response came, whatever its status) or failed with one of these. */
enum {
    GL_F_CONNECT,      /* the connection could not be made */
    GL_F_READ,         /* reading the response failed (ECONNRESET, ...) */
    GL_F_WRITE,        /* sending the request failed (EPIPE, ECONNRESET, ...) */
    GL_F_TIMEOUT,      /* -s passed before the response was complete */
    GL_F_CLOSED_EARLY, /* the server closed before the response was complete */
    GL_F_PROTOCOL,     /* the response was not valid HTTP/1.x */
    GL_F_KINDS
};

extern const char *const gl_fail_name[GL_F_KINDS]; /* JSON keys: "connect", ... */

/* How the client ends a connection that is not kept (--close). */
enum {
    GL_CLOSE_RST, /* wait for the server's FIN, then reset: no TIME_WAIT anywhere */
    GL_CLOSE_FIN, /* wait for the server's FIN, then close: ab's way */
    GL_CLOSE_NOW, /* reset as soon as the response is complete */
};

/* ------------------------------------------------------- shared region */

/* One worker's figures. Written only by that worker; counters the parent
 * reads while the run goes on are stored with relaxed atomics (single
 * writer, so load + store, no locked instruction). */
typedef struct gl_slot {
    uint64_t completed; /* whole responses */
    uint64_t status[6]; /* by class: [0] other, [1] 1xx ... [5] 5xx */
    uint64_t fail[GL_F_KINDS];
    uint64_t bytes;          /* everything read: heads and bodies */
    uint64_t body_bytes;     /* payload of bodies */
    uint64_t connects;       /* connections opened */
    uint64_t reconnects;     /* reused connections found closed, request resent */
    uint64_t keepalive_reqs; /* requests sent on a reused connection */
    int64_t end_ns;          /* when the worker finished (monotonic) */
    int64_t doc_len;         /* body length of its first response; -1 none yet */
    int abort_kind;          /* -r not given: the failure that stopped the run, -1 none */
    int abort_errno;
    int setup_errno;    /* the worker could not start (hub, spawn) */
    int done;           /* set (release) when the slot is final */
    char server[64];    /* Server header of its first response */
    gl_hist total;      /* latency of completed requests */
    gl_hist connect;    /* non-keep-alive: connection set up */
    gl_hist waiting;    /* non-keep-alive: request sent to first byte */
    gl_hist processing; /* non-keep-alive: connected to done */
} __attribute__((aligned(64))) gl_slot;

/* The region: this header, then one slot per worker. */
typedef struct gl_shared {
    uint64_t issued; /* requests handed out so far (atomic), against -n */
    int stop;        /* set by the parent or an aborting worker: finish now */
    char pad[64 - sizeof(uint64_t) - sizeof(int)];
    gl_slot slots[];
} gl_shared;

/* ------------------------------------------------------------- options */

typedef struct gl_opts {
    uint64_t requests; /* -n; 0: unbounded (-d) */
    int n_given;
    size_t concurrency;    /* -c */
    double timelimit_s;    /* -t or -d; 0: none */
    int unbounded;         /* -d: no request limit */
    int keepalive;         /* -k */
    int keep_going;        /* -r */
    double timeout_s;      /* -s */
    int quiet;             /* -q */
    int workers;           /* -w; 0: choose */
    double rate;           /* --rate; 0: as fast as possible */
    int json;              /* --json */
    int progress;          /* 1 on, 0 off, -1 default */
    int close_mode;        /* --close */
    int spin_us;           /* --spin: the workers' hub idle spin, 0 none */
    const char *method;    /* -m, or from -p/-u/-i */
    const char *body_file; /* -p or -u */
    const char *content_type;
    const char *headers[64];
    size_t nheaders;
    const char *sources; /* -b */
    const char *url;
    int doctor;
    int insecure;   /* --insecure: https without verifying the server */
    int tls_resume; /* --tls-resume: resume TLS sessions on new connections */
} gl_opts;

/* The parsed target and everything a worker needs, built once by the
 * parent and inherited by the workers. */
typedef struct gl_target {
    char host[256]; /* as in the URL (for the report and Host) */
    char port_str[8];
    int port;
    char path[4096]; /* request-target: path and query */
    gr_addr addr;    /* resolved */
    gr_addr sources[GL_MAX_SOURCES];
    size_t nsources;
    char *request; /* the whole request: head and body */
    size_t request_len;
    int head_only; /* HEAD: responses have no body */
    int tls;       /* an https:// URL */
} gl_target;

/* The run as a worker sees it. */
typedef struct gl_run {
    const gl_opts *o;
    const gl_target *t;
    gl_shared *shm;
    int nworkers;
    int64_t t0_ns;  /* the run's start, monotonic */
    int64_t end_ns; /* -t/-d: when to stop; 0 none */
} gl_run;

/* ------------------------------------------------------------ functions */

int64_t gl_now_ns(void);

/* cli.c */
/* "grove-load: " and the message on stderr, then tail, then exit(status). */
void gl_vfail(int status, const char *tail, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0), noreturn));
int gl_parse_args(int argc, char **argv, gl_opts *o);
int gl_build_target(const gl_opts *o, gl_target *t);
void gl_usage(FILE *f);

/* worker.c: run worker `index` with `conns` connections; returns the
 * exit status for the worker process. */
int gl_worker_main(const gl_run *r, int index, size_t conns, size_t first_conn);

/* report.c */
typedef struct gl_totals {
    gl_slot s; /* sums (histograms merged); server/doc_len from the first */
    double duration_s;
    int abort_kind, abort_errno;
    int setup_errno;
    int interrupted; /* the signal that stopped the run, 0 none */
} gl_totals;

/* Sum the slots; a worker that never recorded its end (killed) counts
 * as ending at last_exit_ns. */
void gl_sum(const gl_run *r, int64_t last_exit_ns, gl_totals *tot);
void gl_report_text(FILE *f, const gl_run *r, const gl_totals *tot);
void gl_report_json(FILE *f, const gl_run *r, const gl_totals *tot);

/* doctor.c */
int gl_doctor(FILE *f, int json);
int gl_port_range(int *lo, int *hi);

#endif
