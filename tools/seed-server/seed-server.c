/* seed-server: the experiment's server. It serves the seed page (a title,
 * an <h1> and a paragraph of Lorem ipsum ten times over) as text/html to
 * every request, as the article's WSGI app did, either with grove's HTTP
 * server and a pool of N green threads, or with the classic thread-pool
 * server of N OS threads (same parser, same handler).
 *
 *   seed-server --mode grove|threaded --concurrency N --port P
 *               [--host H] [--workers W] [--backlog B]
 *               [--tls-cert FILE --tls-key FILE [--tls-ticket-key FILE]]
 *
 * --tls-cert and --tls-key serve HTTPS (grove mode), ALPN http/1.1; the
 * context is made before the workers fork, so they share its ticket key
 * and resume each other's sessions. --tls-ticket-key FILE (80-byte keys,
 * `openssl rand 80`, the first sealing) keeps sessions across restarts.
 *
 * --workers W forks W processes listening on the same port (SO_REUSEPORT),
 * to use every core, and more descriptors than one process may hold. It
 * prints one line when ready and exits cleanly on SIGINT or SIGTERM,
 * taking its workers with it. */
#define _GNU_SOURCE
#include <grove/http.h>
#include <grove/tls.h>

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
    const char *tls_cert, *tls_key, *tls_ticket_key;
    gr_tls_ctx *tls; /* made from them */
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
            "                   [--host H] [--workers W] [--backlog B]\n"
            "                   [--tls-cert FILE --tls-key FILE [--tls-ticket-key FILE]]\n",
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
        } else if (!strcmp(a, "--tls-cert")) {
            o.tls_cert = v;
        } else if (!strcmp(a, "--tls-key")) {
            o.tls_key = v;
        } else if (!strcmp(a, "--tls-ticket-key")) {
            o.tls_ticket_key = v;
        } else {
            usage("unknown option");
        }
    }
    if (!mode || !o.concurrency || o.port < 0)
        usage("--mode, --concurrency and --port are required");
    if (!o.tls_cert != !o.tls_key || (o.tls_ticket_key && !o.tls_cert))
        usage("--tls-cert and --tls-key go together (and --tls-ticket-key with them)");
    if (o.tls_cert && o.threaded)
        usage("HTTPS is served in grove mode only");
    return o;
}

/* The HTTPS context, or exit with the reason (the file and OpenSSL's). */
static gr_tls_ctx *tls_context(const options *o)
{
    static const char *alpn[] = {"http/1.1"};
    gr_tls_ctx *ctx = gr_tls_ctx_new(GR_TLS_SERVER);
    unsigned char keys[16 * GR_TLS_TICKET_KEY_SIZE];
    FILE *f;
    size_t n;

    if (!ctx || gr_tls_ctx_add_cert_file(ctx, o->tls_cert, o->tls_key) != 0 ||
        gr_tls_ctx_set_alpn(ctx, alpn, 1) != 0) {
        fprintf(stderr, "seed-server: TLS: %s\n", ctx ? gr_tls_ctx_error(ctx) : strerror(errno));
        exit(1);
    }
    if (o->tls_ticket_key) {
        if (!(f = fopen(o->tls_ticket_key, "rb"))) {
            fprintf(stderr, "seed-server: %s: %s\n", o->tls_ticket_key, strerror(errno));
            exit(1);
        }
        n = fread(keys, 1, sizeof keys, f);
        fclose(f);
        if (gr_tls_ctx_set_ticket_keys(ctx, keys, n) != 0) {
            fprintf(stderr, "seed-server: %s: %zu bytes, not 80 per key (1 to 16 keys)\n",
                    o->tls_ticket_key, n);
            exit(1);
        }
    }
    return ctx;
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
    gr_http_opts ho = {.max_connections = o->concurrency, .tls = o->tls};
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
    printf("seed-server: ready: mode %s, concurrency %zu, workers %d, listening on %s:%d%s, "
           "pid %d\n",
           o->threaded ? "threaded" : "grove", o->concurrency, o->workers, o->host, port,
           o->tls ? " (https)" : "", (int)getpid());
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
    int fd, port, rc;

    if (o.tls_cert)
        o.tls = tls_context(&o);
    fd = listen_on(&o, o.port);
    port = gr_local_port(fd);
    if (o.workers > 1) {
        rc = supervise(&o, fd, port);
    } else {
        announce(&o, port);
        rc = serve(&o, fd);
    }
    gr_tls_ctx_free(o.tls);
    return rc;
}
