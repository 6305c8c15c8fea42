/* seed-server: the experiment's server. It serves the seed page (a title,
 * an <h1> and a paragraph of Lorem ipsum ten times over) as text/html to
 * every request, as the article's WSGI app did, either with grove's HTTP
 * server and a pool of N green threads, or with the classic thread-pool
 * server of N OS threads (same parser, same handler).
 *
 *   seed-server --mode grove|threaded --concurrency N --port P
 *               [--host H] [--workers W] [--threads T] [--backlog B]
 *               [--drain-ms D]
 *               [--tls-cert FILE --tls-key FILE [--tls-ticket-key FILE]]
 *
 * --tls-cert and --tls-key serve HTTPS (grove mode), ALPN http/1.1; the
 * context is made before the workers fork, so they share its ticket key
 * and resume each other's sessions. --tls-ticket-key FILE (80-byte keys,
 * `openssl rand 80`, the first sealing) keeps sessions across restarts.
 *
 * --workers W runs grove's supervisor (docs/supervisor.md): a master that
 * holds the listening socket and keeps W worker processes serving on it,
 * restarting one that dies; SIGHUP reloads them without a failed request,
 * SIGTTIN/SIGTTOU add or remove one, SIGUSR2 hands the socket to a new
 * build of seed-server (started with the same arguments), which takes
 * over. --threads T serves with T hubs (OS
 * threads) in each process (grove mode). It prints one line when ready
 * and exits 0 on SIGINT or SIGTERM once every connection is done (or D ms
 * have passed), taking its workers with it. */
#define _GNU_SOURCE
#include <grove/http.h>
#include <grove/supervisor.h>
#include <grove/tls.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "seed_page.h" /* generated from seed-page.html at build time */

typedef struct options {
    int threaded;
    size_t concurrency;
    const char *host;
    int port;
    int workers; /* 0: no supervisor */
    int threads;
    int backlog;
    int64_t drain_ms;
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
            "                   [--host H] [--workers W] [--threads T] [--backlog B]\n"
            "                   [--drain-ms D]\n"
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
    options o = {.host = "127.0.0.1", .port = -1, .threads = 1, .drain_ms = 5000};
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
        } else if (!strcmp(a, "--threads")) {
            o.threads = (int)number(v, "--threads", 1, 256);
        } else if (!strcmp(a, "--drain-ms")) {
            o.drain_ms = number(v, "--drain-ms", 1, 3600000);
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
    if (o.threaded && o.threads > 1)
        usage("--threads is for --mode grove (threaded mode has --concurrency threads)");
    if (!o.tls_cert != !o.tls_key || (o.tls_ticket_key && !o.tls_cert))
        usage("--tls-cert and --tls-key go together (and --tls-ticket-key with them)");
    if (o.tls_cert && o.threaded)
        usage("HTTPS is served in grove mode only");
    return o;
}

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
    if ((fd = gr_listen(&a, o->backlog, 0)) < 0) {
        fprintf(stderr, "seed-server: cannot listen on %s:%d: %s\n", o->host, port,
                strerror(errno));
        exit(1);
    }
    return fd;
}

/* ------------------------------------------------------------ grove mode */

/* One hub's server. Its stop comes from the supervisor (w) or from a
 * signal (stop); it then drains: idle connections may send one more
 * request for a second (answered with Connection: close). */
typedef struct hub_run {
    const options *o;
    int fd;
    gr_sup_worker *w;
    gr_event *stop;
} hub_run;

static void *serve_hub(void *arg)
{
    hub_run *h = arg;
    gr_http_opts ho = {.max_connections = h->o->concurrency, .tls = h->o->tls};
    gr_http_server *srv = gr_http_server_new(h->fd, seed, NULL, &ho);
    int64_t end, now;

    if (!srv || gr_http_server_start(srv) != 0) {
        perror("seed-server: the HTTP server");
        gr_http_server_free(srv);
        return (void *)1;
    }
    if (h->w) {
        gr_sup_worker_ready(h->w);
        gr_sup_worker_wait(h->w, &end, -1);
    } else {
        gr_event_wait(h->stop, -1);
        end = gr_now_update() + h->o->drain_ms;
    }
    now = gr_now_update();
    gr_http_server_drain(srv, now + (end - now < 2000 ? (end - now) / 2 : 1000), end);
    gr_http_server_free(srv);
    return NULL;
}

