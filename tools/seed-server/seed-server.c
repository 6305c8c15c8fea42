/* seed-server: the experiment's server. It serves the seed page (a title,
 * an <h1> and a paragraph of Lorem ipsum ten times over) as text/html to
 * every request, as the article's WSGI app did, either with grove's HTTP
 * server and a pool of N green threads, or with the classic thread-pool
 * server of N OS threads (same parser, same handler).
 *
 *   seed-server --mode grove|threaded --concurrency N --port P
 *               [--host H] [--workers W] [--backlog B]
 *
 * --workers W forks W processes listening on the same port (SO_REUSEPORT),
 * to use every core, and more descriptors than one process may hold. It
 * prints one line when ready and exits cleanly on SIGINT or SIGTERM,
 * taking its workers with it. */
#define _GNU_SOURCE
#include <grove/http.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "seed_page.h" /* generated from seed-page.html at build time */

typedef struct options {
    int threaded;
    size_t concurrency;
    const char *host;
    int port;
    int workers;
    int backlog;
} options;

static int seed(gr_http_request *req, void *arg)
{
    static const gr_http_header h[] = {{"Content-Type", "text/html"}};

    (void)arg;
    return gr_http_respond(req, 200, h, 1, seed_page, sizeof seed_page, -1);
}

static void usage(const char *why)
{
    fprintf(stderr,
            "seed-server: %s\n"
            "usage: seed-server --mode grove|threaded --concurrency N --port P\n"
            "                   [--host H] [--workers W] [--backlog B]\n",
            why);
    exit(2);
}

static long number(const char *s, const char *what, long min, long max)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) {
        char msg[128];

        snprintf(msg, sizeof msg, "bad %s: %s (want %ld..%ld)", what, s, min, max);
        usage(msg);
    }
    return v;
}

static options parse(int argc, char **argv)
{
    options o = {.concurrency = 0, .host = "127.0.0.1", .port = -1, .workers = 1, .backlog = 0};
    int mode = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            usage("serves the seed page");
        if (!v)
            usage("every option takes a value");
        i++;
        if (!strcmp(a, "--mode")) {
            if (strcmp(v, "grove") && strcmp(v, "threaded"))
                usage("--mode is grove or threaded");
            o.threaded = !strcmp(v, "threaded");
            mode = 1;
        } else if (!strcmp(a, "--concurrency")) {
            o.concurrency = (size_t)number(v, "--concurrency", 1, 1000000);
        } else if (!strcmp(a, "--port")) {
            o.port = (int)number(v, "--port", 0, 65535);
        } else if (!strcmp(a, "--host")) {
            o.host = v;
        } else if (!strcmp(a, "--workers")) {
            o.workers = (int)number(v, "--workers", 1, 256);
        } else if (!strcmp(a, "--backlog")) {
            o.backlog = (int)number(v, "--backlog", 1, 1 << 20);
        } else {
            usage("unknown option");
        }
    }
    if (!mode || !o.concurrency || o.port < 0)
        usage("--mode, --concurrency and --port are required");
    return o;
}

static int listen_on(const options *o, int port)
{
    gr_addr a;
    int fd;

    if (gr_addr_ip(&a, o->host, port) != 0) {
        fprintf(stderr, "seed-server: bad host %s\n", o->host);
        exit(1);
    }
    if ((fd = gr_listen(&a, o->backlog, o->workers > 1)) < 0) {
        fprintf(stderr, "seed-server: cannot listen on %s:%d: %s\n", o->host, port,
                strerror(errno));
        exit(1);
    }
    return fd;
}

/* ------------------------------------------------------------ grove mode */

typedef struct grove_run {
    gr_http_server *srv;
    int sigfd;
} grove_run;

static void *await_signal(void *arg)
{
    grove_run *r = arg;
    struct signalfd_siginfo si;

    if (gr_read_exact(r->sigfd, &si, sizeof si, NULL, -1) == 0)
        gr_http_server_stop(r->srv, gr_now_update() + 5000);
    return NULL;
}

