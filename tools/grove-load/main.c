/* grove-load: an HTTP/1.1 load generator with ab's flags, built on grove.
 *
 *   grove-load [-n N] [-c C] [-k] [-r] [-t S | -d DUR] [-w W] [-b ADDRS]
 *              [--rate R] [--json] ... http://host[:port]/path
 *
 * The parent checks the arguments, the limits and the target, maps the
 * shared statistics region, forks the workers (worker.c), prints a status
 * line once a second while they run, and the report when they are done
 * (report.c). See docs/grove-load.md. */
#define _GNU_SOURCE
#include "load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static gl_opts opts;
static gl_target target;
static gl_totals totals;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gl_vfail(1, "", fmt, ap);
}

/* ------------------------------------------------------------- limits */

static int usable_cpus(void)
{
    cpu_set_t set;
    long n;

    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* Raise the soft descriptor limit to the hard one (inherited by the
 * workers) and return it. */
static size_t raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;

        rl.rlim_cur = want;
        while (setrlimit(RLIMIT_NOFILE, &rl) != 0 && rl.rlim_cur > 1024) /* RLIM_INFINITY */
            rl.rlim_cur = rl.rlim_cur > ((rlim_t)1 << 30) ? (1 << 20) : rl.rlim_cur / 2;
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > (rlim_t)1 << 30 ? (size_t)1 << 30 : (size_t)rl.rlim_cur;
}