/* T hubs on fd (each server owns a copy); 0 when all stopped cleanly. */
static int serve_hubs(const options *o, int fd, gr_sup_worker *w, gr_event *stop)
{
    hub_run runs[256];
    void *args[256], *results[256];
    int rc = 0;

    for (int i = 0; i < o->threads; i++) {
        runs[i] = (hub_run){o, i ? dup(fd) : fd, w, stop};
        args[i] = &runs[i];
        results[i] = NULL;
    }
    if (o->threads == 1 && w) /* the worker is a green thread already */
        return serve_hub(&runs[0]) ? 1 : 0;
    if (gr_hubs_run((size_t)o->threads, serve_hub, args, results) != 0) {
        perror("seed-server: gr_hubs_run");
        return 1;
    }
    for (int i = 0; i < o->threads; i++)
        rc |= results[i] != NULL;
    return rc;
}

/* Without a supervisor: SIGINT or SIGTERM, taken by a plain thread, stops
 * every hub. */
static void *await_stop_signal(void *arg)
{
    sigset_t set;
    int sig;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    gr_event_set(arg);
    return NULL;
}

static int run_grove(const options *o, int fd)
{
    static gr_event stop;
    pthread_t t;

    gr_event_init(&stop);
    pthread_create(&t, NULL, await_stop_signal, &stop);
    pthread_detach(t);
    return serve_hubs(o, fd, NULL, &stop);
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

/* One process without a supervisor: SIGINT and SIGTERM are blocked in
 * every thread and taken by one (a signalfd or sigwait). */
static int serve(const options *o, int fd)
{
    sigset_t set;
    int sigfd;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (!o->threaded)
        return run_grove(o, fd);
    sigfd = signalfd(-1, &set, SFD_CLOEXEC);
    return run_threaded(o, fd, sigfd);
}

/* The threaded server in a worker: a plain thread waits for the drain. */
typedef struct threaded_worker {
    gr_http_threaded *srv;
    gr_sup_worker *w;
} threaded_worker;

static void *await_drain_thread(void *arg)
{
    threaded_worker *tw = arg;

    gr_sup_worker_wait(tw->w, NULL, -1);
    gr_http_threaded_stop(tw->srv);
    return NULL;
}

static int work(gr_sup_worker *w, void *arg)
{
    const options *o = arg;
    threaded_worker tw = {NULL, w};
    pthread_t t;
    int rc;

    if (!o->threaded)
        return serve_hubs(o, gr_sup_worker_fd(w, 0), w, NULL);
    if (!(tw.srv =
              gr_http_threaded_new(gr_sup_worker_fd(w, 0), seed, NULL, NULL, o->concurrency))) {
        perror("seed-server: gr_http_threaded_new");
        return 1;
    }
    pthread_create(&t, NULL, await_drain_thread, &tw);
    gr_sup_worker_ready(w);
    rc = gr_http_threaded_serve(tw.srv);
    pthread_join(t, NULL);
    gr_http_threaded_free(tw.srv);
    return rc ? 1 : 0;
}

typedef struct master_run {
    const options *o;
    int fd;
} master_run;

static void *master(void *arg)
{
    master_run *m = arg;
    gr_sup_opts so = {
        .workers = (size_t)m->o->workers, .fds = &m->fd, .nfds = 1, .drain_ms = m->o->drain_ms};

    return gr_sup_run(work, (void *)m->o, &so) == 0 ? NULL : (void *)1;
}

static int supervise(const options *o, int fd)
{
    master_run m = {o, fd};
    void *res = NULL;

    if (gr_main(master, &m, &res) != 0 || res) {
        perror("seed-server: supervisor");
        return 1;
    }
    close(fd);
    return 0;
}

static void announce(const options *o, int port)
{
    printf("seed-server: ready: mode %s, concurrency %zu, workers %d, threads %d, listening on "
           "%s:%d%s, pid %d\n",
           o->threaded ? "threaded" : "grove", o->concurrency, o->workers ? o->workers : 1,
           o->threads, o->host, port, o->tls ? " (https)" : "", (int)getpid());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    options o = parse(argc, argv);
    int fd, port, rc, n = gr_sup_inherited_fds(&fd, 1);

    /* Started by a master's SIGUSR2 (a new binary taking over): its
     * listening socket, not a new one. */
    if (n < 0 || (n == 1 && !o.workers)) {
        fprintf(stderr, "seed-server: bad GROVE_LISTEN_FDS\n");
        return 1;
    }
    if (n == 0)
        fd = listen_on(&o, o.port);
    if (o.tls_cert)
        o.tls = tls_context(&o);
    port = gr_local_port(fd);
    announce(&o, port);
    rc = o.workers ? supervise(&o, fd) : serve(&o, fd);
    gr_tls_ctx_free(o.tls);
    return rc;
}
