/* A TCP port forwarder: every connection to --listen is relayed to --to by
 * two green threads, one per direction. When one side shuts its writing
 * down (EOF), the forwarder shuts down writing to the other side, so a
 * half-close travels end to end and the other direction keeps flowing.
 * SIGINT or SIGTERM stop it gracefully.
 *
 *   forwarder --listen P --to HOST:PORT [--host H]
 *
 * Prints "forwarding H:P to HOST:PORT" (with the real port when P is 0). */
/* example-run: tests/examples/forwarder.sh */
#include <errno.h>
#include <grove.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define CONNECT_MS 5000
#define STOP_GRACE_MS 2000

typedef struct target {
    char host[256];
    int port;
} target;

/* One direction of a connection. */
typedef struct pump {
    int from, to;
} pump;

static void pump_run(const pump *p)
{
    char buf[16384];
    ssize_t n;

    while ((n = gr_read(p->from, buf, sizeof buf, -1)) > 0)
        if (gr_write_all(p->to, buf, (size_t)n, NULL, -1) != 0)
            break;
    if (n == 0) {
        shutdown(p->to, SHUT_WR); /* pass the half-close on */
        return;
    }
    /* Reset, killed...: end the other direction too; its blocked read
     * then returns. */
    shutdown(p->from, SHUT_RDWR);
    shutdown(p->to, SHUT_RDWR);
}

static void *pump_main(void *arg)
{
    pump_run(arg);
    return NULL;
}

/* Join g even when the caller has been killed: g uses the caller's stack
 * and descriptors, so it must be gone before they are. The kill is passed
 * on to g, which unwinds at its next blocking call, and the join waits for
 * that in a shielded region, where the caller's own kill does not count. */
static void join_child(gr_t g)
{
    if (gr_join(g, NULL, -1) == 0)
        return;
    gr_kill(g);
    gr_shield_begin();
    gr_join(g, NULL, -1);
    gr_shield_end();
}

static void forward(int client, const gr_addr *peer, void *arg)
{
    const target *t = arg;
    char name[128];
    int up = gr_tcp_connect(t->host, t->port, gr_now() + CONNECT_MS);
    pump there = {client, up}, back = {up, client};
    gr_t g;

    if (up < 0) {
        gr_addr_format(peer, name, sizeof name);
        fprintf(stderr, "forwarder: %s: connect to %s:%d: %s\n", name, t->host, t->port,
                strerror(errno));
        return; /* the server closes client */
    }
    if ((g = gr_spawn(pump_main, &back)) < 0) {
        gr_close(up);
        return;
    }
    pump_run(&there);
    join_child(g);
    gr_close(up);
}

static int stop_fd = -1;

static void *watch_signals(void *arg)
{
    struct signalfd_siginfo si;

    if (gr_read(stop_fd, &si, sizeof si, -1) == (ssize_t)sizeof si)
        gr_server_stop(arg, gr_now() + STOP_GRACE_MS);
    return NULL;
}

typedef struct options {
    const char *host;
    int port;
    target to;
} options;

static void *run(void *arg)
{
    options *o = arg;
    gr_server_opts so = {.name = "forward"};
    gr_server *server;
    gr_t watcher;
    int fd;

    if ((fd = gr_tcp_listen(o->host, o->port, 0)) < 0) {
        fprintf(stderr, "forwarder: listen: %s\n", strerror(errno));
        return (void *)1;
    }
    if (!(server = gr_server_new(fd, forward, &o->to, &so))) {
        fprintf(stderr, "forwarder: %s\n", strerror(errno));
        return (void *)1;
    }
    watcher = gr_spawn(watch_signals, server);
    printf("forwarding %s:%d to %s:%d\n", o->host ? o->host : "*", gr_local_port(fd), o->to.host,
           o->to.port);
    fflush(stdout);
    if (gr_server_serve(server) != 0)
        gr_kill(watcher);
    gr_join(watcher, NULL, -1);
    gr_server_stop(server, gr_now() + STOP_GRACE_MS);
    gr_server_free(server);
    return NULL;
}

/* "host:port", "[v6]:port" */
static int parse_target(const char *s, target *t)
{
    const char *colon = strrchr(s, ':');
    size_t n;

    if (!colon || colon == s)
        return -1;
    n = (size_t)(colon - s);
    if (s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n >= sizeof t->host)
        return -1;
    memcpy(t->host, s, n);
    t->host[n] = '\0';
    t->port = atoi(colon + 1);
    return t->port > 0 && t->port < 65536 ? 0 : -1;
}

static int parse(int argc, char **argv, options *o)
{
    int have_to = 0;

    memset(o, 0, sizeof *o);
    o->port = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--listen"))
            o->port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--host"))
            o->host = argv[i + 1];
        else if (!strcmp(argv[i], "--to") && parse_target(argv[i + 1], &o->to) == 0)
            have_to = 1;
        else
            return -1;
    }
    return argc % 2 == 1 && o->port >= 0 && have_to ? 0 : -1;
}

int main(int argc, char **argv)
{
    options o;
    sigset_t stop;
    void *result = NULL;

    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: forwarder --listen P --to HOST:PORT [--host H]\n");
        return 2;
    }
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    if ((stop_fd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
        gr_main(run, &o, &result) != 0) {
        perror("forwarder");
        return 1;
    }
    close(stop_fd);
    return result ? 1 : 0;
}
