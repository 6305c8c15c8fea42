/* grove-echo-bench: echo round trips per second over loopback, with 1, 100
 * and 10,000 concurrent connections, each ping-ponging a 64-byte message,
 * against (a) a grove echo server (gr_server, one green thread per
 * connection) and (b) a classic blocking thread-per-connection server
 * (pthreads, blocking sockets), measured in the same run.
 *
 *   grove-echo-bench [--json] [--seconds S] [--conns 1,100,10000]
 *                    [--only grove|threads|epoll]
 *
 * The server runs in a child process pinned to CPU 0 (10,000 connections
 * need 20,000 descriptors, more than one process may open here), the
 * client in this process pinned to CPU 1: grove green threads, one per
 * connection, the same client for every server. Each point connects
 * everything, warms up for 0.5 s, then counts round trips for S seconds
 * (default 2). Besides round trips per second it reports the CPU time
 * (user + system) each side spent per round trip, which other load on the
 * machine disturbs far less than the rate. --only epoll measures a bare
 * epoll loop instead: the kernel's own ceiling. */
#define _GNU_SOURCE
#include "../bench.h"

#include <errno.h>
#include <fcntl.h>
#include <grove.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 64
#define BUF 4096 /* the servers' read buffer */
#define WARMUP_MS 500
#define THREAD_STACK (64 * 1024)
#define MAX_POINTS 8

enum { SERVER_GROVE, SERVER_THREADS, SERVER_EPOLL };
static const char *const server_names[] = {"grove", "threads", "epoll"};

static void pin_to(int cpu)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        perror("sched_setaffinity"); /* a one-CPU machine: measure anyway */
}

/* ------------------------------------------------------ grove's server */

static void grove_echo(int fd, const gr_addr *peer, void *arg)
{
    char buf[BUF];
    ssize_t n;

    (void)peer;
    (void)arg;
    gr_tcp_nodelay(fd, 1);
    while ((n = gr_read(fd, buf, sizeof buf, -1)) > 0)
        if (gr_write_all(fd, buf, (size_t)n, NULL, -1) != 0)
            break;
}

static void *grove_server(void *arg)
{
    int fd = (int)(intptr_t)arg;
    gr_server *s = gr_server_new(fd, grove_echo, NULL, NULL);

    if (!s || gr_server_serve(s) != 0)
        bench_die("grove server");
    return NULL;
}

/* --------------------------------------------- thread-per-connection */

static void *thread_echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[BUF];
    ssize_t n;

    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

            if (w < 0 && errno != EINTR)
                goto out;
            off += w > 0 ? w : 0;
        }
    }
out:
    close(fd);
    return NULL;
}

static void threads_server(int lfd)
{
    pthread_attr_t attr;
    int one = 1;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        pthread_t t;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            bench_die("accept");
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (pthread_create(&t, &attr, thread_echo, (void *)(intptr_t)fd) != 0)
            bench_die("pthread_create");
    }
}

/* ------------------------------------------- the kernel's own limit */

/* A bare edge-triggered epoll loop with no green threads: not a fair
 * opponent (it does less than either server), but the ceiling the kernel
 * allows, shown with --only epoll. */
static void epoll_server(int lfd)
{
    struct epoll_event ev = {.events = EPOLLIN}, evs[256];
    int ep = epoll_create1(EPOLL_CLOEXEC), one = 1;
    char buf[BUF];

    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);

        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            ssize_t r;

            if (fd == lfd) {
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    ev = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.fd = fd};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            while ((r = read(fd, buf, sizeof buf)) > 0)
                send(fd, buf, (size_t)r, MSG_NOSIGNAL); /* 64 bytes: always fits */
            if (r == 0)
                close(fd);
        }
    }
}

/* A server child on CPU 0; returns its pid and the port it listens on. */
static pid_t start_server(int kind, int *port)
{
    int p[2];
    pid_t pid;

    if (pipe(p) != 0)
        bench_die("pipe");
    if ((pid = fork()) < 0)
        bench_die("fork");
    if (pid == 0) {
        int fd = gr_tcp_listen("127.0.0.1", 0, 0), lport = gr_local_port(fd);

        pin_to(0);
        if (fd < 0 || write(p[1], &lport, sizeof lport) != sizeof lport)
            bench_die("server listen");
        if (kind == SERVER_GROVE) {
            gr_main(grove_server, (void *)(intptr_t)fd, NULL);
        } else if (kind == SERVER_EPOLL) {
            epoll_server(fd);
        } else {
            int fl = fcntl(fd, F_GETFL);

            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK); /* a classic blocking server */
            threads_server(fd);
        }
        _exit(0);
    }
    close(p[1]);
    if (read(p[0], port, sizeof *port) != sizeof *port)
        bench_die("server start");
    close(p[0]);
    return pid;
}

