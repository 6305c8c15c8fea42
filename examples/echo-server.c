/* An echo server: every byte a client sends comes back to it. One green
 * thread per connection (a gr_server), at most --pool at once; SIGINT or
 * SIGTERM stop it gracefully: a green thread reads the signals from a
 * signalfd and calls gr_server_stop, which lets connections finish for up
 * to 2 s, then kills the rest.
 *
 *   echo-server --port P [--pool N] [--host H]
 *
 * Prints "listening on H:P" (with the real port when P is 0) once ready. */
/* example-run: tests/examples/echo-server.sh */
#include <errno.h>
#include <grove.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define STOP_GRACE_MS 2000

typedef struct options {
    const char *host;
    int port;
    size_t pool;
} options;

static void echo(int fd, const gr_addr *peer, void *arg)
{
    char buf[16384];
    ssize_t n;

    (void)peer;
    (void)arg;
    while ((n = gr_read(fd, buf, sizeof buf, -1)) > 0)
        if (gr_write_all(fd, buf, (size_t)n, NULL, -1) != 0)
            return;
    /* EOF (or an error): the server closes fd once we return. */
}

static int stop_fd = -1;

static void *watch_signals(void *arg)
{
    gr_server *server = arg;
    struct signalfd_siginfo si;

    if (gr_read(stop_fd, &si, sizeof si, -1) != (ssize_t)sizeof si)
        return NULL; /* killed: main is leaving anyway */
    fprintf(stderr, "echo-server: signal %u, stopping\n", si.ssi_signo);
    if (gr_server_stop(server, gr_now() + STOP_GRACE_MS) != 0 && errno == ETIMEDOUT)
        fprintf(stderr, "echo-server: some connections had to be killed\n");
    return NULL;
}

static void *run(void *arg)
{
    const options *o = arg;
    gr_server_opts so = {.pool = o->pool, .name = "echo"};
    gr_server *server;
    gr_addr local;
    char name[128];
    gr_t watcher;
    int fd;

    if ((fd = gr_tcp_listen(o->host, o->port, 0)) < 0) {
        fprintf(stderr, "echo-server: listen: %s\n", strerror(errno));
        return (void *)1;
    }
    if (!(server = gr_server_new(fd, echo, NULL, &so))) {
        fprintf(stderr, "echo-server: %s\n", strerror(errno));
        return (void *)1;
    }
    watcher = gr_spawn(watch_signals, server);
    local.len = sizeof local.u;
    getsockname(fd, &local.u.sa, &local.len);
    gr_addr_format(&local, name, sizeof name);
    printf("listening on %s\n", name);
    fflush(stdout);
    if (gr_server_serve(server) != 0) {
        fprintf(stderr, "echo-server: serve: %s\n", strerror(errno));
        gr_kill(watcher);
    }
    gr_join(watcher, NULL, -1); /* it returns once the stop is complete */
    gr_server_stop(server, gr_now() + STOP_GRACE_MS);
    gr_server_free(server);
    printf("stopped\n");
    return NULL;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){NULL, -1, 0};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            o->port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pool"))
            o->pool = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--host"))
            o->host = argv[i + 1];
        else
            return -1;
    }
    return argc % 2 == 1 && o->port >= 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    options o;
    sigset_t stop;
    void *result = NULL;

    if (parse(argc, argv, &o) != 0) {
        fprintf(stderr, "usage: echo-server --port P [--pool N] [--host H]\n");
        return 2;
    }
    /* Blocked, so they queue on the signalfd instead of killing us. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    if ((stop_fd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        perror("echo-server: signalfd");
        return 1;
    }
    if (gr_main(run, &o, &result) != 0) {
        perror("echo-server: gr_main");
        return 1;
    }
    close(stop_fd);
    return result ? 1 : 0;
}