static void *serve_grove(void *arg)
{
    grove_run *r = arg;
    gr_t waiter = gr_spawn(await_signal, r);

    gr_http_server_serve(r->srv);
    gr_kill(waiter);
    gr_join(waiter, NULL, -1);
    return NULL;
}

static int run_grove(const options *o, int fd, int sigfd)
{
    gr_http_opts ho = {.max_connections = o->concurrency};
    grove_run r = {NULL, sigfd};

    if (!(r.srv = gr_http_server_new(fd, seed, NULL, &ho))) {
        perror("seed-server: gr_http_server_new");
        return 1;
    }
    gr_fd_nonblock(sigfd);
    if (gr_main(serve_grove, &r, NULL) != 0) {
        perror("seed-server");
        return 1;
    }
    gr_http_server_free(r.srv);
    return 0;
}

/* --------------------------------------------------------- threaded mode */

typedef struct threaded_run {
    gr_http_threaded *srv;
    int sigfd;
} threaded_run;

static void *await_signal_thread(void *arg)
{
    threaded_run *r = arg;
    struct signalfd_siginfo si;

    while (read(r->sigfd, &si, sizeof si) < 0 && errno == EINTR) {
    }
    gr_http_threaded_stop(r->srv);
    return NULL;
}

static int run_threaded(const options *o, int fd, int sigfd)
{
    threaded_run r = {NULL, sigfd};
    pthread_t t;
    int rc;

    if (!(r.srv = gr_http_threaded_new(fd, seed, NULL, NULL, o->concurrency))) {
        perror("seed-server: gr_http_threaded_new");
        return 1;
    }
    pthread_create(&t, NULL, await_signal_thread, &r);
    rc = gr_http_threaded_serve(r.srv);
    if (rc != 0)
        perror("seed-server: gr_http_threaded_serve");
    pthread_cancel(t);
    pthread_join(t, NULL);
    gr_http_threaded_free(r.srv);
    return rc ? 1 : 0;
}

/* ------------------------------------------------------------- workers */

static int serve(const options *o, int fd)
{
    sigset_t set;
    int sigfd;

    /* Signals arrive on a descriptor that a thread reads, never in the
     * middle of the server's own code. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    return o->threaded ? run_threaded(o, fd, sigfd) : run_grove(o, fd, sigfd);
}

static void announce(const options *o, int port)
{
    printf("seed-server: ready: mode %s, concurrency %zu, workers %d, listening on %s:%d, "
           "pid %d\n",
           o->threaded ? "threaded" : "grove", o->concurrency, o->workers, o->host, port,
           (int)getpid());
    fflush(stdout);
}

/* Fork the workers: the first keeps the socket the parent bound (so no
 * connection lands on a socket nobody accepts on), the others bind their
 * own to the same port. The parent waits for a signal and passes it on. */
static int supervise(const options *o, int fd, int port)
{
    pid_t pids[256];
    sigset_t set;
    int sig, status, rc = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < o->workers; i++) {
        if ((pids[i] = fork()) == 0) {
            sigprocmask(SIG_UNBLOCK, &set, NULL);
            /* A supervisor killed with SIGKILL cannot pass the signal
             * on: the kernel does it, so no worker outlives it. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() == 1)
                _exit(1);
            _exit(serve(o, i == 0 ? fd : listen_on(o, port)));
        }
        if (pids[i] < 0) {
            perror("seed-server: fork");
            exit(1);
        }
    }
    close(fd);
    announce(o, port);
    sigwait(&set, &sig);
    for (int i = 0; i < o->workers; i++)
        kill(pids[i], SIGTERM);
    for (int i = 0; i < o->workers; i++)
        if (waitpid(pids[i], &status, 0) == pids[i] && !(WIFEXITED(status) && !WEXITSTATUS(status)))
            rc = 1;
    return rc;
}

int main(int argc, char **argv)
{
    options o = parse(argc, argv);
    int fd = listen_on(&o, o.port);
    int port = gr_local_port(fd);

    if (o.workers > 1)
        return supervise(&o, fd, port);
    announce(&o, port);
    return serve(&o, fd);
}