/* ------------------------------------------------------------ client */

typedef struct point {
    int port, conns, seconds;
    pid_t server;
    int *fds;
    uint64_t count; /* round trips completed, all connections */
    int stop;
    double rps;
    double server_us, client_us; /* CPU time per round trip */
} point;

/* CPU time (user + system, all threads) of a process so far, in us. */
static double cpu_us(pid_t pid)
{
    unsigned long ut = 0, st = 0;
    char path[64], buf[1024], *p;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return 0;
    p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
    fclose(f);
    /* After the command's ")": state and 10 more fields, then utime, stime. */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* A connection's thread gets its point and fd packed in one argument
 * block, so spawning 10,000 of them allocates nothing else. */
typedef struct conn_arg {
    point *pt;
    int fd;
} conn_arg;

static void *ping_pong(void *arg)
{
    const conn_arg *ca = arg;
    point *pt = ca->pt;
    int fd = ca->fd;
    char msg[MSG], buf[MSG];

    memset(msg, 'x', sizeof msg);
    while (!pt->stop) {
        if (gr_write_all(fd, msg, MSG, NULL, -1) != 0 ||
            gr_read_exact(fd, buf, MSG, NULL, -1) != 0) {
            fprintf(stderr, "client: %s\n", strerror(errno));
            exit(1);
        }
        pt->count++;
    }
    return NULL;
}

static int connect_all(point *pt)
{
    gr_addr a;

    gr_addr_ip(&a, "127.0.0.1", pt->port);
    for (int i = 0; i < pt->conns; i++) {
        int fd = gr_socket(AF_INET, SOCK_STREAM, 0);

        if (fd < 0 || gr_connect(fd, &a.u.sa, a.len, gr_now_update() + 10000) != 0) {
            fprintf(stderr, "connect %d: %s\n", i, strerror(errno));
            return -1;
        }
        gr_tcp_nodelay(fd, 1);
        pt->fds[i] = fd;
    }
    return 0;
}

static void *run_point(void *arg)
{
    point *pt = arg;
    conn_arg *ca = calloc((size_t)pt->conns, sizeof *ca);
    gr_t *g = calloc((size_t)pt->conns, sizeof *g);
    gr_opts o = {.stack_size = 32 * 1024};
    double s0, k0;
    uint64_t c0;
    int64_t t0;

    if (!ca || !g || connect_all(pt) != 0)
        exit(1);
    for (int i = 0; i < pt->conns; i++) {
        ca[i] = (conn_arg){pt, pt->fds[i]};
        if ((g[i] = gr_spawn_opts(ping_pong, &ca[i], &o)) < 0)
            bench_die("spawn");
    }
    gr_sleep(gr_now_update() + WARMUP_MS);
    c0 = pt->count;
    s0 = cpu_us(pt->server);
    k0 = cpu_us(getpid());
    t0 = gr_now_update();
    gr_sleep(t0 + pt->seconds * 1000);
    pt->rps = (double)(pt->count - c0) * 1000.0 / (double)(gr_now_update() - t0);
    pt->server_us = (cpu_us(pt->server) - s0) / (double)(pt->count - c0);
    pt->client_us = (cpu_us(getpid()) - k0) / (double)(pt->count - c0);
    pt->stop = 1;
    for (int i = 0; i < pt->conns; i++)
        gr_join(g[i], NULL, -1);
    for (int i = 0; i < pt->conns; i++)
        gr_close(pt->fds[i]);
    free(ca);
    free(g);
    return NULL;
}

typedef struct result {
    double rps, server_us, client_us;
} result;

static result measure(int kind, int conns, int seconds)
{
    point pt = {.conns = conns, .seconds = seconds};
    int status;

    pt.server = start_server(kind, &pt.port);
    pt.fds = calloc((size_t)conns, sizeof *pt.fds);
    if (!pt.fds || gr_main(run_point, &pt, NULL) != 0)
        bench_die("client");
    kill(pt.server, SIGKILL);
    waitpid(pt.server, &status, 0);
    free(pt.fds);
    return (result){pt.rps, pt.server_us, pt.client_us};
}

/* ------------------------------------------------------------- main */

static int parse_conns(const char *s, int *v)
{
    int n = 0;

    while (*s && n < MAX_POINTS) {
        char *end;

        v[n] = (int)strtol(s, &end, 10);
        if (end == s || v[n] <= 0)
            return -1;
        n++;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* "<server>_<what>_<connections>": one figure of one point. */
static void json_figure(int k, const char *what, int conns, const char *fmt, double v)
{
    char key[64];

    snprintf(key, sizeof key, "%s_%s_%d", server_names[k], what, conns);
    bench_json(key, fmt, v);
}

static void print_json(const result r[][MAX_POINTS], int first, int last, const int *conns,
                       int npoints, int seconds)
{
    bench_json_begin();
    for (int k = first; k <= last; k++) {
        for (int i = 0; i < npoints; i++) {
            json_figure(k, "rps", conns[i], "%.0f", r[k][i].rps);
            json_figure(k, "server_us", conns[i], "%.2f", r[k][i].server_us);
            json_figure(k, "client_us", conns[i], "%.2f", r[k][i].client_us);
        }
    }
    bench_json("seconds_per_point", "%d", seconds);
    for (int k = first; k <= last && npoints >= 3; k++) {
        char key[64];

        /* grove's ratio has no server prefix: the headline figure. */
        snprintf(key, sizeof key, "%s%sratio_%d_vs_%d", k == SERVER_GROVE ? "" : server_names[k],
                 k == SERVER_GROVE ? "" : "_", conns[2], conns[1]);
        bench_json(key, "%.3f", r[k][2].rps / r[k][1].rps);
    }
    bench_json_end();
}

static void print_table(const result r[][MAX_POINTS], int first, int last, const int *conns,
                        int npoints)
{
    printf("%-28s", "connections");
    for (int i = 0; i < npoints; i++)
        printf(" %10d", conns[i]);
    printf("\n");
    for (int k = first; k <= last; k++) {
        printf("%-8s %-19s", server_names[k], "round trips/s");
        for (int i = 0; i < npoints; i++)
            printf(" %10.0f", r[k][i].rps);
        printf("\n%-8s %-19s", "", "server CPU us/trip");
        for (int i = 0; i < npoints; i++)
            printf(" %10.2f", r[k][i].server_us);
        printf("\n%-8s %-19s", "", "client CPU us/trip");
        for (int i = 0; i < npoints; i++)
            printf(" %10.2f", r[k][i].client_us);
        printf("\n");
        if (npoints >= 3)
            printf("%-8s %d vs %d connections: %.3f\n", server_names[k], conns[2], conns[1],
                   r[k][2].rps / r[k][1].rps);
    }
}

int main(int argc, char **argv)
{
    int conns[MAX_POINTS] = {1, 100, 10000}, npoints = 3, json = 0, seconds = 2;
    int first = SERVER_GROVE, last = SERVER_THREADS;
    result r[3][MAX_POINTS] = {{{0}}};

    for (int i = 1; i < argc; i++) {
        if (bench_option(argc, argv, &i, &json, NULL))
            continue;
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--conns") && i + 1 < argc)
            npoints = parse_conns(argv[++i], conns);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            first = last = !strcmp(argv[++i], "grove")   ? SERVER_GROVE
                           : !strcmp(argv[i], "threads") ? SERVER_THREADS
                                                         : SERVER_EPOLL;
        else
            npoints = -1;
    }
    if (npoints <= 0 || seconds <= 0) {
        fprintf(stderr, "usage: grove-echo-bench [--json] [--seconds S] [--conns 1,100,10000] "
                        "[--only grove|threads|epoll]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    pin_to(1);
    for (int k = first; k <= last; k++)
        for (int i = 0; i < npoints; i++)
            r[k][i] = measure(k, conns[i], seconds);
    if (json)
        print_json(r, first, last, conns, npoints, seconds);
    else
        print_table(r, first, last, conns, npoints);
    return 0;
}