static size_t ceil_div(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* How many workers: -w, or one per usable CPU; more when a worker's share
 * of the connections would not fit in its descriptor limit. */
static int plan_workers(const gl_opts *o)
{
    size_t limit = raise_nofile();
    size_t room = limit > GL_FD_RESERVE ? limit - GL_FD_RESERVE : 1;
    size_t c = o->concurrency;
    size_t w = o->workers ? (size_t)o->workers : (size_t)usable_cpus();

    if (w > c)
        w = c;
    if (ceil_div(c, w) <= room)
        return (int)w;
    if (o->workers)
        die("-c %zu over -w %d is %zu connections per worker process, but a process may "
            "open only %zu files (RLIMIT_NOFILE, hard limit), %d of them kept for other "
            "uses: use -w %zu or more (each worker has its own limit), or raise the hard "
            "limit (ulimit -Hn as root, LimitNOFILE= for a systemd unit, "
            "/etc/security/limits.conf)",
            c, o->workers, ceil_div(c, w), limit, GL_FD_RESERVE, ceil_div(c, room));
    w = ceil_div(c, room);
    if (w > GL_MAX_WORKERS)
        die("-c %zu needs %zu worker processes of %zu connections (RLIMIT_NOFILE %zu), more "
            "than %d: raise the hard limit (ulimit -Hn as root)",
            c, w, room, limit, GL_MAX_WORKERS);
    return (int)w;
}

static int is_loopback(const gr_addr *a)
{
    return a->u.sa.sa_family == AF_INET && (ntohl(a->u.in4.sin_addr.s_addr) >> 24) == 127;
}

/* Every connection to the target needs a local port of its own per source
 * address: refuse a -c that cannot have them all at once. */
static void check_ports(const gl_opts *o, const gl_target *t)
{
    int lo, hi;
    size_t ports, addrs = t->nsources ? t->nsources : 1, need;

    if (gl_port_range(&lo, &hi) != 0 || hi < lo)
        return;
    ports = (size_t)(hi - lo + 1);
    if (o->concurrency <= ports * addrs)
        return;
    need = ceil_div(o->concurrency, ports);
    if (is_loopback(&t->addr))
        die("-c %zu needs %zu local ports toward %s:%d, but net.ipv4.ip_local_port_range "
            "(%d-%d) has %zu per source address and %zu address(es) are used: spread the "
            "connections with -b 127.0.0.1-127.0.0.%zu (or widen the range: "
            "sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\")",
            o->concurrency, o->concurrency, target.host, t->port, lo, hi, ports, addrs,
            need < 254 ? need : 254);
    die("-c %zu needs %zu local ports toward %s:%d, but net.ipv4.ip_local_port_range "
        "(%d-%d) has %zu per source address and %zu address(es) are used: give -b %zu or "
        "more local addresses, or widen the range "
        "(sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\")",
        o->concurrency, o->concurrency, target.host, t->port, lo, hi, ports, addrs, need);
}

/* ------------------------------------------------------------- target */

static void close_reset(int fd)
{
    struct linger l = {1, 0};

    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

/* Each -b address must be one of this machine's. */
static void check_sources(const gl_target *t)
{
    for (size_t i = 0; i < t->nsources; i++) {
        int fd = socket(t->sources[i].u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        char buf[64];

        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (fd < 0 || bind(fd, &t->sources[i].u.sa, t->sources[i].len) != 0) {
            int err = errno;

            gr_addr_format(&t->sources[i], buf, sizeof buf);
            die("-b: cannot use %s as a source address: %s", buf, strerror(err));
        }
        close(fd);
    }
}

/* One connection before the run, so an unreachable target is a clear
 * error rather than a run of failures. Reset at once: no TIME_WAIT. */
static void preflight(const gl_opts *o, const gl_target *t)
{
    int fd = socket(t->addr.u.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int err = 0, one = 1;
    socklen_t len = sizeof err;
    struct pollfd p = {fd, POLLOUT, 0};
    char where[80];

    gr_addr_format(&t->addr, where, sizeof where);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    if (t->nsources) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, &t->sources[0].u.sa, t->sources[0].len) != 0)
            die("-b: bind: %s", strerror(errno));
    }
    if (connect(fd, &t->addr.u.sa, t->addr.len) != 0) {
        if (errno != EINPROGRESS)
            err = errno;
        else if (poll(&p, 1, (int)(o->timeout_s * 1000)) == 0)
            err = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
    }
    if (err)
        die("cannot connect to %s:%d (%s): %s", t->host, t->port, where, strerror(err));
    close_reset(fd);
}

/* ------------------------------------------------------------- workers */

static gl_shared *map_shared(int n)
{
    size_t size = sizeof(gl_shared) + (size_t)n * sizeof(gl_slot);
    gl_shared *shm = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (shm == MAP_FAILED)
        die("mmap of %zu bytes of statistics: %s", size, strerror(errno));
    for (int i = 0; i < n; i++) {
        shm->slots[i].abort_kind = -1;
        shm->slots[i].doc_len = -1;
    }
    return shm;
}

static void run_worker(const gl_run *r, int i, pid_t parent)
{
    size_t c = r->o->concurrency, n = (size_t)r->nworkers;
    size_t first = c * (size_t)i / n, last = c * (size_t)(i + 1) / n;
    gl_slot *s = &r->shm->slots[i];
    int rc;

    /* Die with the parent; the parent handles the signals. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    rc = gl_worker_main(r, i, last - first, first);
    s->end_ns = gl_now_ns();
    __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
    fflush(NULL);
    _exit(rc);
}

static pid_t pids[GL_MAX_WORKERS];

static void start_workers(const gl_run *r)
{
    pid_t parent = getpid();

    fflush(NULL);
    for (int i = 0; i < r->nworkers; i++) {
        if ((pids[i] = fork()) == 0)
            run_worker(r, i, parent);
        if (pids[i] < 0) {
            int err = errno;

            for (int j = 0; j < i; j++)
                kill(pids[j], SIGKILL);
            die("fork: %s", strerror(err));
        }
    }
}

/* ------------------------------------------------------------- status */

static void status_line(const gl_run *r, FILE *f, int tty, uint64_t *last, int64_t *last_ns)
{
    uint64_t done = 0, failed = 0, non2xx = 0;
    int64_t now = gl_now_ns();
    double el = (double)(now - r->t0_ns) / 1e9, dt = (double)(now - *last_ns) / 1e9;
    char total[48] = "";

    for (int i = 0; i < r->nworkers; i++) {
        const gl_slot *s = &r->shm->slots[i];

        done += __atomic_load_n(&s->completed, __ATOMIC_RELAXED);
        for (int k = 0; k < GL_F_KINDS; k++)
            failed += __atomic_load_n(&s->fail[k], __ATOMIC_RELAXED);
        for (int k = 0; k < 6; k++)
            if (k != 2)
                non2xx += __atomic_load_n(&s->status[k], __ATOMIC_RELAXED);
    }
    if (r->o->requests)
        snprintf(total, sizeof total, " / %llu", (unsigned long long)r->o->requests);
    fprintf(f, "%s[%6.1fs] %llu%s done, %.0f req/s, %llu failed, %llu non-2xx%s", tty ? "\r" : "",
            el, (unsigned long long)done, total, dt > 0 ? (double)(done - *last) / dt : 0.0,
            (unsigned long long)failed, (unsigned long long)non2xx, tty ? "\033[K" : "\n");
    fflush(f);
    *last = done;
    *last_ns = now;
}

typedef struct outcome {
    int interrupted; /* the signal */
    int died;        /* a worker did not exit cleanly */
    int64_t last_exit_ns;
} outcome;

static void reap(const gl_run *r, int *alive, outcome *out)
{
    pid_t pid;
    int st;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        (*alive)--;
        out->last_exit_ns = gl_now_ns();
        if (WIFSIGNALED(st)) {
            if (!out->interrupted || WTERMSIG(st) != SIGKILL)
                fprintf(stderr, "grove-load: worker %d died of signal %d (%s)\n", (int)pid,
                        WTERMSIG(st), strsignal(WTERMSIG(st)));
            out->died = 1;
        } else if (WEXITSTATUS(st) != 0) {
            out->died = 1;
        }
    }
    (void)r;
}

/* Wait for the workers, printing the status line once a second. The
 * first SIGINT or SIGTERM asks them to stop (the report follows, as ab's
 * Ctrl-C); a second one kills them. */
static void monitor(const gl_run *r, int progress, outcome *out)
{
    int tty = isatty(STDERR_FILENO), alive = r->nworkers;
    int64_t next = r->t0_ns + 1000000000, last_ns = r->t0_ns;
    uint64_t last = 0;
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    while (alive > 0) {
        int64_t now = gl_now_ns(), wait = next - now;
        struct timespec ts = {wait / 1000000000, wait % 1000000000};
        int sig;

        if (wait <= 0) {
            if (progress)
                status_line(r, stderr, tty, &last, &last_ns);
            next += 1000000000 * ((now - next) / 1000000000 + 1);
            continue;
        }
        sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            if (out->interrupted)
                for (int i = 0; i < r->nworkers; i++)
                    kill(pids[i], SIGKILL);
            out->interrupted = sig;
            __atomic_store_n(&r->shm->stop, 1, __ATOMIC_RELAXED);
        }
        reap(r, &alive, out);
    }
    if (progress && tty)
        fputc('\n', stderr);
}

/* ------------------------------------------------------------- main */

static int show_progress(const gl_opts *o)
{
    if (o->quiet)
        return 0;
    return o->progress != 0;
}

static int exit_status(const gl_totals *t, const outcome *out)
{
    if (t->setup_errno) {
        fprintf(stderr, "grove-load: a worker could not start: %s\n", strerror(t->setup_errno));
        return 1;
    }
    if (out->interrupted)
        return 128 + out->interrupted;
    if (t->abort_kind >= 0) {
        fprintf(stderr,
                "grove-load: stopped at the first socket error (%s: %s); -r counts socket "
                "errors and goes on\n",
                gl_fail_name[t->abort_kind], strerror(t->abort_errno));
        return 1;
    }
    return out->died ? 1 : 0;
}

int main(int argc, char **argv)
{
    gl_run run = {.o = &opts, .t = &target};
    outcome out = {0};
    sigset_t set;

    gl_parse_args(argc, argv, &opts);
    gr_configure(&(gr_config){.idle_spin_us = opts.spin_us ? opts.spin_us : -1});
    if (opts.doctor)
        return gl_doctor(stdout, opts.json);
    gl_build_target(&opts, &target);
    run.nworkers = plan_workers(&opts);
    check_ports(&opts, &target);
    check_sources(&target);
    preflight(&opts, &target);
    run.shm = map_shared(run.nworkers);

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    run.t0_ns = gl_now_ns();
    if (opts.timelimit_s > 0)
        run.end_ns = run.t0_ns + (int64_t)(opts.timelimit_s * 1e9);
    start_workers(&run);
    monitor(&run, show_progress(&opts), &out);

    gl_sum(&run, out.last_exit_ns, &totals);
    totals.interrupted = out.interrupted;
    if (opts.json)
        gl_report_json(stdout, &run, &totals);
    else
        gl_report_text(stdout, &run, &totals);
    fflush(stdout);
    return exit_status(&totals, &out);
}
